//! Pre-flight: what to know before a batch starts, one clear line per check with a
//! severity. `Blocking` is reserved for cases where starting would be wrong (nothing could
//! be sent, or every message would fail); the rest are warnings or information.
//!
//! Callers (`recalliq batch check ID`, the composer's review page) use [`preflight`] and
//! print [`Check::line`] for each entry; [`Preflight::blocking`] tells whether to refuse.

use std::path::PathBuf;

use serde::Serialize;

use crate::db::{DbResult, SmtpSettings, Store, TenantScope};
use crate::mail::{MessageParts, Unsubscribe, build_message};
use crate::render::{Recipient, Renderer, TenantInfo};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Info,
    Warning,
    Blocking,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Blocking => "blocking",
        }
    }
}

/// One finding. `code` is stable (for scripts and tests); `message` is for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
}

impl Check {
    fn new(code: &'static str, severity: Severity, message: impl Into<String>) -> Check {
        Check {
            code,
            severity,
            message: message.into(),
        }
    }

    /// `warning   dkim: mail from acme.test is not DKIM-signed ...`
    pub fn line(&self) -> String {
        format!(
            "{:<8}  {}: {}",
            self.severity.as_str(),
            self.code,
            self.message
        )
    }
}

/// Everything pre-flight found for one batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preflight {
    pub batch_id: i32,
    /// Unique recipients of the batch's groups (suppressed ones included).
    pub recipients: i64,
    /// Of those, on the suppression list (they will be skipped).
    pub suppressed: i64,
    pub checks: Vec<Check>,
}

impl Preflight {
    /// Whether starting the batch would be wrong.
    pub fn blocking(&self) -> bool {
        self.checks.iter().any(|c| c.severity == Severity::Blocking)
    }
    pub fn worst(&self) -> Severity {
        self.checks
            .iter()
            .map(|c| c.severity)
            .max()
            .unwrap_or(Severity::Ok)
    }
    pub fn find(&self, code: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.code == code)
    }
}

/// Codes the review (`engine::review`) already reports its own way: the tenant, the
/// transport, a template that does not compile, the recipients and the unresolved
/// variables (listed per recipient there).
pub const IN_REVIEW: &[&str] = &["tenant", "transport", "template", "recipients", "variables"];

/// The checks shown after the review's findings, by `recalliq batch check` and the
/// composer's review page alike: DKIM of the From domain, message size, text part,
/// List-Unsubscribe, the unsubscribe link and suppression hits; the quota only when none is
/// left (the review's own quota line says the rest).
pub fn beyond_review(checks: Vec<Check>) -> Vec<Check> {
    checks
        .into_iter()
        .filter(|c| !IN_REVIEW.contains(&c.code))
        .filter(|c| c.code != "quota" || c.severity == Severity::Blocking)
        .collect()
}

/// Limits and where keys live.
#[derive(Debug, Clone)]
pub struct PreflightOptions {
    /// Directory of the secret key file (to check that the DKIM key decrypts).
    pub config_dir: Option<PathBuf>,
    /// A message larger than this is refused by most servers: blocking.
    pub max_message_bytes: usize,
    /// HTML larger than this is clipped by Gmail: a warning.
    pub clip_html_bytes: usize,
    /// At most this many recipients are rendered (the rest are counted only).
    pub render_limit: i64,
}

impl Default for PreflightOptions {
    fn default() -> Self {
        PreflightOptions {
            config_dir: None,
            max_message_bytes: 10 * 1024 * 1024,
            clip_html_bytes: 102 * 1024,
            render_limit: 100_000,
        }
    }
}

/// The sender address the engine will use (same rule as the runner).
fn from_address(
    settings: Option<&SmtpSettings>,
    senders: &[crate::db::TenantEmail],
    tenant_domain: &str,
) -> String {
    settings
        .and_then(|s| s.from_address().map(str::to_string))
        .or_else(|| {
            senders
                .iter()
                .find(|s| s.is_active)
                .map(|s| s.email.clone())
        })
        .unwrap_or_else(|| format!("noreply@{tenant_domain}"))
}

