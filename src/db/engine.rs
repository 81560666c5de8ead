//! The sending engine's queries over `logs_emaillog` (the durable queue), `batches_batch`
//! and the tenant's monthly quota. Every multi-row step is one statement or one
//! transaction, so several workers (on Postgres) can share the queue.

use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use super::batches::{TransitionExtra, requeue_failed};
use super::{Actor, Backend, Batch, DbError, DbResult, Store, TenantScope, now, on_pool};
use crate::domain::BatchStatus;

/// A recipient claimed for sending (status `sending`, leased to one claim).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ClaimedRow {
    pub id: i32,
    pub recipient_email: String,
    pub recipient_name: Option<String>,
    pub attempts: i32,
    pub variables: Option<Json<Value>>,
}

/// What one claim got.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Rows leased under `token` (possibly none: nothing due right now).
    Rows {
        token: String,
        rows: Vec<ClaimedRow>,
    },
    /// The tenant has no monthly quota left.
    QuotaExhausted,
}

/// The result of sending to one claimed row.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Sent {
        smtp_response: String,
        message_id: Option<String>,
    },
    /// Permanent refusal of the recipient (5xx at RCPT).
    Rejected {
        error: String,
        smtp_response: Option<String>,
        message_id: Option<String>,
    },
    /// Permanent failure: other 5xx, a message that cannot be built, retries used up.
    Failed {
        error: String,
        smtp_response: Option<String>,
        message_id: Option<String>,
    },
    /// Temporary failure: back to pending, due again at `next_attempt_at`.
    Retry {
        error: String,
        smtp_response: Option<String>,
        next_attempt_at: chrono::NaiveDateTime,
    },
    /// Not attempted (the batch was paused or cancelled meanwhile): back to pending, the
    /// attempt does not count.
    Released,
}

impl Outcome {
    pub fn is_sent(&self) -> bool {
        matches!(self, Outcome::Sent { .. })
    }
    pub fn is_final_failure(&self) -> bool {
        matches!(self, Outcome::Rejected { .. } | Outcome::Failed { .. })
    }
}

/// One result to write: which row, under which claim.
#[derive(Debug, Clone, PartialEq)]
pub struct RowResult {
    pub id: i32,
    pub token: String,
    pub outcome: Outcome,
}

/// What `write_results` changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounts {
    pub sent: i64,
    pub failed: i64,
    pub retried: i64,
    pub released: i64,
}

/// Queue counts of one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueCounts {
    pub pending: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
    pub rejected: i64,
    pub bounced: i64,
}

impl QueueCounts {
    /// Rows the engine still has to deal with.
    pub fn open(&self) -> i64 {
        self.pending + self.sending
    }
}

// `= ANY(ARRAY(...))`, not `IN (...)`: with statistics the planner turned `IN` into a hash
// join over a sequential scan of the whole table, for every claim. The claimed rows come
// back from the UPDATE itself: a second query for them walked the index entries of every
// row version marked `sending` so far.
const CLAIM_PG: &str = "WITH c AS (
    UPDATE logs_emaillog SET status = 'sending', lease_owner = $2, lease_expires_at = $3,
        attempts = COALESCE(attempts, 0) + 1, updated_at = $4
    WHERE id = ANY(ARRAY(SELECT id FROM logs_emaillog
                 WHERE batch_id = $1 AND status = 'pending' AND id > $6
                   AND (next_attempt_at IS NULL OR next_attempt_at <= $4)
                 ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED))
    RETURNING id, recipient_email, recipient_name, attempts, contact_id)
    SELECT c.id, c.recipient_email, c.recipient_name, COALESCE(c.attempts, 0) AS attempts,
        ge.variables
    FROM c LEFT JOIN tenants_groupemail ge ON ge.id = c.contact_id ORDER BY c.id";

// SQLite has a single writer: the claim transaction already excludes every other claimer.
const CLAIM_SQLITE: &str =
    "UPDATE logs_emaillog SET status = 'sending', lease_owner = $2, lease_expires_at = $3,
        attempts = COALESCE(attempts, 0) + 1, updated_at = $4
    WHERE id IN (SELECT id FROM logs_emaillog
                 WHERE batch_id = $1 AND status = 'pending' AND id > $6
                   AND (next_attempt_at IS NULL OR next_attempt_at <= $4)
                 ORDER BY id LIMIT $5)";

