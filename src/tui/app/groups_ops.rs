//! The app's dispatch for the groups, contacts and suppression screens and the CSV import
//! popups, kept apart from `app.rs` so the shared file only gains small hooks.

use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Gauge, List, ListItem, ListState, Paragraph, Wrap};

use super::{App, FormPurpose, Pending, Popup};
use crate::csvio::{self, ParsedCsv};
use crate::db::{DbError, DbResult, Group, ImportCounts};
use crate::tui::event::ExternalEvent;
use crate::tui::keymap::ScreenId;
use crate::tui::screens::Session;
use crate::tui::screens::groups::{self, scope};
use crate::tui::screens::suppression;
use crate::tui::theme::Theme;
use crate::tui::widgets::confirm::Confirm;
use crate::tui::widgets::form::Form;

/// Forms of the groups, contacts and suppression screens.
#[derive(Debug, Clone)]
pub enum MoreForm {
    NewGroup,
    EditGroup(i32),
    NewContact(i32),
    EditContact(i32),
    CopyContacts { ids: Vec<i32>, move_them: bool },
    Export(i32),
    NewSuppression,
}

/// Confirmations of the groups, contacts and suppression screens.
#[derive(Debug, Clone)]
pub enum MorePending {
    SetGroupActive { id: i32, active: bool },
    DeleteGroup { id: i32, name: String },
    SetContactActive { id: i32, active: bool },
    DeleteContact { id: i32, email: String },
    RemoveSuppression { email: String },
}

/// One entry of the file picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub dir: bool,
}

/// A directory browser: Enter descends into a directory or chooses a file, Backspace (with
/// an empty filter) or ← goes up, typing filters the names.
#[derive(Debug, Clone)]
pub struct FilePicker {
    pub dir: PathBuf,
    pub entries: Vec<Entry>,
    pub filter: String,
    pub selected: usize,
    pub error: Option<String>,
}

impl FilePicker {
    pub fn new(dir: PathBuf) -> FilePicker {
        let mut p = FilePicker {
            dir,
            entries: Vec::new(),
            filter: String::new(),
            selected: 0,
            error: None,
        };
        p.read();
        p
    }

    fn read(&mut self) {
        self.entries.clear();
        self.selected = 0;
        self.filter.clear();
        self.error = None;
        match std::fs::read_dir(&self.dir) {
            Ok(rd) => {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') {
                        continue;
                    }
                    let dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                    self.entries.push(Entry { name, dir });
                }
                self.entries
                    .sort_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.name.cmp(&b.name)));
            }
            Err(e) => self.error = Some(format!("cannot read {}: {e}", self.dir.display())),
        }
    }

    /// The entries matching the filter; `..` first when there is a parent.
    pub fn shown(&self) -> Vec<Entry> {
        let f = self.filter.to_lowercase();
        let mut v = Vec::new();
        if self.dir.parent().is_some() && f.is_empty() {
            v.push(Entry {
                name: "..".into(),
                dir: true,
            });
        }
        v.extend(
            self.entries
                .iter()
                .filter(|e| f.is_empty() || e.name.to_lowercase().contains(&f))
                .cloned(),
        );
        v
    }

    fn up(&mut self) {
        if let Some(parent) = self.dir.parent() {
            self.dir = parent.to_path_buf();
            self.read();
        }
    }

    /// Handles a key; `Some(path)` when a file was chosen.
    fn handle_key(&mut self, key: &KeyEvent) -> Option<PathBuf> {
        let n = self.shown().len();
        match key.code {
            KeyCode::Up => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down if n > 0 => self.selected = (self.selected + 1).min(n - 1),
            KeyCode::Left => self.up(),
            KeyCode::Backspace if self.filter.is_empty() => self.up(),
            KeyCode::Backspace => {
                self.filter.pop();
                self.selected = 0;
            }
            KeyCode::Enter => {
                let e = self.shown().get(self.selected).cloned()?;
                if e.name == ".." {
                    self.up();
                } else if e.dir {
                    self.dir = self.dir.join(&e.name);
                    self.read();
                } else {
                    return Some(self.dir.join(&e.name));
                }
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.filter.push(c);
                self.selected = 0;
            }
            _ => {}
        }
        None
    }

    fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let area = popup_area(area, 70, 80);
        frame.render_widget(Clear, area);
        let block = Block::bordered()
            .title(" Import CSV: choose a file ")
            .style(theme.base());
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let [path, list, help] = Layout::vertical([
            Constraint::Length(2),
            Constraint::Fill(1),
            Constraint::Length(1),
        ])
        .areas(inner);
        let mut head = vec![Line::from(Span::styled(
            self.dir.display().to_string(),
            theme.accent(),
        ))];
        if let Some(e) = &self.error {
            head.push(Line::styled(e.clone(), theme.error()));
        } else if !self.filter.is_empty() {
            head.push(Line::from(vec![
                Span::styled("filter: ", theme.muted()),
                Span::raw(format!("{}_", self.filter)),
            ]));
        }
        frame.render_widget(Paragraph::new(head), path);
        let items: Vec<ListItem> = self
            .shown()
            .into_iter()
            .map(|e| {
                if e.dir {
                    ListItem::new(format!("{}/", e.name))
                } else {
                    ListItem::new(e.name)
                }
            })
            .collect();
        let mut state = ListState::default().with_selected(Some(self.selected));
        frame.render_stateful_widget(
            List::new(items).highlight_style(theme.selected()),
            list,
            &mut state,
        );
        frame.render_widget(
            Paragraph::new(Line::styled(
                "enter open/choose  ← or backspace up  type to filter  esc cancel",
                theme.muted(),
            )),
            help,
        );
    }
}

