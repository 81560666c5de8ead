//! The demo data itself: tenants, users, groups, contacts, templates, batches and logs,
//! generated from `assets/demo/*.toml` with a seeded RNG (only passwords and the timestamps,
//! which are relative to now, differ between runs). Bulk rows go in as multi-row INSERTs
//! inside one transaction on a single SQLite connection.

use std::collections::HashSet;
use std::path::Path;

use chrono::{Duration, NaiveDateTime};
use color_eyre::eyre::{Result, WrapErr, eyre};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::auth;
use crate::db::{Actor, NewTemplate, NewTenant, NewUser, Store, UserScope};
use crate::domain::{Role, TenantPlan, TenantStatus};

/// Seed of the demo RNG: the same data on every run.
pub const SEED: u64 = 0x5EED_DE30;

const TENANTS_TOML: &str = include_str!("../../assets/demo/tenants.toml");
const PEOPLE_TOML: &str = include_str!("../../assets/demo/people.toml");
const TEMPLATES_TOML: &str = include_str!("../../assets/demo/templates.toml");

/// Rows per multi-row INSERT: 1,000 rows x at most 12 parameters stays far below SQLite's
/// 32,766 bound parameters per statement.
const CHUNK: usize = 1_000;

#[derive(Debug, Deserialize)]
struct TenantsFile {
    tenant: Vec<TenantDef>,
}

#[derive(Debug, Deserialize)]
struct TenantDef {
    key: String,
    name: String,
    domain: String,
    plan: String,
    status: String,
    monthly_email_limit: i32,
    contact_person: String,
    contact_email: String,
    billing_email: String,
    company_address: String,
    phone_number: String,
    sender: String,
    sender_name: String,
    customer_plans: Vec<String>,
    groups: Vec<GroupDef>,
}

#[derive(Debug, Deserialize)]
struct GroupDef {
    name: String,
    description: String,
    contacts: usize,
}