/// The rows a SQLite claim leased (`$1` batch, `$2` claim token), as one JSON value: sqlx
/// hands rows from its SQLite thread to the runtime one at a time, a thread switch each.
const CLAIMED_ROWS_SQLITE: &str =
    "SELECT json_group_array(json_array(id, recipient_email, recipient_name, attempts, variables))
    FROM (SELECT l.id, l.recipient_email, l.recipient_name, COALESCE(l.attempts, 0) AS attempts,
            ge.variables
        FROM logs_emaillog l LEFT JOIN tenants_groupemail ge ON ge.id = l.contact_id
        WHERE l.batch_id = $1 AND l.status = 'sending' AND l.lease_owner = $2 ORDER BY l.id)";

/// The rows of `CLAIMED_ROWS_SQLITE`. Variables that are not JSON count as none (the
/// template then names what is missing) rather than failing the whole claim.
fn claimed_rows_from_json(json: &str) -> Result<Vec<ClaimedRow>, DbError> {
    type Row = (i32, String, Option<String>, i32, Option<String>);
    let rows: Vec<Row> =
        serde_json::from_str(json).map_err(|e| DbError::Invalid(format!("claimed rows: {e}")))?;
    Ok(rows
        .into_iter()
        .map(
            |(id, recipient_email, recipient_name, attempts, variables)| {
                let variables = variables.and_then(|v| match serde_json::from_str(&v) {
                    Ok(v) => Some(Json(v)),
                    Err(e) => {
                        tracing::warn!(id, error = %e, "contact variables are not JSON; ignored");
                        None
                    }
                });
                ClaimedRow {
                    id,
                    recipient_email,
                    recipient_name,
                    attempts,
                    variables,
                }
            },
        )
        .collect())
}

/// Queued rows from which `start_batch` refreshes the Postgres planner's statistics.
const ANALYZE_AFTER_QUEUED: u64 = 10_000;

const QUOTA_LEFT: &str = "SELECT CAST(COALESCE(monthly_email_limit, 1000) - COALESCE(emails_sent_this_month, 0) AS BIGINT)
    FROM tenants_tenant WHERE id = $1";

const RESERVE: &str = "UPDATE tenants_tenant SET emails_sent_this_month = COALESCE(emails_sent_this_month, 0) + $2
    WHERE id = $1 AND COALESCE(emails_sent_this_month, 0) + $2 <= COALESCE(monthly_email_limit, 1000)";

/// Messages of a tenant sent in the last hour ($2 = an hour ago) or in flight.
const HOUR_USED: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM logs_emaillog
    WHERE batch_id IN (SELECT id FROM batches_batch WHERE tenant_id = $1)
      AND ((status = 'sending') OR (status IN ('sent', 'bounced') AND sent_at > $2))";

const RELEASE: &str = "UPDATE tenants_tenant SET emails_sent_this_month =
        CASE WHEN COALESCE(emails_sent_this_month, 0) - $2 < 0 THEN 0
             ELSE COALESCE(emails_sent_this_month, 0) - $2 END
    WHERE id = $1";

impl Store {
    /// The tenant scope of a batch, for the system actor (CLI, workers): batch ids are global.
    /// An actor of another tenant gets the answer for a batch that does not exist, so ids
    /// cannot be probed.
    pub async fn batch_scope(&self, actor: &Actor, batch_id: i32) -> DbResult<TenantScope> {
        let tenant: Option<i32> = on_pool!(self, p => {
            sqlx::query_scalar("SELECT tenant_id FROM batches_batch WHERE id = $1")
                .bind(batch_id)
                .fetch_optional(p)
                .await?
        });
        let missing = || DbError::NotFound(format!("batch #{batch_id}"));
        let tenant = tenant.ok_or_else(missing)?;
        actor.tenant_scope(tenant).map_err(|_| missing())
    }

    /// draft/scheduled -> running and the recipients queued, in one transaction. Returns the
    /// batch and how many rows were queued.
    pub async fn start_batch(&self, scope: TenantScope, id: i32) -> DbResult<(Batch, u64)> {
        let started = self
            .transition_with(
                scope,
                id,
                BatchStatus::Running,
                None,
                TransitionExtra::Materialize,
            )
            .await?;
        if started.1 >= ANALYZE_AFTER_QUEUED {
            self.analyze_queue().await;
        }
        Ok(started)
    }

