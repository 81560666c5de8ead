//! The log viewer's queries over `logs_emaillog`: combinable filters (statuses, text, reply
//! class, date range), sort by a column, keyset pages whose cursor is the row id (the sort
//! key of the cursor row is looked up in SQL, so `Page::after/before` work for every sort),
//! per-status counts, and the triage actions on tagged rows (retry, a new batch of just those
//! recipients, suppress, deactivate contacts), each recorded in `logs_batchexecutionlog`.
//! Every query is limited to the caller's tenant (`TenantScope`).

use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use super::batches::UNCOUNT_FAILED_SQL;
use super::{
    Batch, DbError, DbResult, Direction, EmailLog, Page, Store, TenantScope, now, on_pool,
};
use crate::domain::{BatchStatus, EmailStatus};

/// Column the viewer sorts by (ties broken by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SortColumn {
    #[default]
    Id,
    Recipient,
    Status,
    Attempts,
    SentAt,
}

impl SortColumn {
    pub const ALL: [SortColumn; 5] = [
        SortColumn::Id,
        SortColumn::Recipient,
        SortColumn::Status,
        SortColumn::Attempts,
        SortColumn::SentAt,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SortColumn::Id => "id",
            SortColumn::Recipient => "recipient",
            SortColumn::Status => "status",
            SortColumn::Attempts => "attempts",
            SortColumn::SentAt => "sent_at",
        }
    }

    /// The SQL sort key over alias `t` (never NULL, so row-value comparison works).
    fn expr(self, t: &str) -> String {
        match self {
            SortColumn::Id => format!("{t}.id"),
            SortColumn::Recipient => format!("LOWER({t}.recipient_email)"),
            SortColumn::Status => format!("{t}.status"),
            SortColumn::Attempts => format!("COALESCE({t}.attempts, 0)"),
            SortColumn::SentAt => format!("COALESCE({t}.sent_at, {EPOCH})"),
        }
    }

    pub fn next(self) -> SortColumn {
        let i = SortColumn::ALL.iter().position(|c| *c == self).unwrap_or(0);
        SortColumn::ALL[(i + 1) % SortColumn::ALL.len()]
    }
}

/// A timestamp before any real one; both backends compare it with a TIMESTAMP column.
const EPOCH: &str = "CAST('1970-01-01 00:00:00' AS TIMESTAMP)";

/// Which kind of SMTP reply a row got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyClass {
    /// 4xx: temporary.
    Temporary,
    /// 5xx: permanent.
    Permanent,
    /// No SMTP reply at all: the connection failed (refused, dropped, TLS, timeout).
    Connection,
}

impl ReplyClass {
    pub fn label(self) -> &'static str {
        match self {
            ReplyClass::Temporary => "4xx",
            ReplyClass::Permanent => "5xx",
            ReplyClass::Connection => "connection",
        }
    }

    pub fn parse(s: &str) -> Result<ReplyClass, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "4xx" | "4" | "temporary" => Ok(ReplyClass::Temporary),
            "5xx" | "5" | "permanent" => Ok(ReplyClass::Permanent),
            "connection" | "conn" => Ok(ReplyClass::Connection),
            other => Err(format!(
                "unknown reply class '{other}' (expected 4xx, 5xx or connection)"
            )),
        }
    }
}

/// What the viewer shows: all filters combine (AND); an empty `statuses` means every status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogFilter {
    /// One batch, or every batch of the tenant.
    pub batch_id: Option<i32>,
    pub statuses: Vec<EmailStatus>,
    /// Case-insensitive "contains" on recipient, name, SMTP reply and error.
    pub search: Option<String>,
    pub reply: Option<ReplyClass>,
    /// On `COALESCE(sent_at, updated_at, created_at)`, inclusive.
    pub from: Option<chrono::NaiveDateTime>,
    pub to: Option<chrono::NaiveDateTime>,
    pub sort: SortColumn,
    pub descending: bool,
}

impl LogFilter {
    pub fn batch(batch_id: i32) -> LogFilter {
        LogFilter {
            batch_id: Some(batch_id),
            ..LogFilter::default()
        }
    }

