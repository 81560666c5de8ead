//! Which tables a tenant owns, read from the database's own catalog rather than from a list
//! in the code: a table with a `tenant_id` column is owned directly; a table without one is
//! owned through a NOT NULL foreign key to an owned table (contacts through their group,
//! email logs through their batch). Tables added later (by recalliq or by the web app) are
//! picked up without a code change. Used by `tenant purge` and by row-level security.

use std::collections::{BTreeMap, BTreeSet};

use super::{DbResult, Pool, Store};

/// A single-column foreign key `table.column -> parent.parent_column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub table: String,
    pub column: String,
    pub parent: String,
    pub parent_column: String,
    pub not_null: bool,
}

/// How a table belongs to a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// `tenants_tenant` itself: its `id` is the tenant.
    Tenant,
    /// The table's own `tenant_id` column.
    Direct,
    /// Through a NOT NULL foreign key to an owned table.
    Via(ForeignKey),
}

/// The tables of the current schema, their foreign keys and how each is owned.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tables: BTreeSet<String>,
    pub foreign_keys: Vec<ForeignKey>,
    pub owned: BTreeMap<String, Ownership>,
}

impl Catalog {
    /// Foreign keys that point at `parent`.
    pub fn referencing<'a>(&'a self, parent: &'a str) -> impl Iterator<Item = &'a ForeignKey> {
        self.foreign_keys
            .iter()
            .filter(move |fk| fk.parent == parent)
    }
}

/// Table and column names come from the catalog; they are still quoted, never trusted.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Store {
    /// Reads the schema's tables and single-column foreign keys and works out ownership.
    pub async fn catalog(&self) -> DbResult<Catalog> {
        let mut tables = BTreeSet::new();
        let mut fks = Vec::new();
        let mut tenant_cols = BTreeSet::new();
        match &self.pool {
            Pool::Sqlite(p) => {
                let names: Vec<String> = sqlx::query_scalar(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
                )
                .fetch_all(p)
                .await?;
                for t in names {
                    let cols: Vec<(String, i64)> =
                        sqlx::query_as("SELECT name, \"notnull\" FROM pragma_table_info($1)")
                            .bind(&t)
                            .fetch_all(p)
                            .await?;
                    if cols.iter().any(|(c, _)| c == "tenant_id") {
                        tenant_cols.insert(t.clone());
                    }
                    let keys: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(
                        "SELECT id, \"from\", \"table\", \"to\" FROM pragma_foreign_key_list($1)",
                    )
                    .bind(&t)
                    .fetch_all(p)
                    .await?;
                    for (id, from, parent, to) in &keys {
                        if keys.iter().filter(|k| k.0 == *id).count() != 1 {
                            continue;
                        }
                        let not_null = cols.iter().any(|(c, nn)| c == from && *nn != 0);
                        fks.push(ForeignKey {
                            table: t.clone(),
                            column: from.clone(),
                            parent: parent.clone(),
                            parent_column: to.clone().unwrap_or_else(|| "id".into()),
                            not_null,
                        });
                    }
                    tables.insert(t);
                }
            }
            Pool::Postgres(p) => {
                let names: Vec<String> = sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables
                     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
                     ORDER BY 1",
                )
                .fetch_all(p)
                .await?;
                tables.extend(names);
                let with_tenant: Vec<String> = sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.columns
                     WHERE table_schema = current_schema() AND column_name = 'tenant_id'",
                )
                .fetch_all(p)
                .await?;
                tenant_cols.extend(with_tenant);
                let rows: Vec<(String, String, String, String, bool)> = sqlx::query_as(
                    "SELECT c.conrelid::regclass::text, a.attname::text, c.confrelid::regclass::text,
                            fa.attname::text, a.attnotnull
                     FROM pg_constraint c
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                     JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1]
                     WHERE c.contype = 'f' AND array_length(c.conkey, 1) = 1
                       AND c.connamespace = current_schema()::regnamespace",
                )
                .fetch_all(p)
                .await?;
                for (table, column, parent, parent_column, not_null) in rows {
                    fks.push(ForeignKey {
                        table: table.trim_matches('"').to_string(),
                        column,
                        parent: parent.trim_matches('"').to_string(),
                        parent_column,
                        not_null,
                    });
                }
            }
        }
        let mut owned = BTreeMap::new();
        if tables.contains("tenants_tenant") {
            owned.insert("tenants_tenant".to_string(), Ownership::Tenant);
        }
        for t in &tenant_cols {
            if t != "tenants_tenant" && tables.contains(t) {
                owned.insert(t.clone(), Ownership::Direct);
            }
        }
        // Ownership through NOT NULL keys, to a fixed point (logs -> batch -> tenant).
        loop {
            let mut added = false;
            for fk in &fks {
                if fk.not_null
                    && !owned.contains_key(&fk.table)
                    && fk.table != fk.parent
                    && owned.contains_key(&fk.parent)
                {
                    owned.insert(fk.table.clone(), Ownership::Via(fk.clone()));
                    added = true;
                }
            }
            if !added {
                break;
            }
        }
        fks.sort_by(|a, b| (&a.table, &a.column).cmp(&(&b.table, &b.column)));
        Ok(Catalog {
            tables,
            foreign_keys: fks,
            owned,
        })
    }
}
