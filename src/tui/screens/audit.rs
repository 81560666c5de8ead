//! The audit log (tab `0 Audit`): logins and writes, newest at the bottom, `/` filters on
//! actor, action, target, outcome and origin. Super admins see every entry (or the
//! switched-to tenant's), tenant admins their tenant's; other roles are refused with the
//! reason (`Action::ViewAudit`).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};

use super::Session;
use crate::db::{AuditFilter, AuditRecord, DbResult, Store};
use crate::tui::theme::Theme;
use crate::tui::widgets::table::{Keyed, TableView, VirtualTable, body_rows};

impl Keyed for AuditRecord {
    fn key(&self) -> i32 {
        self.id
    }
}

#[derive(Debug, Clone, Default)]
pub struct Audit {
    pub table: VirtualTable<AuditRecord>,
    /// Opened at least once (the first opening jumps to the newest entry).
    opened: bool,
}

impl Audit {
    pub fn set_area(&mut self, body: Rect) {
        self.table.set_height(body_rows(body));
    }

    pub async fn load(&mut self, store: &Store, session: &Session) -> DbResult<()> {
        crate::domain::permissions::allowed(
            session.actor.role,
            crate::domain::permissions::Action::ViewAudit,
        )
        .map_err(|d| crate::db::DbError::Denied(d.to_string()))?;
        let scope = session.user_scope()?;
        self.sync(store, scope).await?;
        if !self.opened {
            self.opened = true;
            self.table.end();
            self.sync(store, scope).await?;
        }
        Ok(())
    }

    async fn sync(&mut self, store: &Store, scope: crate::db::UserScope) -> DbResult<()> {
        self.table
            .sync(
                async |search| {
                    let filter = AuditFilter {
                        search,
                        tenant_id: None,
                    };
                    store.count_audit(scope, &filter).await
                },
                async |page, search| {
                    let filter = AuditFilter {
                        search,
                        tenant_id: None,
                    };
                    store.list_audit(scope, &filter, page).await
                },
            )
            .await
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let wide = area.width >= 110;
        let headers: &[&str] = if wide {
            &[
                "ID",
                "Time (UTC)",
                "Actor",
                "Tenant",
                "Action",
                "Outcome",
                "Target",
                "Origin",
            ]
        } else {
            &["Time (UTC)", "Actor", "Action", "Outcome", "Target"]
        };
        let widths: Vec<Constraint> = if wide {
            vec![
                Constraint::Length(6),
                Constraint::Length(19),
                Constraint::Length(12),
                Constraint::Length(6),
                Constraint::Length(18),
                Constraint::Length(7),
                Constraint::Fill(3),
                Constraint::Fill(2),
            ]
        } else {
            vec![
                Constraint::Length(11),
                Constraint::Length(9),
                Constraint::Length(14),
                Constraint::Length(7),
                Constraint::Fill(1),
            ]
        };
        let view = TableView {
            title: "Audit log",
            headers,
            widths: &widths,
        };
        view.draw(frame, area, theme, &self.table, |a| {
            if wide {
                vec![
                    a.id.to_string(),
                    a.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    a.actor.clone(),
                    a.tenant_id.map(|t| format!("#{t}")).unwrap_or_default(),
                    a.action.clone(),
                    a.outcome.clone(),
                    a.target.clone(),
                    a.origin.clone(),
                ]
            } else {
                vec![
                    a.created_at.format("%m-%d %H:%M").to_string(),
                    a.actor.clone(),
                    a.action.clone(),
                    a.outcome.clone(),
                    a.target.clone(),
                ]
            }
        });
    }
}
