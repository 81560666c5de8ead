//! Template rendering with minijinja: a template is compiled once (`Renderer::new`) and then
//! rendered for many recipients. Undefined variables are errors that name the variable and
//! the recipient, HTML bodies are auto-escaped, and subjects never carry CR/LF whatever the
//! data holds, so nothing a contact typed can reach another header.

use std::collections::BTreeSet;
use std::fmt;

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value as JinjaValue};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::db::{Contact, Template, Tenant};

const SUBJECT: &str = "subject";
const HTML: &str = "body.html";
const TEXT: &str = "body.txt";

/// The parts of a template as stored (`emails_emailtemplate`).
#[derive(Debug, Clone, Default)]
pub struct TemplateSource {
    pub subject: String,
    pub body_html: Option<String>,
    pub body_text: Option<String>,
}

impl From<&Template> for TemplateSource {
    fn from(t: &Template) -> Self {
        TemplateSource {
            subject: t.subject.clone(),
            body_html: t.body_html.clone(),
            body_text: t.body_text.clone(),
        }
    }
}

/// Who a message is rendered for: `email`, `name` (undefined when the contact has none, so
/// `{{ name|default("there") }}` works) and the contact's own `variables`.
#[derive(Debug, Clone, Default)]
pub struct Recipient {
    pub email: String,
    pub name: Option<String>,
    pub variables: Option<Value>,
}

impl From<&Contact> for Recipient {
    fn from(c: &Contact) -> Self {
        Recipient {
            email: c.email.clone(),
            name: c.name.clone().filter(|n| !n.trim().is_empty()),
            variables: c.variables.as_ref().map(|j| j.0.clone()),
        }
    }
}

/// The tenant fields a template may use as `{{ tenant.name }}` and so on.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TenantInfo {
    pub id: i32,
    pub name: String,
    pub domain: String,
    pub contact_person: Option<String>,
    pub contact_email: Option<String>,
    pub company_address: Option<String>,
    pub phone_number: Option<String>,
}

impl From<&Tenant> for TenantInfo {
    fn from(t: &Tenant) -> Self {
        TenantInfo {
            id: t.id,
            name: t.name.clone(),
            domain: t.domain.clone(),
            contact_person: t.contact_person.clone(),
            contact_email: t.contact_email.clone(),
            company_address: t.company_address.clone(),
            phone_number: t.phone_number.clone(),
        }
    }
}

/// A message rendered for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line, no control characters.
    pub subject: String,
    pub html: Option<String>,
    /// The template's text part, or the HTML converted to text when that is empty.
    pub text: String,
}

/// Which part of a template an error is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Subject,
    Html,
    Text,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Subject => "subject",
            Part::Html => "HTML body",
            Part::Text => "text body",
        })
    }
}

/// Why a template could not be compiled or rendered, with where and for whom.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("syntax error in the {part} at line {line}, column {column}: {message}")]
    Syntax {
        part: Part,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("undefined variable '{variable}' in the {part} at line {line}{}", for_whom(.recipient))]
    Undefined {
        part: Part,
        variable: String,
        line: usize,
        recipient: Option<String>,
    },
    #[error("cannot render the {part} at line {line}{}: {message}", for_whom(.recipient))]
    Render {
        part: Part,
        line: usize,
        message: String,
        recipient: Option<String>,
    },
    #[error("the template has neither an HTML nor a text body")]
    NoBody,
    #[error("cannot convert the HTML body to text: {0}")]
    HtmlToText(String),
}

fn for_whom(recipient: &Option<String>) -> String {
    match recipient {
        Some(r) => format!(" for recipient {r}"),
        None => String::new(),
    }
}

/// Line and 1-based column of a byte offset.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn compile_error(part: Part, source: &str, err: &minijinja::Error) -> RenderError {
    let (line, column) = match err.range() {
        Some(r) => line_column(source, r.start),
        None => (err.line().unwrap_or(1), 1),
    };
    RenderError::Syntax {
        part,
        line,
        column,
        message: err.detail().unwrap_or("invalid template").to_string(),
    }
}

