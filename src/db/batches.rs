//! `batches_batch` and `batches_batchgroup`: campaigns and the groups they send to. Status
//! changes go through `BatchStatus::can_transition_to` and are written to the execution log
//! in the same transaction.

use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use super::tenants::required;
use super::{DbError, DbResult, Page, Store, TenantScope, keyset_sql, like_pattern, now, on_pool};
use crate::domain::BatchStatus;

/// A row of `batches_batch` (plus recalliq's `status_reason`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct Batch {
    pub id: i32,
    pub tenant_id: i32,
    pub template_id: i32,
    pub name: String,
    pub status: String,
    pub scheduled_at: Option<chrono::NaiveDateTime>,
    pub started_at: Option<chrono::NaiveDateTime>,
    pub completed_at: Option<chrono::NaiveDateTime>,
    pub sent_count: i32,
    pub failed_count: i32,
    pub variables: Option<Json<Value>>,
    pub created_at: Option<chrono::NaiveDateTime>,
    pub updated_at: Option<chrono::NaiveDateTime>,
    pub status_reason: Option<String>,
}

impl Batch {
    pub fn batch_status(&self) -> Result<BatchStatus, crate::domain::UnknownValue> {
        self.status.parse()
    }
}

/// A row of `batches_batchgroup`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct BatchGroup {
    pub id: i32,
    pub batch_id: i32,
    pub group_id: i32,
    pub created_at: Option<chrono::NaiveDateTime>,
}

/// Fields of a new batch (always created as a draft, or scheduled when `scheduled_at` is set).
#[derive(Debug, Clone, Default)]
pub struct NewBatch {
    pub name: String,
    pub template_id: i32,
    pub group_ids: Vec<i32>,
    pub variables: Option<Value>,
    pub scheduled_at: Option<chrono::NaiveDateTime>,
}

macro_rules! batch_cols {
    () => {
        "b.id, b.tenant_id, b.template_id, b.name, COALESCE(b.status, 'draft') AS status,
         b.scheduled_at, b.started_at, b.completed_at,
         COALESCE(b.sent_count, 0) AS sent_count, COALESCE(b.failed_count, 0) AS failed_count,
         b.variables, b.created_at, b.updated_at, b.status_reason"
    };
}

