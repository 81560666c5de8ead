//! `recalliq bounces ingest`: reads maildirs, mbox files and single messages, classifies
//! each message (`parse`) and applies it: hard bounces mark the log `bounced` and suppress
//! the address, soft bounces are recorded and suppress after `soft_limit` within
//! `soft_days`, unsubscribe requests suppress with reason `unsubscribed`. Unmatched and
//! unrecognized messages are counted and left where they are; nothing is ever deleted. In
//! a maildir, handled messages move from `new/` to `cur/` (flag S), as a mail client would.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::parse::{Bounce, Failure, Report, Severity, classify};
use super::token::{Token, TokenKey};
use crate::db::{
    Actor, DbError, EVENT_HARD, EVENT_SOFT, EVENT_UNSUBSCRIBE, NewBounceEvent, REASON_BOUNCED,
    REASON_UNSUBSCRIBED, SentLog, Store,
};

/// Tunables of ingestion.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Soft bounces of one address (within `soft_days`) that suppress it.
    pub soft_limit: u32,
    pub soft_days: u32,
    /// How far back a report without quoted headers is matched by recipient.
    pub match_days: u32,
    /// Verifies unsubscribe tokens; without it unsubscribe mails are left unrecognized.
    pub token_key: Option<TokenKey>,
    /// Reports read from one tenant's own mailbox change only that tenant: a bounce or an
    /// unsubscribe request about another tenant's mail counts as unmatched.
    pub only_tenant: Option<i32>,
    /// The command that reads the messages, named in the audit row of an unsubscribe mail.
    pub channel: String,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            soft_limit: 3,
            soft_days: 14,
            match_days: 14,
            token_key: None,
            only_tenant: None,
            channel: "bounces ingest".into(),
        }
    }
}

/// What a run did, message by message and address by address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestSummary {
    /// Messages read.
    pub messages: u64,
    /// Addresses hard-bounced (log marked `bounced`).
    pub hard: u64,
    /// Soft bounces recorded.
    pub soft: u64,
    /// Unsubscribe requests applied.
    pub unsubscribed: u64,
    /// Addresses newly added to a suppression list.
    pub suppressed: u64,
    pub auto_replies: u64,
    /// Reports of successful delivery (ignored).
    pub delivery_notices: u64,
    /// Reports already ingested before (nothing changed).
    pub duplicates: u64,
    /// Bounces or unsubscribe requests that match nothing we sent (left in place).
    pub unmatched: u64,
    /// Messages that are neither (left in place).
    pub unrecognized: u64,
    /// Files that could not be read.
    pub unreadable: u64,
    /// Messages moved: maildir `new/` to `cur/`, or IMAP to the processed folder.
    pub moved: u64,
}

/// How one message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Applied, ignored on purpose (auto-reply, delivery notice) or a duplicate.
    Done,
    /// Left in place: unmatched or unrecognized.
    Left,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: {reason}")]
    Input { path: String, reason: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Action of the audit row an applied unsubscribe request writes.
pub const ACTION_UNSUBSCRIBE: &str = "unsubscribe";

/// The outcome of an unsubscribe by token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsubscribed {
    /// Suppressed now (`true`) or already suppressed before (`false`).
    Done { email: String, newly: bool },
    /// Not a token of ours (forged, mangled, or its log row is gone).
    Invalid,
}

/// Applies an unsubscribe token from the one-click endpoint (`unsubscribe serve`). Replays
/// are harmless: the address stays suppressed once, the event is recorded once; each
/// applied request writes an audit row.
pub async fn unsubscribe_by_token(
    store: &Store,
    key: &TokenKey,
    token: &Token,
    via: &str,
) -> Result<Unsubscribed, DbError> {
    let audit_via = format!("{via} (unsubscribe serve)");
    unsubscribe_in(store, key, token, via, &audit_via, None).await
}

/// As `unsubscribe_by_token`; with `only_tenant`, a token of another tenant is `Invalid`.
async fn unsubscribe_in(
    store: &Store,
    key: &TokenKey,
    token: &Token,
    via: &str,
    audit_via: &str,
    only_tenant: Option<i32>,
) -> Result<Unsubscribed, DbError> {
    let all = Actor::system().all_tenants()?;
    let Some(log) = store.log_by_id(&all, token.log_id).await? else {
        return Ok(Unsubscribed::Invalid);
    };
    if only_tenant.is_some_and(|t| t != log.tenant_id) {
        return Ok(Unsubscribed::Invalid);
    }
    if !key.verify(token, &log.recipient_email) {
        return Ok(Unsubscribed::Invalid);
    }
    let scope = Actor::system().tenant_scope(log.tenant_id)?;
    let source = format!("unsubscribe:u{}", token.log_id);
    store
        .record_bounce_event(
            scope,
            &NewBounceEvent {
                batch_id: Some(log.batch_id),
                log_id: Some(log.id),
                email: &log.recipient_email,
                kind: EVENT_UNSUBSCRIBE,
                status_code: None,
                diagnostic: Some(via),
                source: &source,
            },
        )
        .await?;
    let newly = store
        .suppress(
            scope,
            &log.recipient_email,
            REASON_UNSUBSCRIBED,
            Some(via),
            Some(log.batch_id),
        )
        .await?;
    // The recipient acted, not an operator: the row names the address, the path it came
    // by and the batch; its tenant is the log row's.
    store
        .audit(
            &Actor::system(),
            Some(log.tenant_id),
            ACTION_UNSUBSCRIBE,
            &format!(
                "{} via {audit_via} (batch #{}{})",
                log.recipient_email,
                log.batch_id,
                if newly { "" } else { ", already suppressed" }
            ),
        )
        .await;
    Ok(Unsubscribed::Done {
        email: log.recipient_email,
        newly,
    })
}