    /// Postgres: fresh statistics for `logs_emaillog` after a large batch was queued. Without
    /// them the planner takes the new rows for a handful and answers every claim by sorting
    /// all of the batch's pending rows (a 100,000-row batch sent 20 % slower). Autovacuum
    /// would only get there a minute or more later. Best effort: a role that does not own
    /// the table (a database set up by the web app) gets a warning from Postgres and the
    /// planner's old statistics; a lock held by a long VACUUM is not waited for.
    async fn analyze_queue(&self) {
        let Some(pg) = self.pg_pool() else {
            return;
        };
        let analyzed = async {
            let mut tx = pg.begin().await?;
            sqlx::query("SET LOCAL lock_timeout = '2s'")
                .execute(&mut *tx)
                .await?;
            sqlx::query("ANALYZE logs_emaillog")
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        };
        if let Err(e) = analyzed.await {
            tracing::warn!(error = %e, "ANALYZE logs_emaillog after queueing a batch failed");
        }
    }

    /// Queues the batch's recipients again (idempotent): only addresses not queued yet.
    pub async fn materialize_batch(&self, scope: TenantScope, id: i32) -> DbResult<u64> {
        self.get_batch(scope, id).await?;
        Ok(on_pool!(self, p => {
            sqlx::query(crate::engine::materialize::MATERIALIZE_SQL)
                .bind(id)
                .bind(now())
                .bind(scope.tenant_id())
                .execute(p)
                .await?
                .rows_affected()
        }))
    }

    pub async fn pause_batch(
        &self,
        scope: TenantScope,
        id: i32,
        reason: Option<&str>,
    ) -> DbResult<Batch> {
        self.transition_batch(scope, id, BatchStatus::Paused, reason)
            .await
    }

    pub async fn resume_batch(&self, scope: TenantScope, id: i32) -> DbResult<Batch> {
        self.transition_batch(scope, id, BatchStatus::Running, None)
            .await
    }

    /// Cancels the batch. Rows not sent yet stay `pending` (never sent: a cancelled batch is
    /// never claimed again); rows in flight finish and are recorded.
    pub async fn cancel_batch(&self, scope: TenantScope, id: i32) -> DbResult<Batch> {
        self.transition_batch(scope, id, BatchStatus::Cancelled, None)
            .await
    }

    /// Failed and rejected rows back to `pending` and the batch (back) to running. Returns the
    /// batch and the number of rows queued again.
    pub async fn retry_failed(&self, scope: TenantScope, id: i32) -> DbResult<(Batch, u64)> {
        let batch = self.get_batch(scope, id).await?;
        if batch.batch_status() == Ok(BatchStatus::Running) {
            let ts = now();
            let n: u64 = on_pool!(self, p => {
                let mut tx = p.begin().await?;
                let n = requeue_failed(&mut tx, scope.tenant_id(), id, ts).await?;
                sqlx::query(
                    "INSERT INTO logs_batchexecutionlog (batch_id, action, message, details, created_at)
                     VALUES ($1, 'retry_failed', $2, $3, $4)",
                )
                .bind(id)
                .bind(format!("{n} failed/rejected recipients queued again"))
                .bind(Json(serde_json::json!({"count": n})))
                .bind(ts)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                n
            });
            return Ok((self.get_batch(scope, id).await?, n));
        }
        self.transition_with(
            scope,
            id,
            BatchStatus::Running,
            Some("retry failed recipients"),
            TransitionExtra::RetryFailed,
        )
        .await
    }

    /// Per-status counts of a batch's queue.
    pub async fn queue_counts(&self, scope: TenantScope, id: i32) -> DbResult<QueueCounts> {
        let rows = self.email_log_counts(scope, id).await?;
        let mut c = QueueCounts::default();
        for (status, n) in rows {
            match status.as_str() {
                "pending" => c.pending = n,
                "sending" => c.sending = n,
                "sent" => c.sent = n,
                "failed" => c.failed = n,
                "rejected" => c.rejected = n,
                "bounced" => c.bounced = n,
                _ => {}
            }
        }
        Ok(c)
    }

    /// Running batches of every tenant: `(batch id, tenant id)`.
    pub async fn running_batches(&self) -> DbResult<Vec<(i32, i32)>> {
        Ok(on_pool!(self, p => {
            sqlx::query_as("SELECT id, tenant_id FROM batches_batch WHERE status = 'running' ORDER BY id")
                .fetch_all(p)
                .await?
        }))
    }

    /// Scheduled batches whose time has come: `(batch id, tenant id)`.
    pub async fn due_scheduled_batches(&self) -> DbResult<Vec<(i32, i32)>> {
        Ok(on_pool!(self, p => {
            sqlx::query_as(
                "SELECT id, tenant_id FROM batches_batch
                 WHERE status = 'scheduled' AND scheduled_at IS NOT NULL AND scheduled_at <= $1 ORDER BY id",
            )
            .bind(now())
            .fetch_all(p)
            .await?
        }))
    }

