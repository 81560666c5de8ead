//! `tenants_tenant` and `tenants_tenantemail`: organisations and their verified sender
//! addresses. Creating or changing tenants needs `AllTenants` (super admins); reading one's
//! own tenant needs only its scope.

use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use super::{
    AllTenants, DbError, DbResult, Page, Store, TenantScope, conflict, keyset_sql, like_pattern,
    now, on_pool,
};
use crate::domain::{TenantPlan, TenantStatus};

/// A row of `tenants_tenant`. Nullable-with-default columns of the seed read as their default.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct Tenant {
    pub id: i32,
    pub name: String,
    pub domain: String,
    pub is_active: bool,
    pub plan: String,
    pub status: String,
    pub contact_person: Option<String>,
    pub contact_email: Option<String>,
    pub billing_email: Option<String>,
    pub company_address: Option<String>,
    pub phone_number: Option<String>,
    pub monthly_email_limit: i32,
    pub emails_sent_this_month: i32,
    pub settings: Option<Json<Value>>,
    pub created_at: Option<chrono::NaiveDateTime>,
    pub updated_at: Option<chrono::NaiveDateTime>,
}

impl Tenant {
    /// Emails still allowed this month (never negative).
    pub fn quota_left(&self) -> i64 {
        (i64::from(self.monthly_email_limit) - i64::from(self.emails_sent_this_month)).max(0)
    }

    /// Whether users of this tenant may log in and its batches may send.
    pub fn is_usable(&self) -> bool {
        self.is_active && self.status != TenantStatus::Suspended.as_str()
    }
}

macro_rules! tenant_cols {
    () => {
        "t.id, t.name, t.domain, COALESCE(t.is_active, TRUE) AS is_active,
         COALESCE(t.plan, 'basic') AS plan, COALESCE(t.status, 'active') AS status,
         t.contact_person, t.contact_email, t.billing_email, t.company_address, t.phone_number,
         COALESCE(t.monthly_email_limit, 1000) AS monthly_email_limit,
         COALESCE(t.emails_sent_this_month, 0) AS emails_sent_this_month,
         t.settings, t.created_at, t.updated_at"
    };
}

/// Fields of a new tenant.
#[derive(Debug, Clone, Default)]
pub struct NewTenant {
    pub name: String,
    pub domain: String,
    pub plan: Option<TenantPlan>,
    pub status: Option<TenantStatus>,
    pub monthly_email_limit: Option<i32>,
    pub contact_person: Option<String>,
    pub contact_email: Option<String>,
}

/// Changes to a tenant; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TenantUpdate {
    pub name: Option<String>,
    pub plan: Option<TenantPlan>,
    pub status: Option<TenantStatus>,
    pub monthly_email_limit: Option<i32>,
    pub contact_person: Option<String>,
    pub contact_email: Option<String>,
    pub billing_email: Option<String>,
    pub is_active: Option<bool>,
}

/// A row of `tenants_tenantemail`: a sender address the tenant may use as From.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct TenantEmail {
    pub id: i32,
    pub tenant_id: i32,
    pub email: String,
    pub name: Option<String>,
    pub is_active: bool,
    pub created_at: Option<chrono::NaiveDateTime>,
}

/// Lower-cased domain, validated as a plausible DNS name.
pub(crate) fn normalize_domain(domain: &str) -> DbResult<String> {
    let d = domain.trim().to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if d.is_empty() || d.len() > 100 || !d.split('.').all(label_ok) {
        return Err(DbError::Invalid(format!(
            "invalid domain '{}': use letters, digits, '-' and '.', at most 100 characters",
            domain.trim()
        )));
    }
    Ok(d)
}