#[derive(Debug, Deserialize)]
struct PeopleFile {
    first_names: Vec<String>,
    last_names: Vec<String>,
    cities: Vec<String>,
    mail_domains: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct TemplatesFile {
    template: Vec<TemplateDef>,
}

#[derive(Debug, Deserialize)]
struct TemplateDef {
    name: String,
    subject: String,
    variables: Vec<String>,
    body_html: String,
}

/// A demo account and its clear-text password (shown once).
#[derive(Debug, Clone)]
pub struct Credential {
    pub username: String,
    pub role: Role,
    pub tenant: Option<String>,
    pub password: String,
}

/// One tenant as seeded, for the summary.
#[derive(Debug, Clone)]
pub struct TenantSummary {
    pub id: i32,
    pub name: String,
    pub domain: String,
    pub plan: String,
    pub monthly_email_limit: i32,
    pub emails_sent_this_month: i32,
    pub outbox: std::path::PathBuf,
}

/// What was seeded.
#[derive(Debug, Clone, Default)]
pub struct Seeded {
    pub tenants: Vec<TenantSummary>,
    pub credentials: Vec<Credential>,
    pub super_admin: String,
    pub groups: usize,
    pub contacts: usize,
    pub templates: usize,
    pub batches: usize,
    pub email_logs: usize,
    pub execution_logs: usize,
}

/// A contact as read back after the bulk insert.
#[derive(Debug, Clone, sqlx::FromRow)]
struct ContactRow {
    id: i32,
    group_id: i32,
    email: String,
    name: Option<String>,
    is_active: bool,
}

/// A row of `logs_emaillog` to be inserted.
struct LogRow {
    recipient_email: String,
    recipient_name: Option<String>,
    contact_id: i32,
    status: &'static str,
    sent_at: Option<NaiveDateTime>,
    error_message: Option<String>,
    smtp_response: Option<String>,
    created_at: NaiveDateTime,
    attempts: i32,
    message_id: Option<String>,
}

/// How far a batch got and what it looks like.
struct BatchPlan {
    name: &'static str,
    status: &'static str,
    template: usize,
    groups: &'static [usize],
    /// Share of the recipients already processed (0.0 to 1.0).
    progress: f64,
    /// Whether the unprocessed recipients were materialized as `pending` rows.
    pending_rest: bool,
    /// Days ago it started (negative: scheduled in the future).
    days_ago: i64,
    reason: Option<&'static str>,
    /// Share of failures among the processed recipients.
    failure_rate: f64,
}

/// The batches of each tenant (index into tenants.toml), covering every batch status.
fn batch_plans(tenant: usize) -> Vec<BatchPlan> {
    let p =
        |name, status, template, groups, progress, pending_rest, days_ago, reason, failure_rate| {
            BatchPlan {
                name,
                status,
                template,
                groups,
                progress,
                pending_rest,
                days_ago,
                reason,
                failure_rate,
            }
        };
    match tenant {
        0 => vec![
            p(
                "Spring sale",
                "completed",
                0,
                &[0, 1],
                1.0,
                false,
                12,
                None,
                0.05,
            ),
            p(
                "Autumn newsletter",
                "draft",
                0,
                &[0],
                0.0,
                false,
                0,
                None,
                0.0,
            ),
        ],
        1 => vec![
            p(
                "Welcome series",
                "completed",
                2,
                &[1],
                1.0,
                false,
                20,
                None,
                0.04,
            ),
            p(
                "Q3 product update",
                "running",
                0,
                &[0],
                0.62,
                true,
                0,
                None,
                0.05,
            ),
            p(
                "Webinar invitation",
                "scheduled",
                2,
                &[2],
                0.0,
                false,
                -2,
                None,
                0.0,
            ),
            p(
                "Pricing change notice",
                "failed",
                1,
                &[0, 1],
                0.09,
                true,
                3,
                Some(
                    "40 consecutive delivery failures (421 4.7.0 Try again later): the SMTP server is refusing mail",
                ),
                0.45,
            ),
        ],
        _ => vec![
            p(
                "Patient newsletter - June",
                "completed",
                0,
                &[0],
                1.0,
                false,
                8,
                None,
                0.06,
            ),
            p(
                "Flu vaccination reminder",
                "paused",
                1,
                &[0, 2],
                0.35,
                true,
                1,
                Some("paused by daniel.fischer: waiting for the clinics to confirm vaccine stock"),
                0.04,
            ),
            p(
                "Open day invitation",
                "cancelled",
                2,
                &[1],
                0.3,
                false,
                5,
                Some("cancelled by daniel.fischer: the open day was postponed"),
                0.03,
            ),
        ],
    }
}

fn parse_assets() -> Result<(TenantsFile, PeopleFile, TemplatesFile)> {
    let tenants: TenantsFile = toml::from_str(TENANTS_TOML).wrap_err("assets/demo/tenants.toml")?;
    let people: PeopleFile = toml::from_str(PEOPLE_TOML).wrap_err("assets/demo/people.toml")?;
    let templates: TemplatesFile =
        toml::from_str(TEMPLATES_TOML).wrap_err("assets/demo/templates.toml")?;
    Ok((tenants, people, templates))
}

/// A random password for a demo account: 16 letters and digits from the OS-seeded RNG
/// (deliberately not the seeded one: every demo database gets its own passwords).
fn random_password(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Hashes the demo passwords in parallel off the async workers. The hashes are real Django
/// `pbkdf2_sha256` hashes that the web app accepts. The super admin gets Django's full
/// 1,000,000 iterations; the other accounts 100,000, because nine more hashes at a million
/// iterations would make every demo run (and every test) seconds slower on two cores, and
/// Django verifies any iteration count (it just upgrades the hash at the next login).
async fn hash_all(creds: &[Credential]) -> Result<Vec<String>> {
    let mut tasks = Vec::with_capacity(creds.len());
    for c in creds {
        let password = c.password.clone();
        let iterations = if c.role == Role::SuperAdmin {
            auth::DEFAULT_ITERATIONS
        } else {
            100_000
        };
        let salt: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(22)
            .map(char::from)
            .collect();
        tasks.push(tokio::task::spawn_blocking(move || {
            auth::make_password_with(&password, &salt, iterations)
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(
            t.await
                .wrap_err("password hashing task")?
                .map_err(|e| eyre!("hashing a demo password: {e}"))?,
        );
    }
    Ok(out)
}

/// Seeds `store` (a fresh, migrated SQLite database). Outbox directories are created under
/// `outbox_root/<tenant domain>/`.
pub async fn seed(store: &Store, outbox_root: &Path) -> Result<Seeded> {
    let (tenants_file, people, templates_file) = parse_assets()?;
    let pool = store
        .sqlite_pool()
        .ok_or_else(|| eyre!("the demo database must be SQLite"))?;
    let all = Actor::system().all_tenants()?;
    let mut rng = StdRng::seed_from_u64(SEED);
    let now = crate::db::now();
    let mut seeded = Seeded::default();

    // Users first: their passwords hash on the blocking pool while the rest is seeded.
    let mut creds = vec![Credential {
        username: "admin".into(),
        role: Role::SuperAdmin,
        tenant: None,
        password: random_password(16),
    }];
    for t in &tenants_file.tenant {
        for (suffix, role) in [
            ("admin", Role::TenantAdmin),
            ("staff", Role::Staff),
            ("user", Role::User),
        ] {
            creds.push(Credential {
                username: format!("{}.{suffix}", t.key),
                role,
                tenant: Some(t.domain.clone()),
                password: random_password(16),
            });
        }
    }
    let hashing = {
        let creds = creds.clone();
        tokio::spawn(async move { hash_all(&creds).await })
    };

    // Tenants, sender addresses and outbox transports (a handful of rows: the store API).
    let mut tenant_ids = Vec::new();
    for t in &tenants_file.tenant {
        let plan: TenantPlan = t.plan.parse()?;
        let status: TenantStatus = t.status.parse()?;
        let new = NewTenant {
            name: t.name.clone(),
            domain: t.domain.clone(),
            plan: Some(plan),
            status: Some(status),
            monthly_email_limit: Some(t.monthly_email_limit),
            contact_person: Some(t.contact_person.clone()),
            contact_email: Some(t.contact_email.clone()),
        };
        let tenant = store.create_tenant(&all, &new).await?;
        let outbox = outbox_root.join(&t.domain);
        std::fs::create_dir_all(&outbox)
            .wrap_err_with(|| format!("cannot create {}", outbox.display()))?;
        let settings = json!({
            "smtp": {
                "transport": "outbox",
                "path": outbox.display().to_string(),
                "from_email": t.sender,
                "from_name": t.sender_name,
            },
            "demo": true,
        });
        sqlx::query(
            "UPDATE tenants_tenant SET billing_email = $2, company_address = $3, phone_number = $4,
                settings = $5, created_at = $6, updated_at = $6 WHERE id = $1",
        )
        .bind(tenant.id)
        .bind(&t.billing_email)
        .bind(&t.company_address)
        .bind(&t.phone_number)
        .bind(settings.to_string())
        .bind(now - Duration::days(400 - 90 * tenant_ids.len() as i64))
        .execute(pool)
        .await?;
        let scope = Actor::system().tenant_scope(tenant.id)?;
        store
            .add_tenant_email(scope, &t.sender, Some(&t.sender_name))
            .await?;
        tenant_ids.push(tenant.id);
        seeded.tenants.push(TenantSummary {
            id: tenant.id,
            name: t.name.clone(),
            domain: t.domain.clone(),
            plan: t.plan.clone(),
            monthly_email_limit: t.monthly_email_limit,
            emails_sent_this_month: 0,
            outbox,
        });
    }

    // Templates through the store (nine rows).
    let mut template_ids: Vec<Vec<i32>> = Vec::new();
    for &tid in &tenant_ids {
        let scope = Actor::system().tenant_scope(tid)?;
        let mut ids = Vec::new();
        for def in &templates_file.template {
            let new = NewTemplate {
                name: def.name.clone(),
                subject: def.subject.clone(),
                body_html: Some(def.body_html.trim().to_string()),
                body_text: None,
                variables: Some(json!(def.variables)),
            };
            ids.push(store.create_template(scope, &new).await?.id);
            seeded.templates += 1;
        }
        template_ids.push(ids);
    }

    // Everything bulky in one transaction on one connection.
    let mut conn = pool.acquire().await?;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let result = seed_bulk(
        &mut conn,
        &mut rng,
        now,
        &tenants_file,
        &people,
        &tenant_ids,
        &template_ids,
        &mut seeded,
    )
    .await;
    match result {
        Ok(()) => {
            sqlx::query("COMMIT").execute(&mut *conn).await?;
        }
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            return Err(e);
        }
    }
    drop(conn);

    // Users, once their hashes are ready.
    let hashes = hashing.await.wrap_err("password hashing")??;
    let people_names = &people;
    for (i, (c, hash)) in creds.iter().zip(hashes).enumerate() {
        let tenant_id = match &c.tenant {
            Some(d) => seeded.tenants.iter().find(|t| &t.domain == d).map(|t| t.id),
            None => None,
        };
        let first = people_names.first_names[(i * 7 + 3) % people_names.first_names.len()].clone();
        let last = people_names.last_names[(i * 11 + 5) % people_names.last_names.len()].clone();
        let email = match &c.tenant {
            Some(d) => format!("{}@{d}", c.username.replace('.', "-")),
            None => "admin@recalliq.example".to_string(),
        };
        let new = NewUser {
            username: c.username.clone(),
            email,
            password_hash: hash,
            role: c.role,
            tenant_id,
            first_name: Some(first),
            last_name: Some(last),
        };
        store.create_user(UserScope::All(all), &new).await?;
    }
    seeded.super_admin = "admin".into();
    seeded.credentials = creds;

    // Usage this month: what the demo batches sent.
    for t in &mut seeded.tenants {
        let sent: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(sent_count), 0) FROM batches_batch WHERE tenant_id = $1 AND started_at >= $2",
        )
        .bind(t.id)
        .bind(now - Duration::days(30))
        .fetch_one(pool)
        .await?;
        sqlx::query("UPDATE tenants_tenant SET emails_sent_this_month = $2 WHERE id = $1")
            .bind(t.id)
            .bind(sent)
            .execute(pool)
            .await?;
        t.emails_sent_this_month = i32::try_from(sent).unwrap_or(i32::MAX);
    }
    Ok(seeded)
}

#[allow(clippy::too_many_arguments)]
async fn seed_bulk(
    conn: &mut SqliteConnection,
    rng: &mut StdRng,
    now: NaiveDateTime,
    tenants_file: &TenantsFile,
    people: &PeopleFile,
    tenant_ids: &[i32],
    template_ids: &[Vec<i32>],
    seeded: &mut Seeded,
) -> Result<()> {
    // Groups.
    let mut group_ids: Vec<Vec<i32>> = Vec::new();
    for (t, &tid) in tenants_file.tenant.iter().zip(tenant_ids) {
        let mut ids = Vec::new();
        for g in &t.groups {
            let id: i32 = sqlx::query_scalar(
                "INSERT INTO tenants_group (tenant_id, name, description, is_active, created_at, updated_at)
                 VALUES ($1, $2, $3, TRUE, $4, $4) RETURNING id",
            )
            .bind(tid)
            .bind(&g.name)
            .bind(&g.description)
            .bind(now - Duration::days(180))
            .fetch_one(&mut *conn)
            .await?;
            ids.push(id);
            seeded.groups += 1;
        }
        group_ids.push(ids);
    }

    // Contacts: ~5,000, unique within each tenant, with per-recipient variables.
    struct NewContactRow {
        group_id: i32,
        email: String,
        name: String,
        active: bool,
        variables: String,
        created_at: NaiveDateTime,
    }
    let mut contacts = Vec::new();
    for (ti, t) in tenants_file.tenant.iter().enumerate() {
        let mut used = HashSet::new();
        for (gi, g) in t.groups.iter().enumerate() {
            for _ in 0..g.contacts {
                let first = people
                    .first_names
                    .choose(rng)
                    .ok_or_else(|| eyre!("no first names"))?;
                let last = people
                    .last_names
                    .choose(rng)
                    .ok_or_else(|| eyre!("no last names"))?;
                let domain = people
                    .mail_domains
                    .choose(rng)
                    .ok_or_else(|| eyre!("no mail domains"))?;
                let base = format!("{}.{}", first.to_lowercase(), last.to_lowercase());
                let mut email = format!("{base}@{domain}");
                let mut n = 2;
                while !used.insert(email.clone()) {
                    email = format!("{base}{n}@{domain}");
                    n += 1;
                }
                let city = people
                    .cities
                    .choose(rng)
                    .ok_or_else(|| eyre!("no cities"))?;
                let plan = t
                    .customer_plans
                    .choose(rng)
                    .ok_or_else(|| eyre!("no customer plans"))?;
                let since = rng.random_range(2012..=2025);
                let vars = json!({ "first_name": first, "city": city, "plan": plan, "member_since": since });
                contacts.push(NewContactRow {
                    group_id: group_ids[ti][gi],
                    email,
                    name: format!("{first} {last}"),
                    active: !rng.random_bool(0.02),
                    variables: vars.to_string(),
                    created_at: now
                        - Duration::minutes(rng.random_range(60 * 24 * 30..60 * 24 * 700)),
                });
            }
        }
    }
    for chunk in contacts.chunks(CHUNK) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO tenants_groupemail (group_id, email, name, is_active, variables, created_at) ",
        );
        qb.push_values(chunk, |mut b, c| {
            b.push_bind(c.group_id)
                .push_bind(&c.email)
                .push_bind(&c.name)
                .push_bind(c.active)
                .push_bind(&c.variables)
                .push_bind(c.created_at);
        });
        qb.build().execute(&mut *conn).await?;
    }
    seeded.contacts = contacts.len();
    let rows: Vec<ContactRow> = sqlx::query_as(
        "SELECT id, group_id, email, name, COALESCE(is_active, TRUE) AS is_active FROM tenants_groupemail ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await?;

    // Batches of every status with their logs.
    for (ti, t) in tenants_file.tenant.iter().enumerate() {
        for plan in batch_plans(ti) {
            let groups: Vec<i32> = plan.groups.iter().map(|&g| group_ids[ti][g]).collect();
            let recipients: Vec<&ContactRow> = rows
                .iter()
                .filter(|c| c.is_active && groups.contains(&c.group_id))
                .collect();
            seed_batch(
                conn,
                rng,
                now,
                t,
                tenant_ids[ti],
                template_ids[ti][plan.template],
                &groups,
                &recipients,
                &plan,
                seeded,
            )
            .await?;
        }
    }
    Ok(())
}

const MAILBOX_FULL: &str = "552 5.2.2 Mailbox full";

fn queue_id(rng: &mut StdRng) -> String {
    format!("{:010X}", rng.random_range(0..0xFF_FFFF_FFFFu64))
}

#[allow(clippy::too_many_arguments)]
async fn seed_batch(
    conn: &mut SqliteConnection,
    rng: &mut StdRng,
    now: NaiveDateTime,
    tenant: &TenantDef,
    tenant_id: i32,
    template_id: i32,
    groups: &[i32],
    recipients: &[&ContactRow],
    plan: &BatchPlan,
    seeded: &mut Seeded,
) -> Result<()> {
    let created = now - Duration::days(plan.days_ago.max(0) + 2) - Duration::hours(3);
    let (scheduled_at, started_at) = match plan.status {
        "draft" => (None, None),
        "scheduled" => (
            Some(now + Duration::days(-plan.days_ago) + Duration::hours(9)),
            None,
        ),
        _ => {
            let start = now - Duration::days(plan.days_ago) - Duration::hours(2);
            (Some(start), Some(start))
        }
    };
    let processed = ((recipients.len() as f64) * plan.progress).round() as usize;
    // 20 messages a second per tenant: the duration of the processed part.
    let spread = |i: usize| Duration::milliseconds(50 * i as i64 + 7);
    let completed_at = match plan.status {
        "completed" | "failed" | "cancelled" => {
            started_at.map(|s| s + spread(processed) + Duration::seconds(3))
        }
        _ => None,
    };
    let vars = json!({ "company": tenant.name, "unsubscribe_url": format!("https://{}/unsubscribe", tenant.domain) });
    let batch_id: i32 = sqlx::query_scalar(
        "INSERT INTO batches_batch (tenant_id, template_id, name, status, scheduled_at, started_at, completed_at,
            sent_count, failed_count, variables, created_at, updated_at, status_reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, $8, $9, $10, $11) RETURNING id",
    )
    .bind(tenant_id)
    .bind(template_id)
    .bind(plan.name)
    .bind(plan.status)
    .bind(scheduled_at)
    .bind(started_at)
    .bind(completed_at)
    .bind(vars.to_string())
    .bind(created)
    .bind(completed_at.or(started_at).unwrap_or(created))
    .bind(plan.reason)
    .fetch_one(&mut *conn)
    .await?;
    seeded.batches += 1;
    for g in groups {
        sqlx::query(
            "INSERT INTO batches_batchgroup (batch_id, group_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(batch_id)
        .bind(g)
        .bind(created)
        .execute(&mut *conn)
        .await?;
    }

    // Email logs: processed recipients get a final status, the rest stay pending when the
    // batch materialized them (running, paused, failed).
    let mut logs = Vec::new();
    let mut sent = 0;
    let mut failed = 0;
    if let Some(start) = started_at {
        let consecutive_tail = if plan.status == "failed" {
            40.min(processed)
        } else {
            0
        };
        for (i, c) in recipients.iter().enumerate() {
            let at = start + spread(i);
            let materialized = i < processed || plan.pending_rest;
            if !materialized {
                break;
            }
            let mut row = LogRow {
                recipient_email: c.email.clone(),
                recipient_name: c.name.clone(),
                contact_id: c.id,
                status: "pending",
                sent_at: None,
                error_message: None,
                smtp_response: None,
                created_at: start,
                attempts: 0,
                message_id: None,
            };
            if i < processed {
                let roll: f64 = rng.random();
                let outcome = if i >= processed - consecutive_tail {
                    "failed"
                } else if roll < plan.failure_rate * 0.4 {
                    "rejected"
                } else if roll < plan.failure_rate * 0.7 {
                    "bounced"
                } else if roll < plan.failure_rate {
                    "failed"
                } else {
                    "sent"
                };
                row.status = outcome;
                row.attempts = 1;
                match outcome {
                    "sent" => {
                        row.sent_at = Some(at);
                        row.smtp_response =
                            Some(format!("250 2.0.0 Ok: queued as {}", queue_id(rng)));
                        row.message_id = Some(format!("<{}.{}@{}>", batch_id, c.id, tenant.domain));
                        sent += 1;
                    }
                    "rejected" => {
                        let resp = if rng.random_bool(0.8) {
                            format!(
                                "550 5.1.1 <{}>: Recipient address rejected: User unknown",
                                c.email
                            )
                        } else {
                            format!("554 5.7.1 <{}>: Relay access denied", c.email)
                        };
                        row.error_message =
                            Some("recipient rejected by the receiving server".into());
                        row.smtp_response = Some(resp);
                        failed += 1;
                    }
                    "bounced" => {
                        // Accepted, then bounced back: the DSN's status is what counts.
                        row.sent_at = Some(at);
                        let resp = if rng.random_bool(0.7) {
                            MAILBOX_FULL.to_string()
                        } else {
                            "550 5.7.1 Message rejected as spam by Content Filtering".to_string()
                        };
                        row.error_message = Some(format!("bounced: {resp}"));
                        row.smtp_response = Some(resp);
                        row.message_id = Some(format!("<{}.{}@{}>", batch_id, c.id, tenant.domain));
                        failed += 1;
                    }
                    _ => {
                        row.attempts = 3;
                        let resp = if rng.random_bool(0.75) || plan.status == "failed" {
                            "421 4.7.0 Try again later".to_string()
                        } else {
                            "451 4.3.0 Temporary lookup failure".to_string()
                        };
                        row.error_message = Some(format!("gave up after 3 attempts: {resp}"));
                        row.smtp_response = Some(resp);
                        failed += 1;
                    }
                }
            }
            logs.push(row);
        }
    }
    insert_logs(conn, batch_id, &logs).await?;
    seeded.email_logs += logs.len();
    sqlx::query("UPDATE batches_batch SET sent_count = $2, failed_count = $3 WHERE id = $1")
        .bind(batch_id)
        .bind(sent)
        .bind(failed)
        .execute(&mut *conn)
        .await?;

    // Execution log: the batch's life so far.
    let mut events: Vec<(NaiveDateTime, String, String, Value)> = vec![(
        created,
        "created".into(),
        "batch created as draft".into(),
        json!({"groups": groups}),
    )];
    let transition = |from: &str, to: &str, reason: Option<&str>| {
        let message = match reason {
            Some(r) => format!("{from} -> {to}: {r}"),
            None => format!("{from} -> {to}"),
        };
        (
            to.to_string(),
            message,
            json!({"from": from, "to": to, "reason": reason}),
        )
    };
    if let Some(at) = scheduled_at.filter(|_| plan.status == "scheduled") {
        let (a, m, d) = transition("draft", "scheduled", None);
        events.push((
            created + Duration::minutes(20),
            a,
            m,
            json!({"scheduled_at": at, "transition": d}),
        ));
    }
    if let Some(start) = started_at {
        let (a, m, mut d) = transition("draft", "running", None);
        d["recipients"] = json!(recipients.len());
        events.push((start, a, m, d));
        let end = start + spread(processed);
        let (to, reason) = match plan.status {
            "paused" => ("paused", plan.reason),
            "completed" => ("completed", None),
            "failed" => ("failed", plan.reason),
            "cancelled" => ("cancelled", plan.reason),
            _ => ("", None),
        };
        if plan.status == "running" {
            events.push((
                end,
                "progress".into(),
                format!("{} of {} processed", processed, recipients.len()),
                json!({"sent": sent, "failed": failed, "pending": recipients.len() - processed}),
            ));
        } else if !to.is_empty() {
            let (a, m, mut d) = transition("running", to, reason);
            d["sent"] = json!(sent);
            d["failed"] = json!(failed);
            events.push((end + Duration::seconds(1), a, m, d));
        }
    }
    for (at, action, message, details) in &events {
        sqlx::query(
            "INSERT INTO logs_batchexecutionlog (batch_id, action, message, details, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(batch_id)
        .bind(action)
        .bind(message)
        .bind(details.to_string())
        .bind(at)
        .execute(&mut *conn)
        .await?;
    }
    seeded.execution_logs += events.len();
    Ok(())
}

async fn insert_logs(conn: &mut SqliteConnection, batch_id: i32, logs: &[LogRow]) -> Result<()> {
    for chunk in logs.chunks(CHUNK) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO logs_emaillog (batch_id, recipient_email, recipient_name, status, sent_at, error_message,
                smtp_response, created_at, attempts, message_id, contact_id, updated_at) ",
        );
        qb.push_values(chunk, |mut b, l| {
            b.push_bind(batch_id)
                .push_bind(&l.recipient_email)
                .push_bind(&l.recipient_name)
                .push_bind(l.status)
                .push_bind(l.sent_at)
                .push_bind(&l.error_message)
                .push_bind(&l.smtp_response)
                .push_bind(l.created_at)
                .push_bind(l.attempts)
                .push_bind(&l.message_id)
                .push_bind(l.contact_id)
                .push_bind(l.sent_at.unwrap_or(l.created_at));
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Adds a completed batch of last month with `n` email logs to the enterprise tenant, in one
/// recursive-CTE `INSERT ... SELECT` (no row crosses from Rust to SQLite). Recipients cycle
/// through the tenant's patients with a numeric suffix, so every address is distinct; the
/// status mix (94 % sent, 2 % each failed/bounced/rejected) comes from a multiplicative hash
/// of the row number, so it is deterministic too. Returns the batch id.
pub async fn add_log_batch(store: &Store, n: u64) -> Result<i32> {
    let pool = store
        .sqlite_pool()
        .ok_or_else(|| eyre!("the demo database must be SQLite"))?;
    let n = i64::try_from(n).map_err(|_| eyre!("--logs {n} is too large"))?;
    let mut conn = pool.acquire().await?;
    // A large page cache keeps the eight indexes of logs_emaillog in memory while they grow.
    sqlx::query("PRAGMA cache_size = -262144")
        .execute(&mut *conn)
        .await?;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let result = async {
        let (tenant_id, template_id, group_id, first_contact, contacts): (i32, i32, i32, i32, i64) = sqlx::query_as(
            "SELECT t.id, (SELECT MIN(id) FROM emails_emailtemplate WHERE tenant_id = t.id),
                    g.id, (SELECT MIN(id) FROM tenants_groupemail WHERE group_id = g.id),
                    (SELECT COUNT(*) FROM tenants_groupemail WHERE group_id = g.id)
             FROM tenants_tenant t JOIN tenants_group g ON g.tenant_id = t.id
             WHERE t.plan = 'enterprise' ORDER BY g.id LIMIT 1",
        )
        .fetch_one(&mut *conn)
        .await
        .wrap_err("the demo database has no enterprise tenant with a group")?;
        let start = crate::db::now() - Duration::days(35);
        let end = start + Duration::milliseconds(n * 5 + 2_000);
        let batch_id: i32 = sqlx::query_scalar(
            "INSERT INTO batches_batch (tenant_id, template_id, name, status, scheduled_at, started_at, completed_at,
                sent_count, failed_count, variables, created_at, updated_at)
             VALUES ($1, $2, $3, 'completed', $4, $4, $5, 0, 0, $6, $4, $5) RETURNING id",
        )
        .bind(tenant_id)
        .bind(template_id)
        .bind(format!("Archive mailing ({n} recipients)"))
        .bind(start)
        .bind(end)
        .bind(json!({"company": "Helios Health Group", "purpose": "performance demo"}).to_string())
        .fetch_one(&mut *conn)
        .await?;
        sqlx::query("INSERT INTO batches_batchgroup (batch_id, group_id, created_at) VALUES ($1, $2, $3)")
            .bind(batch_id)
            .bind(group_id)
            .bind(start)
            .execute(&mut *conn)
            .await?;
        // The recipient index is the only one of logs_emaillog whose keys arrive in random
        // order; building it once after the load (a sort) beats a million random inserts.
        // Same transaction, same DDL as the migration.
        sqlx::query("DROP INDEX IF EXISTS idx_emaillog_recipient")
            .execute(&mut *conn)
            .await?;
        // Contact ids of a freshly seeded group are consecutive.
        sqlx::query(
            "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < $2),
             rows AS (
                SELECT n, ((n * 2654435761) % 4294967296) AS h,
                       strftime('%Y-%m-%d %H:%M:%f', $3, printf('+%d.%03d seconds', n / 200, (n % 200) * 5)) AS at,
                       c.id AS cid, c.email, c.name
                FROM seq JOIN tenants_groupemail c ON c.id = $4 + n % $5
             )
             INSERT INTO logs_emaillog (batch_id, recipient_email, recipient_name, status, sent_at, error_message,
                 smtp_response, created_at, attempts, message_id, contact_id, updated_at)
             SELECT $1,
                substr(email, 1, instr(email, '@') - 1) || '.' || (n / $5) || substr(email, instr(email, '@')),
                name,
                CASE WHEN h % 100 < 94 THEN 'sent' WHEN h % 100 < 96 THEN 'failed'
                     WHEN h % 100 < 98 THEN 'bounced' ELSE 'rejected' END,
                CASE WHEN h % 100 < 94 OR (h % 100 >= 96 AND h % 100 < 98) THEN at END,
                CASE WHEN h % 100 < 94 THEN NULL WHEN h % 100 < 96 THEN 'gave up after 3 attempts: 421 4.7.0 Try again later'
                     WHEN h % 100 < 98 THEN 'bounced: 552 5.2.2 Mailbox full'
                     ELSE 'recipient rejected by the receiving server' END,
                CASE WHEN h % 100 < 94 THEN printf('250 2.0.0 Ok: queued as %010X', (h * 255 + 24301) % 1099511627775)
                     WHEN h % 100 < 96 THEN '421 4.7.0 Try again later'
                     WHEN h % 100 < 98 THEN '552 5.2.2 Mailbox full'
                     ELSE printf('550 5.1.1 <%s>: Recipient address rejected: User unknown', email) END,
                $3,
                CASE WHEN h % 100 >= 94 AND h % 100 < 96 THEN 3 ELSE 1 END,
                CASE WHEN h % 100 < 94 THEN printf('<%d.%d@helios-health.example>', $1, n) END,
                cid,
                at
             FROM rows",
        )
        .bind(batch_id)
        .bind(n)
        .bind(start)
        .bind(first_contact)
        .bind(contacts.max(1))
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "CREATE INDEX IF NOT EXISTS idx_emaillog_recipient ON logs_emaillog(recipient_email)",
        )
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE batches_batch SET
                sent_count = (SELECT COUNT(*) FROM logs_emaillog WHERE batch_id = $1 AND status = 'sent'),
                failed_count = (SELECT COUNT(*) FROM logs_emaillog WHERE batch_id = $1
                                AND status IN ('failed', 'bounced', 'rejected'))
             WHERE id = $1",
        )
        .bind(batch_id)
        .execute(&mut *conn)
        .await?;
        for (action, message, at) in [
            ("created", "batch created as draft".to_string(), start),
            ("running", "draft -> running".to_string(), start),
            ("completed", "running -> completed".to_string(), end),
        ] {
            sqlx::query(
                "INSERT INTO logs_batchexecutionlog (batch_id, action, message, details, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(batch_id)
            .bind(action)
            .bind(message)
            .bind(json!({"recipients": n}).to_string())
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        Ok::<i32, color_eyre::Report>(batch_id)
    }
    .await;
    match result {
        Ok(id) => {
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            Ok(id)
        }
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(e)
        }
    }
}
