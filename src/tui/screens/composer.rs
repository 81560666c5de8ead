//! The batch composer: name, template, one or more groups, batch variables (key/value) and
//! send now or a schedule in the local time zone (shown). Ctrl-S saves a draft (or a
//! scheduled batch) and opens the review page (`engine::review`): unique recipients, quota
//! left, missing variables per recipient (these block the start), a rendered sample, and
//! the pre-flight lines `recalliq batch check` prints (DKIM of the From domain, message
//! size, text part, List-Unsubscribe, suppression hits, quota; blocking only where the
//! check is blocking).
//!
//! The review reads every recipient, which takes a while for a large batch, so the app runs
//! it in a background task ([`full_review`]) and shows "reviewing… N" meanwhile; Esc
//! cancels it. The template and group pickers query the store (a search term and a limit),
//! so any of a tenant's templates and groups can be chosen: `/` in a picker starts typing
//! the search.

use std::collections::BTreeSet;

use chrono::{FixedOffset, NaiveDateTime, TimeZone};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Wrap};
use serde_json::{Map, Value};

use super::Session;
use crate::db::{DbError, DbResult, Group, NewBatch, Page, Store, Template};
use crate::domain::BatchStatus;
use crate::engine::review::{Finding, Review, Severity, review_batch_with_progress};
use crate::tui::screens::templates::scope;
use crate::tui::theme::Theme;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Edit,
    Review,
}

/// The parts of the form, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Name,
    Template,
    Groups,
    Variables,
    Schedule,
}

const SECTIONS: [Section; 5] = [
    Section::Name,
    Section::Template,
    Section::Groups,
    Section::Variables,
    Section::Schedule,
];

/// Templates and groups a picker shows at most (the search narrows them down).
pub const PICK_LIMIT: i64 = 200;

/// The schedule format typed in the composer.
pub const SCHEDULE_FORMAT: &str = "%Y-%m-%d %H:%M";

#[derive(Debug, Clone)]
pub struct Composer {
    pub step: Step,
    pub focus: Section,
    pub name: String,
    /// The active templates matching `template_search` (at most `PICK_LIMIT`).
    pub templates: Vec<Template>,
    /// The cursor in `templates`.
    pub template: usize,
    /// The chosen template: id and name (it stays chosen when a search hides it).
    pub chosen_template: Option<(i32, String)>,
    pub template_search: String,
    /// The active groups matching `group_search` (at most `PICK_LIMIT`).
    pub groups: Vec<Group>,
    pub group_cursor: usize,
    pub chosen: BTreeSet<i32>,
    pub group_search: String,
    /// Keys go to the focused picker's search line (after `/`).
    pub searching: bool,
    pub vars: Vec<(String, String)>,
    pub var_input: String,
    pub var_cursor: usize,
    /// Empty: send now (when started); else local date and time.
    pub schedule: String,
    pub offset: FixedOffset,
    /// The last problem, shown under the form.
    pub error: Option<String>,
    /// The saved draft (after Ctrl-S).
    pub batch_id: Option<i32>,
    pub review: Option<Review>,
    /// The review running in the background, if any.
    pub reviewing: Option<Reviewing>,
    /// Counts reviews started, so the result of a cancelled one is ignored.
    pub review_token: u64,
}

/// A review running in a background task.
#[derive(Debug, Clone)]
pub struct Reviewing {
    pub token: u64,
    /// Recipients looked at so far.
    pub seen: i64,
    /// Start the batch when the review allows it (`s` on the review page).
    pub then_start: bool,
    pub abort: tokio::task::AbortHandle,
}

