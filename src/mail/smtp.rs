//! SMTP connections: our own client session over a tokio `TcpStream` (with TCP_NODELAY, or
//! else every message would wait for the server's delayed ACK, see DESIGN.md) or a
//! tokio-rustls stream on top of it (implicit TLS or STARTTLS). lettre provides the pieces:
//! commands, reply parsing, EHLO features, AUTH mechanisms and the message itself.
//!
//! Why not lettre's `AsyncSmtpConnection`: it writes and flushes MAIL, RCPT, DATA, the body
//! and the final "." separately and waits for each reply. Here, when the server offers
//! PIPELINING (RFC 2920), MAIL FROM + RCPT TO + DATA go out in one write and their replies
//! are read together; the dot-stuffed body and "." then wait for the next message and go
//! out in the same write as its envelope (`start`), or alone (`finish`) when no message
//! follows: one write and one read per message in a steady batch, instead of five and
//! five. After a refused command the session sends RSET and stays usable. Certificates
//! are verified unless the settings say `tls_insecure`.

use std::fmt;
use std::io::{self, Write as _};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::commands::{Auth, Data, Ehlo, Mail, Quit, Rcpt, Rset, Starttls};
use lettre::transport::smtp::extension::{
    ClientId, Extension, MailBodyParameter, MailParameter, ServerInfo,
};
use lettre::transport::smtp::response::{Response, Severity};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf,
};
use tokio::net::TcpStream;

use super::{MailError, Message};
use crate::db::{Security, SmtpServer};
use crate::secrets::Secret;

/// How long connecting, the greeting and each command may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most a reply may weigh (lettre's limit too): a server sending more is not an SMTP
/// server.
const MAX_REPLY_BYTES: usize = 100_000;

/// The byte stream under a session: plain TCP, or TLS over it.
enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
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

/// A reply as the server wrote it, lines joined with " / ": `220-mx hello / 220 ready`.
fn reply_lines(r: &Response) -> String {
    let lines: Vec<&str> = r.message().collect();
    let last = lines.len().saturating_sub(1);
    let out: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let sep = if i == last { ' ' } else { '-' };
            format!("{}{sep}{l}", r.code()).trim_end().to_string()
        })
        .collect();
    out.join(" / ")
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

/// Why a command or a transfer failed, worded as lettre words its errors: the engine, the
/// CLI and the tests read "permanent error (550): 5.1.1 ...", "transient error (451): ...".
#[derive(Debug)]
enum Failure {
    /// A negative (4xx or 5xx) reply.
    Reply(Response),
    Network(io::Error),
    /// No reply, one that does not parse, or one that makes no sense at this point.
    Response(String),
    /// We did not send: the message needs an extension the server lacks, and the like.
    Client(String),
    Tls(String),
    /// An error from one of lettre's pieces, already worded.
    Other(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Reply(r) => {
                let kind = match r.code().severity {
                    Severity::TransientNegativeCompletion => "transient error",
                    Severity::PermanentNegativeCompletion => "permanent error",
                    _ => "unexpected reply",
                };
                write!(f, "{kind} ({})", r.code())?;
                let text = joined(r);
                if !text.is_empty() {
                    write!(f, ": {text}")?;
                }
                Ok(())
            }
            Failure::Network(e) => write!(f, "network error: {e}"),
            Failure::Response(m) => write!(f, "response error: {m}"),
            Failure::Client(m) => write!(f, "internal client error: {m}"),
            Failure::Tls(m) => write!(f, "tls error: {m}"),
            Failure::Other(m) => f.write_str(m),
        }
    }
}

impl Failure {
    fn into_send_error(self) -> SendError {
        let (code, permanent) = match &self {
            Failure::Reply(r) => (
                Some(u16::from(r.code())),
                r.code().severity == Severity::PermanentNegativeCompletion,
            ),
            _ => (None, false),
        };
        SendError {
            code,
            permanent,
            message: self.to_string(),
        }
    }
}

