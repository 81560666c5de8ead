//! Groups (contact lists) of the tenant in view: the list with total and active contact
//! counts, create, rename/describe, deactivate/activate, delete; Enter opens the group's
//! contacts (the contacts screen): add, edit name and variables, deactivate, delete, copy
//! or move the selected or tagged contacts to another group, export to CSV.

use std::collections::{BTreeSet, HashMap};

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use serde_json::{Map, Value};

use super::Session;
use crate::db::{Contact, DbError, DbResult, Group, NewContact, Store, TenantScope};
use crate::tui::theme::Theme;
use crate::tui::widgets::form::{Field, Form, required};
use crate::tui::widgets::table::{Keyed, TableView, VirtualTable, body_rows};

impl Keyed for Group {
    fn key(&self) -> i32 {
        self.id
    }
}

impl Keyed for Contact {
    fn key(&self) -> i32 {
        self.id
    }
}

/// The tenant the session acts in: the one in view, else the user's own.
pub fn scope(session: &Session) -> DbResult<TenantScope> {
    match &session.tenant {
        Some(t) => session.actor.tenant_scope(t.id),
        None => session.actor.own_scope(),
    }
}

#[derive(Debug, Clone, Default)]
pub struct Groups {
    pub table: VirtualTable<Group>,
    /// Total and active contacts of the loaded groups.
    pub counts: HashMap<i32, (i64, i64)>,
}

impl Groups {
    pub fn set_area(&mut self, body: Rect) {
        self.table.set_height(body_rows(body));
    }

    pub async fn load(&mut self, store: &Store, session: &Session) -> DbResult<()> {
        let scope = scope(session)?;
        self.table
            .sync(
                async |search| store.count_groups_matching(scope, search.as_deref()).await,
                async |page, search| store.list_groups(scope, page, search.as_deref()).await,
            )
            .await?;
        let mut counts = HashMap::new();
        for g in &self.table.rows {
            counts.insert(g.id, store.contact_counts(scope, g.id).await?);
        }
        self.counts = counts;
        Ok(())
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let wide = area.width >= 110;
        let headers: &[&str] = &["ID", "Name", "Description", "Status", "Contacts", "Active"];
        let widths = [
            Constraint::Length(5),
            Constraint::Fill(2),
            Constraint::Fill(if wide { 3 } else { 2 }),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(8),
        ];
        let view = TableView {
            title: "Groups",
            headers,
            widths: &widths,
        };
        view.draw(frame, area, theme, &self.table, |g| {
            let (total, active) = self.counts.get(&g.id).copied().unwrap_or((0, 0));
            vec![
                g.id.to_string(),
                g.name.clone(),
                g.description.clone().unwrap_or_default(),
                if g.is_active { "active" } else { "inactive" }.to_string(),
                total.to_string(),
                active.to_string(),
            ]
        });
    }
}

pub fn new_group_form<P>(purpose: P) -> Form<P> {
    Form::new(
        "New group",
        purpose,
        vec![
            Field::text("name", "Name", "").with_check(required),
            Field::text("description", "Description", ""),
        ],
    )
}

pub fn edit_group_form<P>(purpose: P, g: &Group) -> Form<P> {
    Form::new(
        format!("Edit group {}", g.name),
        purpose,
        vec![
            Field::text("name", "Name", g.name.clone()).with_check(required),
            Field::text(
                "description",
                "Description",
                g.description.clone().unwrap_or_default(),
            ),
        ],
    )
}

pub async fn create_group<P>(store: &Store, session: &Session, form: &Form<P>) -> DbResult<Group> {
    let description = form.value("description").trim();
    store
        .create_group(
            scope(session)?,
            form.value("name"),
            (!description.is_empty()).then_some(description),
        )
        .await
}

pub async fn update_group<P>(
    store: &Store,
    session: &Session,
    id: i32,
    form: &Form<P>,
) -> DbResult<Group> {
    store
        .update_group(
            scope(session)?,
            id,
            Some(form.value("name")),
            Some(form.value("description").trim()),
        )
        .await
}

