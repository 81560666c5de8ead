//! A tenant's mail transport, stored under the key `"smtp"` of `tenants_tenant.settings`
//! (other keys are kept as they are). Either an SMTP server (the password only ever
//! encrypted, see `secrets`) or the outbox: `.eml` files written to a directory.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::types::Json;

use super::{DbError, DbResult, Store, TenantScope, now, on_pool};

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain text (local relays and tests only).
    None,
    /// Plain connection upgraded with STARTTLS (usually port 587); refused if not offered.
    #[default]
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Security::None => "none",
            Security::Starttls => "starttls",
            Security::Tls => "tls",
        })
    }
}

impl std::str::FromStr for Security {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "plain" => Ok(Security::None),
            "starttls" => Ok(Security::Starttls),
            "tls" | "ssl" | "smtps" => Ok(Security::Tls),
            other => Err(format!(
                "unknown security '{other}' (expected none, starttls or tls)"
            )),
        }
    }
}

fn default_connections() -> u32 {
    4
}

/// An SMTP server and the limits to respect when sending through it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub security: Security,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `v1:...` from `SecretKey::encrypt`; never the plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_enc: Option<String>,
    /// Sender address: one of the tenant's active `tenants_tenantemail` addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    #[serde(default = "default_connections")]
    pub connections: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_hour: Option<u32>,
    /// Accept self-signed or otherwise invalid certificates (test servers only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls_insecure: bool,
}

impl SmtpServer {
    pub fn new(host: impl Into<String>, port: u16, security: Security) -> SmtpServer {
        SmtpServer {
            host: host.into(),
            port,
            security,
            username: None,
            password_enc: None,
            from: None,
            reply_to: None,
            connections: default_connections(),
            rate_per_second: None,
            rate_per_hour: None,
            tls_insecure: false,
        }
    }
}

/// The outbox transport: every message becomes a `.eml` file in `path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxSettings {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// A tenant's mail transport.
#[derive(Debug, Clone, PartialEq)]
pub enum SmtpSettings {
    Smtp(SmtpServer),
    Outbox(OutboxSettings),
}

impl SmtpSettings {
    /// The configured sender address, if any.
    pub fn from_address(&self) -> Option<&str> {
        match self {
            SmtpSettings::Smtp(s) => s.from.as_deref(),
            SmtpSettings::Outbox(o) => o.from.as_deref(),
        }
    }

    pub fn reply_to(&self) -> Option<&str> {
        match self {
            SmtpSettings::Smtp(s) => s.reply_to.as_deref(),
            SmtpSettings::Outbox(o) => o.reply_to.as_deref(),
        }
    }

    /// The stored JSON (`{"transport": "smtp", ...}` or `{"transport": "outbox", ...}`).
    pub fn to_json(&self) -> Value {
        let (kind, v) = match self {
            SmtpSettings::Smtp(s) => ("smtp", serde_json::to_value(s)),
            SmtpSettings::Outbox(o) => ("outbox", serde_json::to_value(o)),
        };
        let mut map = match v {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        map.insert("transport".into(), Value::String(kind.into()));
        Value::Object(map)
    }

    /// Reads the stored JSON; a missing `transport` means SMTP.
    pub fn from_json(v: &Value) -> Result<SmtpSettings, String> {
        let kind = v.get("transport").and_then(Value::as_str).unwrap_or("smtp");
        match kind {
            "smtp" => serde_json::from_value(v.clone())
                .map(SmtpSettings::Smtp)
                .map_err(|e| format!("invalid SMTP settings: {e}")),
            "outbox" => serde_json::from_value(v.clone())
                .map(SmtpSettings::Outbox)
                .map_err(|e| format!("invalid outbox settings: {e}")),
            other => Err(format!("unknown transport '{other}'")),
        }
    }

    /// The JSON shown to people and scripts: `password_enc` replaced by `password_set`.
    pub fn public_json(&self) -> Value {
        let mut v = self.to_json();
        if let Value::Object(m) = &mut v
            && let SmtpSettings::Smtp(s) = self
        {
            m.remove("password_enc");
            m.insert("password_set".into(), Value::Bool(s.password_enc.is_some()));
        }
        v
    }
}

impl fmt::Display for SmtpSettings {
    /// One `key value` line per setting; never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        match self {
            SmtpSettings::Smtp(s) => {
                writeln!(f, "{:<16} smtp", "transport")?;
                writeln!(f, "{:<16} {}", "host", s.host)?;
                writeln!(f, "{:<16} {}", "port", s.port)?;
                writeln!(f, "{:<16} {}", "security", s.security)?;
                writeln!(f, "{:<16} {}", "username", opt(&s.username))?;
                let pw = if s.password_enc.is_some() {
                    "set (encrypted)"
                } else {
                    "-"
                };
                writeln!(f, "{:<16} {pw}", "password")?;
                writeln!(f, "{:<16} {}", "from", opt(&s.from))?;
                writeln!(f, "{:<16} {}", "reply-to", opt(&s.reply_to))?;
                writeln!(f, "{:<16} {}", "connections", s.connections)?;
                let rate = |r: Option<u32>| r.map_or("unlimited".to_string(), |r| r.to_string());
                writeln!(f, "{:<16} {}", "rate/second", rate(s.rate_per_second))?;
                writeln!(f, "{:<16} {}", "rate/hour", rate(s.rate_per_hour))?;
                if s.tls_insecure {
                    writeln!(f, "{:<16} yes (certificates not verified)", "insecure TLS")?;
                }
                Ok(())
            }
            SmtpSettings::Outbox(o) => {
                writeln!(f, "{:<16} outbox", "transport")?;
                writeln!(f, "{:<16} {}", "path", o.path)?;
                writeln!(f, "{:<16} {}", "from", opt(&o.from))?;
                writeln!(f, "{:<16} {}", "reply-to", opt(&o.reply_to))
            }
        }
    }
}