fn sha256_hex(raw: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, raw)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Classifies and applies one raw message.
pub async fn process_message(
    store: &Store,
    cfg: &IngestConfig,
    raw: &[u8],
    sum: &mut IngestSummary,
) -> Result<Handled, DbError> {
    sum.messages += 1;
    match classify(raw) {
        Report::AutoReply => {
            sum.auto_replies += 1;
            Ok(Handled::Done)
        }
        Report::DeliveryNotice => {
            sum.delivery_notices += 1;
            Ok(Handled::Done)
        }
        Report::Unrecognized(reason) => {
            tracing::info!(reason, "bounce ingest: unrecognized message left in place");
            sum.unrecognized += 1;
            Ok(Handled::Left)
        }
        Report::Unsubscribe(token) => {
            let Some(key) = &cfg.token_key else {
                sum.unrecognized += 1;
                return Ok(Handled::Left);
            };
            let audit_via = format!("unsubscribe mail ({})", cfg.channel);
            match unsubscribe_in(
                store,
                key,
                &token,
                "unsubscribe mail",
                &audit_via,
                cfg.only_tenant,
            )
            .await?
            {
                Unsubscribed::Done { newly, .. } => {
                    sum.unsubscribed += 1;
                    if newly {
                        sum.suppressed += 1;
                    }
                    Ok(Handled::Done)
                }
                Unsubscribed::Invalid => {
                    sum.unmatched += 1;
                    Ok(Handled::Left)
                }
            }
        }
        Report::Bounce(b) => apply_bounce(store, cfg, &b, &sha256_hex(raw), sum).await,
    }
}

/// The log rows a bounce is about, with the failure that concerns each.
async fn match_bounce<'b>(
    store: &Store,
    cfg: &IngestConfig,
    b: &'b Bounce,
) -> Result<Vec<(SentLog, &'b Failure)>, DbError> {
    let all = Actor::system().all_tenants()?;
    if let Some(id) = &b.original_message_id {
        let Some(log) = store.log_by_message_id(&all, id).await? else {
            return Ok(Vec::new());
        };
        let failure = b
            .failures
            .iter()
            .find(|f| f.email.eq_ignore_ascii_case(&log.recipient_email))
            .or(b.failures.first());
        return Ok(failure.map(|f| vec![(log, f)]).unwrap_or_default());
    }
    if b.quoted_headers {
        // The original is quoted but is none of ours: never guess by recipient.
        return Ok(Vec::new());
    }
    let since = crate::db::now() - chrono::Duration::days(i64::from(cfg.match_days));
    let mut out = Vec::new();
    for f in &b.failures {
        let candidates = store.recent_logs_to(&all, &f.email, since).await?;
        let Some(first) = candidates.first() else {
            continue;
        };
        // Sent by two tenants: which one's list is meant cannot be told.
        if candidates.iter().any(|c| c.tenant_id != first.tenant_id) {
            continue;
        }
        out.push((first.clone(), f));
    }
    Ok(out)
}

