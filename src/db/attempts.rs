//! Per-attempt history (`recalliq_emailattempt`, migration 12). Only attempts that did not
//! end the recipient get a row: a 4xx deferral or a dropped/refused connection (the engine's
//! `Outcome::Retry`), and the failure a triage retry puts back in the queue. The final
//! attempt is the `logs_emaillog` row itself, so a recipient accepted at the first try costs
//! the engine nothing here. The history shown is those rows plus the row's final state.

use chrono::NaiveDateTime;
use serde::Serialize;

use super::engine::{Outcome, RowResult};
use super::{DbResult, EmailLog, Store, TenantScope, on_pool};

/// One attempt of the history.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct EmailAttempt {
    /// The engine's attempt count when it was made (restarts at 1 after a triage retry).
    pub attempt: i32,
    pub attempted_at: NaiveDateTime,
    /// `retry` (temporary SMTP reply), `connection` (no reply: connection refused or
    /// dropped), `failed`/`rejected`/`bounced` (a final state retried from triage), and for
    /// the final entry the row's status (`sent`, `failed`, ...).
    pub outcome: String,
    pub smtp_code: Option<i32>,
    pub smtp_response: Option<String>,
    pub error_message: Option<String>,
}

/// The 3-digit reply code an SMTP reply starts with.
pub fn smtp_code(reply: Option<&str>) -> Option<i32> {
    let r = reply?.trim_start();
    let code = r.get(..3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    code.parse().ok()
}

/// Rows per INSERT statement (7 parameters each, well under both backends' limits).
const CHUNK: usize = 500;

/// Writes, inside the engine's write transaction and before the results are applied, one
/// attempt row per `Outcome::Retry` whose row is still leased to its claim (the others were
/// given back by crash recovery and are not written either). One multi-row INSERT per
/// write batch; nothing at all when the batch holds no retry.
pub(super) async fn record_attempts<DB>(
    tx: &mut sqlx::Transaction<'_, DB>,
    tenant: i32,
    at: NaiveDateTime,
    results: &[RowResult],
) -> Result<(), sqlx::Error>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> i32: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i32>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> NaiveDateTime: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'a> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    let retries: Vec<(&RowResult, &str, Option<&String>)> = results
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Retry {
                error,
                smtp_response,
                ..
            } => Some((r, error.as_str(), smtp_response.as_ref())),
            _ => None,
        })
        .collect();
    for chunk in retries.chunks(CHUNK) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p = 3 + i * 6;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${})",
                    p,
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5
                )
            })
            .collect();
        // VALUES columns are column1..column6 on both backends.
        let sql = format!(
            "INSERT INTO recalliq_emailattempt (tenant_id, email_log_id, attempt, attempted_at,
                outcome, smtp_code, smtp_response, error_message)
             SELECT $1, l.id, COALESCE(l.attempts, 0), $2, v.column3, v.column4, v.column5, v.column6
             FROM (VALUES {}) AS v
             JOIN logs_emaillog l ON l.id = v.column1 AND l.status = 'sending' AND l.lease_owner = v.column2",
            values.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant).bind(at);
        for (r, error, response) in chunk {
            let outcome = if response.is_some() {
                "retry"
            } else {
                "connection"
            };
            q = q
                .bind(r.id)
                .bind(r.token.clone())
                .bind(outcome.to_string())
                .bind(smtp_code(response.map(String::as_str)))
                .bind(response.cloned())
                .bind(error.to_string());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The archiving INSERT of both retries below, up to its status filter: `$1` tenant, `$2`
/// time, `$3` batch.
macro_rules! archive_sql {
    ($filter:literal) => {
        concat!(
            "INSERT INTO recalliq_emailattempt (tenant_id, email_log_id, attempt, attempted_at,
                outcome, smtp_code, smtp_response, error_message)
             SELECT $1, l.id, COALESCE(l.attempts, 0), COALESCE(l.updated_at, l.sent_at, $2), l.status,
                NULL, l.smtp_response, l.error_message
             FROM logs_emaillog l
             WHERE l.batch_id = $3 AND ",
            $filter
        )
    };
}

