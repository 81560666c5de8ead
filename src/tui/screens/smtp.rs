//! The tenant's mail settings (tenant admins and super admins): the current transport (the
//! password never shown, only whether one is stored), a form to change it or switch to the
//! outbox, a connection test whose report appears in a popup, and the tenant's sender
//! addresses (`tenants_tenantemail`, the From choices): add, deactivate, activate.

use std::path::Path;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState, Wrap};

use super::Session;
use super::templates::scope;
use crate::db::{
    DbError, DbResult, OutboxSettings, Security, SmtpServer, SmtpSettings, Store, TenantEmail,
};
use crate::secrets::Secret;
use crate::tui::theme::Theme;
use crate::tui::widgets::form::{Field, Form, check_number, required};

/// What "From" shows when no sender address is chosen.
const NO_FROM: &str = "(tenant default)";

#[derive(Debug, Clone, Default)]
pub struct Smtp {
    pub settings: Option<SmtpSettings>,
    /// The tenant's active sender addresses (the From choices).
    pub senders: Vec<TenantEmail>,
    /// Every sender address of the tenant, inactive ones included (the lower pane).
    pub all_senders: Vec<TenantEmail>,
    /// Index of the selected sender address in `all_senders`.
    pub selected: usize,
    pub loaded: bool,
}

