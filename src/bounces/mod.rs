//! Bounces and unsubscribes: the way back into the database (issue #9).
//!
//! - `token`: signed per-recipient unsubscribe tokens (List-Unsubscribe mailto and URL).
//! - `parse`: what a returned message is (RFC 3464 DSN, non-standard bounce, auto-reply,
//!   unsubscribe request).
//! - `ingest`: maildir / mbox / .eml ingestion and what each report changes.
//! - `imap`: `recalliq bounces watch`, the same ingestion fed from an IMAP mailbox.
//! - `http`: the RFC 8058 one-click endpoint (`recalliq unsubscribe serve`).

pub mod http;
pub mod imap;
pub mod ingest;
pub mod parse;
pub mod token;

pub use ingest::{IngestConfig, IngestSummary, Unsubscribed, ingest_path, process_message};
pub use parse::{Report, classify};
pub use token::{Token, TokenKey};
