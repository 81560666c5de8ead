//! Templates of the tenant in view: the list (create, duplicate, deactivate or activate) and
//! the editor (subject, HTML and text bodies on ratatui-textarea, undo/redo, find, save
//! recording the variables) with a live preview for a contact of a chosen group.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use serde_json::Value;
use tui_textarea::{CursorMove, TextArea};

use super::Session;
use crate::db::{
    Contact, DbError, DbResult, Group, NewTemplate, Page, Store, Template, TenantScope,
};
use crate::render::{Recipient, RenderError, TemplateSource, TenantInfo, render_message};
use crate::tui::theme::Theme;
use crate::tui::widgets::form::{Field, Form, required};
use crate::tui::widgets::table::{Keyed, TableView, VirtualTable, body_rows};

impl Keyed for Template {
    fn key(&self) -> i32 {
        self.id
    }
}

/// The tenant scope of the session's tenant in view; templates need one.
pub fn scope(session: &Session) -> DbResult<TenantScope> {
    match &session.tenant {
        Some(t) => session.actor.tenant_scope(t.id),
        None => Err(DbError::Invalid(
            "templates belong to a tenant: pick one on the Tenants screen first".into(),
        )),
    }
}

#[derive(Debug, Clone, Default)]
pub struct Templates {
    pub table: VirtualTable<Template>,
}

