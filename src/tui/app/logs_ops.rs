//! The app's dispatch for the log viewer: its commands, the batch picker, the live refresh,
//! and the triage actions on tagged rows (each confirmed with its count, permission-checked
//! by the registry, recorded in `logs_batchexecutionlog` by the store).

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;
use ratatui::widgets::{Block, Clear, List, ListItem, ListState};

use super::{App, FormPurpose, Pending, Popup};
use crate::db::{Batch, DbError, DbResult, Page, ReplyClass, RetryMode, Store, TenantScope};
use crate::domain::BatchStatus;
use crate::tui::keymap::{LogCmd, ScreenId};
use crate::tui::screens::Session;
use crate::tui::screens::groups::scope;
use crate::tui::screens::logs::DetailView;
use crate::tui::theme::Theme;
use crate::tui::widgets::confirm::Confirm;
use crate::tui::widgets::form::{Field, Form, required};

/// The most rows `*` tags (and an untagged export writes).
pub const TAG_ALL_CAP: i64 = 1_000_000;

/// Forms of the log viewer.
#[derive(Debug, Clone)]
pub enum LogsForm {
    DateRange,
    /// Retry tagged rows of a finished batch: same batch or a new one.
    RetryFinished {
        batch_id: i32,
        ids: Vec<i32>,
    },
    Suppress {
        batch_id: i32,
        ids: Vec<i32>,
    },
    Export {
        ids: Vec<i32>,
    },
}

/// Confirmations of the log viewer.
#[derive(Debug, Clone)]
pub enum LogsPending {
    Retry {
        batch_id: i32,
        ids: Vec<i32>,
    },
    Deactivate {
        batch_id: i32,
        ids: Vec<i32>,
    },
    Copy {
        batch_id: Option<i32>,
        ids: Vec<i32>,
    },
}

/// Choose the batch to look at, or every batch of the tenant.
#[derive(Debug, Clone)]
pub struct BatchPicker {
    /// `None` is "all batches".
    pub entries: Vec<Option<Batch>>,
    pub selected: usize,
}

impl BatchPicker {
    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let h = (self.entries.len() as u16 + 2).clamp(3, area.height);
        let rect = crate::tui::widgets::centered(area, area.width.saturating_sub(8).min(70), h);
        frame.render_widget(Clear, rect);
        let items: Vec<ListItem> = self
            .entries
            .iter()
            .map(|e| match e {
                None => ListItem::new("all batches of the tenant"),
                Some(b) => ListItem::new(format!(
                    "#{:<5} {:<30} {:<10} sent {} failed {}",
                    b.id, b.name, b.status, b.sent_count, b.failed_count
                )),
            })
            .collect();
        let mut state = ListState::default();
        state.select(Some(self.selected));
        frame.render_stateful_widget(
            List::new(items).highlight_style(theme.selected()).block(
                Block::bordered()
                    .title(Span::styled(
                        " Batch (enter open, esc cancel) ",
                        theme.accent(),
                    ))
                    .style(theme.base()),
            ),
            rect,
            &mut state,
        );
    }
}

fn wrap(form: Form<LogsForm>) -> Form<FormPurpose> {
    Form {
        title: form.title,
        fields: form.fields,
        focus: form.focus,
        purpose: FormPurpose::Logs(form.purpose),
        error: form.error,
    }
}

fn check_time(v: &str) -> Option<String> {
    if v.trim().is_empty() || parse_time(v).is_ok() {
        None
    } else {
        Some("YYYY-MM-DD or YYYY-MM-DD HH:MM".into())
    }
}

/// `2026-05-01`, `2026-05-01 14:30` or RFC 3339; `end` makes a bare date its last second.
pub fn parse_time_bound(v: &str, end: bool) -> Result<chrono::NaiveDateTime, String> {
    let v = v.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let t = if end {
            d.and_hms_opt(23, 59, 59)
        } else {
            d.and_hms_opt(0, 0, 0)
        };
        return t.ok_or_else(|| format!("invalid date '{v}'"));
    }
    for f in ["%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, f) {
            return Ok(t);
        }
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|d| d.naive_utc())
        .map_err(|_| format!("'{v}' is not a date (YYYY-MM-DD or YYYY-MM-DD HH:MM)"))
}