/// Runs every check for batch `batch_id` of `scope`'s tenant. Reads only; changes nothing.
pub async fn preflight(
    store: &Store,
    scope: TenantScope,
    batch_id: i32,
    opts: &PreflightOptions,
) -> DbResult<Preflight> {
    let batch = store.get_batch(scope, batch_id).await?;
    let tenant = store.get_tenant(scope).await?;
    let mut checks = Vec::new();

    if !tenant.is_usable() {
        checks.push(Check::new(
            "tenant",
            Severity::Blocking,
            format!(
                "tenant {} is suspended or inactive and may not send",
                tenant.domain
            ),
        ));
    }

    let settings = store.smtp_settings(scope).await?;
    if settings.is_none() {
        checks.push(Check::new(
            "transport",
            Severity::Blocking,
            format!(
                "tenant {} has no mail transport: run `recalliq smtp set --tenant {}`",
                tenant.domain, tenant.domain
            ),
        ));
    }
    let senders = store.list_tenant_emails(scope).await?;
    let from_email = from_address(settings.as_ref(), &senders, &tenant.domain);
    let from_domain = crate::dkim::domain_of(&from_email).unwrap_or_default();

    // DKIM: a key that does not decrypt pauses the batch at start, so it blocks here too.
    let mut signer = None;
    match crate::dkim::signer_for(store, scope, opts.config_dir.as_deref(), &from_email).await {
        Ok(Some(s)) => {
            checks.push(Check::new(
                "dkim",
                Severity::Ok,
                format!(
                    "mail from {from_domain} is DKIM-signed ({}, selector '{}')",
                    s.algorithm(),
                    s.selector()
                ),
            ));
            signer = Some(s);
        }
        Ok(None) => checks.push(Check::new(
            "dkim",
            Severity::Warning,
            format!(
                "mail from {from_domain} will not be DKIM-signed: run `recalliq dkim generate --tenant {} --domain {from_domain}` (or `D` on the TUI's SMTP screen) and publish the record",
                tenant.domain
            ),
        )),
        Err(crate::dkim::DkimError::Db(e)) => return Err(e),
        Err(e) => checks.push(Check::new("dkim", Severity::Blocking, e.to_string())),
    }

    let template = store.get_template(scope, batch.template_id).await?;
    let renderer = match Renderer::new(&(&template).into()) {
        Ok(r) => Some(r),
        Err(e) => {
            checks.push(Check::new(
                "template",
                Severity::Blocking,
                format!("template '{}' does not compile: {e}", template.name),
            ));
            None
        }
    };
    let has_text = template
        .body_text
        .as_deref()
        .is_some_and(|t| !t.trim().is_empty());
    let has_html = template
        .body_html
        .as_deref()
        .is_some_and(|t| !t.trim().is_empty());
    if !has_text && has_html {
        checks.push(Check::new(
            "text_part",
            Severity::Warning,
            format!(
                "template '{}' has no text part: one is derived from the HTML; a written one reads better and scores better with spam filters",
                template.name
            ),
        ));
    } else if !has_text && !has_html {
        checks.push(Check::new(
            "text_part",
            Severity::Blocking,
            format!("template '{}' has no body", template.name),
        ));
    }

    let audience = store
        .batch_audience(scope, batch_id, opts.render_limit.max(1))
        .await?;
    let recipients = i64::try_from(audience.len()).unwrap_or(i64::MAX);
    let suppressed = audience.iter().filter(|r| r.suppressed != 0).count() as i64;
    let sendable = recipients - suppressed;
    if recipients == 0 {
        checks.push(Check::new(
            "recipients",
            Severity::Blocking,
            "the batch's groups have no active contacts: nothing to send",
        ));
    } else if sendable == 0 {
        checks.push(Check::new(
            "suppression",
            Severity::Blocking,
            format!("all {recipients} recipients are on the suppression list: nothing to send"),
        ));
    } else if suppressed > 0 {
        checks.push(Check::new(
            "suppression",
            Severity::Info,
            format!("{suppressed} of {recipients} recipients are suppressed and will be skipped"),
        ));
    } else {
        checks.push(Check::new(
            "suppression",
            Severity::Ok,
            format!("no suppressed address among {recipients} recipients"),
        ));
    }

    // Quota: the engine never exceeds it (the batch pauses), so only "none left" blocks.
    let left = tenant.quota_left();
    if sendable > 0 && left == 0 {
        checks.push(Check::new(
            "quota",
            Severity::Blocking,
            format!(
                "tenant {} has used its monthly quota ({}): nothing can be sent this month",
                tenant.domain, tenant.monthly_email_limit
            ),
        ));
    } else if sendable > left {
        checks.push(Check::new(
            "quota",
            Severity::Warning,
            format!(
                "{sendable} messages but only {left} left of the monthly quota: the batch will pause when it is used up"
            ),
        ));
    } else if sendable > 0 {
        checks.push(Check::new(
            "quota",
            Severity::Ok,
            format!("{sendable} messages, {left} left of the monthly quota"),
        ));
    }

    // Render every (non-suppressed) recipient: unresolved variables fail a message.
    let info = TenantInfo::from(&tenant);
    let unsubscribe = Unsubscribe {
        mailto: from_email.clone(),
        https_url: None,
    };
    let batch_vars = batch.variables.as_ref().map(|j| j.0.clone());
    let mut sample = None;
    if let Some(renderer) = &renderer {
        let mut failed = 0i64;
        let mut first_error = None;
        for row in audience.iter().filter(|r| r.suppressed == 0) {
            let recipient = Recipient {
                email: row.email.clone(),
                name: row.name.clone().filter(|n| !n.trim().is_empty()),
                variables: row.variables.as_ref().map(|j| j.0.clone()),
            };
            match renderer.render(
                &recipient,
                batch_vars.as_ref(),
                &info,
                &unsubscribe.url_for_template(),
            ) {
                Ok(r) => {
                    if sample.is_none() {
                        sample = Some((recipient, r));
                    }
                }
                Err(e) => {
                    failed += 1;
                    if first_error.is_none() {
                        first_error = Some(e.to_string());
                    }
                }
            }
        }
        let vars = renderer.variables();
        match first_error {
            Some(e) if failed == sendable => checks.push(Check::new(
                "variables",
                Severity::Blocking,
                format!("no recipient's message renders (every one would fail): {e}"),
            )),
            Some(e) => checks.push(Check::new(
                "variables",
                Severity::Warning,
                format!("{failed} of {sendable} messages do not render and will fail; first: {e}"),
            )),
            None if sendable > 0 => checks.push(Check::new(
                "variables",
                Severity::Ok,
                format!(
                    "every message renders ({} variable{} used)",
                    vars.len(),
                    if vars.len() == 1 { "" } else { "s" }
                ),
            )),
            None => {}
        }
        if !vars.iter().any(|v| v == "unsubscribe_url") {
            checks.push(Check::new(
                "unsubscribe_link",
                Severity::Warning,
                "the template shows no {{ unsubscribe_url }} link in the body",
            ));
        }
    }

    // The real message of the first recipient: size and headers.
    if let Some((recipient, rendered)) = &sample {
        let parts = MessageParts {
            from_email: &from_email,
            from_name: None,
            to_email: &recipient.email,
            to_name: recipient.name.as_deref(),
            reply_to: settings.as_ref().and_then(|s| s.reply_to()),
            unsubscribe: &unsubscribe,
        };
        match build_message(&parts, rendered) {
            Ok(mut message) => {
                if let Some(s) = &signer {
                    s.sign(&mut message);
                }
                let size = message.bytes().len();
                let html = rendered.html.as_ref().map_or(0, String::len);
                if size > opts.max_message_bytes {
                    checks.push(Check::new(
                        "size",
                        Severity::Blocking,
                        format!(
                            "a message is {} KiB, over the {} KiB most servers accept",
                            size / 1024,
                            opts.max_message_bytes / 1024
                        ),
                    ));
                } else if html > opts.clip_html_bytes {
                    checks.push(Check::new(
                        "size",
                        Severity::Warning,
                        format!(
                            "the HTML is {} KiB: Gmail clips messages over {} KiB",
                            html / 1024,
                            opts.clip_html_bytes / 1024
                        ),
                    ));
                } else {
                    checks.push(Check::new(
                        "size",
                        Severity::Ok,
                        format!("a message is about {} KiB", size.div_ceil(1024)),
                    ));
                }
                if !message.has_header("List-Unsubscribe") {
                    checks.push(Check::new(
                        "list_unsubscribe",
                        Severity::Warning,
                        "messages carry no List-Unsubscribe header",
                    ));
                } else if !message.has_header("List-Unsubscribe-Post") {
                    checks.push(Check::new(
                        "list_unsubscribe",
                        Severity::Warning,
                        "List-Unsubscribe has no https one-click address (RFC 8058): large mailbox providers expect it from bulk senders",
                    ));
                } else {
                    checks.push(Check::new(
                        "list_unsubscribe",
                        Severity::Ok,
                        "List-Unsubscribe with one-click (RFC 8058)",
                    ));
                }
            }
            Err(e) => checks.push(Check::new(
                "message",
                Severity::Blocking,
                format!("the message cannot be built: {e}"),
            )),
        }
    }

    Ok(Preflight {
        batch_id,
        recipients,
        suppressed,
        checks,
    })
}
