//! Log retention (`recalliq_retention`, migration 8) and `maintenance clean-logs`: email logs
//! and batch execution logs older than a tenant's retention are deleted in bounded chunks,
//! each its own short statement, so a live database is never locked for long. Rows that are
//! still the engine's queue (pending/sending rows of a batch that can still send) are kept
//! whatever their age.

use chrono::{Duration, NaiveDateTime};
use serde::Serialize;

use super::{AllTenants, DbError, DbResult, Store, TenantScope, now, on_pool};

/// The spec's defaults: email logs 90 days, batch execution logs 30 days.
pub const DEFAULT_EMAIL_LOGS_DAYS: i32 = 90;
pub const DEFAULT_BATCH_LOGS_DAYS: i32 = 30;

/// A tenant's retention; `custom` is false when the tenant has no setting of its own and
/// the defaults apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retention {
    pub tenant_id: i32,
    pub email_logs_days: i32,
    pub batch_logs_days: i32,
    pub custom: bool,
}

/// What `clean_logs` does.
#[derive(Debug, Clone, Copy)]
pub struct CleanOptions {
    /// Retention of tenants without a setting of their own.
    pub email_logs_days: i32,
    pub batch_logs_days: i32,
    /// Count only.
    pub dry_run: bool,
    /// Rows per DELETE statement.
    pub chunk: i64,
}

impl Default for CleanOptions {
    fn default() -> Self {
        CleanOptions {
            email_logs_days: DEFAULT_EMAIL_LOGS_DAYS,
            batch_logs_days: DEFAULT_BATCH_LOGS_DAYS,
            dry_run: false,
            chunk: 5_000,
        }
    }
}

/// The result for one tenant (also passed to the progress callback after each chunk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CleanReport {
    pub tenant_id: i32,
    pub domain: String,
    pub email_logs_days: i32,
    pub batch_logs_days: i32,
    pub email_logs: u64,
    pub batch_logs: u64,
    pub dry_run: bool,
}

fn check_days(what: &str, days: i32) -> DbResult<()> {
    if !(1..=36_500).contains(&days) {
        return Err(DbError::Invalid(format!(
            "{what} must be between 1 and 36500 days (got {days})"
        )));
    }
    Ok(())
}

fn cutoff(days: i32) -> NaiveDateTime {
    now() - Duration::days(i64::from(days))
}

// A row is part of the engine's queue while it is pending/sending and its batch can still
// send: such rows are kept whatever their age.
const COUNT_EMAIL_SQL: &str =
    "SELECT COUNT(*) FROM logs_emaillog l JOIN batches_batch b ON b.id = l.batch_id
     WHERE b.tenant_id = $1 AND l.created_at < $2
       AND (l.status NOT IN ('pending', 'sending')
            OR COALESCE(b.status, 'draft') IN ('completed', 'failed', 'cancelled'))";
const DELETE_EMAIL_SQL: &str = "DELETE FROM logs_emaillog WHERE id IN (
     SELECT l.id FROM logs_emaillog l JOIN batches_batch b ON b.id = l.batch_id
     WHERE b.tenant_id = $1 AND l.created_at < $2
       AND (l.status NOT IN ('pending', 'sending')
            OR COALESCE(b.status, 'draft') IN ('completed', 'failed', 'cancelled'))
     ORDER BY l.id LIMIT $3)";
const COUNT_BATCH_SQL: &str =
    "SELECT COUNT(*) FROM logs_batchexecutionlog x JOIN batches_batch b ON b.id = x.batch_id
     WHERE b.tenant_id = $1 AND x.created_at < $2";
const DELETE_BATCH_SQL: &str = "DELETE FROM logs_batchexecutionlog WHERE id IN (
     SELECT x.id FROM logs_batchexecutionlog x JOIN batches_batch b ON b.id = x.batch_id
     WHERE b.tenant_id = $1 AND x.created_at < $2
     ORDER BY x.id LIMIT $3)";

impl Store {
    /// The tenant's retention, or the defaults when it has none of its own.
    pub async fn retention(&self, scope: TenantScope) -> DbResult<Retention> {
        let row: Option<(i32, i32)> = on_pool!(self, p => {
            sqlx::query_as(
                "SELECT email_logs_days, batch_logs_days FROM recalliq_retention WHERE tenant_id = $1",
            )
            .bind(scope.tenant_id())
            .fetch_optional(p)
            .await?
        });
        Ok(match row {
            Some((e, b)) => Retention {
                tenant_id: scope.tenant_id(),
                email_logs_days: e,
                batch_logs_days: b,
                custom: true,
            },
            None => Retention {
                tenant_id: scope.tenant_id(),
                email_logs_days: DEFAULT_EMAIL_LOGS_DAYS,
                batch_logs_days: DEFAULT_BATCH_LOGS_DAYS,
                custom: false,
            },
        })
    }

