//! Mail out: message building (`message`), SMTP connections opened by us with TCP_NODELAY
//! and handed to lettre (`smtp`), and the outbox transport that writes `.eml` files
//! (`outbox`). The sending engine builds on these; `template preview/send-test` and
//! `smtp test` use them directly.

pub mod message;
pub mod outbox;
pub mod smtp;

pub use message::{MessageParts, Unsubscribe, build_message};
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
