//! `tenant purge`: removes a tenant and every row it owns, in one transaction. What it owns
//! is read from the catalog (see `ownership.rs`), so tables added later are purged too.
//! Rows of other tenants that merely point at a purged row through a nullable key (e.g. a
//! suppression entry naming a source batch) keep their row with the key set to NULL.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::AssertSqlSafe;

use super::ownership::{Catalog, ident};
use super::{AllTenants, DbError, DbResult, Pool, Store};

/// Rows deleted per table by a purge (tables with no rows are left out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    pub tenant_id: i32,
    pub domain: String,
    pub deleted: BTreeMap<String, u64>,
    /// Rows whose nullable reference to a purged row was set to NULL (e.g. batches of other
    /// tenants "created by" a purged user); counted before any of them is deleted.
    pub detached: BTreeMap<String, u64>,
}

impl PurgeReport {
    pub fn total(&self) -> u64 {
        self.deleted.values().sum()
    }
}

/// One statement of the purge plan, in execution order.
#[derive(Debug, Clone)]
enum Step {
    Delete {
        table: String,
        cond: String,
    },
    Detach {
        table: String,
        column: String,
        cond: String,
    },
}

const MAX_DEPTH: usize = 10;

fn plan_delete(cat: &Catalog, table: &str, cond: &str, depth: usize, out: &mut Vec<Step>) {
    if depth > MAX_DEPTH {
        return;
    }
    for fk in cat.referencing(table) {
        if fk.table == table {
            continue;
        }
        let sub = format!(
            "{} IN (SELECT {} FROM {} WHERE {})",
            ident(&fk.column),
            ident(&fk.parent_column),
            ident(table),
            cond
        );
        // A tenant_id key means "owned" even where the seed leaves it nullable (core_user).
        if fk.not_null || fk.column == "tenant_id" {
            plan_delete(cat, &fk.table, &sub, depth + 1, out);
        } else {
            out.push(Step::Detach {
                table: fk.table.clone(),
                column: fk.column.clone(),
                cond: sub,
            });
        }
    }
    out.push(Step::Delete {
        table: table.to_string(),
        cond: cond.to_string(),
    });
}

fn plan(cat: &Catalog) -> Vec<Step> {
    let mut steps = Vec::new();
    // Tables with a tenant_id column but no declared key to tenants_tenant are reached too.
    for (table, how) in &cat.owned {
        if matches!(how, super::ownership::Ownership::Direct) {
            plan_delete(cat, table, "\"tenant_id\" = $1", 0, &mut steps);
        }
    }
    plan_delete(cat, "tenants_tenant", "\"id\" = $1", 0, &mut steps);
    steps
}

impl Store {
    /// Deletes tenant `tenant_id` and everything it owns. Refused while one of its batches
    /// is running (pause or cancel it first), so no worker writes into rows being removed.
    pub async fn purge_tenant(&self, _all: &AllTenants, tenant_id: i32) -> DbResult<PurgeReport> {
        let domain: Option<String> = super::on_pool!(self, p => {
            sqlx::query_scalar("SELECT domain FROM tenants_tenant WHERE id = $1")
                .bind(tenant_id)
                .fetch_optional(p)
                .await?
        });
        let Some(domain) = domain else {
            return Err(DbError::NotFound(format!("tenant #{tenant_id}")));
        };
        let running: i64 = super::on_pool!(self, p => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM batches_batch WHERE tenant_id = $1 AND status = 'running'",
            )
            .bind(tenant_id)
            .fetch_one(p)
            .await?
        });
        if running > 0 {
            return Err(DbError::Conflict(format!(
                "tenant {domain} has {running} running batch(es); pause or cancel them first"
            )));
        }
        let cat = self.catalog().await?;
        let steps = plan(&cat);
        let mut report = PurgeReport {
            tenant_id,
            domain,
            ..PurgeReport::default()
        };
        macro_rules! run_steps {
            ($tx:expr) => {{
                for step in &steps {
                    match step {
                        Step::Delete { table, cond } => {
                            let sql = format!("DELETE FROM {} WHERE {}", ident(table), cond);
                            let n = sqlx::query(AssertSqlSafe(sql))
                                .bind(tenant_id)
                                .execute(&mut *$tx)
                                .await?
                                .rows_affected();
                            if n > 0 {
                                *report.deleted.entry(table.clone()).or_default() += n;
                            }
                        }
                        Step::Detach {
                            table,
                            column,
                            cond,
                        } => {
                            let sql = format!(
                                "UPDATE {} SET {} = NULL WHERE {}",
                                ident(table),
                                ident(column),
                                cond
                            );
                            let n = sqlx::query(AssertSqlSafe(sql))
                                .bind(tenant_id)
                                .execute(&mut *$tx)
                                .await?
                                .rows_affected();
                            if n > 0 {
                                *report.detached.entry(table.clone()).or_default() += n;
                            }
                        }
                    }
                }
            }};
        }
        match &self.pool {
            Pool::Sqlite(p) => {
                let mut conn = p.acquire().await?;
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                let result: Result<(), sqlx::Error> = async {
                    run_steps!(conn);
                    Ok(())
                }
                .await;
                match result {
                    Ok(()) => {
                        sqlx::query("COMMIT").execute(&mut *conn).await?;
                    }
                    Err(e) => {
                        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                        return Err(e.into());
                    }
                }
            }
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                run_steps!(tx);
                tx.commit().await?;
            }
        }
        Ok(report)
    }
}