/// The contacts of one group.
#[derive(Debug, Clone, Default)]
pub struct Contacts {
    pub group: Option<Group>,
    pub table: VirtualTable<Contact>,
    /// Contacts tagged with space, for copy/move.
    pub tagged: BTreeSet<i32>,
}

impl Contacts {
    pub fn set_area(&mut self, body: Rect) {
        self.table.set_height(body_rows(body));
    }

    /// Shows `group`'s contacts from the first row.
    pub fn open(&mut self, group: Group) {
        let height = self.table.height;
        *self = Contacts {
            group: Some(group),
            ..Contacts::default()
        };
        self.table.set_height(height);
    }

    pub async fn load(&mut self, store: &Store, session: &Session) -> DbResult<()> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        let scope = scope(session)?;
        self.table
            .sync(
                async |search| {
                    store
                        .count_contacts(scope, group.id, search.as_deref())
                        .await
                },
                async |page, search| {
                    store
                        .list_contacts(scope, group.id, page, search.as_deref())
                        .await
                },
            )
            .await
    }

    /// The tagged contacts, or the selected one when none is tagged.
    pub fn chosen(&self) -> Vec<i32> {
        if self.tagged.is_empty() {
            self.table
                .selected_row()
                .map(|c| c.id)
                .into_iter()
                .collect()
        } else {
            self.tagged.iter().copied().collect()
        }
    }

    pub fn toggle_tag(&mut self) {
        if let Some(c) = self.table.selected_row() {
            let id = c.id;
            if !self.tagged.remove(&id) {
                self.tagged.insert(id);
            }
            self.table.move_by(1);
        }
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let wide = area.width >= 110;
        let title = match &self.group {
            Some(g) if self.tagged.is_empty() => format!("Contacts of {}", g.name),
            Some(g) => format!("Contacts of {} ({} tagged)", g.name, self.tagged.len()),
            None => "Contacts".to_string(),
        };
        let headers: &[&str] = &["", "ID", "Email", "Name", "Status", "Variables"];
        let widths = [
            Constraint::Length(1),
            Constraint::Length(6),
            Constraint::Fill(3),
            Constraint::Fill(2),
            Constraint::Length(9),
            Constraint::Fill(if wide { 3 } else { 2 }),
        ];
        let view = TableView {
            title: &title,
            headers,
            widths: &widths,
        };
        view.draw(frame, area, theme, &self.table, |c| {
            vec![
                if self.tagged.contains(&c.id) {
                    "*"
                } else {
                    " "
                }
                .to_string(),
                c.id.to_string(),
                c.email.clone(),
                c.name.clone().unwrap_or_default(),
                if c.is_active { "active" } else { "inactive" }.to_string(),
                vars_text(c.variables.as_ref().map(|j| &j.0)),
            ]
        });
    }
}

