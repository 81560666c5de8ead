//! One running batch inside one engine: claimer (this task), sender pool, writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{Mutex, broadcast, mpsc, watch};

use super::{EngineConfig, EngineEvent};
use crate::db::{Claim, DbError, Outcome, RowResult, SmtpServer, SmtpSettings, Store, TenantScope};
use crate::domain::BatchStatus;
use crate::mail::smtp::{SendError, describe_response};
use crate::mail::{MessageParts, Unsubscribe, build_message};
use crate::render::{Recipient, Renderer, TenantInfo};
use crate::secrets::{Secret, SecretKey};

pub(super) struct Ctx {
    pub store: Store,
    pub config: Arc<EngineConfig>,
    pub events: broadcast::Sender<EngineEvent>,
    pub scope: TenantScope,
    pub batch_id: i32,
    pub stop: watch::Receiver<bool>,
}

/// Everything a message needs that is the same for every recipient of the batch.
struct Prepared {
    renderer: Renderer,
    tenant: TenantInfo,
    batch_vars: Option<Value>,
    from_email: String,
    from_name: Option<String>,
    reply_to: Option<String>,
    unsubscribe: Unsubscribe,
    /// Signs the per-recipient unsubscribe token (none without a key directory).
    token_key: Option<crate::bounces::TokenKey>,
    /// `EngineConfig::public_base_url`: adds the https one-click URL.
    public_base_url: Option<String>,
    /// Signs every message when the From domain has an active DKIM key.
    dkim: Option<crate::dkim::Signer>,
}

struct Job {
    id: i32,
    token: String,
    email: String,
    name: Option<String>,
    variables: Option<Value>,
    attempts: i32,
}

enum Transport {
    Smtp {
        server: SmtpServer,
        password: Option<Secret>,
    },
    Outbox(std::path::PathBuf),
}

pub(super) async fn run(ctx: Ctx) {
    let batch_id = ctx.batch_id;
    if let Err(e) = run_inner(&ctx).await {
        let message = e.describe();
        tracing::error!(batch_id, error = %message, "batch runner stopped");
        let _ = ctx.events.send(EngineEvent::Error { batch_id, message });
    }
}

