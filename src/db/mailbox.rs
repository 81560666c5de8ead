//! IMAP mailboxes polled by `recalliq bounces watch` (`recalliq_bounce_mailbox`, migration
//! 11): one per tenant and at most one global (`tenant_id` NULL). The password is stored
//! only encrypted (`password_enc`, see `secrets`; bound to the owner with
//! [`mailbox_secret_context`], so a value copied to another row does not decrypt).

use std::fmt;

use serde::Serialize;

use super::{AllTenants, DbError, DbResult, Security, Store, TenantScope, now, on_pool};

pub const DEFAULT_IMAP_MAILBOX: &str = "INBOX";
pub const DEFAULT_PROCESSED_FOLDER: &str = "RecallIQ/Processed";
pub const DEFAULT_UNMATCHED_FOLDER: &str = "RecallIQ/Unmatched";

/// Whose mailbox: a tenant's (its reports only change that tenant) or the global one.
#[derive(Debug, Clone, Copy)]
pub enum MailboxOwner {
    Global(AllTenants),
    Tenant(TenantScope),
}

impl MailboxOwner {
    pub fn tenant_id(&self) -> Option<i32> {
        match self {
            MailboxOwner::Global(_) => None,
            MailboxOwner::Tenant(s) => Some(s.tenant_id()),
        }
    }
}

/// The authenticated data of an IMAP password: the row's owner.
pub fn mailbox_secret_context(tenant_id: Option<i32>) -> Vec<u8> {
    match tenant_id {
        Some(id) => format!("recalliq imap password, tenant {id}").into_bytes(),
        None => b"recalliq imap password, global".to_vec(),
    }
}

/// One IMAP mailbox and the folders processed messages go to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BounceMailbox {
    pub tenant_id: Option<i32>,
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: String,
    /// `v1:...` from `SecretKey::encrypt_bound`; never the plaintext, never printed.
    #[serde(skip)]
    pub password_enc: String,
    pub mailbox: String,
    pub processed_folder: String,
    pub unmatched_folder: String,
    /// Accept self-signed or otherwise invalid certificates (test servers only).
    pub tls_insecure: bool,
    #[serde(skip)]
    pub updated_at: Option<chrono::NaiveDateTime>,
}

impl BounceMailbox {
    /// The JSON shown to people and scripts: `password_set` instead of the password.
    pub fn public_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let serde_json::Value::Object(m) = &mut v {
            m.insert(
                "password_set".into(),
                serde_json::Value::Bool(!self.password_enc.is_empty()),
            );
        }
        v
    }
}

impl fmt::Display for BounceMailbox {
    /// One `key value` line per setting; never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<18} {}", "host", self.host)?;
        writeln!(f, "{:<18} {}", "port", self.port)?;
        writeln!(f, "{:<18} {}", "security", self.security)?;
        writeln!(f, "{:<18} {}", "username", self.username)?;
        writeln!(f, "{:<18} set (encrypted)", "password")?;
        writeln!(f, "{:<18} {}", "mailbox", self.mailbox)?;
        writeln!(f, "{:<18} {}", "processed folder", self.processed_folder)?;
        writeln!(f, "{:<18} {}", "unmatched folder", self.unmatched_folder)?;
        if self.tls_insecure {
            writeln!(f, "{:<18} yes (certificates not verified)", "insecure TLS")?;
        }
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    tenant_id: Option<i32>,
    host: String,
    port: i32,
    security: String,
    username: String,
    password_enc: String,
    mailbox: String,
    processed_folder: String,
    unmatched_folder: String,
    tls_insecure: bool,
    updated_at: chrono::NaiveDateTime,
}

impl Row {
    fn into_mailbox(self) -> DbResult<BounceMailbox> {
        Ok(BounceMailbox {
            tenant_id: self.tenant_id,
            host: self.host,
            port: u16::try_from(self.port)
                .map_err(|_| DbError::Invalid(format!("stored IMAP port {}", self.port)))?,
            security: self.security.parse().map_err(DbError::Invalid)?,
            username: self.username,
            password_enc: self.password_enc,
            mailbox: self.mailbox,
            processed_folder: self.processed_folder,
            unmatched_folder: self.unmatched_folder,
            tls_insecure: self.tls_insecure,
            updated_at: Some(self.updated_at),
        })
    }
}