/// The parsed file before anything is written.
#[derive(Debug, Clone)]
pub struct Preview {
    pub path: PathBuf,
    pub group: Group,
    pub parsed: ParsedCsv,
    pub new: usize,
    pub updated: usize,
}

impl Preview {
    fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let area = popup_area(area, 90, 90);
        frame.render_widget(Clear, area);
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let block = Block::bordered()
            .title(format!(" Import {name} into {} ", self.group.name))
            .style(theme.base());
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let p = &self.parsed;
        let mut lines = vec![Line::from(vec![
            Span::styled(format!("{} new", self.new), theme.ok()),
            Span::raw(format!(
                ", {} updated, {} duplicates in the file, ",
                self.updated,
                p.duplicates.len()
            )),
            Span::styled(
                format!("{} invalid", p.invalid.len()),
                if p.invalid.is_empty() {
                    theme.base()
                } else {
                    theme.error()
                },
            ),
        ])];
        if let Some(note) = &p.encoding_note {
            lines.push(Line::styled(format!("encoding: {note}"), theme.muted()));
        }
        lines.push(Line::styled("First rows:", theme.accent()));
        for r in p.rows.iter().take(5) {
            let vars = groups::vars_text(r.variables.as_ref());
            lines.push(Line::raw(format!(
                "  {:>4}  {}  {}  {}",
                r.line,
                r.email,
                r.name.clone().unwrap_or_default(),
                vars
            )));
        }
        if !p.invalid.is_empty() {
            lines.push(Line::styled("Invalid rows:", theme.error()));
            for r in p.invalid.iter().take(5) {
                lines.push(Line::raw(format!("  line {}: {}", r.line, r.reason)));
            }
            if p.invalid.len() > 5 {
                lines.push(Line::raw(format!("  … {} more", p.invalid.len() - 5)));
            }
        }
        if !p.duplicates.is_empty() {
            lines.push(Line::styled("Duplicates (first kept):", theme.muted()));
            for d in p.duplicates.iter().take(3) {
                lines.push(Line::raw(format!(
                    "  line {}: {} (first on line {})",
                    d.line, d.email, d.first_line
                )));
            }
        }
        let keys = if p.invalid.is_empty() {
            "enter import (one transaction)  esc cancel"
        } else {
            "s skip invalid rows and import  esc cancel (enter refuses: all or nothing)"
        };
        let [body, help] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), body);
        frame.render_widget(Paragraph::new(Line::styled(keys, theme.key())), help);
    }
}

