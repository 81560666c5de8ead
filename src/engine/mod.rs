//! The sending engine. `logs_emaillog` is the durable queue (see `materialize`); an
//! `Engine` polls for running batches and gives each one a runner (`runner`): a claimer that
//! leases chunks of due rows (reserving monthly quota), a pool of sender tasks (one SMTP
//! connection each, or the outbox) and a writer that records results in batched
//! transactions. Any number of engines may share one Postgres database.

pub mod materialize;
pub mod preflight;
pub mod review;
mod runner;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::db::{Actor, DbResult, Store};
use crate::domain::BatchStatus;

/// Tunables of an engine. Tests shrink the durations to milliseconds.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Names this worker in leases (`lease_owner`).
    pub worker_id: String,
    /// Rows claimed per claim.
    pub chunk: i64,
    /// How long a claim is leased; rows of a crashed worker return to pending after it. A
    /// live worker renews its leases every third of this, so it bounds crash recovery time,
    /// not how long a send may take.
    pub lease: Duration,
    /// How often idle runners and the engine look for work and for pause/cancel.
    pub poll: Duration,
    /// Delay before the 1st, 2nd, ... retry of a temporary failure; after the last one
    /// the row fails.
    pub backoff: Vec<Duration>,
    /// Consecutive failed sends that pause a batch.
    pub max_consecutive_failures: u32,
    /// SMTP command timeout.
    pub smtp_timeout: Duration,
    /// Where the secret key lives (SMTP passwords).
    pub config_dir: Option<PathBuf>,
    /// Results written per transaction, at most.
    pub flush_every: usize,
    /// Longest time a result waits to be written.
    pub flush_interval: Duration,
    /// `https://...` base of the one-click unsubscribe endpoint (`recalliq unsubscribe
    /// serve` behind a TLS proxy); messages then carry `BASE/u/TOKEN` and
    /// List-Unsubscribe-Post.
    pub public_base_url: Option<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_string());
        EngineConfig {
            worker_id: format!(
                "{host}:{}:{:08x}",
                std::process::id(),
                rand::random::<u32>()
            ),
            chunk: 50,
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(250),
            backoff: vec![
                Duration::from_secs(30),
                Duration::from_secs(120),
                Duration::from_secs(600),
            ],
            max_consecutive_failures: 50,
            smtp_timeout: crate::mail::smtp::DEFAULT_TIMEOUT,
            config_dir: None,
            flush_every: 250,
            flush_interval: Duration::from_millis(50),
            public_base_url: None,
        }
    }
}

/// What the engine tells its watchers (the TUI). Progress is coalesced: at most a few
/// events per second per batch.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// A scheduled batch was started by the engine; `queued` rows were materialized.
    BatchStarted { batch_id: i32, queued: u64 },
    /// Counts after a write: `open` = pending + sending rows.
    Progress {
        batch_id: i32,
        sent: i32,
        failed: i32,
        open: i64,
    },
    /// The engine moved a batch (completed, auto-paused, quota pause).
    StatusChanged {
        batch_id: i32,
        status: BatchStatus,
        reason: Option<String>,
    },
    /// A runner stopped on an error, or the engine waits for the database (`batch_id` 0:
    /// not about one batch); the engine retries on its next poll.
    Error { batch_id: i32, message: String },
}

/// The headless engine.
#[derive(Clone)]
pub struct Engine {
    store: Store,
    config: Arc<EngineConfig>,
    events: broadcast::Sender<EngineEvent>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("worker_id", &self.config.worker_id)
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(store: Store, config: EngineConfig) -> Engine {
        let (events, _) = broadcast::channel(1024);
        Engine {
            store,
            config: Arc::new(config),
            events,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// One housekeeping pass: starts scheduled batches that are due and returns rows of
    /// expired leases to pending.
    pub async fn housekeeping(&self) -> DbResult<()> {
        let actor = Actor::system();
        for (batch_id, tenant_id) in self.store.due_scheduled_batches().await? {
            let scope = actor.tenant_scope(tenant_id)?;
            match self.store.start_batch(scope, batch_id).await {
                Ok((_, queued)) => {
                    let _ = self
                        .events
                        .send(EngineEvent::BatchStarted { batch_id, queued });
                }
                // Another worker (or an operator) got there first.
                Err(crate::db::DbError::Conflict(_) | crate::db::DbError::Invalid(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let n = self.store.requeue_expired_leases().await?;
        if n > 0 {
            tracing::warn!(rows = n, "expired leases returned to pending");
        }
        Ok(())
    }

    /// Runs until `stop` becomes true, or with `once` until no batch is running (scheduled
    /// batches that are due are started first). Runners finish their in-flight messages
    /// before this returns.
    pub async fn run(&self, mut stop: watch::Receiver<bool>, once: bool) -> DbResult<()> {
        let (runner_stop_tx, runner_stop) = watch::channel(false);
        // Postgres: wake as soon as a batch changes (started, resumed, scheduled) instead of
        // at the next poll. Polling stays: for SQLite, for scheduled times, after errors.
        let mut listener = match self.store.batch_listener().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for batch changes; polling only");
                None
            }
        };
        let mut runners: HashMap<i32, JoinHandle<()>> = HashMap::new();
        let result = loop {
            if *stop.borrow() {
                break Ok(());
            }
            if let Err(e) = self.housekeeping().await {
                if once && !e.is_transient() {
                    break Err(e);
                }
                tracing::error!(error = %e.describe(), "engine housekeeping failed");
                let _ = self.events.send(EngineEvent::Error {
                    batch_id: 0,
                    message: e.describe(),
                });
            }
            runners.retain(|_, h| !h.is_finished());
            let running = match self.store.running_batches().await {
                Ok(r) => r,
                Err(e) => {
                    if once && !e.is_transient() {
                        break Err(e);
                    }
                    tracing::error!(error = %e.describe(), "cannot list running batches");
                    // Unknown: keep `--once` from exiting while the database is away.
                    tokio::time::sleep(self.config.poll).await;
                    continue;
                }
            };
            for (batch_id, tenant_id) in &running {
                if runners.contains_key(batch_id) {
                    continue;
                }
                let Ok(scope) = Actor::system().tenant_scope(*tenant_id) else {
                    continue;
                };
                let ctx = runner::Ctx {
                    store: self.store.clone(),
                    config: self.config.clone(),
                    events: self.events.clone(),
                    scope,
                    batch_id: *batch_id,
                    stop: runner_stop.clone(),
                };
                runners.insert(*batch_id, tokio::spawn(runner::run(ctx)));
            }
            if once && running.is_empty() && runners.is_empty() {
                break Ok(());
            }
            let mut poll = self.config.poll;
            // A scheduled batch due before the next poll: wake exactly then.
            if let Ok(Some(at)) = self.store.next_scheduled_at().await
                && let Ok(until) = (at - crate::db::now()).to_std()
            {
                poll = poll.min(until + Duration::from_millis(1));
            }
            let woken = async {
                match listener.as_mut() {
                    Some(l) => {
                        if let Err(e) = l.next().await {
                            tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                            tokio::time::sleep(poll).await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = stop.changed() => {}
                _ = woken => {}
            }
        };
        let _ = runner_stop_tx.send(true);
        for (_, h) in runners {
            let _ = h.await;
        }
        result
    }
}
