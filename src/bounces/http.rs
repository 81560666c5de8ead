//! `recalliq unsubscribe serve`: the one-click endpoint of RFC 8058. A tiny HTTP/1.1
//! server on tokio, written here to avoid a web framework for two routes:
//!
//! - `GET /u/<token>` answers a confirmation page whose button POSTs (link scanners that
//!   prefetch URLs must not unsubscribe anyone);
//! - `POST /u/<token>` (what mail clients send with `List-Unsubscribe=One-Click`)
//!   suppresses the address with reason `unsubscribed`.
//!
//! Strict limits: one request per connection, 8 KiB of request head, 4 KiB of body, 10 s to
//! send it all, 128 connections at once. TLS is the reverse proxy's job.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use super::ingest::{Unsubscribed, unsubscribe_by_token};
use super::token::{Token, TokenKey};
use crate::db::{Actor, Store};

const MAX_HEAD: usize = 8 * 1024;
const MAX_BODY: usize = 4 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: usize = 128;

/// Serves until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    key: TokenKey,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let key = Arc::new(key);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => r?,
            _ = stop.changed() => {
                if *stop.borrow() { return Ok(()); }
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Over the limit: refuse at once rather than queue.
            tokio::spawn(async move {
                let mut s = stream;
                let _ = write_response(&mut s, 503, "text/plain", "busy, try again\n").await;
            });
            continue;
        };
        let (store, key) = (store.clone(), key.clone());
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = handle(stream, &store, &key).await {
                tracing::debug!(%peer, error = %e, "unsubscribe endpoint: connection ended");
            }
        });
    }
}

struct Request {
    method: String,
    path: String,
}

enum ReadError {
    Bad(&'static str),
    TooLarge,
    Io(std::io::Error),
}

async fn read_request(stream: &mut TcpStream) -> Result<Request, ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(ReadError::TooLarge);
        }
        let mut chunk = [0u8; 2048];
        let n = stream.read(&mut chunk).await.map_err(ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::Bad("connection closed mid-request"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if head_end > MAX_HEAD {
        return Err(ReadError::TooLarge);
    }
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| ReadError::Bad("not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad("malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Bad("HTTP/1.x only"));
    }
    let mut content_length = 0usize;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Bad("malformed header"));
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value
                .trim()
                .parse()
                .map_err(|_| ReadError::Bad("bad Content-Length"))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ReadError::Bad("chunked bodies are not accepted"));
        }
    }
    if content_length > MAX_BODY {
        return Err(ReadError::TooLarge);
    }
    let mut have = buf.len() - (head_end + 4);
    while have < content_length {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.map_err(ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::Bad("body shorter than Content-Length"));
        }
        have += n;
        if have > MAX_BODY {
            return Err(ReadError::TooLarge);
        }
    }
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
    })
}

/// Reads (and drops) what the client is still sending, briefly and boundedly, so that
/// closing after an error answer does not reset the connection before it is read.
async fn drain(stream: &mut TcpStream) {
    let mut left: usize = 64 * 1024;
    let mut chunk = [0u8; 4096];
    while left > 0 {
        match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn handle(mut stream: TcpStream, store: &Store, key: &TokenKey) -> std::io::Result<()> {
    let req = match tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut stream)).await {
        Err(_) => return write_response(&mut stream, 408, "text/plain", "timeout\n").await,
        Ok(Err(ReadError::Io(e))) => return Err(e),
        Ok(Err(ReadError::TooLarge)) => {
            drain(&mut stream).await;
            return write_response(&mut stream, 413, "text/plain", "request too large\n").await;
        }
        Ok(Err(ReadError::Bad(why))) => {
            drain(&mut stream).await;
            return write_response(&mut stream, 400, "text/plain", &format!("{why}\n")).await;
        }
        Ok(Ok(r)) => r,
    };
    let (status, body) = respond(store, key, &req).await;
    let ctype = if status == 200 || status == 404 {
        "text/html; charset=utf-8"
    } else {
        "text/plain"
    };
    write_response(&mut stream, status, ctype, &body).await
}

async fn respond(store: &Store, key: &TokenKey, req: &Request) -> (u16, String) {
    let path = req.path.split('?').next().unwrap_or("");
    if path == "/healthz" {
        return (200, "ok\n".into());
    }
    let Some(token_text) = path.strip_prefix("/u/") else {
        return (404, page("Not found", "There is nothing here."));
    };
    let Some(token) = Token::parse(token_text) else {
        return (404, invalid());
    };
    match req.method.as_str() {
        "GET" => match check(store, key, &token).await {
            Ok(Some(email)) => (
                200,
                page(
                    "Unsubscribe",
                    &format!(
                        "<p>Stop all mailings to {}?</p>\
                         <form method=\"post\" action=\"/u/{}\">\
                         <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
                         <button type=\"submit\">Unsubscribe</button></form>",
                        escape(&mask(&email)),
                        escape(token_text)
                    ),
                ),
            ),
            Ok(None) => (404, invalid()),
            Err(e) => {
                tracing::error!(error = %e, "unsubscribe endpoint: database");
                (500, "temporary error, try again later\n".into())
            }
        },
        "POST" => match unsubscribe_by_token(store, key, &token, "one-click unsubscribe").await {
            Ok(Unsubscribed::Done { email, .. }) => (
                200,
                page(
                    "Unsubscribed",
                    &format!(
                        "<p>{} will receive no more of these mailings.</p>",
                        escape(&mask(&email))
                    ),
                ),
            ),
            Ok(Unsubscribed::Invalid) => (404, invalid()),
            Err(e) => {
                tracing::error!(error = %e, "unsubscribe endpoint: database");
                (500, "temporary error, try again later\n".into())
            }
        },
        _ => (405, "use GET or POST\n".into()),
    }
}

/// The address a genuine token belongs to, without changing anything.
async fn check(
    store: &Store,
    key: &TokenKey,
    token: &Token,
) -> Result<Option<String>, crate::db::DbError> {
    let all = Actor::system().all_tenants()?;
    Ok(store
        .log_by_id(&all, token.log_id)
        .await?
        .filter(|log| key.verify(token, &log.recipient_email))
        .map(|log| log.recipient_email))
}

fn invalid() -> String {
    page(
        "Link not valid",
        "<p>This unsubscribe link is not valid. Use the link of a message you received.</p>",
    )
}

/// `ann@example.com` -> `a**@example.com`: the page shows whose address it is without
/// printing it whole to whoever holds the link.
fn mask(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!(
                "{first}{}@{domain}",
                "*".repeat(local.chars().count().saturating_sub(1).min(8))
            )
        }
        None => "***".into(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1>{body}</body></html>\n"
    )
}

async fn write_response(
    stream: &mut TcpStream,
    status: u16,
    ctype: &str,
    body: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