/// The review of a batch with the pre-flight checks it does not make itself
/// (`preflight::beyond_review`, as `recalliq batch check` prints them) appended.
/// `progress` hears how many recipients were looked at.
pub async fn full_review(
    store: &Store,
    scope: crate::db::TenantScope,
    batch_id: i32,
    config_dir: Option<std::path::PathBuf>,
    progress: &(dyn Fn(i64) + Send + Sync),
) -> Result<Review, String> {
    use crate::engine::preflight::{PreflightOptions, beyond_review, preflight};
    let mut review = review_batch_with_progress(store, scope, batch_id, progress)
        .await
        .map_err(|e| e.to_string())?;
    let opts = PreflightOptions {
        config_dir,
        ..PreflightOptions::default()
    };
    let pre = preflight(store, scope, batch_id, &opts)
        .await
        .map_err(|e| e.to_string())?;
    review
        .findings
        .extend(beyond_review(pre.checks).iter().map(Finding::from));
    Ok(review)
}

/// The active templates whose name or subject contains `search`, at most `PICK_LIMIT`.
async fn pick_templates(
    store: &Store,
    scope: crate::db::TenantScope,
    search: &str,
) -> DbResult<Vec<Template>> {
    let search = Some(search.trim()).filter(|s| !s.is_empty());
    Ok(store
        .list_templates(scope, Page::first(PICK_LIMIT), search)
        .await?
        .into_iter()
        .filter(|t| t.is_active)
        .collect())
}

/// The active groups whose name or description contains `search`, at most `PICK_LIMIT`.
async fn pick_groups(
    store: &Store,
    scope: crate::db::TenantScope,
    search: &str,
) -> DbResult<Vec<Group>> {
    let search = Some(search.trim()).filter(|s| !s.is_empty());
    Ok(store
        .list_groups(scope, Page::first(PICK_LIMIT), search)
        .await?
        .into_iter()
        .filter(|g| g.is_active)
        .collect())
}

/// "UTC+02:00" for an offset.
pub fn zone_name(offset: FixedOffset) -> String {
    let s = offset.local_minus_utc();
    let sign = if s < 0 { '-' } else { '+' };
    let s = s.abs();
    format!("UTC{sign}{:02}:{:02}", s / 3600, (s % 3600) / 60)
}

/// Parses a local "YYYY-MM-DD HH:MM" into a UTC time; `None` for an empty text.
pub fn parse_schedule(text: &str, offset: FixedOffset) -> Result<Option<NaiveDateTime>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let naive = NaiveDateTime::parse_from_str(t, SCHEDULE_FORMAT).map_err(|_| {
        format!("schedule '{t}': expected YYYY-MM-DD HH:MM (local time), e.g. 2026-12-01 09:30")
    })?;
    let local = offset
        .from_local_datetime(&naive)
        .single()
        .ok_or_else(|| format!("schedule '{t}' is not a valid local time"))?;
    let utc = local.naive_utc();
    if utc <= crate::db::now() {
        return Err(format!(
            "schedule '{t}' is in the past; leave it empty to send now"
        ));
    }
    Ok(Some(utc))
}

impl Composer {
    /// An empty composer with the tenant's active templates and groups.
    pub async fn open(store: &Store, session: &Session, offset: FixedOffset) -> DbResult<Composer> {
        let scope = scope(session)?;
        let templates = pick_templates(store, scope, "").await?;
        let groups = pick_groups(store, scope, "").await?;
        if templates.is_empty() {
            return Err(DbError::Invalid(
                "no active template: create one on the Templates screen first".into(),
            ));
        }
        if groups.is_empty() {
            return Err(DbError::Invalid(
                "no active group: create one on the Groups screen first".into(),
            ));
        }
        let chosen_template = templates.first().map(|t| (t.id, t.name.clone()));
        Ok(Composer {
            step: Step::Edit,
            focus: Section::Name,
            name: String::new(),
            templates,
            template: 0,
            chosen_template,
            template_search: String::new(),
            groups,
            group_cursor: 0,
            chosen: BTreeSet::new(),
            group_search: String::new(),
            searching: false,
            vars: Vec::new(),
            var_input: String::new(),
            var_cursor: 0,
            schedule: String::new(),
            offset,
            error: None,
            batch_id: None,
            review: None,
            reviewing: None,
            review_token: 0,
        })
    }