fn render_error(part: Part, source: &str, err: &minijinja::Error, recipient: &str) -> RenderError {
    let line = err
        .line()
        .or_else(|| err.range().map(|r| line_column(source, r.start).0))
        .unwrap_or(1);
    let recipient = Some(recipient.to_string());
    if err.kind() == ErrorKind::UndefinedError {
        // minijinja reports the span of the failing expression; that names the variable.
        let variable = err
            .range()
            .and_then(|r| source.get(r))
            .map(|s| {
                // `name|upper` -> `name`; `user.plan` stays whole.
                s.trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
                    .collect::<String>()
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "?".to_string());
        return RenderError::Undefined {
            part,
            variable,
            line,
            recipient,
        };
    }
    RenderError::Render {
        part,
        line,
        message: err
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| err.kind().to_string()),
        recipient,
    }
}

/// `{{ value|date("%d %B %Y") }}`: formats a date given as an RFC 3339 or `YYYY-MM-DD[ HH:MM:SS]`
/// string or a Unix timestamp, with a chrono strftime format (default `%Y-%m-%d`).
fn date_filter(value: JinjaValue, format: Option<String>) -> Result<String, minijinja::Error> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
    use std::fmt::Write;
    let bad = |msg: String| minijinja::Error::new(ErrorKind::InvalidOperation, msg);
    let dt: NaiveDateTime = if let Some(s) = value.as_str() {
        let s = s.trim();
        if let Ok(d) = DateTime::parse_from_rfc3339(s) {
            d.naive_utc()
        } else if let Ok(d) = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f") {
            d
        } else if let Ok(d) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
            d
        } else if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            d.and_hms_opt(0, 0, 0)
                .ok_or_else(|| bad(format!("invalid date '{s}'")))?
        } else {
            return Err(bad(format!(
                "date: cannot read '{s}' as a date (use YYYY-MM-DD or RFC 3339)"
            )));
        }
    } else if let Ok(ts) = i64::try_from(value.clone()) {
        DateTime::<Utc>::from_timestamp(ts, 0)
            .ok_or_else(|| bad(format!("date: timestamp {ts} out of range")))?
            .naive_utc()
    } else {
        return Err(bad(format!(
            "date: expected a date string or a timestamp, got {}",
            value.kind()
        )));
    };
    let fmt = format.as_deref().unwrap_or("%Y-%m-%d");
    let mut out = String::new();
    // An invalid format makes `write!` fail (instead of panicking like `to_string`).
    write!(out, "{}", dt.format(fmt)).map_err(|_| bad(format!("date: invalid format '{fmt}'")))?;
    Ok(out)
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_debug(true);
    env.set_auto_escape_callback(|name| {
        if name == HTML {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.add_filter("date", date_filter);
    // Hostile templates (nested loops) stop instead of spinning and eating memory.
    env.set_fuel(Some(RENDER_FUEL));
    env
}

/// Instructions one render of one part may execute (a normal template needs thousands).
pub const RENDER_FUEL: u64 = 5_000_000;
/// Largest rendered part; a larger one is an error, not a message.
pub const MAX_RENDERED_BYTES: usize = 8 * 1024 * 1024;

/// Collects rendered output up to `MAX_RENDERED_BYTES`, then refuses more.
#[derive(Default)]
struct Bounded {
    buf: Vec<u8>,
    exceeded: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > MAX_RENDERED_BYTES {
            self.exceeded = true;
            return Err(std::io::Error::other("rendered output too large"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A subject or any header value on one line: control characters (CR, LF, tab...) become
/// spaces, whitespace runs collapse, ends are trimmed.
pub fn header_safe(value: &str) -> String {
    crate::domain::clean_display_name(value)
}

/// A compiled template, rendered many times (once per recipient of a batch).
pub struct Renderer {
    env: Environment<'static>,
    source: TemplateSource,
    has_html: bool,
    has_text: bool,
}

impl fmt::Debug for Renderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Renderer")
            .field("subject", &self.source.subject)
            .finish_non_exhaustive()
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.trim().is_empty())
}

impl Renderer {
    /// Compiles the subject and bodies; a syntax error names the part, line and column.
    pub fn new(template: &TemplateSource) -> Result<Renderer, RenderError> {
        let mut env = environment();
        env.add_template_owned(SUBJECT, template.subject.clone())
            .map_err(|e| compile_error(Part::Subject, &template.subject, &e))?;
        let html = non_empty(&template.body_html);
        let text = non_empty(&template.body_text);
        if html.is_none() && text.is_none() {
            return Err(RenderError::NoBody);
        }
        if let Some(h) = html {
            env.add_template_owned(HTML, h.to_string())
                .map_err(|e| compile_error(Part::Html, h, &e))?;
        }
        if let Some(t) = text {
            env.add_template_owned(TEXT, t.to_string())
                .map_err(|e| compile_error(Part::Text, t, &e))?;
        }
        Ok(Renderer {
            env,
            has_html: html.is_some(),
            has_text: text.is_some(),
            source: template.clone(),
        })
    }

    /// The variables the template reads but does not define itself, sorted.
    pub fn variables(&self) -> Vec<String> {
        let mut all = BTreeSet::new();
        for name in [SUBJECT, HTML, TEXT] {
            if let Ok(t) = self.env.get_template(name) {
                all.extend(t.undeclared_variables(false));
            }
        }
        let globals: BTreeSet<String> = self.env.globals().map(|(k, _)| k.to_string()).collect();
        all.into_iter().filter(|v| !globals.contains(v)).collect()
    }

    /// Renders for one recipient. Context precedence, lowest first: batch variables, the
    /// recipient's variables, then the fixed keys `email`, `name`, `tenant`,
    /// `unsubscribe_url`, `sent_at` (now, RFC 3339) which data cannot override.
    pub fn render(
        &self,
        recipient: &Recipient,
        batch_vars: Option<&Value>,
        tenant: &TenantInfo,
        unsubscribe_url: &str,
    ) -> Result<Rendered, RenderError> {
        // Converted once for the three parts (minijinja passes its own values through
        // without converting them again).
        let ctx = minijinja::Value::from_serialize(context(
            recipient,
            batch_vars,
            tenant,
            unsubscribe_url,
        ));
        let render = |name: &str, part: Part, src: &str| -> Result<String, RenderError> {
            let tmpl = self
                .env
                .get_template(name)
                .map_err(|e| render_error(part, src, &e, &recipient.email))?;
            let mut out = Bounded::default();
            match tmpl.render_captured_to(&ctx, &mut out) {
                Ok(_) => Ok(String::from_utf8_lossy(&out.buf).into_owned()),
                Err(_) if out.exceeded => Err(RenderError::Render {
                    part,
                    line: 1,
                    message: format!(
                        "the output is larger than {} MiB",
                        MAX_RENDERED_BYTES / (1024 * 1024)
                    ),
                    recipient: Some(recipient.email.clone()),
                }),
                Err(e) => Err(render_error(part, src, &e, &recipient.email)),
            }
        };
        let subject = header_safe(&render(SUBJECT, Part::Subject, &self.source.subject)?);
        let html = if self.has_html {
            let src = self.source.body_html.as_deref().unwrap_or("");
            Some(render(HTML, Part::Html, src)?)
        } else {
            None
        };
        let text = if self.has_text {
            let src = self.source.body_text.as_deref().unwrap_or("");
            render(TEXT, Part::Text, src)?
        } else {
            html_to_text(html.as_deref().unwrap_or(""))?
        };
        Ok(Rendered {
            subject,
            html,
            text,
        })
    }
}

fn context(
    recipient: &Recipient,
    batch_vars: Option<&Value>,
    tenant: &TenantInfo,
    unsubscribe_url: &str,
) -> Value {
    let mut map = Map::new();
    for vars in [batch_vars, recipient.variables.as_ref()]
        .into_iter()
        .flatten()
    {
        if let Value::Object(o) = vars {
            for (k, v) in o {
                map.insert(k.clone(), v.clone());
            }
        }
    }
    map.insert("email".into(), Value::String(recipient.email.clone()));
    match &recipient.name {
        Some(n) => {
            map.insert("name".into(), Value::String(n.clone()));
        }
        None => {
            map.remove("name");
        }
    }
    map.insert(
        "tenant".into(),
        serde_json::to_value(tenant).unwrap_or(Value::Null),
    );
    map.insert(
        "unsubscribe_url".into(),
        Value::String(unsubscribe_url.to_string()),
    );
    map.entry("sent_at").or_insert_with(|| {
        Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    });
    Value::Object(map)
}

/// Plain text of an HTML body, wrapped at 78 columns.
pub fn html_to_text(html: &str) -> Result<String, RenderError> {
    html2text::from_read(html.as_bytes(), 78).map_err(|e| RenderError::HtmlToText(e.to_string()))
}

/// Compiles and renders once: for previews and single messages. Batches use `Renderer`.
pub fn render_message(
    template: &TemplateSource,
    recipient: &Recipient,
    batch_vars: Option<&Value>,
    tenant: &TenantInfo,
    unsubscribe_url: &str,
) -> Result<Rendered, RenderError> {
    Renderer::new(template)?.render(recipient, batch_vars, tenant, unsubscribe_url)
}

/// The variables a template uses, to record in `emails_emailtemplate.variables` on save.
pub fn template_variables(
    subject: &str,
    html: Option<&str>,
    text: Option<&str>,
) -> Result<Vec<String>, RenderError> {
    let renderer = Renderer::new(&TemplateSource {
        subject: subject.to_string(),
        body_html: html.map(str::to_string),
        body_text: text.map(str::to_string),
    })?;
    Ok(renderer.variables())
}

/// Renders the template for every recipient before a batch starts and returns those that
/// fail, with why. The outer error means the template itself does not compile.
pub fn check_recipients<I>(
    template: &TemplateSource,
    batch_vars: Option<&Value>,
    tenant: &TenantInfo,
    recipients: I,
) -> Result<Vec<(String, RenderError)>, RenderError>
where
    I: IntoIterator<Item = Recipient>,
{
    let renderer = Renderer::new(template)?;
    let placeholder = format!("https://{}/unsubscribe", tenant.domain);
    Ok(recipients
        .into_iter()
        .filter_map(|r| {
            renderer
                .render(&r, batch_vars, tenant, &placeholder)
                .err()
                .map(|e| (r.email.clone(), e))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tpl(subject: &str, html: Option<&str>, text: Option<&str>) -> TemplateSource {
        TemplateSource {
            subject: subject.into(),
            body_html: html.map(Into::into),
            body_text: text.map(Into::into),
        }
    }

    fn ann() -> Recipient {
        Recipient {
            email: "ann@example.com".into(),
            name: Some("Ann Ñúñez 😀".into()),
            variables: Some(json!({"plan": "Pro", "due": "2026-03-05", "html": "<b>x</b>"})),
        }
    }

    fn tenant() -> TenantInfo {
        TenantInfo {
            id: 1,
            name: "Acme & Co".into(),
            domain: "acme.test".into(),
            ..TenantInfo::default()
        }
    }

    #[test]
    fn renders_context_filters_and_unicode() {
        let t = tpl(
            "Hi {{ name|upper }} — {{ plan }} ({{ tenant.name }})",
            Some("<p>{{ name }} {{ html }} {{ due|date('%d %B %Y') }} {{ unsubscribe_url }}</p>"),
            None,
        );
        let r = render_message(
            &t,
            &ann(),
            Some(&json!({"plan": "batch", "campaign": "x"})),
            &tenant(),
            "https://u.test/x?a=1&b=2",
        )
        .unwrap();
        assert_eq!(r.subject, "Hi ANN ÑÚÑEZ 😀 — Pro (Acme & Co)");
        let html = r.html.unwrap();
        assert!(html.contains("&lt;b&gt;x&lt;&#x2f;b&gt;"), "{html}");
        assert!(html.contains("05 March 2026"), "{html}");
        assert!(html.contains("a=1&amp;b=2"), "{html}");
        assert!(r.text.contains("Ann Ñúñez 😀 <b>x</b>"), "{}", r.text);
    }

    #[test]
    fn undefined_variable_names_it_and_the_recipient() {
        let t = tpl("Hello", None, Some("line one\n{{ first_name }}"));
        let err = render_message(&t, &ann(), None, &tenant(), "").unwrap_err();
        match &err {
            RenderError::Undefined {
                variable,
                line,
                recipient,
                part,
            } => {
                assert_eq!(variable, "first_name");
                assert_eq!(*line, 2);
                assert_eq!(recipient.as_deref(), Some("ann@example.com"));
                assert_eq!(*part, Part::Text);
            }
            other => panic!("{other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("first_name") && msg.contains("ann@example.com"),
            "{msg}"
        );
        // default() still works in strict mode; a missing name is undefined.
        let t = tpl("Hi {{ name|default('there') }}", None, Some("x"));
        let nameless = Recipient {
            email: "x@y.test".into(),
            ..Recipient::default()
        };
        let r = render_message(&t, &nameless, None, &tenant(), "").unwrap();
        assert_eq!(r.subject, "Hi there");
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let t = tpl("ok", Some("<p>\n  hello {{ name }\n</p>"), None);
        let err = Renderer::new(&t).unwrap_err();
        match err {
            RenderError::Syntax {
                part, line, column, ..
            } => {
                assert_eq!(part, Part::Html);
                assert_eq!(line, 2);
                assert!(column > 1, "column {column}");
            }
            other => panic!("{other:?}"),
        }
        let err = Renderer::new(&tpl("{% if %}", None, Some("x"))).unwrap_err();
        assert!(err.to_string().contains("line 1, column"), "{err}");
    }

    #[test]
    fn subjects_never_carry_line_breaks() {
        let t = tpl("Hi {{ name }} {{ evil }}", None, Some("x"));
        let r = Recipient {
            email: "a@b.test".into(),
            name: Some("Eve\r\nBcc: all@x.test".into()),
            variables: Some(json!({"evil": "a\n\tb\u{0}c"})),
        };
        let out = render_message(&t, &r, None, &tenant(), "").unwrap();
        assert_eq!(out.subject, "Hi Eve Bcc: all@x.test a b c");
    }

    #[test]
    fn text_is_derived_from_html_when_empty() {
        let t = tpl(
            "s",
            Some("<h1>Title</h1><p>Hello <a href=\"https://x.test\">link</a></p>"),
            Some("   "),
        );
        let r = render_message(&t, &ann(), None, &tenant(), "").unwrap();
        assert!(r.text.contains("Title"), "{}", r.text);
        assert!(r.text.contains("Hello"), "{}", r.text);
        assert!(!r.text.contains("<p>"), "{}", r.text);
        assert!(matches!(
            Renderer::new(&tpl("s", None, Some(""))),
            Err(RenderError::NoBody)
        ));
    }

    #[test]
    fn variables_are_listed_once_sorted() {
        let vars = template_variables(
            "{{ plan }} for {{ name }}",
            Some("{% for i in items %}{{ i }}{% endfor %}{{ tenant.name }}{{ x|date }}"),
            None,
        )
        .unwrap();
        assert_eq!(vars, ["items", "name", "plan", "tenant", "x"]);
    }

    #[test]
    fn date_filter_reads_strings_and_timestamps() {
        let t = tpl(
            "{{ a|date('%d/%m/%Y') }} {{ b|date }} {{ c|date('%Y') }}",
            None,
            Some("x"),
        );
        let r = Recipient {
            email: "a@b.test".into(),
            name: None,
            variables: Some(
                json!({"a": "2026-01-02T10:00:00Z", "b": 0, "c": "2025-12-31 23:59:59"}),
            ),
        };
        let out = render_message(&t, &r, None, &tenant(), "").unwrap();
        assert_eq!(out.subject, "02/01/2026 1970-01-01 2025");
        let t = tpl("{{ a|date('%Q') }}", None, Some("x"));
        let err = render_message(&t, &r, None, &tenant(), "").unwrap_err();
        assert!(err.to_string().contains("invalid format"), "{err}");
    }

    #[test]
    fn check_recipients_lists_the_failing_ones() {
        let t = tpl("{{ plan }}", None, Some("x"));
        let good = ann();
        let bad = Recipient {
            email: "bad@x.test".into(),
            ..Recipient::default()
        };
        let failures = check_recipients(&t, None, &tenant(), vec![good, bad]).unwrap();
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].0, "bad@x.test");
        assert!(failures[0].1.to_string().contains("'plan'"));
        let failures = check_recipients(
            &t,
            Some(&json!({"plan": "default"})),
            &tenant(),
            vec![Recipient {
                email: "bad@x.test".into(),
                ..Recipient::default()
            }],
        )
        .unwrap();
        assert!(failures.is_empty());
    }
}
