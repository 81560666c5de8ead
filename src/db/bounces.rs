//! `recalliq_bounce_event`: what came back for a message we sent (hard and soft bounces,
//! unsubscribe requests), and the lookups that find the email log a report is about. The
//! lookups that start from a report (a Message-ID, a token's log id, a recipient) cross
//! tenants by nature and so take `AllTenants`; everything that writes takes the scope of
//! the log's own tenant.

use chrono::NaiveDateTime;
use serde::Serialize;

use super::{AllTenants, DbResult, Store, TenantScope, now, on_pool};

/// An email log row with the tenant it belongs to.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct SentLog {
    pub id: i32,
    pub batch_id: i32,
    pub tenant_id: i32,
    pub recipient_email: String,
    pub status: String,
    pub sent_at: Option<NaiveDateTime>,
}

/// Event kinds.
pub const EVENT_HARD: &str = "hard";
pub const EVENT_SOFT: &str = "soft";
pub const EVENT_UNSUBSCRIBE: &str = "unsubscribe";

/// A new row of `recalliq_bounce_event`.
#[derive(Debug, Clone)]
pub struct NewBounceEvent<'a> {
    pub batch_id: Option<i32>,
    pub log_id: Option<i32>,
    pub email: &'a str,
    pub kind: &'a str,
    pub status_code: Option<&'a str>,
    pub diagnostic: Option<&'a str>,
    /// What the event came from (a report's SHA-256, `unsubscribe:<token>`); one event per
    /// source, address and kind, so replays change nothing.
    pub source: &'a str,
}

/// Bounce and unsubscribe counts (distinct addresses) of a batch or a tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BounceCounts {
    pub hard_bounced: i64,
    pub soft_bounced: i64,
    pub unsubscribed: i64,
}

/// `SELECT <SentLog columns> FROM logs_emaillog l JOIN batches_batch b ... <tail>`.
macro_rules! log_sql {
    ($tail:literal) => {
        concat!(
            "SELECT l.id, l.batch_id, b.tenant_id, l.recipient_email, l.status, l.sent_at
             FROM logs_emaillog l JOIN batches_batch b ON b.id = l.batch_id ",
            $tail
        )
    };
}

impl Store {
    /// The log row of the message with this Message-ID (with or without angle brackets).
    pub async fn log_by_message_id(
        &self,
        _all: &AllTenants,
        message_id: &str,
    ) -> DbResult<Option<SentLog>> {
        let bare = message_id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>');
        if bare.is_empty() {
            return Ok(None);
        }
        let bracketed = format!("<{bare}>");
        const SQL: &str =
            log_sql!("WHERE l.message_id = $1 OR l.message_id = $2 ORDER BY l.id LIMIT 1");
        Ok(on_pool!(self, p => {
            sqlx::query_as::<_, SentLog>(SQL)
                .bind(&bracketed)
                .bind(bare)
                .fetch_optional(p)
                .await?
        }))
    }

    /// The log row `id`, whatever its tenant (unsubscribe tokens name log rows).
    pub async fn log_by_id(&self, _all: &AllTenants, id: i32) -> DbResult<Option<SentLog>> {
        const SQL: &str = log_sql!("WHERE l.id = $1");
        Ok(on_pool!(self, p => {
            sqlx::query_as::<_, SentLog>(SQL)
                .bind(id)
                .fetch_optional(p)
                .await?
        }))
    }

    /// Messages sent (or already bounced) to `email` since `since`, newest first: the
    /// candidates of a report that quotes no original headers.
    pub async fn recent_logs_to(
        &self,
        _all: &AllTenants,
        email: &str,
        since: NaiveDateTime,
    ) -> DbResult<Vec<SentLog>> {
        const SQL: &str = log_sql!(
            "WHERE LOWER(l.recipient_email) = LOWER($1) AND l.status IN ('sent', 'bounced')
             AND l.sent_at >= $2 ORDER BY l.sent_at DESC, l.id DESC LIMIT 50"
        );
        Ok(on_pool!(self, p => {
            sqlx::query_as::<_, SentLog>(SQL)
                .bind(email.trim())
                .bind(since)
                .fetch_all(p)
                .await?
        }))
    }