impl Store {
    /// Creates a batch with its groups in one transaction; template and groups must belong to
    /// the caller's tenant.
    pub async fn create_batch(&self, scope: TenantScope, new: &NewBatch) -> DbResult<Batch> {
        let name = required("batch name", &new.name, 200)?;
        if new.group_ids.is_empty() {
            return Err(DbError::Invalid("a batch needs at least one group".into()));
        }
        match &new.variables {
            None | Some(Value::Object(_)) => {}
            Some(_) => {
                return Err(DbError::Invalid(
                    "batch variables must be a JSON object".into(),
                ));
            }
        }
        self.get_template(scope, new.template_id).await?;
        let mut groups = new.group_ids.clone();
        groups.sort_unstable();
        groups.dedup();
        for g in &groups {
            self.get_group(scope, *g).await?;
        }
        let status = if new.scheduled_at.is_some() {
            BatchStatus::Scheduled
        } else {
            BatchStatus::Draft
        };
        let ts = now();
        let vars = new.variables.clone().map(Json);
        let id: i32 = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let id: i32 = sqlx::query_scalar(
                "INSERT INTO batches_batch (tenant_id, template_id, name, status, scheduled_at, sent_count,
                    failed_count, variables, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, 0, 0, $6, $7, $7) RETURNING id",
            )
            .bind(scope.tenant_id())
            .bind(new.template_id)
            .bind(&name)
            .bind(status.as_str())
            .bind(new.scheduled_at)
            .bind(&vars)
            .bind(ts)
            .fetch_one(&mut *tx)
            .await?;
            for g in &groups {
                sqlx::query("INSERT INTO batches_batchgroup (batch_id, group_id, created_at) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(*g)
                    .bind(ts)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO logs_batchexecutionlog (batch_id, action, message, created_at) VALUES ($1, 'created', $2, $3)",
            )
            .bind(id)
            .bind(format!("batch created as {status}"))
            .bind(ts)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            id
        });
        self.get_batch(scope, id).await
    }

    pub async fn get_batch(&self, scope: TenantScope, id: i32) -> DbResult<Batch> {
        let row: Option<Batch> = on_pool!(self, p => {
            sqlx::query_as(concat!("SELECT ", batch_cols!(), " FROM batches_batch b WHERE b.id = $1 AND b.tenant_id = $2"))
                .bind(id)
                .bind(scope.tenant_id())
                .fetch_optional(p)
                .await?
        });
        row.ok_or_else(|| DbError::NotFound(format!("batch #{id}")))
    }

    pub async fn list_batches(
        &self,
        scope: TenantScope,
        page: Page,
        search: Option<&str>,
    ) -> DbResult<Vec<Batch>> {
        const SQL: [&str; 2] = keyset_sql!(
            "b",
            concat!(
                "SELECT ", batch_cols!(), " FROM batches_batch b WHERE b.tenant_id = $3
                 AND ($4 IS NULL OR LOWER(b.name) LIKE $4 ESCAPE '\\' OR LOWER(COALESCE(b.status, 'draft')) LIKE $4 ESCAPE '\\')"
            )
        );
        let pattern = like_pattern(search);
        let rows: Vec<Batch> = on_pool!(self, p => {
            sqlx::query_as(page.sql(SQL))
                .bind(page.cursor)
                .bind(page.limit)
                .bind(scope.tenant_id())
                .bind(&pattern)
                .fetch_all(p)
                .await?
        });
        Ok(page.order(rows))
    }

    pub async fn count_batches(&self, scope: TenantScope) -> DbResult<i64> {
        Ok(on_pool!(self, p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM batches_batch WHERE tenant_id = $1")
                .bind(scope.tenant_id())
                .fetch_one(p)
                .await?
        }))
    }

    pub async fn batch_groups(
        &self,
        scope: TenantScope,
        batch_id: i32,
    ) -> DbResult<Vec<BatchGroup>> {
        self.get_batch(scope, batch_id).await?;
        Ok(on_pool!(self, p => {
            sqlx::query_as(
                "SELECT id, batch_id, group_id, created_at FROM batches_batchgroup WHERE batch_id = $1 ORDER BY id",
            )
            .bind(batch_id)
            .fetch_all(p)
            .await?
        }))
    }

    /// Changes a draft or scheduled batch's name, variables or schedule.
    pub async fn update_batch(
        &self,
        scope: TenantScope,
        id: i32,
        name: Option<&str>,
        variables: Option<Value>,
        scheduled_at: Option<chrono::NaiveDateTime>,
    ) -> DbResult<Batch> {
        let batch = self.get_batch(scope, id).await?;
        if !matches!(
            batch.batch_status(),
            Ok(BatchStatus::Draft | BatchStatus::Scheduled)
        ) {
            return Err(DbError::Invalid(format!(
                "batch #{id} is {} and can no longer be edited",
                batch.status
            )));
        }
        let name = name.map(|n| required("batch name", n, 200)).transpose()?;
        on_pool!(self, p => {
            sqlx::query(
                "UPDATE batches_batch SET name = COALESCE($3, name), variables = COALESCE($4, variables),
                    scheduled_at = COALESCE($5, scheduled_at), updated_at = $6 WHERE id = $1 AND tenant_id = $2",
            )
            .bind(id)
            .bind(scope.tenant_id())
            .bind(&name)
            .bind(variables.map(Json))
            .bind(scheduled_at)
            .bind(now())
            .execute(p)
            .await?;
        });
        self.get_batch(scope, id).await
    }

    /// Moves a batch to `next` if the state machine allows it from its current status,
    /// recording the transition (and `reason`) in `logs_batchexecutionlog` atomically. The
    /// update is conditional on the status read, so two racing callers cannot both win.
    pub async fn transition_batch(
        &self,
        scope: TenantScope,
        id: i32,
        next: BatchStatus,
        reason: Option<&str>,
    ) -> DbResult<Batch> {
        Ok(self
            .transition_with(scope, id, next, reason, TransitionExtra::None)
            .await?
            .0)
    }

    /// `transition_batch` plus an engine step in the same transaction; returns the batch and
    /// the number of email log rows the step touched.
    pub(crate) async fn transition_with(
        &self,
        scope: TenantScope,
        id: i32,
        next: BatchStatus,
        reason: Option<&str>,
        extra: TransitionExtra,
    ) -> DbResult<(Batch, u64)> {
        let batch = self.get_batch(scope, id).await?;
        let current: BatchStatus = batch
            .batch_status()
            .map_err(|e| DbError::Invalid(e.to_string()))?;
        if !current.can_transition_to(next) {
            return Err(DbError::Invalid(format!(
                "batch #{id} is {current}; it cannot become {next}"
            )));
        }
        let ts = now();
        let started = (next == BatchStatus::Running && batch.started_at.is_none()).then_some(ts);
        let completed = next.is_finished().then_some(ts);
        let message = match reason {
            Some(r) => format!("{current} -> {next}: {r}"),
            None => format!("{current} -> {next}"),
        };
        let touched: u64 = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "UPDATE batches_batch SET status = $3, status_reason = $4,
                    started_at = COALESCE($5, started_at), completed_at = $6, updated_at = $7
                 WHERE id = $1 AND tenant_id = $2 AND COALESCE(status, 'draft') = $8",
            )
            .bind(id)
            .bind(scope.tenant_id())
            .bind(next.as_str())
            .bind(reason)
            .bind(started)
            .bind(completed)
            .bind(ts)
            .bind(current.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(DbError::Conflict(format!(
                    "batch #{id} changed status meanwhile; reload and try again"
                )));
            }
            sqlx::query(
                "INSERT INTO logs_batchexecutionlog (batch_id, action, message, details, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(next.as_str())
            .bind(&message)
            .bind(Json(serde_json::json!({"from": current.as_str(), "to": next.as_str(), "reason": reason})))
            .bind(ts)
            .execute(&mut *tx)
            .await?;
            let touched = match extra {
                TransitionExtra::None => 0,
                TransitionExtra::Materialize => {
                    sqlx::query(crate::engine::materialize::MATERIALIZE_SQL)
                        .bind(id)
                        .bind(ts)
                        .bind(scope.tenant_id())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                }
                TransitionExtra::RetryFailed => {
                    requeue_failed(&mut tx, scope.tenant_id(), id, ts).await?
                }
            };
            if touched > 0 {
                let (action, what) = match extra {
                    TransitionExtra::Materialize => ("materialized", "recipients queued"),
                    _ => ("retry_failed", "failed/rejected recipients queued again"),
                };
                sqlx::query(
                    "INSERT INTO logs_batchexecutionlog (batch_id, action, message, details, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id)
                .bind(action)
                .bind(format!("{touched} {what}"))
                .bind(Json(serde_json::json!({"count": touched})))
                .bind(ts)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            touched
        });
        Ok((self.get_batch(scope, id).await?, touched))
    }
}

