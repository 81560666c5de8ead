//! `core_user`: accounts of every tenant plus super admins. A tenant scope sees and changes
//! only its own users and can neither see nor create super admins.

use serde::Serialize;

use super::{
    AllTenants, DbError, DbResult, Page, Store, TenantScope, conflict, keyset_sql, like_pattern,
    now, on_pool,
};
use crate::domain::{Role, clean_display_name, normalize_email};

/// A row of `core_user`. The password hash is never serialized.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct User {
    pub id: i32,
    pub username: String,
    pub email: String,
    #[serde(skip_serializing)]
    pub password: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub role: String,
    pub tenant_id: Option<i32>,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub date_joined: Option<chrono::NaiveDateTime>,
    pub last_login: Option<chrono::NaiveDateTime>,
}

impl User {
    pub fn full_name(&self) -> String {
        let parts = [self.first_name.as_deref(), self.last_name.as_deref()];
        parts
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

macro_rules! user_cols {
    () => {
        "u.id, u.username, u.email, u.password, u.first_name, u.last_name, u.role, u.tenant_id,
         COALESCE(u.is_active, TRUE) AS is_active, COALESCE(u.is_staff, FALSE) AS is_staff,
         COALESCE(u.is_superuser, FALSE) AS is_superuser, u.date_joined, u.last_login"
    };
}

/// Which users a call may see: every user (super admins) or one tenant's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserScope {
    All(AllTenants),
    Tenant(TenantScope),
}

impl From<AllTenants> for UserScope {
    fn from(a: AllTenants) -> Self {
        UserScope::All(a)
    }
}

impl From<TenantScope> for UserScope {
    fn from(t: TenantScope) -> Self {
        UserScope::Tenant(t)
    }
}

impl UserScope {
    fn tenant_filter(&self) -> Option<i32> {
        match self {
            UserScope::All(_) => None,
            UserScope::Tenant(t) => Some(t.tenant_id()),
        }
    }
}

/// Fields of a new user. `password_hash` is already in Django's format (see `auth`).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub tenant_id: Option<i32>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
}

fn valid_username(raw: &str) -> DbResult<String> {
    let u = raw.trim();
    let ok_char = |c: char| c.is_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_');
    if u.is_empty() || u.chars().count() > 150 || !u.chars().all(ok_char) {
        return Err(DbError::Invalid(format!(
            "invalid username '{u}': 1-150 letters, digits and @ . + - _"
        )));
    }
    Ok(u.to_string())
}

