//! The dashboard: the spec's "Tenant Statistics" (counts and the monthly quota gauge),
//! running and paused batches with live gauges, "Email Activity by Date" for the last 30
//! days as a bar chart with the success rate, and "Batch Performance" of the latest
//! batches. A super admin without a tenant sees every tenant; everyone else the tenant in
//! view. While the dashboard is visible the app polls it (`live_due`): the live part every
//! second, everything every 60 s.

use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveTime};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Gauge, LineGauge, Paragraph, Row, Table};

use super::Session;
use crate::db::{
    ActivityDay, BatchPerformance, BatchProgress, DbResult, Store, TenantStats, UserScope,
};
use crate::tui::theme::Theme;

/// Days of the activity chart.
pub const ACTIVITY_DAYS: i64 = 30;
/// Batches in the performance table.
const PERFORMANCE_ROWS: i64 = 20;
const LIVE_EVERY: Duration = Duration::from_secs(1);
const FULL_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    /// A tenant's name, or None for all tenants.
    pub tenant_name: Option<String>,
    /// One row per tenant in view (one for a tenant).
    pub stats: Vec<TenantStats>,
    pub running: Vec<BatchProgress>,
    /// Oldest first, one per day of the last `ACTIVITY_DAYS` (zeros where nothing was sent).
    pub days: Vec<ActivityDay>,
    pub performance: Vec<BatchPerformance>,
    /// One tenant in view: its bounces and unsubscribes of the last `ACTIVITY_DAYS` days.
    pub bounces: Option<crate::db::BounceCounts>,
    live_at: Option<Instant>,
    full_at: Option<Instant>,
}

fn scope(session: &Session) -> DbResult<UserScope> {
    session.user_scope()
}

impl Dashboard {
    /// Loads everything.
    pub async fn load(&mut self, store: &Store, session: &Session) -> DbResult<()> {
        let scope = scope(session)?;
        self.tenant_name = session.tenant.as_ref().map(|t| t.name.clone());
        self.stats = store.tenant_stats(scope).await?;
        self.running = store.active_batches(scope).await?;
        self.performance = store.batch_performance(scope, PERFORMANCE_ROWS).await?;
        let today = crate::db::now().date();
        let from = (today - chrono::Duration::days(ACTIVITY_DAYS - 1)).and_time(NaiveTime::MIN);
        let to = crate::db::now();
        let found = store.email_activity(scope, from, to).await?;
        self.days = fill_days(today, &found);
        self.bounces = match scope {
            UserScope::Tenant(t) => Some(store.bounce_counts_for_tenant(t, Some(from)).await?),
            UserScope::All(_) => None,
        };
        let now = Instant::now();
        self.live_at = Some(now);
        self.full_at = Some(now);
        Ok(())
    }

    /// Reloads the live part (quota and running batches) only.
    pub async fn load_live(&mut self, store: &Store, session: &Session) -> DbResult<()> {
        let scope = scope(session)?;
        self.stats = store.tenant_stats(scope).await?;
        self.running = store.active_batches(scope).await?;
        self.live_at = Some(Instant::now());
        Ok(())
    }

    /// What the poller should reload now: None, `Some(false)` the live part, `Some(true)` all.
    pub fn live_due(&self, now: Instant) -> Option<bool> {
        let due = |at: Option<Instant>, every| at.is_none_or(|t| now.duration_since(t) >= every);
        if due(self.full_at, FULL_EVERY) {
            Some(true)
        } else if due(self.live_at, LIVE_EVERY) {
            Some(false)
        } else {
            None
        }
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let title = match &self.tenant_name {
            Some(t) => format!(" Dashboard — {t} "),
            None => " Dashboard — all tenants ".to_string(),
        };
        let block = Block::bordered()
            .title(Span::styled(title, theme.accent()))
            .style(theme.base());
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let stats_height = if self.tenant_name.is_some() {
            4
        } else {
            (self.stats.len().clamp(1, 6) + 3) as u16
        };
        let running_height = (self.running.len().clamp(1, 6) + 2) as u16;
        let [stats, running, bottom] = Layout::vertical([
            Constraint::Length(stats_height),
            Constraint::Length(running_height),
            Constraint::Fill(1),
        ])
        .areas(inner);
        if self.tenant_name.is_some() {
            self.draw_tenant(frame, stats, theme);
        } else {
            self.draw_tenants(frame, stats, theme);
        }
        self.draw_running(frame, running, theme);
        let [chart, perf] = if bottom.width >= 100 {
            Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(bottom)
        } else {
            Layout::vertical([Constraint::Fill(1), Constraint::Fill(1)]).areas(bottom)
        };
        self.draw_activity(frame, chart, theme);
        self.draw_performance(frame, perf, theme);
    }