fn variables_of(t: &Template) -> String {
    match t.variables.as_ref().map(|j| &j.0) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

impl Templates {
    pub fn set_area(&mut self, body: Rect) {
        self.table.set_height(body_rows(body));
    }

    pub async fn load(&mut self, store: &Store, session: &Session) -> DbResult<()> {
        let Ok(scope) = scope(session) else {
            self.table.set_total(0);
            self.table.rows.clear();
            return Ok(());
        };
        self.table
            .sync(
                async |search| {
                    store
                        .count_templates_matching(scope, search.as_deref())
                        .await
                },
                async |page, search| store.list_templates(scope, page, search.as_deref()).await,
            )
            .await
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let wide = area.width >= 110;
        let headers: &[&str] = if wide {
            &["ID", "Name", "Subject", "Active", "Variables"]
        } else {
            &["ID", "Name", "Subject", "Active"]
        };
        let mut widths = vec![
            Constraint::Length(5),
            Constraint::Fill(2),
            Constraint::Fill(3),
            Constraint::Length(6),
        ];
        if wide {
            widths.push(Constraint::Fill(2));
        }
        let view = TableView {
            title: "Templates",
            headers,
            widths: &widths,
        };
        view.draw(frame, area, theme, &self.table, |t| {
            let mut cells = vec![
                t.id.to_string(),
                t.name.clone(),
                t.subject.clone(),
                if t.is_active { "yes" } else { "no" }.to_string(),
            ];
            if wide {
                cells.push(variables_of(t));
            }
            cells
        });
    }
}

pub fn new_form<P>(purpose: P) -> Form<P> {
    Form::new(
        "New template",
        purpose,
        vec![
            Field::text("name", "Name", "").with_check(required),
            Field::text("subject", "Subject", "").with_check(required),
        ],
    )
}

pub fn duplicate_form<P>(purpose: P, t: &Template) -> Form<P> {
    Form::new(
        format!("Duplicate {}", t.name),
        purpose,
        vec![Field::text("name", "New name", format!("{} (copy)", t.name)).with_check(required)],
    )
}

/// The variables of a template's parts, as recorded in `emails_emailtemplate.variables`.
fn recorded_variables(
    subject: &str,
    html: Option<&str>,
    text: Option<&str>,
) -> Result<Option<Value>, RenderError> {
    match crate::render::template_variables(subject, html, text) {
        Ok(v) => Ok(Some(Value::from(v))),
        // A template without a body yet (just created) records no variables.
        Err(RenderError::NoBody) => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn create<P>(store: &Store, session: &Session, form: &Form<P>) -> DbResult<Template> {
    let scope = scope(session)?;
    let subject = form.value("subject").trim().to_string();
    let variables =
        recorded_variables(&subject, None, None).map_err(|e| DbError::Invalid(e.to_string()))?;
    let new = NewTemplate {
        name: form.value("name").trim().to_string(),
        subject,
        body_html: None,
        body_text: None,
        variables,
    };
    store.create_template(scope, &new).await
}

pub async fn duplicate<P>(
    store: &Store,
    session: &Session,
    of: &Template,
    form: &Form<P>,
) -> DbResult<Template> {
    let scope = scope(session)?;
    let new = NewTemplate {
        name: form.value("name").trim().to_string(),
        subject: of.subject.clone(),
        body_html: of.body_html.clone(),
        body_text: of.body_text.clone(),
        variables: of.variables.as_ref().map(|j| j.0.clone()),
    };
    store.create_template(scope, &new).await
}

pub async fn set_active(
    store: &Store,
    session: &Session,
    id: i32,
    active: bool,
) -> DbResult<Template> {
    store.set_template_active(scope(session)?, id, active).await
}

// ---- the editor ----

/// The editor's text fields, in focus order.
pub const FIELDS: [&str; 3] = ["Subject", "HTML body", "Text body"];

fn area_for(text: &str, theme: &Theme) -> TextArea<'static> {
    let lines: Vec<String> = if text.is_empty() {
        vec![String::new()]
    } else {
        text.lines().map(str::to_string).collect()
    };
    let mut ta = TextArea::new(lines);
    ta.set_line_number_style(theme.muted());
    ta.set_cursor_line_style(ratatui::style::Style::default());
    ta.set_max_histories(200);
    ta
}

/// The template being edited, the group and contact the preview renders for.
#[derive(Debug, Clone)]
pub struct Editor {
    pub template: Template,
    pub fields: Vec<TextArea<'static>>,
    /// The text of each field as last saved.
    saved: Vec<Vec<String>>,
    pub focus: usize,
    /// The find prompt being typed, when open.
    pub find: Option<String>,
    pub last_find: String,
    /// Show the HTML as markup instead of readable text.
    pub raw: bool,
    pub tenant: TenantInfo,
    pub groups: Vec<Group>,
    pub group: usize,
    pub contacts: Vec<Contact>,
    pub contact: usize,
    /// The last save's refusal (syntax error) or a find miss.
    pub message: Option<String>,
}

impl Editor {
    pub async fn open(
        store: &Store,
        session: &Session,
        template: Template,
        theme: &Theme,
    ) -> DbResult<Editor> {
        let scope = scope(session)?;
        let tenant = session
            .tenant
            .as_ref()
            .map(TenantInfo::from)
            .unwrap_or_default();
        let groups = store.list_groups(scope, Page::first(100), None).await?;
        let texts = [
            template.subject.clone(),
            template.body_html.clone().unwrap_or_default(),
            template.body_text.clone().unwrap_or_default(),
        ];
        let mut fields: Vec<TextArea<'static>> = texts.iter().map(|t| area_for(t, theme)).collect();
        // The subject is one line: no line numbers.
        fields[0].remove_line_number();
        let saved = fields.iter().map(|f| f.lines().to_vec()).collect();
        let mut ed = Editor {
            template,
            fields,
            saved,
            focus: 1,
            find: None,
            last_find: String::new(),
            raw: false,
            tenant,
            groups,
            group: 0,
            contacts: Vec::new(),
            contact: 0,
            message: None,
        };
        ed.load_contacts(store, session).await?;
        Ok(ed)
    }

    /// Loads the first contacts of the chosen group.
    pub async fn load_contacts(&mut self, store: &Store, session: &Session) -> DbResult<()> {
        self.contacts.clear();
        self.contact = 0;
        if let Some(g) = self.groups.get(self.group) {
            self.contacts = store
                .list_contacts(scope(session)?, g.id, Page::first(100), None)
                .await?;
        }
        Ok(())
    }

    pub fn text(&self, i: usize) -> String {
        self.fields[i].lines().join("\n")
    }

    pub fn modified(&self) -> bool {
        self.fields
            .iter()
            .zip(&self.saved)
            .any(|(f, s)| f.lines() != s.as_slice())
    }

    pub fn source(&self) -> TemplateSource {
        let opt = |s: String| (!s.trim().is_empty()).then_some(s);
        TemplateSource {
            subject: self.text(0),
            body_html: opt(self.text(1)),
            body_text: opt(self.text(2)),
        }
    }

    pub fn current_contact(&self) -> Option<&Contact> {
        self.contacts.get(self.contact)
    }

    pub fn cycle_contact(&mut self, delta: isize) {
        let n = self.contacts.len();
        if n > 0 {
            self.contact = (self.contact as isize + delta).rem_euclid(n as isize) as usize;
        }
    }

    /// Types a key into the focused field; Enter in the subject does nothing (one line).
    pub fn input(&mut self, key: crossterm::event::KeyEvent) {
        use crossterm::event::KeyCode;
        if self.focus == 0 && matches!(key.code, KeyCode::Enter) {
            return;
        }
        self.fields[self.focus].input(key);
        self.message = None;
    }

    pub fn focus_next(&mut self, delta: isize) {
        self.focus = (self.focus as isize + delta).rem_euclid(FIELDS.len() as isize) as usize;
    }

    /// Moves the cursor to the next occurrence of the last search in the focused field,
    /// wrapping at the end.
    pub fn find_next(&mut self) {
        let needle = self.last_find.to_lowercase();
        if needle.is_empty() {
            return;
        }
        let ta = &mut self.fields[self.focus];
        let tui_textarea::DataCursor(row, col) = ta.cursor();
        let lines: Vec<String> = ta.lines().iter().map(|l| l.to_lowercase()).collect();
        let n = lines.len();
        for step in 0..=n {
            let r = (row + step) % n.max(1);
            let line = &lines[r];
            let from = if step == 0 { col + 1 } else { 0 };
            let chars: Vec<char> = line.chars().collect();
            if from > chars.len() {
                continue;
            }
            let rest: String = chars[from..].iter().collect();
            if let Some(byte) = rest.find(&needle) {
                let c = from + rest[..byte].chars().count();
                ta.move_cursor(CursorMove::Jump(r as u16, c as u16));
                self.message = None;
                return;
            }
        }
        self.message = Some(format!("'{}' not found", self.last_find));
    }

    /// Validates and stores the edits; records the variables. A syntax error is returned
    /// (with line and column) and nothing is saved.
    pub async fn save(&mut self, store: &Store, session: &Session) -> Result<Template, String> {
        let src = self.source();
        let variables = recorded_variables(
            &src.subject,
            src.body_html.as_deref(),
            src.body_text.as_deref(),
        )
        .map_err(|e| e.to_string())?;
        let new = NewTemplate {
            name: self.template.name.clone(),
            subject: src.subject,
            body_html: src.body_html,
            body_text: src.body_text,
            variables,
        };
        let scope = scope(session).map_err(|e| e.to_string())?;
        let t = store
            .update_template(scope, self.template.id, &new)
            .await
            .map_err(|e| e.to_string())?;
        self.saved = self.fields.iter().map(|f| f.lines().to_vec()).collect();
        self.template = t.clone();
        self.message = None;
        Ok(t)
    }

    /// The preview's lines: the template rendered for the chosen contact, or the error.
    pub fn preview(&self, theme: &Theme) -> Vec<Line<'static>> {
        let mut out = Vec::new();
        let group = self
            .groups
            .get(self.group)
            .map(|g| g.name.clone())
            .unwrap_or_else(|| "no group".into());
        let sample = Contact {
            id: 0,
            group_id: 0,
            email: "someone@example.com".into(),
            name: None,
            is_active: true,
            variables: None,
            created_at: None,
        };
        let contact = self.current_contact().unwrap_or(&sample);
        let position = if self.contacts.is_empty() {
            "no contacts: sample".to_string()
        } else {
            format!("{} of {}", self.contact + 1, self.contacts.len())
        };
        out.push(Line::from(vec![
            Span::styled("For ", theme.muted()),
            Span::raw(contact.email.clone()),
            Span::styled(format!(" ({group}, {position})"), theme.muted()),
        ]));
        let unsubscribe = format!("https://{}/unsubscribe", self.tenant.domain);
        let rendered = render_message(
            &self.source(),
            &Recipient::from(contact),
            None,
            &self.tenant,
            &unsubscribe,
        );
        match rendered {
            Err(e) => {
                out.push(Line::raw(""));
                out.push(Line::styled(format!("✗ {e}"), theme.error()));
            }
            Ok(r) => {
                out.push(Line::from(vec![
                    Span::styled("Subject: ", theme.accent()),
                    Span::raw(r.subject.clone()),
                ]));
                if let Some(html) = &r.html {
                    let label = if self.raw {
                        "── HTML (raw) ──"
                    } else {
                        "── HTML (as text) ──"
                    };
                    out.push(Line::styled(label, theme.accent()));
                    let shown = if self.raw {
                        html.clone()
                    } else {
                        crate::render::html_to_text(html).unwrap_or_else(|e| e.to_string())
                    };
                    out.extend(shown.lines().map(|l| Line::raw(l.to_string())));
                }
                let derived = self.source().body_text.is_none();
                out.push(Line::styled(
                    if derived {
                        "── Text (derived from HTML) ──"
                    } else {
                        "── Text ──"
                    },
                    theme.accent(),
                ));
                out.extend(r.text.lines().map(|l| Line::raw(l.to_string())));
            }
        }
        out
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                .areas(area);
        let [subject, html, text, info] = Layout::vertical([
            Constraint::Length(3),
            Constraint::Fill(3),
            Constraint::Fill(2),
            Constraint::Length(1),
        ])
        .areas(left);
        for (i, rect) in [subject, html, text].into_iter().enumerate() {
            let mut ta = self.fields[i].clone();
            let focused = i == self.focus;
            let mut title = format!(" {} ", FIELDS[i]);
            if i == 0 {
                title = format!(" {} — {} ", self.template.name, FIELDS[0]);
            }
            if self.fields[i].lines() != self.saved[i].as_slice() {
                title.push_str("* ");
            }
            ta.set_block(
                Block::bordered()
                    .title(Span::styled(
                        title,
                        if focused {
                            theme.accent()
                        } else {
                            theme.muted()
                        },
                    ))
                    .style(theme.base()),
            );
            if !focused {
                ta.set_cursor_style(theme.base());
            }
            frame.render_widget(&ta, rect);
        }
        let status = match (&self.find, &self.message) {
            (Some(f), _) => Line::from(vec![
                Span::styled("find: ", theme.key()),
                Span::raw(format!("{f}_")),
            ]),
            (None, Some(m)) => Line::styled(m.clone(), theme.error()),
            (None, None) if self.modified() => Line::styled("unsaved changes", theme.muted()),
            (None, None) => Line::styled("saved", theme.muted()),
        };
        frame.render_widget(Paragraph::new(status), info);
        frame.render_widget(
            Paragraph::new(self.preview(theme))
                .wrap(Wrap { trim: false })
                .block(
                    Block::bordered()
                        .title(Span::styled(" Preview ", theme.accent()))
                        .style(theme.base()),
                ),
            right,
        );
    }
}
