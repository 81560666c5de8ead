//! The data layer: one `Store` over a SQLite or a Postgres pool, with the same typed API on
//! both. Every query that touches tenant-owned rows takes a `TenantScope`, so a call that
//! reads or writes another tenant's data cannot be written (see `scope.rs`).

mod attempts;
mod audience;
mod audit;
mod batch_admin;
mod batches;
mod bounces;
mod dkim;
mod engine;
mod groups;
mod log_query;
mod logs;
mod mailbox;
mod migrate;
mod notify;
mod ownership;
mod purge;
mod retention;
pub mod rls;
mod scope;
mod smtp;
mod stats;
mod suppression;
mod templates;
mod tenants;
mod users;

pub use attempts::{EmailAttempt, attempt_history, smtp_code};
pub use audience::AudienceRow;
pub use audit::{
    ACTION_LOGIN, AuditFilter, AuditRecord, Interface, OUTCOME_DENIED, OUTCOME_FAILED, OUTCOME_OK,
    origin, origin_from, set_interface,
};
pub use batches::{Batch, BatchGroup, NewBatch};
pub use bounces::{
    BounceCounts, EVENT_HARD, EVENT_SOFT, EVENT_UNSUBSCRIBE, NewBounceEvent, SentLog,
};
pub use dkim::{DKIM_ACTIVE, DKIM_PUBLISHED, DkimKey, NewDkimKey, check_selector};
pub use engine::{Claim, ClaimedRow, Outcome, QueueCounts, RowResult, WriteCounts};
pub use groups::{Contact, Group, GroupCounts, ImportCounts, NewContact};
pub use log_query::{LogDetail, LogFilter, ReplyClass, RetryMode, SortColumn, TriageReport};
pub use logs::{EmailLog, ExecutionLog, NewEmailLog};
pub use mailbox::{
    BounceMailbox, DEFAULT_IMAP_MAILBOX, DEFAULT_PROCESSED_FOLDER, DEFAULT_UNMATCHED_FOLDER,
    MailboxOwner, mailbox_secret_context,
};
pub use migrate::{LATEST_VERSION, MigrationReport};
pub use notify::{BATCH_CHANNEL, BatchChange, BatchListener};
pub use ownership::{Catalog, ForeignKey, Ownership, ident as quote_ident};
pub use purge::PurgeReport;
pub use retention::{
    CleanOptions, CleanReport, DEFAULT_BATCH_LOGS_DAYS, DEFAULT_EMAIL_LOGS_DAYS, Retention,
};
pub use scope::{Actor, AllTenants, TenantScope};
pub use smtp::{OutboxSettings, Security, SmtpServer, SmtpSettings};
pub use stats::{
    ActivityDay, BatchPerformance, BatchProgress, GroupEmailCount, TenantStats, UsageChange,
    percent,
};
pub use suppression::{
    REASON_BOUNCED, REASON_IMPORT, REASON_MANUAL, REASON_UNSUBSCRIBED, Suppression,
};
pub use templates::{NewTemplate, Template};
pub use tenants::{NewTenant, Tenant, TenantEmail, TenantUpdate};
pub use users::{NewUser, User, UserScope, UserUpdate};

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveDateTime;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

/// Runs `$body` with `$pool` bound to the concrete pool of `$store`. The body is compiled
/// once per backend, so one SQL text (with `$1` placeholders, which both accept) serves both.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::db::Pool::Sqlite($pool) => $body,
            $crate::db::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Builds the two keyset-paginated variants (forward, backward) of a listing query. The
/// query's `$1` is the cursor (an id, NULL for the first page) and `$2` the page size;
/// the caller's own parameters start at `$3`.
macro_rules! keyset_sql {
    ($alias:literal, $select_where:expr) => {
        [
            concat!(
                $select_where,
                " AND ($1 IS NULL OR ",
                $alias,
                ".id > $1) ORDER BY ",
                $alias,
                ".id ASC LIMIT $2"
            ),
            concat!(
                $select_where,
                " AND ($1 IS NULL OR ",
                $alias,
                ".id < $1) ORDER BY ",
                $alias,
                ".id DESC LIMIT $2"
            ),
        ]
    };
}
pub(crate) use keyset_sql;

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Which database a `Store` talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Errors of the data layer, each with a message a sysadmin can act on.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open database {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("permission denied: {0}")]
    Denied(String),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
}

pub type DbResult<T> = Result<T, DbError>;

/// Direction of a keyset page relative to its cursor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    /// Rows with an id greater than the cursor, ascending.
    #[default]
    Forward,
    /// Rows with an id smaller than the cursor, returned in ascending order too.
    Backward,
}

/// One page request of a keyset-paginated listing: never an OFFSET, so page N costs the
/// same as page 1 on a table of a million rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub cursor: Option<i32>,
    pub direction: Direction,
    pub limit: i64,
}

impl Default for Page {
    fn default() -> Self {
        Page::first(100)
    }
}