    /// The active filters in words, for the header: `status=failed,rejected /bob 5xx`.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.statuses.is_empty() {
            let s: Vec<&str> = self.statuses.iter().map(|s| s.as_str()).collect();
            out.push(format!("status={}", s.join(",")));
        }
        if let Some(s) = self.search.as_deref().filter(|s| !s.trim().is_empty()) {
            out.push(format!("/{}", s.trim()));
        }
        if let Some(r) = self.reply {
            out.push(format!("reply={}", r.label()));
        }
        match (self.from, self.to) {
            (None, None) => {}
            (f, t) => out.push(format!(
                "date={}..{}",
                f.map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default(),
                t.map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default()
            )),
        }
        if self.sort != SortColumn::Id || self.descending {
            out.push(format!(
                "sort={}{}",
                self.sort.label(),
                if self.descending { "↓" } else { "↑" }
            ));
        }
        out
    }
}

/// A bound parameter of a built query.
#[derive(Debug, Clone)]
enum Arg {
    Int(i32),
    Text(String),
    Time(chrono::NaiveDateTime),
}

/// A WHERE clause over `logs_emaillog l JOIN batches_batch b` with its parameters.
struct Built {
    sql: String,
    args: Vec<Arg>,
}

impl Built {
    fn push(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }
}

fn where_clause(scope: TenantScope, f: &LogFilter) -> Built {
    let mut b = Built {
        sql: String::new(),
        args: Vec::new(),
    };
    let t = b.push(Arg::Int(scope.tenant_id()));
    let mut sql = format!(" WHERE b.tenant_id = {t}");
    if let Some(id) = f.batch_id {
        let p = b.push(Arg::Int(id));
        sql.push_str(&format!(" AND l.batch_id = {p}"));
    }
    if !f.statuses.is_empty() {
        let ps: Vec<String> = f
            .statuses
            .iter()
            .map(|s| b.push(Arg::Text(s.as_str().to_string())))
            .collect();
        sql.push_str(&format!(" AND l.status IN ({})", ps.join(", ")));
    }
    if let Some(pattern) = super::like_pattern(f.search.as_deref()) {
        let p = b.push(Arg::Text(pattern));
        sql.push_str(&format!(
            " AND (LOWER(l.recipient_email) LIKE {p} ESCAPE '\\'
               OR LOWER(COALESCE(l.recipient_name, '')) LIKE {p} ESCAPE '\\'
               OR LOWER(COALESCE(l.smtp_response, '')) LIKE {p} ESCAPE '\\'
               OR LOWER(COALESCE(l.error_message, '')) LIKE {p} ESCAPE '\\')"
        ));
    }
    match f.reply {
        None => {}
        Some(ReplyClass::Temporary) => sql.push_str(" AND l.smtp_response LIKE '4%'"),
        Some(ReplyClass::Permanent) => sql.push_str(" AND l.smtp_response LIKE '5%'"),
        Some(ReplyClass::Connection) => sql.push_str(
            " AND l.error_message IS NOT NULL AND COALESCE(l.smtp_response, '') = ''
              AND l.status <> 'sent'",
        ),
    }
    let when = "COALESCE(l.sent_at, l.updated_at, l.created_at)";
    if let Some(from) = f.from {
        let p = b.push(Arg::Time(from));
        sql.push_str(&format!(" AND {when} >= {p}"));
    }
    if let Some(to) = f.to {
        let p = b.push(Arg::Time(to));
        sql.push_str(&format!(" AND {when} <= {p}"));
    }
    b.sql = sql;
    b
}

macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Int(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.clone()),
                Arg::Time(v) => q.bind(*v),
            };
        }
        q
    }};
}

const LOG_COLS: &str = "l.id, l.batch_id, l.recipient_email, l.recipient_name, l.status, l.sent_at,
    l.error_message, l.smtp_response, l.created_at, COALESCE(l.attempts, 0) AS attempts,
    l.next_attempt_at, l.message_id";

