//! Builds the RFC 5322 message for one recipient with lettre: multipart/alternative (text
//! then HTML), a unique Message-ID on the sender's domain, Date, From/To/Reply-To with
//! display names (RFC 2047-encoded by lettre when not ASCII) and the List-Unsubscribe
//! headers of RFC 2369 and RFC 8058. Every value is made single-line before it gets here.

use lettre::Message;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};

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

#[derive(Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_string())
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

/// The message for one recipient.
pub fn build_message(parts: &MessageParts<'_>, rendered: &Rendered) -> Result<Message, MailError> {
    let from = mailbox(parts.from_name, parts.from_email)?;
    let to = mailbox(parts.to_name, parts.to_email)?;
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(header_safe(&rendered.subject))
        .message_id(Some(new_message_id(parts.from_email)))
        .date_now();
    if let Some(r) = parts.reply_to {
        builder = builder.reply_to(mailbox(None, r)?);
    }
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
    builder = builder.header(ListUnsubscribe(list));
    if https.is_some() {
        builder = builder.header(ListUnsubscribePost);
    }
    let message = match &rendered.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            rendered.text.clone(),
            html.clone(),
        )),
        None => builder.singlepart(SinglePart::plain(rendered.text.clone())),
    };
    message.map_err(|e| MailError::Build(e.to_string()))
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
        let raw = String::from_utf8(msg.formatted()).unwrap();
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
}
