//! The app's dispatch for the batches screen, the batch detail, the composer and the
//! in-process engine (start, pause, resume, cancel, duplicate, retry, delete; live updates;
//! the quit confirmation while a batch is sending here), kept apart from `app.rs`.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{App, Pending, Popup};
use crate::db::{Actor, Batch, DbError, DbResult, TenantScope};
use crate::domain::BatchStatus;
use crate::engine::review::Review;
use crate::engine::{Engine, EngineEvent};
use crate::tui::event::AppEvent;
use crate::tui::event::{ExternalEvent, ReviewEvent};
use crate::tui::keymap::{Cmd, ScreenId};
use crate::tui::screens::Session;
use crate::tui::screens::batches::{self, local_offset};
use crate::tui::screens::composer::{Composer, Reviewing, Step, full_review};
use crate::tui::widgets::confirm::Confirm;

/// How often the batches screen re-reads the database while it is visible (batches run by
/// another process change under it).
pub const POLL: Duration = Duration::from_secs(1);

/// Confirmations of the batches screen.
#[derive(Debug, Clone)]
pub enum BatchPending {
    Cancel {
        id: i32,
        name: String,
    },
    DeleteDraft {
        id: i32,
        name: String,
    },
    /// Quit while this process is sending: pause what runs, stop the engine, quit.
    QuitWhileSending {
        running: Vec<(i32, i32)>,
    },
}

/// The engine running inside the TUI process.
pub struct InProcess {
    pub engine: Engine,
    stop: watch::Sender<bool>,
    handle: Option<JoinHandle<DbResult<()>>>,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

fn batch_scope(session: &Session) -> DbResult<TenantScope> {
    match &session.tenant {
        Some(t) => session.actor.tenant_scope(t.id),
        None => Err(DbError::Invalid(
            "batches belong to a tenant: pick one on the Tenants screen first".into(),
        )),
    }
}

impl App {
    /// Runs `engine` in this process (spawned); its events reach the app through
    /// `handle_external(ExternalEvent::Engine(..))` (the event loop forwards them).
    pub fn attach_engine(&mut self, engine: Engine) {
        let (stop, rx) = watch::channel(false);
        let runner = engine.clone();
        let handle = tokio::spawn(async move { runner.run(rx, false).await });
        tracing::info!(worker = %engine.config().worker_id, "engine running in-process");
        self.engine = Some(InProcess {
            engine,
            stop,
            handle: Some(handle),
        });
    }

    /// Stops the in-process engine and waits until its in-flight messages are recorded.
    pub async fn stop_engine(&mut self) {
        let Some(mut e) = self.engine.take() else {
            return;
        };
        let _ = e.stop.send(true);
        if let Some(h) = e.handle.take() {
            match h.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("engine stopped with an error: {e}"),
                Err(e) => tracing::error!("engine task failed: {e}"),
            }
        }
        tracing::info!("in-process engine stopped");
    }

