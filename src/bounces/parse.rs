//! What a message that came back is: a delivery status notification (RFC 3464
//! multipart/report, or the plain-text formats that Exim, qmail, Yahoo, older Exchange and
//! others still send), an unsubscribe request carrying one of our tokens, an auto-reply
//! (ignored), or something else. MIME is mail-parser's job; only the simple header-field
//! blocks of `message/delivery-status` and the free text of non-standard bounces are read
//! here. Nothing in this module touches the database.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use super::token::Token;

/// Permanent (5.x.x) or temporary (4.x.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Hard,
    Soft,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Hard => "hard",
            Severity::Soft => "soft",
        }
    }
}

/// One recipient the report says could not be delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub email: String,
    /// Enhanced status code (`5.1.1`) or the SMTP reply code (`550`) when that is all
    /// the report has.
    pub status: Option<String>,
    /// The remote server's words (`550 5.1.1 <x>: user unknown`), one line.
    pub diagnostic: Option<String>,
    pub severity: Severity,
}

/// A parsed bounce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    /// `rfc3464` or `text` (a non-standard report read from its words).
    pub format: &'static str,
    pub failures: Vec<Failure>,
    /// The Message-ID of our message, from the quoted original.
    pub original_message_id: Option<String>,
    /// Whether the report quotes the original's headers at all. A report that does, but
    /// not a Message-ID we know, is never matched by recipient.
    pub quoted_headers: bool,
}

/// What a message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Bounce(Bounce),
    /// A DSN that reports no failure (delivered, relayed, expanded).
    DeliveryNotice,
    Unsubscribe(Token),
    AutoReply,
    /// Not recognised (or not readable); the reason says why.
    Unrecognized(String),
}

/// The largest message read; bigger ones are left alone as unrecognized.
pub const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

/// Classifies one raw message. Never panics, whatever the input.
pub fn classify(raw: &[u8]) -> Report {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Report::Unrecognized(format!("larger than {MAX_MESSAGE_BYTES} bytes"));
    }
    let Some(msg) = MessageParser::default().parse(raw) else {
        return Report::Unrecognized("no message headers".into());
    };
    if msg.headers_raw().next().is_none() {
        return Report::Unrecognized("no message headers".into());
    }
    if let Some(report) = rfc3464(&msg) {
        return report;
    }
    if looks_like_bounce(&msg) {
        return match text_bounce(&msg) {
            Some(b) => Report::Bounce(b),
            None => Report::Unrecognized("a bounce naming no failed recipient".into()),
        };
    }
    if is_auto_reply(&msg) {
        return Report::AutoReply;
    }
    if let Some(t) = unsubscribe_token(&msg) {
        return Report::Unsubscribe(t);
    }
    Report::Unrecognized("neither a bounce nor an unsubscribe request".into())
}

/// The unfolded value of the first top-level header `name`.
fn header(msg: &Message<'_>, name: &str) -> Option<String> {
    msg.headers_raw()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| unfold(v))
}

fn headers_all(msg: &Message<'_>, name: &str) -> Vec<String> {
    msg.headers_raw()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| unfold(v))
        .collect()
}

fn unfold(v: &str) -> String {
    v.split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn subject(msg: &Message<'_>) -> String {
    msg.subject().unwrap_or_default().to_string()
}

fn is_subtype(part: &mail_parser::MessagePart<'_>, ctype: &str, subtypes: &[&str]) -> bool {
    part.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case(ctype)
            && ct
                .subtype()
                .is_some_and(|s| subtypes.iter().any(|x| s.eq_ignore_ascii_case(x)))
    })
}

/// `<id>` without brackets and blanks; `None` when empty.
pub fn normalize_message_id(id: &str) -> Option<String> {
    let t = id.trim();
    let t = match (t.find('<'), t.find('>')) {
        (Some(a), Some(b)) if b > a => &t[a + 1..b],
        _ => t,
    };
    let t: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    (!t.is_empty() && t.len() <= 500).then_some(t)
}

