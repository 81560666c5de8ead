//! Users of the tenant in view (every user for a super admin looking at all tenants): list,
//! create with a password, edit role, deactivate or activate, reset password.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};

use super::Session;
use crate::auth::make_password_blocking;
use crate::db::{DbError, DbResult, NewUser, Store, User, UserUpdate};
use crate::domain::Role;
use crate::domain::permissions::{assignable_roles, may_manage_user};
use crate::tui::theme::Theme;
use crate::tui::widgets::form::{Field, Form, required};
use crate::tui::widgets::table::{TableView, VirtualTable, body_rows};

#[derive(Debug, Clone, Default)]
pub struct Users {
    pub table: VirtualTable<User>,
}

impl Users {
    pub fn set_area(&mut self, body: Rect) {
        self.table.set_height(body_rows(body));
    }

    pub async fn load(&mut self, store: &Store, session: &Session) -> DbResult<()> {
        let scope = session.user_scope()?;
        self.table
            .sync(
                async |search| store.count_users(scope, search.as_deref()).await,
                async |page, search| store.list_users(scope, page, search.as_deref()).await,
            )
            .await
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let wide = area.width >= 110;
        let headers: &[&str] = if wide {
            &[
                "ID", "Username", "Name", "Email", "Role", "Tenant", "Active",
            ]
        } else {
            &["ID", "Username", "Email", "Role", "Active"]
        };
        let widths: Vec<Constraint> = if wide {
            vec![
                Constraint::Length(7),
                Constraint::Fill(2),
                Constraint::Fill(2),
                Constraint::Fill(3),
                Constraint::Length(12),
                Constraint::Length(6),
                Constraint::Length(6),
            ]
        } else {
            vec![
                Constraint::Length(6),
                Constraint::Fill(2),
                Constraint::Fill(3),
                Constraint::Length(12),
                Constraint::Length(6),
            ]
        };
        let view = TableView {
            title: "Users",
            headers,
            widths: &widths,
        };
        view.draw(frame, area, theme, &self.table, |u| {
            let active = if u.is_active { "yes" } else { "no" }.to_string();
            let tenant = u
                .tenant_id
                .map(|t| t.to_string())
                .unwrap_or_else(|| "—".into());
            if wide {
                vec![
                    u.id.to_string(),
                    u.username.clone(),
                    u.full_name(),
                    u.email.clone(),
                    u.role.clone(),
                    tenant,
                    active,
                ]
            } else {
                vec![
                    u.id.to_string(),
                    u.username.clone(),
                    u.email.clone(),
                    u.role.clone(),
                    active,
                ]
            }
        });
    }
}

fn roles_for(session: &Session) -> Vec<String> {
    assignable_roles(session.actor.role)
        .iter()
        .map(|r| r.to_string())
        .collect()
}

fn check_username(v: &str) -> Option<String> {
    let u = v.trim();
    if u.is_empty() {
        Some("required".into())
    } else if u.len() > 150
        || !u
            .chars()
            .all(|c| c.is_alphanumeric() || "@.+-_".contains(c))
    {
        Some("letters, digits and @ . + - _ only".into())
    } else {
        None
    }
}

fn check_email(v: &str) -> Option<String> {
    crate::domain::normalize_email(v)
        .err()
        .map(|e| e.to_string())
}

fn check_password(v: &str) -> Option<String> {
    if v.chars().count() < 8 {
        Some("at least 8 characters".into())
    } else {
        None
    }
}

pub fn new_form<P>(purpose: P, session: &Session) -> Form<P> {
    let mut fields = vec![
        Field::text("username", "Username", "").with_check(check_username),
        Field::text("email", "Email", "").with_check(check_email),
        Field::choice("role", "Role", roles_for(session), Role::User.as_str()),
        Field::password("password", "Password").with_check(check_password),
    ];
    if session.actor.is_super_admin() {
        let domain = session
            .tenant
            .as_ref()
            .map(|t| t.domain.clone())
            .unwrap_or_default();
        fields.push(Field::text("tenant", "Tenant domain", domain));
    }
    Form::new("New user", purpose, fields)
}

pub fn edit_form<P>(purpose: P, session: &Session, u: &User) -> Form<P> {
    Form::new(
        format!("Edit user {}", u.username),
        purpose,
        vec![
            Field::text("email", "Email", u.email.clone()).with_check(check_email),
            Field::choice("role", "Role", roles_for(session), &u.role),
        ],
    )
}