/// Archives the final state of rows a triage retry puts back in the queue (their
/// failure would otherwise be overwritten by the next attempt). `$1` tenant, `$2` time,
/// `$3` batch, the ids from `$4` on.
pub(super) fn archive_final_sql(ids: usize) -> String {
    let ps: Vec<String> = (0..ids).map(|i| format!("${}", i + 4)).collect();
    format!(
        "{}({})",
        archive_sql!("l.status IN ('failed', 'rejected', 'bounced') AND l.id IN "),
        ps.join(", ")
    )
}

/// The same for a whole batch's failed and rejected rows, before `batches::requeue_failed`
/// puts them back in the queue (retry-failed from the batches screen or the CLI).
pub(super) const ARCHIVE_BATCH_FAILED_SQL: &str =
    archive_sql!("l.status IN ('failed', 'rejected')");

impl Store {
    /// The stored attempts of one log row of the tenant, oldest first.
    pub async fn email_attempts(
        &self,
        scope: TenantScope,
        email_log_id: i32,
    ) -> DbResult<Vec<EmailAttempt>> {
        let mut rows: Vec<EmailAttempt> = on_pool!(self, p => {
            sqlx::query_as(
                "SELECT attempt, attempted_at, outcome, smtp_code, smtp_response, error_message
                 FROM recalliq_emailattempt
                 WHERE email_log_id = $1 AND tenant_id = $2 ORDER BY id",
            )
            .bind(email_log_id)
            .bind(scope.tenant_id())
            .fetch_all(p)
            .await?
        });
        for a in &mut rows {
            a.smtp_code = a.smtp_code.or(smtp_code(a.smtp_response.as_deref()));
        }
        Ok(rows)
    }
}

/// The history shown: the stored attempts, then the row's final state when it has one
/// (sent, failed, rejected, bounced, or in flight); a row waiting for its next try after a
/// deferral has no final entry yet (its last attempt is already stored).
pub fn attempt_history(
    log: &EmailLog,
    updated_at: Option<NaiveDateTime>,
    stored: &[EmailAttempt],
) -> Vec<EmailAttempt> {
    let mut out = stored.to_vec();
    let finished = matches!(
        log.status.as_str(),
        "sent" | "failed" | "rejected" | "bounced" | "sending"
    );
    if finished && log.attempts > 0 {
        let at = log.sent_at.or(updated_at).or(log.created_at);
        out.push(EmailAttempt {
            attempt: log.attempts,
            attempted_at: at.unwrap_or_default(),
            outcome: log.status.clone(),
            smtp_code: smtp_code(log.smtp_response.as_deref()),
            smtp_response: log.smtp_response.clone(),
            error_message: if log.status == "sent" {
                None
            } else {
                log.error_message.clone()
            },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_code_reads_the_leading_three_digits() {
        assert_eq!(smtp_code(Some("451 4.3.0 try later")), Some(451));
        assert_eq!(smtp_code(Some("  250 ok")), Some(250));
        assert_eq!(smtp_code(Some("connection refused")), None);
        assert_eq!(smtp_code(Some("45")), None);
        assert_eq!(smtp_code(None), None);
    }

    fn log(status: &str, attempts: i32) -> EmailLog {
        EmailLog {
            id: 1,
            batch_id: 1,
            recipient_email: "a@x.test".into(),
            recipient_name: None,
            status: status.into(),
            sent_at: None,
            error_message: Some("temporary failure".into()),
            smtp_response: Some("451 4.3.0 later".into()),
            created_at: None,
            attempts,
            next_attempt_at: None,
            message_id: None,
        }
    }

    #[test]
    fn the_final_state_ends_the_history_only_when_there_is_one() {
        let t = NaiveDateTime::default();
        let stored = vec![EmailAttempt {
            attempt: 1,
            attempted_at: t,
            outcome: "retry".into(),
            smtp_code: Some(451),
            smtp_response: Some("451 4.3.0 later".into()),
            error_message: None,
        }];
        // Waiting for its next try: the deferral is already the last entry.
        assert_eq!(
            attempt_history(&log("pending", 1), Some(t), &stored).len(),
            1
        );
        let h = attempt_history(&log("failed", 2), Some(t), &stored);
        assert_eq!(h.len(), 2);
        assert_eq!((h[1].attempt, h[1].outcome.as_str()), (2, "failed"));
        assert_eq!(h[1].error_message.as_deref(), Some("temporary failure"));
        // Never tried: no entry at all.
        assert!(attempt_history(&log("pending", 0), None, &[]).is_empty());
    }
}
