//! The live log viewer: a batch's (or all the tenant's batches') `logs_emaillog` rows in a
//! virtual table with combinable filters and a sort column, a header with per-status counts,
//! a progress gauge and a msgs/s sparkline, the detail pane of the selected row and the
//! batch's execution log beside it. Tagged rows feed the triage actions (`app/logs_ops.rs`).

use std::collections::{BTreeSet, VecDeque};

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph, Sparkline, Wrap};

use super::Session;
use super::groups::scope;
use crate::db::{
    Batch, DbResult, EmailLog, ExecutionLog, LogDetail, LogFilter, Page, Store, TenantScope,
};
use crate::tui::theme::Theme;
use crate::tui::widgets::table::{Keyed, TableView, VirtualTable, body_rows};

impl Keyed for EmailLog {
    fn key(&self) -> i32 {
        self.id
    }
}

type CountResult = DbResult<(Vec<(String, i64)>, i64, LogFilter)>;

/// The number of rows matching `filter` when the per-status counts already say it (no
/// text, reply or date filter).
fn covered_total(filter: &LogFilter, counts: &[(String, i64)]) -> Option<i64> {
    if filter.search.is_some()
        || filter.reply.is_some()
        || filter.from.is_some()
        || filter.to.is_some()
    {
        return None;
    }
    Some(
        counts
            .iter()
            .filter(|(s, _)| {
                filter.statuses.is_empty() || filter.statuses.iter().any(|x| x.as_str() == s)
            })
            .map(|(_, n)| n)
            .sum(),
    )
}

/// The table's total while the exact count is made (scrolling works; `End` waits).
const PROVISIONAL_TOTAL: usize = 1 << 40;

/// Samples kept for the msgs/s sparkline (one a second).
const RATE_SAMPLES: usize = 60;

/// Per-status totals of what is in view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
    pub rejected: i64,
    pub bounced: i64,
}

impl Counts {
    pub fn from_rows(rows: &[(String, i64)]) -> Counts {
        let mut c = Counts::default();
        for (s, n) in rows {
            match s.as_str() {
                "pending" => c.pending = *n,
                "sending" => c.sending = *n,
                "sent" => c.sent = *n,
                "failed" => c.failed = *n,
                "rejected" => c.rejected = *n,
                "bounced" => c.bounced = *n,
                _ => {}
            }
        }
        c
    }
    pub fn total(&self) -> i64 {
        self.pending + self.sending + self.sent + self.failed + self.rejected + self.bounced
    }
    pub fn done(&self) -> i64 {
        self.sent + self.failed + self.rejected + self.bounced
    }
}

#[derive(Debug, Default)]
pub struct Logs {
    pub table: VirtualTable<EmailLog>,
    /// Filters besides the text search (which lives in `table.filter`).
    pub filter: LogFilter,
    /// The batch in view (`None`: every batch of the tenant).
    pub batch: Option<Batch>,
    pub counts: Counts,
    /// Sent per second, newest last.
    pub rate: VecDeque<u64>,
    last_sent: Option<(i64, std::time::Instant)>,
    /// Keep the selection on the newest row as rows arrive.
    pub follow: bool,
    pub tagged: BTreeSet<i32>,
    /// The detail pane is open (Enter), with the selected row's details.
    pub detail: Option<Box<DetailView>>,
    /// The execution log pane (beside the table on wide terminals).
    pub show_exec: bool,
    pub exec: Vec<ExecutionLog>,
    /// Counts being made in a spawned task.
    counting: Option<tokio::sync::oneshot::Receiver<CountResult>>,
    counting_task: Option<tokio::task::AbortHandle>,
    /// What the last copy put on the clipboard.
    pub clipboard: Option<String>,
    /// The body area, for layout.
    area: Rect,
}

/// The detail pane's content.
#[derive(Debug, Clone)]
pub struct DetailView {
    pub detail: LogDetail,
    /// The message as rendered for this recipient, or why it cannot be.
    pub rendered: Vec<String>,
}

impl Logs {
    pub fn new() -> Logs {
        Logs {
            show_exec: true,
            ..Logs::default()
        }
    }

    /// The filter as the store takes it: the text search included.
    pub fn store_filter(&self) -> LogFilter {
        LogFilter {
            batch_id: self.batch.as_ref().map(|b| b.id),
            search: self.table.search().map(str::to_string),
            ..self.filter.clone()
        }
    }

