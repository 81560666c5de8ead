//! Batches of the tenant in view: the list (status, a progress gauge, sent / failed /
//! pending, the current rate and an ETA) and the detail view of one batch (its groups,
//! template, queue counts and execution log). Rates are measured here from successive
//! counts (engine events or database polls), over the last ten seconds.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph, Wrap};

use super::{Session, bar};
use crate::db::{Batch, DbResult, ExecutionLog, Page, QueueCounts, Store};
use crate::domain::BatchStatus;
use crate::tui::screens::templates::scope;
use crate::tui::theme::Theme;
use crate::tui::widgets::table::{Keyed, TableView, VirtualTable, body_rows};

impl Keyed for Batch {
    fn key(&self) -> i32 {
        self.id
    }
}

/// How far back the rate looks.
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// Messages done (sent + failed) over time, for msgs/s and the ETA.
#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    samples: VecDeque<(Instant, i64)>,
}

impl RateMeter {
    pub fn push(&mut self, at: Instant, done: i64) {
        if self.samples.back().is_some_and(|(_, d)| *d > done) {
            // Counts went down (retry failed): start over.
            self.samples.clear();
        }
        self.samples.push_back((at, done));
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|(t, _)| at.duration_since(*t) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// Messages per second over the window; `None` until two samples half a second apart.
    pub fn rate(&self) -> Option<f64> {
        let (t0, d0) = self.samples.front()?;
        let (t1, d1) = self.samples.back()?;
        let dt = t1.duration_since(*t0).as_secs_f64();
        (dt >= 0.5).then(|| (d1 - d0).max(0) as f64 / dt)
    }
}

/// "1m05s", "2h03m", "—".
pub fn eta_text(open: i64, rate: Option<f64>) -> String {
    match rate {
        _ if open <= 0 => "—".into(),
        Some(r) if r > 0.01 => {
            let s = (open as f64 / r).ceil() as u64;
            if s >= 3600 {
                format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
            } else if s >= 60 {
                format!("{}m{:02}s", s / 60, s % 60)
            } else {
                format!("{s}s")
            }
        }
        _ => "—".into(),
    }
}

pub fn rate_text(rate: Option<f64>) -> String {
    match rate {
        Some(r) if r >= 100.0 => format!("{r:.0}/s"),
        Some(r) => format!("{r:.1}/s"),
        None => "—".into(),
    }
}

/// Done / (done + open), 0 for a batch with nothing queued.
pub fn progress(b: &Batch, q: &QueueCounts) -> f64 {
    let done = i64::from(b.sent_count) + i64::from(b.failed_count);
    let all = done + q.open();
    if all == 0 {
        if b.status == "completed" { 1.0 } else { 0.0 }
    } else {
        done as f64 / all as f64
    }
}

/// One batch opened with Enter.
#[derive(Debug, Clone)]
pub struct Detail {
    pub batch: Batch,
    pub queue: QueueCounts,
    pub template: String,
    pub groups: Vec<String>,
    /// Hard and soft bounces and unsubscribes reported back for this batch (#9).
    pub bounces: crate::db::BounceCounts,
    /// Newest first.
    pub log: Vec<ExecutionLog>,
}

#[derive(Debug, Clone, Default)]
pub struct Batches {
    pub table: VirtualTable<Batch>,
    /// Queue counts of the rows on screen (and of the detail's batch).
    pub queues: HashMap<i32, QueueCounts>,
    pub rates: HashMap<i32, RateMeter>,
    pub detail: Option<Detail>,
    /// Times are shown in this zone (the local one; tests pin it).
    pub utc_offset: Option<chrono::FixedOffset>,
}

impl Batches {
    pub fn set_area(&mut self, body: Rect) {
        self.table.set_height(body_rows(body));
    }