/// The reply's lines joined with spaces, a repeated enhanced status code (`5.1.1`) kept on
/// the first line only: lettre's wording of a negative reply.
fn joined(r: &Response) -> String {
    let mut lines = r.message();
    let Some(first) = lines.next() else {
        return String::new();
    };
    let class = match r.code().severity {
        Severity::PositiveCompletion => "2",
        Severity::TransientNegativeCompletion => "4",
        Severity::PermanentNegativeCompletion => "5",
        Severity::PositiveIntermediate => "",
    };
    let enhanced = first
        .split_whitespace()
        .next()
        .filter(|w| is_enhanced_code(w, class));
    let mut out = first.to_string();
    for line in lines {
        out.push(' ');
        out.push_str(
            enhanced
                .and_then(|code| line.strip_prefix(code))
                .filter(|rest| rest.starts_with(' '))
                .map_or(line, str::trim_start),
        );
    }
    out
}

/// `5.1.1` of class `5` (RFC 3463).
fn is_enhanced_code(word: &str, class: &str) -> bool {
    let mut parts = word.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(c), Some(subject), Some(detail), None) => {
            !class.is_empty()
                && c == class
                && [subject, detail]
                    .iter()
                    .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
        }
        _ => false,
    }
}

/// Appends `body` with transparency (RFC 5321 4.5.2: a line starting with "." gets another
/// one; a line starts at the beginning and after CRLF, as in lettre's codec) and the
/// end-of-data "\r\n.\r\n".
fn push_body(out: &mut Vec<u8>, body: &[u8]) {
    out.reserve(body.len() + 64);
    if body.first() == Some(&b'.') {
        out.push(b'.');
    }
    let mut from = 0;
    for at in memchr::memmem::find_iter(body, b"\r\n.") {
        let dot = at + 2;
        out.extend_from_slice(&body[from..dot]);
        out.push(b'.');
        from = dot;
    }
    out.extend_from_slice(&body[from..]);
    out.extend_from_slice(b"\r\n.\r\n");
}

/// One SMTP session on one connection.
struct Session {
    io: BufReader<Io>,
    /// What goes out next. One buffer, reused: a group of commands is one write.
    out: Vec<u8>,
    /// The reply line being read.
    line: Vec<u8>,
    info: ServerInfo,
    /// The server said PIPELINING to EHLO (RFC 2920).
    pipelining: bool,
    encrypted: bool,
    /// The session is out of step with the server or the connection is gone: an I/O error,
    /// a timeout, a reply that makes no sense, a 421. Not after an ordinary refusal: that
    /// is followed by RSET.
    broken: bool,
    /// `out` holds the body and "." of a message the server waits for (`begin`).
    body_pending: bool,
    /// The reply to the body written with the last envelope, once read (`begin`).
    previous: Option<Result<Response, Failure>>,
}

/// Why `Session::begin` did not leave a body waiting.
#[derive(Debug)]
enum Begin {
    /// The envelope was refused or failed.
    Failed(Failure),
    /// The connection failed before any reply to this envelope: nothing was attempted.
    NotAnswered,
}

impl Session {
    fn new(io: Io) -> Session {
        let encrypted = matches!(io, Io::Tls(_));
        Session {
            io: BufReader::with_capacity(8 * 1024, io),
            out: Vec::with_capacity(16 * 1024),
            line: Vec::with_capacity(512),
            info: ServerInfo::default(),
            pipelining: false,
            encrypted,
            broken: false,
            body_pending: false,
            previous: None,
        }
    }

    /// Adds a command (lettre's commands end with CRLF) to what goes out next.
    fn push(&mut self, command: impl fmt::Display) {
        // Writing into a Vec cannot fail.
        let _ = write!(self.out, "{command}");
    }

