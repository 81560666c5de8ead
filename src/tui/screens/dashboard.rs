//! The dashboard: counts of the tenant in view and its monthly quota. A placeholder that the
//! reports issue enriches; for a super admin without a tenant it sums up the installation.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph};

use super::{Session, usage_ratio};
use crate::db::{DbResult, Store, Tenant};
use crate::tui::theme::Theme;

#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    pub tenant: Option<Tenant>,
    pub groups: Option<i64>,
    pub templates: Option<i64>,
    pub batches: Option<i64>,
    pub users: i64,
    pub tenants: Option<i64>,
}

impl Dashboard {
    pub async fn load(store: &Store, session: &Session) -> DbResult<Dashboard> {
        let users = store.count_users(session.user_scope()?, None).await?;
        match &session.tenant {
            Some(t) => {
                let scope = session.actor.tenant_scope(t.id)?;
                Ok(Dashboard {
                    tenant: Some(store.get_tenant(scope).await?),
                    groups: Some(store.count_groups(scope).await?),
                    templates: Some(store.count_templates(scope).await?),
                    batches: Some(store.count_batches(scope).await?),
                    users,
                    tenants: None,
                })
            }
            None => {
                let all = session.actor.all_tenants()?;
                Ok(Dashboard {
                    users,
                    tenants: Some(store.count_tenants(&all, None).await?),
                    ..Dashboard::default()
                })
            }
        }
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let title = match &self.tenant {
            Some(t) => format!(" Dashboard — {} ", t.name),
            None => " Dashboard — all tenants ".to_string(),
        };
        let block = Block::bordered()
            .title(Span::styled(title, theme.accent()))
            .style(theme.base());
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let [counts, gauge, hint] = Layout::vertical([
            Constraint::Length(6),
            Constraint::Length(3),
            Constraint::Fill(1),
        ])
        .areas(inner);
        let line = |label: &str, value: Option<i64>| {
            Line::from(vec![
                Span::styled(format!("  {label:<12}"), theme.muted()),
                Span::styled(
                    value.map(|v| v.to_string()).unwrap_or_else(|| "—".into()),
                    theme.accent(),
                ),
            ])
        };
        let mut lines = vec![Line::from("")];
        if let Some(n) = self.tenants {
            lines.push(line("Tenants", Some(n)));
        }
        if self.tenant.is_some() {
            lines.push(line("Groups", self.groups));
            lines.push(line("Templates", self.templates));
            lines.push(line("Batches", self.batches));
        }
        lines.push(line("Users", Some(self.users)));
        frame.render_widget(Paragraph::new(lines), counts);
        match &self.tenant {
            Some(t) => {
                let ratio = usage_ratio(t).clamp(0.0, 1.0);
                let label = format!(
                    "{} of {} emails this month ({} plan, {})",
                    t.emails_sent_this_month, t.monthly_email_limit, t.plan, t.status
                );
                frame.render_widget(
                    Gauge::default()
                        .block(Block::bordered().title(" Monthly quota "))
                        .gauge_style(theme.gauge())
                        .ratio(ratio)
                        .label(label),
                    gauge,
                );
            }
            None => frame.render_widget(
                Paragraph::new(Line::styled(
                    "  Choose a tenant on the Tenants screen (2, then enter) to see its figures.",
                    theme.muted(),
                )),
                hint,
            ),
        }
    }
}