/// Variables as `key=value; key=value` (keys sorted), the way the edit form shows them.
pub fn vars_text(vars: Option<&Value>) -> String {
    let Some(Value::Object(map)) = vars else {
        return String::new();
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    keys.iter()
        .map(|k| {
            let v = match &map[k.as_str()] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Parses `key=value; key=value` (`;` or newline separated) into a JSON object; an empty
/// text clears the variables.
pub fn parse_vars(text: &str) -> Result<Value, String> {
    let mut map = Map::new();
    for part in text.split([';', '\n']) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((k, v)) = part.split_once('=') else {
            return Err(format!("'{part}': write key=value"));
        };
        let k = k.trim();
        if k.is_empty() {
            return Err(format!("'{part}': the key is empty"));
        }
        map.insert(k.to_string(), Value::String(v.trim().to_string()));
    }
    Ok(Value::Object(map))
}

fn check_vars(v: &str) -> Option<String> {
    parse_vars(v).err()
}

fn check_email(v: &str) -> Option<String> {
    let v = v.trim();
    if v.is_empty() {
        Some("required".into())
    } else if !v.contains('@') {
        Some("not an email address".into())
    } else {
        None
    }
}

pub fn new_contact_form<P>(purpose: P) -> Form<P> {
    Form::new(
        "Add contact",
        purpose,
        vec![
            Field::text("email", "Email", "").with_check(check_email),
            Field::text("name", "Name", ""),
            Field::text("vars", "Variables k=v; k=v", "").with_check(check_vars),
        ],
    )
}

pub fn edit_contact_form<P>(purpose: P, c: &Contact) -> Form<P> {
    Form::new(
        format!("Edit contact {}", c.email),
        purpose,
        vec![
            Field::text("name", "Name", c.name.clone().unwrap_or_default()),
            Field::text(
                "vars",
                "Variables k=v; k=v",
                vars_text(c.variables.as_ref().map(|j| &j.0)),
            )
            .with_check(check_vars),
        ],
    )
}

pub async fn add_contact<P>(
    store: &Store,
    session: &Session,
    group_id: i32,
    form: &Form<P>,
) -> DbResult<Contact> {
    let vars = parse_vars(form.value("vars")).map_err(DbError::Invalid)?;
    let name = form.value("name").trim();
    let new = NewContact {
        email: form.value("email").trim().to_string(),
        name: (!name.is_empty()).then(|| name.to_string()),
        variables: match &vars {
            Value::Object(m) if m.is_empty() => None,
            _ => Some(vars),
        },
    };
    store.add_contact(scope(session)?, group_id, &new).await
}

pub async fn update_contact<P>(
    store: &Store,
    session: &Session,
    id: i32,
    form: &Form<P>,
) -> DbResult<Contact> {
    let vars = parse_vars(form.value("vars")).map_err(DbError::Invalid)?;
    store
        .update_contact(
            scope(session)?,
            id,
            Some(form.value("name").trim()),
            Some(vars),
        )
        .await
}

/// The form asking where to copy or move contacts: the other groups of the tenant.
pub async fn target_form<P>(
    store: &Store,
    session: &Session,
    purpose: P,
    title: String,
    from: i32,
) -> DbResult<Form<P>> {
    let scope = scope(session)?;
    let mut names = Vec::new();
    let mut page = crate::db::Page::first(500);
    loop {
        let rows = store.list_groups(scope, page, None).await?;
        let Some(last) = rows.last().map(|g| g.id) else {
            break;
        };
        let n = rows.len();
        names.extend(
            rows.into_iter()
                .filter(|g| g.id != from)
                .map(|g| format!("#{} {}", g.id, g.name)),
        );
        if n < 500 {
            break;
        }
        page = crate::db::Page::after(last, 500);
    }
    if names.is_empty() {
        return Err(DbError::Invalid(
            "there is no other group: create one first".into(),
        ));
    }
    let first = names[0].clone();
    Ok(Form::new(
        title,
        purpose,
        vec![Field::choice("target", "Target group (←/→)", names, &first)],
    ))
}

/// The group id of a target choice (`#12 name`).
pub fn target_id(choice: &str) -> Option<i32> {
    choice
        .strip_prefix('#')?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub fn export_form<P>(purpose: P, group: &Group) -> Form<P> {
    let file: String = group
        .name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Form::new(
        format!("Export {}", group.name),
        purpose,
        vec![Field::text("path", "File", format!("{file}.csv")).with_check(required)],
    )
}

/// Writes the group's contacts to `path`; returns how many.
pub async fn export<P>(
    store: &Store,
    session: &Session,
    group_id: i32,
    form: &Form<P>,
) -> DbResult<usize> {
    let contacts = store.all_contacts(scope(session)?, group_id).await?;
    let rows: Vec<(String, Option<String>, Option<Value>)> = contacts
        .into_iter()
        .map(|c| (c.email, c.name, c.variables.map(|j| j.0)))
        .collect();
    let path = form.value("path").trim().to_string();
    let mut buf = Vec::new();
    crate::csvio::write_contacts(&mut buf, &rows)
        .map_err(|e| DbError::Invalid(format!("cannot write CSV: {e}")))?;
    std::fs::write(&path, buf)
        .map_err(|e| DbError::Invalid(format!("cannot write {path}: {e}")))?;
    Ok(rows.len())
}
