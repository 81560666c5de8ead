//! The review of a batch before it starts: who would receive it (the same rules as
//! `materialize`: active groups of the tenant, active contacts, addresses deduplicated
//! case-insensitively with the lowest contact id winning, suppressed addresses skipped), the
//! monthly quota left, every recipient the template cannot be rendered for (a missing
//! variable blocks the start), and a rendered sample. Pure store + render code: the TUI's
//! review page and `recalliq batch check` both show it.

use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use crate::db::{Batch, DbResult, Store, TenantScope, on_pool};
use crate::domain::BatchStatus;
use crate::render::{Recipient, RenderError, Renderer, TenantInfo};

/// Recipient rows looked at per query (keyset pages, so a million contacts do not sit in
/// memory at once).
const PAGE: i64 = 2000;

/// Recipient errors listed one by one; the rest are counted in one more finding.
pub const MAX_LISTED: usize = 200;

/// The unique recipients of a batch as `materialize` would queue them (same joins, same
/// dedup, same suppression rule), one keyset page: `$1` batch, `$2` tenant, `$3` after this
/// contact id, `$4` limit.
const RECIPIENTS_SQL: &str = "SELECT r.id, r.email, r.name, r.variables FROM (
        SELECT ge.id, ge.email, ge.name, ge.variables,
            ROW_NUMBER() OVER (PARTITION BY LOWER(ge.email) ORDER BY ge.id) AS rn
        FROM batches_batchgroup bg
        JOIN tenants_group g ON g.id = bg.group_id AND g.tenant_id = $2
            AND COALESCE(g.is_active, TRUE)
        JOIN tenants_groupemail ge ON ge.group_id = bg.group_id AND COALESCE(ge.is_active, TRUE)
        WHERE bg.batch_id = $1
    ) r
    WHERE r.rn = 1 AND r.id > $3
      AND NOT EXISTS (SELECT 1 FROM recalliq_suppression s
                      WHERE s.tenant_id = $2 AND LOWER(s.email) = LOWER(r.email))
    ORDER BY r.id LIMIT $4";

/// Counts over the batch's groups: `(active rows, inactive contacts, unique active addresses,
/// unique active addresses that are suppressed)`.
const COUNTS_SQL: &str = "SELECT
        CAST(COUNT(CASE WHEN COALESCE(ge.is_active, TRUE) THEN 1 END) AS BIGINT),
        CAST(COUNT(CASE WHEN NOT COALESCE(ge.is_active, TRUE) THEN 1 END) AS BIGINT),
        CAST(COUNT(DISTINCT CASE WHEN COALESCE(ge.is_active, TRUE) THEN LOWER(ge.email) END) AS BIGINT),
        CAST(COUNT(DISTINCT CASE WHEN COALESCE(ge.is_active, TRUE) AND EXISTS (
            SELECT 1 FROM recalliq_suppression s
            WHERE s.tenant_id = $2 AND LOWER(s.email) = LOWER(ge.email)) THEN LOWER(ge.email) END) AS BIGINT)
    FROM batches_batchgroup bg
    JOIN tenants_group g ON g.id = bg.group_id AND g.tenant_id = $2 AND COALESCE(g.is_active, TRUE)
    JOIN tenants_groupemail ge ON ge.group_id = bg.group_id
    WHERE bg.batch_id = $1";

/// The groups of a batch with whether each is active: `(name, active)`.
const GROUPS_SQL: &str = "SELECT g.name, COALESCE(g.is_active, TRUE) FROM batches_batchgroup bg
    JOIN tenants_group g ON g.id = bg.group_id AND g.tenant_id = $2
    WHERE bg.batch_id = $1 ORDER BY g.name";

#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    id: i32,
    email: String,
    name: Option<String>,
    variables: Option<Json<Value>>,
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    /// The batch must not start until this is fixed.
    Blocking,
}

/// One line of the review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// A stable word for scripts: `recipients`, `quota`, `missing-variable`, ...
    pub kind: &'static str,
    pub message: String,
}