/// The import popups in order: choose a file, look at it, watch it being written.
#[derive(Debug, Clone)]
pub enum ImportPopup {
    Pick(FilePicker),
    Preview(Box<Preview>),
    Running {
        group: String,
        done: usize,
        total: usize,
    },
}

impl ImportPopup {
    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        match self {
            ImportPopup::Pick(p) => p.draw(frame, area, theme),
            ImportPopup::Preview(p) => p.draw(frame, area, theme),
            ImportPopup::Running { group, done, total } => {
                let area = popup_area(area, 60, 20).intersection(area);
                let area = Rect {
                    height: area.height.clamp(1, 3),
                    ..area
                };
                frame.render_widget(Clear, area);
                let ratio = if *total == 0 {
                    1.0
                } else {
                    (*done as f64 / *total as f64).clamp(0.0, 1.0)
                };
                frame.render_widget(
                    Gauge::default()
                        .block(
                            Block::bordered()
                                .title(format!(" Importing into {group} "))
                                .style(theme.base()),
                        )
                        .gauge_style(theme.gauge())
                        .ratio(ratio)
                        .label(format!("{done} of {total} rows")),
                    area,
                );
            }
        }
    }
}

fn popup_area(area: Rect, pct_w: u16, pct_h: u16) -> Rect {
    let w = (area.width * pct_w / 100).max(20).min(area.width);
    let h = (area.height * pct_h / 100).max(3).min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn active_word(active: bool) -> &'static str {
    if active { "activated" } else { "deactivated" }
}

impl App {
    pub(super) fn reset_tenant_screens(&mut self) {
        self.groups = Default::default();
        self.contacts = Default::default();
        self.suppressions = Default::default();
        self.logs.open(None);
        if self.screen == ScreenId::Contacts {
            self.screen = ScreenId::Groups;
        }
        self.dkim = Default::default();
        if self.screen == ScreenId::Dkim {
            self.screen = ScreenId::Smtp;
        }
    }

    /// Enter on a group: its contacts.
    pub(super) async fn open_group(&mut self) {
        let Some(g) = self.groups.table.selected_row().cloned() else {
            return;
        };
        self.contacts.open(g);
        self.goto(ScreenId::Contacts).await;
    }

    fn current_group(&self) -> Option<Group> {
        self.contacts.group.clone()
    }

    pub(super) fn open_create_more(&mut self) {
        let form = match self.screen {
            ScreenId::Groups => groups::new_group_form(MoreForm::NewGroup),
            ScreenId::Contacts => {
                let Some(g) = self.current_group() else {
                    return;
                };
                groups::new_contact_form(MoreForm::NewContact(g.id))
            }
            ScreenId::Suppression => suppression::new_form(MoreForm::NewSuppression),
            _ => return,
        };
        self.popup = Some(Popup::Form(wrap(form)));
    }

    pub(super) fn open_edit_more(&mut self) {
        let form = match self.screen {
            ScreenId::Groups => {
                let Some(g) = self.groups.table.selected_row() else {
                    return;
                };
                groups::edit_group_form(MoreForm::EditGroup(g.id), g)
            }
            ScreenId::Contacts => {
                let Some(c) = self.contacts.table.selected_row() else {
                    return;
                };
                groups::edit_contact_form(MoreForm::EditContact(c.id), c)
            }
            _ => return,
        };
        self.popup = Some(Popup::Form(wrap(form)));
    }