impl Page {
    pub fn first(limit: i64) -> Page {
        Page {
            cursor: None,
            direction: Direction::Forward,
            limit,
        }
    }
    pub fn after(id: i32, limit: i64) -> Page {
        Page {
            cursor: Some(id),
            direction: Direction::Forward,
            limit,
        }
    }
    pub fn before(id: i32, limit: i64) -> Page {
        Page {
            cursor: Some(id),
            direction: Direction::Backward,
            limit,
        }
    }
    /// The last `limit` rows.
    pub fn last(limit: i64) -> Page {
        Page {
            cursor: None,
            direction: Direction::Backward,
            limit,
        }
    }
    pub(crate) fn sql(&self, variants: [&'static str; 2]) -> &'static str {
        match self.direction {
            Direction::Forward => variants[0],
            Direction::Backward => variants[1],
        }
    }
    /// Backward pages are fetched newest-first; callers always get ascending ids.
    pub(crate) fn order<T>(&self, mut rows: Vec<T>) -> Vec<T> {
        if self.direction == Direction::Backward {
            rows.reverse();
        }
        rows
    }
}

/// `LIKE` pattern for a case-insensitive "contains" search; `None` matches everything.
pub(crate) fn like_pattern(search: Option<&str>) -> Option<String> {
    let s = search?.trim();
    if s.is_empty() {
        return None;
    }
    let escaped = s
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    Some(format!("%{escaped}%"))
}

/// Current time as stored: UTC, microsecond precision (what Postgres keeps).
pub fn now() -> NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    now.with_nanosecond_micros()
}

trait MicrosPrecision {
    fn with_nanosecond_micros(self) -> Self;
}

impl MicrosPrecision for NaiveDateTime {
    fn with_nanosecond_micros(self) -> Self {
        use chrono::Timelike;
        let micros = self.nanosecond() / 1_000 * 1_000;
        self.with_nanosecond(micros).unwrap_or(self)
    }
}

/// Turns a unique-constraint violation into a readable conflict; other errors pass through.
pub(crate) fn conflict(what: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> DbError {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => DbError::Conflict(what()),
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            DbError::Invalid(format!("{} (a referenced row does not exist)", what()))
        }
        _ => DbError::Sqlx(err),
    }
}

/// Removes the password from a database URL so it can be printed, also from URLs too broken
/// to parse.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_string(),
    }
}

/// The shared handle to the database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: Pool,
    /// Set when the database has row-level security policies (see `rls.rs`).
    pub(crate) rls: rls::Switch,
}

impl Store {
    /// Opens `url` (`sqlite://PATH`, `sqlite::memory:`, `postgres://...`). A SQLite file is
    /// created with mode 0600 (and its parent directories) when missing.
    pub async fn connect(url: &str) -> DbResult<Store> {
        let redacted = redact_url(url);
        let fail = |reason: String| DbError::Connect {
            url: redacted.clone(),
            reason,
        };
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| fail(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let path = opts.get_filename().to_path_buf();
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            if !in_memory {
                prepare_sqlite_file(&path).map_err(|e| fail(e.to_string()))?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(if in_memory { 1 } else { 8 })
                .acquire_timeout(Duration::from_secs(15))
                .connect_with(opts)
                .await
                .map_err(|e| fail(describe_sqlx(&e)))?;
            Ok(Store {
                pool: Pool::Sqlite(pool),
                rls: rls::Switch::default(),
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = PgConnectOptions::from_str(url).map_err(|e| fail(e.to_string()))?;
            let rls = rls::Switch::default();
            let pool = rls::install_hooks(PgPoolOptions::new(), &rls)
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(opts)
                .await
                .map_err(|e| fail(describe_sqlx(&e)))?;
            let store = Store {
                pool: Pool::Postgres(pool),
                rls,
            };
            store.detect_row_level_security().await?;
            Ok(store)
        } else {
            Err(fail(
                "unsupported URL scheme (expected sqlite://PATH or postgres://USER@HOST/DB)".into(),
            ))
        }
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite pool, for code that must run backend-specific SQL (demo bulk loads).
    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.pool {
            Pool::Sqlite(p) => Some(p),
            Pool::Postgres(_) => None,
        }
    }

    /// The Postgres pool, for code that must run backend-specific SQL.
    pub fn pg_pool(&self) -> Option<&PgPool> {
        match &self.pool {
            Pool::Postgres(p) => Some(p),
            Pool::Sqlite(_) => None,
        }
    }

    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }
}

fn describe_sqlx(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".to_string(),
        other => other.to_string(),
    }
}

fn prepare_sqlite_file(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    if !path.exists() {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        match opts.open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The path of a `sqlite://` URL, if it is one.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let opts = SqliteConnectOptions::from_str(url).ok()?;
    Some(opts.get_filename().to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_print() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact_url("postgres://u:secret@/db"),
            "postgres://u:***@/db"
        );
        assert_eq!(
            redact_url("postgres://u:p@ss@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
    }
}
