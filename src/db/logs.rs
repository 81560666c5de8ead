//! `logs_emaillog` (one row per recipient and batch: the engine's durable queue) and
//! `logs_batchexecutionlog` (what happened to a batch, and who did it). Both are reached
//! through a batch of the caller's tenant.

use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use super::{DbError, DbResult, Page, Store, TenantScope, keyset_sql, now, on_pool};
use crate::domain::EmailStatus;

/// A row of `logs_emaillog` with recalliq's engine columns.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct EmailLog {
    pub id: i32,
    pub batch_id: i32,
    pub recipient_email: String,
    pub recipient_name: Option<String>,
    pub status: String,
    pub sent_at: Option<chrono::NaiveDateTime>,
    pub error_message: Option<String>,
    pub smtp_response: Option<String>,
    pub created_at: Option<chrono::NaiveDateTime>,
    pub attempts: i32,
    pub next_attempt_at: Option<chrono::NaiveDateTime>,
    pub message_id: Option<String>,
}

/// A row of `logs_batchexecutionlog`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct ExecutionLog {
    pub id: i32,
    pub batch_id: i32,
    pub action: String,
    pub message: Option<String>,
    pub details: Option<Json<Value>>,
    pub created_at: Option<chrono::NaiveDateTime>,
}

/// Fields of a new email log row.
#[derive(Debug, Clone)]
pub struct NewEmailLog {
    pub recipient_email: String,
    pub recipient_name: Option<String>,
    pub status: EmailStatus,
    pub sent_at: Option<chrono::NaiveDateTime>,
    pub error_message: Option<String>,
    pub smtp_response: Option<String>,
}

macro_rules! email_log_cols {
    () => {
        "l.id, l.batch_id, l.recipient_email, l.recipient_name, l.status, l.sent_at, l.error_message,
         l.smtp_response, l.created_at, COALESCE(l.attempts, 0) AS attempts, l.next_attempt_at, l.message_id"
    };
}