/// A pre-flight check as a review line (`batch check` prints both the same way).
impl From<&super::preflight::Check> for Finding {
    fn from(c: &super::preflight::Check) -> Finding {
        use super::preflight::Severity as P;
        Finding {
            severity: match c.severity {
                P::Ok | P::Info => Severity::Info,
                P::Warning => Severity::Warning,
                P::Blocking => Severity::Blocking,
            },
            kind: c.code,
            message: c.message.clone(),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tag = match self.severity {
            Severity::Info => "ok",
            Severity::Warning => "warning",
            Severity::Blocking => "BLOCKING",
        };
        write!(f, "{tag}: {}: {}", self.kind, self.message)
    }
}

/// A message rendered for the first recipient that renders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub recipient: String,
    pub subject: String,
    pub text: String,
}

/// A recipient the template cannot be rendered for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipientError {
    pub email: String,
    /// The variable that is missing, when that is the reason.
    pub variable: Option<String>,
    pub message: String,
}

/// Everything the review page and `batch check` show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Review {
    pub batch_id: i32,
    pub batch_name: String,
    pub status: String,
    pub template: String,
    pub groups: Vec<String>,
    /// Unique recipients that would be queued now.
    pub recipients: i64,
    /// Contact rows merged into another one with the same address (any case).
    pub duplicates: i64,
    /// Inactive contacts of the batch's active groups.
    pub inactive: i64,
    /// Unique active addresses on the suppression list.
    pub suppressed: i64,
    pub quota_limit: i64,
    pub quota_left: i64,
    /// Recipients that cannot be rendered (at most `MAX_LISTED`), and how many in all.
    pub errors: Vec<RecipientError>,
    pub error_count: i64,
    pub sample: Option<Sample>,
    pub findings: Vec<Finding>,
}

impl Review {
    /// True when something must be fixed before the batch may start.
    pub fn blocks(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity == Severity::Blocking)
    }
}

fn finding(severity: Severity, kind: &'static str, message: impl Into<String>) -> Finding {
    Finding {
        severity,
        kind,
        message: message.into(),
    }
}

/// Reviews batch `batch_id` of `scope`'s tenant.
pub async fn review_batch(store: &Store, scope: TenantScope, batch_id: i32) -> DbResult<Review> {
    review_batch_with_progress(store, scope, batch_id, &|_| {}).await
}

