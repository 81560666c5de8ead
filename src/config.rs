//! Where recalliq finds its database and files. Precedence: `--database-url` flag, then
//! `RECALLIQ_DATABASE_URL`, then `database_url` in the TOML config file, then a SQLite
//! database in the data directory. Directories follow the platform (`directories`), and
//! `RECALLIQ_CONFIG_DIR` / `RECALLIQ_DATA_DIR` override them (tests, containers).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Contents of `config.toml`. Unknown keys are refused so typos do not pass silently.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub database_url: Option<String>,
    /// Theme name (`dark`, `light`) or path of a theme TOML file.
    pub theme: Option<String>,
    pub mouse: Option<bool>,
    /// `[unsubscribe]`: where the one-click endpoint is reachable.
    pub unsubscribe: Option<UnsubscribeConfig>,
    /// `[bounces]`: soft-bounce policy of `bounces ingest`.
    pub bounces: Option<BouncesConfig>,
}

/// `[unsubscribe]` of `config.toml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UnsubscribeConfig {
    /// Public `https://` base URL of `recalliq unsubscribe serve` (behind a TLS proxy);
    /// messages then carry `BASE/u/TOKEN` and List-Unsubscribe-Post (RFC 8058).
    pub base_url: Option<String>,
}

/// `[bounces]` of `config.toml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BouncesConfig {
    /// Soft bounces of one address within `soft_days` that suppress it (default 3).
    pub soft_limit: Option<u32>,
    /// Window of `soft_limit`, in days (default 14).
    pub soft_days: Option<u32>,
    /// How far back a report that quotes no original headers is matched by recipient, in
    /// days (default 14).
    pub match_days: Option<u32>,
}

/// Where the database URL came from, for `doctor` and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlSource {
    Flag,
    Env,
    File,
    Default,
}

/// The resolved configuration of one run.
#[derive(Debug, Clone)]
pub struct Config {
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub url_source: UrlSource,
    pub file: FileConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot determine a home directory; set RECALLIQ_CONFIG_DIR and RECALLIQ_DATA_DIR")]
    NoHome,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid database URL '{url}' (from {origin}): {reason}")]
    BadUrl {
        url: String,
        origin: &'static str,
        reason: String,
    },
}

pub const ENV_DATABASE_URL: &str = "RECALLIQ_DATABASE_URL";
pub const ENV_CONFIG_DIR: &str = "RECALLIQ_CONFIG_DIR";
pub const ENV_DATA_DIR: &str = "RECALLIQ_DATA_DIR";

impl Config {
    /// Resolves the configuration from flags, environment and file.
    pub fn load(flag_url: Option<&str>, config_file: Option<&Path>) -> Result<Config, ConfigError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let project = directories::ProjectDirs::from("org", "RecallIQ", "recalliq");
        let config_dir = match env(ENV_CONFIG_DIR) {
            Some(d) => PathBuf::from(d),
            None => project
                .as_ref()
                .ok_or(ConfigError::NoHome)?
                .config_dir()
                .to_path_buf(),
        };
        let data_dir = match env(ENV_DATA_DIR) {
            Some(d) => PathBuf::from(d),
            None => project
                .as_ref()
                .ok_or(ConfigError::NoHome)?
                .data_dir()
                .to_path_buf(),
        };
        let file_path = config_file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| config_dir.join("config.toml"));
        let file = read_file_config(&file_path, config_file.is_some())?;
        let (database_url, url_source) = if let Some(u) = flag_url {
            (u.to_string(), UrlSource::Flag)
        } else if let Some(u) = env(ENV_DATABASE_URL) {
            (u, UrlSource::Env)
        } else if let Some(u) = file.database_url.clone() {
            (u, UrlSource::File)
        } else {
            (
                sqlite_url(&data_dir.join("recalliq.db")),
                UrlSource::Default,
            )
        };
        validate_url(&database_url, url_source)?;
        Ok(Config {
            config_dir,
            data_dir,
            database_url,
            url_source,
            file,
        })
    }
}

/// `sqlite://` URL of a file path.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn read_file_config(path: &Path, explicit: bool) -> Result<FileConfig, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(FileConfig::default());
        }
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().lines().collect::<Vec<_>>().join(" "),
    })
}

fn validate_url(url: &str, source: UrlSource) -> Result<(), ConfigError> {
    let origin = match source {
        UrlSource::Flag => "--database-url",
        UrlSource::Env => ENV_DATABASE_URL,
        UrlSource::File => "config file",
        UrlSource::Default => "default",
    };
    let bad = |reason: &str| ConfigError::BadUrl {
        url: crate::db::redact_url(url),
        origin,
        reason: reason.to_string(),
    };
    if let Some(rest) = url.strip_prefix("sqlite:") {
        if rest.trim_start_matches('/').is_empty() {
            return Err(bad("no file path after sqlite://"));
        }
        Ok(())
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        Ok(())
    } else {
        Err(bad(
            "expected sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_with_a_reason() {
        assert!(validate_url("sqlite:///tmp/x.db", UrlSource::Flag).is_ok());
        assert!(validate_url("postgres://root@127.0.0.1:5432/test", UrlSource::Env).is_ok());
        let err = validate_url("mysql://x", UrlSource::Flag)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected sqlite://"), "{err}");
        let err = validate_url("postgres://u:secret@/db", UrlSource::Env)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "password must be redacted: {err}");
        assert!(validate_url("sqlite://", UrlSource::File).is_err());
    }

    #[test]
    fn file_config_refuses_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("recalliq-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("config.toml");
        std::fs::write(&p, "databse_url = 'x'\n").unwrap();
        let err = read_file_config(&p, true).unwrap_err().to_string();
        assert!(err.contains("databse_url"), "{err}");
        std::fs::write(&p, "database_url = 'sqlite:///tmp/a.db'\n").unwrap();
        assert_eq!(
            read_file_config(&p, true).unwrap().database_url.as_deref(),
            Some("sqlite:///tmp/a.db")
        );
        assert_eq!(
            read_file_config(&dir.join("missing.toml"), false).unwrap(),
            FileConfig::default()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