    /// When the next scheduled batch is due (the engine sleeps until then, not a whole poll).
    pub async fn next_scheduled_at(&self) -> DbResult<Option<chrono::NaiveDateTime>> {
        Ok(on_pool!(self, p => {
            sqlx::query_scalar(
                "SELECT scheduled_at FROM batches_batch
                 WHERE status = 'scheduled' AND scheduled_at IS NOT NULL ORDER BY scheduled_at LIMIT 1",
            )
            .fetch_optional(p)
            .await?
        }))
    }

    /// Crash recovery: rows whose lease expired go back to `pending`, and the monthly quota
    /// their dead claim reserved is given back to their tenants. Returns how many rows.
    pub async fn requeue_expired_leases(&self) -> DbResult<u64> {
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let batches: Vec<i32> = sqlx::query_scalar(
                "UPDATE logs_emaillog SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                    updated_at = $1
                 WHERE status = 'sending' AND lease_expires_at IS NOT NULL AND lease_expires_at < $1
                 RETURNING batch_id",
            )
            .bind(now())
            .fetch_all(&mut *tx)
            .await?;
            let mut per_batch: std::collections::BTreeMap<i32, i64> = Default::default();
            for b in &batches {
                *per_batch.entry(*b).or_default() += 1;
            }
            for (batch, n) in per_batch {
                sqlx::query(
                    "UPDATE tenants_tenant SET emails_sent_this_month =
                        CASE WHEN COALESCE(emails_sent_this_month, 0) - $2 < 0 THEN 0
                             ELSE COALESCE(emails_sent_this_month, 0) - $2 END
                     WHERE id = (SELECT tenant_id FROM batches_batch WHERE id = $1)",
                )
                .bind(batch)
                .bind(n)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(u64::try_from(batches.len()).unwrap_or(u64::MAX))
        })
    }

    /// Extends the lease of the rows of `batch_id` still held by the claims `tokens` (the
    /// claims a live runner has in flight), so the lease only has to outlast a crash, not
    /// the slowest send. Claims the runner lost track of (a commit whose reply never came)
    /// are not renewed and come back after their lease.
    pub async fn renew_leases(
        &self,
        batch_id: i32,
        tokens: &[String],
        lease: std::time::Duration,
    ) -> DbResult<u64> {
        let expires =
            now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
        // Postgres: rows the writer is updating right now are skipped (they are leaving
        // `sending`), so renewal never deadlocks with the writer.
        let sql = match self.backend() {
            Backend::Postgres => {
                "UPDATE logs_emaillog SET lease_expires_at = $3
                 WHERE id IN (SELECT id FROM logs_emaillog
                              WHERE batch_id = $1 AND status = 'sending' AND lease_owner = $2
                              FOR UPDATE SKIP LOCKED)"
            }
            Backend::Sqlite => {
                "UPDATE logs_emaillog SET lease_expires_at = $3
                 WHERE batch_id = $1 AND status = 'sending' AND lease_owner = $2"
            }
        };
        let mut n = 0;
        for token in tokens {
            n += on_pool!(self, p => {
                sqlx::query(sql)
                .bind(batch_id)
                .bind(token)
                .bind(expires)
                .execute(p)
                .await?
                .rows_affected()
            });
        }
        Ok(n)
    }

    /// Claims up to `limit` due rows of a batch for `lease` under a fresh `token`, reserving
    /// the tenant's monthly quota for them in the same transaction (what is not claimed is
    /// released at once). Postgres: `FOR UPDATE SKIP LOCKED`, so workers never share a row.
    pub async fn claim(
        &self,
        scope: TenantScope,
        batch_id: i32,
        token: &str,
        limit: i64,
        lease: std::time::Duration,
    ) -> DbResult<Claim> {
        self.claim_limited(scope, batch_id, token, limit, lease, None, 0)
            .await
    }

    /// `claim` that also honours the SMTP account's per-hour limit: messages sent by the
    /// tenant in the last 60 minutes plus those in flight never exceed `per_hour`. The count
    /// runs after the tenant row is locked, so racing workers see each other's claims.
    ///
    /// Only rows with an id above `after` are claimed: a runner passes the last id it
    /// claimed, so each claim starts where the previous one ended instead of walking again
    /// over every row version claimed before it (on Postgres those stay in the index until
    /// vacuum, which made a batch's claims quadratic). Rows left behind (retries) are
    /// found when the runner starts from 0 again.
    // One argument per part of a claim; a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_limited(
        &self,
        scope: TenantScope,
        batch_id: i32,
        token: &str,
        limit: i64,
        lease: std::time::Duration,
        per_hour: Option<u32>,
        after: i32,
    ) -> DbResult<Claim> {
        self.ensure_batch_in_scope(scope, batch_id).await?;
        let ts = now();
        let expires =
            ts + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
        let sqlite = self.backend() == Backend::Sqlite;
        let tenant = scope.tenant_id();
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            // A write first, so SQLite takes its write lock before reading the quota.
            sqlx::query("UPDATE tenants_tenant SET emails_sent_this_month = COALESCE(emails_sent_this_month, 0) WHERE id = $1")
                .bind(tenant)
                .execute(&mut *tx)
                .await?;
            let left: Option<i64> = sqlx::query_scalar(QUOTA_LEFT)
                .bind(tenant)
                .fetch_optional(&mut *tx)
                .await?;
            let left = left.ok_or_else(|| DbError::NotFound(format!("tenant #{tenant}")))?;
            let mut k = limit.min(left);
            if let Some(per_hour) = per_hour.filter(|_| k > 0) {
                let used: i64 = sqlx::query_scalar(HOUR_USED)
                    .bind(tenant)
                    .bind(ts - chrono::Duration::hours(1))
                    .fetch_one(&mut *tx)
                    .await?;
                k = k.min(i64::from(per_hour) - used);
                if k <= 0 {
                    tx.rollback().await?;
                    return Ok(Claim::Rows { token: token.to_string(), rows: Vec::new() });
                }
            }
            if k <= 0 {
                tx.rollback().await?;
                return Ok(Claim::QuotaExhausted);
            }
            let reserved = sqlx::query(RESERVE)
                .bind(tenant)
                .bind(k)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if reserved == 0 {
                tx.rollback().await?;
                return Ok(Claim::Rows { token: token.to_string(), rows: Vec::new() });
            }
            // Both backends' claim statements take the same six parameters.
            macro_rules! claim_params {
                ($q:expr) => {
                    $q.bind(batch_id).bind(token).bind(expires).bind(ts).bind(k).bind(after)
                };
            }
            let rows: Vec<ClaimedRow> = if sqlite {
                let n = claim_params!(sqlx::query(CLAIM_SQLITE))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 0 {
                    Vec::new()
                } else {
                    let json: Option<String> = sqlx::query_scalar(CLAIMED_ROWS_SQLITE)
                        .bind(batch_id)
                        .bind(token)
                        .fetch_one(&mut *tx)
                        .await?;
                    claimed_rows_from_json(json.as_deref().unwrap_or("[]"))?
                }
            } else {
                claim_params!(sqlx::query_as(CLAIM_PG))
                    .fetch_all(&mut *tx)
                    .await?
            };
            let n = i64::try_from(rows.len()).unwrap_or(k);
            if n < k {
                sqlx::query(RELEASE).bind(tenant).bind(k - n).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(Claim::Rows { token: token.to_string(), rows })
        })
    }

    /// Writes a set of results in one transaction: the rows (only while still leased to
    /// their claim), the batch's sent/failed counts, and the quota of every row that was not
    /// sent given back.
    pub async fn write_results(
        &self,
        scope: TenantScope,
        batch_id: i32,
        results: &[RowResult],
    ) -> DbResult<WriteCounts> {
        self.ensure_batch_in_scope(scope, batch_id).await?;
        if let Some(pg) = self.pg_pool() {
            return write_results_pg(pg, scope, batch_id, results).await;
        }
        let Some(pool) = self.sqlite_pool() else {
            return Err(DbError::Invalid("no database pool".into()));
        };
        write_results_sqlite(pool, scope, batch_id, results).await
    }
}

