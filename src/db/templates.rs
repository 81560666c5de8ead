//! `emails_emailtemplate`: a tenant's subjects and bodies. Rendering lives in `render`;
//! this module only stores them.

use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use super::tenants::required;
use super::{DbError, DbResult, Page, Store, TenantScope, keyset_sql, like_pattern, now, on_pool};

/// A row of `emails_emailtemplate`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct Template {
    pub id: i32,
    pub tenant_id: i32,
    pub name: String,
    pub subject: String,
    pub body_html: Option<String>,
    pub body_text: Option<String>,
    pub is_active: bool,
    pub variables: Option<Json<Value>>,
    pub created_at: Option<chrono::NaiveDateTime>,
    pub updated_at: Option<chrono::NaiveDateTime>,
}

/// Fields of a new template; also used to replace a template's content.
#[derive(Debug, Clone, Default)]
pub struct NewTemplate {
    pub name: String,
    pub subject: String,
    pub body_html: Option<String>,
    pub body_text: Option<String>,
    /// The variables the template uses (recorded on save).
    pub variables: Option<Value>,
}

macro_rules! template_cols {
    () => {
        "t.id, t.tenant_id, t.name, t.subject, t.body_html, t.body_text,
         COALESCE(t.is_active, TRUE) AS is_active, t.variables, t.created_at, t.updated_at"
    };
}

fn validate(new: &NewTemplate) -> DbResult<(String, String)> {
    let name = required("template name", &new.name, 200)?;
    let subject = new.subject.trim().to_string();
    if subject.is_empty() {
        return Err(DbError::Invalid(
            "template subject must not be empty".into(),
        ));
    }
    if subject.chars().count() > 500 {
        return Err(DbError::Invalid(
            "template subject is longer than 500 characters".into(),
        ));
    }
    if subject.contains(['\r', '\n']) {
        return Err(DbError::Invalid("template subject must be one line".into()));
    }
    Ok((name, subject))
}

impl Store {
    pub async fn create_template(
        &self,
        scope: TenantScope,
        new: &NewTemplate,
    ) -> DbResult<Template> {
        let (name, subject) = validate(new)?;
        let ts = now();
        let id: i32 = on_pool!(self, p => {
            sqlx::query_scalar(
                "INSERT INTO emails_emailtemplate (tenant_id, name, subject, body_html, body_text, is_active,
                    variables, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, TRUE, $6, $7, $7) RETURNING id",
            )
            .bind(scope.tenant_id())
            .bind(&name)
            .bind(&subject)
            .bind(&new.body_html)
            .bind(&new.body_text)
            .bind(new.variables.clone().map(Json))
            .bind(ts)
            .fetch_one(p)
            .await?
        });
        self.get_template(scope, id).await
    }

    pub async fn get_template(&self, scope: TenantScope, id: i32) -> DbResult<Template> {
        let row: Option<Template> = on_pool!(self, p => {
            sqlx::query_as(concat!(
                "SELECT ", template_cols!(), " FROM emails_emailtemplate t WHERE t.id = $1 AND t.tenant_id = $2"
            ))
            .bind(id)
            .bind(scope.tenant_id())
            .fetch_optional(p)
            .await?
        });
        row.ok_or_else(|| DbError::NotFound(format!("template #{id}")))
    }

    /// A template by id (when `key` is a number) or by name, case-insensitive.
    pub async fn find_template(&self, scope: TenantScope, key: &str) -> DbResult<Template> {
        if let Ok(id) = key.trim().parse::<i32>()
            && let Ok(t) = self.get_template(scope, id).await
        {
            return Ok(t);
        }
        let row: Option<Template> = on_pool!(self, p => {
            sqlx::query_as(concat!(
                "SELECT ", template_cols!(), " FROM emails_emailtemplate t
                 WHERE t.tenant_id = $1 AND LOWER(t.name) = LOWER($2) ORDER BY t.id LIMIT 1"
            ))
            .bind(scope.tenant_id())
            .bind(key.trim())
            .fetch_optional(p)
            .await?
        });
        row.ok_or_else(|| DbError::NotFound(format!("template '{}'", key.trim())))
    }

    pub async fn list_templates(
        &self,
        scope: TenantScope,
        page: Page,
        search: Option<&str>,
    ) -> DbResult<Vec<Template>> {
        const SQL: [&str; 2] = keyset_sql!(
            "t",
            concat!(
                "SELECT ", template_cols!(), " FROM emails_emailtemplate t WHERE t.tenant_id = $3
                 AND ($4 IS NULL OR LOWER(t.name) LIKE $4 ESCAPE '\\' OR LOWER(t.subject) LIKE $4 ESCAPE '\\')"
            )
        );
        let pattern = like_pattern(search);
        let rows: Vec<Template> = on_pool!(self, p => {
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

    pub async fn count_templates(&self, scope: TenantScope) -> DbResult<i64> {
        Ok(on_pool!(self, p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM emails_emailtemplate WHERE tenant_id = $1")
                .bind(scope.tenant_id())
                .fetch_one(p)
                .await?
        }))
    }

    /// Templates whose name or subject matches `search` (all when `None`).
    pub async fn count_templates_matching(
        &self,
        scope: TenantScope,
        search: Option<&str>,
    ) -> DbResult<i64> {
        let pattern = like_pattern(search);
        Ok(on_pool!(self, p => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM emails_emailtemplate t WHERE t.tenant_id = $1
                 AND ($2 IS NULL OR LOWER(t.name) LIKE $2 ESCAPE '\\' OR LOWER(t.subject) LIKE $2 ESCAPE '\\')",
            )
            .bind(scope.tenant_id())
            .bind(&pattern)
            .fetch_one(p)
            .await?
        }))
    }

    /// Replaces a template's name, subject, bodies and recorded variables.
    pub async fn update_template(
        &self,
        scope: TenantScope,
        id: i32,
        new: &NewTemplate,
    ) -> DbResult<Template> {
        let (name, subject) = validate(new)?;
        let n = on_pool!(self, p => {
            sqlx::query(
                "UPDATE emails_emailtemplate SET name = $3, subject = $4, body_html = $5, body_text = $6,
                    variables = $7, updated_at = $8 WHERE id = $1 AND tenant_id = $2",
            )
            .bind(id)
            .bind(scope.tenant_id())
            .bind(&name)
            .bind(&subject)
            .bind(&new.body_html)
            .bind(&new.body_text)
            .bind(new.variables.clone().map(Json))
            .bind(now())
            .execute(p)
            .await?
            .rows_affected()
        });
        if n == 0 {
            return Err(DbError::NotFound(format!("template #{id}")));
        }
        self.get_template(scope, id).await
    }

    pub async fn set_template_active(
        &self,
        scope: TenantScope,
        id: i32,
        active: bool,
    ) -> DbResult<Template> {
        let n = on_pool!(self, p => {
            sqlx::query("UPDATE emails_emailtemplate SET is_active = $3, updated_at = $4 WHERE id = $1 AND tenant_id = $2")
                .bind(id)
                .bind(scope.tenant_id())
                .bind(active)
                .bind(now())
                .execute(p)
                .await?
                .rows_affected()
        });
        if n == 0 {
            return Err(DbError::NotFound(format!("template #{id}")));
        }
        self.get_template(scope, id).await
    }
}
