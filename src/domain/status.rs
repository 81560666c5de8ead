//! The string value sets of the seed schema (roles, plans, statuses). The database stores
//! these exact strings; the web app reads them too, so they must never change spelling.

use std::fmt;
use std::str::FromStr;

/// A value read from input or from the database that is not in the spec's value set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} '{value}' (expected one of: {expected})")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
    pub expected: String,
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in the spec's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The exact string stored in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim() {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownValue {
                        kind: $kind,
                        value: other.to_string(),
                        expected: [$($text),+].join(", "),
                    }),
                }
            }
        }
    };
}

string_enum!(
    /// `core_user.role`.
    Role, "role", {
        SuperAdmin => "super_admin",
        TenantAdmin => "tenant_admin",
        Staff => "staff",
        User => "user",
    }
);

string_enum!(
    /// `tenants_tenant.plan`.
    TenantPlan, "plan", {
        Basic => "basic",
        Professional => "professional",
        Enterprise => "enterprise",
    }
);

string_enum!(
    /// `tenants_tenant.status`.
    TenantStatus, "tenant status", {
        Active => "active",
        Suspended => "suspended",
        Trial => "trial",
    }
);

string_enum!(
    /// `batches_batch.status`.
    BatchStatus, "batch status", {
        Draft => "draft",
        Scheduled => "scheduled",
        Running => "running",
        Paused => "paused",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

string_enum!(
    /// `logs_emaillog.status`.
    EmailStatus, "email status", {
        Pending => "pending",
        Sending => "sending",
        Sent => "sent",
        Failed => "failed",
        Bounced => "bounced",
        Rejected => "rejected",
    }
);

impl Role {
    /// Super admins belong to no tenant; every other role belongs to exactly one.
    pub fn needs_tenant(self) -> bool {
        self != Role::SuperAdmin
    }
}

impl BatchStatus {
    /// The legal transitions of a batch. Everything else is refused by the store.
    pub fn can_transition_to(self, next: BatchStatus) -> bool {
        use BatchStatus::*;
        matches!(
            (self, next),
            (Draft, Scheduled)
                | (Draft, Running)
                | (Draft, Cancelled)
                | (Scheduled, Draft)
                | (Scheduled, Running)
                | (Scheduled, Cancelled)
                | (Running, Paused)
                | (Running, Completed)
                | (Running, Failed)
                | (Running, Cancelled)
                | (Paused, Running)
                | (Paused, Cancelled)
                | (Paused, Failed)
                | (Completed, Running)
                | (Failed, Running)
        )
    }

    /// A batch in one of these states will not send again without an operator.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            BatchStatus::Completed | BatchStatus::Failed | BatchStatus::Cancelled
        )
    }
}

impl EmailStatus {
    /// Final outcomes: the engine never picks these rows up again by itself.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            EmailStatus::Sent | EmailStatus::Failed | EmailStatus::Bounced | EmailStatus::Rejected
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_value_set() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), *r);
        }
        for s in BatchStatus::ALL {
            assert_eq!(s.as_str().parse::<BatchStatus>().unwrap(), *s);
        }
        for s in EmailStatus::ALL {
            assert_eq!(s.as_str().parse::<EmailStatus>().unwrap(), *s);
        }
        for s in TenantStatus::ALL {
            assert_eq!(s.as_str().parse::<TenantStatus>().unwrap(), *s);
        }
        for p in TenantPlan::ALL {
            assert_eq!(p.as_str().parse::<TenantPlan>().unwrap(), *p);
        }
    }

    #[test]
    fn value_sets_are_exactly_the_specs() {
        let roles: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(roles, ["super_admin", "tenant_admin", "staff", "user"]);
        let batch: Vec<_> = BatchStatus::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            batch,
            [
                "draft",
                "scheduled",
                "running",
                "paused",
                "completed",
                "failed",
                "cancelled"
            ]
        );
        let email: Vec<_> = EmailStatus::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            email,
            [
                "pending", "sending", "sent", "failed", "bounced", "rejected"
            ]
        );
    }

    #[test]
    fn unknown_role_names_the_choices() {
        let err = "admin".parse::<Role>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown role 'admin' (expected one of: super_admin, tenant_admin, staff, user)"
        );
    }

    #[test]
    fn batch_state_machine_refuses_illegal_moves() {
        use BatchStatus::*;
        assert!(Draft.can_transition_to(Running));
        assert!(Running.can_transition_to(Paused));
        assert!(Paused.can_transition_to(Running));
        assert!(!Cancelled.can_transition_to(Running));
        assert!(!Completed.can_transition_to(Draft));
        assert!(!Draft.can_transition_to(Completed));
        for s in BatchStatus::ALL {
            assert!(
                !s.can_transition_to(*s),
                "{s} -> {s} must not be a transition"
            );
        }
    }
}
