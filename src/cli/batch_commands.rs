//! `batch` and `worker`: batches are created per tenant; every other batch command takes
//! the batch's global id and finds its tenant itself (the shell acts as the system actor).
//! `--tenant`, when given, must match the batch's tenant.

use serde::Serialize;

use super::args::{BatchCommand, BatchRef, WorkerArgs};
use super::commands::{open, tenant_by_domain};
use super::output::{print_json, print_table};
use super::{CliError, CliResult};
use crate::config::Config;
use crate::db::{Batch, NewBatch, Page, QueueCounts, Store, TenantScope};
use crate::engine::{Engine, EngineConfig, EngineEvent};

async fn scope_of(store: &Store, id: i32, tenant: Option<&str>) -> CliResult<TenantScope> {
    let scope = store.batch_scope(&super::acting::actor(), id).await?;
    if let Some(domain) = tenant {
        let t = tenant_by_domain(store, domain).await?;
        if t.id != scope.tenant_id() {
            return Err(CliError::failed(format!(
                "batch #{id} does not belong to tenant {domain}"
            )));
        }
    }
    Ok(scope)
}

#[derive(Serialize)]
struct BatchView<'a> {
    #[serde(flatten)]
    batch: &'a Batch,
    queue: QueueCounts,
    bounces: crate::db::BounceCounts,
    /// Cancelled batches only: recipients that were never sent and never will be (their
    /// rows stay `pending` in logs_emaillog; the engine never claims rows of a cancelled
    /// batch).
    #[serde(skip_serializing_if = "Option::is_none")]
    unsent: Option<i64>,
}

fn unsent(b: &Batch, q: &QueueCounts) -> Option<i64> {
    (b.status == "cancelled").then_some(q.pending + q.sending)
}

fn print_batch(b: &Batch, q: &QueueCounts, bc: &crate::db::BounceCounts) {
    println!("batch #{} '{}' ({})", b.id, b.name, b.status);
    if let Some(r) = &b.status_reason {
        println!("reason: {r}");
    }
    if let Some(s) = b.scheduled_at {
        println!("scheduled: {s}");
    }
    println!(
        "sent {}  failed {}  pending {}  sending {}  (failed {} rejected {} bounced {})",
        b.sent_count, b.failed_count, q.pending, q.sending, q.failed, q.rejected, q.bounced
    );
    println!(
        "bounces: {} hard  {} soft  unsubscribed {}",
        bc.hard_bounced, bc.soft_bounced, bc.unsubscribed
    );
    if let Some(n) = unsent(b, q) {
        println!("unsent {n} (cancelled: never sent, will not be sent)");
    }
}