pub(crate) fn required(field: &str, value: &str, max: usize) -> DbResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(DbError::Invalid(format!("{field} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(DbError::Invalid(format!(
            "{field} is longer than {max} characters"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(DbError::Invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(v.to_string())
}

fn check_limit(limit: Option<i32>) -> DbResult<()> {
    match limit {
        Some(l) if l < 0 => Err(DbError::Invalid("monthly limit must be 0 or more".into())),
        _ => Ok(()),
    }
}

impl Store {
    pub async fn create_tenant(&self, _all: &AllTenants, new: &NewTenant) -> DbResult<Tenant> {
        let name = required("tenant name", &new.name, 200)?;
        let domain = normalize_domain(&new.domain)?;
        check_limit(new.monthly_email_limit)?;
        let plan = new.plan.unwrap_or(TenantPlan::Basic).as_str();
        let status = new.status.unwrap_or(TenantStatus::Active).as_str();
        let limit = new.monthly_email_limit.unwrap_or(1000);
        let ts = now();
        let id: i32 = on_pool!(self, p => {
            sqlx::query_scalar(
                "INSERT INTO tenants_tenant (name, domain, is_active, plan, status, contact_person,
                    contact_email, monthly_email_limit, emails_sent_this_month, created_at, updated_at)
                 VALUES ($1, $2, TRUE, $3, $4, $5, $6, $7, 0, $8, $8) RETURNING id",
            )
            .bind(&name)
            .bind(&domain)
            .bind(plan)
            .bind(status)
            .bind(&new.contact_person)
            .bind(&new.contact_email)
            .bind(limit)
            .bind(ts)
            .fetch_one(p)
            .await
            .map_err(conflict(|| format!("a tenant with domain '{domain}' already exists")))?
        });
        self.tenant_by_id(id).await
    }

    /// The caller's tenant.
    pub async fn get_tenant(&self, scope: TenantScope) -> DbResult<Tenant> {
        self.tenant_by_id(scope.tenant_id()).await
    }

    pub(crate) async fn tenant_by_id(&self, id: i32) -> DbResult<Tenant> {
        let row: Option<Tenant> = on_pool!(self, p => {
            sqlx::query_as(concat!("SELECT ", tenant_cols!(), " FROM tenants_tenant t WHERE t.id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await?
        });
        row.ok_or_else(|| DbError::NotFound(format!("tenant #{id}")))
    }

    pub async fn tenant_by_domain(&self, _all: &AllTenants, domain: &str) -> DbResult<Tenant> {
        let d = domain.trim().to_ascii_lowercase();
        let row: Option<Tenant> = on_pool!(self, p => {
            sqlx::query_as(concat!(
                "SELECT ", tenant_cols!(), " FROM tenants_tenant t WHERE LOWER(t.domain) = $1"
            ))
            .bind(&d)
            .fetch_optional(p)
            .await?
        });
        row.ok_or_else(|| DbError::NotFound(format!("tenant with domain '{}'", domain.trim())))
    }

    /// Tenants by id, keyset-paginated; `search` matches name or domain.
    pub async fn list_tenants(
        &self,
        _all: &AllTenants,
        page: Page,
        search: Option<&str>,
    ) -> DbResult<Vec<Tenant>> {
        const SQL: [&str; 2] = keyset_sql!(
            "t",
            concat!(
                "SELECT ", tenant_cols!(), " FROM tenants_tenant t WHERE
                 ($3 IS NULL OR LOWER(t.name) LIKE $3 ESCAPE '\\' OR LOWER(t.domain) LIKE $3 ESCAPE '\\')"
            )
        );
        let pattern = like_pattern(search);
        let rows: Vec<Tenant> = on_pool!(self, p => {
            sqlx::query_as(page.sql(SQL))
                .bind(page.cursor)
                .bind(page.limit)
                .bind(&pattern)
                .fetch_all(p)
                .await?
        });
        Ok(page.order(rows))
    }

    pub async fn count_tenants(&self, _all: &AllTenants, search: Option<&str>) -> DbResult<i64> {
        let pattern = like_pattern(search);
        Ok(on_pool!(self, p => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM tenants_tenant t WHERE
                 ($1 IS NULL OR LOWER(t.name) LIKE $1 ESCAPE '\\' OR LOWER(t.domain) LIKE $1 ESCAPE '\\')",
            )
            .bind(&pattern)
            .fetch_one(p)
            .await?
        }))
    }

    pub async fn update_tenant(
        &self,
        _all: &AllTenants,
        id: i32,
        upd: &TenantUpdate,
    ) -> DbResult<Tenant> {
        let name = upd
            .name
            .as_deref()
            .map(|n| required("tenant name", n, 200))
            .transpose()?;
        check_limit(upd.monthly_email_limit)?;
        let done = on_pool!(self, p => {
            sqlx::query(
                "UPDATE tenants_tenant SET
                    name = COALESCE($2, name),
                    plan = COALESCE($3, plan),
                    status = COALESCE($4, status),
                    monthly_email_limit = COALESCE($5, monthly_email_limit),
                    contact_person = COALESCE($6, contact_person),
                    contact_email = COALESCE($7, contact_email),
                    billing_email = COALESCE($8, billing_email),
                    is_active = COALESCE($9, is_active),
                    updated_at = $10
                 WHERE id = $1",
            )
            .bind(id)
            .bind(&name)
            .bind(upd.plan.map(|p| p.as_str()))
            .bind(upd.status.map(|s| s.as_str()))
            .bind(upd.monthly_email_limit)
            .bind(&upd.contact_person)
            .bind(&upd.contact_email)
            .bind(&upd.billing_email)
            .bind(upd.is_active)
            .bind(now())
            .execute(p)
            .await?
            .rows_affected()
        });
        if done == 0 {
            return Err(DbError::NotFound(format!("tenant #{id}")));
        }
        self.tenant_by_id(id).await
    }

    /// Suspends or re-activates a tenant (status and is_active move together).
    pub async fn set_tenant_status(
        &self,
        all: &AllTenants,
        id: i32,
        status: TenantStatus,
    ) -> DbResult<Tenant> {
        let upd = TenantUpdate {
            status: Some(status),
            is_active: Some(status != TenantStatus::Suspended),
            ..TenantUpdate::default()
        };
        self.update_tenant(all, id, &upd).await
    }

    pub async fn add_tenant_email(
        &self,
        scope: TenantScope,
        email: &str,
        name: Option<&str>,
    ) -> DbResult<TenantEmail> {
        let email =
            crate::domain::normalize_email(email).map_err(|e| DbError::Invalid(e.to_string()))?;
        let name = name.map(crate::domain::clean_display_name);
        let row: TenantEmail = on_pool!(self, p => {
            sqlx::query_as(
                "INSERT INTO tenants_tenantemail (tenant_id, email, name, is_active, created_at)
                 VALUES ($1, $2, $3, TRUE, $4)
                 RETURNING id, tenant_id, email, name, COALESCE(is_active, TRUE) AS is_active, created_at",
            )
            .bind(scope.tenant_id())
            .bind(&email)
            .bind(&name)
            .bind(now())
            .fetch_one(p)
            .await
            .map_err(conflict(|| format!("sender address {email} already exists")))?
        });
        Ok(row)
    }

    pub async fn list_tenant_emails(&self, scope: TenantScope) -> DbResult<Vec<TenantEmail>> {
        Ok(on_pool!(self, p => {
            sqlx::query_as(
                "SELECT id, tenant_id, email, name, COALESCE(is_active, TRUE) AS is_active, created_at
                 FROM tenants_tenantemail WHERE tenant_id = $1 ORDER BY id",
            )
            .bind(scope.tenant_id())
            .fetch_all(p)
            .await?
        }))
    }

    pub async fn set_tenant_email_active(
        &self,
        scope: TenantScope,
        id: i32,
        active: bool,
    ) -> DbResult<()> {
        let n = on_pool!(self, p => {
            sqlx::query("UPDATE tenants_tenantemail SET is_active = $3 WHERE id = $1 AND tenant_id = $2")
                .bind(id)
                .bind(scope.tenant_id())
                .bind(active)
                .execute(p)
                .await?
                .rows_affected()
        });
        if n == 0 {
            return Err(DbError::NotFound(format!("sender address #{id}")));
        }
        Ok(())
    }
}