/// What `transition_with` does besides the status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransitionExtra {
    None,
    /// Queue the batch's recipients (`engine::materialize`).
    Materialize,
    /// Failed and rejected rows back to pending, uncounted from `failed_count`.
    RetryFailed,
}

/// A batch's failed and rejected rows back to `pending` inside `tx` (retry-failed, from a
/// running batch or as a transition): their failures archived in the attempt history first,
/// the batch's failed count lowered by as many. Returns the rows queued again.
pub(super) async fn requeue_failed<DB>(
    tx: &mut sqlx::Transaction<'_, DB>,
    tenant: i32,
    batch_id: i32,
    ts: chrono::NaiveDateTime,
) -> Result<u64, sqlx::Error>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> i32: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> chrono::NaiveDateTime: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'a> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    <DB as sqlx::Database>::QueryResult: RowsAffected,
{
    sqlx::query(super::attempts::ARCHIVE_BATCH_FAILED_SQL)
        .bind(tenant)
        .bind(ts)
        .bind(batch_id)
        .execute(&mut **tx)
        .await?;
    let n = sqlx::query(RETRY_FAILED_SQL)
        .bind(batch_id)
        .bind(ts)
        .execute(&mut **tx)
        .await?
        .affected();
    sqlx::query(UNCOUNT_FAILED_SQL)
        .bind(batch_id)
        .bind(i64::try_from(n).unwrap_or(i64::MAX))
        .execute(&mut **tx)
        .await?;
    Ok(n)
}

/// `rows_affected` of both backends' query results.
pub(super) trait RowsAffected {
    fn affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// `$1` batch, `$2` now.
const RETRY_FAILED_SQL: &str = "UPDATE logs_emaillog SET status = 'pending', attempts = 0,
        next_attempt_at = $2, lease_owner = NULL, lease_expires_at = NULL, updated_at = $2
    WHERE batch_id = $1 AND status IN ('failed', 'rejected')";

/// `$1` batch, `$2` rows taken back.
pub(crate) const UNCOUNT_FAILED_SQL: &str = "UPDATE batches_batch SET failed_count =
        CASE WHEN COALESCE(failed_count, 0) - $2 < 0 THEN 0 ELSE COALESCE(failed_count, 0) - $2 END
    WHERE id = $1";
