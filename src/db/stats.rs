//! Reports: the spec's "Common Queries" (tenant statistics, batch performance, email
//! activity by date, group email counts) and its usage-counter maintenance, on both
//! backends. The figures equal what the spec's SQL returns on Postgres (tests run it
//! verbatim next to these functions); differences in form only:
//! - rates and durations are computed here from exact integers (the spec's
//!   `ROUND(double precision, 2)` does not exist on Postgres, and SQLite has no `EXTRACT`);
//! - counts use subqueries instead of the spec's four LEFT JOINs with COUNT(DISTINCT), which
//!   multiply rows (users x groups x templates x batches) before counting;
//! - seed columns that may be NULL in a web-app database read as their defaults
//!   (`is_active` TRUE, counters 0), as everywhere in the store.
//!
//! Every function takes a `UserScope`: a super admin's `All` sees every tenant, a
//! `TenantScope` one tenant.

use chrono::{NaiveDate, NaiveDateTime};
use serde::Serialize;

use super::{AllTenants, DbError, DbResult, Pool, Store, UserScope, on_pool};

/// One row of "Get Tenant Statistics".
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct TenantStats {
    pub tenant_id: i32,
    pub name: String,
    pub domain: String,
    pub status: String,
    pub monthly_email_limit: i32,
    pub emails_sent_this_month: i32,
    pub user_count: i64,
    pub group_count: i64,
    pub template_count: i64,
    pub batch_count: i64,
}

impl TenantStats {
    /// Used share of the monthly quota, 0..=1 (1 when the limit is 0 and something was sent).
    pub fn quota_ratio(&self) -> f64 {
        if self.monthly_email_limit <= 0 {
            if self.emails_sent_this_month > 0 {
                1.0
            } else {
                0.0
            }
        } else {
            (self.emails_sent_this_month as f64 / self.monthly_email_limit as f64).clamp(0.0, 1.0)
        }
    }
}

/// One row of "Get Batch Performance".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchPerformance {
    pub batch_id: i32,
    pub tenant_id: i32,
    pub name: String,
    pub status: String,
    pub sent_count: i32,
    pub failed_count: i32,
    /// sent / (sent + failed) in percent, 2 decimals; None when nothing was attempted.
    pub success_rate: Option<f64>,
    pub scheduled_at: Option<NaiveDateTime>,
    pub started_at: Option<NaiveDateTime>,
    pub completed_at: Option<NaiveDateTime>,
    /// completed_at - started_at in minutes; None unless both are set.
    pub duration_minutes: Option<f64>,
}

#[derive(sqlx::FromRow)]
struct BatchRow {
    id: i32,
    tenant_id: i32,
    name: String,
    status: String,
    sent_count: i32,
    failed_count: i32,
    scheduled_at: Option<NaiveDateTime>,
    started_at: Option<NaiveDateTime>,
    completed_at: Option<NaiveDateTime>,
}

/// One day of "Get Email Activity by Date".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityDay {
    pub date: NaiveDate,
    pub total_emails: i64,
    pub sent_emails: i64,
    pub failed_emails: i64,
    /// sent / total in percent, 2 decimals.
    pub success_rate: f64,
}

#[derive(sqlx::FromRow)]
struct ActivityRow {
    day: String,
    total_emails: i64,
    sent_emails: i64,
    failed_emails: i64,
}

/// One row of "Get Group Email Counts".
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct GroupEmailCount {
    pub group_id: i32,
    pub name: String,
    pub description: Option<String>,
    pub email_count: i64,
    pub active_emails: i64,
}

/// A running or paused batch with its queue, for live progress.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct BatchProgress {
    pub batch_id: i32,
    pub tenant_id: i32,
    pub domain: String,
    pub name: String,
    pub status: String,
    pub sent_count: i32,
    pub failed_count: i32,
    /// Rows queued for the batch (every recipient).
    pub total: i64,
    /// Rows still pending or sending.
    pub remaining: i64,
}