    /// Looks at `batch` (or every batch): filters and tags are reset.
    pub fn open(&mut self, batch: Option<Batch>) {
        self.stop_counting();
        let height = self.table.height;
        let show_exec = self.show_exec;
        *self = Logs::new();
        self.show_exec = show_exec;
        self.table.height = height;
        self.batch = batch;
        self.set_area(self.area);
    }

    pub fn set_area(&mut self, body: Rect) {
        self.area = body;
        let [_, table, _] = self.layout(body);
        self.table.set_height(body_rows(table));
    }

    /// Header, table, side pane.
    pub fn layout(&self, body: Rect) -> [Rect; 3] {
        let [header, rest] =
            Layout::vertical([Constraint::Length(4), Constraint::Fill(1)]).areas(body);
        let side = self.detail.is_some() || (self.show_exec && rest.width >= 110);
        if !side {
            return [
                header,
                rest,
                Rect::new(rest.right(), rest.y, 0, rest.height),
            ];
        }
        if self.detail.is_some() && rest.width < 110 {
            let [t, d] =
                Layout::vertical([Constraint::Percentage(45), Constraint::Fill(1)]).areas(rest);
            return [header, t, d];
        }
        let [t, s] = Layout::horizontal([Constraint::Fill(2), Constraint::Fill(1)]).areas(rest);
        [header, t, s]
    }

    /// Loads the table window, the header counts and the execution log. When the filter
    /// is only statuses (or nothing), the total comes from the per-status counts: one
    /// grouped count instead of two scans.
    pub async fn load(&mut self, store: &Store, session: &Session) -> DbResult<()> {
        let scope = self.scope(store, session).await?;
        let filter = self.store_filter();
        if self.table.needs_count() {
            // The exact counts scan every matching row: they are made in a spawned task and
            // arrive through `apply_counts`; meanwhile the first page is shown at once and
            // the table scrolls on a provisional total.
            self.stop_counting();
            self.start_counting(store, session).await?;
            self.table.set_total(PROVISIONAL_TOTAL);
            self.table.counting = true;
        }
        self.table
            .sync(
                async |_| store.count_email_logs(scope, &filter).await,
                async |page, _| store.query_email_logs(scope, &filter, page).await,
            )
            .await?;
        if self.table.counting
            && self.table.start == 0
            && self.table.rows.len() < self.table.height.max(1) * 3
        {
            // The first page held everything: that is the total.
            let n = self.table.rows.len();
            self.table.set_total(n);
            self.table.counting = false;
        }
        if self.follow && self.table.total > 0 && !self.table.counting {
            self.table.end();
            self.table
                .sync(
                    async |_| store.count_email_logs(scope, &filter).await,
                    async |page, _| store.query_email_logs(scope, &filter, page).await,
                )
                .await?;
        }
        self.load_exec(store, scope).await?;
        Ok(())
    }

    async fn scope(&self, store: &Store, session: &Session) -> DbResult<TenantScope> {
        match &self.batch {
            Some(b) => store.batch_scope(&session.actor, b.id).await,
            None => scope(session),
        }
    }

    async fn load_exec(&mut self, store: &Store, scope: TenantScope) -> DbResult<()> {
        self.exec = match &self.batch {
            Some(b) if self.show_exec => {
                let mut v = store
                    .list_execution_logs(scope, b.id, Page::last(50))
                    .await?;
                v.reverse();
                v
            }
            _ => Vec::new(),
        };
        Ok(())
    }

