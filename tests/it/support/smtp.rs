//! A small SMTP server for tests: it listens on 127.0.0.1 (random port), speaks enough
//! ESMTP for our client (EHLO, STARTTLS, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET, NOOP,
//! QUIT, PIPELINING on request), records every accepted message and how commands arrived,
//! and misbehaves on request.
//!
//! ```ignore
//! let sink = SmtpSink::start(SinkConfig {
//!     starttls: true,                               // self-signed cert made by rcgen
//!     users: vec![("u".into(), "p".into())],        // AUTH accepted for these
//!     reject: ["bad@x.test".into()].into(),         // 550 at RCPT
//!     defer_first: 1,                               // 451 for each address's first RCPT
//!     ..SinkConfig::default()
//! });
//! // ... point the code under test at sink.port() ...
//! let msgs = sink.messages();                       // what was accepted, in order
//! ```
//!
//! The server runs on its own thread and runtime, so it serves plain `#[test]`s that run
//! the binary as well as `#[tokio::test]`s; it stops when the `SmtpSink` is dropped.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// How the sink behaves. `Default` is a polite server with no TLS and no AUTH.
#[derive(Clone, Debug, Default)]
pub struct SinkConfig {
    /// Advertise STARTTLS, with a self-signed certificate for localhost/127.0.0.1.
    pub starttls: bool,
    /// Speak TLS from the first byte (SMTPS) instead.
    pub implicit_tls: bool,
    /// Accounts for AUTH PLAIN/LOGIN (advertised when not empty).
    pub users: Vec<(String, String)>,
    /// Refuse MAIL without a successful AUTH (530).
    pub require_auth: bool,
    /// Recipients answered `550 5.1.1` at RCPT (lower-case).
    pub reject: HashSet<String>,
    /// Every recipient's first N RCPT attempts are answered `451 4.3.0` (retry later).
    pub defer_first: usize,
    /// The first N DATA transfers end with the connection dropped instead of a reply.
    pub drop_first_data: usize,
    /// Wait this long before every reply (slow servers, timeouts).
    pub reply_delay: Duration,
    /// The first N DATA transfers are never answered (the connection stays open, silent):
    /// a hanging server. Not recorded.
    pub hang_first_data: usize,
    /// The first N DATA transfers are recorded (the message was queued) and then the
    /// connection drops before the reply: the client cannot know, a duplicate follows.
    pub lose_reply_first_data: usize,
    /// Listen on this port (0: any free port). To bring a stopped server back on its port.
    pub port: u16,
    /// Advertise PIPELINING (RFC 2920); commands are answered one by one either way.
    pub pipelining: bool,
    /// Answer DATA with 354 even when no recipient was accepted (allowed by RFC 2920); the
    /// transfer that follows is then refused with 554.
    pub lenient_data: bool,
}

/// One accepted message.
#[derive(Clone, Debug)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as transferred, dot-unstuffed, CRLF line ends.
    pub data: String,
    /// Whether the session was encrypted when DATA ended.
    pub tls: bool,
    /// The AUTH user of the session.
    pub auth_user: Option<String>,
}

impl Received {
    /// The header block (before the first empty line), unfolded.
    pub fn headers(&self) -> Vec<(String, String)> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut out: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = out.last_mut() {
                    last.1.push_str(line);
                }
            } else if let Some((k, v)) = line.split_once(':') {
                out.push((k.to_string(), v.trim().to_string()));
            }
        }
        out
    }

    /// The first header named `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers()
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

#[derive(Default)]
struct State {
    messages: Vec<Received>,
    attempts: HashMap<String, usize>,
    data_count: usize,
    connections: usize,
    commands: Vec<String>,
    groups: Vec<Vec<String>>,
}

impl State {
    /// Adds `what` to this connection's current group (`group`), or to a new one when it
    /// came in a write of its own (`fresh`). Connections interleave, hence the index.
    fn record_in_group(&mut self, group: &mut Option<usize>, fresh: bool, what: String) {
        let i = match *group {
            Some(i) if !fresh => i,
            _ => {
                self.groups.push(Vec::new());
                self.groups.len() - 1
            }
        };
        *group = Some(i);
        self.groups[i].push(what);
    }
}

