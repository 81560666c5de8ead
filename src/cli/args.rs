//! clap definitions of every subcommand. Flag names here are part of the product's
//! interface: scripts depend on them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "recalliq",
    version,
    about = "RecallIQ multi-tenant email campaigns, from the terminal"
)]
pub struct Cli {
    /// Database URL (sqlite://PATH or postgres://USER@HOST/DB); overrides RECALLIQ_DATABASE_URL and the config file
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Config file (default: config.toml in the config directory)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Preselect this user on the login screen
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Disable every write in the TUI
    #[arg(long)]
    pub readonly: bool,
    /// Enable mouse clicks and scrolling in the TUI
    #[arg(long)]
    pub mouse: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or upgrade the schema (safe on a database made by the RecallIQ web app)
    Migrate(MigrateArgs),
    /// Build a fresh demo database and open the TUI on it
    Demo(DemoArgs),
    /// Manage users
    #[command(subcommand)]
    User(UserCommand),
    /// Check credentials
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Manage tenants (organisations)
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Run the sending engine headless (not available yet)
    Worker(Pending),
    /// Contact groups: import, export, create (not available yet)
    Group(Pending),
    /// Email templates (not available yet)
    Template(Pending),
    /// Batches: create, start, pause, resume, cancel, retry (not available yet)
    Batch(Pending),
    /// Email logs: export and tail (not available yet)
    Logs(Pending),
    /// Reports (not available yet)
    Stats(Pending),
    /// Maintenance: clean-logs, reset-usage (not available yet)
    Maintenance(Pending),
}

/// Arguments of a subcommand that this version does not implement yet.
#[derive(Debug, Args)]
pub struct Pending {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Print what was applied as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to build the demo database (default: demo.db in the data directory)
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Seed the database and print its URL, without opening the TUI
    #[arg(long)]
    pub no_tui: bool,
    /// Also add a batch with this many email logs (performance work)
    #[arg(long, value_name = "N")]
    pub logs: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// super_admin, tenant_admin, staff or user
        #[arg(long)]
        role: String,
        /// Domain of the user's tenant (every role but super_admin)
        #[arg(long, value_name = "DOMAIN")]
        tenant: Option<String>,
        #[arg(long)]
        first_name: Option<String>,
        #[arg(long)]
        last_name: Option<String>,
        /// Read the password from standard input (required: passwords never go on the command line)
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Set a user's password, read from standard input
    Passwd {
        username: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List users
    List {
        #[arg(long, value_name = "DOMAIN")]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Deactivate a user (the row stays; logins are refused)
    Deactivate { username: String },
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Exit 0 when the password read from standard input is valid for USERNAME, else 1 with the reason
    Check {
        username: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        domain: String,
        /// basic, professional or enterprise
        #[arg(long)]
        plan: Option<String>,
        #[arg(long, value_name = "N")]
        monthly_limit: Option<i32>,
    },
    /// List tenants
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one tenant
    Show {
        domain: String,
        #[arg(long)]
        json: bool,
    },
}