/// Pauses the batch with `reason` (when it is still running) and says so.
async fn pause(ctx: &Ctx, reason: &str) -> Result<(), DbError> {
    match ctx
        .store
        .transition_batch(ctx.scope, ctx.batch_id, BatchStatus::Paused, Some(reason))
        .await
    {
        Ok(_) => {
            let _ = ctx.events.send(EngineEvent::StatusChanged {
                batch_id: ctx.batch_id,
                status: BatchStatus::Paused,
                reason: Some(reason.to_string()),
            });
            Ok(())
        }
        Err(DbError::Conflict(_) | DbError::Invalid(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn prepare(ctx: &Ctx) -> Result<Result<(Prepared, Transport), String>, DbError> {
    let store = &ctx.store;
    let batch = store.get_batch(ctx.scope, ctx.batch_id).await?;
    let tenant = store.get_tenant(ctx.scope).await?;
    if !tenant.is_usable() {
        return Ok(Err(format!(
            "tenant {} is {} and may not send",
            tenant.domain,
            if tenant.is_active {
                tenant.status.as_str()
            } else {
                "inactive"
            }
        )));
    }
    let template = store.get_template(ctx.scope, batch.template_id).await?;
    let renderer = match Renderer::new(&(&template).into()) {
        Ok(r) => r,
        Err(e) => return Ok(Err(format!("template '{}': {e}", template.name))),
    };
    let Some(settings) = store.smtp_settings(ctx.scope).await? else {
        return Ok(Err(format!(
            "tenant {} has no mail transport (recalliq smtp set)",
            tenant.domain
        )));
    };
    let senders = store.list_tenant_emails(ctx.scope).await?;
    let from_email = settings
        .from_address()
        .map(str::to_string)
        .or_else(|| {
            senders
                .iter()
                .find(|s| s.is_active)
                .map(|s| s.email.clone())
        })
        .unwrap_or_else(|| format!("noreply@{}", tenant.domain));
    let from_name = senders
        .iter()
        .find(|s| s.email.eq_ignore_ascii_case(&from_email))
        .and_then(|s| s.name.clone())
        .or_else(|| Some(tenant.name.clone()));
    let dkim = match crate::dkim::signer_for(
        store,
        ctx.scope,
        ctx.config.config_dir.as_deref(),
        &from_email,
    )
    .await
    {
        Ok(s) => s,
        Err(crate::dkim::DkimError::Db(e)) => return Err(e),
        Err(e) => return Ok(Err(format!("DKIM: {e}"))),
    };
    let transport = match &settings {
        SmtpSettings::Smtp(server) => {
            let password = match &server.password_enc {
                None => None,
                Some(enc) => {
                    let Some(dir) = &ctx.config.config_dir else {
                        return Ok(Err(
                            "SMTP password set but no key directory configured".into()
                        ));
                    };
                    match SecretKey::load(dir).and_then(|k| k.decrypt(enc, tenant.id)) {
                        Ok(p) => Some(p),
                        Err(e) => return Ok(Err(format!("SMTP password: {e}"))),
                    }
                }
            };
            Transport::Smtp {
                server: server.clone(),
                password,
            }
        }
        SmtpSettings::Outbox(o) => Transport::Outbox(o.path.clone().into()),
    };
    let token_key = match &ctx.config.config_dir {
        None => None,
        Some(dir) => match SecretKey::load(dir) {
            Ok(k) => Some(crate::bounces::TokenKey::from_secret(&k)),
            Err(e) => return Ok(Err(format!("unsubscribe tokens: {e}"))),
        },
    };
    let prepared = Prepared {
        token_key,
        public_base_url: ctx.config.public_base_url.clone(),
        renderer,
        tenant: TenantInfo::from(&tenant),
        batch_vars: batch.variables.map(|j| j.0),
        unsubscribe: Unsubscribe {
            mailto: from_email.clone(),
            https_url: None,
        },
        from_email,
        from_name,
        reply_to: settings.reply_to().map(str::to_string),
        dkim,
    };
    Ok(Ok((prepared, transport)))
}

async fn run_inner(ctx: &Ctx) -> Result<(), DbError> {
    let (prepared, transport) = match prepare(ctx).await? {
        Ok(p) => p,
        Err(reason) => return pause(ctx, &reason).await,
    };
    let prepared = Arc::new(prepared);
    let cfg = ctx.config.clone();
    let chunk = cfg.chunk.max(1);
    let halt = Arc::new(AtomicBool::new(false));
    let in_flight = Arc::new(AtomicI64::new(0));
    let (job_tx, job_rx) = mpsc::channel::<Job>(usize::try_from(chunk).unwrap_or(50));
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (res_tx, res_rx) = mpsc::unbounded_channel::<RowResult>();

    let transport = Arc::new(transport);
    let (senders, rate, per_hour) = match transport.as_ref() {
        Transport::Smtp { server, .. } => (
            server.connections.clamp(1, 32),
            server.rate_per_second.filter(|r| *r > 0),
            server.rate_per_hour.filter(|r| *r > 0),
        ),
        Transport::Outbox(_) => (1, None, None),
    };
    // Set by a sender or the writer when the batch must pause (login refused, TLS failure,
    // results that cannot be written): the reason.
    let fatal: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    // Claims with rows not yet written: claim token -> rows outstanding. Their leases are
    // renewed while the runner lives.
    let claims: Claims = Arc::default();
    let limiter = Arc::new(Limiter::new(rate));
    // Notices pause/cancel within one poll even while the claimer waits on busy senders:
    // jobs not yet started are then given back untried. Also renews the leases of this
    // worker's rows (every third of the lease) until the runner ends.
    let watcher = {
        let (store, scope, id, halt, poll) = (
            ctx.store.clone(),
            ctx.scope,
            ctx.batch_id,
            halt.clone(),
            cfg.poll,
        );
        let mut stop = ctx.stop.clone();
        let events = ctx.events.clone();
        let (claims, lease) = (claims.clone(), cfg.lease);
        tokio::spawn(async move {
            let renew_every = (lease / 3).max(poll);
            let mut renewed = Instant::now();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = stop.changed() => {}
                }
                if renewed.elapsed() >= renew_every {
                    let tokens: Vec<String> = claims
                        .lock()
                        .map(|c| c.keys().cloned().collect())
                        .unwrap_or_default();
                    match store.renew_leases(id, &tokens, lease).await {
                        Ok(_) => renewed = Instant::now(),
                        Err(e) => tracing::warn!(batch_id = id, error = %e, "cannot renew leases"),
                    }
                }
                if halt.load(Ordering::SeqCst) {
                    continue;
                }
                if *stop.borrow() {
                    halt.store(true, Ordering::SeqCst);
                    continue;
                }
                if let Ok(b) = store.get_batch(scope, id).await
                    && let Ok(status) = b.batch_status()
                    && status != BatchStatus::Running
                {
                    // Stopped from outside (operator, another worker): tell the watchers.
                    if !halt.swap(true, Ordering::SeqCst) {
                        let _ = events.send(EngineEvent::StatusChanged {
                            batch_id: id,
                            status,
                            reason: b.status_reason.clone(),
                        });
                    }
                }
            }
        })
    };
    let mut sender_tasks = Vec::new();
    for _ in 0..senders {
        sender_tasks.push(tokio::spawn(sender_loop(
            job_rx.clone(),
            res_tx.clone(),
            prepared.clone(),
            transport.clone(),
            cfg.clone(),
            halt.clone(),
            limiter.clone(),
            fatal.clone(),
        )));
    }
    drop(res_tx);
    let writer = tokio::spawn(writer_loop(
        WriterCtx {
            store: ctx.store.clone(),
            scope: ctx.scope,
            batch_id: ctx.batch_id,
            config: cfg.clone(),
            events: ctx.events.clone(),
            halt: halt.clone(),
            in_flight: in_flight.clone(),
            fatal: fatal.clone(),
            stop: ctx.stop.clone(),
            claims: claims.clone(),
        },
        res_rx,
    ));

    let mut seq: u64 = 0;
    // Claims go on from the last id claimed (see `Store::claim_limited`), from the start
    // again when a claim comes back short and every CURSOR_RESTART, so that retries whose
    // time has come are not left behind the cursor for long.
    let mut cursor: i32 = 0;
    let mut cursor_since = Instant::now();
    let result = loop {
        if *ctx.stop.borrow() || halt.load(Ordering::SeqCst) {
            break Ok(());
        }
        // Waiting for room in flight costs no query (this loop turns every 5 ms).
        if in_flight.load(Ordering::SeqCst) >= chunk * 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let batch = match ctx.store.get_batch(ctx.scope, ctx.batch_id).await {
            Ok(b) => b,
            Err(e) => break Err(e),
        };
        if batch.batch_status() != Ok(BatchStatus::Running) {
            // Stopped from outside and seen here before the status watcher saw it: report it
            // (once; the watcher checks the same flag), or the watchers never hear of it.
            if let Ok(status @ (BatchStatus::Paused | BatchStatus::Cancelled)) =
                batch.batch_status()
                && !halt.swap(true, Ordering::SeqCst)
            {
                let _ = ctx.events.send(EngineEvent::StatusChanged {
                    batch_id: ctx.batch_id,
                    status,
                    reason: batch.status_reason.clone(),
                });
            }
            break Ok(());
        }
        if cursor_since.elapsed() >= CURSOR_RESTART {
            cursor = 0;
            cursor_since = Instant::now();
        }
        seq += 1;
        let token = format!("{}#{seq}", cfg.worker_id);
        let claim = ctx
            .store
            .claim_limited(
                ctx.scope,
                ctx.batch_id,
                &token,
                chunk,
                cfg.lease,
                per_hour,
                cursor,
            )
            .await;
        match claim {
            Err(e) => break Err(e),
            Ok(Claim::QuotaExhausted) => {
                if in_flight.load(Ordering::SeqCst) > 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                match ctx.store.queue_counts(ctx.scope, ctx.batch_id).await {
                    Ok(c) if c.open() > 0 => {
                        if let Err(e) = pause(ctx, "monthly quota exhausted").await {
                            break Err(e);
                        }
                        break Ok(());
                    }
                    Ok(_) => {
                        if let Err(e) = complete(ctx).await {
                            break Err(e);
                        }
                        break Ok(());
                    }
                    Err(e) => break Err(e),
                }
            }
            Ok(Claim::Rows { rows, .. }) if rows.is_empty() && cursor > 0 => {
                // Nothing after the cursor: look again from the start before waiting.
                cursor = 0;
                cursor_since = Instant::now();
            }
            Ok(Claim::Rows { rows, .. }) if rows.is_empty() => {
                if in_flight.load(Ordering::SeqCst) > 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                match ctx.store.queue_counts(ctx.scope, ctx.batch_id).await {
                    Ok(c) if c.open() == 0 => {
                        if let Err(e) = complete(ctx).await {
                            break Err(e);
                        }
                        break Ok(());
                    }
                    Ok(_) => {
                        let mut stop = ctx.stop.clone();
                        tokio::select! {
                            _ = tokio::time::sleep(cfg.poll) => {}
                            _ = stop.changed() => {}
                        }
                    }
                    Err(e) => break Err(e),
                }
            }
            Ok(Claim::Rows { token, rows }) => {
                cursor = if i64::try_from(rows.len()).unwrap_or(0) < chunk {
                    0
                } else {
                    rows.iter().map(|r| r.id).max().unwrap_or(0)
                };
                in_flight.fetch_add(i64::try_from(rows.len()).unwrap_or(0), Ordering::SeqCst);
                if let Ok(mut c) = claims.lock() {
                    c.insert(token.clone(), rows.len());
                }
                for r in rows {
                    let job = Job {
                        id: r.id,
                        token: token.clone(),
                        email: r.recipient_email,
                        name: r.recipient_name,
                        variables: r.variables.map(|j| j.0),
                        attempts: r.attempts,
                    };
                    if job_tx.send(job).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    // Whatever is still queued is given back untried; in-flight sends finish.
    halt.store(true, Ordering::SeqCst);
    drop(job_tx);
    for t in sender_tasks {
        let _ = t.await;
    }
    let _ = writer.await;
    watcher.abort();
    let reason = fatal.lock().ok().and_then(|mut f| f.take());
    if let Some(reason) = reason {
        pause(ctx, &reason).await?;
    }
    result
}

/// How long claims may go on from the last id claimed before starting from the beginning
/// of the batch again (where retries that have come due wait).
const CURSOR_RESTART: Duration = Duration::from_secs(10);

/// A simple per-second limit shared by the connections of one batch: messages start at
/// least `1/rate` seconds apart.
struct Limiter {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Limiter {
    fn new(rate_per_second: Option<u32>) -> Limiter {
        Limiter {
            interval: rate_per_second.map(|r| Duration::from_secs(1) / r),
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let at = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let at = (*next).max(now);
            *next = at + interval;
            at
        };
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
    }
}

async fn complete(ctx: &Ctx) -> Result<(), DbError> {
    match ctx
        .store
        .transition_batch(ctx.scope, ctx.batch_id, BatchStatus::Completed, None)
        .await
    {
        Ok(b) => {
            let _ = ctx.events.send(EngineEvent::Progress {
                batch_id: ctx.batch_id,
                sent: b.sent_count,
                failed: b.failed_count,
                open: 0,
            });
            let _ = ctx.events.send(EngineEvent::StatusChanged {
                batch_id: ctx.batch_id,
                status: BatchStatus::Completed,
                reason: None,
            });
            Ok(())
        }
        Err(DbError::Conflict(_) | DbError::Invalid(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The unsubscribe addresses of one recipient: `from+unsubscribe-TOKEN@domain` and, with a
/// public base URL, `BASE/u/TOKEN` (RFC 8058 one-click).
fn unsubscribe_for(prep: &Prepared, job: &Job) -> Unsubscribe {
    let Some(key) = &prep.token_key else {
        return prep.unsubscribe.clone();
    };
    let token = key.sign(job.id, &job.email);
    Unsubscribe {
        mailto: crate::bounces::token::mailto_address(&prep.unsubscribe.mailto, &token),
        https_url: prep
            .public_base_url
            .as_deref()
            .map(|base| crate::bounces::token::https_url(base, &token)),
    }
}

fn build(prep: &Prepared, job: &Job) -> Result<crate::mail::Message, String> {
    let unsubscribe = unsubscribe_for(prep, job);
    let recipient = Recipient {
        email: job.email.clone(),
        name: job.name.clone(),
        variables: job.variables.clone(),
    };
    let rendered = prep
        .renderer
        .render(
            &recipient,
            prep.batch_vars.as_ref(),
            &prep.tenant,
            &unsubscribe.url_for_template(),
        )
        .map_err(|e| e.to_string())?;
    let parts = MessageParts {
        from_email: &prep.from_email,
        from_name: prep.from_name.as_deref(),
        to_email: &job.email,
        to_name: job.name.as_deref(),
        reply_to: prep.reply_to.as_deref(),
        unsubscribe: &unsubscribe,
    };
    let mut message = build_message(&parts, &rendered).map_err(|e| e.to_string())?;
    if let Some(signer) = &prep.dkim {
        signer.sign(&mut message);
    }
    Ok(message)
}

/// A temporary failure: retried after the configured backoff, failed when retries are
/// used up.
fn retry_or_fail(
    cfg: &EngineConfig,
    job: &Job,
    error: String,
    response: Option<String>,
) -> Outcome {
    let used = usize::try_from(job.attempts.max(1)).unwrap_or(1);
    match cfg.backoff.get(used - 1) {
        Some(delay) => Outcome::Retry {
            error,
            smtp_response: response,
            next_attempt_at: crate::db::now()
                + chrono::Duration::from_std(*delay).unwrap_or(chrono::Duration::seconds(30)),
        },
        None => Outcome::Failed {
            error: format!("gave up after {} attempts: {error}", job.attempts),
            smtp_response: response,
            message_id: None,
        },
    }
}

/// Connection errors that retrying cannot fix: TLS handshake or STARTTLS failures, a login
/// the server refuses (5xx to AUTH), a username without a password. A refused or timed-out
/// TCP connection, a 4xx greeting and the like are temporary.
fn connect_error_is_fatal(e: &crate::mail::MailError) -> bool {
    use crate::mail::MailError;
    match e {
        MailError::Tls(_) | MailError::Secret(_) => true,
        MailError::Smtp(m) => {
            let permanent_auth = m.starts_with("AUTH") && !m.contains("timed out") && {
                // "AUTH: permanent error (535): ..." from the SMTP client.
                m.contains("permanent") || m.contains(" 5")
            };
            let tls = (m.starts_with("TLS handshake") || m.starts_with("STARTTLS"))
                && !m.contains("timed out");
            permanent_auth || tls || m.contains("there is no password")
        }
        _ => false,
    }
}

/// The server's words of an SMTP error: `550 5.1.1 <x>: user unknown`.
fn server_words(e: &SendError) -> Option<String> {
    let code = e.code?;
    let text = e
        .message
        .split_once("): ")
        .map(|(_, t)| t)
        .unwrap_or(&e.message);
    Some(format!("{code} {}", text.trim()))
}

fn classify(cfg: &EngineConfig, job: &Job, e: &SendError, mid: Option<String>) -> Outcome {
    let words = server_words(e);
    match e.code {
        Some(code) if (500..600).contains(&code) => {
            // The error does not say which command failed; mailbox codes (550/551/553 and
            // enhanced 5.1.x) are what servers answer to RCPT TO.
            let at_rcpt = matches!(code, 550 | 551 | 553) || e.message.contains(" 5.1.");
            if at_rcpt {
                Outcome::Rejected {
                    error: format!("recipient refused: {}", e.message),
                    smtp_response: words,
                    message_id: mid,
                }
            } else {
                Outcome::Failed {
                    error: format!("refused by the server: {}", e.message),
                    smtp_response: words,
                    message_id: mid,
                }
            }
        }
        _ => retry_or_fail(cfg, job, format!("temporary failure: {}", e.message), words),
    }
}

/// A message whose envelope the server accepted, its body held in the connection.
struct InFlight {
    job: Job,
    mid: Option<String>,
}

/// The outcome of an SMTP reply to a whole message.
fn outcome_of(
    cfg: &EngineConfig,
    job: &Job,
    mid: Option<String>,
    reply: Result<lettre::transport::smtp::response::Response, SendError>,
) -> Outcome {
    match reply {
        Ok(resp) => Outcome::Sent {
            smtp_response: describe_response(&resp),
            message_id: mid,
        },
        Err(e) => classify(cfg, job, &e, mid),
    }
}

/// The reply of a held message whose connection went before it could be read.
fn connection_lost() -> SendError {
    SendError {
        code: None,
        permanent: false,
        message: "connection lost".into(),
    }
}

fn report(results: &mpsc::UnboundedSender<RowResult>, job: Job, outcome: Outcome) {
    let _ = results.send(RowResult {
        id: job.id,
        token: job.token,
        outcome,
    });
}

/// Sends the held body of `started` alone and reports it; a lost connection is dropped.
async fn finish_started(
    conn: &mut Option<crate::mail::SmtpConnection>,
    started: &mut Option<InFlight>,
    cfg: &EngineConfig,
    results: &mpsc::UnboundedSender<RowResult>,
) {
    let Some(s) = started.take() else { return };
    let reply = match conn.as_mut() {
        Some(c) => c.finish().await,
        None => None,
    };
    let reply = reply.unwrap_or_else(|| Err(connection_lost()));
    if conn.as_ref().is_some_and(|c| c.is_broken()) {
        *conn = None;
    }
    let outcome = outcome_of(cfg, &s.job, s.mid, reply);
    report(results, s.job, outcome);
}

// One argument per shared piece of the runner; bundling them would only rename them.
#[allow(clippy::too_many_arguments)]
async fn sender_loop(
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    results: mpsc::UnboundedSender<RowResult>,
    prep: Arc<Prepared>,
    transport: Arc<Transport>,
    cfg: Arc<EngineConfig>,
    halt: Arc<AtomicBool>,
    limiter: Arc<Limiter>,
    fatal: Arc<std::sync::Mutex<Option<String>>>,
) {
    let mut conn: Option<crate::mail::SmtpConnection> = None;
    let mut connect_failures: u32 = 0;
    // The message whose body waits in the connection: it goes out with the next envelope,
    // or alone as soon as no next job is ready (a message never waits for the queue).
    let mut started: Option<InFlight> = None;
    loop {
        let job = if started.is_some() {
            // A sender holding the queue waits for work: none is ready.
            let next = jobs.try_lock().ok().and_then(|mut j| j.try_recv().ok());
            if next.is_none() {
                finish_started(&mut conn, &mut started, &cfg, &results).await;
                continue;
            }
            next
        } else {
            jobs.lock().await.recv().await
        };
        let Some(job) = job else { break };
        if halt.load(Ordering::SeqCst) {
            finish_started(&mut conn, &mut started, &cfg, &results).await;
            report(&results, job, Outcome::Released);
            continue;
        }
        let msg = match build(&prep, &job) {
            Ok(msg) => msg,
            Err(e) => {
                let outcome = Outcome::Failed {
                    error: format!("cannot build the message: {e}"),
                    smtp_response: None,
                    message_id: None,
                };
                report(&results, job, outcome);
                continue;
            }
        };
        let mid = Some(msg.message_id().to_string());
        let (server, password) = match transport.as_ref() {
            Transport::Outbox(dir) => {
                let outcome = match crate::mail::write_outbox(dir, &msg) {
                    Ok(path) => Outcome::Sent {
                        smtp_response: format!("written to {}", path.display()),
                        message_id: mid,
                    },
                    Err(e) => retry_or_fail(&cfg, &job, e.to_string(), None),
                };
                report(&results, job, outcome);
                continue;
            }
            Transport::Smtp { server, password } => (server, password),
        };
        if conn.is_none() {
            if connect_failures > 0 {
                let backoff = 50u64 << connect_failures.min(6);
                tokio::time::sleep(Duration::from_millis(backoff)).await;
            }
            match crate::mail::connect(server, password.as_ref(), cfg.smtp_timeout).await {
                Ok((c, _)) => {
                    connect_failures = 0;
                    conn = Some(c);
                }
                Err(e) if connect_error_is_fatal(&e) => {
                    // Not the recipient's fault and no retry will help: pause the batch,
                    // give the job back untried.
                    let reason = format!(
                        "paused: cannot send through {}:{}: {e}",
                        server.host, server.port
                    );
                    if let Ok(mut f) = fatal.lock() {
                        f.get_or_insert(reason);
                    }
                    halt.store(true, Ordering::SeqCst);
                    report(&results, job, Outcome::Released);
                    continue;
                }
                Err(e) => {
                    connect_failures += 1;
                    let outcome = retry_or_fail(&cfg, &job, e.to_string(), None);
                    report(&results, job, outcome);
                    continue;
                }
            }
        }
        if limiter.interval.is_some() {
            // Rate-limited: a held body would wait out the interval with the server
            // waiting for it. Pipelining across messages only pays at full speed anyway.
            finish_started(&mut conn, &mut started, &cfg, &results).await;
        }
        limiter.wait().await;
        let Some(c) = conn.as_mut() else {
            report(&results, job, Outcome::Released);
            continue;
        };
        let begun = c.start(&msg).await;
        if let Some(prev) = started.take() {
            let reply = begun.previous.unwrap_or_else(|| Err(connection_lost()));
            let outcome = outcome_of(&cfg, &prev.job, prev.mid, reply);
            report(&results, prev.job, outcome);
        }
        let outcome = match begun.this {
            Ok(()) => {
                started = Some(InFlight { job, mid });
                continue;
            }
            // The connection went before this envelope was answered: not attempted.
            Err(None) => Outcome::Released,
            Err(Some(e)) => {
                // After a refusal the session said RSET and goes on; a failure without a
                // reply replaces it (a broken one is replaced below).
                if e.code.is_none() {
                    conn = None;
                }
                classify(&cfg, &job, &e, mid)
            }
        };
        // Lost, timed out, out of step or closing (421).
        if conn.as_ref().is_some_and(|c| c.is_broken()) {
            conn = None;
        }
        report(&results, job, outcome);
    }
    finish_started(&mut conn, &mut started, &cfg, &results).await;
    if let Some(c) = conn {
        let _ = c.quit().await;
    }
}

struct WriterCtx {
    store: Store,
    scope: TenantScope,
    batch_id: i32,
    config: Arc<EngineConfig>,
    events: broadcast::Sender<EngineEvent>,
    halt: Arc<AtomicBool>,
    in_flight: Arc<AtomicI64>,
    fatal: Arc<std::sync::Mutex<Option<String>>>,
    stop: watch::Receiver<bool>,
    claims: Claims,
}

/// Claims of a runner with rows not yet written: token -> rows outstanding.
type Claims = Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>;

const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// How often progress counts the batch's open rows again (other workers close rows too).
const RECOUNT_EVERY: Duration = Duration::from_secs(2);

async fn writer_loop(w: WriterCtx, mut rx: mpsc::UnboundedReceiver<RowResult>) {
    let mut buf: Vec<RowResult> = Vec::new();
    let mut consecutive: u32 = 0;
    let mut last_progress: Option<Instant> = None;
    let mut write_failures: u32 = 0;
    let mut open = true;
    // The batch's open rows as last counted, when, and the rows this writer closed since.
    let mut open_rows: Option<(i64, Instant, i64)> = None;
    while open || !buf.is_empty() {
        if open {
            let deadline = tokio::time::sleep(w.config.flush_interval);
            tokio::pin!(deadline);
            while buf.len() < w.config.flush_every {
                tokio::select! {
                    r = rx.recv() => match r {
                        Some(r) => buf.push(r),
                        None => { open = false; break; }
                    },
                    _ = &mut deadline => break,
                }
            }
        }
        if buf.is_empty() {
            continue;
        }
        match w.store.write_results(w.scope, w.batch_id, &buf).await {
            Ok(c) => {
                write_failures = 0;
                if let Some((_, _, done)) = open_rows.as_mut() {
                    *done += c.sent + c.failed;
                }
            }
            Err(e) => {
                write_failures += 1;
                let message = e.describe();
                tracing::error!(batch_id = w.batch_id, error = %message, "cannot write results; retrying");
                if write_failures == 1 || write_failures.is_multiple_of(25) {
                    let _ = w.events.send(EngineEvent::Error {
                        batch_id: w.batch_id,
                        message: format!("cannot record results: {message}"),
                    });
                }
                if !e.is_transient() && write_failures == 1 {
                    // Disk full, a constraint, a trigger: no new sends until someone looks.
                    // The results stay in memory and are written as soon as the database
                    // takes them again.
                    let reason = format!("paused: cannot record results: {e}");
                    w.halt.store(true, Ordering::SeqCst);
                    let _ = w
                        .store
                        .transition_batch(w.scope, w.batch_id, BatchStatus::Paused, Some(&reason))
                        .await;
                    if let Ok(mut f) = w.fatal.lock() {
                        f.get_or_insert(reason);
                    }
                }
                // Shutting down with a database that keeps refusing: give up after a few
                // more tries; the rows stay leased and come back after the lease (their
                // messages may then go out again: the documented in-flight bound).
                if *w.stop.borrow() && write_failures > 25 {
                    tracing::error!(
                        batch_id = w.batch_id,
                        rows = buf.len(),
                        "results not recorded"
                    );
                    return;
                }
                let backoff = 100u64 << write_failures.min(4);
                tokio::time::sleep(Duration::from_millis(backoff)).await;
                continue;
            }
        }
        if let Ok(mut c) = w.claims.lock() {
            for r in &buf {
                if let Some(n) = c.get_mut(&r.token) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        c.remove(&r.token);
                    }
                }
            }
        }
        let mut last_error = None;
        for r in &buf {
            match &r.outcome {
                Outcome::Sent { .. } => consecutive = 0,
                Outcome::Released => {}
                Outcome::Rejected { error, .. }
                | Outcome::Failed { error, .. }
                | Outcome::Retry { error, .. } => {
                    consecutive += 1;
                    last_error = Some(error.clone());
                }
            }
        }
        w.in_flight
            .fetch_sub(i64::try_from(buf.len()).unwrap_or(0), Ordering::SeqCst);
        buf.clear();
        if consecutive >= w.config.max_consecutive_failures && w.config.max_consecutive_failures > 0
        {
            let reason = format!(
                "auto-paused after {consecutive} consecutive failures (last: {})",
                last_error.unwrap_or_default()
            );
            consecutive = 0;
            w.halt.store(true, Ordering::SeqCst);
            match w
                .store
                .transition_batch(w.scope, w.batch_id, BatchStatus::Paused, Some(&reason))
                .await
            {
                Ok(_) => {
                    let _ = w.events.send(EngineEvent::StatusChanged {
                        batch_id: w.batch_id,
                        status: BatchStatus::Paused,
                        reason: Some(reason),
                    });
                }
                Err(e) => tracing::warn!(batch_id = w.batch_id, error = %e, "auto-pause refused"),
            }
        }
        let due = last_progress.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
        if (due || !open) && w.events.receiver_count() > 0 {
            last_progress = Some(Instant::now());
            // Counting the queue reads every row of the batch: it runs every RECOUNT_EVERY
            // (and at the end); in between, the rows this writer closed are subtracted.
            let stale = open_rows.is_none_or(|(_, at, _)| at.elapsed() >= RECOUNT_EVERY);
            if stale || !open {
                match w.store.queue_counts(w.scope, w.batch_id).await {
                    Ok(c) => open_rows = Some((c.open(), Instant::now(), 0)),
                    Err(e) => {
                        tracing::warn!(batch_id = w.batch_id, error = %e, "cannot count the queue")
                    }
                }
            }
            if let (Ok(b), Some((counted_open, _, done))) =
                (w.store.get_batch(w.scope, w.batch_id).await, open_rows)
            {
                let _ = w.events.send(EngineEvent::Progress {
                    batch_id: w.batch_id,
                    sent: b.sent_count,
                    failed: b.failed_count,
                    open: (counted_open - done).max(0),
                });
            }
        }
    }
}