/// A running sink; dropped, it stops.
pub struct SmtpSink {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SmtpSink {
    pub fn start(config: SinkConfig) -> SmtpSink {
        let state = Arc::new(Mutex::new(State::default()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("sink runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind(("127.0.0.1", config.port))
                    .await
                    .expect("bind sink");
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let tls = (config.starttls || config.implicit_tls).then(acceptor);
                let config = Arc::new(config);
                let accept = async {
                    loop {
                        let Ok((sock, _)) = listener.accept().await else {
                            continue;
                        };
                        let _ = sock.set_nodelay(true);
                        st.lock().unwrap().connections += 1;
                        let (config, st, tls) = (config.clone(), st.clone(), tls.clone());
                        tokio::spawn(async move {
                            let stream: Box<dyn Stream> = if config.implicit_tls {
                                match tls.as_ref().unwrap().accept(sock).await {
                                    Ok(s) => Box::new(s),
                                    Err(_) => return,
                                }
                            } else {
                                Box::new(sock)
                            };
                            let _ = session(stream, config.implicit_tls, &config, &st, tls).await;
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
        });
        let addr = addr_rx.recv().expect("sink address");
        SmtpSink {
            addr,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Accepted messages so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().unwrap().messages.clone()
    }

    /// Stops the server (its port is free again) and returns every message it accepted.
    pub fn stop(mut self) -> Vec<Received> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.messages()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// Every command line received (AUTH payloads replaced by `AUTH ***`).
    pub fn commands(&self) -> Vec<String> {
        self.state.lock().unwrap().commands.clone()
    }

    /// The commands grouped by how they arrived: a group is the commands that were already
    /// received together when the first of them was read (one write by a pipelining
    /// client). Message contents are not commands.
    pub fn command_groups(&self) -> Vec<Vec<String>> {
        self.state.lock().unwrap().groups.clone()
    }

    /// Waits until `n` messages arrived or `timeout` passed; returns what arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let end = std::time::Instant::now() + timeout;
        loop {
            let m = self.messages();
            if m.len() >= n || std::time::Instant::now() > end {
                return m;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

fn acceptor() -> tokio_rustls::TlsAcceptor {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("self-signed certificate");
    let der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        cert.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![der], key)
    .expect("server TLS config");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

enum Next {
    Quit,
    StartTls,
}

async fn session(
    stream: Box<dyn Stream>,
    mut encrypted: bool,
    config: &SinkConfig,
    state: &Mutex<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<()> {
    let mut stream = stream;
    let mut greet = true;
    loop {
        let next = conversation(&mut stream, greet, encrypted, config, state).await?;
        match next {
            Next::Quit => return Ok(()),
            Next::StartTls => {
                let Some(acc) = tls.as_ref() else {
                    return Ok(());
                };
                stream = Box::new(acc.accept(stream).await?);
                encrypted = true;
                greet = false;
            }
        }
    }
}

async fn conversation(
    stream: &mut Box<dyn Stream>,
    greet: bool,
    encrypted: bool,
    config: &SinkConfig,
    state: &Mutex<State>,
) -> std::io::Result<Next> {
    let mut io = BufReader::new(stream);
    macro_rules! reply {
        ($($t:tt)*) => {{
            if !config.reply_delay.is_zero() {
                tokio::time::sleep(config.reply_delay).await;
            }
            let text = format!($($t)*);
            io.get_mut().write_all(text.as_bytes()).await?;
            io.get_mut().flush().await?;
        }};
    }
    if greet {
        reply!("220 sink.test ESMTP test sink\r\n");
    }
    let mut auth_user: Option<String> = None;
    let mut mail_from: Option<String> = None;
    let mut rcpts: Vec<String> = Vec::new();
    let mut line = String::new();
    // This connection's current group in `State::groups` (connections interleave).
    let mut group: Option<usize> = None;
    loop {
        line.clear();
        // Nothing buffered: this command starts a new read, so a new group.
        let fresh = io.buffer().is_empty();
        if io.read_line(&mut line).await? == 0 {
            return Ok(Next::Quit);
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        {
            let recorded = if upper.starts_with("AUTH") {
                "AUTH ***".to_string()
            } else {
                cmd.clone()
            };
            let mut st = state.lock().unwrap();
            st.commands.push(recorded.clone());
            st.record_in_group(&mut group, fresh, recorded);
        }
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            let mut caps = vec![
                "sink.test".to_string(),
                "8BITMIME".into(),
                "SMTPUTF8".into(),
            ];
            if config.starttls && !encrypted {
                caps.push("STARTTLS".into());
            }
            if !config.users.is_empty() {
                caps.push("AUTH PLAIN LOGIN".into());
            }
            if config.pipelining {
                caps.push("PIPELINING".into());
            }
            let n = caps.len();
            let mut text = String::new();
            for (i, c) in caps.iter().enumerate() {
                text.push_str(&format!("250{}{c}\r\n", if i + 1 == n { ' ' } else { '-' }));
            }
            reply!("{text}");
        } else if upper == "STARTTLS" {
            if config.starttls && !encrypted {
                reply!("220 2.0.0 Ready to start TLS\r\n");
                return Ok(Next::StartTls);
            }
            reply!("502 5.5.1 STARTTLS not available\r\n");
        } else if upper.starts_with("AUTH PLAIN") {
            let arg = cmd.get(10..).unwrap_or("").trim().to_string();
            let payload = if arg.is_empty() {
                reply!("334 \r\n");
                line.clear();
                io.read_line(&mut line).await?;
                line.trim().to_string()
            } else {
                arg
            };
            let decoded = B64.decode(payload).unwrap_or_default();
            let parts: Vec<String> = decoded
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let (user, pass) = match parts.as_slice() {
                [_, u, p] => (u.clone(), p.clone()),
                _ => (String::new(), String::new()),
            };
            if config.users.iter().any(|(u, p)| *u == user && *p == pass) {
                auth_user = Some(user);
                reply!("235 2.7.0 Authentication successful\r\n");
            } else {
                reply!("535 5.7.8 Authentication credentials invalid\r\n");
            }
        } else if upper.starts_with("AUTH LOGIN") {
            reply!("334 VXNlcm5hbWU6\r\n");
            line.clear();
            io.read_line(&mut line).await?;
            let user =
                String::from_utf8_lossy(&B64.decode(line.trim()).unwrap_or_default()).into_owned();
            reply!("334 UGFzc3dvcmQ6\r\n");
            line.clear();
            io.read_line(&mut line).await?;
            let pass =
                String::from_utf8_lossy(&B64.decode(line.trim()).unwrap_or_default()).into_owned();
            if config.users.iter().any(|(u, p)| *u == user && *p == pass) {
                auth_user = Some(user);
                reply!("235 2.7.0 Authentication successful\r\n");
            } else {
                reply!("535 5.7.8 Authentication credentials invalid\r\n");
            }
        } else if upper.starts_with("MAIL FROM:") {
            if config.require_auth && auth_user.is_none() {
                reply!("530 5.7.0 Authentication required\r\n");
            } else {
                mail_from = Some(address_of(&cmd[10..]));
                rcpts.clear();
                reply!("250 2.1.0 Ok\r\n");
            }
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = address_of(&cmd[8..]);
            let key = rcpt.to_ascii_lowercase();
            let tries = {
                let mut st = state.lock().unwrap();
                let n = st.attempts.entry(key.clone()).or_insert(0);
                *n += 1;
                *n
            };
            if mail_from.is_none() {
                reply!("503 5.5.1 MAIL first\r\n");
            } else if config.reject.contains(&key) {
                reply!("550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown\r\n");
            } else if tries <= config.defer_first {
                reply!("451 4.3.0 <{rcpt}>: Temporary failure, try again later\r\n");
            } else {
                rcpts.push(rcpt);
                reply!("250 2.1.5 Ok\r\n");
            }
        } else if upper == "DATA" {
            if rcpts.is_empty() && !config.lenient_data {
                reply!("554 5.5.1 No valid recipients\r\n");
                continue;
            }
            reply!("354 End data with <CR><LF>.<CR><LF>\r\n");
            let mut data = String::new();
            // The body starts a write of its own (a new group) unless it came with DATA.
            let body_fresh = io.buffer().is_empty();
            loop {
                line.clear();
                if io.read_line(&mut line).await? == 0 {
                    return Ok(Next::Quit);
                }
                if line == ".\r\n" || line == ".\n" {
                    // The end of data is recorded in the groups (not in `commands`) as
                    // ".": commands that come in the same write follow it there.
                    let mut st = state.lock().unwrap();
                    st.record_in_group(&mut group, body_fresh, ".".into());
                    break;
                }
                let l = line.strip_prefix('.').unwrap_or(&line);
                data.push_str(l);
            }
            if rcpts.is_empty() {
                // Only with `lenient_data`: nobody to deliver to.
                mail_from = None;
                reply!("554 5.5.1 No valid recipients\r\n");
                continue;
            }
            let (drop_it, hang, id) = {
                let mut st = state.lock().unwrap();
                st.data_count += 1;
                let k = st.data_count;
                let hang = k <= config.hang_first_data;
                let lose = k > config.hang_first_data
                    && k <= config.hang_first_data + config.lose_reply_first_data;
                let drop_it = (k <= config.drop_first_data) || hang;
                if !drop_it {
                    st.messages.push(Received {
                        mail_from: mail_from.clone().unwrap_or_default(),
                        rcpt_to: rcpts.clone(),
                        data,
                        tls: encrypted,
                        auth_user: auth_user.clone(),
                    });
                }
                (drop_it || lose, hang, st.messages.len())
            };
            if hang {
                // Hold the connection open and say nothing, until the sink stops.
                std::future::pending::<()>().await;
            }
            if drop_it {
                // Vanish without a reply, like a crashed server.
                return Ok(Next::Quit);
            }
            mail_from = None;
            rcpts.clear();
            reply!("250 2.0.0 Ok: queued as SINK{id}\r\n");
        } else if upper == "RSET" {
            mail_from = None;
            rcpts.clear();
            reply!("250 2.0.0 Ok\r\n");
        } else if upper == "NOOP" {
            reply!("250 2.0.0 Ok\r\n");
        } else if upper == "QUIT" {
            reply!("221 2.0.0 Bye\r\n");
            return Ok(Next::Quit);
        } else {
            reply!("502 5.5.2 Command not recognized\r\n");
        }
    }
}

/// `<a@b> SIZE=1` -> `a@b`.
fn address_of(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(s), Some(e)) if s < e => arg[s + 1..e].to_string(),
        _ => arg.split_whitespace().next().unwrap_or("").to_string(),
    }
}
