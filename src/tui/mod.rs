//! The terminal user interface (issue #3 builds it out).

use crate::config::Config;
use crate::db::{Actor, Store, User};

/// How the TUI was asked to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub user: Option<String>,
    pub readonly: bool,
    pub mouse: bool,
    pub config_dir: std::path::PathBuf,
    pub data_dir: std::path::PathBuf,
}

impl Options {
    pub fn from_cli(cli: &crate::cli::Cli, config: &Config) -> Options {
        Options {
            user: cli.user.clone(),
            readonly: cli.readonly,
            mouse: cli.mouse || config.file.mouse.unwrap_or(false),
            config_dir: config.config_dir.clone(),
            data_dir: config.data_dir.clone(),
        }
    }
}

/// Opens the TUI on `store`; `login` skips the login screen (the demo).
pub async fn run_app(
    _store: Store,
    _opts: Options,
    _login: Option<(User, Actor)>,
) -> color_eyre::Result<()> {
    Err(color_eyre::eyre::eyre!(
        "the TUI is not available in this version yet (issue #3)"
    ))
}
