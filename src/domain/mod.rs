//! Plain types and rules of RecallIQ, free of I/O: roles, statuses and the value sets the
//! web app's schema fixes, the permission matrix, address hygiene. Everything here is pure
//! so it can be unit-tested in isolation.

mod address;
pub mod permissions;
mod status;

pub use address::{AddressError, clean_display_name, normalize_email};
pub use status::{BatchStatus, EmailStatus, Role, TenantPlan, TenantStatus, UnknownValue};