/// What one result writes: the row's new status, how it counts, its texts.
struct RowWrite<'a> {
    status: &'static str,
    kind: &'static str,
    error: Option<&'a str>,
    response: Option<&'a str>,
    message_id: Option<&'a str>,
    next_at: Option<chrono::NaiveDateTime>,
    /// 1 when the attempt does not count (released untried).
    back: i32,
}

impl<'a> RowWrite<'a> {
    fn of(outcome: &'a Outcome, ts: chrono::NaiveDateTime) -> RowWrite<'a> {
        let w = |status, kind, error: Option<&'a String>, response: Option<&'a String>| RowWrite {
            status,
            kind,
            error: error.map(String::as_str),
            response: response.map(String::as_str),
            message_id: None,
            next_at: None,
            back: 0,
        };
        match outcome {
            Outcome::Sent {
                smtp_response,
                message_id,
            } => RowWrite {
                message_id: message_id.as_deref(),
                ..w("sent", "sent", None, Some(smtp_response))
            },
            Outcome::Rejected {
                error,
                smtp_response,
                message_id,
            } => RowWrite {
                message_id: message_id.as_deref(),
                ..w("rejected", "failed", Some(error), smtp_response.as_ref())
            },
            Outcome::Failed {
                error,
                smtp_response,
                message_id,
            } => RowWrite {
                message_id: message_id.as_deref(),
                ..w("failed", "failed", Some(error), smtp_response.as_ref())
            },
            Outcome::Retry {
                error,
                smtp_response,
                next_attempt_at,
            } => RowWrite {
                next_at: Some(*next_attempt_at),
                ..w("pending", "retried", Some(error), smtp_response.as_ref())
            },
            Outcome::Released => RowWrite {
                next_at: Some(ts),
                back: 1,
                ..w("pending", "released", None, None)
            },
        }
    }
}

impl WriteCounts {
    fn add(&mut self, kind: &str) {
        self.add_n(kind, 1);
    }