    fn draw_tenant(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let block = Block::bordered().title(" Tenant statistics ");
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let Some(s) = self.stats.first() else {
            frame.render_widget(
                Paragraph::new(Line::styled(
                    " tenant inactive: no statistics",
                    theme.muted(),
                )),
                inner,
            );
            return;
        };
        let [counts, gauge] =
            Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(inner);
        let item = |label: &str, v: i64| {
            vec![
                Span::styled(format!(" {label} "), theme.muted()),
                Span::styled(format!("{v}  "), theme.accent()),
            ]
        };
        let mut spans = Vec::new();
        spans.extend(item("Users", s.user_count));
        spans.extend(item("Groups", s.group_count));
        spans.extend(item("Templates", s.template_count));
        spans.extend(item("Batches", s.batch_count));
        if let Some(b) = &self.bounces {
            spans.extend(item("Bounced", b.hard_bounced + b.soft_bounced));
            spans.extend(item("Unsubscribed", b.unsubscribed));
        }
        spans.push(Span::styled(format!(" status {}", s.status), theme.muted()));
        frame.render_widget(Paragraph::new(Line::from(spans)), counts);
        frame.render_widget(
            Gauge::default()
                .gauge_style(theme.gauge())
                .ratio(s.quota_ratio())
                .label(format!(
                    "quota {} of {} emails this month",
                    s.emails_sent_this_month, s.monthly_email_limit
                )),
            gauge,
        );
    }

    fn draw_tenants(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let rows: Vec<Row> = self
            .stats
            .iter()
            .map(|s| {
                Row::new(vec![
                    s.domain.clone(),
                    s.user_count.to_string(),
                    s.group_count.to_string(),
                    s.template_count.to_string(),
                    s.batch_count.to_string(),
                    format!(
                        "{} {}/{}",
                        super::bar(s.quota_ratio(), 10),
                        s.emails_sent_this_month,
                        s.monthly_email_limit
                    ),
                ])
            })
            .collect();
        let n = rows.len();
        let table = Table::new(
            rows,
            [
                Constraint::Fill(2),
                Constraint::Length(6),
                Constraint::Length(7),
                Constraint::Length(10),
                Constraint::Length(8),
                Constraint::Fill(3),
            ],
        )
        .header(
            Row::new(vec![
                "Tenant",
                "Users",
                "Groups",
                "Templates",
                "Batches",
                "Quota",
            ])
            .style(theme.accent()),
        )
        .block(Block::bordered().title(format!(" Tenant statistics ({n} active) ")));
        frame.render_widget(table, area);
    }

    fn draw_running(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let block = Block::bordered().title(" Running batches ");
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if self.running.is_empty() {
            frame.render_widget(
                Paragraph::new(Line::styled(
                    " no batch is running or paused",
                    theme.muted(),
                )),
                inner,
            );
            return;
        }
        let rows =
            Layout::vertical(vec![Constraint::Length(1); inner.height as usize]).split(inner);
        for (b, row) in self.running.iter().zip(rows.iter()) {
            let who = if self.tenant_name.is_none() {
                format!(" ({})", b.domain)
            } else {
                String::new()
            };
            let label = format!(
                "#{} {}{who} {} · sent {} failed {} left {} ",
                b.batch_id, b.name, b.status, b.sent_count, b.failed_count, b.remaining
            );
            let style = if b.status == "paused" {
                theme.muted()
            } else {
                theme.gauge()
            };
            frame.render_widget(
                LineGauge::default()
                    .filled_style(style)
                    .ratio(b.ratio())
                    .label(label),
                *row,
            );
        }
    }

