//! The permission matrix: which role may do what. Pure, so the TUI (and later the CLI and
//! the engine) ask one place, and the answer carries a reason a person can read.

use std::fmt;

use super::Role;

/// Something a user may try to do. Tenant scoping (which tenant) is the store's job
/// (`db::scope`); this answers only "may this role do this kind of thing at all".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Create, edit, suspend or activate tenants.
    ManageTenants,
    /// Act inside any tenant (the tenant switcher).
    SwitchTenant,
    /// Create users, change roles, deactivate, reset passwords.
    ManageUsers,
    /// A tenant's SMTP settings.
    ManageSmtp,
    EditGroups,
    EditContacts,
    EditTemplates,
    EditBatches,
    /// Start, pause, resume, cancel, retry batches.
    ControlBatches,
    /// Read anything in one's own scope.
    View,
    /// Read the audit log (super admins all of it, tenant admins their tenant's).
    ViewAudit,
    /// Installation-wide maintenance (usage counters, log cleaning).
    Maintenance,
}

impl Action {
    pub const ALL: &'static [Action] = &[
        Action::ManageTenants,
        Action::SwitchTenant,
        Action::ManageUsers,
        Action::ManageSmtp,
        Action::EditGroups,
        Action::EditContacts,
        Action::EditTemplates,
        Action::EditBatches,
        Action::ControlBatches,
        Action::View,
        Action::ViewAudit,
        Action::Maintenance,
    ];

    /// What the action is, in words for a denial message.
    pub fn describe(self) -> &'static str {
        match self {
            Action::ManageTenants => "manage tenants",
            Action::SwitchTenant => "switch tenants",
            Action::ManageUsers => "manage users",
            Action::ManageSmtp => "change SMTP settings",
            Action::EditGroups => "edit groups",
            Action::EditContacts => "edit contacts",
            Action::EditTemplates => "edit templates",
            Action::EditBatches => "edit batches",
            Action::ControlBatches => "start, pause or cancel batches",
            Action::View => "view data",
            Action::ViewAudit => "view the audit log",
            Action::Maintenance => "run maintenance tasks",
        }
    }
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub role: Role,
    pub action: Action,
    /// A more specific reason than the role's, when there is one.
    pub detail: Option<&'static str>,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(detail) = self.detail {
            return f.write_str(detail);
        }
        let who = match self.role {
            Role::SuperAdmin => "a super admin",
            Role::TenantAdmin => "a tenant admin",
            Role::Staff => "staff",
            Role::User => "a read-only user",
        };
        let needs = match self.action {
            Action::ManageTenants | Action::SwitchTenant | Action::Maintenance => "super admin",
            Action::ManageUsers | Action::ManageSmtp | Action::ViewAudit => {
                "tenant admin or super admin"
            }
            Action::View => "any role",
            _ => "staff, tenant admin or super admin",
        };
        write!(
            f,
            "{who} may not {} (needs {needs})",
            self.action.describe()
        )
    }
}

impl std::error::Error for Denied {}

/// May `role` perform `action`?
pub fn allowed(role: Role, action: Action) -> Result<(), Denied> {
    use Action::*;
    let ok = match role {
        Role::SuperAdmin => true,
        Role::TenantAdmin => !matches!(action, ManageTenants | SwitchTenant | Maintenance),
        Role::Staff => matches!(
            action,
            EditGroups | EditContacts | EditTemplates | EditBatches | ControlBatches | View
        ),
        Role::User => action == View,
    };
    if ok {
        Ok(())
    } else {
        Err(Denied {
            role,
            action,
            detail: None,
        })
    }
}

/// May `actor` create or change a user whose role is (or becomes) `target`? Tenant admins
/// manage their tenant's users but never super admins.
pub fn may_manage_user(actor: Role, target: Role) -> Result<(), Denied> {
    allowed(actor, Action::ManageUsers)?;
    if actor != Role::SuperAdmin && target == Role::SuperAdmin {
        return Err(Denied {
            role: actor,
            action: Action::ManageUsers,
            detail: Some("only a super admin may manage super admins"),
        });
    }
    Ok(())
}

/// The roles `actor` may hand out.
pub fn assignable_roles(actor: Role) -> &'static [Role] {
    match actor {
        Role::SuperAdmin => Role::ALL,
        Role::TenantAdmin => &[Role::TenantAdmin, Role::Staff, Role::User],
        Role::Staff | Role::User => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn super_admin_may_do_everything() {
        for &a in Action::ALL {
            assert!(allowed(Role::SuperAdmin, a).is_ok(), "{a:?}");
        }
    }

    #[test]
    fn tenant_admin_everything_in_tenant_but_tenants() {
        for &a in Action::ALL {
            let ok = allowed(Role::TenantAdmin, a).is_ok();
            assert_eq!(
                ok,
                !matches!(
                    a,
                    Action::ManageTenants | Action::SwitchTenant | Action::Maintenance
                ),
                "{a:?}"
            );
        }
        assert!(allowed(Role::TenantAdmin, Action::ManageUsers).is_ok());
        assert!(allowed(Role::TenantAdmin, Action::ManageSmtp).is_ok());
    }

    #[test]
    fn staff_edits_campaign_data_only() {
        let yes = [
            Action::EditGroups,
            Action::EditContacts,
            Action::EditTemplates,
            Action::EditBatches,
            Action::ControlBatches,
            Action::View,
        ];
        for &a in Action::ALL {
            assert_eq!(allowed(Role::Staff, a).is_ok(), yes.contains(&a), "{a:?}");
        }
    }

    #[test]
    fn user_is_read_only() {
        for &a in Action::ALL {
            assert_eq!(allowed(Role::User, a).is_ok(), a == Action::View, "{a:?}");
        }
    }

    #[test]
    fn tenant_admin_never_manages_super_admins() {
        assert!(may_manage_user(Role::TenantAdmin, Role::Staff).is_ok());
        assert!(may_manage_user(Role::TenantAdmin, Role::SuperAdmin).is_err());
        assert!(may_manage_user(Role::SuperAdmin, Role::SuperAdmin).is_ok());
        assert!(may_manage_user(Role::Staff, Role::User).is_err());
        assert!(!assignable_roles(Role::TenantAdmin).contains(&Role::SuperAdmin));
        assert!(assignable_roles(Role::User).is_empty());
    }

    #[test]
    fn denial_says_why() {
        let d = allowed(Role::User, Action::EditGroups).unwrap_err();
        assert_eq!(
            d.to_string(),
            "a read-only user may not edit groups (needs staff, tenant admin or super admin)"
        );
    }
}
