//! Plain types and rules of RecallIQ, free of I/O: roles, statuses and the value sets the
//! web app's schema fixes, address hygiene. Everything here is pure so it can be
//! unit-tested in isolation.

mod address;
mod status;

pub use address::{AddressError, clean_display_name, normalize_email};
pub use status::{BatchStatus, EmailStatus, Role, TenantPlan, TenantStatus, UnknownValue};