    /// `q`: asks first while this process sends.
    pub(super) async fn ask_quit(&mut self) {
        if self.engine.is_none() {
            self.quit = true;
            return;
        }
        let running = match self.store.running_batches().await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("cannot list running batches: {e}");
                Vec::new()
            }
        };
        if running.is_empty() {
            self.quit = true;
            return;
        }
        let ids: Vec<String> = running.iter().map(|(id, _)| format!("#{id}")).collect();
        self.popup = Some(Popup::Confirm(Confirm::new(
            "Batches are sending",
            format!(
                "{} sending in this process ({}). Quit and pause? They finish their in-flight \
                 messages and can be resumed later (r on Batches, or `recalliq batch resume`).",
                if running.len() == 1 {
                    "1 batch is".to_string()
                } else {
                    format!("{} batches are", running.len())
                },
                ids.join(", ")
            ),
            Pending::Batch(BatchPending::QuitWhileSending { running }),
        )));
    }

    /// The batch the command is about: the detail's, or the selected row.
    fn current_batch(&self) -> Option<Batch> {
        if self.screen == ScreenId::BatchDetail {
            self.batches.detail.as_ref().map(|d| d.batch.clone())
        } else {
            self.batches.table.selected_row().cloned()
        }
    }

    pub(super) async fn batches_command(&mut self, cmd: Cmd) {
        let Some(session) = self.session.clone() else {
            return;
        };
        if matches!(cmd, Cmd::Create) {
            return self.open_composer(&session).await;
        }
        if self.screen == ScreenId::Composer {
            return self.composer_command(&session, cmd).await;
        }
        let scope = match batch_scope(&session) {
            Ok(s) => s,
            Err(e) => return self.deny(e.to_string()),
        };
        let Some(b) = self.current_batch() else {
            return self.deny("no batch selected".into());
        };
        let status: Option<BatchStatus> = b.batch_status().ok();
        let refuse = |what: &str, allowed: &str| {
            format!(
                "batch #{} is {}: {what} works only on {allowed} batches",
                b.id, b.status
            )
        };
        let result: Result<String, String> = match cmd {
            Cmd::StartBatch => {
                if !matches!(status, Some(BatchStatus::Draft | BatchStatus::Scheduled)) {
                    Err(refuse(
                        "start",
                        "draft or scheduled (resume a paused one with r)",
                    ))
                } else {
                    match Composer::review_of(&self.store, &session, b.id, self.zone()).await {
                        Ok(c) => {
                            self.composer = Some(Box::new(c));
                            self.screen = ScreenId::Composer;
                            self.begin_review(false).await;
                            return;
                        }
                        Err(e) => Err(e.to_string()),
                    }
                }
            }
            Cmd::PauseBatch => self
                .store
                .pause_batch(scope, b.id, Some("paused by operator"))
                .await
                .map(|b| format!("batch #{} paused", b.id))
                .map_err(|e| e.to_string()),
            Cmd::ResumeBatch => {
                if status != Some(BatchStatus::Paused) {
                    Err(refuse("resume", "paused"))
                } else {
                    self.store
                        .resume_batch(scope, b.id)
                        .await
                        .map(|b| format!("batch #{} resumed", b.id))
                        .map_err(|e| e.to_string())
                }
            }
            Cmd::CancelBatch => {
                if status.is_some_and(BatchStatus::is_finished) {
                    Err(refuse("cancel", "draft, scheduled, running or paused"))
                } else {
                    self.popup = Some(Popup::Confirm(Confirm::new(
                        "Cancel batch",
                        format!(
                            "Cancel batch #{} {}? Recipients not sent yet are never sent; \
                             this cannot be undone.",
                            b.id, b.name
                        ),
                        Pending::Batch(BatchPending::Cancel {
                            id: b.id,
                            name: b.name.clone(),
                        }),
                    )));
                    return;
                }
            }
            Cmd::RetryFailed => self
                .store
                .retry_failed(scope, b.id)
                .await
                .map(|(b, n)| format!("batch #{}: {n} failed recipients queued again", b.id))
                .map_err(|e| e.to_string()),
            Cmd::Duplicate => self
                .store
                .duplicate_batch(scope, b.id, &format!("{} (copy)", b.name))
                .await
                .map(|n| format!("batch #{} duplicated as draft #{} {}", b.id, n.id, n.name))
                .map_err(|e| e.to_string()),
            Cmd::Delete => {
                if status != Some(BatchStatus::Draft) {
                    Err(refuse("delete", "draft (cancel it instead)"))
                } else {
                    self.popup = Some(Popup::Confirm(Confirm::new(
                        "Delete draft",
                        format!("Delete draft batch #{} {}?", b.id, b.name),
                        Pending::Batch(BatchPending::DeleteDraft {
                            id: b.id,
                            name: b.name.clone(),
                        }),
                    )));
                    return;
                }
            }
            Cmd::OpenLogs => {
                self.queue
                    .push_back(AppEvent::OpenLogViewer { batch_id: b.id });
                return;
            }
            _ => return,
        };
        match result {
            Ok(text) => {
                tracing::info!("{text}");
                self.info(text);
                self.batches.table.invalidate();
                self.queue.push_back(AppEvent::Reload(self.screen));
            }
            Err(e) => self.deny(e),
        }
    }

    fn zone(&self) -> chrono::FixedOffset {
        self.batches.utc_offset.unwrap_or_else(local_offset)
    }

    async fn open_composer(&mut self, session: &Session) {
        if let Err(e) = batch_scope(session) {
            return self.deny(e.to_string());
        }
        match Composer::open(&self.store, session, self.zone()).await {
            Ok(c) => {
                self.composer = Some(Box::new(c));
                self.screen = ScreenId::Composer;
                self.filtering = false;
            }
            Err(e) => self.deny(e.to_string()),
        }
    }

    /// Enter on a batch: the detail view.
    pub(super) async fn open_batch(&mut self) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let Some(b) = self.batches.table.selected_row().cloned() else {
            return;
        };
        match batches::load_detail(&self.store, &session, b.id).await {
            Ok(d) => {
                self.batches.detail = Some(d);
                self.screen = ScreenId::BatchDetail;
            }
            Err(e) => self.deny(e.to_string()),
        }
    }

    pub(super) async fn close_composer(&mut self) {
        if let Some(c) = self.composer.as_mut() {
            c.cancel_review();
        }
        let saved = self.composer.as_ref().and_then(|c| c.batch_id);
        self.composer = None;
        self.screen = ScreenId::Batches;
        self.batches.table.invalidate();
        if let Some(id) = saved {
            self.info(format!("batch #{id} kept as a draft"));
        }
        self.load(ScreenId::Batches).await;
    }

    /// Keys in the composer: its registry commands first (only where no text is typed for
    /// single letters), else the focused part's own keys.
    pub(super) async fn composer_key(&mut self, key: KeyEvent) {
        let Some(c) = self.composer.as_ref() else {
            self.screen = ScreenId::Batches;
            return;
        };
        let step = c.step;
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            return self.close_composer().await;
        }
        let typing_search = c.searching
            && !key.modifiers.contains(KeyModifiers::CONTROL)
            && !matches!(key.code, KeyCode::Tab | KeyCode::BackTab);
        if step == Step::Edit && typing_search {
            return self.composer_input(key).await;
        }
        if let Some(spec) = self.keymap.lookup_local(ScreenId::Composer, &key) {
            let plain_letter = matches!(key.code, KeyCode::Char(_))
                && !key.modifiers.contains(KeyModifiers::CONTROL);
            if step == Step::Review || !plain_letter {
                return self.run(spec).await;
            }
        }
        if step == Step::Edit {
            self.composer_input(key).await;
        }
    }

    /// A key for the composer's form; a changed picker search re-queries the store.
    async fn composer_input(&mut self, key: KeyEvent) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let Some(c) = self.composer.as_mut() else {
            return;
        };
        if c.input(key)
            && let Err(e) = c.reload_pickers(&self.store, &session).await
        {
            c.error = Some(e.to_string());
        }
    }

    /// Reviews the composer's saved draft: in a background task when the event loop runs
    /// (its progress and result arrive as `ExternalEvent::Review`), else inline (tests that
    /// drive the app without a loop). With `then_start`, the batch starts once the review
    /// finds nothing blocking.
    pub(super) async fn begin_review(&mut self, then_start: bool) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let scope = match batch_scope(&session) {
            Ok(s) => s,
            Err(e) => return self.deny(e.to_string()),
        };
        let Some(c) = self.composer.as_mut() else {
            return;
        };
        let Some(batch_id) = c.batch_id else {
            return;
        };
        c.cancel_review();
        c.step = Step::Review;
        c.error = None;
        let store = self.store.clone();
        let config_dir = Some(self.opts.config_dir.clone());
        let Some(tx) = self.events.clone() else {
            let result = full_review(&store, scope, batch_id, config_dir, &|_| {}).await;
            return self.review_finished(result, then_start).await;
        };
        c.review_token += 1;
        let token = c.review_token;
        let progress_tx = tx.clone();
        let task = tokio::spawn(async move {
            let progress = move |seen: i64| {
                // Dropped when the loop is busy: the next page reports a newer count.
                let _ = progress_tx
                    .try_send(ExternalEvent::Review(ReviewEvent::Progress { token, seen }));
            };
            let result = full_review(&store, scope, batch_id, config_dir, &progress).await;
            let _ = tx
                .send(ExternalEvent::Review(ReviewEvent::Done {
                    token,
                    result: result.map(Box::new),
                }))
                .await;
        });
        c.reviewing = Some(Reviewing {
            token,
            seen: 0,
            then_start,
            abort: task.abort_handle(),
        });
    }

    /// Progress or the result of the background review; those of a cancelled or replaced
    /// review are ignored.
    pub(super) async fn review_event(&mut self, ev: ReviewEvent) {
        let Some(c) = self.composer.as_mut() else {
            return;
        };
        let current = |token: u64| c.reviewing.as_ref().is_some_and(|r| r.token == token);
        match ev {
            ReviewEvent::Progress { token, seen } => {
                if current(token)
                    && let Some(r) = c.reviewing.as_mut()
                {
                    r.seen = seen;
                    self.dirty = true;
                }
            }
            ReviewEvent::Done { token, result } => {
                if !current(token) {
                    return;
                }
                let then_start = c.reviewing.take().is_some_and(|r| r.then_start);
                self.review_finished(result.map(|r| *r), then_start).await;
                self.dirty = true;
                self.drain().await;
            }
        }
    }

    async fn review_finished(&mut self, result: Result<Review, String>, then_start: bool) {
        let Some(c) = self.composer.as_mut() else {
            return;
        };
        match result {
            Ok(r) => {
                c.review = Some(r);
                if then_start {
                    self.start_reviewed().await;
                }
            }
            Err(e) => c.error = Some(e),
        }
    }

    /// Starts the reviewed batch unless its review blocks it.
    async fn start_reviewed(&mut self) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let Some(r) = self.composer.as_ref().and_then(|c| c.review.as_ref()) else {
            return;
        };
        if r.blocks() {
            let n = r
                .findings
                .iter()
                .filter(|f| f.severity == crate::engine::review::Severity::Blocking)
                .count();
            let text = format!(
                "cannot start batch #{}: {n} finding{} block it (marked ✗)",
                r.batch_id,
                if n == 1 { "" } else { "s" }
            );
            return self.deny(text);
        }
        let id = r.batch_id;
        let scope = match batch_scope(&session) {
            Ok(s) => s,
            Err(e) => return self.deny(e.to_string()),
        };
        match self.store.start_batch(scope, id).await {
            Ok((b, queued)) => {
                let text = format!(
                    "batch #{} {} started: {queued} recipients queued{}",
                    b.id,
                    b.name,
                    if self.engine.is_some() {
                        ""
                    } else {
                        " (no engine in this process: run `recalliq worker`)"
                    }
                );
                tracing::info!("{text}");
                self.composer = None;
                self.screen = ScreenId::Batches;
                self.batches.table.invalidate();
                self.load(ScreenId::Batches).await;
                self.info(text);
            }
            Err(e) => self.deny(e.to_string()),
        }
    }

    async fn composer_command(&mut self, session: &Session, cmd: Cmd) {
        let Some(c) = self.composer.as_mut() else {
            return;
        };
        match (cmd, c.step) {
            (Cmd::NextField, Step::Edit) => c.focus_next(1),
            (Cmd::PrevField, Step::Edit) => c.focus_next(-1),
            (Cmd::Save, Step::Edit) => match c.save(&self.store, session).await {
                Ok(id) => {
                    let text = format!("batch #{id} saved as {}; review it", {
                        if c.schedule.trim().is_empty() {
                            "a draft"
                        } else {
                            "scheduled"
                        }
                    });
                    tracing::info!("{text}");
                    self.info(text);
                    self.begin_review(false).await;
                }
                Err(e) => c.error = Some(e),
            },
            (Cmd::Edit, Step::Review) => {
                c.cancel_review();
                c.step = Step::Edit;
                c.error = None;
            }
            // Reviewed again right before the start: contacts may have changed.
            (Cmd::StartBatch, Step::Review) if c.reviewing.is_none() => {
                self.begin_review(true).await
            }
            (Cmd::CloseEditor, _) if c.reviewing.is_some() => {
                c.cancel_review();
                if c.review.is_none() {
                    c.step = Step::Edit;
                }
                self.info("review cancelled; the draft is kept".into());
            }
            (Cmd::CloseEditor, _) => self.close_composer().await,
            _ => {}
        }
    }

    pub(super) async fn confirmed_batch(
        &mut self,
        session: &Session,
        p: BatchPending,
    ) -> Result<(ScreenId, String), DbError> {
        match p {
            BatchPending::QuitWhileSending { running } => {
                for (id, tenant) in running {
                    let scope = Actor::system().tenant_scope(tenant)?;
                    match self
                        .store
                        .pause_batch(scope, id, Some("paused: the terminal UI sending it quit"))
                        .await
                    {
                        Ok(_) | Err(DbError::Invalid(_) | DbError::Conflict(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                self.stop_engine().await;
                self.quit = true;
                Ok((self.screen, "paused; quitting".into()))
            }
            BatchPending::Cancel { id, name } => {
                let scope = batch_scope(session)?;
                self.store.cancel_batch(scope, id).await?;
                self.batches.table.invalidate();
                Ok((self.screen, format!("batch #{id} {name} cancelled")))
            }
            BatchPending::DeleteDraft { id, name } => {
                let scope = batch_scope(session)?;
                self.store.delete_draft_batch(scope, id).await?;
                self.batches.table.invalidate();
                if self.screen == ScreenId::BatchDetail {
                    self.batches.detail = None;
                    self.screen = ScreenId::Batches;
                }
                Ok((self.screen, format!("draft #{id} {name} deleted")))
            }
        }
    }

    /// An event of the in-process engine: counts are applied in place (no query), status
    /// changes reload.
    pub(super) async fn engine_event(&mut self, ev: EngineEvent) {
        let visible = matches!(self.screen, ScreenId::Batches | ScreenId::BatchDetail);
        match ev {
            EngineEvent::Progress {
                batch_id,
                sent,
                failed,
                open,
            } => {
                let now = Instant::now();
                let done = i64::from(sent) + i64::from(failed);
                self.batches
                    .rates
                    .entry(batch_id)
                    .or_default()
                    .push(now, done);
                for b in self
                    .batches
                    .table
                    .rows
                    .iter_mut()
                    .filter(|b| b.id == batch_id)
                {
                    b.sent_count = sent;
                    b.failed_count = failed;
                }
                if let Some(d) = self.batches.detail.as_mut()
                    && d.batch.id == batch_id
                {
                    d.batch.sent_count = sent;
                    d.batch.failed_count = failed;
                    d.queue.pending = open - d.queue.sending.min(open);
                }
                let q = self.batches.queues.entry(batch_id).or_default();
                q.sending = q.sending.min(open);
                q.pending = open - q.sending;
                if visible {
                    self.dirty = true;
                }
            }
            EngineEvent::StatusChanged {
                batch_id,
                status,
                reason,
            } => {
                let text = match reason {
                    Some(r) => format!("batch #{batch_id} {status}: {r}"),
                    None => format!("batch #{batch_id} {status}"),
                };
                self.info(text);
                if visible {
                    self.load(self.screen).await;
                    self.dirty = true;
                }
            }
            EngineEvent::BatchStarted { batch_id, queued } => {
                self.info(format!(
                    "scheduled batch #{batch_id} started: {queued} recipients queued"
                ));
                if visible {
                    self.batches.table.invalidate();
                    self.load(self.screen).await;
                    self.dirty = true;
                }
            }
            EngineEvent::Error { batch_id, message } => {
                self.deny(format!("batch #{batch_id}: {message}"));
            }
        }
        self.drain().await;
    }

    /// A batch changed in the database (Postgres NOTIFY, from any process): the batches
    /// screens reload at once instead of at their next poll. The dashboard is left to its
    /// own one-second live refresh (a full reload per notification would be the slow path).
    pub async fn batch_changed(&mut self, change: &crate::db::BatchChange) {
        tracing::debug!(batch_id = change.batch_id, status = %change.status, "batch changed");
        if matches!(self.screen, ScreenId::Batches | ScreenId::BatchDetail) {
            self.last_poll = None;
            self.poll_batches(Instant::now()).await;
        }
    }

    /// Polls the database about once a second while batches are on screen, so batches run
    /// by another process move too. Draws only when something changed.
    pub async fn poll_batches(&mut self, now: Instant) {
        if self.session.is_none()
            || self.popup.is_some()
            || !matches!(self.screen, ScreenId::Batches | ScreenId::BatchDetail)
        {
            return;
        }
        if self.last_poll.is_some_and(|t| now.duration_since(t) < POLL) {
            return;
        }
        self.last_poll = Some(now);
        let before = self.batches_signature();
        self.batches.table.recount();
        self.load(self.screen).await;
        if self.batches_signature() != before || self.batches.live() {
            self.dirty = true;
        }
    }

    fn batches_signature(&self) -> Vec<(i32, String, i32, i32, i64)> {
        let mut v: Vec<_> = self
            .batches
            .table
            .rows
            .iter()
            .map(|b| {
                let open = self.batches.queues.get(&b.id).map_or(0, |q| q.open());
                (b.id, b.status.clone(), b.sent_count, b.failed_count, open)
            })
            .collect();
        if let Some(d) = &self.batches.detail {
            v.push((
                d.batch.id,
                d.batch.status.clone(),
                d.batch.sent_count,
                d.batch.failed_count,
                d.queue.open(),
            ));
            v.push((d.log.len() as i32, String::new(), 0, 0, 0));
        }
        v.push((self.batches.table.total as i32, String::new(), 0, 0, 0));
        v
    }
}