/// The quoted original of a report: attached message/rfc822 or text/rfc822-headers parts.
/// Returns (quoted at all, its Message-ID).
fn quoted_original(msg: &Message<'_>) -> (bool, Option<String>) {
    let mut quoted = false;
    for part in msg.parts.iter().skip(1) {
        match &part.body {
            PartType::Message(inner) => {
                quoted = true;
                if let Some(id) = inner.message_id().and_then(normalize_message_id) {
                    return (true, Some(id));
                }
                if let Some(id) = header(inner, "Message-ID").and_then(|v| normalize_message_id(&v))
                {
                    return (true, Some(id));
                }
            }
            _ if is_subtype(part, "text", &["rfc822-headers"])
                || is_subtype(
                    part,
                    "message",
                    &["rfc822-headers", "global-headers", "rfc822", "global"],
                ) =>
            {
                quoted = true;
                let text = String::from_utf8_lossy(part.contents()).into_owned();
                if let Some(id) = message_id_in_text(&text) {
                    return (true, Some(id));
                }
            }
            _ => {}
        }
    }
    (quoted, None)
}

/// A `Message-ID:` header line quoted in text (folded values included).
fn message_id_in_text(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let l = line.trim_start_matches(['>', ' ', '\t']);
        if l.get(..11)
            .is_some_and(|h| h.eq_ignore_ascii_case("message-id:"))
        {
            let mut value = l.get(11..).unwrap_or("").trim().to_string();
            if value.is_empty()
                && let Some(next) = lines.get(i + 1)
            {
                value = next.trim().to_string();
            }
            if value.contains('<')
                && let Some(id) = normalize_message_id(&value)
            {
                return Some(id);
            }
        }
    }
    None
}

/// Header-field blocks of a delivery-status body: per-message, then one per recipient.
fn field_blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !cur.is_empty() {
                blocks.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = cur.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            cur.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    if !cur.is_empty() {
        blocks.push(cur);
    }
    blocks
}

fn field<'a>(block: &'a [(String, String)], name: &str) -> Option<&'a str> {
    block
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `rfc822; ann@example.com` -> `ann@example.com` (when it is an address).
fn typed_address(v: &str) -> Option<String> {
    let addr = v.split_once(';').map_or(v, |(_, a)| a).trim();
    let addr = addr.trim_matches(['<', '>', ' ']);
    crate::domain::normalize_email(addr).ok()
}

fn rfc3464(msg: &Message<'_>) -> Option<Report> {
    let status_part = msg
        .parts
        .iter()
        .find(|p| is_subtype(p, "message", &["delivery-status", "global-delivery-status"]))?;
    let text = String::from_utf8_lossy(status_part.contents()).into_owned();
    let blocks = field_blocks(&text);
    let (quoted, mut original) = quoted_original(msg);
    let mut failures = Vec::new();
    let mut recipients = 0;
    for block in blocks.iter() {
        let Some(email) = field(block, "final-recipient")
            .or_else(|| field(block, "original-recipient"))
            .and_then(typed_address)
        else {
            continue;
        };
        recipients += 1;
        let action = field(block, "action").unwrap_or("").to_ascii_lowercase();
        let status = field(block, "status")
            .and_then(|s| enhanced_codes(s).into_iter().next())
            .map(str::to_string);
        let diagnostic = field(block, "diagnostic-code")
            .map(|d| d.split_once(';').map_or(d, |(_, t)| t).trim().to_string())
            .filter(|d| !d.is_empty())
            .map(|d| clip(&d));
        let severity = match status.as_deref().and_then(|s| s.chars().next()) {
            Some('5') => Some(Severity::Hard),
            Some('4') => Some(Severity::Soft),
            Some(_) => None,
            None => match diagnostic.as_deref().and_then(first_code) {
                Some(c) if c.starts_with('5') => Some(Severity::Hard),
                Some(c) if c.starts_with('4') => Some(Severity::Soft),
                _ if action == "delayed" => Some(Severity::Soft),
                _ if action == "failed" => Some(Severity::Hard),
                _ => None,
            },
        };
        let failed = matches!(action.as_str(), "failed" | "delayed")
            || (action.is_empty() && severity.is_some());
        if !failed {
            continue;
        }
        let Some(severity) = severity else { continue };
        let status = status.or_else(|| {
            diagnostic
                .as_deref()
                .and_then(first_code)
                .map(str::to_string)
        });
        failures.push(Failure {
            email,
            status,
            diagnostic,
            severity,
        });
    }
    if original.is_none() && !quoted {
        // Some servers paste the original headers into the human-readable part instead.
        original = text_parts(msg).iter().find_map(|t| message_id_in_text(t));
    }
    if failures.is_empty() {
        return Some(if recipients > 0 {
            Report::DeliveryNotice
        } else {
            Report::Unrecognized("delivery-status report names no recipient".into())
        });
    }
    Some(Report::Bounce(Bounce {
        format: "rfc3464",
        failures,
        quoted_headers: quoted || original.is_some(),
        original_message_id: original,
    }))
}