impl Store {
    pub async fn add_email_log(
        &self,
        scope: TenantScope,
        batch_id: i32,
        new: &NewEmailLog,
    ) -> DbResult<EmailLog> {
        self.get_batch(scope, batch_id).await?;
        let email = crate::domain::normalize_email(&new.recipient_email)
            .map_err(|e| DbError::Invalid(e.to_string()))?;
        let name = new
            .recipient_name
            .as_deref()
            .map(crate::domain::clean_display_name);
        let id: i32 = on_pool!(self, p => {
            sqlx::query_scalar(
                "INSERT INTO logs_emaillog (batch_id, recipient_email, recipient_name, status, sent_at,
                    error_message, smtp_response, created_at, attempts)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0) RETURNING id",
            )
            .bind(batch_id)
            .bind(&email)
            .bind(&name)
            .bind(new.status.as_str())
            .bind(new.sent_at)
            .bind(&new.error_message)
            .bind(&new.smtp_response)
            .bind(now())
            .fetch_one(p)
            .await?
        });
        self.get_email_log(scope, id).await
    }

    pub async fn get_email_log(&self, scope: TenantScope, id: i32) -> DbResult<EmailLog> {
        let row: Option<EmailLog> = on_pool!(self, p => {
            sqlx::query_as(concat!(
                "SELECT ", email_log_cols!(), " FROM logs_emaillog l JOIN batches_batch b ON b.id = l.batch_id
                 WHERE l.id = $1 AND b.tenant_id = $2"
            ))
            .bind(id)
            .bind(scope.tenant_id())
            .fetch_optional(p)
            .await?
        });
        row.ok_or_else(|| DbError::NotFound(format!("email log #{id}")))
    }

    /// A batch's email logs, keyset-paginated, optionally of one status.
    pub async fn list_email_logs(
        &self,
        scope: TenantScope,
        batch_id: i32,
        page: Page,
        status: Option<EmailStatus>,
    ) -> DbResult<Vec<EmailLog>> {
        self.get_batch(scope, batch_id).await?;
        const SQL: [&str; 2] = keyset_sql!(
            "l",
            concat!(
                "SELECT ",
                email_log_cols!(),
                " FROM logs_emaillog l WHERE l.batch_id = $3
                 AND ($4 IS NULL OR l.status = $4)"
            )
        );
        let rows: Vec<EmailLog> = on_pool!(self, p => {
            sqlx::query_as(page.sql(SQL))
                .bind(page.cursor)
                .bind(page.limit)
                .bind(batch_id)
                .bind(status.map(|s| s.as_str()))
                .fetch_all(p)
                .await?
        });
        Ok(page.order(rows))
    }

    /// Per-status counts of a batch's email logs.
    pub async fn email_log_counts(
        &self,
        scope: TenantScope,
        batch_id: i32,
    ) -> DbResult<Vec<(String, i64)>> {
        self.get_batch(scope, batch_id).await?;
        Ok(on_pool!(self, p => {
            sqlx::query_as(
                "SELECT status, COUNT(*) FROM logs_emaillog WHERE batch_id = $1 GROUP BY status ORDER BY status",
            )
            .bind(batch_id)
            .fetch_all(p)
            .await?
        }))
    }

    /// Records an outcome for one email log row.
    pub async fn set_email_log_status(
        &self,
        scope: TenantScope,
        id: i32,
        status: EmailStatus,
        error_message: Option<&str>,
        smtp_response: Option<&str>,
    ) -> DbResult<EmailLog> {
        self.get_email_log(scope, id).await?;
        let sent_at = (status == EmailStatus::Sent).then(now);
        on_pool!(self, p => {
            sqlx::query(
                "UPDATE logs_emaillog SET status = $2, error_message = $3, smtp_response = $4,
                    sent_at = COALESCE($5, sent_at), updated_at = $6 WHERE id = $1",
            )
            .bind(id)
            .bind(status.as_str())
            .bind(error_message)
            .bind(smtp_response)
            .bind(sent_at)
            .bind(now())
            .execute(p)
            .await?;
        });
        self.get_email_log(scope, id).await
    }

    pub async fn add_execution_log(
        &self,
        scope: TenantScope,
        batch_id: i32,
        action: &str,
        message: Option<&str>,
        details: Option<Value>,
    ) -> DbResult<ExecutionLog> {
        self.get_batch(scope, batch_id).await?;
        let action = super::tenants::required("action", action, 50)?;
        let id: i32 = on_pool!(self, p => {
            sqlx::query_scalar(
                "INSERT INTO logs_batchexecutionlog (batch_id, action, message, details, created_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(batch_id)
            .bind(&action)
            .bind(message)
            .bind(details.map(Json))
            .bind(now())
            .fetch_one(p)
            .await?
        });
        let row: ExecutionLog = on_pool!(self, p => {
            sqlx::query_as("SELECT id, batch_id, action, message, details, created_at FROM logs_batchexecutionlog WHERE id = $1")
                .bind(id)
                .fetch_one(p)
                .await?
        });
        Ok(row)
    }

    pub async fn list_execution_logs(
        &self,
        scope: TenantScope,
        batch_id: i32,
        page: Page,
    ) -> DbResult<Vec<ExecutionLog>> {
        self.get_batch(scope, batch_id).await?;
        const SQL: [&str; 2] = keyset_sql!(
            "x",
            "SELECT x.id, x.batch_id, x.action, x.message, x.details, x.created_at
             FROM logs_batchexecutionlog x WHERE x.batch_id = $3"
        );
        let rows: Vec<ExecutionLog> = on_pool!(self, p => {
            sqlx::query_as(page.sql(SQL))
                .bind(page.cursor)
                .bind(page.limit)
                .bind(batch_id)
                .fetch_all(p)
                .await?
        });
        Ok(page.order(rows))
    }
}
