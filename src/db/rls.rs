//! Postgres row-level security, opt-in (`recalliq migrate --row-level-security`).
//!
//! Every tenant-owned table (found in the catalog, see `ownership.rs`) gets one policy,
//! `recalliq_tenant_isolation`, keyed on two per-connection settings:
//! `recalliq.tenant_id` (the only tenant whose rows are visible and writable) and
//! `recalliq.bypass` (`on` for super admin work). A connection with neither sees nothing.
//!
//! The store sets both on every connection it hands out: the pool's `after_connect` (new
//! connections) and `before_acquire` (idle ones) hooks apply the *context* of the task that
//! asks for the connection. The context comes from [`scoped`] (a `TenantScope`, so only an
//! actor allowed into that tenant can enter it) or [`bypass`] (an `AllTenants`, so only a
//! super admin can), else from the process default ([`set_default_bypass`] for the shell's
//! system actor and the worker). Nothing is set, and no round trip spent, on a database
//! without the policies.
//!
//! Postgres exempts superusers, `BYPASSRLS` roles and (without FORCE) the tables' owner from
//! every policy: that is the explicit bypass role for the web app and for migrations; run
//! recalliq itself as an ordinary role (see docs/SECURITY.md).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use serde::Serialize;
use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::{AssertSqlSafe, Postgres};

use super::ownership::{Ownership, ident};
use super::{AllTenants, DbError, DbResult, Pool, Store, TenantScope};

/// Name of the policy on every tenant-owned table.
pub const POLICY: &str = "recalliq_tenant_isolation";

const BYPASS_EXPR: &str = "current_setting('recalliq.bypass', true) = 'on'";
const TENANT_EXPR: &str = "NULLIF(current_setting('recalliq.tenant_id', true), '')::integer";

/// Whose rows a connection may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RlsContext {
    /// No rows of any tenant-owned table.
    Nothing,
    /// The rows of one tenant.
    Tenant(i32),
    /// Every row (super admin work).
    Bypass,
}

tokio::task_local! {
    static CONTEXT: RlsContext;
}

// Process default: i64::MIN = Nothing, -1 = Bypass, otherwise a tenant id.
static DEFAULT: AtomicI64 = AtomicI64::new(i64::MIN);

fn encode(ctx: RlsContext) -> i64 {
    match ctx {
        RlsContext::Nothing => i64::MIN,
        RlsContext::Bypass => -1,
        RlsContext::Tenant(id) => i64::from(id),
    }
}

fn decode(v: i64) -> RlsContext {
    match v {
        i64::MIN => RlsContext::Nothing,
        -1 => RlsContext::Bypass,
        id => RlsContext::Tenant(id as i32),
    }
}

/// Runs `fut` with connections that see only `scope`'s tenant.
pub async fn scoped<F: Future>(scope: TenantScope, fut: F) -> F::Output {
    CONTEXT
        .scope(RlsContext::Tenant(scope.tenant_id()), fut)
        .await
}

/// Runs `fut` with connections that see every tenant; needs a super admin's `AllTenants`.
pub async fn bypass<F: Future>(_all: &AllTenants, fut: F) -> F::Output {
    CONTEXT.scope(RlsContext::Bypass, fut).await
}

/// Runs `fut` with connections that see no tenant-owned row at all.
pub async fn nothing<F: Future>(fut: F) -> F::Output {
    CONTEXT.scope(RlsContext::Nothing, fut).await
}

/// Makes every-tenant access the default of this process (the shell's system actor, the
/// worker). Tasks inside [`scoped`] still see only their tenant.
pub fn set_default_bypass(_all: &AllTenants) {
    DEFAULT.store(encode(RlsContext::Bypass), Ordering::SeqCst);
}

/// Makes one tenant the default of this process (a TUI session of a tenant user).
pub fn set_default_scope(scope: TenantScope) {
    DEFAULT.store(
        encode(RlsContext::Tenant(scope.tenant_id())),
        Ordering::SeqCst,
    );
}

/// A TUI session: a tenant-bound user's connections see only their tenant from now on, a
/// super admin's every tenant.
pub fn enter_session(actor: &super::Actor) {
    match (actor.all_tenants(), actor.own_scope()) {
        (Ok(all), _) => set_default_bypass(&all),
        (Err(_), Ok(scope)) => set_default_scope(scope),
        (Err(_), Err(_)) => DEFAULT.store(encode(RlsContext::Nothing), Ordering::SeqCst),
    }
}

/// Back at the login screen, which looks users up as the shell's system actor again.
pub fn leave_session() {
    if let Ok(all) = super::Actor::system().all_tenants() {
        set_default_bypass(&all);
    }
}

/// The context of the calling task.
pub fn current() -> RlsContext {
    CONTEXT
        .try_with(|c| *c)
        .unwrap_or_else(|_| decode(DEFAULT.load(Ordering::SeqCst)))
}

/// Whether the store's database has the policies (then every acquisition sets the context).
#[derive(Clone, Debug, Default)]
pub(crate) struct Switch(Arc<AtomicBool>);

