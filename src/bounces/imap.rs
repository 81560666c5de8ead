//! `recalliq bounces watch`: polls an IMAP mailbox and feeds every message through the same
//! code as `bounces ingest` (`process_message`: same matching, suppression and counting).
//! Handled messages are moved to the processed folder, unmatched and unrecognized ones to
//! the unmatched folder; nothing is deleted and no flag is set (bodies are fetched with
//! `BODY.PEEK[]`). A message whose processing failed (database error) stays where it is and
//! is read again by the next poll; ingestion is idempotent per report.
//!
//! Transport: plain, STARTTLS or TLS from the first byte, through rustls (the SMTP
//! client's configuration, `mail::smtp::rustls_config`). The IMAP protocol is async-imap's.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::error::Error as ImapError;
use futures::StreamExt;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::ingest::{Handled, IngestConfig, IngestSummary, process_message};
use crate::db::{BounceMailbox, DbError, Security, Store};
use crate::secrets::Secret;

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PollSummary {
    #[serde(flatten)]
    pub ingest: IngestSummary,
    /// Messages moved to the processed folder.
    pub moved_processed: u64,
    /// Messages moved to the unmatched folder.
    pub moved_unmatched: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The server cannot be reached or went away; worth retrying.
    #[error("IMAP server {server}: {reason}")]
    Connection { server: String, reason: String },
    /// The server refused the login: retrying will not help.
    #[error("IMAP server {server} refused the login of {user}: {reason}")]
    Login {
        server: String,
        user: String,
        reason: String,
    },
    /// A mailbox or folder cannot be used (missing, not creatable, no MOVE support).
    #[error("IMAP server {server}: {reason}")]
    Mailbox { server: String, reason: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl WatchError {
    /// Whether a watching loop should give up instead of reconnecting.
    pub fn is_fatal(&self) -> bool {
        matches!(self, WatchError::Login { .. } | WatchError::Mailbox { .. })
    }
}

/// The byte stream under the IMAP session.
#[derive(Debug)]
enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

type Session = async_imap::Session<Conn>;

/// One mailbox to poll, with its decrypted password.
pub struct Watcher<'a> {
    pub store: &'a Store,
    pub ingest: &'a IngestConfig,
    pub mailbox: &'a BounceMailbox,
    pub password: &'a Secret,
    /// Limit of each network step (connect, handshake, one command).
    pub timeout: Duration,
}

impl Watcher<'_> {
    fn server(&self) -> String {
        format!("{}:{}", self.mailbox.host, self.mailbox.port)
    }

    fn lost(&self, reason: impl std::fmt::Display) -> WatchError {
        WatchError::Connection {
            server: self.server(),
            reason: reason.to_string(),
        }
    }

    fn folder_error(&self, reason: impl std::fmt::Display) -> WatchError {
        WatchError::Mailbox {
            server: self.server(),
            reason: reason.to_string(),
        }
    }

    /// Runs one IMAP step within the timeout; network and protocol errors become
    /// `Connection`, a NO answer becomes `Mailbox` (about `what`).
    async fn step<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, ImapError>>,
    ) -> Result<T, WatchError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => Err(self.lost(format!("{what}: no answer within {:?}", self.timeout))),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(ImapError::No(text))) => Err(self.folder_error(format!("{what}: {text}"))),
            Ok(Err(e)) => Err(self.lost(format!("{what}: {e}"))),
        }
    }

    async fn tls(&self, tcp: TcpStream) -> Result<Conn, WatchError> {
        let config = crate::mail::smtp::rustls_config(self.mailbox.tls_insecure)
            .map_err(|e| self.lost(e))?;
        let name = rustls::pki_types::ServerName::try_from(self.mailbox.host.clone())
            .map_err(|e| self.lost(format!("invalid server name: {e}")))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        match tokio::time::timeout(self.timeout, connector.connect(name, tcp)).await {
            Err(_) => Err(self.lost("TLS handshake timed out")),
            Ok(Err(e)) => Err(self.lost(format!("TLS handshake: {e}"))),
            Ok(Ok(s)) => Ok(Conn::Tls(Box::new(s))),
        }
    }

    async fn greeting(&self, client: &mut async_imap::Client<Conn>) -> Result<(), WatchError> {
        match tokio::time::timeout(self.timeout, client.read_response()).await {
            Err(_) => Err(self.lost("no greeting")),
            Ok(Err(e)) => Err(self.lost(format!("greeting: {e}"))),
            Ok(Ok(None)) => Err(self.lost("connection closed before the greeting")),
            Ok(Ok(Some(_))) => Ok(()),
        }
    }

    /// Connects, secures and logs in.
    async fn open(&self) -> Result<Session, WatchError> {
        let m = self.mailbox;
        let tcp =
            match tokio::time::timeout(self.timeout, TcpStream::connect((m.host.as_str(), m.port)))
                .await
            {
                Err(_) => return Err(self.lost("connection timed out")),
                Ok(Err(e)) => return Err(self.lost(format!("cannot connect: {e}"))),
                Ok(Ok(s)) => s,
            };
        let client = match m.security {
            Security::Tls => {
                let mut c = async_imap::Client::new(self.tls(tcp).await?);
                self.greeting(&mut c).await?;
                c
            }
            Security::None => {
                let mut c = async_imap::Client::new(Conn::Plain(tcp));
                self.greeting(&mut c).await?;
                c
            }
            Security::Starttls => {
                let mut c = async_imap::Client::new(Conn::Plain(tcp));
                self.greeting(&mut c).await?;
                self.step("STARTTLS", c.run_command_and_check_ok("STARTTLS", None))
                    .await
                    .map_err(|e| self.lost(format!("STARTTLS refused or failed ({e})")))?;
                let Conn::Plain(tcp) = c.into_inner() else {
                    return Err(self.lost("STARTTLS on an encrypted connection"));
                };
                // No second greeting after STARTTLS.
                async_imap::Client::new(self.tls(tcp).await?)
            }
        };
        match tokio::time::timeout(
            self.timeout,
            client.login(&m.username, self.password.expose()),
        )
        .await
        {
            Err(_) => Err(self.lost("LOGIN: no answer")),
            Ok(Ok(s)) => Ok(s),
            Ok(Err((ImapError::No(reason) | ImapError::Bad(reason), _))) => {
                Err(WatchError::Login {
                    server: self.server(),
                    user: m.username.clone(),
                    reason,
                })
            }
            Ok(Err((e, _))) => Err(self.lost(format!("LOGIN: {e}"))),
        }
    }

    /// `RecallIQ/Processed` written with the server's hierarchy delimiter.
    async fn server_name(&self, session: &mut Session, name: &str) -> Result<String, WatchError> {
        let names: Vec<_> = {
            let stream = self.step("LIST", session.list(Some(""), Some(""))).await?;
            stream.collect().await
        };
        let delim = names
            .iter()
            .filter_map(|n| n.as_ref().ok())
            .find_map(|n| n.delimiter().map(str::to_string));
        Ok(match delim {
            Some(d) if d != "/" => name.replace('/', &d),
            _ => name.to_string(),
        })
    }

    /// Creates `folder` unless it exists.
    async fn ensure_folder(&self, session: &mut Session, folder: &str) -> Result<(), WatchError> {
        if tokio::time::timeout(self.timeout, session.status(folder, "(MESSAGES)"))
            .await
            .is_ok_and(|r| r.is_ok())
        {
            return Ok(());
        }
        self.step(&format!("CREATE {folder}"), session.create(folder))
            .await
            .map_err(|e| self.folder_error(format!("cannot create folder {folder}: {e}")))
    }

    async fn fetch(&self, session: &mut Session, uid: u32) -> Result<Option<Vec<u8>>, WatchError> {
        let fetches: Vec<_> = {
            let stream = self
                .step(
                    "UID FETCH",
                    session.uid_fetch(uid.to_string(), "(UID BODY.PEEK[])"),
                )
                .await?;
            stream.collect().await
        };
        for f in fetches {
            let f = f.map_err(|e| self.lost(format!("UID FETCH {uid}: {e}")))?;
            if f.uid == Some(uid)
                && let Some(body) = f.body()
            {
                return Ok(Some(body.to_vec()));
            }
        }
        Ok(None)
    }

    async fn move_to(
        &self,
        session: &mut Session,
        has_move: bool,
        uid: u32,
        folder: &str,
    ) -> Result<(), WatchError> {
        let set = uid.to_string();
        if has_move {
            return self.step("UID MOVE", session.uid_mv(&set, folder)).await;
        }
        // RFC 4315: copy, then expunge exactly this message.
        self.step("UID COPY", session.uid_copy(&set, folder))
            .await?;
        let stored: Vec<_> = {
            let s = self
                .step(
                    "UID STORE",
                    session.uid_store(&set, "+FLAGS.SILENT (\\Deleted)"),
                )
                .await?;
            s.collect().await
        };
        drop(stored);
        let expunged: Vec<_> = {
            let s = self.step("UID EXPUNGE", session.uid_expunge(&set)).await?;
            s.collect().await
        };
        drop(expunged);
        Ok(())
    }

    /// One poll: every message in the mailbox, oldest first. Stops early (between
    /// messages) when `stop` turns true.
    pub async fn poll(&self, stop: &watch::Receiver<bool>) -> Result<PollSummary, WatchError> {
        let mut session = self.open().await?;
        let result = self.poll_session(&mut session, stop).await;
        // A polite goodbye; the outcome does not depend on it.
        let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
        result
    }

    async fn poll_session(
        &self,
        session: &mut Session,
        stop: &watch::Receiver<bool>,
    ) -> Result<PollSummary, WatchError> {
        let m = self.mailbox;
        let caps = self.step("CAPABILITY", session.capabilities()).await?;
        let has_move = caps.has_str("MOVE");
        if !has_move && !caps.has_str("UIDPLUS") {
            return Err(self.folder_error(
                "the server supports neither MOVE nor UIDPLUS: processed messages cannot be moved",
            ));
        }
        let processed = self.server_name(session, &m.processed_folder).await?;
        let unmatched = self.server_name(session, &m.unmatched_folder).await?;
        self.ensure_folder(session, &processed).await?;
        self.ensure_folder(session, &unmatched).await?;
        self.step(&format!("SELECT {}", m.mailbox), session.select(&m.mailbox))
            .await?;
        let mut uids: Vec<u32> = self
            .step("UID SEARCH", session.uid_search("ALL"))
            .await?
            .into_iter()
            .collect();
        uids.sort_unstable();
        let mut sum = PollSummary::default();
        for uid in uids {
            if *stop.borrow() {
                break;
            }
            let Some(raw) = self.fetch(session, uid).await? else {
                // Gone meanwhile (another client moved it).
                continue;
            };
            let handled = process_message(self.store, self.ingest, &raw, &mut sum.ingest).await?;
            match handled {
                Handled::Done => {
                    self.move_to(session, has_move, uid, &processed).await?;
                    sum.moved_processed += 1;
                }
                Handled::Left => {
                    self.move_to(session, has_move, uid, &unmatched).await?;
                    sum.moved_unmatched += 1;
                }
            }
        }
        sum.ingest.moved = sum.moved_processed;
        Ok(sum)
    }
}

/// What the watching loop reports.
#[derive(Debug)]
pub enum WatchEvent<'a> {
    Polled(&'a PollSummary),
    /// A poll failed; the next try comes after `delay`.
    Retrying {
        error: &'a WatchError,
        delay: Duration,
    },
}

/// Polls every `interval` until `stop` turns true. A failed poll is retried after a backoff
/// (5 s doubling up to 5 min, back to 5 s after a good poll); a refused login or an unusable
/// mailbox ends the loop with the error.
pub async fn watch_loop(
    watcher: &Watcher<'_>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
    mut report: impl FnMut(WatchEvent<'_>),
) -> Result<(), WatchError> {
    const FIRST_BACKOFF: Duration = Duration::from_secs(5);
    const MAX_BACKOFF: Duration = Duration::from_secs(300);
    let mut backoff = FIRST_BACKOFF;
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let delay = match watcher.poll(&stop).await {
            Ok(sum) => {
                report(WatchEvent::Polled(&sum));
                backoff = FIRST_BACKOFF;
                interval
            }
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => {
                let delay = backoff;
                report(WatchEvent::Retrying { error: &e, delay });
                backoff = (backoff * 2).min(MAX_BACKOFF);
                delay
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => {}
        }
    }
}