    pub(super) fn ask_toggle_more(&mut self) {
        let confirm = match self.screen {
            ScreenId::Groups => {
                let Some(g) = self.groups.table.selected_row() else {
                    return;
                };
                let active = !g.is_active;
                super::toggle_confirm(
                    super::activate_verb(active),
                    "group",
                    &format!("group {}", g.name),
                    if active {
                        "It can be chosen for batches again."
                    } else {
                        "New batches cannot use it; its contacts stay."
                    },
                    Pending::More(MorePending::SetGroupActive { id: g.id, active }),
                )
            }
            ScreenId::Contacts => {
                let Some(c) = self.contacts.table.selected_row() else {
                    return;
                };
                let active = !c.is_active;
                super::toggle_confirm(
                    super::activate_verb(active),
                    "contact",
                    &c.email,
                    if active {
                        "Batches mail it again."
                    } else {
                        "Batches skip it; it stays in the group."
                    },
                    Pending::More(MorePending::SetContactActive { id: c.id, active }),
                )
            }
            _ => return,
        };
        self.popup = Some(Popup::Confirm(confirm));
    }

    pub(super) fn ask_delete(&mut self) {
        let (title, message, pending) = match self.screen {
            ScreenId::Groups => {
                let Some(g) = self.groups.table.selected_row() else {
                    return;
                };
                let total = self.groups.counts.get(&g.id).map(|c| c.0).unwrap_or(0);
                (
                    "Delete group",
                    format!(
                        "Delete group {} and its {total} contacts? This cannot be undone.",
                        g.name
                    ),
                    MorePending::DeleteGroup {
                        id: g.id,
                        name: g.name.clone(),
                    },
                )
            }
            ScreenId::Contacts => {
                let Some(c) = self.contacts.table.selected_row() else {
                    return;
                };
                (
                    "Delete contact",
                    format!("Delete {} from this group? This cannot be undone.", c.email),
                    MorePending::DeleteContact {
                        id: c.id,
                        email: c.email.clone(),
                    },
                )
            }
            ScreenId::Suppression => {
                let Some(s) = self.suppressions.table.selected_row() else {
                    return;
                };
                (
                    "Remove suppression",
                    format!(
                        "Remove {} from the suppression list? Campaigns may mail it again.",
                        s.email
                    ),
                    MorePending::RemoveSuppression {
                        email: s.email.clone(),
                    },
                )
            }
            _ => return,
        };
        self.popup = Some(Popup::Confirm(Confirm::new(
            title,
            message,
            Pending::More(pending),
        )));
    }

    /// Copy (or move) the tagged or selected contacts: pick the target group.
    pub(super) async fn ask_target(&mut self, move_them: bool) {
        let (Some(session), Some(g)) = (self.session.clone(), self.current_group()) else {
            return;
        };
        let ids = self.contacts.chosen();
        if ids.is_empty() {
            self.deny("no contact selected".into());
            return;
        }
        let title = format!(
            "{} {} contact{} to",
            if move_them { "Move" } else { "Copy" },
            ids.len(),
            if ids.len() == 1 { "" } else { "s" }
        );
        match groups::target_form(
            &self.store,
            &session,
            MoreForm::CopyContacts { ids, move_them },
            title,
            g.id,
        )
        .await
        {
            Ok(form) => self.popup = Some(Popup::Form(wrap(form))),
            Err(e) => self.deny(e.to_string()),
        }
    }

    pub(super) fn ask_export(&mut self) {
        if let Some(g) = self.current_group() {
            self.popup = Some(Popup::Form(wrap(groups::export_form(
                MoreForm::Export(g.id),
                &g,
            ))));
        }
    }