    fn add_n(&mut self, kind: &str, n: i64) {
        match kind {
            "sent" => self.sent += n,
            "failed" => self.failed += n,
            "retried" => self.retried += n,
            _ => self.released += n,
        }
    }
}

/// The rest of a result write, in its transaction: the batch's sent/failed counts and the
/// quota of every row that was not sent given back.
async fn finish_write<DB>(
    tx: &mut sqlx::Transaction<'_, DB>,
    scope: TenantScope,
    batch_id: i32,
    ts: chrono::NaiveDateTime,
    c: &WriteCounts,
) -> Result<(), sqlx::Error>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> i32: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> chrono::NaiveDateTime: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'a> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    if c.sent > 0 || c.failed > 0 {
        sqlx::query(
            "UPDATE batches_batch SET sent_count = COALESCE(sent_count, 0) + $2,
                failed_count = COALESCE(failed_count, 0) + $3, updated_at = $4 WHERE id = $1",
        )
        .bind(batch_id)
        .bind(c.sent)
        .bind(c.failed)
        .bind(ts)
        .execute(&mut **tx)
        .await?;
    }
    let unsent = c.failed + c.retried + c.released;
    if unsent > 0 {
        sqlx::query(RELEASE)
            .bind(scope.tenant_id())
            .bind(unsent)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Rows per SQLite result statement: 8 parameters each, far below SQLite's limit.
const WRITE_ROWS_PER_STATEMENT: usize = 256;

/// `UPDATE ... FROM (VALUES ...)` for `rows` results, 8 parameters per row, then the time
/// twice. Bound values rather than one JSON document: `json_each` turned every field
/// access into a parse of the row's JSON text, a quarter of the engine's SQLite time.
/// Nameless `?` placeholders: sqlx looks every numbered one up by name, a linear search
/// each. No RETURNING: sqlx hands each returned row from its SQLite thread to the runtime
/// one at a time, a thread switch per row. The unary `+` leave the rowid of `l` as the
/// only usable join key: from 256 rows on, SQLite 3.51 otherwise scanned the whole table
/// and probed an automatic index on `v.token` instead, once per flush.
fn sqlite_write_sql(rows: usize) -> String {
    let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; rows].join(", ");
    format!(
        "WITH v(id, token, status, error, response, mid, next, back) AS (VALUES {values})
         UPDATE logs_emaillog AS l SET status = v.status,
            error_message = CASE WHEN v.status = 'sent' THEN NULL ELSE COALESCE(v.error, l.error_message) END,
            smtp_response = COALESCE(v.response, l.smtp_response),
            message_id = COALESCE(v.mid, l.message_id),
            sent_at = CASE WHEN v.status = 'sent' THEN ? ELSE l.sent_at END,
            next_attempt_at = COALESCE(v.next, l.next_attempt_at),
            attempts = COALESCE(l.attempts, 0) - v.back,
            lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
         FROM v
         WHERE l.id = +v.id AND +l.status = 'sending' AND +l.lease_owner = +v.token"
    )
}

