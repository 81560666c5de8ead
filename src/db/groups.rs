//! `tenants_group` and `tenants_groupemail`: contact groups and their addresses. Contacts are
//! reached only through a group of the caller's tenant; the (group, email) rule is enforced
//! case-insensitively on top of the seed's case-sensitive constraint.

use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use super::tenants::required;
use super::{
    DbError, DbResult, Page, Store, TenantScope, conflict, keyset_sql, like_pattern, now, on_pool,
};
use crate::domain::{clean_display_name, normalize_email};

/// A row of `tenants_group`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct Group {
    pub id: i32,
    pub tenant_id: i32,
    pub name: String,
    pub description: Option<String>,
    pub is_active: bool,
    pub created_at: Option<chrono::NaiveDateTime>,
    pub updated_at: Option<chrono::NaiveDateTime>,
}

/// A group with the spec's "Group Email Counts".
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct GroupCounts {
    pub id: i32,
    pub name: String,
    pub description: Option<String>,
    pub is_active: bool,
    pub email_count: i64,
    pub active_emails: i64,
}

/// A row of `tenants_groupemail`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct Contact {
    pub id: i32,
    pub group_id: i32,
    pub email: String,
    pub name: Option<String>,
    pub is_active: bool,
    pub variables: Option<Json<Value>>,
    pub created_at: Option<chrono::NaiveDateTime>,
}

/// Fields of a new contact.
#[derive(Debug, Clone, Default)]
pub struct NewContact {
    pub email: String,
    pub name: Option<String>,
    pub variables: Option<Value>,
}

macro_rules! group_cols {
    () => {
        "g.id, g.tenant_id, g.name, g.description, COALESCE(g.is_active, TRUE) AS is_active,
         g.created_at, g.updated_at"
    };
}

macro_rules! contact_cols {
    () => {
        "ge.id, ge.group_id, ge.email, ge.name, COALESCE(ge.is_active, TRUE) AS is_active,
         ge.variables, ge.created_at"
    };
}

fn check_variables(vars: &Option<Value>) -> DbResult<()> {
    match vars {
        None | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(DbError::Invalid(
            "contact variables must be a JSON object".into(),
        )),
    }
}

