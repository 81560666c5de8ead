//! Builds the RFC 5322 message for one recipient: multipart/alternative (text then HTML),
//! a unique Message-ID on the sender's domain, Date, From/To/Reply-To with display names
//! (RFC 2047-encoded when not ASCII) and the List-Unsubscribe headers of RFC 2369 and
//! RFC 8058. Every value is made single-line before it gets here.
//!
//! The bytes are written directly, once, in lettre's layout and with its encoders
//! (`email-encoding` for header words, lettre's `Body` for the transfer encoding): lettre's
//! `MessageBuilder` stores headers as text and parses them back (From, To, the envelope),
//! which cost more than rendering the template, for every recipient of a batch.

use std::fmt::Write as _;
use std::io::Write as _;

use email_encoding::headers::writer::EmailWriter;
use lettre::address::Envelope;
use lettre::message::{Body, Mailbox};

use super::MailError;
use crate::render::{Rendered, header_safe};

/// Where a recipient can unsubscribe: a mailbox (always) and an https URL (when the
/// deployment has one, which also enables one-click unsubscribe).
#[derive(Debug, Clone, Default)]
pub struct Unsubscribe {
    pub mailto: String,
    pub https_url: Option<String>,
}

impl Unsubscribe {
    /// The URL a template shows as `{{ unsubscribe_url }}`: the https one, else a mailto.
    pub fn url_for_template(&self) -> String {
        match &self.https_url {
            Some(u) => u.clone(),
            None => format!("mailto:{}?subject=unsubscribe", self.mailto),
        }
    }
}

/// Everything a message needs besides its rendered content.
#[derive(Debug, Clone)]
pub struct MessageParts<'a> {
    pub from_email: &'a str,
    pub from_name: Option<&'a str>,
    pub to_email: &'a str,
    pub to_name: Option<&'a str>,
    pub reply_to: Option<&'a str>,
    pub unsubscribe: &'a Unsubscribe,
}

/// One message ready to go: its envelope (From and To), its Message-ID and its exact bytes
/// (CRLF line ends, not dot-stuffed).
#[derive(Debug, Clone)]
pub struct Message {
    envelope: Envelope,
    message_id: String,
    raw: Vec<u8>,
}

impl Message {
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// `<...@domain>`, as in the Message-ID header.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The message as it goes on the wire (before dot-stuffing).
    pub fn bytes(&self) -> &[u8] {
        &self.raw
    }

    /// Whether the header block has a `name` header (case-insensitive).
    pub fn has_header(&self, name: &str) -> bool {
        let end = memchr::memmem::find(&self.raw, b"\r\n\r\n").unwrap_or(self.raw.len());
        self.raw[..end].split(|b| *b == b'\n').any(|line| {
            line.len() > name.len()
                && line[name.len()] == b':'
                && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        })
    }

    /// Puts `name: value` first in the header block; `value` must already be encoded and
    /// folded (the DKIM signature).
    pub(crate) fn prepend_header(&mut self, name: &str, value: &str) {
        let line = format!("{name}: {value}\r\n");
        self.raw.splice(0..0, line.into_bytes());
    }
}

fn mailbox(name: Option<&str>, email: &str) -> Result<Mailbox, MailError> {
    let bad = |reason: String| MailError::Address {
        address: header_safe(email),
        reason,
    };
    let normalized = crate::domain::normalize_email(email).map_err(|e| bad(e.to_string()))?;
    let address = normalized
        .parse::<lettre::Address>()
        .map_err(|e| bad(e.to_string()))?;
    let name = name.map(header_safe).filter(|n| !n.is_empty());
    Ok(Mailbox::new(name, address))
}

/// A URL safe inside `<...>` of a header: no whitespace, control characters or brackets.
fn url_in_brackets(url: &str) -> String {
    url.chars()
        .filter(|c| !c.is_whitespace() && !c.is_control() && *c != '<' && *c != '>')
        .collect()
}

/// `<random@domain>`: unique per message, on the sender's domain.
pub fn new_message_id(from_email: &str) -> String {
    let domain = from_email
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("localhost");
    let r: u128 = rand::random();
    let ts = chrono::Utc::now().timestamp_micros();
    format!("<{ts:x}.{r:032x}@{}>", url_in_brackets(domain))
}