/// SQLite: a set of results in one transaction, in as few statements as the parameter
/// limit allows.
async fn write_results_sqlite(
    pool: &sqlx::SqlitePool,
    scope: TenantScope,
    batch_id: i32,
    results: &[RowResult],
) -> DbResult<WriteCounts> {
    let ts = now();
    let writes: Vec<RowWrite<'_>> = results
        .iter()
        .map(|r| RowWrite::of(&r.outcome, ts))
        .collect();
    let mut tx = pool.begin().await?;
    // Attempt history (issue 7): one INSERT for the batch's retries, none otherwise.
    super::attempts::record_attempts(&mut tx, scope.tenant_id(), ts, results).await?;
    let mut written = 0;
    for (rows, ws) in results
        .chunks(WRITE_ROWS_PER_STATEMENT)
        .zip(writes.chunks(WRITE_ROWS_PER_STATEMENT))
    {
        // Padded to a power of two with rows that match nothing (id NULL), so a handful of
        // prepared statements serve every flush size. Only placeholders vary: no value is
        // ever part of the text.
        let size = rows.len().next_power_of_two();
        let sql = sqlx::AssertSqlSafe(sqlite_write_sql(size));
        let mut q = sqlx::query(sql);
        for (r, w) in rows.iter().zip(ws) {
            q = q
                .bind(r.id)
                .bind(&r.token)
                .bind(w.status)
                .bind(w.error)
                .bind(w.response)
                .bind(w.message_id)
                .bind(w.next_at)
                .bind(w.back);
        }
        for _ in rows.len()..size {
            for _ in 0..8 {
                q = q.bind(None::<i32>);
            }
        }
        written += q.bind(ts).bind(ts).execute(&mut *tx).await?.rows_affected();
    }
    // Only rows still leased to their claim were written; the others were given back (and
    // their quota with them) by crash recovery: nothing to count.
    let mut c = WriteCounts::default();
    if usize::try_from(written).is_ok_and(|w| w == results.len()) {
        for w in &writes {
            c.add(w.kind);
        }
    } else if written > 0 {
        // Some leases were lost: the rows this statement wrote are those carrying its
        // timestamp without a lease (SQLite has one writer: nobody else wrote meanwhile).
        let ids: Vec<i32> = results.iter().map(|r| r.id).collect();
        let done: std::collections::HashSet<i32> = sqlx::query_scalar(
            "SELECT id FROM logs_emaillog
             WHERE id IN (SELECT value FROM json_each($1))
               AND updated_at = $2 AND lease_owner IS NULL",
        )
        .bind(Json(ids))
        .bind(ts)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        for (r, w) in results.iter().zip(&writes) {
            if done.contains(&r.id) {
                c.add(w.kind);
            }
        }
    }
    finish_write(&mut tx, scope, batch_id, ts, &c).await?;
    tx.commit().await?;
    Ok(c)
}

/// Postgres: the whole set in one `UPDATE ... FROM UNNEST(...)` instead of a statement per
/// row (one round trip per flush).
async fn write_results_pg(
    pool: &sqlx::PgPool,
    scope: TenantScope,
    batch_id: i32,
    results: &[RowResult],
) -> DbResult<WriteCounts> {
    let ts = now();
    let n = results.len();
    let mut ids = Vec::with_capacity(n);
    let mut tokens = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut errors: Vec<Option<String>> = Vec::with_capacity(n);
    let mut responses: Vec<Option<String>> = Vec::with_capacity(n);
    let mut message_ids: Vec<Option<String>> = Vec::with_capacity(n);
    let mut next_at: Vec<Option<chrono::NaiveDateTime>> = Vec::with_capacity(n);
    let mut back: Vec<i32> = Vec::with_capacity(n);
    let mut kinds: Vec<String> = Vec::with_capacity(n);
    for r in results {
        let w = RowWrite::of(&r.outcome, ts);
        ids.push(r.id);
        tokens.push(r.token.clone());
        statuses.push(w.status.to_string());
        kinds.push(w.kind.to_string());
        errors.push(w.error.map(str::to_string));
        responses.push(w.response.map(str::to_string));
        message_ids.push(w.message_id.map(str::to_string));
        next_at.push(w.next_at);
        back.push(w.back);
    }
    let mut tx = pool.begin().await?;
    // Attempt history (issue 7): one INSERT for the batch's retries, none otherwise.
    super::attempts::record_attempts(&mut tx, scope.tenant_id(), ts, results).await?;
    // `status || ''`: the rows are found by id. On the status index the planner walked every
    // row version still marked `sending` (all of a batch's rows, until vacuum), each flush.
    // The kinds come back counted, not one row per result for sqlx to decode.
    let done: Vec<(String, i64)> = sqlx::query_as(
        "WITH u AS (UPDATE logs_emaillog l SET status = v.status,
            error_message = CASE WHEN v.status = 'sent' THEN NULL ELSE COALESCE(v.error, l.error_message) END,
            smtp_response = COALESCE(v.response, l.smtp_response),
            message_id = COALESCE(v.message_id, l.message_id),
            sent_at = CASE WHEN v.status = 'sent' THEN $10 ELSE l.sent_at END,
            next_attempt_at = COALESCE(v.next_at, l.next_attempt_at),
            attempts = COALESCE(l.attempts, 0) - v.back,
            lease_owner = NULL, lease_expires_at = NULL, updated_at = $10
         FROM UNNEST($1::int4[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::timestamp[], $8::int4[], $9::text[])
              AS v(id, token, status, error, response, message_id, next_at, back, kind)
         WHERE l.id = v.id AND l.status || '' = 'sending' AND l.lease_owner = v.token
         RETURNING v.kind)
         SELECT kind, COUNT(*) FROM u GROUP BY kind",
    )
    .bind(&ids)
    .bind(&tokens)
    .bind(&statuses)
    .bind(&errors)
    .bind(&responses)
    .bind(&message_ids)
    .bind(&next_at)
    .bind(&back)
    .bind(&kinds)
    .bind(ts)
    .fetch_all(&mut *tx)
    .await?;
    // Only rows still leased to their claim were written; the others were given back (and
    // their quota with them) by crash recovery.
    let mut c = WriteCounts::default();
    for (kind, n) in &done {
        c.add_n(kind, *n);
    }
    finish_write(&mut tx, scope, batch_id, ts, &c).await?;
    tx.commit().await?;
    Ok(c)
}