fn text_parts(msg: &Message<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..msg.text_body_count().max(1) {
        if let Some(t) = msg.body_text(i) {
            out.push(t.into_owned());
        }
    }
    out
}

const DAEMON_LOCALS: &[&str] = &[
    "mailer-daemon",
    "mailerdaemon",
    "mail-daemon",
    "postmaster",
    "maildelivery",
];

const BOUNCE_SUBJECTS: &[&str] = &[
    "undelivered mail returned to sender",
    "undeliverable",
    "mail delivery failed",
    "delivery status notification (failure)",
    "delivery status notification (delay)",
    "delivery failure",
    "delivery has failed",
    "failure notice",
    "returned mail",
    "mail delivery failure",
    "message not delivered",
    "undelivered mail",
    "non remis",
    "unzustellbar",
    "delivery notification: delivery has failed",
    "warning: could not send message",
    "delayed mail",
    "delivery delayed",
];

fn looks_like_bounce(msg: &Message<'_>) -> bool {
    let from = header(msg, "From").unwrap_or_default().to_ascii_lowercase();
    let daemon = DAEMON_LOCALS
        .iter()
        .any(|d| from.contains(&format!("{d}@")) || from.contains(&format!("<{d}>")))
        || from.contains("mail delivery system")
        || from.contains("mail delivery subsystem");
    let subj = subject(msg).to_ascii_lowercase();
    daemon || BOUNCE_SUBJECTS.iter().any(|s| subj.contains(s))
}

/// Markers after which a plain-text bounce quotes the original message.
const QUOTE_MARKERS: &[&str] = &[
    "this is a copy of the message",
    "below this line is a copy of the message",
    "original message headers",
    "original message follows",
    "----- original message -----",
    "------ original message ------",
    "the headers of the original message",
    "unsent message below",
    "--- the header of the original message is following",
    "original message:",
    "a copy of the original message",
];

fn text_bounce(msg: &Message<'_>) -> Option<Bounce> {
    let body = text_parts(msg).join("\n");
    let lower = body.to_ascii_lowercase();
    // Split the report's own words from the quoted original.
    let marker = QUOTE_MARKERS
        .iter()
        .filter_map(|m| lower.find(m))
        .min()
        .or_else(|| header_block_start(&body));
    let (report, quote) = match marker {
        Some(at) => (&body[..at], &body[at..]),
        None => (body.as_str(), ""),
    };
    let (attached_quote, mut original) = quoted_original(msg);
    if original.is_none() {
        original = message_id_in_text(quote);
    }
    let quoted_headers =
        attached_quote || original.is_some() || header_block_start(quote).is_some();
    let own: Vec<String> = ["From", "To", "Return-Path", "Sender"]
        .iter()
        .flat_map(|h| headers_all(msg, h))
        .flat_map(|v| addresses_in(&v))
        .collect();
    let default_severity = {
        let l = report.to_ascii_lowercase();
        if l.contains("permanent") || l.contains("does not exist") || l.contains("user unknown") {
            Some(Severity::Hard)
        } else if l.contains("temporar")
            || l.contains("delayed")
            || l.contains("will retry")
            || l.contains("will keep trying")
            || l.contains("not yet been delivered")
        {
            Some(Severity::Soft)
        } else {
            None
        }
    };
    // Each failed address with the first status code between it and the next address.
    let mut mentions: Vec<(usize, String)> = Vec::new();
    let mut offset = 0;
    for line in report.split_inclusive('\n') {
        for a in addresses_in(line) {
            let local = a.split('@').next().unwrap_or("");
            if own.contains(&a) || DAEMON_LOCALS.contains(&local) {
                continue;
            }
            if !mentions.iter().any(|(_, m)| *m == a) {
                mentions.push((offset + line.find(&a).unwrap_or(0), a));
            }
        }
        offset += line.len();
    }
    let mut failures = Vec::new();
    for (i, (at, email)) in mentions.iter().enumerate() {
        let end = mentions.get(i + 1).map_or(report.len(), |(n, _)| *n);
        let span = report.get(*at..end).unwrap_or("");
        let lower_report = report.to_ascii_lowercase();
        let found = code_line(span).or_else(|| {
            // One code for the whole report (a single failed address).
            (mentions.len() == 1).then(|| code_line(report)).flatten()
        });
        let (status, diagnostic) = match found {
            Some((code, line)) => (Some(code), Some(line)),
            None => (None, None),
        };
        let severity = match status.as_deref().and_then(|s| s.chars().next()) {
            Some('5') => Severity::Hard,
            Some('4') => Severity::Soft,
            _ => match default_severity {
                Some(s) => s,
                None if lower_report.contains("could not be delivered")
                    || lower_report.contains("undeliverable") =>
                {
                    Severity::Hard
                }
                None => continue,
            },
        };
        failures.push(Failure {
            email: email.clone(),
            status,
            diagnostic,
            severity,
        });
    }
    if failures.is_empty() {
        return None;
    }
    Some(Bounce {
        format: "text",
        failures,
        original_message_id: original,
        quoted_headers,
    })
}