fn parse_time(v: &str) -> Result<chrono::NaiveDateTime, String> {
    parse_time_bound(v, false)
}

/// The OSC 52 sequence that puts `text` on the terminal's clipboard (works over SSH).
pub fn osc52(text: &str) -> String {
    use base64::Engine;
    format!(
        "\x1b]52;c;{}\x07",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

impl App {
    /// Opens the log viewer on `batch_id` (or every batch of the tenant): the batches
    /// screen's `l` calls this. A super admin viewing all tenants is switched to the
    /// batch's tenant.
    pub async fn open_logs(&mut self, batch_id: Option<i32>) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let batch = match batch_id {
            None => None,
            Some(id) => match self.batch_for(&session, id).await {
                Ok(b) => Some(b),
                Err(e) => {
                    self.deny(e.to_string());
                    return;
                }
            },
        };
        self.logs.open(batch);
        self.layout_tables_for_logs();
        self.screen = ScreenId::Logs;
        self.filtering = false;
        self.load(ScreenId::Logs).await;
        self.dirty = true;
    }

    fn layout_tables_for_logs(&mut self) {
        let body = super::chrome(self.area)[1];
        self.logs.set_area(body);
    }

    /// The batch, in the session's tenant (switching a super admin to its tenant).
    async fn batch_for(&mut self, session: &Session, id: i32) -> DbResult<Batch> {
        let scope = self.store.batch_scope(&session.actor, id).await?;
        if session.tenant.as_ref().map(|t| t.id) != Some(scope.tenant_id())
            && session.actor.is_super_admin()
        {
            let t = self.store.get_tenant(scope).await?;
            if let Some(s) = &mut self.session {
                s.tenant = Some(t);
            }
        }
        self.store.get_batch(scope, id).await
    }

    /// On every tick of the log viewer: take counts that arrived (and re-read the visible
    /// rows), and start new ones about once a second.
    pub async fn live_tick(&mut self) {
        if self.screen != ScreenId::Logs {
            return;
        }
        let Some(session) = self.session.clone() else {
            return;
        };
        match self.logs.apply_counts(&self.store, &session, false).await {
            Ok(true) => self.dirty = true,
            Ok(false) => {}
            Err(e) => tracing::warn!("log viewer refresh: {e}"),
        }
        let due = self
            .logs_last_refresh
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(900));
        if due {
            self.logs_last_refresh = Some(Instant::now());
            if let Err(e) = self.logs.start_counting(&self.store, &session).await {
                tracing::warn!("log viewer refresh: {e}");
            }
        }
    }

    /// One complete refresh now, waiting for the counts (tests, benchmarks).
    pub async fn refresh_logs(&mut self) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let result = async {
            // Counts started earlier describe an older state: take them, then count anew.
            self.logs.apply_counts(&self.store, &session, true).await?;
            self.logs.start_counting(&self.store, &session).await?;
            self.logs.apply_counts(&self.store, &session, true).await
        }
        .await;
        if let Err(e) = result {
            self.deny(e.to_string());
        }
        self.dirty = true;
    }

    /// Waits for counts being made (before `End`, which needs the exact total).
    pub async fn wait_log_counts(&mut self) {
        let Some(session) = self.session.clone() else {
            return;
        };
        if let Err(e) = self.logs.apply_counts(&self.store, &session, true).await {
            self.deny(e.to_string());
        }
    }

    fn logs_scope(&self, session: &Session) -> DbResult<TenantScope> {
        match &self.logs.batch {
            Some(b) => session.actor.tenant_scope(b.tenant_id),
            None => scope(session),
        }
    }

    fn need_batch(&mut self, what: &str) -> Option<i32> {
        match &self.logs.batch {
            Some(b) => Some(b.id),
            None => {
                self.deny(format!("{what} works on one batch: pick it first (b)"));
                None
            }
        }
    }

    fn need_rows(&mut self) -> Option<Vec<i32>> {
        let ids = self.logs.chosen();
        if ids.is_empty() {
            self.deny("no rows: tag some with space or * first".into());
            None
        } else {
            Some(ids)
        }
    }

    pub(super) async fn logs_command(&mut self, cmd: LogCmd) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let refilter = |app: &mut App| {
            app.logs.table.reset();
            app.logs.counts = Default::default();
        };
        match cmd {
            LogCmd::Follow => {
                self.logs.follow = !self.logs.follow;
                let text = if self.logs.follow {
                    "following new rows"
                } else {
                    "follow off"
                };
                self.info(text.into());
            }
            LogCmd::Status(None) => {
                self.logs.filter.statuses.clear();
                refilter(self);
            }
            LogCmd::Status(Some(s)) => {
                let st = &mut self.logs.filter.statuses;
                if let Some(i) = st.iter().position(|x| *x == s) {
                    st.remove(i);
                } else {
                    st.push(s);
                }
                refilter(self);
            }
            LogCmd::ReplyClass => {
                self.logs.filter.reply = match self.logs.filter.reply {
                    None => Some(ReplyClass::Temporary),
                    Some(ReplyClass::Temporary) => Some(ReplyClass::Permanent),
                    Some(ReplyClass::Permanent) => Some(ReplyClass::Connection),
                    Some(ReplyClass::Connection) => None,
                };
                refilter(self);
            }
            LogCmd::Sort => {
                self.logs.filter.sort = self.logs.filter.sort.next();
                refilter(self);
            }
            LogCmd::Reverse => {
                self.logs.filter.descending = !self.logs.filter.descending;
                refilter(self);
            }
            LogCmd::DateRange => {
                let f = |v: Option<chrono::NaiveDateTime>| {
                    v.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_default()
                };
                self.popup = Some(Popup::Form(wrap(Form::new(
                    "Date range (empty: open)",
                    LogsForm::DateRange,
                    vec![
                        Field::text("from", "From", f(self.logs.filter.from))
                            .with_check(check_time),
                        Field::text("to", "To", f(self.logs.filter.to)).with_check(check_time),
                    ],
                ))));
                return;
            }
            LogCmd::Detail => {
                if self.logs.detail.is_some() {
                    self.logs.detail = None;
                } else if let Some(row) = self.logs.table.selected_row().cloned() {
                    match self.detail_view(&session, row.id).await {
                        Ok(d) => self.logs.detail = Some(Box::new(d)),
                        Err(e) => self.deny(e.to_string()),
                    }
                }
                self.layout_tables_for_logs();
            }
            LogCmd::ExecPane => {
                self.logs.show_exec = !self.logs.show_exec;
                self.layout_tables_for_logs();
            }
            LogCmd::PickBatch => {
                match self.batch_entries(&session).await {
                    Ok(entries) => {
                        let selected = self
                            .logs
                            .batch
                            .as_ref()
                            .and_then(|b| {
                                entries
                                    .iter()
                                    .position(|e| e.as_ref().is_some_and(|x| x.id == b.id))
                            })
                            .unwrap_or(0);
                        self.popup = Some(Popup::Logs(BatchPicker { entries, selected }));
                    }
                    Err(e) => self.deny(e.to_string()),
                }
                return;
            }
            LogCmd::Tag => self.logs.toggle_tag(),
            LogCmd::TagAll => {
                let filter = self.logs.store_filter();
                let result = match self.logs_scope(&session) {
                    Ok(scope) => self.store.email_log_ids(scope, &filter, TAG_ALL_CAP).await,
                    Err(e) => Err(e),
                };
                match result {
                    Ok(ids) => {
                        let n = ids.len();
                        self.logs.tagged.extend(ids);
                        self.info(format!(
                            "tagged {n} rows matching the filter ({} tagged)",
                            self.logs.tagged.len()
                        ));
                    }
                    Err(e) => self.deny(e.to_string()),
                }
            }
            LogCmd::Untag => {
                let n = self.logs.tagged.len();
                self.logs.tagged.clear();
                self.info(format!("{n} rows untagged"));
            }
            LogCmd::Retry => self.ask_retry().await,
            LogCmd::Suppress => {
                let (Some(batch_id), Some(ids)) = (self.need_batch("suppress"), self.need_rows())
                else {
                    return;
                };
                self.popup = Some(Popup::Form(wrap(Form::new(
                    format!("Suppress the addresses of {} rows", ids.len()),
                    LogsForm::Suppress { batch_id, ids },
                    vec![
                        Field::text("reason", "Reason (one word)", crate::db::REASON_BOUNCED)
                            .with_check(required),
                    ],
                ))));
                return;
            }
            LogCmd::Deactivate => {
                let (Some(batch_id), Some(ids)) = (self.need_batch("deactivate"), self.need_rows())
                else {
                    return;
                };
                self.popup = Some(Popup::Confirm(Confirm::new(
                    "Deactivate contacts",
                    format!(
                        "Deactivate the contacts of {} rows? They stay in their groups but no new batch mails them.",
                        ids.len()
                    ),
                    Pending::Logs(LogsPending::Deactivate { batch_id, ids }),
                )));
                return;
            }
            LogCmd::Export => {
                let ids: Vec<i32> = self.logs.tagged.iter().copied().collect();
                let what = if ids.is_empty() {
                    format!(
                        "Export the {} rows matching the filter",
                        self.logs.table.total
                    )
                } else {
                    format!("Export {} tagged rows", ids.len())
                };
                let name = match &self.logs.batch {
                    Some(b) => format!("batch-{}-logs.csv", b.id),
                    None => "logs.csv".to_string(),
                };
                self.popup = Some(Popup::Form(wrap(Form::new(
                    what,
                    LogsForm::Export { ids },
                    vec![Field::text("path", "File", name).with_check(required)],
                ))));
                return;
            }
            LogCmd::CopyAddresses => {
                let Some(ids) = self.need_rows() else { return };
                self.popup = Some(Popup::Confirm(Confirm::new(
                    "Copy addresses",
                    format!(
                        "Copy the addresses of {} rows to the clipboard (OSC 52)?",
                        ids.len()
                    ),
                    Pending::Logs(LogsPending::Copy {
                        batch_id: self.logs.batch.as_ref().map(|b| b.id),
                        ids,
                    }),
                )));
                return;
            }
        }
        self.load(ScreenId::Logs).await;
    }

    async fn ask_retry(&mut self) {
        let (Some(batch_id), Some(ids)) = (self.need_batch("retry"), self.need_rows()) else {
            return;
        };
        let Some(batch) = self.logs.batch.clone() else {
            return;
        };
        match batch.batch_status() {
            Ok(s) if s.is_finished() => {
                let mut options = vec!["new batch of just these".to_string()];
                if s != BatchStatus::Cancelled {
                    options.push("same batch (it runs again)".to_string());
                }
                self.popup = Some(Popup::Form(wrap(Form::new(
                    format!("Retry {} rows of {} batch #{}", ids.len(), s, batch.id),
                    LogsForm::RetryFinished { batch_id, ids },
                    vec![Field::choice("mode", "Retry as (←/→)", options, "")],
                ))));
            }
            _ => {
                self.popup = Some(Popup::Confirm(Confirm::new(
                    "Retry",
                    format!(
                        "Queue {} rows of batch #{} ({}) again? Only failed, rejected and bounced rows are retried.",
                        ids.len(),
                        batch.id,
                        batch.status
                    ),
                    Pending::Logs(LogsPending::Retry { batch_id, ids }),
                )));
            }
        }
    }

    async fn batch_entries(&self, session: &Session) -> DbResult<Vec<Option<Batch>>> {
        let scope = scope(session)?;
        let mut batches = self
            .store
            .list_batches(scope, Page::last(200), None)
            .await?;
        batches.reverse();
        let mut v: Vec<Option<Batch>> = vec![None];
        v.extend(batches.into_iter().map(Some));
        Ok(v)
    }

    pub(super) async fn batch_picker_key(&mut self, mut p: BatchPicker, key: KeyEvent) {
        let n = p.entries.len();
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => return,
            KeyCode::Up | KeyCode::Char('k') => p.selected = p.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') if n > 0 => p.selected = (p.selected + 1).min(n - 1),
            KeyCode::Enter => {
                let id = p.entries.get(p.selected).cloned().flatten().map(|b| b.id);
                self.open_logs(id).await;
                return;
            }
            _ => {}
        }
        self.popup = Some(Popup::Logs(p));
    }

    async fn detail_view(&self, session: &Session, id: i32) -> DbResult<DetailView> {
        let scope = self.logs_scope(session)?;
        let detail = self.store.email_log_detail(scope, id).await?;
        let rendered = match render_for(&self.store, scope, &detail).await {
            Ok(lines) => lines,
            Err(e) => vec![format!("cannot render: {e}")],
        };
        Ok(DetailView { detail, rendered })
    }

    pub(super) async fn submit_logs(
        &mut self,
        session: &Session,
        purpose: &LogsForm,
        form: &Form<FormPurpose>,
    ) -> DbResult<(ScreenId, String)> {
        let scope = self.logs_scope(session)?;
        let actor = session.user.username.clone();
        let store = self.store.clone();
        Ok(match purpose {
            LogsForm::DateRange => {
                let bound = |v: &str, end| {
                    let v = v.trim();
                    if v.is_empty() {
                        Ok(None)
                    } else {
                        parse_time_bound(v, end).map(Some)
                    }
                };
                self.logs.filter.from =
                    bound(form.value("from"), false).map_err(DbError::Invalid)?;
                self.logs.filter.to = bound(form.value("to"), true).map_err(DbError::Invalid)?;
                self.logs.table.reset();
                (ScreenId::Logs, "date range applied".into())
            }
            LogsForm::RetryFinished { batch_id, ids } => {
                let mode = if form.value("mode").starts_with("new") {
                    RetryMode::NewBatch
                } else {
                    RetryMode::SameBatch
                };
                let r = store
                    .retry_logs(scope, *batch_id, ids, mode, &actor)
                    .await?;
                self.logs.tagged.clear();
                let text = match r.new_batch {
                    Some(b) => format!("{} recipients queued in new batch #{b}", r.changed),
                    None => format!("{} recipients queued again in batch #{batch_id}", r.changed),
                };
                self.reload_batch(scope).await;
                (ScreenId::Logs, text)
            }
            LogsForm::Suppress { batch_id, ids } => {
                let r = store
                    .suppress_logs(scope, *batch_id, ids, form.value("reason"), &actor)
                    .await?;
                self.logs.tagged.clear();
                (
                    ScreenId::Logs,
                    format!(
                        "{} addresses suppressed ({} already were)",
                        r.changed, r.skipped
                    ),
                )
            }
            LogsForm::Export { ids } => {
                let rows = if ids.is_empty() {
                    let filter = self.logs.store_filter();
                    let ids = store.email_log_ids(scope, &filter, TAG_ALL_CAP).await?;
                    store.email_logs_by_ids(scope, &ids).await?
                } else {
                    store.email_logs_by_ids(scope, ids).await?
                };
                let path = form.value("path").trim().to_string();
                let mut buf = Vec::new();
                crate::csvio::write_email_logs(&mut buf, &rows)
                    .map_err(|e| DbError::Invalid(format!("cannot write CSV: {e}")))?;
                std::fs::write(&path, buf)
                    .map_err(|e| DbError::Invalid(format!("cannot write {path}: {e}")))?;
                if let Some(b) = &self.logs.batch
                    && !self.opts.readonly
                {
                    let all: Vec<i32> = rows.iter().map(|r| r.id).collect();
                    store
                        .record_triage(
                            scope,
                            b.id,
                            "export_logs",
                            format!("{actor} exported {} rows to {path}", rows.len()),
                            &actor,
                            &all,
                        )
                        .await?;
                }
                (
                    ScreenId::Logs,
                    format!("{} rows written to {path}", rows.len()),
                )
            }
        })
    }

    pub(super) async fn confirmed_logs(
        &mut self,
        session: &Session,
        pending: LogsPending,
    ) -> DbResult<(ScreenId, String)> {
        let scope = self.logs_scope(session)?;
        let actor = session.user.username.clone();
        let store = self.store.clone();
        Ok(match pending {
            LogsPending::Retry { batch_id, ids } => {
                let r = store
                    .retry_logs(scope, batch_id, &ids, RetryMode::SameBatch, &actor)
                    .await?;
                self.logs.tagged.clear();
                self.reload_batch(scope).await;
                (
                    ScreenId::Logs,
                    format!(
                        "{} recipients queued again ({} skipped: not failed)",
                        r.changed, r.skipped
                    ),
                )
            }
            LogsPending::Deactivate { batch_id, ids } => {
                let r = store
                    .deactivate_log_contacts(scope, batch_id, &ids, &actor)
                    .await?;
                (
                    ScreenId::Logs,
                    format!("{} contacts deactivated", r.changed),
                )
            }
            LogsPending::Copy { batch_id, ids } => {
                let rows = store.email_logs_by_ids(scope, &ids).await?;
                let text: Vec<&str> = rows.iter().map(|r| r.recipient_email.as_str()).collect();
                let text = text.join("\n");
                if self.events.is_some() {
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(osc52(&text).as_bytes());
                    let _ = out.flush();
                }
                if let Some(b) = batch_id
                    && !self.opts.readonly
                {
                    store
                        .record_triage(
                            scope,
                            b,
                            "copy_addresses",
                            format!("{actor} copied {} addresses", rows.len()),
                            &actor,
                            &ids,
                        )
                        .await?;
                }
                self.logs.clipboard = Some(text);
                (
                    ScreenId::Logs,
                    format!("{} addresses copied to the clipboard", rows.len()),
                )
            }
        })
    }

    async fn reload_batch(&mut self, scope: TenantScope) {
        if let Some(b) = &self.logs.batch
            && let Ok(b) = self.store.get_batch(scope, b.id).await
        {
            self.logs.batch = Some(b);
        }
        self.logs.counts = Default::default();
    }
}

