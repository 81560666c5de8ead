//! Operations in the TUI: the audit hook of every write made here, the maintenance
//! commands (super admins, palette, confirmed) and the dashboard's polling while visible.

use std::time::Instant;

use super::{App, Pending, Popup};
use crate::db::{OUTCOME_FAILED, OUTCOME_OK};
use crate::tui::keymap::ScreenId;
use crate::tui::widgets::confirm::Confirm;

/// A maintenance task waiting for its confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpsPending {
    ResetUsage,
    RecountUsage,
    CleanLogs,
}

/// The audit action of a confirmation or form: its variant name in kebab case, the inner
/// one for wrapped variants (`More(DeleteGroup { .. })` -> `delete-group`). Derived from
/// `Debug`, so new variants are audited under their own name without code here.
pub fn action_name<T: std::fmt::Debug>(what: &T) -> String {
    let text = format!("{what:?}");
    let mut name = text.as_str();
    loop {
        let end = name
            .find(|c: char| !c.is_alphanumeric() && c != '_')
            .unwrap_or(name.len());
        let head = &name[..end];
        if matches!(head, "More" | "Ops" | "Dkim" | "Some" | "Box") && name[end..].starts_with('(')
        {
            name = &name[end + 1..];
            continue;
        }
        name = head;
        break;
    }
    let mut out = String::from("tui ");
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl App {
    /// Records a write made in the TUI: `ok` with the confirmation text, or `failed` with the
    /// error. The tenant is the one in view (a tenant user's own).
    pub(super) async fn audit_write(&self, action: &str, result: Result<&str, &str>) {
        let Some(s) = &self.session else { return };
        let tenant = s.tenant.as_ref().map(|t| t.id).or(s.actor.tenant_id);
        let (outcome, target) = match result {
            Ok(t) => (OUTCOME_OK, t),
            Err(e) => (OUTCOME_FAILED, e),
        };
        self.store
            .audit_outcome(&s.actor, tenant, action, target, outcome)
            .await;
    }

    pub(super) fn ask_maintenance(&mut self, task: OpsPending) {
        let (title, message) = match task {
            OpsPending::ResetUsage => (
                "Reset monthly usage",
                "Set emails_sent_this_month to 0 for every tenant not created this month? Run it once at the start of a month.",
            ),
            OpsPending::RecountUsage => (
                "Recount usage",
                "Recompute every tenant's emails_sent_this_month from the batches completed this month?",
            ),
            OpsPending::CleanLogs => (
                "Clean logs",
                "Delete email logs and batch execution logs older than each tenant's retention (default 90 and 30 days), in small chunks? Rows still queued are kept.",
            ),
        };
        self.popup = Some(Popup::Confirm(Confirm::new(
            title,
            message.to_string(),
            Pending::Ops(task),
        )));
    }

    pub(super) async fn confirmed_ops(
        &mut self,
        task: OpsPending,
    ) -> Result<(ScreenId, String), crate::db::DbError> {
        let Some(session) = &self.session else {
            return Err(crate::db::DbError::Denied("not logged in".into()));
        };
        let all = session.actor.all_tenants()?;
        let text = match task {
            OpsPending::ResetUsage => {
                let n = self.store.reset_usage(&all).await?;
                format!("monthly usage reset for {n} tenant(s)")
            }
            OpsPending::RecountUsage => {
                let changed = self.store.recount_usage(&all).await?;
                format!("usage recounted: {} tenant(s) changed", changed.len())
            }
            OpsPending::CleanLogs => {
                let reports = self
                    .store
                    .clean_logs(&all, crate::db::CleanOptions::default(), &mut |_| {})
                    .await?;
                let e: u64 = reports.iter().map(|r| r.email_logs).sum();
                let b: u64 = reports.iter().map(|r| r.batch_logs).sum();
                format!("logs cleaned: {e} email logs and {b} batch logs deleted")
            }
        };
        Ok((self.screen, text))
    }

    /// Called on every tick: while the dashboard is visible (and no popup is open) reloads
    /// its live part every second and everything every 60 s. Returns whether it reloaded.
    pub async fn poll_dashboard(&mut self, now: Instant) -> bool {
        if self.screen != ScreenId::Dashboard || self.popup.is_some() {
            return false;
        }
        let Some(session) = &self.session else {
            return false;
        };
        let result = match self.dashboard.live_due(now) {
            None => return false,
            Some(true) => self.dashboard.load(&self.store, session).await,
            Some(false) => self.dashboard.load_live(&self.store, session).await,
        };
        if let Err(e) = result {
            tracing::warn!("dashboard refresh: {e}");
        }
        self.dirty = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::action_name;

    #[derive(Debug)]
    #[allow(dead_code)]
    enum Inner {
        DeleteGroup { id: i32 },
    }
    #[derive(Debug)]
    #[allow(dead_code)]
    enum Outer {
        SetTenantStatus { id: i32 },
        More(Inner),
        NewTenant,
    }

    #[test]
    fn actions_are_named_after_their_variant() {
        assert_eq!(
            action_name(&Outer::SetTenantStatus { id: 1 }),
            "tui set-tenant-status"
        );
        assert_eq!(
            action_name(&Outer::More(Inner::DeleteGroup { id: 2 })),
            "tui delete-group"
        );
        assert_eq!(action_name(&Outer::NewTenant), "tui new-tenant");
    }
}