    /// Starts counting in a spawned task (the grouped count scans the batch: on a million
    /// rows it must not block keys). `apply_counts` takes the result.
    pub async fn start_counting(&mut self, store: &Store, session: &Session) -> DbResult<()> {
        if self.counting.is_some() {
            return Ok(());
        }
        let scope = self.scope(store, session).await?;
        let filter = self.store_filter();
        let store = store.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let result = async {
                let rows = store.status_counts(scope, filter.batch_id).await?;
                let total = match covered_total(&filter, &rows) {
                    Some(n) => n,
                    None => store.count_email_logs(scope, &filter).await?,
                };
                Ok((rows, total, filter))
            }
            .await;
            let _ = tx.send(result);
        });
        self.counting = Some(rx);
        self.counting_task = Some(task.abort_handle());
        Ok(())
    }

    /// Forgets (and aborts) counts being made for a view that changed.
    fn stop_counting(&mut self) {
        self.counting = None;
        if let Some(t) = self.counting_task.take() {
            t.abort();
        }
    }

    /// Takes finished counts (waiting for them when `wait`), then re-reads the visible
    /// rows in place so the selection stays where it is (in follow mode: the newest rows).
    /// Returns whether counts arrived.
    pub async fn apply_counts(
        &mut self,
        store: &Store,
        session: &Session,
        wait: bool,
    ) -> DbResult<bool> {
        let Some(rx) = self.counting.as_mut() else {
            return Ok(false);
        };
        let result = if wait {
            rx.await
                .map_err(|_| crate::db::DbError::Invalid("counting stopped".into()))?
        } else {
            match rx.try_recv() {
                Ok(r) => r,
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => return Ok(false),
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                    self.counting = None;
                    return Ok(false);
                }
            }
        };
        self.counting = None;
        let (rows, total, filter) = result?;
        if filter != self.store_filter() {
            // The filter changed meanwhile: these counts are for another view.
            return Ok(false);
        }
        self.counts = Counts::from_rows(&rows);
        let now = std::time::Instant::now();
        if let Some((sent, at)) = self.last_sent {
            let secs = now.duration_since(at).as_secs_f64().max(0.001);
            let per_s = ((self.counts.sent - sent).max(0) as f64 / secs).round() as u64;
            self.rate.push_back(per_s);
            while self.rate.len() > RATE_SAMPLES {
                self.rate.pop_front();
            }
        }
        self.last_sent = Some((self.counts.sent, now));
        let scope = self.scope(store, session).await?;
        if let Some(b) = &self.batch {
            self.batch = Some(store.get_batch(scope, b.id).await?);
        }
        self.table.set_total(total.max(0) as usize);
        self.table.counting = false;
        self.reread_window(store, scope, &filter).await?;
        self.table
            .sync(
                async |_| Ok(total),
                async |page, _| store.query_email_logs(scope, &filter, page).await,
            )
            .await?;
        if self.follow && self.table.total > 0 {
            self.table.end();
            self.table
                .sync(
                    async |_| Ok(total),
                    async |page, _| store.query_email_logs(scope, &filter, page).await,
                )
                .await?;
        }
        self.load_exec(store, scope).await?;
        Ok(true)
    }

    /// Re-reads the rows of the current window (statuses change while a batch runs).
    async fn reread_window(
        &mut self,
        store: &Store,
        scope: TenantScope,
        filter: &LogFilter,
    ) -> DbResult<()> {
        let Some(first) = self.table.rows.first() else {
            return Ok(());
        };
        let n = self.table.rows.len() as i64;
        let prev = store
            .query_email_logs(scope, filter, Page::before(first.id, 1))
            .await?;
        let page = match prev.first() {
            Some(p) => Page::after(p.id, n),
            None => Page::first(n),
        };
        let rows = store.query_email_logs(scope, filter, page).await?;
        if !rows.is_empty() {
            self.table.rows = rows;
        }
        Ok(())
    }

    pub fn toggle_tag(&mut self) {
        if let Some(id) = self.table.selected_row().map(|r| r.id) {
            if !self.tagged.remove(&id) {
                self.tagged.insert(id);
            }
            self.table.move_by(1);
        }
    }

    /// Tagged rows, or the selected one when none is tagged.
    pub fn chosen(&self) -> Vec<i32> {
        if self.tagged.is_empty() {
            self.table
                .selected_row()
                .map(|r| r.id)
                .into_iter()
                .collect()
        } else {
            self.tagged.iter().copied().collect()
        }
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let [header, table, side] = self.layout(area);
        self.draw_header(frame, header, theme);
        let wide = table.width >= 78;
        let headers: &[&str] = if wide {
            &[
                " ",
                "Recipient",
                "Name",
                "Status",
                "Att",
                "Sent at",
                "Reply",
            ]
        } else {
            &[" ", "Recipient", "Status", "Att", "Reply"]
        };
        let widths: Vec<Constraint> = if wide {
            vec![
                Constraint::Length(1),
                Constraint::Fill(3),
                Constraint::Fill(2),
                Constraint::Length(8),
                Constraint::Length(3),
                Constraint::Length(14),
                Constraint::Fill(3),
            ]
        } else {
            vec![
                Constraint::Length(1),
                Constraint::Fill(3),
                Constraint::Length(8),
                Constraint::Length(3),
                Constraint::Fill(2),
            ]
        };
        let title = match &self.batch {
            Some(b) if self.tagged.is_empty() => format!("Logs of #{} {}", b.id, b.name),
            Some(b) => format!(
                "Logs of #{} {} ({} tagged)",
                b.id,
                b.name,
                self.tagged.len()
            ),
            None if self.tagged.is_empty() => "Logs of all batches".to_string(),
            None => format!("Logs of all batches ({} tagged)", self.tagged.len()),
        };
        let view = TableView {
            title: &title,
            headers,
            widths: &widths,
        };
        view.draw(frame, table, theme, &self.table, |r| {
            let mark = if self.tagged.contains(&r.id) {
                "●"
            } else {
                " "
            };
            let reply = short_reply(r);
            let mut cells = vec![mark.to_string(), r.recipient_email.clone()];
            if wide {
                cells.push(r.recipient_name.clone().unwrap_or_default());
            }
            cells.push(r.status.clone());
            cells.push(r.attempts.to_string());
            if wide {
                cells.push(
                    r.sent_at
                        .map(|t| t.format("%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default(),
                );
            }
            cells.push(reply);
            cells
        });
        if side.width > 0 && side.height > 0 {
            match &self.detail {
                Some(d) => draw_detail(frame, side, theme, d),
                None => self.draw_exec(frame, side, theme),
            }
        }
    }

    fn draw_header(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let c = &self.counts;
        let [l1, l2, l3, l4] = Layout::vertical([Constraint::Length(1); 4]).areas(area);
        let what = match &self.batch {
            Some(b) => {
                let mut s = format!(" #{} {} · {}", b.id, b.name, b.status);
                if let Some(r) = &b.status_reason {
                    s.push_str(&format!(" ({r})"));
                }
                s
            }
            None => " all batches".to_string(),
        };
        let follow = if self.follow { "  [follow]" } else { "" };
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(what, theme.accent()),
                Span::styled(follow, theme.ok()),
            ])),
            l1,
        );
        let count = |label: &str, n: i64, style| {
            vec![
                Span::styled(format!(" {label} "), theme.muted()),
                Span::styled(n.to_string(), style),
            ]
        };
        let mut spans = Vec::new();
        spans.extend(count("sent", c.sent, theme.ok()));
        spans.extend(count("pending", c.pending, theme.base()));
        spans.extend(count("sending", c.sending, theme.base()));
        spans.extend(count("failed", c.failed, theme.error()));
        spans.extend(count("rejected", c.rejected, theme.error()));
        spans.extend(count("bounced", c.bounced, theme.warn()));
        spans.extend(count("total", c.total(), theme.base()));
        frame.render_widget(Paragraph::new(Line::from(spans)), l2);
        let [gauge, spark] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Length(34)]).areas(l3);
        let ratio = if c.total() > 0 {
            c.done() as f64 / c.total() as f64
        } else {
            0.0
        };
        frame.render_widget(
            Gauge::default()
                .gauge_style(theme.gauge())
                .ratio(ratio.clamp(0.0, 1.0))
                .label(format!("{}/{} done", c.done(), c.total())),
            gauge,
        );
        let data: Vec<u64> = self.rate.iter().copied().collect();
        let last = data.last().copied().unwrap_or(0);
        let [sl, sv] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Length(10)]).areas(spark);
        frame.render_widget(
            Sparkline::default().data(data.clone()).style(theme.ok()),
            sl,
        );
        frame.render_widget(
            Paragraph::new(Span::styled(format!(" {last} msg/s"), theme.muted())),
            sv,
        );
        let mut active = self.store_filter().describe();
        if active.is_empty() {
            active.push("none".into());
        }
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(" filters: ", theme.muted()),
                Span::styled(active.join("  "), theme.key()),
            ])),
            l4,
        );
    }

    fn draw_exec(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let lines: Vec<Line> = if self.batch.is_none() {
            vec![Line::styled(
                "pick a batch (b) to see its execution log",
                theme.muted(),
            )]
        } else {
            self.exec
                .iter()
                .map(|e| {
                    Line::from(vec![
                        Span::styled(
                            e.created_at
                                .map(|t| t.format("%m-%d %H:%M:%S ").to_string())
                                .unwrap_or_default(),
                            theme.muted(),
                        ),
                        Span::styled(format!("{} ", e.action), theme.accent()),
                        Span::raw(e.message.clone().unwrap_or_default()),
                    ])
                })
                .collect()
        };
        frame.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).block(
                Block::bordered()
                    .title(Span::styled(" Execution log ", theme.accent()))
                    .style(theme.base()),
            ),
            area,
        );
    }
}