/// `Name: mailbox` as lettre writes it: the display name as a plain word, a quoted string
/// or RFC 2047 encoded words, folded at 76 columns.
fn mailbox_header(out: &mut String, name: &str, mailbox: &Mailbox) {
    out.push_str(name);
    out.push_str(": ");
    let mut w = EmailWriter::new(out, name.len() + 2, 0, false);
    // Writing into a String cannot fail.
    if let Some(display) = &mailbox.name {
        let _ = email_encoding::headers::quoted_string::encode(display, &mut w);
        w.space();
        let _ = w.write_char('<');
    }
    let _ = w.write_str(mailbox.email.as_ref());
    if mailbox.name.is_some() {
        let _ = w.write_char('>');
    }
    drop(w);
    out.push_str("\r\n");
}

/// `Name: value` for unstructured text (Subject), as lettre's header encoder writes it:
/// words of printable ASCII as they are, runs of other words as RFC 2047 encoded words,
/// folded at 76 columns. `value` has no CR or LF (`header_safe`).
fn text_header(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(": ");
    let mut w = EmailWriter::new(out, name.len() + 2, 0, false);
    let mut pending = String::new();
    let flush = |pending: &mut String, w: &mut EmailWriter<'_>| {
        if pending.is_empty() {
            return;
        }
        let word = pending.trim_end_matches(' ');
        let _ = email_encoding::headers::rfc2047::encode(word, w);
        for _ in 0..pending.len() - word.len() {
            w.space();
        }
        pending.clear();
    };
    for word in value.split_inclusive(' ') {
        if word
            .bytes()
            .all(|c| matches!(c, 1..=9 | 11 | 12 | 14..=127))
        {
            flush(&mut pending, &mut w);
            let _ = w.folding().write_str(word);
        } else {
            pending.push_str(word);
        }
    }
    flush(&mut pending, &mut w);
    drop(w);
    out.push_str("\r\n");
}

/// A text part: its headers and its body in the transfer encoding lettre would choose
/// (7bit, quoted-printable or base64).
fn text_part(out: &mut Vec<u8>, content_type: &str, text: &str) {
    let body = Body::new(text.to_string());
    let encoding = body.encoding();
    let _ = write!(
        out,
        "Content-Type: {content_type}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
    );
    out.extend_from_slice(body.as_ref());
    out.extend_from_slice(b"\r\n");
}