impl BatchProgress {
    /// Share of the recipients done (sent, failed, rejected, bounced), 0..=1.
    pub fn ratio(&self) -> f64 {
        if self.total <= 0 {
            0.0
        } else {
            ((self.total - self.remaining) as f64 / self.total as f64).clamp(0.0, 1.0)
        }
    }
}

/// `part / whole` in percent rounded half away from zero to 2 decimals, from integers
/// (what Postgres' `ROUND(numeric, 2)` gives); None when `whole` is 0.
pub fn percent(part: i64, whole: i64) -> Option<f64> {
    if whole <= 0 {
        return None;
    }
    // hundredths of a percent, rounded: (part * 10000 / whole) + 0.5
    let hundredths = (part as i128 * 20_000 + whole as i128) / (2 * whole as i128);
    Some(hundredths as f64 / 100.0)
}

fn tenant_of(scope: UserScope) -> Option<i32> {
    match scope {
        UserScope::All(_) => None,
        UserScope::Tenant(t) => Some(t.tenant_id()),
    }
}

impl Store {
    /// "Get Tenant Statistics": active tenants (one, for a tenant scope) with their quota and
    /// counts of users, groups, templates and batches, by tenant id.
    pub async fn tenant_stats(&self, scope: UserScope) -> DbResult<Vec<TenantStats>> {
        Ok(on_pool!(self, p => {
            sqlx::query_as(
                "SELECT t.id AS tenant_id, t.name, t.domain, COALESCE(t.status, 'active') AS status,
                    COALESCE(t.monthly_email_limit, 1000) AS monthly_email_limit,
                    COALESCE(t.emails_sent_this_month, 0) AS emails_sent_this_month,
                    (SELECT COUNT(*) FROM core_user u WHERE u.tenant_id = t.id) AS user_count,
                    (SELECT COUNT(*) FROM tenants_group g WHERE g.tenant_id = t.id) AS group_count,
                    (SELECT COUNT(*) FROM emails_emailtemplate et WHERE et.tenant_id = t.id) AS template_count,
                    (SELECT COUNT(*) FROM batches_batch b WHERE b.tenant_id = t.id) AS batch_count
                 FROM tenants_tenant t
                 WHERE COALESCE(t.is_active, TRUE) = TRUE AND ($1 IS NULL OR t.id = $1)
                 ORDER BY t.id",
            )
            .bind(tenant_of(scope))
            .fetch_all(p)
            .await?
        }))
    }

    /// "Get Batch Performance": the scope's batches, newest first (at most `limit`).
    pub async fn batch_performance(
        &self,
        scope: UserScope,
        limit: i64,
    ) -> DbResult<Vec<BatchPerformance>> {
        let rows: Vec<BatchRow> = on_pool!(self, p => {
            sqlx::query_as(
                "SELECT b.id, b.tenant_id, b.name, COALESCE(b.status, 'draft') AS status,
                    COALESCE(b.sent_count, 0) AS sent_count, COALESCE(b.failed_count, 0) AS failed_count,
                    b.scheduled_at, b.started_at, b.completed_at
                 FROM batches_batch b
                 WHERE ($1 IS NULL OR b.tenant_id = $1)
                 ORDER BY b.created_at DESC, b.id DESC LIMIT $2",
            )
            .bind(tenant_of(scope))
            .bind(limit)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| BatchPerformance {
                batch_id: r.id,
                tenant_id: r.tenant_id,
                success_rate: percent(
                    i64::from(r.sent_count),
                    i64::from(r.sent_count) + i64::from(r.failed_count),
                ),
                duration_minutes: match (r.started_at, r.completed_at) {
                    (Some(s), Some(c)) => {
                        Some((c - s).num_microseconds().unwrap_or(i64::MAX) as f64 / 60e6)
                    }
                    _ => None,
                },
                name: r.name,
                status: r.status,
                sent_count: r.sent_count,
                failed_count: r.failed_count,
                scheduled_at: r.scheduled_at,
                started_at: r.started_at,
                completed_at: r.completed_at,
            })
            .collect())
    }