fn opt(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// Empty (no limit) or a whole number.
fn optional_number(v: &str) -> Option<String> {
    if v.trim().is_empty() {
        None
    } else {
        check_number(v)
    }
}

fn opt_u32(v: &str) -> Option<u32> {
    v.trim().parse().ok().filter(|n| *n > 0)
}

impl Smtp {
    pub async fn load(&mut self, store: &Store, session: &Session) -> DbResult<()> {
        let Ok(scope) = scope(session) else {
            *self = Smtp::default();
            return Ok(());
        };
        self.settings = store.smtp_settings(scope).await?;
        self.all_senders = store.list_tenant_emails(scope).await?;
        self.senders = self
            .all_senders
            .iter()
            .filter(|s| s.is_active)
            .cloned()
            .collect();
        self.selected = self.selected.min(self.all_senders.len().saturating_sub(1));
        self.loaded = true;
        Ok(())
    }

    /// Moves the sender selection by `delta` rows, clamped to the list.
    pub fn move_by(&mut self, delta: isize) {
        let last = self.all_senders.len().saturating_sub(1) as isize;
        self.selected = (self.selected as isize + delta).clamp(0, last.max(0)) as usize;
    }

    pub fn selected_sender(&self) -> Option<&TenantEmail> {
        self.all_senders.get(self.selected)
    }

    fn lines(&self, theme: &Theme) -> Vec<Line<'static>> {
        let row = |k: &str, v: String| {
            Line::from(vec![
                Span::styled(format!("{k:>16}  "), theme.muted()),
                Span::raw(v),
            ])
        };
        let none = || "—".to_string();
        match &self.settings {
            None => vec![Line::raw(
                "No mail transport configured: press e to set up SMTP or the outbox.",
            )],
            Some(SmtpSettings::Outbox(o)) => vec![
                row(
                    "transport",
                    "outbox (messages written as .eml files)".into(),
                ),
                row("path", o.path.clone()),
                row("from", o.from.clone().unwrap_or_else(none)),
                row("reply-to", o.reply_to.clone().unwrap_or_else(none)),
            ],
            Some(SmtpSettings::Smtp(s)) => vec![
                row("transport", "smtp".into()),
                row("host", format!("{}:{}", s.host, s.port)),
                row("security", s.security.to_string()),
                row("username", s.username.clone().unwrap_or_else(none)),
                row(
                    "password",
                    if s.password_enc.is_some() {
                        "stored (encrypted)".into()
                    } else {
                        "none".into()
                    },
                ),
                row("from", s.from.clone().unwrap_or_else(none)),
                row("reply-to", s.reply_to.clone().unwrap_or_else(none)),
                row("connections", s.connections.to_string()),
                row(
                    "rate",
                    format!(
                        "{} per second, {} per hour",
                        s.rate_per_second
                            .map(|n| n.to_string())
                            .unwrap_or_else(|| "unlimited".into()),
                        s.rate_per_hour
                            .map(|n| n.to_string())
                            .unwrap_or_else(|| "unlimited".into())
                    ),
                ),
            ],
        }
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme, domain: Option<&str>) {
        let title = match domain {
            Some(d) => format!(" Mail transport of {d} "),
            None => " Mail transport ".to_string(),
        };
        let body = if domain.is_none() {
            vec![Line::raw(
                "Mail settings belong to a tenant: pick one on the Tenants screen first.",
            )]
        } else {
            self.lines(theme)
        };
        let [top, bottom] = if domain.is_some() {
            let high = (body.len() as u16 + 2).min(area.height.saturating_sub(5));
            Layout::vertical([Constraint::Length(high), Constraint::Fill(1)]).areas(area)
        } else {
            [area, Rect::default()]
        };
        frame.render_widget(
            Paragraph::new(body).wrap(Wrap { trim: false }).block(
                Block::bordered()
                    .title(Span::styled(title, theme.accent()))
                    .style(theme.base()),
            ),
            top,
        );
        if domain.is_some() {
            self.draw_senders(frame, bottom, theme);
        }
    }

    fn draw_senders(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let block = Block::bordered()
            .title(Span::styled(
                format!(" Sender addresses ({}) ", self.all_senders.len()),
                theme.accent(),
            ))
            .style(theme.base());
        if self.all_senders.is_empty() {
            frame.render_widget(
                Paragraph::new("No sender addresses yet: press n to add one (used as From).")
                    .block(block),
                area,
            );
            return;
        }
        let rows = self.all_senders.iter().map(|s| {
            let row = Row::new(vec![
                s.email.clone(),
                s.name.clone().unwrap_or_default(),
                if s.is_active { "active" } else { "inactive" }.to_string(),
            ]);
            if s.is_active {
                row
            } else {
                row.style(theme.muted())
            }
        });
        let table = Table::new(
            rows,
            [
                Constraint::Fill(2),
                Constraint::Fill(1),
                Constraint::Length(9),
            ],
        )
        .header(Row::new(vec!["Email", "Name", "Status"]).style(theme.accent()))
        .row_highlight_style(theme.selected())
        .block(block);
        let mut state = TableState::default().with_selected(Some(self.selected));
        frame.render_stateful_widget(table, area, &mut state);
    }

    pub fn form<P>(&self, purpose: P) -> Form<P> {
        let mut froms = vec![NO_FROM.to_string()];
        froms.extend(self.senders.iter().map(|s| s.email.clone()));
        let default = SmtpServer::new("", 587, Security::Starttls);
        let (transport, s, outbox_from, outbox_reply) = match &self.settings {
            Some(SmtpSettings::Smtp(s)) => ("smtp", s.clone(), None, None),
            Some(SmtpSettings::Outbox(o)) => {
                ("outbox", default, o.from.clone(), o.reply_to.clone())
            }
            None => ("smtp", default, None, None),
        };
        let from = s.from.clone().or(outbox_from).unwrap_or_default();
        let reply = s.reply_to.clone().or(outbox_reply).unwrap_or_default();
        let num = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
        Form::new(
            "Mail transport",
            purpose,
            vec![
                Field::choice(
                    "transport",
                    "Transport",
                    vec!["smtp".into(), "outbox".into()],
                    transport,
                ),
                Field::text("host", "Host", s.host.clone()),
                Field::number("port", "Port", s.port.to_string()),
                Field::choice(
                    "security",
                    "Security",
                    vec!["none".into(), "starttls".into(), "tls".into()],
                    &s.security.to_string(),
                ),
                Field::text(
                    "username",
                    "Username",
                    s.username.clone().unwrap_or_default(),
                ),
                Field::password("password", "Password (empty: keep)"),
                Field::choice("from", "From", froms, &from),
                Field::text("reply_to", "Reply-To", reply),
                Field::number("connections", "Connections", s.connections.to_string())
                    .with_check(required),
                Field::number("rate", "Rate per second", num(s.rate_per_second))
                    .with_check(optional_number),
                Field::number("rate_hour", "Rate per hour", num(s.rate_per_hour))
                    .with_check(optional_number),
            ],
        )
    }
}

