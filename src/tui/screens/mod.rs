//! Full screens. Each owns its state, loads its data from the store (async, before a draw)
//! and draws from state only. They never call each other: the app routes between them.

pub mod audit;
pub mod batches;
pub mod composer;
pub mod dashboard;
pub mod dkim;
pub mod groups;
pub mod login;
pub mod logs;
pub mod smtp;
pub mod suppression;
pub mod templates;
pub mod tenants;
pub mod users;

use crate::db::{Actor, DbResult, Tenant, User, UserScope};

/// Who is logged in and which tenant they are looking at.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub actor: Actor,
    /// The tenant in view: a tenant user's own; for a super admin the switched-to one, or
    /// none (all tenants).
    pub tenant: Option<Tenant>,
}

impl Session {
    pub fn user_scope(&self) -> DbResult<UserScope> {
        match (&self.tenant, self.actor.is_super_admin()) {
            (Some(t), _) => Ok(UserScope::Tenant(self.actor.tenant_scope(t.id)?)),
            (None, true) => Ok(UserScope::All(self.actor.all_tenants()?)),
            (None, false) => Ok(UserScope::Tenant(self.actor.own_scope()?)),
        }
    }
}

/// A text bar for a fraction, for table cells: `█████░░░░░  50%`.
pub fn bar(ratio: f64, width: usize) -> String {
    let r = if ratio.is_finite() {
        ratio.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let full = (r * width as f64).round() as usize;
    format!(
        "{}{} {:>3}%",
        "█".repeat(full),
        "░".repeat(width - full),
        (r * 100.0).round() as u32
    )
}

pub fn usage_ratio(t: &Tenant) -> f64 {
    if t.monthly_email_limit <= 0 {
        if t.emails_sent_this_month > 0 {
            1.0
        } else {
            0.0
        }
    } else {
        t.emails_sent_this_month as f64 / t.monthly_email_limit as f64
    }
}
