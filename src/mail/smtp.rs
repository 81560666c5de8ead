//! SMTP connections: we open the `TcpStream` ourselves with TCP_NODELAY (lettre does not,
//! and every message would then wait for the server's delayed ACK, see DESIGN.md) and hand
//! it to lettre's `AsyncSmtpConnection`. Implicit TLS is done here with tokio-rustls,
//! STARTTLS by lettre. Certificates are verified unless the settings say `tls_insecure`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::MailError;
use crate::db::{Security, SmtpServer};
use crate::secrets::Secret;

/// How long connecting, the greeting and each command may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A stream that copies what it reads into a buffer while `tap` is on: that is how the
/// server's greeting, which lettre reads and drops, reaches `smtp test`.
struct Tapped<S> {
    inner: S,
    seen: Arc<Mutex<Vec<u8>>>,
    tap: Arc<AtomicBool>,
}

impl<S> fmt::Debug for Tapped<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tapped")
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tapped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.tap.load(Ordering::Relaxed)
            && let Ok(mut seen) = self.seen.lock()
            && seen.len() < 4096
        {
            seen.extend_from_slice(&buf.filled()[before..]);
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tapped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Streams whose peer address is known (plain TCP or TLS over TCP).
trait Peer {
    fn peer(&self) -> io::Result<SocketAddr>;
}

impl Peer for TcpStream {
    fn peer(&self) -> io::Result<SocketAddr> {
        self.peer_addr()
    }
}

impl Peer for tokio_rustls::client::TlsStream<TcpStream> {
    fn peer(&self) -> io::Result<SocketAddr> {
        self.get_ref().0.peer_addr()
    }
}

impl<S> AsyncTokioStream for Tapped<S>
where
    S: AsyncRead + AsyncWrite + Peer + Send + Sync + Unpin,
{
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer()
    }
}

/// Accepts any certificate: only when the settings ask for it (`tls_insecure`).
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub(crate) fn rustls_config(insecure: bool) -> Result<ClientConfig, MailError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| MailError::Tls(e.to_string()))?;
    Ok(if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        builder.with_root_certificates(roots).with_no_client_auth()
    })
}

/// `250 2.0.0 Ok` from a lettre response (multi-line replies joined with " / ").
pub fn describe_response(r: &Response) -> String {
    let text: Vec<&str> = r.message().collect();
    format!("{} {}", r.code(), text.join(" / "))
}

/// What happened while connecting, line by line, for `smtp test`.
#[derive(Debug, Clone, Default)]
pub struct ConnectReport {
    pub lines: Vec<String>,
}

impl fmt::Display for ConnectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.lines {
            writeln!(f, "{l}")?;
        }
        Ok(())
    }
}

/// An open, greeted (and when configured, encrypted and authenticated) SMTP session.
pub struct SmtpConnection {
    conn: AsyncSmtpConnection,
    timeout: Duration,
    /// lettre only knows about TLS it set up itself (STARTTLS), not our implicit TLS.
    implicit_tls: bool,
}

impl fmt::Debug for SmtpConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConnection")
            .field("encrypted", &self.is_encrypted())
            .finish_non_exhaustive()
    }
}

/// An SMTP failure with the server's reply code when there was one.
#[derive(Debug, Clone)]
pub struct SendError {
    /// The 3-digit reply code, if the server answered.
    pub code: Option<u16>,
    pub permanent: bool,
    pub message: String,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn send_error(e: &lettre::transport::smtp::Error) -> SendError {
    let code = e.status().and_then(|c| c.to_string().parse::<u16>().ok());
    SendError {
        code,
        permanent: e.is_permanent(),
        message: e.to_string(),
    }
}

impl SmtpConnection {
    /// Sends one message (its envelope: From and To) and returns the server's reply.
    pub async fn send(&mut self, message: &Message) -> Result<Response, SendError> {
        let bytes = message.formatted();
        match tokio::time::timeout(self.timeout, self.conn.send(message.envelope(), &bytes)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(send_error(&e)),
            Err(_) => Err(SendError {
                code: None,
                permanent: false,
                message: format!("timed out after {}s", self.timeout.as_secs()),
            }),
        }
    }

    /// Whether the connection can still be used (lettre closes it after some failures).
    pub fn is_broken(&self) -> bool {
        self.conn.has_broken()
    }

    pub fn is_encrypted(&self) -> bool {
        self.implicit_tls || self.conn.is_encrypted()
    }

    /// Says QUIT and returns the reply.
    pub async fn quit(mut self) -> Result<Response, SendError> {
        match tokio::time::timeout(self.timeout, self.conn.quit()).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(send_error(&e)),
            Err(_) => Err(SendError {
                code: None,
                permanent: false,
                message: "timed out waiting for the QUIT reply".into(),
            }),
        }
    }
}

async fn within<T, E: fmt::Display>(
    timeout: Duration,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, MailError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(MailError::Smtp(format!("{what}: {e}"))),
        Err(_) => Err(MailError::Smtp(format!(
            "{what}: timed out after {}s",
            timeout.as_secs()
        ))),
    }
}

/// Opens a session to `server`: TCP with TCP_NODELAY, implicit TLS or STARTTLS as
/// configured, then AUTH (PLAIN or LOGIN) when a username is set. The report says what
/// each step answered.
pub async fn connect(
    server: &SmtpServer,
    password: Option<&Secret>,
    timeout: Duration,
) -> Result<(SmtpConnection, ConnectReport), MailError> {
    let mut report = ConnectReport::default();
    let conn = connect_reporting(server, password, timeout, &mut report).await?;
    Ok((conn, report))
}

