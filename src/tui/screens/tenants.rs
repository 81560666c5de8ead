//! Tenants (super admins): the list with usage, create, edit name / plan / monthly limit,
//! suspend or activate, and Enter to look at one tenant (the tenant switcher).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Block, Gauge};

use super::{Session, bar, usage_ratio};
use crate::db::{DbResult, NewTenant, Store, Tenant, TenantUpdate};
use crate::domain::{TenantPlan, TenantStatus};
use crate::tui::theme::Theme;
use crate::tui::widgets::form::{Field, Form, required};
use crate::tui::widgets::table::{TableView, VirtualTable, body_rows};

#[derive(Debug, Clone, Default)]
pub struct Tenants {
    pub table: VirtualTable<Tenant>,
}

/// The parts of the tenants screen.
pub fn layout(area: Rect) -> [Rect; 2] {
    Layout::vertical([Constraint::Fill(1), Constraint::Length(3)]).areas(area)
}

impl Tenants {
    pub fn set_area(&mut self, body: Rect) {
        self.table.set_height(body_rows(layout(body)[0]));
    }

    /// Brings the window in line with the selection (count, then the pages it needs).
    pub async fn load(&mut self, store: &Store, session: &Session) -> DbResult<()> {
        let all = session.actor.all_tenants()?;
        self.table
            .sync(
                async |search| store.count_tenants(&all, search.as_deref()).await,
                async |page, search| store.list_tenants(&all, page, search.as_deref()).await,
            )
            .await
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let [list, detail] = layout(area);
        let wide = area.width >= 110;
        let headers: &[&str] = if wide {
            &[
                "ID", "Name", "Domain", "Plan", "Status", "Limit", "Sent", "Usage",
            ]
        } else {
            &["ID", "Name", "Domain", "Plan", "Status", "Usage"]
        };
        let widths: Vec<Constraint> = if wide {
            vec![
                Constraint::Length(5),
                Constraint::Fill(2),
                Constraint::Fill(2),
                Constraint::Length(12),
                Constraint::Length(9),
                Constraint::Length(9),
                Constraint::Length(9),
                Constraint::Length(16),
            ]
        } else {
            vec![
                Constraint::Length(4),
                Constraint::Fill(2),
                Constraint::Fill(2),
                Constraint::Length(12),
                Constraint::Length(9),
                Constraint::Length(11),
            ]
        };
        let view = TableView {
            title: "Tenants",
            headers,
            widths: &widths,
        };
        view.draw(frame, list, theme, &self.table, |t| {
            let mut cells = vec![
                t.id.to_string(),
                t.name.clone(),
                t.domain.clone(),
                t.plan.clone(),
                t.status.clone(),
            ];
            if wide {
                cells.push(t.monthly_email_limit.to_string());
                cells.push(t.emails_sent_this_month.to_string());
                cells.push(bar(usage_ratio(t), 10));
            } else {
                cells.push(bar(usage_ratio(t), 5));
            }
            cells
        });
        if let Some(t) = self.table.selected_row() {
            let label = format!(
                "{}: {} of {} emails this month",
                t.domain, t.emails_sent_this_month, t.monthly_email_limit
            );
            frame.render_widget(
                Gauge::default()
                    .block(Block::bordered().title(" Usage ").style(theme.base()))
                    .gauge_style(theme.gauge())
                    .ratio(usage_ratio(t).clamp(0.0, 1.0))
                    .label(label),
                detail,
            );
        }
    }
}

fn plans() -> Vec<String> {
    TenantPlan::ALL.iter().map(|p| p.to_string()).collect()
}

fn check_domain(v: &str) -> Option<String> {
    let d = v.trim();
    if d.is_empty() {
        return Some("required".into());
    }
    let ok = d.len() <= 100
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !d.starts_with(['.', '-'])
        && !d.ends_with(['.', '-']);
    if ok {
        None
    } else {
        Some("letters, digits, '-' and '.' only".into())
    }
}

pub fn new_form<P>(purpose: P) -> Form<P> {
    Form::new(
        "New tenant",
        purpose,
        vec![
            Field::text("name", "Name", "").with_check(required),
            Field::text("domain", "Domain", "").with_check(check_domain),
            Field::choice("plan", "Plan", plans(), "basic"),
            Field::number("limit", "Monthly limit", "1000"),
        ],
    )
}

pub fn edit_form<P>(purpose: P, t: &Tenant) -> Form<P> {
    Form::new(
        format!("Edit tenant {}", t.domain),
        purpose,
        vec![
            Field::text("name", "Name", t.name.clone()).with_check(required),
            Field::choice("plan", "Plan", plans(), &t.plan),
            Field::number("limit", "Monthly limit", t.monthly_email_limit.to_string()),
        ],
    )
}

fn parse_form_limit(v: &str) -> Option<i32> {
    v.trim().parse().ok()
}

pub async fn create<P>(store: &Store, session: &Session, form: &Form<P>) -> DbResult<Tenant> {
    let all = session.actor.all_tenants()?;
    let new = NewTenant {
        name: form.value("name").trim().to_string(),
        domain: form.value("domain").trim().to_string(),
        plan: form.value("plan").parse().ok(),
        monthly_email_limit: parse_form_limit(form.value("limit")),
        ..NewTenant::default()
    };
    store.create_tenant(&all, &new).await
}

pub async fn update<P>(
    store: &Store,
    session: &Session,
    id: i32,
    form: &Form<P>,
) -> DbResult<Tenant> {
    let all = session.actor.all_tenants()?;
    let upd = TenantUpdate {
        name: Some(form.value("name").trim().to_string()),
        plan: form.value("plan").parse().ok(),
        monthly_email_limit: parse_form_limit(form.value("limit")),
        ..TenantUpdate::default()
    };
    store.update_tenant(&all, id, &upd).await
}

/// The status a toggle moves `t` to: suspended tenants become active, others suspended.
pub fn toggled_status(t: &Tenant) -> TenantStatus {
    if t.status == TenantStatus::Suspended.as_str() {
        TenantStatus::Active
    } else {
        TenantStatus::Suspended
    }
}

pub async fn set_status(
    store: &Store,
    session: &Session,
    id: i32,
    status: TenantStatus,
) -> DbResult<Tenant> {
    let all = session.actor.all_tenants()?;
    store.set_tenant_status(&all, id, status).await
}
