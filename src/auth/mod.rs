//! Authentication against `core_user`: Django-compatible password hashes (`password.rs`) and
//! the login rules (inactive users and users of suspended tenants are refused, each with a
//! reason a person can act on).

mod password;

pub use password::{
    DEFAULT_ITERATIONS, PasswordError, make_password, make_password_with, needs_rehash,
    verify_password,
};

use crate::db::{Actor, DbError, Store, User};

/// Why a login was refused. The messages are shown to the person logging in.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown user and wrong password read the same, so usernames cannot be probed.
    #[error("wrong username or password")]
    WrongCredentials,
    #[error("user '{0}' is inactive")]
    Inactive(String),
    #[error("tenant '{0}' is suspended")]
    TenantSuspended(String),
    #[error("tenant '{0}' is inactive")]
    TenantInactive(String),
    #[error("the stored password of '{user}' is unusable: {reason}")]
    BadHash { user: String, reason: String },
    #[error("{0}")]
    Store(#[from] DbError),
}

// A valid hash to verify against when the user does not exist, so that an unknown username
// takes as long as a wrong password.
const DUMMY_HASH: &str =
    "pbkdf2_sha256$1000000$recalliqdummysalt0000$0c8H5qM7e2m1Ue6ZpV1kQk2H4u0Gm8v0dXr2o3Nq1aU=";

/// Checks a username and password and the login rules; on success returns the user and
/// their actor. Every attempt, successful or not, is written to the audit log
/// (`recalliq_auditlog`, action `login`); `last_login` is not touched (see
/// `Store::touch_last_login`).
pub async fn authenticate(
    store: &Store,
    username: &str,
    password: &str,
) -> Result<(User, Actor), LoginError> {
    let result = check(store, username, password).await;
    match &result {
        Ok((user, actor)) => {
            store
                .audit_login(&user.username, Some(user.id), actor.tenant_id, Ok(()))
                .await
        }
        Err(e) => {
            store
                .audit_login(username, None, None, Err(&e.to_string()))
                .await
        }
    }
    result
}

async fn check(store: &Store, username: &str, password: &str) -> Result<(User, Actor), LoginError> {
    let Some(user) = store.find_login_user(username).await? else {
        let _ = verify_blocking(password.to_string(), DUMMY_HASH.to_string()).await;
        return Err(LoginError::WrongCredentials);
    };
    match verify_blocking(password.to_string(), user.password.clone()).await {
        Ok(true) => {}
        Ok(false) => return Err(LoginError::WrongCredentials),
        Err(e) => {
            return Err(LoginError::BadHash {
                user: user.username.clone(),
                reason: e.to_string(),
            });
        }
    }
    let actor = may_act(store, &user).await?;
    Ok((user, actor))
}

/// The login rules after the password: the user is active and so is their tenant (not
/// suspended). The CLI's `--as` applies the same rules without a password.
pub async fn may_act(store: &Store, user: &User) -> Result<Actor, LoginError> {
    if !user.is_active {
        return Err(LoginError::Inactive(user.username.clone()));
    }
    let actor = Actor::from_user(user)?;
    if let Some(tid) = user.tenant_id {
        let tenant = store.get_tenant(actor.tenant_scope(tid)?).await?;
        if tenant.status == crate::domain::TenantStatus::Suspended.as_str() {
            return Err(LoginError::TenantSuspended(tenant.domain));
        }
        if !tenant.is_active {
            return Err(LoginError::TenantInactive(tenant.domain));
        }
    }
    Ok(actor)
}

/// PBKDF2 at a million iterations takes a while: keep it off the async workers.
pub async fn verify_blocking(password: String, hash: String) -> Result<bool, PasswordError> {
    tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(Ok(false))
}

/// Hashes off the async workers.
pub async fn make_password_blocking(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || make_password(&password))
        .await
        .unwrap_or(Err(PasswordError::EmptyPassword))
}
