//! clap definitions of the operations subcommands: `stats`, `maintenance`, `audit`,
//! `doctor`, `completions`, `man`. Kept apart from `args.rs` so branches that add other
//! subcommands merge cleanly; `args.rs` only names them.

use clap::{Args, Subcommand, ValueEnum};

/// How a report is printed.
#[derive(Debug, Args, Clone, Copy)]
pub struct OutputArgs {
    /// Print JSON instead of a table
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (with a header line) instead of a table
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Subcommand)]
pub enum StatsCommand {
    /// Every active tenant: quota use and counts of users, groups, templates, batches
    Tenants {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// A tenant's batches, newest first: sent, failed, success rate, duration
    Batches {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        /// At most this many batches
        #[arg(long, default_value_t = 1000, value_name = "N")]
        limit: i64,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Emails per day of sending (sent_at) with success rate, newest day first
    Activity {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        /// First day (YYYY-MM-DD, UTC) or instant (RFC 3339); default: 29 days before --to
        #[arg(long, value_name = "DATE")]
        from: Option<String>,
        /// Last day, inclusive (YYYY-MM-DD, UTC) or instant (RFC 3339); default: now
        #[arg(long, value_name = "DATE")]
        to: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// A tenant's active groups with their total and active contacts, largest first
    Groups {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// Maintenance tasks of the spec ("Database Maintenance").
#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Monthly counter reset: emails_sent_this_month = 0 for every tenant not created this month
    ResetUsage {
        /// Do not ask for confirmation
        #[arg(long)]
        yes: bool,
    },
    /// Recompute emails_sent_this_month from the batches completed this month
    RecountUsage {
        #[arg(long)]
        json: bool,
    },
    /// Delete email logs and batch execution logs older than each tenant's retention, in small chunks
    CleanLogs(super::data_args::CleanLogsArgs),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Audit log entries, newest first: logins and writes, who, which tenant, from where
    List {
        /// Only this tenant's entries
        #[arg(long, value_name = "DOMAIN")]
        tenant: Option<String>,
        /// Only entries whose actor, action, target, outcome or origin contains TEXT
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
        /// At most this many entries
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Seconds to wait for each SMTP server's greeting
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub timeout: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: ShellArg,
}