pub async fn batch_command(config: &Config, cmd: BatchCommand) -> CliResult<u8> {
    let store = open(config).await?;
    match cmd {
        BatchCommand::Create {
            tenant,
            name,
            template,
            groups,
            vars,
            schedule,
        } => {
            let t = tenant_by_domain(&store, &tenant).await?;
            let scope = super::acting::actor().tenant_scope(t.id)?;
            let template = store.find_template(scope, &template).await?;
            let mut group_ids = Vec::new();
            for g in &groups {
                group_ids.push(store.find_group(scope, g).await?.id);
            }
            let scheduled_at = schedule
                .as_deref()
                .map(|s| {
                    chrono::DateTime::parse_from_rfc3339(s.trim())
                        .map(|d| d.naive_utc())
                        .map_err(|e| CliError::usage(format!("--schedule '{s}': {e}")))
                })
                .transpose()?;
            let batch = store
                .create_batch(
                    scope,
                    &NewBatch {
                        name,
                        template_id: template.id,
                        group_ids,
                        variables: super::contacts::parse_vars(&vars)?,
                        scheduled_at,
                    },
                )
                .await?;
            println!("{}", batch.id);
            Ok(0)
        }
        BatchCommand::Start(r) => {
            let scope = scope_of(&store, r.id, r.tenant.as_deref()).await?;
            let (b, queued) = store.start_batch(scope, r.id).await?;
            println!("batch #{} running: {queued} recipients queued", b.id);
            Ok(0)
        }
        BatchCommand::Pause(r) => {
            simple(&store, r, "paused", |s, sc, id| {
                Box::pin(async move { s.pause_batch(sc, id, Some("paused by operator")).await })
            })
            .await
        }
        BatchCommand::Resume(r) => {
            simple(&store, r, "running", |s, sc, id| {
                Box::pin(async move { s.resume_batch(sc, id).await })
            })
            .await
        }
        BatchCommand::Cancel(r) => {
            simple(&store, r, "cancelled", |s, sc, id| {
                Box::pin(async move { s.cancel_batch(sc, id).await })
            })
            .await
        }
        BatchCommand::RetryFailed(r) => {
            let scope = scope_of(&store, r.id, r.tenant.as_deref()).await?;
            let (b, n) = store.retry_failed(scope, r.id).await?;
            println!("batch #{} {}: {n} recipients queued again", b.id, b.status);
            Ok(0)
        }
        BatchCommand::List { tenant, json } => {
            let t = tenant_by_domain(&store, &tenant).await?;
            let scope = super::acting::actor().tenant_scope(t.id)?;
            let mut all = Vec::new();
            let mut page = Page::first(500);
            loop {
                let rows = store.list_batches(scope, page, None).await?;
                let Some(last) = rows.last().map(|b| b.id) else {
                    break;
                };
                let n = rows.len();
                all.extend(rows);
                if n < 500 {
                    break;
                }
                page = Page::after(last, 500);
            }
            if json {
                print_json(&all);
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|b| {
                        vec![
                            b.id.to_string(),
                            b.name.clone(),
                            b.status.clone(),
                            b.sent_count.to_string(),
                            b.failed_count.to_string(),
                            b.scheduled_at.map(|s| s.to_string()).unwrap_or_default(),
                        ]
                    })
                    .collect();
                print_table(
                    &["ID", "NAME", "STATUS", "SENT", "FAILED", "SCHEDULED"],
                    &rows,
                );
            }
            Ok(0)
        }
        BatchCommand::Check { id, tenant, json } => {
            let scope = scope_of(&store, id, tenant.as_deref()).await?;
            let review = crate::engine::review::review_batch(&store, scope, id).await?;
            // Pre-flight adds what the review does not look at: tenant, transport, DKIM,
            // message size, text part and List-Unsubscribe (#11 item 4).
            let opts = crate::engine::preflight::PreflightOptions {
                config_dir: Some(config.config_dir.clone()),
                ..Default::default()
            };
            let pre = crate::engine::preflight::preflight(&store, scope, id, &opts).await?;
            let extra = crate::engine::preflight::beyond_review(pre.checks);
            let blocks = review.blocks()
                || extra
                    .iter()
                    .any(|c| c.severity == crate::engine::preflight::Severity::Blocking);
            if json {
                #[derive(Serialize)]
                struct CheckView<'a> {
                    #[serde(flatten)]
                    review: &'a crate::engine::review::Review,
                    preflight: &'a [crate::engine::preflight::Check],
                }
                print_json(&CheckView {
                    review: &review,
                    preflight: &extra,
                });
            } else {
                for f in &review.findings {
                    println!("{f}");
                }
                for c in &extra {
                    println!("{}", crate::engine::review::Finding::from(c));
                }
            }
            Ok(if blocks { 1 } else { 0 })
        }
        BatchCommand::Show { id, tenant, json } => {
            let scope = scope_of(&store, id, tenant.as_deref()).await?;
            let b = store.get_batch(scope, id).await?;
            let q = store.queue_counts(scope, id).await?;
            let bc = store.bounce_counts_for_batch(scope, id).await?;
            if json {
                print_json(&BatchView {
                    batch: &b,
                    queue: q,
                    bounces: bc,
                    unsent: unsent(&b, &q),
                });
            } else {
                print_batch(&b, &q, &bc);
            }
            Ok(0)
        }
    }
}

type StoreFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = crate::db::DbResult<Batch>> + Send + 'a>>;

async fn simple(
    store: &Store,
    r: BatchRef,
    what: &str,
    f: impl for<'a> FnOnce(&'a Store, TenantScope, i32) -> StoreFuture<'a>,
) -> CliResult<u8> {
    let scope = scope_of(store, r.id, r.tenant.as_deref()).await?;
    let b = f(store, scope, r.id).await?;
    println!("batch #{} {what}", b.id);
    Ok(0)
}

/// The headless engine. Stops on SIGINT/SIGTERM after in-flight messages are recorded.
pub async fn worker(config: &Config, args: WorkerArgs) -> CliResult<u8> {
    let store = open(config).await?;
    let engine = Engine::new(
        store,
        EngineConfig {
            chunk: args.chunk.max(1),
            lease: std::time::Duration::from_secs(args.lease),
            config_dir: Some(config.config_dir.clone()),
            public_base_url: config
                .file
                .unsubscribe
                .as_ref()
                .and_then(|u| u.base_url.clone()),
            ..EngineConfig::default()
        },
    );
    // Operators see why a batch stopped or what the engine waits for, one line each.
    let mut events = engine.subscribe();
    tokio::spawn(async move {
        let mut last = String::new();
        loop {
            let line = match events.recv().await {
                Ok(EngineEvent::Error {
                    batch_id: 0,
                    message,
                }) => format!("worker: {message}"),
                Ok(EngineEvent::Error { batch_id, message }) => {
                    format!("batch #{batch_id}: {message}")
                }
                Ok(EngineEvent::StatusChanged {
                    batch_id,
                    status,
                    reason: Some(reason),
                }) => format!("batch #{batch_id} {}: {reason}", status.as_str()),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            if line != last {
                eprintln!("{line}");
                last = line;
            }
        }
    });
    let stop_rx = super::stop_on_signal();
    if !args.once {
        eprintln!(
            "recalliq worker {} running; Ctrl-C to stop",
            engine.config().worker_id
        );
    }
    engine.run(stop_rx, args.once).await?;
    Ok(0)
}