    /// Records an event. Returns false when the same source already recorded it.
    pub async fn record_bounce_event(
        &self,
        scope: TenantScope,
        ev: &NewBounceEvent<'_>,
    ) -> DbResult<bool> {
        let n = on_pool!(self, p => {
            sqlx::query(
                "INSERT INTO recalliq_bounce_event
                 (tenant_id, batch_id, log_id, email, kind, status_code, diagnostic, source, created_at)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
                 WHERE NOT EXISTS (SELECT 1 FROM recalliq_bounce_event
                     WHERE source = $8 AND LOWER(email) = LOWER($4) AND kind = $5)
                 ON CONFLICT DO NOTHING",
            )
            .bind(scope.tenant_id())
            .bind(ev.batch_id)
            .bind(ev.log_id)
            .bind(ev.email)
            .bind(ev.kind)
            .bind(ev.status_code)
            .bind(ev.diagnostic)
            .bind(ev.source)
            .bind(now())
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Marks a sent message `bounced` with the remote server's words in `smtp_response`.
    /// Returns false when the row is not the tenant's or was not sent.
    pub async fn mark_bounced(
        &self,
        scope: TenantScope,
        log_id: i32,
        diagnostic: &str,
    ) -> DbResult<bool> {
        let n = on_pool!(self, p => {
            sqlx::query(
                "UPDATE logs_emaillog SET status = 'bounced', smtp_response = $2,
                     error_message = $3, updated_at = $4
                 WHERE id = $1 AND status IN ('sent', 'bounced')
                   AND batch_id IN (SELECT id FROM batches_batch WHERE tenant_id = $5)",
            )
            .bind(log_id)
            .bind(diagnostic)
            .bind(format!("bounced: {diagnostic}"))
            .bind(now())
            .bind(scope.tenant_id())
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Soft bounces recorded for `email` since `since`, one per report.
    pub async fn soft_bounces_since(
        &self,
        scope: TenantScope,
        email: &str,
        since: NaiveDateTime,
    ) -> DbResult<i64> {
        Ok(on_pool!(self, p => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM recalliq_bounce_event
                 WHERE tenant_id = $1 AND LOWER(email) = LOWER($2) AND kind = 'soft' AND created_at >= $3",
            )
            .bind(scope.tenant_id())
            .bind(email.trim())
            .bind(since)
            .fetch_one(p)
            .await?
        }))
    }

    /// Addresses of the batch that bounced (hard, soft) or unsubscribed.
    pub async fn bounce_counts_for_batch(
        &self,
        scope: TenantScope,
        batch_id: i32,
    ) -> DbResult<BounceCounts> {
        let rows: Vec<(String, i64)> = on_pool!(self, p => {
            sqlx::query_as(
                "SELECT kind, COUNT(DISTINCT LOWER(email)) FROM recalliq_bounce_event
                 WHERE tenant_id = $1 AND batch_id = $2 GROUP BY kind",
            )
            .bind(scope.tenant_id())
            .bind(batch_id)
            .fetch_all(p)
            .await?
        });
        Ok(counts(rows))
    }

    /// Addresses of the tenant that bounced or unsubscribed since `since` (all time when
    /// `None`).
    pub async fn bounce_counts_for_tenant(
        &self,
        scope: TenantScope,
        since: Option<NaiveDateTime>,
    ) -> DbResult<BounceCounts> {
        let rows: Vec<(String, i64)> = on_pool!(self, p => {
            sqlx::query_as(
                "SELECT kind, COUNT(DISTINCT LOWER(email)) FROM recalliq_bounce_event
                 WHERE tenant_id = $1 AND ($2 IS NULL OR created_at >= $2) GROUP BY kind",
            )
            .bind(scope.tenant_id())
            .bind(since)
            .fetch_all(p)
            .await?
        });
        Ok(counts(rows))
    }
}

fn counts(rows: Vec<(String, i64)>) -> BounceCounts {
    let mut c = BounceCounts::default();
    for (kind, n) in rows {
        match kind.as_str() {
            EVENT_HARD => c.hard_bounced = n,
            EVENT_SOFT => c.soft_bounced = n,
            EVENT_UNSUBSCRIBE => c.unsubscribed = n,
            _ => {}
        }
    }
    c
}
