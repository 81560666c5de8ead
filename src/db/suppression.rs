//! `recalliq_suppression`: per-tenant addresses that are never sent to again. Addresses
//! compare case-insensitively; adding one that is already there keeps the first reason.

use serde::Serialize;

use super::{DbError, DbResult, Page, Store, TenantScope, keyset_sql, like_pattern, now, on_pool};
use crate::domain::normalize_email;

/// A row of `recalliq_suppression`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct Suppression {
    pub id: i32,
    pub tenant_id: i32,
    pub email: String,
    pub reason: String,
    pub note: Option<String>,
    pub source_batch_id: Option<i32>,
    pub created_at: chrono::NaiveDateTime,
}

/// Reasons the product itself writes; operators may use any short word.
pub const REASON_MANUAL: &str = "manual";
pub const REASON_UNSUBSCRIBED: &str = "unsubscribed";
pub const REASON_BOUNCED: &str = "bounced";
pub const REASON_IMPORT: &str = "import";

fn check_reason(reason: &str) -> DbResult<String> {
    let r = reason.trim().to_lowercase();
    if r.is_empty()
        || r.len() > 50
        || !r
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(DbError::Invalid(format!(
            "invalid suppression reason '{}': one word of letters, digits, '-' or '_', at most 50",
            reason.trim()
        )));
    }
    Ok(r)
}

impl Store {
    /// Suppresses `email` for the tenant. Returns false when it already was.
    pub async fn suppress(
        &self,
        scope: TenantScope,
        email: &str,
        reason: &str,
        note: Option<&str>,
        source_batch_id: Option<i32>,
    ) -> DbResult<bool> {
        let email = normalize_email(email).map_err(|e| DbError::Invalid(e.to_string()))?;
        let reason = check_reason(reason)?;
        if let Some(b) = source_batch_id {
            self.get_batch(scope, b).await?;
        }
        let n = on_pool!(self, p => {
            sqlx::query(
                "INSERT INTO recalliq_suppression (tenant_id, email, reason, note, source_batch_id, created_at)
                 SELECT $1, $2, $3, $4, $5, $6
                 WHERE NOT EXISTS (SELECT 1 FROM recalliq_suppression WHERE tenant_id = $1 AND LOWER(email) = LOWER($2))
                 ON CONFLICT DO NOTHING",
            )
            .bind(scope.tenant_id())
            .bind(&email)
            .bind(&reason)
            .bind(note)
            .bind(source_batch_id)
            .bind(now())
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Lifts a suppression. Returns false when the address was not suppressed.
    pub async fn unsuppress(&self, scope: TenantScope, email: &str) -> DbResult<bool> {
        let n = on_pool!(self, p => {
            sqlx::query("DELETE FROM recalliq_suppression WHERE tenant_id = $1 AND LOWER(email) = LOWER($2)")
                .bind(scope.tenant_id())
                .bind(email.trim())
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    pub async fn is_suppressed(&self, scope: TenantScope, email: &str) -> DbResult<bool> {
        let n: i64 = on_pool!(self, p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM recalliq_suppression WHERE tenant_id = $1 AND LOWER(email) = LOWER($2)")
                .bind(scope.tenant_id())
                .bind(email.trim())
                .fetch_one(p)
                .await?
        });
        Ok(n > 0)
    }

    pub async fn list_suppressions(
        &self,
        scope: TenantScope,
        page: Page,
        search: Option<&str>,
    ) -> DbResult<Vec<Suppression>> {
        const SQL: [&str; 2] = keyset_sql!(
            "s",
            "SELECT s.id, s.tenant_id, s.email, s.reason, s.note, s.source_batch_id, s.created_at
             FROM recalliq_suppression s WHERE s.tenant_id = $3
             AND ($4 IS NULL OR LOWER(s.email) LIKE $4 ESCAPE '\\' OR LOWER(s.reason) LIKE $4 ESCAPE '\\')"
        );
        let pattern = like_pattern(search);
        let rows: Vec<Suppression> = on_pool!(self, p => {
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

    /// Suppressions whose email or reason matches `search` (all when none).
    pub async fn count_suppressions_matching(
        &self,
        scope: TenantScope,
        search: Option<&str>,
    ) -> DbResult<i64> {
        let pattern = like_pattern(search);
        Ok(on_pool!(self, p => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM recalliq_suppression s WHERE s.tenant_id = $1
                 AND ($2 IS NULL OR LOWER(s.email) LIKE $2 ESCAPE '\\' OR LOWER(s.reason) LIKE $2 ESCAPE '\\')",
            )
            .bind(scope.tenant_id())
            .bind(&pattern)
            .fetch_one(p)
            .await?
        }))
    }

    pub async fn count_suppressions(&self, scope: TenantScope) -> DbResult<i64> {
        Ok(on_pool!(self, p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM recalliq_suppression WHERE tenant_id = $1")
                .bind(scope.tenant_id())
                .fetch_one(p)
                .await?
        }))
    }
}