/// Everything the detail pane shows about one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogDetail {
    pub log: EmailLog,
    pub updated_at: Option<chrono::NaiveDateTime>,
    pub batch_name: String,
    pub contact_id: Option<i32>,
    pub contact_active: Option<bool>,
    pub group_id: Option<i32>,
    pub group_name: Option<String>,
    pub suppressed: bool,
    /// This batch's execution-log entries that mention the row (triage actions on it).
    pub history: Vec<String>,
    /// Every attempt, oldest first: the stored ones (deferrals, dropped connections,
    /// failures retried from triage) then the row's final state.
    pub attempts: Vec<super::EmailAttempt>,
}

/// What to do with tagged rows of a finished batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryMode {
    /// Back to pending in the same batch (a finished batch runs again).
    SameBatch,
    /// A new batch of just those recipients, started at once.
    NewBatch,
}

/// What a triage action did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TriageReport {
    /// Rows (or addresses, contacts) changed.
    pub changed: u64,
    /// Tagged rows that did not qualify (already sent, pending, no contact...).
    pub skipped: u64,
    /// The new batch, for `RetryMode::NewBatch`.
    pub new_batch: Option<i32>,
}

impl Store {
    /// Rows matching `filter`, in its sort order, one keyset page (`Page::after(id)` means
    /// "after the row with that id in this order").
    pub async fn query_email_logs(
        &self,
        scope: TenantScope,
        filter: &LogFilter,
        page: Page,
    ) -> DbResult<Vec<EmailLog>> {
        let mut b = where_clause(scope, filter);
        let key = filter.sort.expr("l");
        // Forward in display order: ascending unless `descending`.
        let forward = page.direction == Direction::Forward;
        let ascending = forward != filter.descending;
        let (cmp, ord) = if ascending {
            (">", "ASC")
        } else {
            ("<", "DESC")
        };
        let mut sql = format!(
            "SELECT {LOG_COLS} FROM logs_emaillog l JOIN batches_batch b ON b.id = l.batch_id{}",
            b.sql
        );
        if let Some(cursor) = page.cursor {
            let p = b.push(Arg::Int(cursor));
            if filter.sort == SortColumn::Id {
                sql.push_str(&format!(" AND l.id {cmp} {p}"));
            } else {
                let ckey = filter.sort.expr("c");
                sql.push_str(&format!(
                    " AND ({key}, l.id) {cmp} (SELECT {ckey}, c.id FROM logs_emaillog c WHERE c.id = {p})"
                ));
            }
        }
        let lim = b.push(Arg::Int(page.limit.clamp(0, 10_000) as i32));
        if filter.sort == SortColumn::Id {
            sql.push_str(&format!(" ORDER BY l.id {ord} LIMIT {lim}"));
        } else {
            sql.push_str(&format!(" ORDER BY {key} {ord}, l.id {ord} LIMIT {lim}"));
        }
        let args = b.args;
        let rows: Vec<EmailLog> = on_pool!(self, p => {
            bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())), &args)
                .fetch_all(p)
                .await?
        });
        Ok(page.order(rows))
    }

    /// How many rows match `filter`.
    pub async fn count_email_logs(&self, scope: TenantScope, filter: &LogFilter) -> DbResult<i64> {
        let b = where_clause(scope, filter);
        let sql = format!(
            "SELECT COUNT(*) FROM logs_emaillog l JOIN batches_batch b ON b.id = l.batch_id{}",
            b.sql
        );
        Ok(on_pool!(self, p => {
            bind_all!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())), &b.args)
                .fetch_one(p)
                .await?
        }))
    }

    /// Per-status counts of the batch (or every batch of the tenant), ignoring the other
    /// filters: the header's totals.
    pub async fn status_counts(
        &self,
        scope: TenantScope,
        batch_id: Option<i32>,
    ) -> DbResult<Vec<(String, i64)>> {
        Ok(on_pool!(self, p => {
            sqlx::query_as(
                "SELECT l.status, COUNT(*) FROM logs_emaillog l JOIN batches_batch b ON b.id = l.batch_id
                 WHERE b.tenant_id = $1 AND ($2 IS NULL OR l.batch_id = $2)
                 GROUP BY l.status ORDER BY l.status",
            )
            .bind(scope.tenant_id())
            .bind(batch_id)
            .fetch_all(p)
            .await?
        }))
    }

    /// Rows of a batch (of `statuses`, empty: all) written at or after `since`, oldest
    /// change first: what `recalliq logs --follow` prints each poll.
    pub async fn email_logs_changed_since(
        &self,
        scope: TenantScope,
        batch_id: i32,
        statuses: &[EmailStatus],
        since: chrono::NaiveDateTime,
        limit: i64,
    ) -> DbResult<Vec<EmailLog>> {
        let mut b = where_clause(
            scope,
            &LogFilter {
                batch_id: Some(batch_id),
                statuses: statuses.to_vec(),
                ..LogFilter::default()
            },
        );
        let p = b.push(Arg::Time(since));
        let lim = b.push(Arg::Int(limit.clamp(0, 100_000) as i32));
        let sql = format!(
            "SELECT {LOG_COLS} FROM logs_emaillog l JOIN batches_batch b ON b.id = l.batch_id{}
             AND COALESCE(l.updated_at, l.created_at) >= {p}
             ORDER BY COALESCE(l.updated_at, l.created_at), l.id LIMIT {lim}",
            b.sql
        );
        Ok(on_pool!(self, p => {
            bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())), &b.args)
                .fetch_all(p)
                .await?
        }))
    }

    /// Ids of every row matching `filter` (the `*` tag-all), at most `cap`.
    pub async fn email_log_ids(
        &self,
        scope: TenantScope,
        filter: &LogFilter,
        cap: i64,
    ) -> DbResult<Vec<i32>> {
        let mut b = where_clause(scope, filter);
        let lim = b.push(Arg::Int(cap.clamp(0, i32::MAX as i64) as i32));
        let sql = format!(
            "SELECT l.id FROM logs_emaillog l JOIN batches_batch b ON b.id = l.batch_id{} ORDER BY l.id LIMIT {lim}",
            b.sql
        );
        Ok(on_pool!(self, p => {
            bind_all!(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())), &b.args)
                .fetch_all(p)
                .await?
        }))
    }

    /// The rows with these ids that belong to the tenant, by id.
    pub async fn email_logs_by_ids(
        &self,
        scope: TenantScope,
        ids: &[i32],
    ) -> DbResult<Vec<EmailLog>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut b = Built {
                sql: String::new(),
                args: vec![Arg::Int(scope.tenant_id())],
            };
            let ps: Vec<String> = chunk.iter().map(|id| b.push(Arg::Int(*id))).collect();
            let sql = format!(
                "SELECT {LOG_COLS} FROM logs_emaillog l JOIN batches_batch b ON b.id = l.batch_id
                 WHERE b.tenant_id = $1 AND l.id IN ({}) ORDER BY l.id",
                ps.join(", ")
            );
            let rows: Vec<EmailLog> = on_pool!(self, p => {
                bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())), &b.args)
                    .fetch_all(p)
                    .await?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    /// The detail pane of one row.
    pub async fn email_log_detail(&self, scope: TenantScope, id: i32) -> DbResult<LogDetail> {
        let log = self.get_email_log(scope, id).await?;
        let batch = self.get_batch(scope, log.batch_id).await?;
        type Extra = (
            Option<chrono::NaiveDateTime>,
            Option<i32>,
            Option<bool>,
            Option<i32>,
            Option<String>,
        );
        let extra: Extra = on_pool!(self, p => {
            sqlx::query_as(
                "SELECT l.updated_at, l.contact_id, COALESCE(ge.is_active, TRUE), g.id, g.name
                 FROM logs_emaillog l
                 LEFT JOIN tenants_groupemail ge ON ge.id = l.contact_id
                 LEFT JOIN tenants_group g ON g.id = ge.group_id AND g.tenant_id = $2
                 WHERE l.id = $1",
            )
            .bind(id)
            .bind(scope.tenant_id())
            .fetch_one(p)
            .await?
        });
        let suppressed = self.is_suppressed(scope, &log.recipient_email).await?;
        let needle = format!("%\"{id}\"%");
        let history: Vec<(String, Option<String>, Option<chrono::NaiveDateTime>)> = on_pool!(self, p => {
            sqlx::query_as(
                "SELECT action, message, created_at FROM logs_batchexecutionlog
                 WHERE batch_id = $1 AND CAST(details AS TEXT) LIKE $2 ORDER BY id DESC LIMIT 20",
            )
            .bind(log.batch_id)
            .bind(&needle)
            .fetch_all(p)
            .await?
        });
        let history = history
            .into_iter()
            .map(|(a, m, t)| {
                format!(
                    "{} {a}: {}",
                    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default(),
                    m.unwrap_or_default()
                )
            })
            .collect();
        let stored = self.email_attempts(scope, id).await?;
        let attempts = super::attempt_history(&log, extra.0, &stored);
        Ok(LogDetail {
            attempts,
            updated_at: extra.0,
            contact_id: extra.1,
            contact_active: extra.1.map(|_| extra.2.unwrap_or(true)),
            group_id: extra.3,
            group_name: extra.4,
            batch_name: batch.name,
            suppressed,
            history,
            log,
        })
    }

    /// Tagged rows of one batch, checked to belong to it and the tenant.
    async fn tagged(
        &self,
        scope: TenantScope,
        batch_id: i32,
        ids: &[i32],
    ) -> DbResult<Vec<EmailLog>> {
        self.get_batch(scope, batch_id).await?;
        let rows = self.email_logs_by_ids(scope, ids).await?;
        Ok(rows
            .into_iter()
            .filter(|r| r.batch_id == batch_id)
            .collect())
    }

    /// Tagged failed/rejected/bounced rows back to pending. In a running or paused batch
    /// they go out with it (a paused one on resume); a finished batch runs again
    /// (`SameBatch`) or a new batch of just those recipients is started (`NewBatch`).
    /// Sent, pending and sending rows are skipped: nobody gets a message twice.
    pub async fn retry_logs(
        &self,
        scope: TenantScope,
        batch_id: i32,
        ids: &[i32],
        mode: RetryMode,
        actor: &str,
    ) -> DbResult<TriageReport> {
        let batch = self.get_batch(scope, batch_id).await?;
        let status: BatchStatus = batch
            .batch_status()
            .map_err(|e| DbError::Invalid(e.to_string()))?;
        let rows = self.tagged(scope, batch_id, ids).await?;
        let retry: Vec<&EmailLog> = rows
            .iter()
            .filter(|r| matches!(r.status.as_str(), "failed" | "rejected" | "bounced"))
            .collect();
        let skipped = (ids.len() as u64).saturating_sub(retry.len() as u64);
        if retry.is_empty() {
            return Err(DbError::Invalid(format!(
                "none of the {} tagged rows failed: only failed, rejected or bounced rows are retried",
                ids.len()
            )));
        }
        match status {
            BatchStatus::Draft | BatchStatus::Scheduled => Err(DbError::Invalid(format!(
                "batch #{batch_id} is {status}: it has not sent anything yet"
            ))),
            s if s.is_finished() && mode == RetryMode::NewBatch => {
                let new_id = self
                    .retry_as_new_batch(scope, &batch, &retry, actor)
                    .await?;
                Ok(TriageReport {
                    changed: retry.len() as u64,
                    skipped,
                    new_batch: Some(new_id),
                })
            }
            s => {
                if s == BatchStatus::Cancelled {
                    return Err(DbError::Invalid(format!(
                        "batch #{batch_id} was cancelled and cannot run again: retry as a new batch"
                    )));
                }
                let changed = self.requeue(scope, batch_id, &retry, actor).await?;
                if s.is_finished() {
                    self.transition_batch(
                        scope,
                        batch_id,
                        BatchStatus::Running,
                        Some(&format!("{actor} retried {changed} tagged recipients")),
                    )
                    .await?;
                }
                Ok(TriageReport {
                    changed,
                    skipped,
                    new_batch: None,
                })
            }
        }
    }

    async fn requeue(
        &self,
        scope: TenantScope,
        batch_id: i32,
        rows: &[&EmailLog],
        actor: &str,
    ) -> DbResult<u64> {
        let ts = now();
        let ids: Vec<i32> = rows.iter().map(|r| r.id).collect();
        let counted = rows.iter().filter(|r| r.status != "bounced").count() as i64;
        let mut changed = 0u64;
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            for chunk in ids.chunks(500) {
                // The failure being retried stays in the attempt history.
                let mut args = vec![Arg::Int(scope.tenant_id()), Arg::Time(ts), Arg::Int(batch_id)];
                args.extend(chunk.iter().map(|id| Arg::Int(*id)));
                let sql = super::attempts::archive_final_sql(chunk.len());
                bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), &args)
                    .execute(&mut *tx)
                    .await?;
            }
            for chunk in ids.chunks(500) {
                let mut b = Built { sql: String::new(), args: vec![Arg::Int(batch_id), Arg::Time(ts)] };
                let ps: Vec<String> = chunk.iter().map(|id| b.push(Arg::Int(*id))).collect();
                let sql = format!(
                    "UPDATE logs_emaillog SET status = 'pending', attempts = 0, next_attempt_at = $2,
                        lease_owner = NULL, lease_expires_at = NULL, updated_at = $2
                     WHERE batch_id = $1 AND status IN ('failed', 'rejected', 'bounced') AND id IN ({})",
                    ps.join(", ")
                );
                changed += bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), &b.args)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            sqlx::query(UNCOUNT_FAILED_SQL)
                .bind(batch_id)
                .bind(counted.min(changed as i64))
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO logs_batchexecutionlog (batch_id, action, message, details, created_at)
                 VALUES ($1, 'retry_tagged', $2, $3, $4)",
            )
            .bind(batch_id)
            .bind(format!("{actor} queued {changed} tagged recipients again"))
            .bind(Json(triage_details(actor, &ids, None)))
            .bind(ts)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(changed)
    }

    async fn retry_as_new_batch(
        &self,
        scope: TenantScope,
        from: &Batch,
        rows: &[&EmailLog],
        actor: &str,
    ) -> DbResult<i32> {
        let groups: Vec<i32> = self
            .batch_groups(scope, from.id)
            .await?
            .into_iter()
            .map(|g| g.group_id)
            .collect();
        let name: String = format!("{} (retry)", from.name).chars().take(200).collect();
        let ts = now();
        let ids: Vec<i32> = rows.iter().map(|r| r.id).collect();
        let new_id: i32 = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let new_id: i32 = sqlx::query_scalar(
                "INSERT INTO batches_batch (tenant_id, template_id, name, status, sent_count, failed_count,
                    variables, created_at, updated_at, started_at, status_reason)
                 VALUES ($1, $2, $3, 'running', 0, 0, $4, $5, $5, $5, $6) RETURNING id",
            )
            .bind(scope.tenant_id())
            .bind(from.template_id)
            .bind(&name)
            .bind(&from.variables)
            .bind(ts)
            .bind(format!("retry of {} recipients of batch #{}", rows.len(), from.id))
            .fetch_one(&mut *tx)
            .await?;
            for g in &groups {
                sqlx::query("INSERT INTO batches_batchgroup (batch_id, group_id, created_at) VALUES ($1, $2, $3)")
                    .bind(new_id)
                    .bind(*g)
                    .bind(ts)
                    .execute(&mut *tx)
                    .await?;
            }
            for chunk in ids.chunks(500) {
                let mut b = Built { sql: String::new(), args: vec![Arg::Int(new_id), Arg::Time(ts), Arg::Int(from.id)] };
                let ps: Vec<String> = chunk.iter().map(|id| b.push(Arg::Int(*id))).collect();
                let sql = format!(
                    "INSERT INTO logs_emaillog (batch_id, recipient_email, recipient_name, status,
                        created_at, updated_at, attempts, next_attempt_at, contact_id)
                     SELECT $1, recipient_email, recipient_name, 'pending', $2, $2, 0, $2, contact_id
                     FROM logs_emaillog WHERE batch_id = $3 AND id IN ({}) ORDER BY id",
                    ps.join(", ")
                );
                bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), &b.args)
                    .execute(&mut *tx)
                    .await?;
            }
            let details = triage_details(actor, &ids, Some(new_id));
            for (batch, action, message) in [
                (new_id, "created", format!("{actor} created this batch to retry {} recipients of batch #{}", ids.len(), from.id)),
                (from.id, "retry_new_batch", format!("{actor} retries {} tagged recipients in new batch #{new_id}", ids.len())),
            ] {
                sqlx::query(
                    "INSERT INTO logs_batchexecutionlog (batch_id, action, message, details, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(batch)
                .bind(action)
                .bind(message)
                .bind(Json(details.clone()))
                .bind(ts)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            new_id
        });
        Ok(new_id)
    }

    /// Suppresses the tagged rows' addresses with `reason`. Returns how many were added.
    pub async fn suppress_logs(
        &self,
        scope: TenantScope,
        batch_id: i32,
        ids: &[i32],
        reason: &str,
        actor: &str,
    ) -> DbResult<TriageReport> {
        let rows = self.tagged(scope, batch_id, ids).await?;
        let mut changed = 0u64;
        let note = format!("from the log viewer by {actor}");
        for r in &rows {
            if self
                .suppress(
                    scope,
                    &r.recipient_email,
                    reason,
                    Some(&note),
                    Some(batch_id),
                )
                .await?
            {
                changed += 1;
            }
        }
        self.record_triage(
            scope,
            batch_id,
            "suppress_tagged",
            format!("{actor} suppressed {changed} tagged addresses ({reason})"),
            actor,
            ids,
        )
        .await?;
        Ok(TriageReport {
            changed,
            skipped: (ids.len() as u64).saturating_sub(changed),
            new_batch: None,
        })
    }

    /// Deactivates the contacts behind the tagged rows (rows without a contact are skipped).
    pub async fn deactivate_log_contacts(
        &self,
        scope: TenantScope,
        batch_id: i32,
        ids: &[i32],
        actor: &str,
    ) -> DbResult<TriageReport> {
        self.tagged(scope, batch_id, ids).await?;
        let mut changed = 0u64;
        for chunk in ids.chunks(500) {
            let mut b = Built {
                sql: String::new(),
                args: vec![Arg::Int(scope.tenant_id()), Arg::Int(batch_id)],
            };
            let ps: Vec<String> = chunk.iter().map(|id| b.push(Arg::Int(*id))).collect();
            let sql = format!(
                "UPDATE tenants_groupemail SET is_active = FALSE
                 WHERE COALESCE(is_active, TRUE)
                   AND group_id IN (SELECT id FROM tenants_group WHERE tenant_id = $1)
                   AND id IN (SELECT contact_id FROM logs_emaillog WHERE batch_id = $2 AND id IN ({}))",
                ps.join(", ")
            );
            changed += on_pool!(self, p => {
                bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql.clone())), &b.args)
                    .execute(p)
                    .await?
                    .rows_affected()
            });
        }
        self.record_triage(
            scope,
            batch_id,
            "deactivate_tagged",
            format!("{actor} deactivated {changed} contacts of tagged rows"),
            actor,
            ids,
        )
        .await?;
        Ok(TriageReport {
            changed,
            skipped: (ids.len() as u64).saturating_sub(changed),
            new_batch: None,
        })
    }

    /// Records a triage action that changes nothing in the batch itself (export, copy).
    pub async fn record_triage(
        &self,
        scope: TenantScope,
        batch_id: i32,
        action: &str,
        message: String,
        actor: &str,
        ids: &[i32],
    ) -> DbResult<()> {
        self.add_execution_log(
            scope,
            batch_id,
            action,
            Some(&message),
            Some(triage_details(actor, ids, None)),
        )
        .await
        .map(|_| ())
    }
}

/// `details` of a triage entry: who, how many and which rows (ids as strings so the detail
/// pane can find a row's history with a LIKE; capped at 1,000 ids).
fn triage_details(actor: &str, ids: &[i32], new_batch: Option<i32>) -> Value {
    let listed: Vec<String> = ids.iter().take(1000).map(|i| i.to_string()).collect();
    serde_json::json!({
        "by": actor,
        "count": ids.len(),
        "log_ids": listed,
        "new_batch": new_batch,
    })
}