impl Switch {
    pub(crate) fn set(&self, on: bool) {
        self.0.store(on, Ordering::SeqCst);
    }
    pub(crate) fn is_on(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

async fn apply(conn: &mut PgConnection, ctx: RlsContext) -> Result<(), sqlx::Error> {
    let (tenant, bypass) = match ctx {
        RlsContext::Nothing => (String::new(), ""),
        RlsContext::Tenant(id) => (id.to_string(), ""),
        RlsContext::Bypass => (String::new(), "on"),
    };
    sqlx::query(
        "SELECT set_config('recalliq.tenant_id', $1, false), set_config('recalliq.bypass', $2, false)",
    )
    .bind(tenant)
    .bind(bypass)
    .execute(conn)
    .await?;
    Ok(())
}

/// Installs the hooks that set the context on every connection the pool hands out. The
/// context is read when the caller asks for a connection, in the caller's task.
pub(crate) fn install_hooks(opts: PgPoolOptions, switch: &Switch) -> PgPoolOptions {
    let on_connect = switch.clone();
    let on_acquire = switch.clone();
    opts.after_connect(move |conn, _meta| {
        let enabled = on_connect.is_on();
        let ctx = current();
        Box::pin(async move {
            if enabled {
                apply(conn, ctx).await?;
            }
            Ok(())
        })
    })
    .before_acquire(move |conn, _meta| {
        let enabled = on_acquire.is_on();
        let ctx = current();
        Box::pin(async move {
            if enabled {
                apply(conn, ctx).await?;
            }
            Ok(true)
        })
    })
}

/// What `migrate --row-level-security` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RlsReport {
    pub enabled: bool,
    /// Tables that carry the policy now.
    pub tables: Vec<String>,
    /// Set when the connected role is exempt from the policies (superuser, BYPASSRLS or the
    /// tables' owner), so they protect nothing for this connection.
    pub warning: Option<String>,
}

fn policy_expr(table: &str, how: &Ownership) -> String {
    match how {
        Ownership::Tenant => format!("{BYPASS_EXPR} OR \"id\" = {TENANT_EXPR}"),
        Ownership::Direct => format!("{BYPASS_EXPR} OR \"tenant_id\" = {TENANT_EXPR}"),
        Ownership::Via(fk) => format!(
            "{BYPASS_EXPR} OR EXISTS (SELECT 1 FROM {} p WHERE p.{} = {}.{})",
            ident(&fk.parent),
            ident(&fk.parent_column),
            ident(table),
            ident(&fk.column)
        ),
    }
}

impl Store {
    /// Whether the database carries recalliq's row-level security policies.
    pub async fn row_level_security(&self) -> DbResult<bool> {
        match &self.pool {
            Pool::Sqlite(_) => Ok(false),
            Pool::Postgres(p) => {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pg_policies WHERE schemaname = current_schema() AND policyname = $1",
                )
                .bind(POLICY)
                .fetch_one(p)
                .await?;
                Ok(n > 0)
            }
        }
    }

    /// Re-reads whether the policies exist and sets (or stops setting) the context on
    /// connections accordingly. Called on connect.
    pub(crate) async fn detect_row_level_security(&self) -> DbResult<()> {
        let on = self.row_level_security().await?;
        self.rls.set(on);
        Ok(())
    }

    /// Creates (or, with `enable = false`, drops) the policy on every tenant-owned table,
    /// in one transaction. Postgres only; idempotent.
    pub async fn set_row_level_security(
        &self,
        _all: &AllTenants,
        enable: bool,
    ) -> DbResult<RlsReport> {
        let Pool::Postgres(pool) = &self.pool else {
            return Err(DbError::Invalid(
                "row-level security needs Postgres; the embedded SQLite database has one user"
                    .into(),
            ));
        };
        let cat = self.catalog().await?;
        let mut tx = pool.begin().await?;
        let mut tables = Vec::new();
        for (table, how) in &cat.owned {
            let t = ident(table);
            let p = ident(POLICY);
            exec(&mut tx, format!("DROP POLICY IF EXISTS {p} ON {t}")).await?;
            if enable {
                exec(
                    &mut tx,
                    format!("ALTER TABLE {t} ENABLE ROW LEVEL SECURITY"),
                )
                .await?;
                let expr = policy_expr(table, how);
                exec(
                    &mut tx,
                    format!("CREATE POLICY {p} ON {t} USING ({expr}) WITH CHECK ({expr})"),
                )
                .await?;
                tables.push(table.clone());
            } else {
                exec(
                    &mut tx,
                    format!("ALTER TABLE {t} DISABLE ROW LEVEL SECURITY"),
                )
                .await?;
            }
        }
        tx.commit().await?;
        self.rls.set(enable);
        let (superuser, bypassrls, owner): (bool, bool, bool) = sqlx::query_as(
            "SELECT r.rolsuper, r.rolbypassrls,
                    EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema()
                            AND tablename = 'tenants_tenant' AND tableowner = current_user)
             FROM pg_roles r WHERE r.rolname = current_user",
        )
        .fetch_one(pool)
        .await?;
        let role: String = sqlx::query_scalar("SELECT current_user::text")
            .fetch_one(pool)
            .await?;
        let warning = match (superuser, bypassrls, owner) {
            (true, _, _) => Some(format!("role {role} is a superuser")),
            (_, true, _) => Some(format!("role {role} has BYPASSRLS")),
            (_, _, true) => Some(format!("role {role} owns the tables")),
            _ => None,
        }
        .filter(|_| enable)
        .map(|why| {
            format!(
                "{why} and so is exempt from the policies; run recalliq as an ordinary role (see docs/SECURITY.md)"
            )
        });
        Ok(RlsReport {
            enabled: enable,
            tables,
            warning,
        })
    }
}

async fn exec(tx: &mut sqlx::Transaction<'static, Postgres>, sql: String) -> DbResult<()> {
    sqlx::query(AssertSqlSafe(sql)).execute(&mut **tx).await?;
    Ok(())
}