/// The message as the engine would render it for this row's recipient.
async fn render_for(
    store: &Store,
    scope: TenantScope,
    d: &crate::db::LogDetail,
) -> Result<Vec<String>, String> {
    use crate::render::{Recipient, TemplateSource, TenantInfo, render_message};
    let batch = store
        .get_batch(scope, d.log.batch_id)
        .await
        .map_err(|e| e.to_string())?;
    let template = store
        .get_template(scope, batch.template_id)
        .await
        .map_err(|e| e.to_string())?;
    let tenant = store.get_tenant(scope).await.map_err(|e| e.to_string())?;
    let variables = match d.contact_id {
        Some(id) => store
            .get_contact(scope, id)
            .await
            .ok()
            .and_then(|c| c.variables.map(|j| j.0)),
        None => None,
    };
    let recipient = Recipient {
        email: d.log.recipient_email.clone(),
        name: d
            .log
            .recipient_name
            .clone()
            .filter(|n| !n.trim().is_empty()),
        variables,
    };
    let r = render_message(
        &TemplateSource::from(&template),
        &recipient,
        batch.variables.as_ref().map(|j| &j.0),
        &TenantInfo::from(&tenant),
        "(unsubscribe link)",
    )
    .map_err(|e| e.to_string())?;
    let mut lines = vec![format!("Subject: {}", r.subject), String::new()];
    lines.extend(r.text.lines().map(str::to_string));
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{LogFilter, SortColumn};

    #[test]
    fn osc52_is_base64_of_the_text() {
        assert_eq!(osc52("a@b.c"), "\x1b]52;c;YUBiLmM=\x07");
    }

    #[test]
    fn time_bounds() {
        let t = parse_time_bound("2026-05-01", true).unwrap();
        assert_eq!(t.to_string(), "2026-05-01 23:59:59");
        let t = parse_time_bound("2026-05-01 14:30", false).unwrap();
        assert_eq!(t.to_string(), "2026-05-01 14:30:00");
        assert!(parse_time_bound("yesterday", false).is_err());
        assert_eq!(SortColumn::SentAt.next(), SortColumn::Id);
        assert_eq!(LogFilter::default().describe(), Vec::<String>::new());
    }
}