async fn connect_reporting(
    server: &SmtpServer,
    password: Option<&Secret>,
    timeout: Duration,
    report: &mut ConnectReport,
) -> Result<SmtpConnection, MailError> {
    let target = format!("{}:{}", server.host, server.port);
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect(&target)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(MailError::Connect {
                server: target,
                reason: e.to_string(),
            });
        }
        Err(_) => {
            return Err(MailError::Connect {
                server: target,
                reason: format!("timed out after {}s", timeout.as_secs()),
            });
        }
    };
    tcp.set_nodelay(true).map_err(|e| MailError::Connect {
        server: target.clone(),
        reason: format!("cannot set TCP_NODELAY: {e}"),
    })?;
    let peer = tcp
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| target.clone());
    report.lines.push(format!("connected to {target} ({peer})"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tap = Arc::new(AtomicBool::new(true));
    let hello = ClientId::default();
    let stream: Box<dyn AsyncTokioStream> = if server.security == Security::Tls {
        let config = rustls_config(server.tls_insecure)?;
        let name = ServerName::try_from(server.host.clone())
            .map_err(|e| MailError::Tls(format!("invalid server name '{}': {e}", server.host)))?;
        let tls = within(
            timeout,
            "TLS handshake",
            tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
        )
        .await?;
        report.lines.push(format!(
            "TLS established{}",
            if server.tls_insecure {
                " (certificate not verified: tls_insecure)"
            } else {
                ""
            }
        ));
        Box::new(Tapped {
            inner: tls,
            seen: seen.clone(),
            tap: tap.clone(),
        })
    } else {
        Box::new(Tapped {
            inner: tcp,
            seen: seen.clone(),
            tap: tap.clone(),
        })
    };
    let connected = within(
        timeout,
        "greeting/EHLO",
        AsyncSmtpConnection::connect_with_transport(stream, &hello),
    )
    .await;
    tap.store(false, Ordering::Relaxed);
    let greeting = greeting_of(&seen.lock().map(|s| s.clone()).unwrap_or_default());
    if !greeting.is_empty() {
        report.lines.push(format!("greeting: {greeting}"));
    }
    let mut conn = connected?;
    report.lines.push(format!("EHLO: {}", conn.server_info()));
    if server.security == Security::Starttls {
        if !conn.can_starttls() {
            conn.abort().await;
            return Err(MailError::Tls(format!(
                "{target} does not offer STARTTLS (use --security tls or none)"
            )));
        }
        let params = TlsParameters::builder(server.host.clone())
            .dangerous_accept_invalid_certs(server.tls_insecure)
            .build_rustls()
            .map_err(|e| MailError::Tls(e.to_string()))?;
        within(timeout, "STARTTLS", conn.starttls(params, &hello)).await?;
        report.lines.push(format!(
            "STARTTLS: ok, TLS established{}",
            if server.tls_insecure {
                " (certificate not verified: tls_insecure)"
            } else {
                ""
            }
        ));
        report.lines.push(format!("EHLO: {}", conn.server_info()));
    }
    if let Some(user) = &server.username {
        let Some(pw) = password else {
            conn.abort().await;
            return Err(MailError::Smtp(format!(
                "username {user} is set but there is no password"
            )));
        };
        if !(server.security == Security::Tls || conn.is_encrypted()) {
            report.lines.push(
                "warning: AUTH over an unencrypted connection (security none): the password is sent in clear".into(),
            );
        }
        let creds = Credentials::new(user.clone(), pw.expose().to_string());
        let reply = within(
            timeout,
            "AUTH",
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds),
        )
        .await;
        match reply {
            Ok(r) => report
                .lines
                .push(format!("AUTH as {user}: {}", describe_response(&r))),
            Err(e) => {
                conn.abort().await;
                return Err(e);
            }
        }
    }
    Ok(SmtpConnection {
        conn,
        timeout,
        implicit_tls: server.security == Security::Tls,
    })
}

/// The greeting lines (`220-...`, `220 ...`) at the start of what the server sent.
fn greeting_of(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = Vec::new();
    for line in text.split("\r\n") {
        lines.push(line.trim_end().to_string());
        if line.len() < 4 || line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    }
    lines.join(" / ")
}

/// Connects, reports every step and says QUIT: `recalliq smtp test`. The error carries the
/// report of the steps that worked before it.
pub async fn test_connection(
    server: &SmtpServer,
    password: Option<&Secret>,
) -> Result<ConnectReport, (ConnectReport, MailError)> {
    let mut report = ConnectReport::default();
    match connect_reporting(server, password, DEFAULT_TIMEOUT, &mut report).await {
        Ok(conn) => {
            match conn.quit().await {
                Ok(r) => report
                    .lines
                    .push(format!("QUIT: {}", describe_response(&r))),
                Err(e) => report.lines.push(format!("QUIT: {e}")),
            }
            Ok(report)
        }
        Err(e) => Err((report, e)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn greeting_lines_are_joined() {
        assert_eq!(
            super::greeting_of(b"220-mx.test hello\r\n220 ready\r\n250-mx\r\n"),
            "220-mx.test hello / 220 ready"
        );
        assert_eq!(super::greeting_of(b"220 ok\r\n"), "220 ok");
    }
}