    /// Loads the visible rows, refreshes their statuses and counts (rows may change under
    /// us: the engine, another process) and feeds the rate meters.
    pub async fn load(&mut self, store: &Store, session: &Session) -> DbResult<()> {
        let Ok(scope) = scope(session) else {
            self.table.set_total(0);
            self.table.rows.clear();
            return Ok(());
        };
        self.table
            .sync(
                async |search| store.count_batches_matching(scope, search.as_deref()).await,
                async |page, search| store.list_batches(scope, page, search.as_deref()).await,
            )
            .await?;
        let now = Instant::now();
        let visible: Vec<usize> = self.table.visible().map(|(i, _)| i).collect();
        for i in visible {
            let Some(idx) = i.checked_sub(self.table.start) else {
                continue;
            };
            let Some(row) = self.table.rows.get(idx) else {
                continue;
            };
            let id = row.id;
            let fresh = store.get_batch(scope, id).await?;
            let settled = fresh
                .batch_status()
                .is_ok_and(|s| matches!(s, BatchStatus::Draft | BatchStatus::Scheduled))
                || (fresh.batch_status().is_ok_and(BatchStatus::is_finished)
                    && self.queues.contains_key(&id)
                    && row.status == fresh.status);
            if !settled {
                let q = store.queue_counts(scope, id).await?;
                self.queues.insert(id, q);
            } else {
                self.queues.entry(id).or_default();
            }
            let done = i64::from(fresh.sent_count) + i64::from(fresh.failed_count);
            if fresh.status == "running" {
                self.rates.entry(id).or_default().push(now, done);
            } else {
                self.rates.remove(&id);
            }
            self.table.rows[idx] = fresh;
        }
        if let Some(d) = &self.detail {
            let id = d.batch.id;
            self.detail = Some(load_detail(store, session, id).await?);
            if let Some(d) = &self.detail {
                let done = i64::from(d.batch.sent_count) + i64::from(d.batch.failed_count);
                if d.batch.status == "running" {
                    self.rates.entry(id).or_default().push(now, done);
                }
                self.queues.insert(id, d.queue);
            }
        }
        Ok(())
    }

    /// True while something on screen can still change by itself (worth polling).
    pub fn live(&self) -> bool {
        self.table
            .visible()
            .any(|(_, b)| matches!(b.status.as_str(), "running" | "scheduled"))
            || self
                .detail
                .as_ref()
                .is_some_and(|d| matches!(d.batch.status.as_str(), "running" | "scheduled"))
    }

    fn when(&self, t: Option<chrono::NaiveDateTime>) -> String {
        match t {
            None => String::new(),
            Some(t) => {
                let off = self.utc_offset.unwrap_or_else(local_offset);
                (t.and_utc().with_timezone(&off))
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            }
        }
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let wide = area.width >= 110;
        let headers: &[&str] = if wide {
            &[
                "ID",
                "Name",
                "Status",
                "Progress",
                "Sent",
                "Failed",
                "Pending",
                "Rate",
                "ETA",
                "Scheduled",
            ]
        } else {
            &[
                "ID", "Name", "Status", "Progress", "Sent", "Failed", "Pend", "Rate", "ETA",
            ]
        };
        let bar_w = if wide { 12 } else { 6 };
        let mut widths = vec![
            Constraint::Length(4),
            Constraint::Fill(1),
            Constraint::Length(9),
            Constraint::Length(bar_w as u16 + 5),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(if wide { 7 } else { 5 }),
            Constraint::Length(7),
            Constraint::Length(6),
        ];
        if wide {
            widths.push(Constraint::Length(16));
        }
        let view = TableView {
            title: "Batches",
            headers,
            widths: &widths,
        };
        view.draw(frame, area, theme, &self.table, |b| {
            let q = self.queues.get(&b.id).copied().unwrap_or_default();
            let rate = self.rates.get(&b.id).and_then(RateMeter::rate);
            let mut cells = vec![
                b.id.to_string(),
                b.name.clone(),
                b.status.clone(),
                bar(progress(b, &q), bar_w),
                b.sent_count.to_string(),
                b.failed_count.to_string(),
                q.open().to_string(),
                rate_text(rate),
                eta_text(q.open(), rate),
            ];
            if wide {
                cells.push(self.when(b.scheduled_at));
            }
            cells
        });
    }