impl Store {
    pub async fn create_group(
        &self,
        scope: TenantScope,
        name: &str,
        description: Option<&str>,
    ) -> DbResult<Group> {
        let name = required("group name", name, 200)?;
        let ts = now();
        let id: i32 = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let dup: Option<i32> = sqlx::query_scalar(
                "SELECT id FROM tenants_group WHERE tenant_id = $1 AND LOWER(name) = LOWER($2) LIMIT 1",
            )
            .bind(scope.tenant_id())
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await?;
            if dup.is_some() {
                return Err(DbError::Conflict(format!("a group named '{name}' already exists")));
            }
            let id: i32 = sqlx::query_scalar(
                "INSERT INTO tenants_group (tenant_id, name, description, is_active, created_at, updated_at)
                 VALUES ($1, $2, $3, TRUE, $4, $4) RETURNING id",
            )
            .bind(scope.tenant_id())
            .bind(&name)
            .bind(description)
            .bind(ts)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            id
        });
        self.get_group(scope, id).await
    }

    pub async fn get_group(&self, scope: TenantScope, id: i32) -> DbResult<Group> {
        let row: Option<Group> = on_pool!(self, p => {
            sqlx::query_as(concat!("SELECT ", group_cols!(), " FROM tenants_group g WHERE g.id = $1 AND g.tenant_id = $2"))
                .bind(id)
                .bind(scope.tenant_id())
                .fetch_optional(p)
                .await?
        });
        row.ok_or_else(|| DbError::NotFound(format!("group #{id}")))
    }

    /// A group by name (case-insensitive) or, when `key` is a number, by id.
    pub async fn find_group(&self, scope: TenantScope, key: &str) -> DbResult<Group> {
        if let Ok(id) = key.trim().parse::<i32>()
            && let Ok(g) = self.get_group(scope, id).await
        {
            return Ok(g);
        }
        let row: Option<Group> = on_pool!(self, p => {
            sqlx::query_as(concat!(
                "SELECT ", group_cols!(), " FROM tenants_group g WHERE g.tenant_id = $1 AND LOWER(g.name) = LOWER($2)
                 ORDER BY g.id LIMIT 1"
            ))
            .bind(scope.tenant_id())
            .bind(key.trim())
            .fetch_optional(p)
            .await?
        });
        row.ok_or_else(|| DbError::NotFound(format!("group '{}'", key.trim())))
    }

    pub async fn list_groups(
        &self,
        scope: TenantScope,
        page: Page,
        search: Option<&str>,
    ) -> DbResult<Vec<Group>> {
        const SQL: [&str; 2] = keyset_sql!(
            "g",
            concat!(
                "SELECT ", group_cols!(), " FROM tenants_group g WHERE g.tenant_id = $3
                 AND ($4 IS NULL OR LOWER(g.name) LIKE $4 ESCAPE '\\' OR LOWER(COALESCE(g.description, '')) LIKE $4 ESCAPE '\\')"
            )
        );
        let pattern = like_pattern(search);
        let rows: Vec<Group> = on_pool!(self, p => {
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

    pub async fn count_groups(&self, scope: TenantScope) -> DbResult<i64> {
        Ok(on_pool!(self, p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM tenants_group WHERE tenant_id = $1")
                .bind(scope.tenant_id())
                .fetch_one(p)
                .await?
        }))
    }

    /// Groups whose name or description matches `search` (all when none), for the TUI list.
    pub async fn count_groups_matching(
        &self,
        scope: TenantScope,
        search: Option<&str>,
    ) -> DbResult<i64> {
        let pattern = like_pattern(search);
        Ok(on_pool!(self, p => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM tenants_group g WHERE g.tenant_id = $1
                 AND ($2 IS NULL OR LOWER(g.name) LIKE $2 ESCAPE '\\' OR LOWER(COALESCE(g.description, '')) LIKE $2 ESCAPE '\\')",
            )
            .bind(scope.tenant_id())
            .bind(&pattern)
            .fetch_one(p)
            .await?
        }))
    }

    /// Total and active contacts of one group (any group, active or not).
    pub async fn contact_counts(&self, scope: TenantScope, group_id: i32) -> DbResult<(i64, i64)> {
        let row: (i64, i64) = on_pool!(self, p => {
            sqlx::query_as(
                "SELECT COUNT(ge.id), COUNT(CASE WHEN ge.is_active = TRUE THEN 1 END)
                 FROM tenants_groupemail ge JOIN tenants_group g ON g.id = ge.group_id
                 WHERE ge.group_id = $1 AND g.tenant_id = $2",
            )
            .bind(group_id)
            .bind(scope.tenant_id())
            .fetch_one(p)
            .await?
        });
        Ok(row)
    }

    /// The spec's "Get Group Email Counts": active groups with total and active contacts.
    pub async fn group_counts(&self, scope: TenantScope) -> DbResult<Vec<GroupCounts>> {
        Ok(on_pool!(self, p => {
            sqlx::query_as(
                "SELECT g.id, g.name, g.description, COALESCE(g.is_active, TRUE) AS is_active,
                        COUNT(ge.id) AS email_count,
                        COUNT(CASE WHEN ge.is_active = TRUE THEN 1 END) AS active_emails
                 FROM tenants_group g
                 LEFT JOIN tenants_groupemail ge ON g.id = ge.group_id
                 WHERE g.tenant_id = $1 AND g.is_active = TRUE
                 GROUP BY g.id, g.name, g.description, g.is_active
                 ORDER BY email_count DESC, g.id",
            )
            .bind(scope.tenant_id())
            .fetch_all(p)
            .await?
        }))
    }

    pub async fn update_group(
        &self,
        scope: TenantScope,
        id: i32,
        name: Option<&str>,
        description: Option<&str>,
    ) -> DbResult<Group> {
        let name = name.map(|n| required("group name", n, 200)).transpose()?;
        let n = on_pool!(self, p => {
            sqlx::query(
                "UPDATE tenants_group SET name = COALESCE($3, name), description = COALESCE($4, description),
                    updated_at = $5 WHERE id = $1 AND tenant_id = $2",
            )
            .bind(id)
            .bind(scope.tenant_id())
            .bind(&name)
            .bind(description)
            .bind(now())
            .execute(p)
            .await?
            .rows_affected()
        });
        if n == 0 {
            return Err(DbError::NotFound(format!("group #{id}")));
        }
        self.get_group(scope, id).await
    }

    pub async fn set_group_active(
        &self,
        scope: TenantScope,
        id: i32,
        active: bool,
    ) -> DbResult<Group> {
        let n = on_pool!(self, p => {
            sqlx::query("UPDATE tenants_group SET is_active = $3, updated_at = $4 WHERE id = $1 AND tenant_id = $2")
                .bind(id)
                .bind(scope.tenant_id())
                .bind(active)
                .bind(now())
                .execute(p)
                .await?
                .rows_affected()
        });
        if n == 0 {
            return Err(DbError::NotFound(format!("group #{id}")));
        }
        self.get_group(scope, id).await
    }

    pub async fn add_contact(
        &self,
        scope: TenantScope,
        group_id: i32,
        new: &NewContact,
    ) -> DbResult<Contact> {
        self.get_group(scope, group_id).await?;
        let email = normalize_email(&new.email).map_err(|e| DbError::Invalid(e.to_string()))?;
        let name = new
            .name
            .as_deref()
            .map(clean_display_name)
            .filter(|n| !n.is_empty());
        check_variables(&new.variables)?;
        let vars = new.variables.clone().map(Json);
        let id: i32 = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let dup: Option<String> = sqlx::query_scalar(
                "SELECT email FROM tenants_groupemail WHERE group_id = $1 AND LOWER(email) = LOWER($2) LIMIT 1",
            )
            .bind(group_id)
            .bind(&email)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(existing) = dup {
                return Err(DbError::Conflict(format!("{existing} is already in this group")));
            }
            let id: i32 = sqlx::query_scalar(
                "INSERT INTO tenants_groupemail (group_id, email, name, is_active, variables, created_at)
                 VALUES ($1, $2, $3, TRUE, $4, $5) RETURNING id",
            )
            .bind(group_id)
            .bind(&email)
            .bind(&name)
            .bind(&vars)
            .bind(now())
            .fetch_one(&mut *tx)
            .await
            .map_err(conflict(|| format!("{email} is already in this group")))?;
            tx.commit().await?;
            id
        });
        self.get_contact(scope, id).await
    }

    pub async fn get_contact(&self, scope: TenantScope, id: i32) -> DbResult<Contact> {
        let row: Option<Contact> = on_pool!(self, p => {
            sqlx::query_as(concat!(
                "SELECT ", contact_cols!(), " FROM tenants_groupemail ge
                 JOIN tenants_group g ON g.id = ge.group_id
                 WHERE ge.id = $1 AND g.tenant_id = $2"
            ))
            .bind(id)
            .bind(scope.tenant_id())
            .fetch_optional(p)
            .await?
        });
        row.ok_or_else(|| DbError::NotFound(format!("contact #{id}")))
    }

    /// A group's contacts by id, keyset-paginated; `search` matches email or name.
    pub async fn list_contacts(
        &self,
        scope: TenantScope,
        group_id: i32,
        page: Page,
        search: Option<&str>,
    ) -> DbResult<Vec<Contact>> {
        const SQL: [&str; 2] = keyset_sql!(
            "ge",
            concat!(
                "SELECT ", contact_cols!(), " FROM tenants_groupemail ge
                 JOIN tenants_group g ON g.id = ge.group_id
                 WHERE ge.group_id = $3 AND g.tenant_id = $4
                 AND ($5 IS NULL OR LOWER(ge.email) LIKE $5 ESCAPE '\\' OR LOWER(COALESCE(ge.name, '')) LIKE $5 ESCAPE '\\')"
            )
        );
        let pattern = like_pattern(search);
        let rows: Vec<Contact> = on_pool!(self, p => {
            sqlx::query_as(page.sql(SQL))
                .bind(page.cursor)
                .bind(page.limit)
                .bind(group_id)
                .bind(scope.tenant_id())
                .bind(&pattern)
                .fetch_all(p)
                .await?
        });
        Ok(page.order(rows))
    }

    pub async fn count_contacts(
        &self,
        scope: TenantScope,
        group_id: i32,
        search: Option<&str>,
    ) -> DbResult<i64> {
        let pattern = like_pattern(search);
        Ok(on_pool!(self, p => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM tenants_groupemail ge JOIN tenants_group g ON g.id = ge.group_id
                 WHERE ge.group_id = $1 AND g.tenant_id = $2
                 AND ($3 IS NULL OR LOWER(ge.email) LIKE $3 ESCAPE '\\' OR LOWER(COALESCE(ge.name, '')) LIKE $3 ESCAPE '\\')",
            )
            .bind(group_id)
            .bind(scope.tenant_id())
            .bind(&pattern)
            .fetch_one(p)
            .await?
        }))
    }

    /// Changes a contact's name and/or variables.
    pub async fn update_contact(
        &self,
        scope: TenantScope,
        id: i32,
        name: Option<&str>,
        variables: Option<Value>,
    ) -> DbResult<Contact> {
        self.get_contact(scope, id).await?;
        let name = name.map(clean_display_name);
        check_variables(&variables)?;
        let vars = variables.map(Json);
        on_pool!(self, p => {
            sqlx::query(
                "UPDATE tenants_groupemail SET name = COALESCE($2, name), variables = COALESCE($3, variables)
                 WHERE id = $1",
            )
            .bind(id)
            .bind(&name)
            .bind(&vars)
            .execute(p)
            .await?;
        });
        self.get_contact(scope, id).await
    }

    pub async fn set_contact_active(
        &self,
        scope: TenantScope,
        id: i32,
        active: bool,
    ) -> DbResult<Contact> {
        self.get_contact(scope, id).await?;
        on_pool!(self, p => {
            sqlx::query("UPDATE tenants_groupemail SET is_active = $2 WHERE id = $1")
                .bind(id)
                .bind(active)
                .execute(p)
                .await?;
        });
        self.get_contact(scope, id).await
    }
}

