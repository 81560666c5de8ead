//! Who is acting, and the proofs of access the store demands. `TenantScope` and
//! `AllTenants` can only be obtained from an `Actor` that is allowed them, so store calls
//! cannot reach another tenant's rows by passing a bare id.

use super::{DbError, DbResult, User};
use crate::domain::Role;

/// The person (or the shell) on whose behalf the store is used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<i32>,
    pub username: String,
    pub role: Role,
    pub tenant_id: Option<i32>,
}

/// Proof that the caller may act inside exactly one tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TenantScope {
    tenant_id: i32,
}

impl TenantScope {
    pub fn tenant_id(&self) -> i32 {
        self.tenant_id
    }
}

/// Proof that the caller may see and change every tenant (super admins, the shell).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllTenants(());

impl Actor {
    /// The operator at the shell running CLI commands with the database's credentials:
    /// whoever holds those can already do anything, so this actor is a super admin.
    pub fn system() -> Actor {
        Actor {
            user_id: None,
            username: "system".to_string(),
            role: Role::SuperAdmin,
            tenant_id: None,
        }
    }

    /// The actor of a logged-in user. A user whose role is unknown or who lacks the tenant
    /// their role needs is refused rather than guessed at.
    pub fn from_user(user: &User) -> DbResult<Actor> {
        let role: Role = user
            .role
            .parse()
            .map_err(|e: crate::domain::UnknownValue| DbError::Denied(e.to_string()))?;
        if role.needs_tenant() && user.tenant_id.is_none() {
            return Err(DbError::Denied(format!(
                "user '{}' has role {role} but belongs to no tenant",
                user.username
            )));
        }
        Ok(Actor {
            user_id: Some(user.id),
            username: user.username.clone(),
            role,
            tenant_id: if role == Role::SuperAdmin {
                None
            } else {
                user.tenant_id
            },
        })
    }

    pub fn is_super_admin(&self) -> bool {
        self.role == Role::SuperAdmin
    }

    /// Scope into `tenant_id`: super admins anywhere, everyone else only their own tenant.
    pub fn tenant_scope(&self, tenant_id: i32) -> DbResult<TenantScope> {
        if self.is_super_admin() || self.tenant_id == Some(tenant_id) {
            Ok(TenantScope { tenant_id })
        } else {
            Err(DbError::Denied(format!(
                "{} may not act in tenant #{tenant_id}",
                self.username
            )))
        }
    }

    /// The tenant a tenant-bound user belongs to.
    pub fn own_scope(&self) -> DbResult<TenantScope> {
        match self.tenant_id {
            Some(id) => Ok(TenantScope { tenant_id: id }),
            None => Err(DbError::Denied(format!(
                "{} belongs to no tenant; choose one",
                self.username
            ))),
        }
    }

    pub fn all_tenants(&self) -> DbResult<AllTenants> {
        if self.is_super_admin() {
            Ok(AllTenants(()))
        } else {
            Err(DbError::Denied(format!(
                "only a super admin may act across tenants ({} is {})",
                self.username, self.role
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(role: Role, tenant: Option<i32>) -> Actor {
        Actor {
            user_id: Some(1),
            username: "u".into(),
            role,
            tenant_id: tenant,
        }
    }

    #[test]
    fn tenant_users_only_reach_their_own_tenant() {
        for role in [Role::TenantAdmin, Role::Staff, Role::User] {
            let a = actor(role, Some(7));
            assert_eq!(a.tenant_scope(7).unwrap().tenant_id(), 7);
            assert!(matches!(a.tenant_scope(8), Err(DbError::Denied(_))));
            assert!(a.all_tenants().is_err());
        }
    }

    #[test]
    fn super_admin_reaches_every_tenant() {
        let a = actor(Role::SuperAdmin, None);
        assert_eq!(a.tenant_scope(8).unwrap().tenant_id(), 8);
        assert!(a.all_tenants().is_ok());
        assert!(a.own_scope().is_err());
    }
}