    pub(super) fn open_import(&mut self) {
        if self.current_group().is_none() {
            return;
        }
        let dir = self
            .import_dir
            .clone()
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("."));
        self.popup = Some(Popup::Import(ImportPopup::Pick(FilePicker::new(dir))));
    }

    pub(super) async fn confirmed_more(
        &mut self,
        session: &Session,
        pending: MorePending,
    ) -> DbResult<(ScreenId, String)> {
        let scope = scope(session)?;
        let store = self.store.clone();
        Ok(match pending {
            MorePending::SetGroupActive { id, active } => {
                let g = store.set_group_active(scope, id, active).await?;
                (
                    ScreenId::Groups,
                    format!("group {} {}", g.name, active_word(g.is_active)),
                )
            }
            MorePending::DeleteGroup { id, name } => {
                store.delete_group(scope, id).await?;
                (ScreenId::Groups, format!("group {name} deleted"))
            }
            MorePending::SetContactActive { id, active } => {
                let c = store.set_contact_active(scope, id, active).await?;
                (
                    ScreenId::Contacts,
                    format!("{} {}", c.email, active_word(c.is_active)),
                )
            }
            MorePending::DeleteContact { id, email } => {
                store.delete_contact(scope, id).await?;
                self.contacts.tagged.remove(&id);
                (ScreenId::Contacts, format!("{email} deleted"))
            }
            MorePending::RemoveSuppression { email } => {
                suppression::remove(&store, session, &email).await?;
                (
                    ScreenId::Suppression,
                    format!("{email} may be mailed again"),
                )
            }
        })
    }

    pub(super) async fn submit_more(
        &mut self,
        session: &Session,
        purpose: &MoreForm,
        form: &Form<FormPurpose>,
    ) -> DbResult<(ScreenId, String)> {
        let store = self.store.clone();
        Ok(match purpose {
            MoreForm::NewGroup => {
                let g = groups::create_group(&store, session, form).await?;
                (ScreenId::Groups, format!("group {} created", g.name))
            }
            MoreForm::EditGroup(id) => {
                let g = groups::update_group(&store, session, *id, form).await?;
                (ScreenId::Groups, format!("group {} saved", g.name))
            }
            MoreForm::NewContact(group) => {
                let c = groups::add_contact(&store, session, *group, form).await?;
                (ScreenId::Contacts, format!("{} added", c.email))
            }
            MoreForm::EditContact(id) => {
                let c = groups::update_contact(&store, session, *id, form).await?;
                (ScreenId::Contacts, format!("{} saved", c.email))
            }
            MoreForm::CopyContacts { ids, move_them } => {
                let target = groups::target_id(form.value("target"))
                    .ok_or_else(|| DbError::Invalid("choose a target group".into()))?;
                let n = store
                    .copy_contacts(scope(session)?, ids, target, *move_them)
                    .await?;
                self.contacts.tagged.clear();
                self.groups.table.invalidate();
                (
                    ScreenId::Contacts,
                    format!(
                        "{n} contact{} {} to {}",
                        if n == 1 { "" } else { "s" },
                        if *move_them { "moved" } else { "copied" },
                        form.value("target")
                    ),
                )
            }
            MoreForm::Export(group) => {
                let n = groups::export(&store, session, *group, form).await?;
                (
                    ScreenId::Contacts,
                    format!("{n} contacts written to {}", form.value("path").trim()),
                )
            }
            MoreForm::NewSuppression => {
                let email = form.value("email").trim().to_string();
                let text = if suppression::add(&store, session, form).await? {
                    format!("{email} suppressed")
                } else {
                    format!("{email} was already suppressed")
                };
                (ScreenId::Suppression, text)
            }
        })
    }

    pub(super) async fn import_key(&mut self, popup: ImportPopup, key: KeyEvent) {
        if key.code == KeyCode::Esc && !matches!(popup, ImportPopup::Running { .. }) {
            self.info("import cancelled".into());
            return;
        }
        match popup {
            ImportPopup::Pick(mut picker) => {
                if let Some(path) = picker.handle_key(&key) {
                    match self.preview(&path).await {
                        Ok(p) => {
                            self.popup = Some(Popup::Import(ImportPopup::Preview(Box::new(p))))
                        }
                        Err(e) => {
                            picker.error = Some(e);
                            self.popup = Some(Popup::Import(ImportPopup::Pick(picker)));
                        }
                    }
                } else {
                    self.popup = Some(Popup::Import(ImportPopup::Pick(picker)));
                }
            }
            ImportPopup::Preview(p) => match key.code {
                KeyCode::Enter | KeyCode::Char('y') if p.parsed.invalid.is_empty() => {
                    self.start_import(*p).await
                }
                KeyCode::Enter | KeyCode::Char('y') => {
                    self.deny(format!(
                        "{} invalid rows: nothing imported (s skips them)",
                        p.parsed.invalid.len()
                    ));
                    self.popup = Some(Popup::Import(ImportPopup::Preview(p)));
                }
                KeyCode::Char('s') => self.start_import(*p).await,
                _ => self.popup = Some(Popup::Import(ImportPopup::Preview(p))),
            },
            running @ ImportPopup::Running { .. } => {
                self.popup = Some(Popup::Import(running));
            }
        }
    }

    async fn preview(&mut self, path: &Path) -> Result<Preview, String> {
        let group = self.current_group().ok_or("no group open")?;
        let session = self.session.clone().ok_or("not logged in")?;
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let parsed = csvio::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let scope = scope(&session).map_err(|e| e.to_string())?;
        let known = self
            .store
            .contact_ids_by_email(scope, group.id)
            .await
            .map_err(|e| e.to_string())?;
        let updated = parsed
            .rows
            .iter()
            .filter(|r| known.contains_key(&r.email.to_lowercase()))
            .count();
        Ok(Preview {
            path: path.to_path_buf(),
            group,
            new: parsed.rows.len() - updated,
            updated,
            parsed,
        })
    }

    /// Writes the preview's valid rows: in a spawned task reporting progress through the
    /// event channel when there is one, else right here.
    async fn start_import(&mut self, p: Preview) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let scope = match scope(&session) {
            Ok(s) => s,
            Err(e) => return self.deny(e.to_string()),
        };
        let total = p.parsed.rows.len();
        let group = p.group.name.clone();
        self.popup = Some(Popup::Import(ImportPopup::Running {
            group: group.clone(),
            done: 0,
            total,
        }));
        let store = self.store.clone();
        let rows = p.parsed.rows;
        let gid = p.group.id;
        match self.events.clone() {
            Some(tx) => {
                tokio::spawn(async move {
                    let progress_tx = tx.clone();
                    let mut progress = move |done: usize| {
                        let _ = progress_tx.try_send(ExternalEvent::ImportProgress { done, total });
                    };
                    let result = store
                        .import_contacts(scope, gid, &rows, &mut progress)
                        .await
                        .map_err(|e| e.to_string());
                    let _ = tx.send(ExternalEvent::ImportDone(result)).await;
                });
            }
            None => {
                let result = store
                    .import_contacts(scope, gid, &rows, &mut |_| {})
                    .await
                    .map_err(|e| e.to_string());
                self.import_done(result).await;
            }
        }
    }

    pub(super) fn import_progress(&mut self, done: usize, total: usize) {
        if let Some(Popup::Import(ImportPopup::Running {
            done: d, total: t, ..
        })) = &mut self.popup
        {
            *d = done;
            *t = total;
        }
    }

    pub(super) async fn import_done(&mut self, result: Result<ImportCounts, String>) {
        if matches!(self.popup, Some(Popup::Import(ImportPopup::Running { .. }))) {
            self.popup = None;
        }
        match result {
            Ok(c) => {
                let text = format!("imported: {} new, {} updated", c.new, c.updated);
                tracing::info!("{text}");
                self.audit_write("tui import-contacts", Ok(&text)).await;
                self.info(text);
                self.contacts.table.invalidate();
                self.groups.table.invalidate();
                self.queue
                    .push_back(crate::tui::event::AppEvent::Reload(ScreenId::Contacts));
            }
            Err(e) => {
                self.audit_write("tui import-contacts", Err(&e)).await;
                self.deny(format!("import failed, nothing written: {e}"))
            }
        }
    }
}

fn wrap(form: Form<MoreForm>) -> Form<FormPurpose> {
    Form {
        title: form.title,
        fields: form.fields,
        focus: form.focus,
        purpose: FormPurpose::More(form.purpose),
        error: form.error,
    }
}