    pub fn draw_detail(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let Some(d) = &self.detail else {
            return;
        };
        let b = &d.batch;
        let block = Block::bordered()
            .title(Span::styled(
                format!(" Batch #{} {} ", b.id, b.name),
                theme.accent(),
            ))
            .style(theme.base());
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let [info, gauge, log] = Layout::vertical([
            Constraint::Length(8),
            Constraint::Length(1),
            Constraint::Fill(1),
        ])
        .areas(inner);
        let rate = self.rates.get(&b.id).and_then(RateMeter::rate);
        let q = &d.queue;
        let mut lines = vec![
            Line::from(vec![
                Span::styled("Status    ", theme.muted()),
                Span::raw(b.status.clone()),
                Span::styled(
                    b.status_reason
                        .as_ref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default(),
                    theme.muted(),
                ),
            ]),
            Line::from(vec![
                Span::styled("Template  ", theme.muted()),
                Span::raw(d.template.clone()),
            ]),
            Line::from(vec![
                Span::styled("Groups    ", theme.muted()),
                Span::raw(d.groups.join(", ")),
            ]),
            Line::from(vec![
                Span::styled("Sent      ", theme.muted()),
                Span::raw(format!(
                    "{}   failed {} (rejected {})   pending {}   sending {}",
                    b.sent_count, b.failed_count, q.rejected, q.pending, q.sending
                )),
            ]),
            Line::from(vec![
                Span::styled("Bounces   ", theme.muted()),
                Span::raw(format!(
                    "{} hard   {} soft   unsubscribed {}",
                    d.bounces.hard_bounced, d.bounces.soft_bounced, d.bounces.unsubscribed
                )),
            ]),
            Line::from(vec![
                Span::styled("Rate      ", theme.muted()),
                Span::raw(format!(
                    "{}   ETA {}",
                    rate_text(rate),
                    eta_text(q.open(), rate)
                )),
            ]),
        ];
        let mut times = Vec::new();
        if b.scheduled_at.is_some() {
            times.push(format!("scheduled {}", self.when(b.scheduled_at)));
        }
        if b.started_at.is_some() {
            times.push(format!("started {}", self.when(b.started_at)));
        }
        if b.completed_at.is_some() {
            times.push(format!("finished {}", self.when(b.completed_at)));
        }
        lines.push(Line::from(vec![
            Span::styled("Times     ", theme.muted()),
            Span::raw(if times.is_empty() {
                "not started".to_string()
            } else {
                times.join("   ")
            }),
        ]));
        if let Some(v) = b.variables.as_ref().map(|j| &j.0)
            && let Some(o) = v.as_object()
            && !o.is_empty()
        {
            let vars: Vec<String> = o
                .iter()
                .map(|(k, v)| match v.as_str() {
                    Some(s) => format!("{k}={s}"),
                    None => format!("{k}={v}"),
                })
                .collect();
            lines.push(Line::from(vec![
                Span::styled("Variables ", theme.muted()),
                Span::raw(vars.join(", ")),
            ]));
        }
        frame.render_widget(Paragraph::new(lines), info);
        let ratio = progress(b, q).clamp(0.0, 1.0);
        frame.render_widget(
            Gauge::default()
                .gauge_style(theme.gauge())
                .ratio(ratio)
                .label(format!("{:.0}%", ratio * 100.0)),
            gauge,
        );
        let mut text = vec![Line::styled("Execution log (newest first)", theme.accent())];
        for e in &d.log {
            text.push(Line::from(vec![
                Span::styled(format!("{} ", self.when(e.created_at)), theme.muted()),
                Span::styled(format!("{:<13}", e.action), theme.key()),
                Span::raw(e.message.clone().unwrap_or_default()),
            ]));
        }
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), log);
    }
}

/// The local zone's current offset (UTC when unknown).
pub fn local_offset() -> chrono::FixedOffset {
    *chrono::Local::now().offset()
}

pub async fn load_detail(store: &Store, session: &Session, id: i32) -> DbResult<Detail> {
    let scope = scope(session)?;
    let batch = store.get_batch(scope, id).await?;
    let queue = store.queue_counts(scope, id).await?;
    let bounces = store.bounce_counts_for_batch(scope, id).await?;
    let template = store
        .get_template(scope, batch.template_id)
        .await
        .map(|t| t.name)
        .unwrap_or_else(|_| format!("#{}", batch.template_id));
    let mut groups = Vec::new();
    for g in store.batch_groups(scope, id).await? {
        groups.push(
            store
                .get_group(scope, g.group_id)
                .await
                .map(|g| g.name)
                .unwrap_or_else(|_| format!("#{}", g.group_id)),
        );
    }
    let log = store.list_execution_logs(scope, id, Page::last(12)).await?;
    let log = log.into_iter().rev().collect();
    Ok(Detail {
        batch,
        queue,
        template,
        groups,
        bounces,
        log,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_needs_half_a_second_and_forgets_old_samples() {
        let t = Instant::now();
        let mut m = RateMeter::default();
        m.push(t, 0);
        assert_eq!(m.rate(), None);
        m.push(t + Duration::from_millis(400), 40);
        assert_eq!(m.rate(), None);
        m.push(t + Duration::from_secs(2), 200);
        assert_eq!(m.rate(), Some(100.0));
        // 20 s later only the last 10 s count.
        m.push(t + Duration::from_secs(12), 1200);
        m.push(t + Duration::from_secs(22), 1300);
        assert_eq!(m.rate(), Some(10.0));
        // Counts going down (retry failed) start over.
        m.push(t + Duration::from_secs(23), 5);
        assert_eq!(m.rate(), None);
    }

    #[test]
    fn eta_and_rate_texts() {
        assert_eq!(eta_text(100, Some(10.0)), "10s");
        assert_eq!(eta_text(1000, Some(10.0)), "1m40s");
        assert_eq!(eta_text(100_000, Some(10.0)), "2h46m");
        assert_eq!(eta_text(0, Some(10.0)), "—");
        assert_eq!(eta_text(10, None), "—");
        assert_eq!(rate_text(Some(2.25)), "2.2/s");
        assert_eq!(rate_text(Some(1234.4)), "1234/s");
        assert_eq!(rate_text(None), "—");
    }
}