pub fn password_form<P>(purpose: P, u: &User) -> Form<P> {
    Form::new(
        format!("Reset password of {}", u.username),
        purpose,
        vec![
            Field::password("password", "New password").with_check(check_password),
            Field::password("again", "Repeat").with_check(required),
        ],
    )
}

fn parse_role(v: &str) -> DbResult<Role> {
    v.parse()
        .map_err(|e: crate::domain::UnknownValue| DbError::Invalid(e.to_string()))
}

fn denied(d: crate::domain::permissions::Denied) -> DbError {
    DbError::Denied(d.to_string())
}

pub async fn create<P>(store: &Store, session: &Session, form: &Form<P>) -> DbResult<User> {
    let role = parse_role(form.value("role"))?;
    may_manage_user(session.actor.role, role).map_err(denied)?;
    let domain = form.value("tenant").trim();
    let (scope, tenant_id) = if session.actor.is_super_admin() && session.tenant.is_none() {
        let all = session.actor.all_tenants()?;
        let tenant_id = if role == Role::SuperAdmin || domain.is_empty() {
            None
        } else {
            Some(store.tenant_by_domain(&all, domain).await?.id)
        };
        (crate::db::UserScope::All(all), tenant_id)
    } else if session.actor.is_super_admin() && role == Role::SuperAdmin {
        (
            crate::db::UserScope::All(session.actor.all_tenants()?),
            None,
        )
    } else if session.actor.is_super_admin() && !domain.is_empty() {
        let all = session.actor.all_tenants()?;
        let t = store.tenant_by_domain(&all, domain).await?;
        (crate::db::UserScope::All(all), Some(t.id))
    } else {
        (session.user_scope()?, session.tenant.as_ref().map(|t| t.id))
    };
    let hash = make_password_blocking(form.value("password").to_string())
        .await
        .map_err(|e| DbError::Invalid(e.to_string()))?;
    let new = NewUser {
        username: form.value("username").trim().to_string(),
        email: form.value("email").trim().to_string(),
        password_hash: hash,
        role,
        tenant_id,
        first_name: None,
        last_name: None,
    };
    store.create_user(scope, &new).await
}

pub async fn update<P>(
    store: &Store,
    session: &Session,
    target: &User,
    form: &Form<P>,
) -> DbResult<User> {
    let role = parse_role(form.value("role"))?;
    let current = parse_role(&target.role)?;
    may_manage_user(session.actor.role, current).map_err(denied)?;
    may_manage_user(session.actor.role, role).map_err(denied)?;
    if role == Role::SuperAdmin && target.tenant_id.is_some() {
        return Err(DbError::Invalid(
            "a super admin belongs to no tenant: create a new user instead".into(),
        ));
    }
    if current == Role::SuperAdmin && role != Role::SuperAdmin && target.tenant_id.is_none() {
        return Err(DbError::Invalid(
            "this super admin belongs to no tenant, so cannot take a tenant role".into(),
        ));
    }
    let upd = UserUpdate {
        email: Some(form.value("email").trim().to_string()),
        role: Some(role),
        ..UserUpdate::default()
    };
    store
        .update_user(session.user_scope()?, target.id, &upd)
        .await
}

pub async fn set_active(
    store: &Store,
    session: &Session,
    target: &User,
    active: bool,
) -> DbResult<User> {
    may_manage_user(session.actor.role, parse_role(&target.role)?).map_err(denied)?;
    if Some(target.id) == session.actor.user_id && !active {
        return Err(DbError::Invalid("you cannot deactivate yourself".into()));
    }
    let upd = UserUpdate {
        is_active: Some(active),
        ..UserUpdate::default()
    };
    store
        .update_user(session.user_scope()?, target.id, &upd)
        .await
}

pub async fn reset_password<P>(
    store: &Store,
    session: &Session,
    target: &User,
    form: &Form<P>,
) -> DbResult<()> {
    may_manage_user(session.actor.role, parse_role(&target.role)?).map_err(denied)?;
    if form.value("password") != form.value("again") {
        return Err(DbError::Invalid("the two passwords differ".into()));
    }
    let hash = make_password_blocking(form.value("password").to_string())
        .await
        .map_err(|e| DbError::Invalid(e.to_string()))?;
    store
        .set_password_hash(session.user_scope()?, target.id, &hash)
        .await
}