/// The "new sender address" form.
pub fn sender_form<P>(purpose: P) -> Form<P> {
    Form::new(
        "New sender address",
        purpose,
        vec![
            Field::text("email", "Email", "").with_check(required),
            Field::text("name", "Display name", ""),
        ],
    )
}

pub async fn add_sender<P>(
    store: &Store,
    session: &Session,
    form: &Form<P>,
) -> DbResult<TenantEmail> {
    let scope = scope(session)?;
    let name = opt(form.value("name"));
    store
        .add_tenant_email(scope, form.value("email"), name.as_deref())
        .await
}

pub async fn set_sender_active(
    store: &Store,
    session: &Session,
    id: i32,
    active: bool,
) -> DbResult<()> {
    store
        .set_tenant_email_active(scope(session)?, id, active)
        .await
}

/// Saves the form: SMTP (the typed password encrypted; empty keeps the stored one) or the
/// outbox in the data dir.
pub async fn save<P>(
    store: &Store,
    session: &Session,
    config_dir: &Path,
    data_dir: &Path,
    form: &Form<P>,
) -> DbResult<SmtpSettings> {
    let scope = scope(session)?;
    let from = opt(form.value("from")).filter(|f| f != NO_FROM);
    let reply_to = opt(form.value("reply_to"));
    let old = store.smtp_settings(scope).await?;
    let settings = if form.value("transport") == "outbox" {
        let path = data_dir.join("outbox");
        let path = std::path::absolute(&path).unwrap_or(path);
        SmtpSettings::Outbox(OutboxSettings {
            path: path.display().to_string(),
            from,
            reply_to,
        })
    } else {
        let host = form.value("host").trim().to_string();
        if host.is_empty() {
            return Err(DbError::Invalid("the SMTP host is required".into()));
        }
        let port: u16 = form
            .value("port")
            .trim()
            .parse()
            .map_err(|_| DbError::Invalid("the port must be 1-65535".into()))?;
        let security: Security = form.value("security").parse().map_err(DbError::Invalid)?;
        let mut server = SmtpServer::new(host, port, security);
        server.username = opt(form.value("username"));
        server.from = from;
        server.reply_to = reply_to;
        server.connections = opt_u32(form.value("connections")).unwrap_or(4);
        server.rate_per_second = opt_u32(form.value("rate"));
        server.rate_per_hour = opt_u32(form.value("rate_hour"));
        if let Some(SmtpSettings::Smtp(o)) = &old {
            server.tls_insecure = o.tls_insecure;
        }
        let typed = opt(form.value("password")).map(Secret::new);
        crate::mail::set_password(
            config_dir,
            scope.tenant_id(),
            &mut server,
            typed.as_ref(),
            old.as_ref(),
        )
        .map_err(|e| DbError::Invalid(e.to_string()))?;
        SmtpSettings::Smtp(server)
    };
    store.set_smtp_settings(scope, &settings).await?;
    Ok(settings)
}

/// Runs the connection test of the stored settings; the report lines, ending with `ok` or
/// the error.
pub async fn test_connection(
    settings: Option<SmtpSettings>,
    config_dir: &Path,
    tenant_id: i32,
) -> Vec<String> {
    match settings {
        None => vec!["no mail transport configured".into()],
        Some(SmtpSettings::Outbox(o)) => match std::fs::create_dir_all(&o.path) {
            Ok(()) => vec![
                format!("outbox transport: messages are written to {}", o.path),
                "ok".into(),
            ],
            Err(e) => vec![format!("outbox {} is not usable: {e}", o.path)],
        },
        Some(SmtpSettings::Smtp(server)) => {
            let password = match crate::mail::stored_password(config_dir, tenant_id, &server) {
                Ok(p) => p,
                Err(e) => return vec![format!("cannot decrypt the password: {e}")],
            };
            match crate::mail::test_connection(&server, password.as_ref()).await {
                Ok(report) => {
                    let mut lines = report.lines;
                    lines.push("ok".into());
                    lines
                }
                Err((report, e)) => {
                    let mut lines = report.lines;
                    lines.push(format!("failed: {e}"));
                    lines
                }
            }
        }
    }
}
