//! `recalliq demo`: a fresh SQLite database full of realistic sample data.

use std::path::PathBuf;

use crate::config::Config;

pub async fn run(
    _config: &Config,
    _db: &Option<PathBuf>,
    _no_tui: bool,
    _logs: Option<u64>,
) -> color_eyre::Result<()> {
    Err(color_eyre::eyre::eyre!("demo is not available yet"))
}