    /// "Get Email Activity by Date": per day of `sent_at` within `from..=to`, newest first.
    pub async fn email_activity(
        &self,
        scope: UserScope,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> DbResult<Vec<ActivityDay>> {
        if from > to {
            return Err(DbError::Invalid(format!(
                "the period starts ({from}) after it ends ({to})"
            )));
        }
        let rows: Vec<ActivityRow> = on_pool!(self, p => {
            sqlx::query_as(
                "SELECT CAST(DATE(el.sent_at) AS TEXT) AS day,
                    COUNT(*) AS total_emails,
                    COUNT(CASE WHEN el.status = 'sent' THEN 1 END) AS sent_emails,
                    COUNT(CASE WHEN el.status = 'failed' THEN 1 END) AS failed_emails
                 FROM logs_emaillog el
                 JOIN batches_batch b ON el.batch_id = b.id
                 WHERE ($1 IS NULL OR b.tenant_id = $1)
                    AND el.sent_at >= $2
                    AND el.sent_at <= $3
                 GROUP BY DATE(el.sent_at)
                 ORDER BY DATE(el.sent_at) DESC",
            )
            .bind(tenant_of(scope))
            .bind(from)
            .bind(to)
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|r| {
                let date = NaiveDate::parse_from_str(&r.day, "%Y-%m-%d").map_err(|e| {
                    DbError::Invalid(format!("unexpected date '{}' in logs_emaillog: {e}", r.day))
                })?;
                Ok(ActivityDay {
                    date,
                    success_rate: percent(r.sent_emails, r.total_emails).unwrap_or(0.0),
                    total_emails: r.total_emails,
                    sent_emails: r.sent_emails,
                    failed_emails: r.failed_emails,
                })
            })
            .collect()
    }

    /// "Get Group Email Counts": active groups with their total and active contacts, largest
    /// first.
    pub async fn group_email_counts(&self, scope: UserScope) -> DbResult<Vec<GroupEmailCount>> {
        Ok(on_pool!(self, p => {
            sqlx::query_as(
                "SELECT g.id AS group_id, g.name, g.description,
                    COUNT(ge.id) AS email_count,
                    COUNT(CASE WHEN ge.id IS NOT NULL AND COALESCE(ge.is_active, TRUE) = TRUE THEN 1 END) AS active_emails
                 FROM tenants_group g
                 LEFT JOIN tenants_groupemail ge ON g.id = ge.group_id
                 WHERE ($1 IS NULL OR g.tenant_id = $1) AND COALESCE(g.is_active, TRUE) = TRUE
                 GROUP BY g.id, g.name, g.description
                 ORDER BY email_count DESC, g.id",
            )
            .bind(tenant_of(scope))
            .fetch_all(p)
            .await?
        }))
    }

    /// Running and paused batches of the scope with their queue counts (live gauges).
    pub async fn active_batches(&self, scope: UserScope) -> DbResult<Vec<BatchProgress>> {
        Ok(on_pool!(self, p => {
            sqlx::query_as(
                "SELECT b.id AS batch_id, b.tenant_id, t.domain, b.name, b.status,
                    COALESCE(b.sent_count, 0) AS sent_count, COALESCE(b.failed_count, 0) AS failed_count,
                    (SELECT COUNT(*) FROM logs_emaillog el WHERE el.batch_id = b.id) AS total,
                    (SELECT COUNT(*) FROM logs_emaillog el WHERE el.batch_id = b.id
                        AND el.status IN ('pending', 'sending')) AS remaining
                 FROM batches_batch b JOIN tenants_tenant t ON t.id = b.tenant_id
                 WHERE b.status IN ('running', 'paused') AND ($1 IS NULL OR b.tenant_id = $1)
                 ORDER BY CASE WHEN b.status = 'running' THEN 0 ELSE 1 END, b.id",
            )
            .bind(tenant_of(scope))
            .fetch_all(p)
            .await?
        }))
    }

    /// "Reset monthly counters": `emails_sent_this_month = 0` for every tenant not created in
    /// the current month (the spec's condition; a tenant without `created_at` counts as old).
    /// Returns the number of tenants reset.
    pub async fn reset_usage(&self, _all: &AllTenants) -> DbResult<u64> {
        let n = match &self.pool {
            Pool::Postgres(p) => sqlx::query(
                "UPDATE tenants_tenant SET emails_sent_this_month = 0
                 WHERE created_at IS NULL
                    OR date_trunc('month', created_at) != date_trunc('month', NOW())",
            )
            .execute(p)
            .await?
            .rows_affected(),
            Pool::Sqlite(p) => sqlx::query(
                "UPDATE tenants_tenant SET emails_sent_this_month = 0
                 WHERE created_at IS NULL
                    OR strftime('%Y-%m', created_at) != strftime('%Y-%m', 'now')",
            )
            .execute(p)
            .await?
            .rows_affected(),
        };
        Ok(n)
    }

    /// "Update current month usage": every tenant's counter becomes the sum of `sent_count`
    /// of its batches completed this month. Returns the tenants whose counter changed, with
    /// the old and new value.
    pub async fn recount_usage(&self, _all: &AllTenants) -> DbResult<Vec<UsageChange>> {
        let rows: Vec<UsageChange> = match &self.pool {
            Pool::Postgres(p) => {
                sqlx::query_as(
                    "WITH fresh AS (
                        SELECT t.id, COALESCE(t.emails_sent_this_month, 0) AS old_value,
                            (SELECT COALESCE(SUM(b.sent_count), 0) FROM batches_batch b
                             WHERE b.tenant_id = t.id
                             AND date_trunc('month', b.completed_at) = date_trunc('month', NOW()))::INTEGER AS new_value
                        FROM tenants_tenant t)
                     UPDATE tenants_tenant t SET emails_sent_this_month = f.new_value
                     FROM fresh f WHERE f.id = t.id
                     RETURNING t.id AS tenant_id, t.domain, f.old_value, f.new_value",
                )
                .fetch_all(p)
                .await?
            }
            Pool::Sqlite(p) => {
                let mut tx = p.begin().await?;
                let rows: Vec<UsageChange> = sqlx::query_as(
                    "SELECT t.id AS tenant_id, t.domain,
                        COALESCE(t.emails_sent_this_month, 0) AS old_value,
                        (SELECT COALESCE(SUM(b.sent_count), 0) FROM batches_batch b
                         WHERE b.tenant_id = t.id
                         AND strftime('%Y-%m', b.completed_at) = strftime('%Y-%m', 'now')) AS new_value
                     FROM tenants_tenant t",
                )
                .fetch_all(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE tenants_tenant SET emails_sent_this_month = (
                        SELECT COALESCE(SUM(b.sent_count), 0) FROM batches_batch b
                        WHERE b.tenant_id = tenants_tenant.id
                        AND strftime('%Y-%m', b.completed_at) = strftime('%Y-%m', 'now'))",
                )
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                rows
            }
        };
        let mut changed: Vec<UsageChange> = rows
            .into_iter()
            .filter(|r| r.old_value != r.new_value)
            .collect();
        changed.sort_by_key(|r| r.tenant_id);
        Ok(changed)
    }
}

/// A tenant whose usage counter `recount_usage` changed.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct UsageChange {
    pub tenant_id: i32,
    pub domain: String,
    pub old_value: i32,
    pub new_value: i32,
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn percent_rounds_half_away_from_zero_like_numeric_round() {
        assert_eq!(percent(1, 3), Some(33.33));
        assert_eq!(percent(2, 3), Some(66.67));
        assert_eq!(percent(1, 32), Some(3.13)); // 3.125
        assert_eq!(percent(5, 5), Some(100.0));
        assert_eq!(percent(0, 7), Some(0.0));
        assert_eq!(percent(1, 0), None);
    }
}
