//! `recalliq_dkimkey`: DKIM signing keys of a tenant's sender domains. The private key is
//! stored only in its encrypted form (`crate::dkim` encrypts it); nothing here ever sees
//! the plaintext. At most one key per tenant and domain is `active` (signs new mail); a
//! rotated-out key stays `published` so its DNS record keeps verifying mail in flight.

use serde::Serialize;

use super::{DbError, DbResult, Store, TenantScope, now, on_pool};

pub const DKIM_ACTIVE: &str = "active";
pub const DKIM_PUBLISHED: &str = "published";

/// A row of `recalliq_dkimkey`. `Debug` and `Serialize` leave the encrypted private key out,
/// so even the ciphertext never reaches logs or `--json`.
#[derive(Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct DkimKey {
    pub id: i32,
    pub tenant_id: i32,
    pub domain: String,
    pub selector: String,
    pub algorithm: String,
    #[serde(skip)]
    pub private_key_enc: String,
    pub public_key: String,
    pub status: String,
    pub created_at: chrono::NaiveDateTime,
    pub rotated_at: Option<chrono::NaiveDateTime>,
}

impl std::fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKey")
            .field("id", &self.id)
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A key to store: the private part already encrypted.
#[derive(Clone)]
pub struct NewDkimKey<'a> {
    pub domain: &'a str,
    pub selector: &'a str,
    pub algorithm: &'a str,
    pub private_key_enc: &'a str,
    pub public_key: &'a str,
}

macro_rules! dkim_cols {
    () => {
        "id, tenant_id, domain, selector, algorithm, private_key_enc, public_key, status, created_at, rotated_at"
    };
}

/// A DNS label list as selectors are: letters, digits and '-', dot-separated, 1..=63.
pub fn check_selector(selector: &str) -> DbResult<String> {
    let s = selector.trim().to_ascii_lowercase();
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !ok {
        return Err(DbError::Invalid(format!(
            "invalid DKIM selector '{}': letters, digits and '-' (dot-separated labels), at most 63 characters",
            crate::render::header_safe(selector.trim())
        )));
    }
    Ok(s)
}

impl Store {
    /// Keys of the tenant, of one domain when given, newest first within a domain.
    pub async fn list_dkim_keys(
        &self,
        scope: TenantScope,
        domain: Option<&str>,
    ) -> DbResult<Vec<DkimKey>> {
        let domain = domain.map(|d| d.trim().to_ascii_lowercase());
        const SQL: &str = concat!(
            "SELECT ",
            dkim_cols!(),
            " FROM recalliq_dkimkey WHERE tenant_id = $1 AND ($2 IS NULL OR domain = $2)
             ORDER BY domain, id DESC"
        );
        Ok(on_pool!(self, p => {
            sqlx::query_as(SQL)
                .bind(scope.tenant_id())
                .bind(&domain)
                .fetch_all(p)
                .await?
        }))
    }

    /// The key that signs mail from `domain`, if any.
    pub async fn active_dkim_key(
        &self,
        scope: TenantScope,
        domain: &str,
    ) -> DbResult<Option<DkimKey>> {
        const SQL: &str = concat!(
            "SELECT ",
            dkim_cols!(),
            " FROM recalliq_dkimkey WHERE tenant_id = $1 AND domain = $2 AND status = 'active'"
        );
        Ok(on_pool!(self, p => {
            sqlx::query_as(SQL)
                .bind(scope.tenant_id())
                .bind(domain.trim().to_ascii_lowercase())
                .fetch_optional(p)
                .await?
        }))
    }

    /// Stores `key` as the active key of its domain. With `rotate`, the current active key
    /// (if any) becomes `published` in the same transaction; without it, a domain that
    /// already has an active key is refused.
    pub async fn add_dkim_key(
        &self,
        scope: TenantScope,
        key: &NewDkimKey<'_>,
        rotate: bool,
    ) -> DbResult<DkimKey> {
        let domain = key.domain.trim().to_ascii_lowercase();
        let selector = check_selector(key.selector)?;
        let existing = self.list_dkim_keys(scope, Some(&domain)).await?;
        if existing.iter().any(|k| k.selector == selector) {
            return Err(DbError::Conflict(format!(
                "domain {domain} already has a DKIM key with selector '{selector}'; choose another --selector"
            )));
        }
        let active = existing.iter().find(|k| k.status == DKIM_ACTIVE);
        if let Some(a) = active
            && !rotate
        {
            return Err(DbError::Conflict(format!(
                "domain {domain} already has an active DKIM key (selector '{}'); use `recalliq dkim rotate`",
                a.selector
            )));
        }
        let ts = now();
        const INSERT: &str = concat!(
            "INSERT INTO recalliq_dkimkey (tenant_id, domain, selector, algorithm, private_key_enc, public_key, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'active', $7) RETURNING ",
            dkim_cols!()
        );
        let row: DkimKey = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "UPDATE recalliq_dkimkey SET status = 'published', rotated_at = $3
                 WHERE tenant_id = $1 AND domain = $2 AND status = 'active'",
            )
            .bind(scope.tenant_id())
            .bind(&domain)
            .bind(ts)
            .execute(&mut *tx)
            .await?;
            let row = sqlx::query_as(INSERT)
                .bind(scope.tenant_id())
                .bind(&domain)
                .bind(&selector)
                .bind(key.algorithm)
                .bind(key.private_key_enc)
                .bind(key.public_key)
                .bind(ts)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            row
        });
        Ok(row)
    }
}