    /// Sets the tenant's retention; `None` keeps the current (or default) value.
    pub async fn set_retention(
        &self,
        scope: TenantScope,
        email_logs_days: Option<i32>,
        batch_logs_days: Option<i32>,
    ) -> DbResult<Retention> {
        let current = self.retention(scope).await?;
        let e = email_logs_days.unwrap_or(current.email_logs_days);
        let b = batch_logs_days.unwrap_or(current.batch_logs_days);
        check_days("email log retention", e)?;
        check_days("batch log retention", b)?;
        on_pool!(self, p => {
            sqlx::query(
                "INSERT INTO recalliq_retention (tenant_id, email_logs_days, batch_logs_days, updated_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id) DO UPDATE SET email_logs_days = excluded.email_logs_days,
                     batch_logs_days = excluded.batch_logs_days, updated_at = excluded.updated_at",
            )
            .bind(scope.tenant_id())
            .bind(e)
            .bind(b)
            .bind(now())
            .execute(p)
            .await
            .map(|_| ())?
        });
        self.retention(scope).await
    }

    /// Applies every tenant's retention (tenants without one use `opts`' days). Deletes in
    /// chunks of `opts.chunk` rows; `progress` sees the running totals after every chunk.
    pub async fn clean_logs(
        &self,
        _all: &AllTenants,
        opts: CleanOptions,
        progress: &mut (dyn FnMut(&CleanReport) + Send),
    ) -> DbResult<Vec<CleanReport>> {
        check_days("--email-logs-days", opts.email_logs_days)?;
        check_days("--batch-logs-days", opts.batch_logs_days)?;
        if opts.chunk < 1 {
            return Err(DbError::Invalid("the chunk size must be at least 1".into()));
        }
        let tenants: Vec<(i32, String, Option<i32>, Option<i32>)> = on_pool!(self, p => {
            sqlx::query_as(
                "SELECT t.id, t.domain, r.email_logs_days, r.batch_logs_days
                 FROM tenants_tenant t LEFT JOIN recalliq_retention r ON r.tenant_id = t.id
                 ORDER BY t.id",
            )
            .fetch_all(p)
            .await?
        });
        let mut reports = Vec::new();
        for (tenant_id, domain, e, b) in tenants {
            let mut rep = CleanReport {
                tenant_id,
                domain,
                email_logs_days: e.unwrap_or(opts.email_logs_days),
                batch_logs_days: b.unwrap_or(opts.batch_logs_days),
                email_logs: 0,
                batch_logs: 0,
                dry_run: opts.dry_run,
            };
            let email_cut = cutoff(rep.email_logs_days);
            let batch_cut = cutoff(rep.batch_logs_days);
            if opts.dry_run {
                let (ne, nb): (i64, i64) = on_pool!(self, p => {
                    let ne: i64 = sqlx::query_scalar(COUNT_EMAIL_SQL)
                        .bind(tenant_id).bind(email_cut).fetch_one(p).await?;
                    let nb: i64 = sqlx::query_scalar(COUNT_BATCH_SQL)
                        .bind(tenant_id).bind(batch_cut).fetch_one(p).await?;
                    (ne, nb)
                });
                rep.email_logs = ne as u64;
                rep.batch_logs = nb as u64;
                progress(&rep);
            } else {
                loop {
                    let n = on_pool!(self, p => {
                        sqlx::query(DELETE_EMAIL_SQL)
                            .bind(tenant_id).bind(email_cut).bind(opts.chunk)
                            .execute(p).await?.rows_affected()
                    });
                    rep.email_logs += n;
                    if n > 0 {
                        progress(&rep);
                    }
                    if n < opts.chunk as u64 {
                        break;
                    }
                    // Let the engine's writers in between two chunks.
                    tokio::task::yield_now().await;
                }
                loop {
                    let n = on_pool!(self, p => {
                        sqlx::query(DELETE_BATCH_SQL)
                            .bind(tenant_id).bind(batch_cut).bind(opts.chunk)
                            .execute(p).await?.rows_affected()
                    });
                    rep.batch_logs += n;
                    if n > 0 {
                        progress(&rep);
                    }
                    if n < opts.chunk as u64 {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
            }
            reports.push(rep);
        }
        Ok(reports)
    }
}