/// As [`review_batch`], calling `progress` with the number of recipients looked at so far
/// after each page (the TUI shows it while the review runs in the background).
pub async fn review_batch_with_progress(
    store: &Store,
    scope: TenantScope,
    batch_id: i32,
    progress: &(dyn Fn(i64) + Send + Sync),
) -> DbResult<Review> {
    let batch: Batch = store.get_batch(scope, batch_id).await?;
    let tenant = store.get_tenant(scope).await?;
    let template = store.get_template(scope, batch.template_id).await?;
    let tenant_id = scope.tenant_id();
    let groups: Vec<(String, bool)> = on_pool!(store, p => {
        sqlx::query_as(GROUPS_SQL).bind(batch_id).bind(tenant_id).fetch_all(p).await?
    });
    let (active_rows, inactive, unique, suppressed): (i64, i64, i64, i64) = on_pool!(store, p => {
        sqlx::query_as(COUNTS_SQL).bind(batch_id).bind(tenant_id).fetch_one(p).await?
    });
    let mut findings = Vec::new();

    match batch.batch_status() {
        Ok(BatchStatus::Draft | BatchStatus::Scheduled) => {}
        _ => findings.push(finding(
            Severity::Blocking,
            "status",
            format!(
                "batch #{batch_id} is {}: only a draft or scheduled batch can be started",
                batch.status
            ),
        )),
    }
    if !tenant.is_usable() {
        findings.push(finding(
            Severity::Blocking,
            "tenant",
            format!(
                "tenant {} is {}: its batches cannot send",
                tenant.domain, tenant.status
            ),
        ));
    }
    if store.smtp_settings(scope).await?.is_none() {
        findings.push(finding(
            Severity::Blocking,
            "transport",
            format!(
                "tenant {} has no mail transport: set one on the SMTP screen or with `recalliq smtp set`",
                tenant.domain
            ),
        ));
    }
    if !template.is_active {
        findings.push(finding(
            Severity::Warning,
            "template",
            format!("template '{}' is inactive", template.name),
        ));
    }
    for (name, active) in &groups {
        if !active {
            findings.push(finding(
                Severity::Warning,
                "group",
                format!("group '{name}' is inactive: its contacts are skipped"),
            ));
        }
    }

    // Render every recipient, page by page.
    let tenant_info = TenantInfo::from(&tenant);
    let batch_vars = batch.variables.as_ref().map(|j| j.0.clone());
    let unsubscribe = format!("mailto:noreply@{}?subject=unsubscribe", tenant.domain);
    let renderer = match Renderer::new(&(&template).into()) {
        Ok(r) => Some(r),
        Err(e) => {
            findings.push(finding(
                Severity::Blocking,
                "template",
                format!("template '{}': {e}", template.name),
            ));
            None
        }
    };
    let mut recipients = 0i64;
    let mut errors = Vec::new();
    let mut error_count = 0i64;
    let mut sample = None;
    let mut after = 0i32;
    loop {
        let rows: Vec<Row> = on_pool!(store, p => {
            sqlx::query_as(RECIPIENTS_SQL)
                .bind(batch_id)
                .bind(tenant_id)
                .bind(after)
                .bind(PAGE)
                .fetch_all(p)
                .await?
        });
        let Some(last) = rows.last().map(|r| r.id) else {
            break;
        };
        after = last;
        let n = rows.len();
        recipients += n as i64;
        if let Some(renderer) = &renderer {
            for row in rows {
                let r = Recipient {
                    email: row.email,
                    name: row.name.filter(|n| !n.trim().is_empty()),
                    variables: row.variables.map(|j| j.0),
                };
                match renderer.render(&r, batch_vars.as_ref(), &tenant_info, &unsubscribe) {
                    Ok(m) => {
                        if sample.is_none() {
                            sample = Some(Sample {
                                recipient: r.email.clone(),
                                subject: m.subject,
                                text: m.text,
                            });
                        }
                    }
                    Err(e) => {
                        error_count += 1;
                        if errors.len() < MAX_LISTED {
                            let variable = match &e {
                                RenderError::Undefined { variable, .. } => Some(variable.clone()),
                                _ => None,
                            };
                            errors.push(RecipientError {
                                email: r.email.clone(),
                                variable,
                                message: e.to_string(),
                            });
                        }
                    }
                }
            }
        }
        progress(recipients);
        if (n as i64) < PAGE {
            break;
        }
    }

    let duplicates = (active_rows - unique).max(0);
    let mut summary = format!("{recipients} unique recipients");
    let mut skipped = Vec::new();
    if duplicates > 0 {
        skipped.push(format!("{duplicates} duplicate addresses merged"));
    }
    if inactive > 0 {
        skipped.push(format!("{inactive} inactive contacts skipped"));
    }
    if suppressed > 0 {
        skipped.push(format!("{suppressed} suppressed addresses skipped"));
    }
    if !skipped.is_empty() {
        summary.push_str(&format!(" ({})", skipped.join(", ")));
    }
    findings.insert(
        0,
        finding(
            if recipients == 0 {
                Severity::Blocking
            } else {
                Severity::Info
            },
            "recipients",
            if recipients == 0 {
                format!("{summary}: nobody to send to")
            } else {
                summary
            },
        ),
    );
    let quota_left = tenant.quota_left();
    let quota_limit = i64::from(tenant.monthly_email_limit);
    findings.push(if recipients > quota_left {
        finding(
            Severity::Warning,
            "quota",
            format!(
                "{quota_left} of {quota_limit} emails left this month: only {quota_left} of {recipients} recipients can be sent; the batch pauses when the quota runs out"
            ),
        )
    } else {
        finding(
            Severity::Info,
            "quota",
            format!("{quota_left} of {quota_limit} emails left this month"),
        )
    });
    for e in &errors {
        findings.push(finding(
            Severity::Blocking,
            if e.variable.is_some() {
                "missing-variable"
            } else {
                "render"
            },
            e.message.clone(),
        ));
    }
    if error_count > errors.len() as i64 {
        findings.push(finding(
            Severity::Blocking,
            "render",
            format!(
                "{} more recipients cannot be rendered (not listed)",
                error_count - errors.len() as i64
            ),
        ));
    }
    if let Some(s) = &sample {
        findings.push(finding(
            Severity::Info,
            "sample",
            format!("for {}: subject \"{}\"", s.recipient, s.subject),
        ));
    }
    Ok(Review {
        batch_id,
        batch_name: batch.name.clone(),
        status: batch.status.clone(),
        template: template.name.clone(),
        groups: groups.into_iter().map(|(n, _)| n).collect(),
        recipients,
        duplicates,
        inactive,
        suppressed,
        quota_limit,
        quota_left,
        errors,
        error_count,
        sample,
        findings,
    })
}