/// The message for one recipient.
pub fn build_message(parts: &MessageParts<'_>, rendered: &Rendered) -> Result<Message, MailError> {
    let from = mailbox(parts.from_name, parts.from_email)?;
    let to = mailbox(parts.to_name, parts.to_email)?;
    let reply_to = parts.reply_to.map(|r| mailbox(None, r)).transpose()?;
    let mailto = crate::domain::normalize_email(&parts.unsubscribe.mailto).map_err(|e| {
        MailError::Address {
            address: header_safe(&parts.unsubscribe.mailto),
            reason: e.to_string(),
        }
    })?;
    let https = parts
        .unsubscribe
        .https_url
        .as_deref()
        .map(url_in_brackets)
        .filter(|u| u.starts_with("https://"));
    let mut list = format!("<mailto:{}?subject=unsubscribe>", url_in_brackets(&mailto));
    if let Some(u) = &https {
        list.push_str(&format!(", <{u}>"));
    }
    let message_id = new_message_id(parts.from_email);
    let envelope = Envelope::new(Some(from.email.clone()), vec![to.email.clone()])
        .map_err(|e| MailError::Build(e.to_string()))?;

    let mut head = String::with_capacity(1024);
    mailbox_header(&mut head, "From", &from);
    if let Some(r) = &reply_to {
        mailbox_header(&mut head, "Reply-To", r);
    }
    mailbox_header(&mut head, "To", &to);
    text_header(&mut head, "Subject", &header_safe(&rendered.subject));
    let _ = write!(
        head,
        "Message-ID: {message_id}\r\nDate: {}\r\n",
        chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S +0000")
    );
    text_header(&mut head, "List-Unsubscribe", &list);
    if https.is_some() {
        head.push_str("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
    }
    head.push_str("MIME-Version: 1.0\r\n");

    let size = head.len() + rendered.text.len() + rendered.html.as_ref().map_or(0, String::len);
    let mut raw = Vec::with_capacity(size + size / 8 + 512);
    raw.extend_from_slice(head.as_bytes());
    match &rendered.html {
        Some(html) => {
            let boundary = format!("{:032x}", rand::random::<u128>());
            let _ = write!(
                raw,
                "Content-Type: multipart/alternative;\r\n boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n"
            );
            text_part(&mut raw, "text/plain; charset=utf-8", &rendered.text);
            let _ = write!(raw, "--{boundary}\r\n");
            text_part(&mut raw, "text/html; charset=utf-8", html);
            let _ = write!(raw, "--{boundary}--\r\n");
        }
        None => text_part(&mut raw, "text/plain; charset=utf-8", &rendered.text),
    }
    Ok(Message {
        envelope,
        message_id,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(subject: &str) -> Rendered {
        Rendered {
            subject: subject.into(),
            html: Some("<p>Hé</p>".into()),
            text: "Hé".into(),
        }
    }

    fn head(msg: &Message) -> String {
        let raw = String::from_utf8(msg.bytes().to_vec()).unwrap();
        raw.split("\r\n\r\n").next().unwrap().to_string()
    }

    /// The header block with folded lines joined.
    fn unfolded(msg: &Message) -> String {
        head(msg).replace("\r\n ", " ").replace("\r\n\t", " ")
    }

    #[test]
    fn headers_are_complete_and_encoded() {
        let unsub = Unsubscribe {
            mailto: "unsubscribe@acme.test".into(),
            https_url: Some("https://acme.test/u/1?t=x".into()),
        };
        let parts = MessageParts {
            from_email: "news@acme.test",
            from_name: Some("Acmé News"),
            to_email: "ann@example.com",
            to_name: Some("Ann Ñúñez"),
            reply_to: Some("help@acme.test"),
            unsubscribe: &unsub,
        };
        let msg = build_message(&parts, &rendered("Grüße 😀")).unwrap();
        let h = unfolded(&msg);
        assert!(h.contains("Subject: =?utf-8?"), "{h}");
        assert!(h.contains("From: =?utf-8?"), "{h}");
        assert!(h.contains("<news@acme.test>"), "{h}");
        assert!(h.contains("Reply-To: help@acme.test"), "{h}");
        assert!(
            h.contains("@acme.test>\r\n") && h.contains("Message-ID: <"),
            "{h}"
        );
        assert!(h.contains("Date: "), "{h}");
        assert!(
            h.contains("List-Unsubscribe: <mailto:unsubscribe@acme.test?subject=unsubscribe>, <https://acme.test/u/1?t=x>"),
            "{h}"
        );
        assert!(
            h.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{h}"
        );
        assert!(h.contains("multipart/alternative"), "{h}");
        let a = new_message_id("x@acme.test");
        assert_ne!(a, new_message_id("x@acme.test"));
    }

    #[test]
    fn no_header_injection_through_names_or_subjects() {
        let unsub = Unsubscribe {
            mailto: "u@acme.test".into(),
            https_url: Some("https://acme.test/u\r\nBcc: x@evil.test".into()),
        };
        let parts = MessageParts {
            from_email: "news@acme.test",
            from_name: Some("Acme\r\nBcc: x@evil.test"),
            to_email: "ann@example.com",
            to_name: Some("Ann\nX-Injected: yes"),
            reply_to: None,
            unsubscribe: &unsub,
        };
        let msg = build_message(&parts, &rendered("Hi\r\nBcc: x@evil.test")).unwrap();
        let h = head(&msg);
        for line in h.split("\r\n") {
            assert!(
                !line.starts_with("Bcc") && !line.starts_with("X-Injected"),
                "injected header line {line:?} in\n{h}"
            );
            assert!(!line.contains('\r') && !line.contains('\n'));
        }
        let no_https = Unsubscribe {
            mailto: "u@acme.test".into(),
            https_url: None,
        };
        let parts = MessageParts {
            unsubscribe: &no_https,
            ..parts
        };
        let h = head(&build_message(&parts, &rendered("s")).unwrap());
        assert!(!h.contains("List-Unsubscribe-Post"), "{h}");
    }

    /// What lettre's `MessageBuilder` writes for the same message (the builder this module
    /// replaced): the reference for the layout and the encoders.
    fn lettre_reference(parts: &MessageParts<'_>, r: &Rendered) -> Vec<u8> {
        use lettre::message::header::{Header, HeaderName, HeaderValue};
        use lettre::message::{MultiPart, SinglePart};
        #[derive(Clone)]
        struct ListUnsubscribe(String);
        impl Header for ListUnsubscribe {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str("List-Unsubscribe")
            }
            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok(ListUnsubscribe(s.to_string()))
            }
            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
        let mut b = lettre::Message::builder()
            .from(mailbox(parts.from_name, parts.from_email).unwrap())
            .to(mailbox(parts.to_name, parts.to_email).unwrap())
            .subject(header_safe(&r.subject));
        if let Some(rt) = parts.reply_to {
            b = b.reply_to(mailbox(None, rt).unwrap());
        }
        let mut list = format!("<mailto:{}?subject=unsubscribe>", parts.unsubscribe.mailto);
        if let Some(u) = &parts.unsubscribe.https_url {
            list.push_str(&format!(", <{u}>"));
        }
        b = b.header(ListUnsubscribe(list));
        let m = match &r.html {
            Some(html) => b.multipart(MultiPart::alternative_plain_html(
                r.text.clone(),
                html.clone(),
            )),
            None => b.singlepart(SinglePart::plain(r.text.clone())),
        };
        m.unwrap().formatted()
    }

    /// Header lines (folded lines kept) by name, and the parts' encodings and bodies:
    /// everything but the random boundary, the Message-ID and the date.
    fn comparable(raw: &[u8]) -> (Vec<String>, Vec<String>) {
        let raw = String::from_utf8(raw.to_vec()).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let mut headers: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with(' ') {
                let last = headers.last_mut().unwrap();
                last.push_str("\r\n");
                last.push_str(line);
            } else {
                headers.push(line.to_string());
            }
        }
        let keep = [
            "From:",
            "To:",
            "Reply-To:",
            "Subject:",
            "List-Unsubscribe:",
            "MIME-Version:",
            "Content-Type: text/",
            "Content-Transfer-Encoding:",
        ];
        let mut headers: Vec<String> = headers
            .into_iter()
            .filter(|h| keep.iter().any(|k| h.starts_with(k)))
            .collect();
        headers.sort();
        if !head.contains("multipart/") {
            return (headers, vec![body.to_string()]);
        }
        // Parts: split on the boundary lines, whatever the boundary is.
        let parts: Vec<String> = body
            .split("\r\n--")
            .map(|p| p.split_once("\r\n").map_or(p, |(_, rest)| rest).to_string())
            .filter(|p| p.contains("Content-Transfer-Encoding"))
            .collect();
        (headers, parts)
    }

    #[test]
    fn same_bytes_as_lettres_builder() {
        let unsub = Unsubscribe {
            mailto: "unsubscribe+tok@acme.test".into(),
            https_url: Some(format!("https://acme.test/u/{}", "x".repeat(90))),
        };
        let long = "a rather long subject that will have to be folded ".repeat(4);
        let names: [Option<&str>; 6] = [
            None,
            Some("Ann"),
            Some("Doe, John (sales)"),
            Some("Ann \"Quoted\" Ñúñez-Åström"),
            Some("Acmé Nachrichten — Ωmega 😀"),
            Some("x"),
        ];
        let subjects = [
            "Hi".to_string(),
            format!("Grüße aus Köln — 日本語の件名 😀 {long}"),
            long.clone(),
            "tabs\tand  double  spaces".into(),
            "=?utf-8?b?looks encoded?= but is not".into(),
        ];
        let bodies = [
            ("Hé there,\n".to_string(), None),
            (
                format!("{}\r\n.dot\r\n", "long line ".repeat(40)),
                Some("<p>Hé</p>".to_string()),
            ),
            (
                "plain ascii\r\n".to_string(),
                Some(format!("<p>{}</p>", "wide ".repeat(300))),
            ),
            (
                "trailing spaces   \nand\ttabs\t\n".to_string(),
                Some("<p>Ünïcödé   </p>\n\n\n".into()),
            ),
        ];
        let mut compared = 0;
        for (i, name) in names.iter().enumerate() {
            for (j, subject) in subjects.iter().enumerate() {
                let (text, html) = &bodies[(i + j) % bodies.len()];
                let parts = MessageParts {
                    from_email: "news@acme.test",
                    from_name: *name,
                    to_email: "ann@example.com",
                    to_name: names[(i + 1) % names.len()],
                    reply_to: (j % 2 == 0).then_some("help@acme.test"),
                    unsubscribe: &unsub,
                };
                let r = Rendered {
                    subject: subject.clone(),
                    html: html.clone(),
                    text: text.clone(),
                };
                let ours = build_message(&parts, &r).unwrap();
                let theirs = lettre_reference(&parts, &r);
                let mine = comparable(ours.bytes());
                let (headers, parts_seen) = &mine;
                assert!(headers.len() >= 5, "{headers:?}");
                assert_eq!(
                    parts_seen.len(),
                    if html.is_some() { 2 } else { 1 },
                    "{parts_seen:?}"
                );
                assert_eq!(
                    mine,
                    comparable(&theirs),
                    "name {name:?}, subject {subject:?}\nours:\n{}\nlettre:\n{}",
                    String::from_utf8_lossy(ours.bytes()),
                    String::from_utf8_lossy(&theirs)
                );
                assert_eq!(ours.envelope().to().len(), 1);
                compared += 1;
            }
        }
        assert_eq!(compared, 30);
    }
}
