//! clap definitions of the data-protection commands: backup, restore, maintenance
//! clean-logs, tenant purge and retention. Flag names are interface.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `recalliq backup --to FILE` or `recalliq backup verify FILE`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    /// Write the encrypted backup to FILE (replaced atomically)
    #[arg(long, value_name = "FILE")]
    pub to: Option<PathBuf>,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Print the manifest as JSON
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<BackupCommand>,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Restore FILE into a temporary database and compare it with its manifest
    Verify {
        file: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
        #[arg(long)]
        json: bool,
    },
}

/// The backup key: separate from the SMTP key.
#[derive(Debug, Args, Clone)]
pub struct KeyArgs {
    /// Key file (base64 of 32 bytes, mode 0600; created by a backup when missing). Default:
    /// RECALLIQ_BACKUP_PASSPHRASE, else RECALLIQ_BACKUP_KEY, else backup.key in the config directory
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The encrypted backup
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// The database to restore into (sqlite://PATH or postgres://USER@HOST/DB)
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Overwrite a database that is not empty
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub key: KeyArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CleanLogsArgs {
    /// Keep email logs this many days (tenants with their own retention keep theirs)
    #[arg(long, value_name = "DAYS", default_value_t = crate::db::DEFAULT_EMAIL_LOGS_DAYS)]
    pub email_logs_days: i32,
    /// Keep batch execution logs this many days (tenants with their own retention keep theirs)
    #[arg(long, value_name = "DAYS", default_value_t = crate::db::DEFAULT_BATCH_LOGS_DAYS)]
    pub batch_logs_days: i32,
    /// Only count what would be deleted
    #[arg(long)]
    pub dry_run: bool,
    /// Rows deleted per statement (short transactions on a live database)
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub chunk: i64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Domain of the tenant to remove
    pub domain: String,
    /// Confirm without a prompt by repeating the domain (for scripts)
    #[arg(long, value_name = "DOMAIN")]
    pub confirm: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RetentionArgs {
    pub domain: String,
    /// Keep this tenant's email logs this many days
    #[arg(long, value_name = "DAYS")]
    pub email_logs_days: Option<i32>,
    /// Keep this tenant's batch execution logs this many days
    #[arg(long, value_name = "DAYS")]
    pub batch_logs_days: Option<i32>,
    #[arg(long)]
    pub json: bool,
}