    fn draw_activity(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let sent: i64 = self.days.iter().map(|d| d.sent_emails).sum();
        let failed: i64 = self.days.iter().map(|d| d.failed_emails).sum();
        let total: i64 = self.days.iter().map(|d| d.total_emails).sum();
        let rate = crate::db::percent(sent, total)
            .map(|r| format!("{r:.1}% success"))
            .unwrap_or_else(|| "nothing sent".into());
        let title = format!(" Email activity, {ACTIVITY_DAYS} days: {total} ({rate}) ");
        let block = Block::bordered().title(title);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if inner.height < 2 {
            return;
        }
        let [chart, axis] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
        let bars: Vec<Bar> = self
            .days
            .iter()
            .map(|d| {
                Bar::default()
                    .value(d.total_emails.max(0) as u64)
                    .text_value(String::new())
                    .style(
                        if d.failed_emails > 0 && d.failed_emails * 2 >= d.total_emails {
                            theme.error()
                        } else {
                            theme.gauge()
                        },
                    )
            })
            .collect();
        let n = bars.len().max(1) as u16;
        // Bars one column apart when there is room, side by side when not.
        let gap = u16::from(chart.width + 1 >= 2 * n);
        let width = ((chart.width + gap) / n).saturating_sub(gap).clamp(1, 3);
        frame.render_widget(
            BarChart::default()
                .data(BarGroup::default().bars(&bars))
                .bar_width(width)
                .bar_gap(gap),
            chart,
        );
        let span = ((width + gap) * n).min(axis.width);
        let left = format!("-{}d", ACTIVITY_DAYS - 1);
        let right = format!("today · {sent} sent, {failed} failed");
        let pad = (span as usize).saturating_sub(left.len() + right.chars().count());
        frame.render_widget(
            Paragraph::new(Line::styled(
                format!("{left}{}{right}", " ".repeat(pad)),
                theme.muted(),
            )),
            axis,
        );
    }

    fn draw_performance(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let rows: Vec<Row> = self
            .performance
            .iter()
            .map(|b| {
                Row::new(vec![
                    format!("#{}", b.batch_id),
                    b.name.clone(),
                    b.status.clone(),
                    b.sent_count.to_string(),
                    b.failed_count.to_string(),
                    b.success_rate
                        .map(|r| format!("{r:.1}%"))
                        .unwrap_or_else(|| "—".into()),
                    b.duration_minutes
                        .map(format_minutes)
                        .unwrap_or_else(|| "—".into()),
                ])
            })
            .collect();
        let table = Table::new(
            rows,
            [
                Constraint::Length(5),
                Constraint::Fill(1),
                Constraint::Length(9),
                Constraint::Length(6),
                Constraint::Length(6),
                Constraint::Length(7),
                Constraint::Length(8),
            ],
        )
        .header(
            Row::new(vec![
                "ID", "Batch", "Status", "Sent", "Failed", "Success", "Duration",
            ])
            .style(theme.accent()),
        )
        .block(Block::bordered().title(" Batch performance "));
        frame.render_widget(table, area);
    }
}

/// `12m 05s`, `3h 20m`, `45s`.
pub fn format_minutes(m: f64) -> String {
    let secs = (m * 60.0).round().max(0.0) as i64;
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m {:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h {:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// One entry per day from `today - ACTIVITY_DAYS + 1` to `today`, oldest first.
pub fn fill_days(today: NaiveDate, found: &[ActivityDay]) -> Vec<ActivityDay> {
    (0..ACTIVITY_DAYS)
        .rev()
        .map(|back| {
            let date = today - chrono::Duration::days(back);
            found
                .iter()
                .find(|d| d.date == date)
                .cloned()
                .unwrap_or(ActivityDay {
                    date,
                    total_emails: 0,
                    sent_emails: 0,
                    failed_emails: 0,
                    success_rate: 0.0,
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(format_minutes(0.5), "30s");
        assert_eq!(format_minutes(12.0 + 5.0 / 60.0), "12m 05s");
        assert_eq!(format_minutes(200.0), "3h 20m");
    }

    #[test]
    fn activity_fills_every_day() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 31).unwrap();
        let one = ActivityDay {
            date: NaiveDate::from_ymd_opt(2026, 3, 30).unwrap(),
            total_emails: 4,
            sent_emails: 3,
            failed_emails: 1,
            success_rate: 75.0,
        };
        let days = fill_days(today, std::slice::from_ref(&one));
        assert_eq!(days.len(), 30);
        assert_eq!(days[29].date, today);
        assert_eq!(days[28], one);
        assert_eq!(days[0].date, NaiveDate::from_ymd_opt(2026, 3, 2).unwrap());
    }
}