impl Store {
    pub async fn create_user(&self, scope: UserScope, new: &NewUser) -> DbResult<User> {
        let username = valid_username(&new.username)?;
        let email = normalize_email(&new.email).map_err(|e| DbError::Invalid(e.to_string()))?;
        let tenant_id = match (scope, new.role) {
            (UserScope::Tenant(_), Role::SuperAdmin) => {
                return Err(DbError::Denied(
                    "a tenant cannot create super admins".into(),
                ));
            }
            (UserScope::Tenant(t), _) => match new.tenant_id {
                Some(id) if id != t.tenant_id() => {
                    return Err(DbError::Denied(format!(
                        "cannot create a user in tenant #{id} from tenant #{}",
                        t.tenant_id()
                    )));
                }
                _ => Some(t.tenant_id()),
            },
            (UserScope::All(_), Role::SuperAdmin) => {
                if new.tenant_id.is_some() {
                    return Err(DbError::Invalid(
                        "super admins belong to no tenant: leave out --tenant".into(),
                    ));
                }
                None
            }
            (UserScope::All(_), role) => match new.tenant_id {
                Some(id) => Some(id),
                None => {
                    return Err(DbError::Invalid(format!(
                        "role {role} needs a tenant (--tenant DOMAIN)"
                    )));
                }
            },
        };
        if let Some(id) = tenant_id {
            self.tenant_by_id(id).await?;
        }
        let first = new.first_name.as_deref().map(clean_display_name);
        let last = new.last_name.as_deref().map(clean_display_name);
        let is_super = new.role == Role::SuperAdmin;
        let id: i32 = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let taken: Option<(String, String)> = sqlx::query_as(
                "SELECT username, email FROM core_user WHERE LOWER(username) = LOWER($1) OR LOWER(email) = LOWER($2) LIMIT 1",
            )
            .bind(&username)
            .bind(&email)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((u, _)) = taken {
                return Err(if u.eq_ignore_ascii_case(&username) {
                    DbError::Conflict(format!("username '{username}' is taken"))
                } else {
                    DbError::Conflict(format!("email {email} is already used by another user"))
                });
            }
            let id: i32 = sqlx::query_scalar(
                "INSERT INTO core_user (username, email, password, first_name, last_name, role, tenant_id,
                    is_active, is_staff, is_superuser, date_joined)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8, $8, $9) RETURNING id",
            )
            .bind(&username)
            .bind(&email)
            .bind(&new.password_hash)
            .bind(&first)
            .bind(&last)
            .bind(new.role.as_str())
            .bind(tenant_id)
            .bind(is_super)
            .bind(now())
            .fetch_one(&mut *tx)
            .await
            .map_err(conflict(|| format!("user '{username}' or email {email} already exists")))?;
            tx.commit().await?;
            id
        });
        self.get_user(scope, id).await
    }

    pub async fn get_user(&self, scope: UserScope, id: i32) -> DbResult<User> {
        let row: Option<User> = on_pool!(self, p => {
            sqlx::query_as(concat!(
                "SELECT ", user_cols!(), " FROM core_user u WHERE u.id = $1 AND ($2 IS NULL OR u.tenant_id = $2)"
            ))
            .bind(id)
            .bind(scope.tenant_filter())
            .fetch_optional(p)
            .await?
        });
        row.ok_or_else(|| DbError::NotFound(format!("user #{id}")))
    }

    pub async fn user_by_username(&self, scope: UserScope, username: &str) -> DbResult<User> {
        match self.find_login_user(username).await? {
            Some(u) if scope.tenant_filter().is_none() || scope.tenant_filter() == u.tenant_id => {
                Ok(u)
            }
            _ => Err(DbError::NotFound(format!("user '{}'", username.trim()))),
        }
    }

    /// Looks a user up for authentication, before any scope exists. Case-insensitive like
    /// the login form; nothing but the login path should need this.
    pub async fn find_login_user(&self, username: &str) -> DbResult<Option<User>> {
        Ok(on_pool!(self, p => {
            sqlx::query_as(concat!(
                "SELECT ", user_cols!(), " FROM core_user u WHERE LOWER(u.username) = LOWER($1)
                 ORDER BY (u.username = $1) DESC, u.id LIMIT 1"
            ))
            .bind(username.trim())
            .fetch_optional(p)
            .await?
        }))
    }

    pub async fn list_users(
        &self,
        scope: UserScope,
        page: Page,
        search: Option<&str>,
    ) -> DbResult<Vec<User>> {
        const SQL: [&str; 2] = keyset_sql!(
            "u",
            concat!(
                "SELECT ", user_cols!(), " FROM core_user u WHERE ($3 IS NULL OR u.tenant_id = $3)
                 AND ($4 IS NULL OR LOWER(u.username) LIKE $4 ESCAPE '\\' OR LOWER(u.email) LIKE $4 ESCAPE '\\'
                      OR LOWER(COALESCE(u.first_name, '') || ' ' || COALESCE(u.last_name, '')) LIKE $4 ESCAPE '\\')"
            )
        );
        let pattern = like_pattern(search);
        let rows: Vec<User> = on_pool!(self, p => {
            sqlx::query_as(page.sql(SQL))
                .bind(page.cursor)
                .bind(page.limit)
                .bind(scope.tenant_filter())
                .bind(&pattern)
                .fetch_all(p)
                .await?
        });
        Ok(page.order(rows))
    }

    pub async fn count_users(&self, scope: UserScope, search: Option<&str>) -> DbResult<i64> {
        let pattern = like_pattern(search);
        Ok(on_pool!(self, p => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM core_user u WHERE ($1 IS NULL OR u.tenant_id = $1)
                 AND ($2 IS NULL OR LOWER(u.username) LIKE $2 ESCAPE '\\' OR LOWER(u.email) LIKE $2 ESCAPE '\\'
                      OR LOWER(COALESCE(u.first_name, '') || ' ' || COALESCE(u.last_name, '')) LIKE $2 ESCAPE '\\')",
            )
            .bind(scope.tenant_filter())
            .bind(&pattern)
            .fetch_one(p)
            .await?
        }))
    }

    pub async fn update_user(&self, scope: UserScope, id: i32, upd: &UserUpdate) -> DbResult<User> {
        let current = self.get_user(scope, id).await?;
        if matches!(scope, UserScope::Tenant(_))
            && (current.role == Role::SuperAdmin.as_str() || upd.role == Some(Role::SuperAdmin))
        {
            return Err(DbError::Denied(
                "a tenant cannot manage super admins".into(),
            ));
        }
        if let Some(role) = upd.role {
            if role.needs_tenant() && current.tenant_id.is_none() {
                return Err(DbError::Invalid(format!(
                    "{} belongs to no tenant and cannot become {role}",
                    current.username
                )));
            }
            if !role.needs_tenant() && current.tenant_id.is_some() {
                return Err(DbError::Invalid(format!(
                    "{} belongs to a tenant and cannot become a super admin",
                    current.username
                )));
            }
        }
        let email = upd
            .email
            .as_deref()
            .map(normalize_email)
            .transpose()
            .map_err(|e| DbError::Invalid(e.to_string()))?;
        let first = upd.first_name.as_deref().map(clean_display_name);
        let last = upd.last_name.as_deref().map(clean_display_name);
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            if let Some(e) = &email {
                let other: Option<i32> = sqlx::query_scalar(
                    "SELECT id FROM core_user WHERE LOWER(email) = LOWER($1) AND id <> $2 LIMIT 1",
                )
                .bind(e)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                if other.is_some() {
                    return Err(DbError::Conflict(format!("email {e} is already used by another user")));
                }
            }
            sqlx::query(
                "UPDATE core_user SET email = COALESCE($2, email), first_name = COALESCE($3, first_name),
                    last_name = COALESCE($4, last_name), role = COALESCE($5, role),
                    is_active = COALESCE($6, is_active)
                 WHERE id = $1",
            )
            .bind(id)
            .bind(&email)
            .bind(&first)
            .bind(&last)
            .bind(upd.role.map(|r| r.as_str()))
            .bind(upd.is_active)
            .execute(&mut *tx)
            .await
            .map_err(conflict(|| "email already used by another user".to_string()))?;
            tx.commit().await?;
        });
        self.get_user(scope, id).await
    }

    pub async fn deactivate_user(&self, scope: UserScope, id: i32) -> DbResult<User> {
        let upd = UserUpdate {
            is_active: Some(false),
            ..UserUpdate::default()
        };
        self.update_user(scope, id, &upd).await
    }

    /// Stores a new password hash (already in Django's format).
    pub async fn set_password_hash(&self, scope: UserScope, id: i32, hash: &str) -> DbResult<()> {
        let user = self.get_user(scope, id).await?;
        if matches!(scope, UserScope::Tenant(_)) && user.role == Role::SuperAdmin.as_str() {
            return Err(DbError::Denied(
                "a tenant cannot manage super admins".into(),
            ));
        }
        on_pool!(self, p => {
            sqlx::query("UPDATE core_user SET password = $2 WHERE id = $1")
                .bind(id)
                .bind(hash)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Records a successful login.
    pub async fn touch_last_login(&self, user_id: i32) -> DbResult<()> {
        on_pool!(self, p => {
            sqlx::query("UPDATE core_user SET last_login = $2 WHERE id = $1")
                .bind(user_id)
                .bind(now())
                .execute(p)
                .await?;
        });
        Ok(())
    }
}