/// The first line of the SMTP reply (or the error), short enough for a cell.
pub fn short_reply(r: &EmailLog) -> String {
    let text = r
        .smtp_response
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .or(r.error_message.as_deref())
        .unwrap_or("");
    let line = text.lines().next().unwrap_or("");
    line.chars().take(60).collect()
}

fn draw_detail(frame: &mut Frame, area: Rect, theme: &Theme, d: &DetailView) {
    let l = &d.detail.log;
    let t = |v: Option<chrono::NaiveDateTime>| {
        v.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "—".into())
    };
    let field = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!("{k:<11}"), theme.muted()),
            Span::raw(v),
        ])
    };
    let mut lines = vec![
        field(
            "recipient",
            match &l.recipient_name {
                Some(n) => format!("{n} <{}>", l.recipient_email),
                None => l.recipient_email.clone(),
            },
        ),
        field("status", l.status.clone()),
        field("batch", format!("#{} {}", l.batch_id, d.detail.batch_name)),
        field(
            "contact",
            match (d.detail.contact_id, d.detail.contact_active) {
                (Some(id), Some(false)) => format!("#{id} (inactive)"),
                (Some(id), _) => format!("#{id}"),
                (None, _) => "—".into(),
            },
        ),
        field(
            "group",
            match (&d.detail.group_name, d.detail.group_id) {
                (Some(n), Some(id)) => format!("{n} (#{id})"),
                _ => "—".into(),
            },
        ),
        field(
            "suppressed",
            if d.detail.suppressed { "yes" } else { "no" }.into(),
        ),
        Line::styled("attempts", theme.accent()),
        field("tries", l.attempts.to_string()),
        field("created", t(l.created_at)),
        field("last try", t(d.detail.updated_at)),
        field("next try", t(l.next_attempt_at)),
        field("sent at", t(l.sent_at)),
    ];
    for h in &d.detail.history {
        lines.push(field("triage", h.clone()));
    }
    lines.push(Line::styled("attempt history", theme.accent()));
    if d.detail.attempts.is_empty() {
        lines.push(Line::styled("—", theme.muted()));
    }
    for (i, a) in d.detail.attempts.iter().enumerate() {
        let reply = a
            .smtp_response
            .as_deref()
            .filter(|r| !r.trim().is_empty())
            .or(a.error_message.as_deref())
            .unwrap_or("—");
        // Two lines an attempt: the pane is narrow beside the table.
        lines.push(Line::from(vec![
            Span::styled(format!("{:>2}. ", i + 1), theme.muted()),
            Span::raw(format!(
                "{} {:<10} {}",
                a.attempted_at.format("%m-%d %H:%M:%S"),
                a.outcome,
                a.smtp_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "—".into())
            )),
        ]));
        lines.push(Line::raw(format!(
            "    {}",
            reply.lines().next().unwrap_or("")
        )));
    }
    lines.push(Line::styled("error_message", theme.accent()));
    lines.push(Line::raw(
        l.error_message.clone().unwrap_or_else(|| "—".into()),
    ));
    lines.push(Line::styled("smtp_response", theme.accent()));
    lines.push(Line::raw(
        l.smtp_response.clone().unwrap_or_else(|| "—".into()),
    ));
    lines.push(Line::styled("message as rendered", theme.accent()));
    for r in &d.rendered {
        lines.push(Line::raw(r.clone()));
    }
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(Span::styled(" Detail (enter closes) ", theme.accent()))
                .style(theme.base()),
        ),
        area,
    );
}