/// What an import did (or, for a dry run, would do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    pub new: usize,
    pub updated: usize,
}

/// Rows per multi-row statement in bulk writes: 500 rows x 5 parameters stays far below
/// both backends' parameter limits.
const BULK_ROWS: usize = 500;

impl Store {
    /// Deletes a group with its contacts. Refused while a scheduled, running or paused batch
    /// uses it; finished and draft batches merely lose the link.
    pub async fn delete_group(&self, scope: TenantScope, id: i32) -> DbResult<()> {
        let group = self.get_group(scope, id).await?;
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let busy: Option<(i32, String, String)> = sqlx::query_as(
                "SELECT b.id, b.name, COALESCE(b.status, 'draft') FROM batches_batchgroup bg
                 JOIN batches_batch b ON b.id = bg.batch_id
                 WHERE bg.group_id = $1 AND b.status IN ('scheduled', 'running', 'paused') LIMIT 1",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((bid, bname, status)) = busy {
                return Err(DbError::Invalid(format!(
                    "group '{}' is used by {status} batch #{bid} '{bname}'; cancel or finish it first",
                    group.name
                )));
            }
            sqlx::query("DELETE FROM batches_batchgroup WHERE group_id = $1").bind(id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM tenants_groupemail WHERE group_id = $1").bind(id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM tenants_group WHERE id = $1 AND tenant_id = $2")
                .bind(id)
                .bind(scope.tenant_id())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn delete_contact(&self, scope: TenantScope, id: i32) -> DbResult<()> {
        self.get_contact(scope, id).await?;
        on_pool!(self, p => {
            sqlx::query("DELETE FROM tenants_groupemail WHERE id = $1").bind(id).execute(p).await?;
        });
        Ok(())
    }

    /// Copies (or moves) contacts into another group of the same tenant. Addresses already
    /// in the target (case-insensitively) are skipped; returns how many were copied/moved.
    pub async fn copy_contacts(
        &self,
        scope: TenantScope,
        contact_ids: &[i32],
        target_group: i32,
        move_them: bool,
    ) -> DbResult<usize> {
        self.get_group(scope, target_group).await?;
        let mut contacts = Vec::with_capacity(contact_ids.len());
        for id in contact_ids {
            contacts.push(self.get_contact(scope, *id).await?);
        }
        let ts = now();
        let done = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let mut done = 0usize;
            for c in &contacts {
                if c.group_id == target_group {
                    continue;
                }
                let n = sqlx::query(
                    "INSERT INTO tenants_groupemail (group_id, email, name, is_active, variables, created_at)
                     SELECT $1, $2, $3, $4, $5, $6
                     WHERE NOT EXISTS (SELECT 1 FROM tenants_groupemail WHERE group_id = $1 AND LOWER(email) = LOWER($2))",
                )
                .bind(target_group)
                .bind(&c.email)
                .bind(&c.name)
                .bind(c.is_active)
                .bind(&c.variables)
                .bind(ts)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if move_them {
                    sqlx::query("DELETE FROM tenants_groupemail WHERE id = $1").bind(c.id).execute(&mut *tx).await?;
                }
                done += n as usize;
            }
            tx.commit().await?;
            done
        });
        Ok(done)
    }

    /// Lower-cased address -> contact id of every contact in a group.
    pub async fn contact_ids_by_email(
        &self,
        scope: TenantScope,
        group_id: i32,
    ) -> DbResult<std::collections::HashMap<String, i32>> {
        self.get_group(scope, group_id).await?;
        let rows: Vec<(i32, String)> = on_pool!(self, p => {
            sqlx::query_as("SELECT id, email FROM tenants_groupemail WHERE group_id = $1")
                .bind(group_id)
                .fetch_all(p)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, e)| (e.to_lowercase(), id))
            .collect())
    }

    /// Imports contacts into a group in one transaction: new addresses are inserted, known
    /// ones (case-insensitively) get the file's name and variables (an empty name or a file
    /// without variable columns keeps what is stored). All or nothing.
    /// `progress` is called with the number of rows written so far.
    pub async fn import_contacts(
        &self,
        scope: TenantScope,
        group_id: i32,
        rows: &[crate::csvio::ImportRow],
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> DbResult<ImportCounts> {
        self.get_group(scope, group_id).await?;
        let ts = now();
        let counts = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let existing: Vec<(i32, String)> =
                sqlx::query_as("SELECT id, email FROM tenants_groupemail WHERE group_id = $1")
                    .bind(group_id)
                    .fetch_all(&mut *tx)
                    .await?;
            let known: std::collections::HashMap<String, i32> =
                existing.into_iter().map(|(id, e)| (e.to_lowercase(), id)).collect();
            let (updates, inserts): (Vec<_>, Vec<_>) =
                rows.iter().partition(|r| known.contains_key(&r.email.to_lowercase()));
            let mut written = 0usize;
            for chunk in inserts.chunks(BULK_ROWS) {
                let mut sql = String::from(
                    "INSERT INTO tenants_groupemail (group_id, email, name, is_active, variables, created_at) VALUES ",
                );
                for i in 0..chunk.len() {
                    let b = i * 4;
                    if i > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!("($1, ${}, ${}, TRUE, ${}, ${})", b + 2, b + 3, b + 4, b + 5));
                }
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(group_id);
                for r in chunk {
                    q = q.bind(&r.email).bind(&r.name).bind(r.variables.clone().map(Json)).bind(ts);
                }
                q.execute(&mut *tx).await?;
                written += chunk.len();
                progress(written);
            }
            for chunk in updates.chunks(BULK_ROWS) {
                let mut sql = String::from("WITH v(id, name, variables) AS (VALUES ");
                for i in 0..chunk.len() {
                    let b = i * 3;
                    if i > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!("(${}, ${}, ${})", b + 1, b + 2, b + 3));
                }
                sql.push_str(
                    ") UPDATE tenants_groupemail
                     SET name = COALESCE(v.name, tenants_groupemail.name),
                         variables = COALESCE(v.variables, tenants_groupemail.variables)
                     FROM v WHERE tenants_groupemail.id = v.id
                       AND (COALESCE(v.name, tenants_groupemail.name) IS DISTINCT FROM tenants_groupemail.name
                         OR COALESCE(v.variables, tenants_groupemail.variables) IS DISTINCT FROM tenants_groupemail.variables)",
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for r in chunk {
                    let id = known.get(&r.email.to_lowercase()).copied().unwrap_or_default();
                    q = q.bind(id).bind(&r.name).bind(r.variables.clone().map(Json));
                }
                q.execute(&mut *tx).await?;
                written += chunk.len();
                progress(written);
            }
            tx.commit().await?;
            ImportCounts { new: inserts.len(), updated: updates.len() }
        });
        Ok(counts)
    }

    /// Every contact of a group in id order (exports).
    pub async fn all_contacts(&self, scope: TenantScope, group_id: i32) -> DbResult<Vec<Contact>> {
        self.get_group(scope, group_id).await?;
        let mut all = Vec::new();
        let mut page = Page::first(5000);
        loop {
            let rows = self.list_contacts(scope, group_id, page, None).await?;
            let done = rows.len() < 5000;
            if let Some(last) = rows.last() {
                page = Page::after(last.id, 5000);
            }
            all.extend(rows);
            if done {
                return Ok(all);
            }
        }
    }
}