async fn apply_bounce(
    store: &Store,
    cfg: &IngestConfig,
    b: &Bounce,
    source: &str,
    sum: &mut IngestSummary,
) -> Result<Handled, DbError> {
    let mut matched = match_bounce(store, cfg, b).await?;
    if let Some(t) = cfg.only_tenant {
        matched.retain(|(log, _)| log.tenant_id == t);
    }
    if matched.is_empty() {
        sum.unmatched += 1;
        return Ok(Handled::Left);
    }
    let mut any_new = false;
    for (log, f) in matched {
        let scope = Actor::system().tenant_scope(log.tenant_id)?;
        let diagnostic = f
            .diagnostic
            .clone()
            .or_else(|| f.status.clone())
            .unwrap_or_else(|| format!("{} bounce", f.severity.as_str()));
        let kind = match f.severity {
            Severity::Hard => EVENT_HARD,
            Severity::Soft => EVENT_SOFT,
        };
        let new = store
            .record_bounce_event(
                scope,
                &NewBounceEvent {
                    batch_id: Some(log.batch_id),
                    log_id: Some(log.id),
                    email: &log.recipient_email,
                    kind,
                    status_code: f.status.as_deref(),
                    diagnostic: Some(&diagnostic),
                    source,
                },
            )
            .await?;
        if !new {
            continue;
        }
        any_new = true;
        match f.severity {
            Severity::Hard => {
                sum.hard += 1;
                store.mark_bounced(scope, log.id, &diagnostic).await?;
                if store
                    .suppress(
                        scope,
                        &log.recipient_email,
                        REASON_BOUNCED,
                        Some(&diagnostic),
                        Some(log.batch_id),
                    )
                    .await?
                {
                    sum.suppressed += 1;
                }
            }
            Severity::Soft => {
                sum.soft += 1;
                let since = crate::db::now() - chrono::Duration::days(i64::from(cfg.soft_days));
                let n = store
                    .soft_bounces_since(scope, &log.recipient_email, since)
                    .await?;
                if cfg.soft_limit > 0
                    && n >= i64::from(cfg.soft_limit)
                    && store
                        .suppress(
                            scope,
                            &log.recipient_email,
                            REASON_BOUNCED,
                            Some(&format!(
                                "{n} soft bounces in {} days (last: {diagnostic})",
                                cfg.soft_days
                            )),
                            Some(log.batch_id),
                        )
                        .await?
                {
                    sum.suppressed += 1;
                }
            }
        }
    }
    if !any_new {
        sum.duplicates += 1;
    }
    Ok(Handled::Done)
}

/// Ingests every message under `path`: a maildir (`cur/` and `new/`), a directory of
/// `.eml` files, an mbox file, or one message file.
pub async fn ingest_path(
    store: &Store,
    cfg: &IngestConfig,
    path: &Path,
    sum: &mut IngestSummary,
) -> Result<(), IngestError> {
    let input = |reason: String| IngestError::Input {
        path: path.display().to_string(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| input(e.to_string()))?;
    if meta.is_dir() {
        let is_maildir = path.join("new").is_dir() || path.join("cur").is_dir();
        if is_maildir {
            // Both listed before anything moves, so a message is read once per run.
            let mut lists = Vec::new();
            for sub in ["new", "cur"] {
                let dir = path.join(sub);
                let files = if dir.is_dir() {
                    list_files(&dir).map_err(|e| input(e.to_string()))?
                } else {
                    Vec::new()
                };
                lists.push((sub, files));
            }
            for (sub, files) in lists {
                for file in files {
                    let handled = ingest_file(store, cfg, &file, sum).await?;
                    if sub == "new" && handled == Some(Handled::Done) {
                        move_to_cur(path, &file, sum);
                    }
                }
            }
        } else {
            let files: Vec<PathBuf> = list_files(path)
                .map_err(|e| input(e.to_string()))?
                .into_iter()
                .filter(|f| f.extension().is_some_and(|e| e.eq_ignore_ascii_case("eml")))
                .collect();
            if files.is_empty() {
                return Err(input(
                    "neither a maildir (no cur/ or new/) nor a directory of .eml files".into(),
                ));
            }
            for f in files {
                ingest_file(store, cfg, &f, sum).await?;
            }
        }
        return Ok(());
    }
    let raw = std::fs::read(path).map_err(|e| input(e.to_string()))?;
    if raw.starts_with(b"From ") {
        for m in mail_parser::mailbox::mbox::MessageIterator::new(std::io::Cursor::new(&raw[..])) {
            match m {
                Ok(m) => {
                    process_message(store, cfg, m.contents(), sum).await?;
                }
                Err(_) => sum.unreadable += 1,
            }
        }
    } else {
        process_message(store, cfg, &raw, sum).await?;
    }
    Ok(())
}

fn list_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    Ok(out)
}

async fn ingest_file(
    store: &Store,
    cfg: &IngestConfig,
    file: &Path,
    sum: &mut IngestSummary,
) -> Result<Option<Handled>, IngestError> {
    match std::fs::read(file) {
        Ok(raw) => Ok(Some(process_message(store, cfg, &raw, sum).await?)),
        Err(e) => {
            tracing::warn!(path = %file.display(), error = %e, "cannot read message");
            sum.unreadable += 1;
            Ok(None)
        }
    }
}

/// `new/NAME` -> `cur/NAME:2,S` (seen), the maildir way of saying "handled".
fn move_to_cur(maildir: &Path, file: &Path, sum: &mut IngestSummary) {
    let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let base = name.split(":2,").next().unwrap_or(name);
    let target = maildir.join("cur").join(format!("{base}:2,S"));
    if std::fs::create_dir_all(maildir.join("cur")).is_ok()
        && std::fs::rename(file, &target).is_ok()
    {
        sum.moved += 1;
    }
}
