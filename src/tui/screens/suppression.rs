//! The tenant's suppression list: addresses no campaign mails. List (keyset, filter on email
//! and reason), add with a reason, remove after confirming.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};

use super::Session;
use super::groups::scope;
use crate::db::{DbResult, REASON_MANUAL, Store, Suppression};
use crate::tui::theme::Theme;
use crate::tui::widgets::form::{Field, Form};
use crate::tui::widgets::table::{Keyed, TableView, VirtualTable, body_rows};

impl Keyed for Suppression {
    fn key(&self) -> i32 {
        self.id
    }
}

#[derive(Debug, Clone, Default)]
pub struct Suppressions {
    pub table: VirtualTable<Suppression>,
}

impl Suppressions {
    pub fn set_area(&mut self, body: Rect) {
        self.table.set_height(body_rows(body));
    }

    pub async fn load(&mut self, store: &Store, session: &Session) -> DbResult<()> {
        let scope = scope(session)?;
        self.table
            .sync(
                async |search| {
                    store
                        .count_suppressions_matching(scope, search.as_deref())
                        .await
                },
                async |page, search| {
                    store
                        .list_suppressions(scope, page, search.as_deref())
                        .await
                },
            )
            .await
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let wide = area.width >= 110;
        let headers: &[&str] = if wide {
            &["ID", "Email", "Reason", "Note", "Batch"]
        } else {
            &["ID", "Email", "Reason", "Note"]
        };
        let mut widths = vec![
            Constraint::Length(6),
            Constraint::Fill(3),
            Constraint::Length(14),
            Constraint::Fill(2),
        ];
        if wide {
            widths.push(Constraint::Length(7));
        }
        let view = TableView {
            title: "Suppression list",
            headers,
            widths: &widths,
        };
        view.draw(frame, area, theme, &self.table, |s| {
            let mut cells = vec![
                s.id.to_string(),
                s.email.clone(),
                s.reason.clone(),
                s.note.clone().unwrap_or_default(),
            ];
            if wide {
                cells.push(
                    s.source_batch_id
                        .map(|b| format!("#{b}"))
                        .unwrap_or_default(),
                );
            }
            cells
        });
    }
}

fn check_email(v: &str) -> Option<String> {
    if v.trim().contains('@') {
        None
    } else {
        Some("an email address".into())
    }
}

pub fn new_form<P>(purpose: P) -> Form<P> {
    Form::new(
        "Suppress address",
        purpose,
        vec![
            Field::text("email", "Email", "").with_check(check_email),
            Field::text("reason", "Reason (one word)", REASON_MANUAL),
            Field::text("note", "Note", ""),
        ],
    )
}

/// Adds the form's address; false when it was already suppressed.
pub async fn add<P>(store: &Store, session: &Session, form: &Form<P>) -> DbResult<bool> {
    let note = form.value("note").trim();
    store
        .suppress(
            scope(session)?,
            form.value("email"),
            form.value("reason"),
            (!note.is_empty()).then_some(note),
            None,
        )
        .await
}

pub async fn remove(store: &Store, session: &Session, email: &str) -> DbResult<bool> {
    store.unsuppress(scope(session)?, email).await
}
