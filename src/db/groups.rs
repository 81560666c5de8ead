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
        if let Ok(id) = key.trim().parse::<i32>() {
            if let Ok(g) = self.get_group(scope, id).await {
                return Ok(g);
            }
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