    /// Writes out what was pushed, in one write.
    async fn write_out(&mut self) -> Result<(), Failure> {
        let io = self.io.get_mut();
        let written = match io.write_all(&self.out).await {
            Ok(()) => io.flush().await,
            Err(e) => Err(e),
        };
        self.out.clear();
        written.map_err(|e| {
            self.broken = true;
            Failure::Network(e)
        })
    }

    /// Reads one reply, all its lines.
    async fn reply(&mut self) -> Result<Response, Failure> {
        let r = self.read_reply().await;
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    async fn read_reply(&mut self) -> Result<Response, Failure> {
        let mut text = String::new();
        loop {
            self.line.clear();
            // At most one byte over the limit is read, even from a server that never
            // ends its line.
            let room = (MAX_REPLY_BYTES - text.len() + 1) as u64;
            let n = (&mut self.io)
                .take(room)
                .read_until(b'\n', &mut self.line)
                .await
                .map_err(Failure::Network)?;
            if text.len() + n > MAX_REPLY_BYTES {
                return Err(Failure::Response("SMTP response too large".into()));
            }
            if !self.line.ends_with(b"\n") {
                return Err(Failure::Response("incomplete response".into()));
            }
            let line = String::from_utf8_lossy(&self.line);
            let line = line.trim_end_matches(['\r', '\n']);
            let Some(code) = line
                .get(..3)
                .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            else {
                return Err(Failure::Response(format!("not an SMTP reply: {line:?}")));
            };
            let rest = line.get(3..).unwrap_or("");
            let more = rest.starts_with('-');
            text.push_str(code);
            text.push(if more { '-' } else { ' ' });
            text.push_str(rest.get(1..).unwrap_or(""));
            text.push_str("\r\n");
            if !more {
                break;
            }
        }
        text.parse::<Response>()
            .map_err(|_| Failure::Response(format!("cannot parse {:?}", text.trim_end())))
    }

    /// `Ok(Ok(r))` when `r` is of the class wanted, `Ok(Err(r))` when it is a refusal (4xx,
    /// 5xx); an error when it makes no sense here (the session is then out of step).
    fn sort(&mut self, r: Response, want: Severity) -> Result<Result<Response, Response>, Failure> {
        let severity = r.code().severity;
        if severity == want {
            return Ok(Ok(r));
        }
        match severity {
            Severity::TransientNegativeCompletion | Severity::PermanentNegativeCompletion => {
                // 421: the server is closing the connection.
                if r.has_code(421) {
                    self.broken = true;
                }
                Ok(Err(r))
            }
            _ => {
                self.broken = true;
                Err(Failure::Response(format!(
                    "unexpected reply: {}",
                    describe_response(&r)
                )))
            }
        }
    }

    /// `r` when it is of the class wanted, else the failure it means.
    fn check(&mut self, r: Response, want: Severity) -> Result<Response, Failure> {
        self.sort(r, want)?.map_err(Failure::Reply)
    }

    /// Sends one command and reads its reply.
    async fn command(
        &mut self,
        command: impl fmt::Display,
        want: Severity,
    ) -> Result<Response, Failure> {
        self.push(command);
        self.write_out().await?;
        let r = self.reply().await?;
        self.check(r, want)
    }

    /// Reads the greeting (its lines go to `greeting`, even when it refuses), then EHLO.
    async fn greet(
        &mut self,
        hello: &ClientId,
        greeting: &mut Option<String>,
    ) -> Result<(), Failure> {
        let r = self.reply().await?;
        *greeting = Some(reply_lines(&r));
        self.check(r, Severity::PositiveCompletion)?;
        self.ehlo(hello).await
    }

    /// EHLO: what the server offers.
    async fn ehlo(&mut self, hello: &ClientId) -> Result<(), Failure> {
        let r = self
            .command(Ehlo::new(hello.clone()), Severity::PositiveCompletion)
            .await?;
        self.info = ServerInfo::from_response(&r).map_err(|e| {
            self.broken = true;
            Failure::Other(e.to_string())
        })?;
        // lettre's ServerInfo does not know PIPELINING.
        self.pipelining = r.message().skip(1).any(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("PIPELINING"))
        });
        Ok(())
    }

    /// The EHLO answer for the report: `mx.test with {EightBitMime, ...}, PIPELINING`.
    fn describe_ehlo(&self) -> String {
        if self.pipelining {
            format!("{}, PIPELINING", self.info)
        } else {
            self.info.to_string()
        }
    }

    /// STARTTLS, the handshake on the same TCP connection, and EHLO again.
    async fn starttls(
        mut self,
        name: ServerName<'static>,
        config: Arc<ClientConfig>,
        hello: &ClientId,
    ) -> Result<Session, Failure> {
        self.command(Starttls, Severity::PositiveCompletion).await?;
        if !self.io.buffer().is_empty() {
            // Bytes sent before the handshake must not be read as if they were encrypted.
            return Err(Failure::Response(
                "the server sent more than the STARTTLS reply".into(),
            ));
        }
        let Io::Plain(tcp) = self.io.into_inner() else {
            return Err(Failure::Client(
                "the connection is already encrypted".into(),
            ));
        };
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| Failure::Tls(e.to_string()))?;
        let mut session = Session::new(Io::Tls(Box::new(tls)));
        session.ehlo(hello).await?;
        Ok(session)
    }

    /// AUTH with PLAIN or LOGIN, answering the server's challenges.
    async fn auth(&mut self, credentials: &Credentials) -> Result<Response, Failure> {
        let mechanism = self
            .info
            .get_auth_mechanism(&[Mechanism::Plain, Mechanism::Login])
            .ok_or_else(|| {
                Failure::Client("No compatible authentication mechanism was found".into())
            })?;
        let mut command = Auth::new(mechanism, credentials.clone(), None)
            .map_err(|e| Failure::Other(e.to_string()))?;
        // A bounded number of challenges, as lettre.
        for _ in 0..10 {
            self.push(command);
            self.write_out().await?;
            let r = self.reply().await?;
            if !r.has_code(334) {
                return self.check(r, Severity::PositiveCompletion);
            }
            command = Auth::new_from_response(mechanism, credentials.clone(), &r).map_err(|e| {
                self.broken = true;
                Failure::Other(e.to_string())
            })?;
        }
        self.broken = true;
        Err(Failure::Response("Unexpected number of challenges".into()))
    }

    /// MAIL FROM with the parameters `envelope` and `body` need (SMTPUTF8, 8BITMIME), or
    /// why the server cannot take this message.
    fn mail_command(&self, envelope: &Envelope, body: &[u8]) -> Result<Mail, Failure> {
        let mut params = Vec::new();
        // Internationalization as lettre: SMTPUTF8 (RFC 6531), 8BITMIME (RFC 6152).
        let non_ascii = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii {
            if !self.info.supports_feature(Extension::SmtpUtfEight) {
                return Err(Failure::Client(
                    "Envelope contains non-ascii chars but server does not support SMTPUTF8".into(),
                ));
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        if !body.is_ascii() {
            if !self.info.supports_feature(Extension::EightBitMime) {
                return Err(Failure::Client(
                    "Message contains non-ascii chars but server does not support 8BITMIME".into(),
                ));
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        Ok(Mail::new(envelope.from().cloned(), params))
    }

    /// Starts one message: its envelope goes out (pipelined when the server allows it) and
    /// is answered; when the server waits for the data, the dot-stuffed body is held in
    /// `out` for the next write (`body_pending`). A refusal leaves the session ready for
    /// the next message (RSET).
    ///
    /// With a body of the message started before still held, that body and its "." go
    /// first: in the same write as this envelope when pipelining (RFC 2920 allows the
    /// message content as the first "command" of a group), so a steady stream of messages
    /// costs one write and one read per message. Its reply, read before this envelope's,
    /// lands in `previous`.
    async fn begin(&mut self, envelope: &Envelope, body: &[u8]) -> Result<(), Begin> {
        let had_body = self.body_pending;
        if had_body && !self.pipelining {
            let r = self.finish().await;
            let lost = r.is_err() && self.broken;
            self.previous = Some(r);
            if lost {
                return Err(Begin::NotAnswered);
            }
        }
        let mail = match self.mail_command(envelope, body) {
            Ok(m) => m,
            Err(e) => {
                if self.body_pending {
                    self.previous = Some(self.finish().await);
                }
                return Err(Begin::Failed(e));
            }
        };
        self.push(mail);
        let refused = if self.pipelining {
            for to in envelope.to() {
                self.push(Rcpt::new(to.clone(), vec![]));
            }
            self.push(Data);
            self.body_pending = false;
            self.write_out().await.map_err(|e| {
                if had_body {
                    self.previous = Some(Err(e));
                    Begin::NotAnswered
                } else {
                    Begin::Failed(e)
                }
            })?;
            if had_body {
                let r = match self.reply().await {
                    Ok(r) => self.check(r, Severity::PositiveCompletion),
                    Err(e) => Err(e),
                };
                self.previous = Some(r);
                if self.broken {
                    // Lost, or the server closes (421): this envelope was never answered.
                    return Err(Begin::NotAnswered);
                }
            }
            self.envelope_replies(envelope).await
        } else {
            self.envelope_in_turn(envelope).await
        };
        match refused {
            Err(e) => Err(Begin::Failed(e)),
            Ok(Some(r)) => Err(Begin::Failed(Failure::Reply(r))),
            Ok(None) => {
                push_body(&mut self.out, body);
                self.body_pending = true;
                Ok(())
            }
        }
    }

    /// Writes the held body and "." and reads the reply.
    async fn finish(&mut self) -> Result<Response, Failure> {
        self.body_pending = false;
        self.write_out().await?;
        let r = self.reply().await?;
        // After the end of data the transaction is over either way: no RSET.
        self.check(r, Severity::PositiveCompletion)
    }

    /// MAIL (already pushed), each RCPT and DATA, each waiting for its reply. `Ok(None)`:
    /// the server waits for the body; `Ok(Some(reply))`: refused, the session was reset.
    async fn envelope_in_turn(&mut self, envelope: &Envelope) -> Result<Option<Response>, Failure> {
        self.write_out().await?;
        let r = self.reply().await?;
        if let Err(refused) = self.sort(r, Severity::PositiveCompletion)? {
            return Ok(Some(self.reset(refused).await));
        }
        for to in envelope.to() {
            self.push(Rcpt::new(to.clone(), vec![]));
            self.write_out().await?;
            let r = self.reply().await?;
            if let Err(refused) = self.sort(r, Severity::PositiveCompletion)? {
                return Ok(Some(self.reset(refused).await));
            }
        }
        self.push(Data);
        self.write_out().await?;
        let r = self.reply().await?;
        if let Err(refused) = self.sort(r, Severity::PositiveIntermediate)? {
            return Ok(Some(self.reset(refused).await));
        }
        Ok(None)
    }

    /// The replies to MAIL, every RCPT and DATA, written in one group (RFC 2920: DATA ends
    /// the group), read in order, all of them, so the session stays in step.
    async fn envelope_replies(&mut self, envelope: &Envelope) -> Result<Option<Response>, Failure> {
        // The first refusal is the one reported; a server that hangs up after it (421)
        // still gets it reported rather than the lost connection.
        let mut refused: Option<Response> = None;
        let r = self.reply().await?;
        if let Err(r) = self.sort(r, Severity::PositiveCompletion)? {
            refused = Some(r);
        }
        let mail_ok = refused.is_none();
        let mut accepted = 0usize;
        for _ in envelope.to() {
            let r = match self.reply().await {
                Ok(r) => r,
                Err(e) => return refused.map(Some).ok_or(e),
            };
            match self.sort(r, Severity::PositiveCompletion)? {
                Ok(_) => accepted += 1,
                Err(r) => {
                    refused.get_or_insert(r);
                }
            }
        }
        let data = match self.reply().await {
            Ok(r) => r,
            Err(e) => return refused.map(Some).ok_or(e),
        };
        match (self.sort(data, Severity::PositiveIntermediate)?, refused) {
            (Ok(_), None) => Ok(None),
            (Err(data_refused), refused) => {
                Ok(Some(self.reset(refused.unwrap_or(data_refused)).await))
            }
            (Ok(_), Some(refused)) if mail_ok && accepted > 0 => {
                // 354 with some recipients refused: "." would deliver an empty message to
                // the others, and the message is sent to all or to none. Hanging up
                // before the end of data makes the server drop the transaction.
                self.broken = true;
                let _ = self.io.get_mut().shutdown().await;
                Ok(Some(refused))
            }
            (Ok(_), Some(refused)) => {
                // 354 with no valid recipient (RFC 2920 3.1): end the empty transfer
                // (nothing can be delivered), whatever its reply, then RSET.
                self.out.extend_from_slice(b".\r\n");
                self.write_out().await?;
                self.reply().await?;
                Ok(Some(self.reset(refused).await))
            }
        }
    }

    /// RSET after `refused`, unless the session is broken anyway; returns `refused`.
    async fn reset(&mut self, refused: Response) -> Response {
        if !self.broken
            && self
                .command(Rset, Severity::PositiveCompletion)
                .await
                .is_err()
        {
            self.broken = true;
        }
        refused
    }

    /// QUIT, unless broken, and close.
    async fn abort(&mut self, timeout: Duration) {
        if !self.broken {
            self.broken = true;
            let _ = tokio::time::timeout(timeout, self.command(Quit, Severity::PositiveCompletion))
                .await;
        }
        let _ = tokio::time::timeout(timeout, self.io.get_mut().shutdown()).await;
    }
}

/// What `SmtpConnection::start` did.
#[derive(Debug)]
pub struct Started {
    /// The reply to the message started before, whose body went out first; `None` when no
    /// body was held.
    pub previous: Option<Result<Response, SendError>>,
    /// `Ok(())`: the server waits for this message's body, held for `finish` or the next
    /// `start`. `Err(Some(e))`: refused or failed. `Err(None)`: the connection failed
    /// before this envelope was answered, so nothing of it was attempted.
    pub this: Result<(), Option<SendError>>,
}

/// An open, greeted (and when configured, encrypted and authenticated) SMTP session.
pub struct SmtpConnection {
    session: Session,
    timeout: Duration,
}

impl fmt::Debug for SmtpConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConnection")
            .field("encrypted", &self.is_encrypted())
            .field("pipelining", &self.session.pipelining)
            .finish_non_exhaustive()
    }
}

impl SmtpConnection {
    fn timed_out(&self) -> SendError {
        SendError {
            code: None,
            permanent: false,
            message: format!("timed out after {}s", self.timeout.as_secs()),
        }
    }

    /// Sends one message (its envelope: From and To) and returns the server's reply. The
    /// envelope and the body each have `timeout`. After a refusal the connection stays
    /// usable unless `is_broken`. Not for a connection with a message `start`ed and not
    /// `finish`ed.
    pub async fn send(&mut self, message: &Message) -> Result<Response, SendError> {
        let started = self.start(message).await;
        debug_assert!(started.previous.is_none(), "send() after start()");
        match started.this {
            Ok(()) => self.finish().await.unwrap_or_else(|| {
                Err(Failure::Client("no message to finish".into()).into_send_error())
            }),
            Err(Some(e)) => Err(e),
            Err(None) => Err(Failure::Response("connection lost".into()).into_send_error()),
        }
    }

    /// Starts `message`: its envelope goes out and is answered. When the server waits for
    /// the data, the body is held and goes out with the next `start` (in the same write
    /// when the server pipelines) or with `finish`: a stream of messages costs one write
    /// and one read each. The reply to the message started before comes back here.
    pub async fn start(&mut self, message: &Message) -> Started {
        let bytes = message.bytes();
        let had_body = self.session.body_pending;
        self.session.previous = None;
        let begun =
            tokio::time::timeout(self.timeout, self.session.begin(message.envelope(), bytes)).await;
        let previous = self
            .session
            .previous
            .take()
            .map(|r| r.map_err(Failure::into_send_error));
        match begun {
            Ok(Ok(())) => Started {
                previous,
                this: Ok(()),
            },
            Ok(Err(Begin::Failed(e))) => Started {
                previous,
                this: Err(Some(e.into_send_error())),
            },
            Ok(Err(Begin::NotAnswered)) => Started {
                previous,
                this: Err(None),
            },
            Err(_) => {
                // Where the exchange stopped is unknown; what was answered is kept.
                self.session.broken = true;
                self.session.body_pending = false;
                match previous {
                    Some(p) => Started {
                        previous: Some(p),
                        this: Err(Some(self.timed_out())),
                    },
                    None if had_body => Started {
                        previous: Some(Err(self.timed_out())),
                        this: Err(None),
                    },
                    None => Started {
                        previous: None,
                        this: Err(Some(self.timed_out())),
                    },
                }
            }
        }
    }

    /// Sends the body held by `start`, alone, and returns its reply; `None` when no body
    /// waits.
    pub async fn finish(&mut self) -> Option<Result<Response, SendError>> {
        if !self.session.body_pending {
            return None;
        }
        Some(
            match tokio::time::timeout(self.timeout, self.session.finish()).await {
                Ok(r) => r.map_err(Failure::into_send_error),
                Err(_) => {
                    self.session.broken = true;
                    Err(self.timed_out())
                }
            },
        )
    }

    /// Whether the connection can no longer be used: lost, timed out, out of step with the
    /// server, or closing (421). A refused recipient or message does not break it.
    pub fn is_broken(&self) -> bool {
        self.session.broken
    }

    pub fn is_encrypted(&self) -> bool {
        self.session.encrypted
    }

    /// Whether the server offered PIPELINING, so envelopes go out in one write.
    pub fn is_pipelining(&self) -> bool {
        self.session.pipelining
    }

    /// Says QUIT and returns the reply. With a body still held (`start` without `finish`)
    /// the connection is closed without QUIT: the server then drops that transaction.
    pub async fn quit(mut self) -> Result<Response, SendError> {
        if self.session.body_pending {
            self.session.broken = true;
            let _ = self.session.io.get_mut().shutdown().await;
            return Err(
                Failure::Client("closed with a message unfinished".into()).into_send_error()
            );
        }
        let quit = self.session.command(Quit, Severity::PositiveCompletion);
        match tokio::time::timeout(self.timeout, quit).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(e.into_send_error()),
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

fn server_name(host: &str) -> Result<ServerName<'static>, MailError> {
    ServerName::try_from(host.to_string())
        .map_err(|e| MailError::Tls(format!("invalid server name '{host}': {e}")))
}

fn unverified(insecure: bool) -> &'static str {
    if insecure {
        " (certificate not verified: tls_insecure)"
    } else {
        ""
    }
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
    let hello = ClientId::default();
    let io = if server.security == Security::Tls {
        let config = rustls_config(server.tls_insecure)?;
        let name = server_name(&server.host)?;
        let tls = within(
            timeout,
            "TLS handshake",
            tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
        )
        .await?;
        report.lines.push(format!(
            "TLS established{}",
            unverified(server.tls_insecure)
        ));
        Io::Tls(Box::new(tls))
    } else {
        Io::Plain(tcp)
    };
    let mut session = Session::new(io);
    // The greeting and EHLO share one timeout, as they did with lettre.
    let mut greeting = None;
    let greeted = within(
        timeout,
        "greeting/EHLO",
        session.greet(&hello, &mut greeting),
    )
    .await;
    if let Some(g) = greeting.filter(|g| !g.is_empty()) {
        report.lines.push(format!("greeting: {g}"));
    }
    greeted?;
    report
        .lines
        .push(format!("EHLO: {}", session.describe_ehlo()));
    if server.security == Security::Starttls {
        if !session.info.supports_feature(Extension::StartTls) {
            session.abort(timeout).await;
            return Err(MailError::Tls(format!(
                "{target} does not offer STARTTLS (use --security tls or none)"
            )));
        }
        let config = Arc::new(rustls_config(server.tls_insecure)?);
        let name = server_name(&server.host)?;
        session = within(timeout, "STARTTLS", session.starttls(name, config, &hello)).await?;
        report.lines.push(format!(
            "STARTTLS: ok, TLS established{}",
            unverified(server.tls_insecure)
        ));
        report
            .lines
            .push(format!("EHLO: {}", session.describe_ehlo()));
    }
    if let Some(user) = &server.username {
        let Some(pw) = password else {
            session.abort(timeout).await;
            return Err(MailError::Smtp(format!(
                "username {user} is set but there is no password"
            )));
        };
        if !session.encrypted {
            report.lines.push(
                "warning: AUTH over an unencrypted connection (security none): the password is sent in clear".into(),
            );
        }
        let creds = Credentials::new(user.clone(), pw.expose().to_string());
        match within(timeout, "AUTH", session.auth(&creds)).await {
            Ok(r) => report
                .lines
                .push(format!("AUTH as {user}: {}", describe_response(&r))),
            Err(e) => {
                session.abort(timeout).await;
                return Err(e);
            }
        }
    }
    Ok(SmtpConnection { session, timeout })
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
    use lettre::transport::smtp::response::Response;

    fn reply(text: &str) -> Response {
        text.parse().unwrap()
    }

    #[test]
    fn greeting_lines_are_joined() {
        assert_eq!(
            super::reply_lines(&reply("220-mx.test hello\r\n220 ready\r\n")),
            "220-mx.test hello / 220 ready"
        );
        assert_eq!(super::reply_lines(&reply("220 ok\r\n")), "220 ok");
    }

    #[test]
    fn refusals_are_worded_as_lettre_words_them() {
        let r = reply("550-5.1.1 <x@y.test>: user unknown\r\n550 5.1.1 try another\r\n");
        assert_eq!(
            super::Failure::Reply(r).to_string(),
            "permanent error (550): 5.1.1 <x@y.test>: user unknown try another"
        );
        let e = super::Failure::Reply(reply("451 4.3.0 later\r\n")).into_send_error();
        assert_eq!(e.code, Some(451));
        assert!(!e.permanent);
        assert_eq!(e.message, "transient error (451): 4.3.0 later");
    }

    /// The vector of lettre's codec test, in one piece.
    #[test]
    fn body_is_dot_stuffed_like_lettre() {
        let mut out = Vec::new();
        super::push_body(
            &mut out,
            b".\r\ntest\r\ntest\r\n\r\n.\r\n\r\ntestte\r\n.\r\nsttesttest.test\n.test\ntesttesttest\r\n.test\r\ntest.\r\n",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "..\r\ntest\r\ntest\r\n\r\n..\r\n\r\ntestte\r\n..\r\nsttesttest.test\n.test\ntesttesttest\r\n..test\r\ntest.\r\n\r\n.\r\n"
        );
        let mut out = Vec::new();
        super::push_body(&mut out, b"a\r\r\n.b");
        assert_eq!(out, b"a\r\r\n..b\r\n.\r\n");
    }
}
