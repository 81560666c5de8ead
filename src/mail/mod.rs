//! Mail out: message building (`message`), our SMTP client with TCP_NODELAY and
//! PIPELINING (`smtp`), and the outbox transport that writes `.eml` files
//! (`outbox`). The sending engine builds on these; `template preview/send-test` and
//! `smtp test` use them directly.

pub mod message;
pub mod outbox;
pub mod smtp;

pub use message::{Message, MessageParts, Unsubscribe, build_message};
pub use outbox::write_outbox;
pub use smtp::{ConnectReport, SmtpConnection, connect, test_connection};

/// Why a message could not be built or sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address '{address}': {reason}")]
    Address { address: String, reason: String },
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("cannot connect to {server}: {reason}")]
    Connect { server: String, reason: String },
    #[error("{0}")]
    Smtp(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("outbox {path}: {source}")]
    Outbox {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
}

/// The decrypted password of a tenant's SMTP server (`None` when it has none). The key is
/// loaded from `config_dir` only when there is something to decrypt.
pub fn stored_password(
    config_dir: &std::path::Path,
    tenant_id: i32,
    server: &crate::db::SmtpServer,
) -> Result<Option<crate::secrets::Secret>, crate::secrets::SecretError> {
    match &server.password_enc {
        None => Ok(None),
        Some(enc) => {
            let key = crate::secrets::SecretKey::load(config_dir)?;
            Ok(Some(key.decrypt(enc, tenant_id)?))
        }
    }
}

/// Sets the encrypted password of `server` before it is saved: `new` when one was typed;
/// otherwise the stored one is kept as long as the username did not change, so changing
/// limits or addresses does not require typing the password again.
pub fn set_password(
    config_dir: &std::path::Path,
    tenant_id: i32,
    server: &mut crate::db::SmtpServer,
    new: Option<&crate::secrets::Secret>,
    old: Option<&crate::db::SmtpSettings>,
) -> Result<(), crate::secrets::SecretError> {
    if let Some(password) = new {
        let key = crate::secrets::SecretKey::load(config_dir)?;
        server.password_enc = Some(key.encrypt(password, tenant_id)?);
    } else if let Some(crate::db::SmtpSettings::Smtp(old)) = old
        && old.username.is_some()
        && old.username == server.username
    {
        server.password_enc = old.password_enc.clone();
    }
    Ok(())
}