    /// Re-queries the pickers for their search terms (after the search changed).
    pub async fn reload_pickers(&mut self, store: &Store, session: &Session) -> DbResult<()> {
        let scope = scope(session)?;
        self.templates = pick_templates(store, scope, &self.template_search).await?;
        self.template = self
            .chosen_template
            .as_ref()
            .and_then(|(id, _)| self.templates.iter().position(|t| t.id == *id))
            .unwrap_or(0);
        self.groups = pick_groups(store, scope, &self.group_search).await?;
        self.group_cursor = 0;
        Ok(())
    }

    /// The focused picker's search line, if the focus is on a picker.
    fn search_mut(&mut self) -> Option<&mut String> {
        match self.focus {
            Section::Template => Some(&mut self.template_search),
            Section::Groups => Some(&mut self.group_search),
            _ => None,
        }
    }

    pub fn focus_next(&mut self, delta: isize) {
        self.searching = false;
        let i = SECTIONS.iter().position(|s| *s == self.focus).unwrap_or(0) as isize;
        let n = SECTIONS.len() as isize;
        self.focus = SECTIONS[((i + delta).rem_euclid(n)) as usize];
    }

    /// A key typed into the focused section; true when a picker's search changed (the app
    /// then re-queries the pickers).
    pub fn input(&mut self, key: KeyEvent) -> bool {
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            return false;
        }
        self.error = None;
        if self.searching
            && let Some(search) = self.search_mut()
        {
            match key.code {
                KeyCode::Char(c) => search.push(c),
                KeyCode::Backspace => {
                    search.pop();
                }
                KeyCode::Esc => {
                    search.clear();
                    self.searching = false;
                }
                KeyCode::Enter | KeyCode::Down => {
                    self.searching = false;
                    return false;
                }
                _ => return false,
            }
            return true;
        }
        match (self.focus, key.code) {
            (Section::Template | Section::Groups, KeyCode::Char('/')) => self.searching = true,
            (Section::Name, KeyCode::Char(c)) => self.name.push(c),
            (Section::Name, KeyCode::Backspace) => {
                self.name.pop();
            }
            (Section::Schedule, KeyCode::Char(c)) => self.schedule.push(c),
            (Section::Schedule, KeyCode::Backspace) => {
                self.schedule.pop();
            }
            (Section::Template, KeyCode::Up | KeyCode::Char('k')) => {
                self.template = self.template.saturating_sub(1);
                self.pick_template();
            }
            (Section::Template, KeyCode::Down | KeyCode::Char('j')) => {
                self.template = (self.template + 1).min(self.templates.len().saturating_sub(1));
                self.pick_template();
            }
            (Section::Template, KeyCode::Char(' ') | KeyCode::Enter) => self.pick_template(),
            (Section::Groups, KeyCode::Up | KeyCode::Char('k')) => {
                self.group_cursor = self.group_cursor.saturating_sub(1)
            }
            (Section::Groups, KeyCode::Down | KeyCode::Char('j')) => {
                self.group_cursor = (self.group_cursor + 1).min(self.groups.len().saturating_sub(1))
            }
            (Section::Groups, KeyCode::Char(' ') | KeyCode::Enter) => {
                if let Some(g) = self.groups.get(self.group_cursor)
                    && !self.chosen.remove(&g.id)
                {
                    self.chosen.insert(g.id);
                }
            }
            (Section::Variables, KeyCode::Char(c)) => self.var_input.push(c),
            (Section::Variables, KeyCode::Backspace) => {
                self.var_input.pop();
            }
            (Section::Variables, KeyCode::Up) => {
                self.var_cursor = self.var_cursor.saturating_sub(1)
            }
            (Section::Variables, KeyCode::Down) => {
                self.var_cursor = (self.var_cursor + 1).min(self.vars.len().saturating_sub(1))
            }
            (Section::Variables, KeyCode::Delete) if self.var_cursor < self.vars.len() => {
                self.vars.remove(self.var_cursor);
                self.var_cursor = self.var_cursor.min(self.vars.len().saturating_sub(1));
            }
            (Section::Variables, KeyCode::Enter) => self.add_var(),
            _ => {}
        }
        false
    }

    /// The template under the cursor becomes the chosen one.
    fn pick_template(&mut self) {
        if let Some(t) = self.templates.get(self.template) {
            self.chosen_template = Some((t.id, t.name.clone()));
        }
    }

    /// Adds `KEY=VALUE` from the input line (a key given again is replaced).
    fn add_var(&mut self) {
        let text = self.var_input.trim();
        if text.is_empty() {
            return;
        }
        let Some((k, v)) = text.split_once('=') else {
            self.error = Some(format!("variable '{text}': write KEY=VALUE"));
            return;
        };
        let k = k.trim();
        let valid = !k.is_empty()
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !k.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            self.error = Some(format!(
                "variable name '{k}': letters, digits and _ only, not starting with a digit"
            ));
            return;
        }
        let v = v.trim().to_string();
        match self.vars.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v,
            None => self.vars.push((k.to_string(), v)),
        }
        self.var_input.clear();
        self.var_cursor = self.vars.len() - 1;
    }

    /// The batch this form describes, or why it cannot be saved.
    pub fn to_new_batch(&self) -> Result<NewBatch, String> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err("the batch needs a name".into());
        }
        if self.chosen.is_empty() {
            return Err("choose at least one group (space in the Groups list)".into());
        }
        if !self.var_input.trim().is_empty() {
            return Err(format!(
                "variable '{}' not added yet: press Enter in Variables (or clear it)",
                self.var_input.trim()
            ));
        }
        let (template_id, _) = self.chosen_template.as_ref().ok_or("choose a template")?;
        let scheduled_at = parse_schedule(&self.schedule, self.offset)?;
        let variables = (!self.vars.is_empty()).then(|| {
            Value::Object(
                self.vars
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect::<Map<String, Value>>(),
            )
        });
        Ok(NewBatch {
            name: name.to_string(),
            template_id: *template_id,
            group_ids: self.chosen.iter().copied().collect(),
            variables,
            scheduled_at,
        })
    }

    /// Saves the draft (replacing the one saved before, if any) and computes its review.
    pub async fn save(&mut self, store: &Store, session: &Session) -> Result<i32, String> {
        let new = self.to_new_batch()?;
        let scope = scope(session).map_err(|e| e.to_string())?;
        if let Some(old) = self.batch_id.take() {
            // Editing after a review: the earlier draft is replaced.
            if let Ok(b) = store.get_batch(scope, old).await
                && b.status == BatchStatus::Scheduled.as_str()
            {
                let _ = store
                    .transition_batch(scope, old, BatchStatus::Draft, Some("edited"))
                    .await;
            }
            if let Err(e) = store.delete_draft_batch(scope, old).await {
                self.batch_id = Some(old);
                return Err(e.to_string());
            }
        }
        let batch = store
            .create_batch(scope, &new)
            .await
            .map_err(|e| e.to_string())?;
        self.batch_id = Some(batch.id);
        self.review = None;
        self.step = Step::Review;
        Ok(batch.id)
    }

    /// Stops the background review, if one runs (its result, if it still arrives, is
    /// ignored).
    pub fn cancel_review(&mut self) -> bool {
        match self.reviewing.take() {
            Some(r) => {
                r.abort.abort();
                true
            }
            None => false,
        }
    }

    /// A composer reopened on an existing draft for review (`s` on the batches screen).
    pub async fn review_of(
        store: &Store,
        session: &Session,
        id: i32,
        offset: FixedOffset,
    ) -> DbResult<Composer> {
        let scope = scope(session)?;
        let batch = store.get_batch(scope, id).await?;
        let mut c = Composer::open(store, session, offset).await?;
        c.name = batch.name.clone();
        let template = store.get_template(scope, batch.template_id).await?;
        c.chosen_template = Some((template.id, template.name));
        if let Some(i) = c.templates.iter().position(|t| t.id == batch.template_id) {
            c.template = i;
        }
        for g in store.batch_groups(scope, id).await? {
            c.chosen.insert(g.group_id);
        }
        if let Some(Value::Object(o)) = batch.variables.as_ref().map(|j| &j.0) {
            for (k, v) in o {
                let v = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                c.vars.push((k.clone(), v));
            }
        }
        if let Some(s) = batch.scheduled_at {
            c.schedule = s
                .and_utc()
                .with_timezone(&offset)
                .format(SCHEDULE_FORMAT)
                .to_string();
        }
        c.batch_id = Some(id);
        c.step = Step::Review;
        Ok(c)
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        match self.step {
            Step::Edit => self.draw_edit(frame, area, theme),
            Step::Review => self.draw_review(frame, area, theme),
        }
    }

    fn section_block(&self, s: Section, title: String, theme: &Theme) -> Block<'static> {
        let style = if self.focus == s {
            theme.accent()
        } else {
            theme.muted()
        };
        let mark = if self.focus == s { "▶ " } else { "" };
        Block::bordered()
            .title(Span::styled(format!(" {mark}{title} "), style))
            .border_style(style)
            .style(theme.base())
    }

    /// The search part of a picker's title: ` /term_` while typing, ` /term` once set,
    /// ` (/ search)` on the focused picker otherwise.
    fn search_hint(&self, s: Section) -> String {
        let term = match s {
            Section::Template => &self.template_search,
            Section::Groups => &self.group_search,
            _ => return String::new(),
        };
        if self.focus == s && self.searching {
            format!(" /{term}_")
        } else if !term.is_empty() {
            format!(" /{term}")
        } else if self.focus == s {
            " (/ search)".into()
        } else {
            String::new()
        }
    }

    fn draw_edit(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let outer = Block::bordered()
            .title(Span::styled(" New batch ", theme.accent()))
            .style(theme.base());
        let inner = outer.inner(area);
        frame.render_widget(outer, area);
        let [form, message] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
        let [left, right] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(form);
        let [name, schedule, vars] = Layout::vertical([
            Constraint::Length(3),
            Constraint::Length(4),
            Constraint::Fill(1),
        ])
        .areas(left);
        let [templates, groups] =
            Layout::vertical([Constraint::Fill(1), Constraint::Fill(1)]).areas(right);

        let cursor = |s: Section| if self.focus == s { "_" } else { "" };
        frame.render_widget(
            Paragraph::new(format!("{}{}", self.name, cursor(Section::Name)))
                .block(self.section_block(Section::Name, "Name".into(), theme)),
            name,
        );
        let when = if self.schedule.trim().is_empty() && self.focus != Section::Schedule {
            Line::styled("send now (when started)", theme.muted())
        } else {
            Line::raw(format!("{}{}", self.schedule, cursor(Section::Schedule)))
        };
        frame.render_widget(
            Paragraph::new(vec![
                when,
                Line::styled(
                    format!("YYYY-MM-DD HH:MM, {}", zone_name(self.offset)),
                    theme.muted(),
                ),
            ])
            .block(self.section_block(Section::Schedule, "Schedule".into(), theme)),
            schedule,
        );
        let mut var_lines: Vec<ListItem> = self
            .vars
            .iter()
            .map(|(k, v)| ListItem::new(format!("{k} = {v}")))
            .collect();
        var_lines.push(ListItem::new(Line::from(vec![
            Span::styled("+ ", theme.muted()),
            Span::raw(format!("{}{}", self.var_input, cursor(Section::Variables))),
            Span::styled(
                if self.var_input.is_empty() {
                    "KEY=VALUE, enter adds, del removes"
                } else {
                    ""
                },
                theme.muted(),
            ),
        ])));
        let mut vstate = ListState::default().with_selected(
            (self.focus == Section::Variables && !self.vars.is_empty()).then_some(self.var_cursor),
        );
        frame.render_stateful_widget(
            List::new(var_lines)
                .highlight_style(theme.selected())
                .block(self.section_block(Section::Variables, "Variables".into(), theme)),
            vars,
            &mut vstate,
        );
        let titems: Vec<ListItem> = self
            .templates
            .iter()
            .map(|t| {
                let chosen = self
                    .chosen_template
                    .as_ref()
                    .is_some_and(|(id, _)| *id == t.id);
                let mark = if chosen { "(•) " } else { "( ) " };
                ListItem::new(format!("{mark}{}", t.name))
            })
            .collect();
        let template_title = match &self.chosen_template {
            Some((_, name)) => format!("Template: {name}{}", self.search_hint(Section::Template)),
            None => format!("Template{}", self.search_hint(Section::Template)),
        };
        let mut tstate = ListState::default().with_selected(Some(self.template));
        frame.render_stateful_widget(
            List::new(titems)
                .highlight_style(if self.focus == Section::Template {
                    theme.selected()
                } else {
                    theme.base()
                })
                .block(self.section_block(Section::Template, template_title, theme)),
            templates,
            &mut tstate,
        );
        let gitems: Vec<ListItem> = self
            .groups
            .iter()
            .map(|g| {
                let mark = if self.chosen.contains(&g.id) {
                    "[x] "
                } else {
                    "[ ] "
                };
                ListItem::new(format!("{mark}{}", g.name))
            })
            .collect();
        let mut gstate = ListState::default()
            .with_selected((self.focus == Section::Groups).then_some(self.group_cursor));
        frame.render_stateful_widget(
            List::new(gitems)
                .highlight_style(theme.selected())
                .block(self.section_block(
                    Section::Groups,
                    format!(
                        "Groups ({} chosen, space){}",
                        self.chosen.len(),
                        self.search_hint(Section::Groups)
                    ),
                    theme,
                )),
            groups,
            &mut gstate,
        );
        let msg = match &self.error {
            Some(e) => Line::styled(format!("✗ {e}"), theme.error()),
            None => Line::styled(
                "tab next part · ctrl-s save draft and review · esc close",
                theme.muted(),
            ),
        };
        frame.render_widget(Paragraph::new(msg), message);
    }

    fn draw_review(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let Some(r) = &self.review else {
            let outer = Block::bordered()
                .title(Span::styled(
                    format!(
                        " Review batch #{} {} ",
                        self.batch_id.unwrap_or_default(),
                        self.name.trim()
                    ),
                    theme.accent(),
                ))
                .style(theme.base());
            let text = match (&self.reviewing, &self.error) {
                (Some(r), _) => vec![
                    Line::styled(
                        format!(
                            "reviewing… {} recipients{}",
                            r.seen,
                            if r.then_start {
                                " (the batch starts if nothing blocks it)"
                            } else {
                                ""
                            }
                        ),
                        theme.accent(),
                    ),
                    Line::styled("esc cancels the review (the draft is kept)", theme.muted()),
                ],
                (None, Some(e)) => vec![Line::styled(format!("✗ {e}"), theme.error())],
                (None, None) => vec![Line::styled("no review yet: e edit", theme.muted())],
            };
            frame.render_widget(Paragraph::new(text).block(outer), area);
            return;
        };
        let blocked = r.blocks();
        let outer = Block::bordered()
            .title(Span::styled(
                format!(" Review batch #{} {} ", r.batch_id, r.batch_name),
                theme.accent(),
            ))
            .style(theme.base());
        let inner = outer.inner(area);
        frame.render_widget(outer, area);
        let [head, body, sample, foot] = Layout::vertical([
            Constraint::Length(2),
            Constraint::Fill(2),
            Constraint::Fill(1),
            Constraint::Length(1),
        ])
        .areas(inner);
        let when = if r.status == "scheduled" && !self.schedule.trim().is_empty() {
            format!(
                "scheduled for {} {}",
                self.schedule.trim(),
                zone_name(self.offset)
            )
        } else {
            r.status.clone()
        };
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(vec![
                    Span::styled("Template ", theme.muted()),
                    Span::raw(r.template.clone()),
                    Span::styled("  Groups ", theme.muted()),
                    Span::raw(r.groups.join(", ")),
                ]),
                Line::from(vec![
                    Span::styled("Status ", theme.muted()),
                    Span::raw(when),
                    Span::styled("  Quota left ", theme.muted()),
                    Span::raw(format!("{} of {}", r.quota_left, r.quota_limit)),
                ]),
            ]),
            head,
        );
        // The summary first, then what blocks, what warns, what is fine: on a small terminal
        // the lines that matter most stay visible.
        let mut shown: Vec<&Finding> = r.findings.iter().filter(|f| f.kind != "sample").collect();
        shown.sort_by_key(|f| match (f.kind, f.severity) {
            ("recipients", _) => 0,
            (_, Severity::Blocking) => 1,
            (_, Severity::Warning) => 2,
            (_, Severity::Info) => 3,
        });
        let lines: Vec<Line> = shown
            .into_iter()
            .map(|f| {
                let (mark, style) = match f.severity {
                    Severity::Info => ("✓ ", theme.ok()),
                    Severity::Warning => ("! ", theme.warn()),
                    Severity::Blocking => ("✗ ", theme.error()),
                };
                Line::from(vec![
                    Span::styled(mark, style),
                    Span::styled(format!("{}: ", f.kind), theme.muted()),
                    Span::raw(f.message.clone()),
                ])
            })
            .collect();
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: true })
                .block(Block::bordered().title(" Findings ").style(theme.base())),
            body,
        );
        let sample_lines: Vec<Line> = match &r.sample {
            Some(s) => {
                let mut v = vec![Line::from(vec![
                    Span::styled("Subject: ", theme.muted()),
                    Span::raw(s.subject.clone()),
                ])];
                v.extend(s.text.lines().map(|l| Line::raw(l.to_string())));
                v
            }
            None => vec![Line::styled("no recipient renders", theme.muted())],
        };
        let title = match &r.sample {
            Some(s) => format!(" Sample for {} ", s.recipient),
            None => " Sample ".into(),
        };
        frame.render_widget(
            Paragraph::new(sample_lines)
                .wrap(Wrap { trim: false })
                .block(Block::bordered().title(title).style(theme.base())),
            sample,
        );
        let foot_line = if let Some(rv) = &self.reviewing {
            Line::styled(
                format!(
                    "reviewing again before the start… {} recipients (esc cancels)",
                    rv.seen
                ),
                theme.accent(),
            )
        } else if let Some(e) = &self.error {
            Line::styled(format!("✗ {e}"), theme.error())
        } else if blocked {
            Line::styled(
                "blocked: fix the findings marked ✗ (e edit, esc keeps the draft)",
                theme.error(),
            )
        } else {
            Line::styled(
                "s start sending now · e edit · esc close (the draft is kept)",
                theme.muted(),
            )
        };
        frame.render_widget(Paragraph::new(foot_line), foot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_local_time_converted_to_utc() {
        let plus2 = FixedOffset::east_opt(2 * 3600).unwrap();
        assert_eq!(parse_schedule("  ", plus2), Ok(None));
        let t = parse_schedule("2099-06-01 10:30", plus2).unwrap().unwrap();
        assert_eq!(t.to_string(), "2099-06-01 08:30:00");
        assert!(
            parse_schedule("2099-06-01", plus2)
                .unwrap_err()
                .contains("YYYY-MM-DD HH:MM")
        );
        assert!(
            parse_schedule("2000-01-01 00:00", plus2)
                .unwrap_err()
                .contains("past")
        );
        assert_eq!(zone_name(plus2), "UTC+02:00");
        assert_eq!(
            zone_name(FixedOffset::west_opt(9 * 3600 + 1800).unwrap()),
            "UTC-09:30"
        );
    }
}
