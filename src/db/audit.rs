//! `recalliq_auditlog`: who did what, to which tenant, when, from where. Every login
//! (success and failure) and every write made through the CLI or the TUI adds one row; rows
//! are never updated. Reading needs a `UserScope`: super admins see every row, a tenant's
//! scope sees only that tenant's rows.
//!
//! Where the rows come from (see docs/ARCHITECTURE.md, "Audit log"):
//! - logins: `auth::authenticate` (TUI login and `recalliq auth check`);
//! - CLI writes: one hook in `cli::run` after a command succeeds or is refused;
//! - TUI writes: one hook where confirmations and forms are carried out (`App::confirmed`,
//!   `App::submit_form`) plus the editor save and the CSV import.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use serde::Serialize;

use super::{Actor, DbResult, Page, Store, UserScope, keyset_sql, like_pattern, now, on_pool};

/// Outcome values of an audit row.
pub const OUTCOME_OK: &str = "ok";
pub const OUTCOME_FAILED: &str = "failed";
pub const OUTCOME_DENIED: &str = "denied";

/// Action of a successful and of a refused login.
pub const ACTION_LOGIN: &str = "login";

/// One row of `recalliq_auditlog`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct AuditRecord {
    pub id: i32,
    pub created_at: chrono::NaiveDateTime,
    pub actor_id: Option<i32>,
    pub actor: String,
    pub tenant_id: Option<i32>,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub origin: String,
}

/// Through which interface this process acts (part of `origin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    Cli = 0,
    Tui = 1,
}

static INTERFACE: AtomicU8 = AtomicU8::new(0);

/// Declares the interface of this process (the TUI sets `Tui` before its login screen).
pub fn set_interface(i: Interface) {
    INTERFACE.store(i as u8, Ordering::Relaxed);
}

/// Where the actions of this process come from: interface, OS user and, over SSH, the
/// client's address (`SSH_CONNECTION`), e.g. `tui root ssh 203.0.113.9:51234`.
pub fn origin() -> String {
    static PLACE: OnceLock<String> = OnceLock::new();
    let place = PLACE.get_or_init(|| {
        origin_from(
            std::env::var("SSH_CONNECTION").ok().as_deref(),
            std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .ok()
                .as_deref(),
        )
    });
    let iface = if INTERFACE.load(Ordering::Relaxed) == Interface::Tui as u8 {
        "tui"
    } else {
        "cli"
    };
    format!("{iface} {place}")
}

/// `USER ssh IP:PORT` or `USER local`; each part cut to a sane length.
pub fn origin_from(ssh_connection: Option<&str>, user: Option<&str>) -> String {
    let clean = |s: &str, n: usize| -> String {
        s.chars()
            .filter(|c| !c.is_control())
            .take(n)
            .collect::<String>()
    };
    let user = user
        .map(|u| clean(u, 64))
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "?".into());
    let mut parts = ssh_connection.unwrap_or("").split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(ip), Some(port)) => format!("{user} ssh {}:{}", clean(ip, 64), clean(port, 8)),
        (Some(ip), None) => format!("{user} ssh {}", clean(ip, 64)),
        _ => format!("{user} local"),
    }
}

/// Filters of an audit listing (all optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Case-insensitive "contains" on actor, action, target and origin.
    pub search: Option<String>,
    /// Only this tenant (a super admin narrowing the view).
    pub tenant_id: Option<i32>,
}

impl Store {
    /// Records a successful write by `actor` concerning `tenant_id` (None: installation-wide).
    /// An audit row that cannot be written is logged and does not undo the write.
    pub async fn audit(&self, actor: &Actor, tenant_id: Option<i32>, action: &str, target: &str) {
        self.audit_outcome(actor, tenant_id, action, target, OUTCOME_OK)
            .await
    }

    /// Records an action with its outcome (`ok`, `failed`, `denied`).
    pub async fn audit_outcome(
        &self,
        actor: &Actor,
        tenant_id: Option<i32>,
        action: &str,
        target: &str,
        outcome: &str,
    ) {
        if let Err(e) = self
            .insert_audit(
                actor.user_id,
                &actor.username,
                tenant_id,
                action,
                target,
                outcome,
            )
            .await
        {
            tracing::error!(
                "audit log: cannot record {action} by {}: {e}",
                actor.username
            );
        }
    }