/// A folder name an IMAP server will take as one quoted string.
fn check_folder(what: &str, name: &str) -> DbResult<()> {
    if name.trim().is_empty()
        || name.len() > 200
        || name
            .chars()
            .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Err(DbError::Invalid(format!("invalid {what} '{name}'")));
    }
    Ok(())
}

fn validate(m: &BounceMailbox) -> DbResult<()> {
    let host = m.host.trim();
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DbError::Invalid(format!("invalid IMAP host '{host}'")));
    }
    if m.port == 0 {
        return Err(DbError::Invalid("IMAP port must be 1-65535".into()));
    }
    if m.username.trim().is_empty() || m.username.chars().any(|c| c.is_control()) {
        return Err(DbError::Invalid("an IMAP username is needed".into()));
    }
    if m.password_enc.is_empty() {
        return Err(DbError::Invalid("an IMAP password is needed".into()));
    }
    check_folder("mailbox", &m.mailbox)?;
    check_folder("processed folder", &m.processed_folder)?;
    check_folder("unmatched folder", &m.unmatched_folder)?;
    let folders = [&m.mailbox, &m.processed_folder, &m.unmatched_folder];
    for (i, a) in folders.iter().enumerate() {
        if folders[i + 1..].iter().any(|b| a.eq_ignore_ascii_case(b)) {
            return Err(DbError::Invalid(format!(
                "the mailbox and the two folders must differ ('{a}' is used twice)"
            )));
        }
    }
    Ok(())
}

const SELECT: &str = "SELECT tenant_id, host, port, security, username, password_enc, mailbox,
    processed_folder, unmatched_folder, tls_insecure, updated_at
    FROM recalliq_bounce_mailbox WHERE COALESCE(tenant_id, 0) = $1";

impl Store {
    /// The mailbox of `owner`, `None` when not configured.
    pub async fn bounce_mailbox(&self, owner: MailboxOwner) -> DbResult<Option<BounceMailbox>> {
        let row: Option<Row> = on_pool!(self, p => {
            sqlx::query_as(SELECT)
                .bind(owner.tenant_id().unwrap_or(0))
                .fetch_optional(p)
                .await?
        });
        row.map(Row::into_mailbox).transpose()
    }

    /// Creates or replaces the mailbox of `owner` (`m.tenant_id` is taken from `owner`).
    pub async fn set_bounce_mailbox(&self, owner: MailboxOwner, m: &BounceMailbox) -> DbResult<()> {
        validate(m)?;
        // One statement: the unique index on COALESCE(tenant_id, 0) is the conflict target
        // (one mailbox per tenant, one global), so two writers cannot both insert.
        on_pool!(self, p => {
            sqlx::query(
                "INSERT INTO recalliq_bounce_mailbox (tenant_id, host, port, security, username,
                 password_enc, mailbox, processed_folder, unmatched_folder, tls_insecure, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT ((COALESCE(tenant_id, 0))) DO UPDATE SET host = excluded.host,
                 port = excluded.port, security = excluded.security, username = excluded.username,
                 password_enc = excluded.password_enc, mailbox = excluded.mailbox,
                 processed_folder = excluded.processed_folder,
                 unmatched_folder = excluded.unmatched_folder,
                 tls_insecure = excluded.tls_insecure, updated_at = excluded.updated_at",
            )
            .bind(owner.tenant_id())
            .bind(m.host.trim())
            .bind(i32::from(m.port))
            .bind(m.security.to_string())
            .bind(m.username.trim())
            .bind(&m.password_enc)
            .bind(&m.mailbox)
            .bind(&m.processed_folder)
            .bind(&m.unmatched_folder)
            .bind(m.tls_insecure)
            .bind(now())
            .execute(p)
            .await
            .map(|_| ())?
        });
        Ok(())
    }

    /// Removes the mailbox of `owner`; `false` when there was none.
    pub async fn clear_bounce_mailbox(&self, owner: MailboxOwner) -> DbResult<bool> {
        let n: u64 = on_pool!(self, p => {
            sqlx::query("DELETE FROM recalliq_bounce_mailbox WHERE COALESCE(tenant_id, 0) = $1")
                .bind(owner.tenant_id().unwrap_or(0))
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }
}