impl Store {
    /// Refuses a batch id of another tenant: the claim and write paths address rows by
    /// batch and lease token, so the tenant is checked here once per call.
    async fn ensure_batch_in_scope(&self, scope: TenantScope, batch_id: i32) -> DbResult<()> {
        let found: Option<i32> = on_pool!(self, p => {
            sqlx::query_scalar("SELECT id FROM batches_batch WHERE id = $1 AND tenant_id = $2")
                .bind(batch_id)
                .bind(scope.tenant_id())
                .fetch_optional(p)
                .await?
        });
        found
            .map(|_| ())
            .ok_or_else(|| DbError::NotFound(format!("batch #{batch_id}")))
    }
}
impl DbError {
    /// Errors that go away by themselves: the connection to the database was lost or could
    /// not be had (Postgres restarting, network cut, pool exhausted), SQLite busy or locked
    /// by another process, serialization failures and deadlocks. The engine waits and
    /// retries these; any other error (disk full, a constraint) pauses the batch.
    pub fn is_transient(&self) -> bool {
        let DbError::Sqlx(e) = self else {
            return matches!(self, DbError::Connect { .. });
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                // SQLite: 5 SQLITE_BUSY, 6 SQLITE_LOCKED (and their extended codes).
                // Postgres: 08xxx connection exceptions, 57P01-03 shutdown/cannot connect
                // now, 40001 serialization failure, 40P01 deadlock.
                code.starts_with("08")
                    || matches!(&*code, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
                    || sqlite_busy(&code)
            }
            _ => false,
        }
    }

    /// A one-line description for operators, naming the usual cause of transient errors.
    pub fn describe(&self) -> String {
        match self {
            DbError::Sqlx(sqlx::Error::Database(db))
                if sqlite_busy(&db.code().unwrap_or_default()) =>
            {
                format!(
                    "the SQLite database is locked by another process ({}); waiting and retrying",
                    db.message()
                )
            }
            e if e.is_transient() => {
                format!("database unavailable ({e}); reconnecting and retrying")
            }
            e => e.to_string(),
        }
    }
}

/// SQLite result codes (numeric, at most 4 digits, unlike Postgres' 5-character SQLSTATEs)
/// SQLITE_BUSY (5) and SQLITE_LOCKED (6), extended codes included.
fn sqlite_busy(code: &str) -> bool {
    code.len() <= 4
        && code
            .parse::<i64>()
            .is_ok_and(|c| c & 0xff == 5 || c & 0xff == 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SQLite result write finds each row by its rowid, whatever the flush size: a
    /// plan that scans `logs_emaillog` made every flush read the whole queue.
    #[tokio::test]
    async fn sqlite_result_write_looks_rows_up_by_rowid() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("plan.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let pool = store.sqlite_pool().unwrap();
        let mut size = 1;
        while size <= WRITE_ROWS_PER_STATEMENT {
            let sql = format!("EXPLAIN QUERY PLAN {}", sqlite_write_sql(size));
            let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(sql));
            for _ in 0..size * 8 + 2 {
                q = q.bind(None::<i32>);
            }
            let plan: Vec<String> = q
                .fetch_all(pool)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.3)
                .collect();
            assert!(
                plan.iter()
                    .any(|s| s == "SEARCH l USING INTEGER PRIMARY KEY (rowid=?)")
                    && !plan.iter().any(|s| s.starts_with("SCAN l")),
                "{size} rows: {plan:?}"
            );
            size *= 2;
        }
    }
}