    /// Records a login attempt under the name that was typed (which may not exist).
    pub async fn audit_login(
        &self,
        username: &str,
        user_id: Option<i32>,
        tenant_id: Option<i32>,
        result: Result<(), &str>,
    ) {
        let (outcome, target) = match result {
            Ok(()) => (OUTCOME_OK, String::new()),
            Err(reason) => (OUTCOME_FAILED, reason.to_string()),
        };
        let name: String = username
            .chars()
            .filter(|c| !c.is_control())
            .take(150)
            .collect();
        if let Err(e) = self
            .insert_audit(user_id, &name, tenant_id, ACTION_LOGIN, &target, outcome)
            .await
        {
            tracing::error!("audit log: cannot record the login of {name}: {e}");
        }
    }

    async fn insert_audit(
        &self,
        actor_id: Option<i32>,
        actor: &str,
        tenant_id: Option<i32>,
        action: &str,
        target: &str,
        outcome: &str,
    ) -> DbResult<()> {
        let action: String = action.chars().take(100).collect();
        let target: String = target.chars().take(2000).collect();
        on_pool!(self, p => {
            sqlx::query(
                "INSERT INTO recalliq_auditlog
                 (created_at, actor_id, actor, tenant_id, action, target, outcome, origin)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(now())
            .bind(actor_id)
            .bind(actor)
            .bind(tenant_id)
            .bind(&action)
            .bind(&target)
            .bind(outcome)
            .bind(origin())
            .execute(p)
            .await
            .map(|_| ())?
        });
        Ok(())
    }

    /// Audit rows in the scope, keyset-paginated by id (ascending; `Page::last` for the newest).
    pub async fn list_audit(
        &self,
        scope: UserScope,
        filter: &AuditFilter,
        page: Page,
    ) -> DbResult<Vec<AuditRecord>> {
        const SQL: [&str; 2] = keyset_sql!(
            "a",
            concat!(
                "SELECT a.id, a.created_at, a.actor_id, a.actor, a.tenant_id, a.action, a.target, a.outcome, a.origin
                 FROM recalliq_auditlog a WHERE ($3 IS NULL OR a.tenant_id = $3)
                 AND ($4 IS NULL OR a.tenant_id = $4)
                 AND ($5 IS NULL OR LOWER(a.actor) LIKE $5 ESCAPE '\\' OR LOWER(a.action) LIKE $5 ESCAPE '\\'
                      OR LOWER(a.target) LIKE $5 ESCAPE '\\' OR LOWER(a.origin) LIKE $5 ESCAPE '\\'
                      OR LOWER(a.outcome) LIKE $5 ESCAPE '\\')"
            )
        );
        let pattern = like_pattern(filter.search.as_deref());
        let rows: Vec<AuditRecord> = on_pool!(self, p => {
            sqlx::query_as(page.sql(SQL))
                .bind(page.cursor)
                .bind(page.limit)
                .bind(scope_tenant(scope))
                .bind(filter.tenant_id)
                .bind(&pattern)
                .fetch_all(p)
                .await?
        });
        Ok(page.order(rows))
    }

    pub async fn count_audit(&self, scope: UserScope, filter: &AuditFilter) -> DbResult<i64> {
        let pattern = like_pattern(filter.search.as_deref());
        Ok(on_pool!(self, p => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM recalliq_auditlog a WHERE ($1 IS NULL OR a.tenant_id = $1)
                 AND ($2 IS NULL OR a.tenant_id = $2)
                 AND ($3 IS NULL OR LOWER(a.actor) LIKE $3 ESCAPE '\\' OR LOWER(a.action) LIKE $3 ESCAPE '\\'
                      OR LOWER(a.target) LIKE $3 ESCAPE '\\' OR LOWER(a.origin) LIKE $3 ESCAPE '\\'
                      OR LOWER(a.outcome) LIKE $3 ESCAPE '\\')",
            )
            .bind(scope_tenant(scope))
            .bind(filter.tenant_id)
            .bind(&pattern)
            .fetch_one(p)
            .await?
        }))
    }
}

fn scope_tenant(scope: UserScope) -> Option<i32> {
    match scope {
        UserScope::All(_) => None,
        UserScope::Tenant(t) => Some(t.tenant_id()),
    }
}

#[cfg(test)]
mod tests {
    use super::origin_from;

    #[test]
    fn origin_names_the_ssh_client() {
        assert_eq!(
            origin_from(Some("203.0.113.9 51234 10.0.0.1 22"), Some("ops")),
            "ops ssh 203.0.113.9:51234"
        );
        assert_eq!(origin_from(None, Some("ops")), "ops local");
        assert_eq!(origin_from(Some(""), None), "? local");
        assert_eq!(
            origin_from(Some("1.2.3.4\n5 6"), Some("a\u{1b}b")),
            "ab ssh 1.2.3.4:5"
        );
    }
}