/// Where a block of at least two quoted header lines starts, if any.
fn header_block_start(text: &str) -> Option<usize> {
    const NAMES: &[&str] = &[
        "return-path:",
        "received:",
        "message-id:",
        "from:",
        "to:",
        "subject:",
        "date:",
        "mime-version:",
        "content-type:",
        "list-unsubscribe:",
    ];
    let is_header = |l: &str| {
        let l = l.trim_start_matches(['>', ' ']).to_ascii_lowercase();
        NAMES.iter().any(|n| l.starts_with(n))
    };
    let mut offset = 0;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, l) in lines.iter().enumerate() {
        if is_header(l) && lines.get(i + 1).is_some_and(|n| is_header(n)) {
            return Some(offset);
        }
        offset += l.len();
    }
    None
}

/// Email addresses in free text, normalized.
fn addresses_in(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || "<>()[]\"',;:".contains(c))
        .filter(|w| w.contains('@'))
        .filter_map(|w| {
            let w = w.trim_matches(|c: char| c == '.' || c == '=' || c == '/');
            let w = w.strip_prefix("mailto").unwrap_or(w);
            crate::domain::normalize_email(w).ok()
        })
        .map(|a| a.to_lowercase())
        .collect()
}

/// Enhanced status codes (`5.1.1`) in text, failure classes only, in order.
fn enhanced_codes(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if matches!(b[i], b'2' | b'4' | b'5')
            && (i == 0 || !(b[i - 1].is_ascii_digit() || b[i - 1] == b'.'))
            && b.get(i + 1) == Some(&b'.')
        {
            let mut j = i + 2;
            let d1 = j;
            while j < b.len() && b[j].is_ascii_digit() && j - d1 < 3 {
                j += 1;
            }
            if j > d1 && b.get(j) == Some(&b'.') {
                let d2 = j + 1;
                let mut k = d2;
                while k < b.len() && b[k].is_ascii_digit() && k - d2 < 3 {
                    k += 1;
                }
                let ends = k == b.len()
                    || !(b[k].is_ascii_digit()
                        || b[k] == b'.' && b.get(k + 1).is_some_and(u8::is_ascii_digit));
                if k > d2 && ends {
                    out.push(&text[i..k]);
                    i = k;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

const REPLY_CODES: &[&str] = &[
    "421", "450", "451", "452", "454", "471", "500", "501", "502", "503", "504", "521", "523",
    "530", "534", "535", "541", "550", "551", "552", "553", "554", "557",
];

/// SMTP reply codes (`550`) in text.
fn reply_codes(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    for i in 0..b.len().saturating_sub(2) {
        let w = &text.as_bytes()[i..i + 3];
        if !w.iter().all(u8::is_ascii_digit) {
            continue;
        }
        let before_ok = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.');
        let after_ok = b
            .get(i + 3)
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'.'));
        if before_ok
            && after_ok
            && let Some(code) = text.get(i..i + 3)
            && REPLY_CODES.contains(&code)
        {
            out.push(code);
        }
    }
    out
}

/// The first failure code of text: an enhanced 4/5.x.x code, else a reply code.
fn first_code(text: &str) -> Option<&str> {
    enhanced_codes(text)
        .into_iter()
        .find(|c| !c.starts_with('2'))
        .or_else(|| reply_codes(text).into_iter().next())
}

/// The first code in `text` and the line it is on (the diagnostic).
fn code_line(text: &str) -> Option<(String, String)> {
    for line in text.lines() {
        if let Some(code) = first_code(line) {
            return Some((code.to_string(), clip(line.trim())));
        }
    }
    None
}

fn clip(s: &str) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let one = one.split_whitespace().collect::<Vec<_>>().join(" ");
    match one.char_indices().nth(500) {
        Some((i, _)) => format!("{}...", &one[..i]),
        None => one,
    }
}

/// RFC 3834 and the common vendor markers of vacation and other automatic replies.
fn is_auto_reply(msg: &Message<'_>) -> bool {
    if header(msg, "Auto-Submitted").is_some_and(|v| !v.trim().eq_ignore_ascii_case("no")) {
        return true;
    }
    for h in [
        "X-Autoreply",
        "X-Autorespond",
        "X-Autoresponder",
        "X-Vacation",
    ] {
        if header(msg, h).is_some() {
            return true;
        }
    }
    if header(msg, "Precedence").is_some_and(|v| v.trim().eq_ignore_ascii_case("auto_reply")) {
        return true;
    }
    if header(msg, "X-Auto-Response-Suppress").is_some()
        && header(msg, "X-MS-Exchange-Inbox-Rules-Loop").is_some()
    {
        return true;
    }
    let s = subject(msg).to_lowercase();
    [
        "auto:",
        "automatic reply",
        "autoreply",
        "auto-reply",
        "auto reply",
        "out of office",
        "out of the office",
        "abwesenheitsnotiz",
        "réponse automatique",
        "vacation reply",
        "on vacation",
    ]
    .iter()
    .any(|p| s.contains(p))
}

/// A token in the top-level recipient headers or the subject of a request (never in the
/// body: a bounce quotes our List-Unsubscribe header).
fn unsubscribe_token(msg: &Message<'_>) -> Option<Token> {
    for h in [
        "Delivered-To",
        "X-Original-To",
        "Envelope-To",
        "X-Envelope-To",
        "To",
        "Cc",
    ] {
        for v in headers_all(msg, h) {
            if v.to_ascii_lowercase().contains("+unsubscribe-")
                && let Some(t) = Token::find_in(&v)
            {
                return Some(t);
            }
        }
    }
    let s = subject(msg);
    if s.to_ascii_lowercase().contains("unsubscribe") {
        return Token::find_in(&s);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_found_with_word_boundaries() {
        assert_eq!(enhanced_codes("Status: 5.1.1 (bad)"), vec!["5.1.1"]);
        assert_eq!(enhanced_codes("host 10.5.1.1 said 4.2.2"), vec!["4.2.2"]);
        assert!(enhanced_codes("version 5.1.1.3").is_empty());
        assert_eq!(reply_codes("said: 550 user unknown"), vec!["550"]);
        assert!(reply_codes("1550 2550x 192.168.1.550").is_empty());
        assert_eq!(reply_codes("554: delivery error"), vec!["554"]);
        assert_eq!(first_code("550-5.1.1 The email account"), Some("5.1.1"));
    }

    #[test]
    fn message_ids_normalize() {
        assert_eq!(normalize_message_id(" <a.b@c> ").as_deref(), Some("a.b@c"));
        assert_eq!(normalize_message_id("a.b@c").as_deref(), Some("a.b@c"));
        assert_eq!(normalize_message_id("<>"), None);
        assert_eq!(
            message_id_in_text("x\nMessage-Id:\n <z@y>\n").as_deref(),
            Some("z@y")
        );
    }

    #[test]
    fn garbage_never_panics() {
        for raw in [
            &b""[..],
            b"\0\0\0",
            b"From: x\r\n\r\n",
            b"Content-Type: multipart/report; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient:\r\n--x--",
            b"From: MAILER-DAEMON@x\r\nSubject: Undelivered\r\n\r\n@@@ 5.5.5.5.5 550",
        ] {
            let _ = classify(raw);
        }
    }
}