fn validate(settings: &SmtpSettings) -> DbResult<()> {
    if let SmtpSettings::Smtp(s) = settings {
        let host = s.host.trim();
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DbError::Invalid(format!("invalid SMTP host '{host}'")));
        }
        if s.port == 0 {
            return Err(DbError::Invalid("SMTP port must be 1-65535".into()));
        }
        if s.connections == 0 || s.connections > 64 {
            return Err(DbError::Invalid(
                "connections must be between 1 and 64".into(),
            ));
        }
        if s.password_enc.is_some() && s.username.is_none() {
            return Err(DbError::Invalid("a password needs a username".into()));
        }
    }
    if let Some(r) = settings.reply_to() {
        crate::domain::normalize_email(r)
            .map_err(|e| DbError::Invalid(format!("reply-to: {e}")))?;
    }
    Ok(())
}

impl Store {
    /// The tenant's transport, `None` when not configured.
    pub async fn smtp_settings(&self, scope: TenantScope) -> DbResult<Option<SmtpSettings>> {
        let tenant = self.get_tenant(scope).await?;
        match tenant.settings.as_ref().and_then(|s| s.0.get("smtp")) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => SmtpSettings::from_json(v)
                .map(Some)
                .map_err(|e| DbError::Invalid(format!("tenant {}: {e}", tenant.domain))),
        }
    }

    /// Stores the tenant's transport under `settings.smtp`, keeping the other keys. The
    /// sender address must be one of the tenant's active sender addresses.
    pub async fn set_smtp_settings(
        &self,
        scope: TenantScope,
        settings: &SmtpSettings,
    ) -> DbResult<()> {
        validate(settings)?;
        let mut settings = settings.clone();
        if let Some(from) = settings.from_address() {
            let wanted = crate::domain::normalize_email(from)
                .map_err(|e| DbError::Invalid(format!("from: {e}")))?;
            let senders = self.list_tenant_emails(scope).await?;
            let found = senders
                .iter()
                .find(|s| s.is_active && s.email.eq_ignore_ascii_case(&wanted))
                .ok_or_else(|| {
                    let known: Vec<&str> = senders
                        .iter()
                        .filter(|s| s.is_active)
                        .map(|s| s.email.as_str())
                        .collect();
                    DbError::Invalid(format!(
                        "from address {wanted} is not an active sender address of this tenant (known: {})",
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ))
                })?;
            let canonical = Some(found.email.clone());
            match &mut settings {
                SmtpSettings::Smtp(s) => s.from = canonical,
                SmtpSettings::Outbox(o) => o.from = canonical,
            }
        }
        let tenant = self.get_tenant(scope).await?;
        let mut all = match tenant.settings.map(|j| j.0) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        all.insert("smtp".into(), settings.to_json());
        on_pool!(self, p => {
            sqlx::query("UPDATE tenants_tenant SET settings = $2, updated_at = $3 WHERE id = $1")
                .bind(scope.tenant_id())
                .bind(Json(Value::Object(all.clone())))
                .bind(now())
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trip_and_public_view() {
        let mut s = SmtpServer::new("mail.test", 587, Security::Starttls);
        s.username = Some("u".into());
        s.password_enc = Some("v1:abc".into());
        let settings = SmtpSettings::Smtp(s);
        let v = settings.to_json();
        assert_eq!(v["transport"], "smtp");
        assert_eq!(v["connections"], 4);
        assert_eq!(SmtpSettings::from_json(&v).unwrap(), settings);
        let public = settings.public_json();
        assert!(public.get("password_enc").is_none());
        assert_eq!(public["password_set"], true);
        assert!(!settings.to_string().contains("v1:abc"));
        let legacy = json!({"host": "h", "port": 25});
        match SmtpSettings::from_json(&legacy).unwrap() {
            SmtpSettings::Smtp(s) => {
                assert_eq!(s.security, Security::Starttls);
                assert_eq!(s.connections, 4);
            }
            other => panic!("{other:?}"),
        }
        let outbox = json!({"transport": "outbox", "path": "/tmp/o"});
        assert!(matches!(
            SmtpSettings::from_json(&outbox).unwrap(),
            SmtpSettings::Outbox(_)
        ));
    }
}
