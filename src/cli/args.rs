//! clap definitions of every subcommand. Flag names here are part of the product's
//! interface: scripts depend on them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use super::ops_args::{
    AuditCommand, CompletionsArgs, DoctorArgs, MaintenanceCommand, StatsCommand,
};

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
    /// Run a command as this RecallIQ user: their role's permissions and their tenant only
    #[arg(long = "as", global = true, env = "RECALLIQ_AS", value_name = "USER")]
    pub as_user: Option<String>,
    /// Disable every write in the TUI
    #[arg(long)]
    pub readonly: bool,
    /// Enable mouse clicks and scrolling in the TUI
    #[arg(long)]
    pub mouse: bool,
    /// Run the sending engine inside the TUI (default on SQLite)
    #[arg(long, conflicts_with = "no_engine")]
    pub engine: bool,
    /// Do not run the sending engine inside the TUI (default on Postgres: run `recalliq worker`)
    #[arg(long)]
    pub no_engine: bool,
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
    /// Run the sending engine headless (any number of workers may share one Postgres)
    Worker(WorkerArgs),
    /// Contact groups: create, list, import and export CSV, delete
    #[command(subcommand)]
    Group(GroupCommand),
    /// Contacts of a group
    #[command(subcommand)]
    Contact(ContactCommand),
    /// The tenant's suppression list: addresses never sent to
    #[command(subcommand)]
    Suppress(SuppressCommand),
    /// Email templates: create, list, show, preview, send-test
    #[command(subcommand)]
    Template(TemplateCommand),
    /// A tenant's mail transport: SMTP server or outbox directory
    #[command(subcommand)]
    Smtp(SmtpCommand),
    /// Batches: create, start, pause, resume, cancel, retry-failed, list, show
    #[command(subcommand)]
    Batch(BatchCommand),
    /// A batch's email logs: print (--json, --csv), tail (--follow) or open the log viewer
    Logs(LogsArgs),
    /// Bounces: ingest DSNs, auto-replies and unsubscribe mails; counts
    #[command(subcommand)]
    Bounces(super::bounce_commands::BouncesCommand),
    /// The one-click unsubscribe endpoint (RFC 8058)
    #[command(subcommand)]
    Unsubscribe(super::bounce_commands::UnsubscribeCommand),
    /// DKIM keys of sender domains and the DNS records to publish (SPF, DKIM, DMARC)
    #[command(subcommand)]
    Dkim(super::dkim_commands::DkimCommand),
    /// Encrypted, consistent backup of the database (`backup --to FILE`, `backup verify FILE`)
    Backup(super::data_args::BackupArgs),
    /// Restore an encrypted backup into a database
    Restore(super::data_args::RestoreArgs),
    /// Reports: tenants, batches, activity by date, groups (tables, --json or --csv)
    #[command(subcommand)]
    Stats(StatsCommand),
    /// Maintenance: clean-logs, reset-usage (monthly), recount-usage
    #[command(subcommand)]
    Maintenance(MaintenanceCommand),
    /// The audit log: logins and writes
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Check the installation: database, schema, key file, SMTP servers, clock
    Doctor(DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish)
    Completions(CompletionsArgs),
    /// Print the man page (roff), e.g. `recalliq man > /usr/local/share/man/man1/recalliq.1`
    Man,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Batch id
    #[arg(long, value_name = "ID")]
    pub batch: i32,
    /// Only rows of these statuses (pending, sending, sent, failed, rejected, bounced;
    /// comma-separated or repeated)
    #[arg(long, value_name = "STATUS", value_delimiter = ',')]
    pub status: Vec<String>,
    /// Keep printing rows as they change until the batch is finished (Ctrl-C stops)
    #[arg(long)]
    pub follow: bool,
    /// JSON output (one array; with --follow one object per line)
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV output with a header line
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Exit (status 0) as soon as no batch has work left, instead of waiting for more
    #[arg(long)]
    pub once: bool,
    /// Rows claimed at a time
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub chunk: i64,
    /// Lease of claimed rows in seconds (renewed while the worker lives): how soon the rows
    /// of a crashed worker are sent by another
    #[arg(long, default_value_t = 60, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub lease: u64,
}

/// A batch addressed by its (global) id; the tenant is looked up from the batch. With
/// `--tenant`, a batch of another tenant is refused.
#[derive(Debug, Args)]
pub struct BatchRef {
    /// Batch id
    pub id: i32,
    #[arg(long, value_name = "DOMAIN")]
    pub tenant: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Create a batch (a draft, or scheduled with --schedule); prints its id
    Create {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long)]
        name: String,
        /// Template name or id
        #[arg(long, value_name = "NAME_OR_ID")]
        template: String,
        /// Group name or id (repeatable)
        #[arg(long = "group", value_name = "NAME_OR_ID", required = true)]
        groups: Vec<String>,
        /// Batch variable KEY=VALUE (repeatable)
        #[arg(long = "var", value_name = "KEY=VALUE")]
        vars: Vec<String>,
        /// Start time (RFC 3339); a worker starts the batch then
        #[arg(long, value_name = "RFC3339")]
        schedule: Option<String>,
    },
    /// Start a draft or scheduled batch now: its recipients are queued
    Start(BatchRef),
    /// Pause a running batch (in-flight messages finish)
    Pause(BatchRef),
    /// Resume a paused batch
    Resume(BatchRef),
    /// Cancel a batch; recipients not sent yet stay pending and are never sent
    Cancel(BatchRef),
    /// Queue failed and rejected recipients again and run the batch
    RetryFailed(BatchRef),
    /// List a tenant's batches
    List {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Review a batch before starting it: recipients, quota, missing variables, a sample
    /// (one finding per line; exit 1 when something blocks the start)
    Check {
        id: i32,
        #[arg(long, value_name = "DOMAIN")]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Status and counts of a batch
    Show {
        id: i32,
        #[arg(long, value_name = "DOMAIN")]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Print what was applied as JSON
    #[arg(long)]
    pub json: bool,
    /// Postgres: add row-level security policies on every tenant-owned table (opt-in)
    #[arg(long, conflicts_with = "no_row_level_security")]
    pub row_level_security: bool,
    /// Postgres: remove recalliq's row-level security policies again
    #[arg(long)]
    pub no_row_level_security: bool,
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
    /// The tenant's sender addresses (From)
    #[command(subcommand)]
    Sender(SenderCommand),
    /// Remove a tenant and everything it owns, after a typed confirmation
    Purge(super::data_args::PurgeArgs),
    /// Show or set how long the tenant's logs are kept (clean-logs applies it)
    Retention(super::data_args::RetentionArgs),
}

#[derive(Debug, Subcommand)]
pub enum SenderCommand {
    /// Add a sender address
    Add {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        email: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// List sender addresses
    List {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Deactivate a sender address
    Deactivate {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group (prints its id)
    Create {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List active groups with total and active contact counts
    List {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Show one group (name or id)
    Show {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        group: String,
        #[arg(long)]
        json: bool,
    },
    /// Deactivate a group
    Deactivate {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        group: String,
    },
    /// Delete a group and its contacts (refused while a running batch uses it)
    Delete {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        group: String,
        /// Do not ask for confirmation
        #[arg(long)]
        yes: bool,
    },
    /// Import contacts from CSV: an `email` column, optional `name`, other columns become variables
    Import {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long, value_name = "NAME")]
        group: String,
        file: PathBuf,
        /// Show the preview and summary, write nothing
        #[arg(long)]
        dry_run: bool,
        /// Import the valid rows even when some are invalid
        #[arg(long)]
        skip_invalid: bool,
        /// Create the group when it does not exist
        #[arg(long)]
        create: bool,
        /// Print the summary as JSON
        #[arg(long)]
        json: bool,
    },
    /// Export a group's contacts as CSV (standard output by default)
    Export {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long, value_name = "NAME")]
        group: String,
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Add a contact to a group (prints its id)
    Add {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long)]
        group: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// A variable of this contact, KEY=VALUE (repeatable)
        #[arg(long = "var", value_name = "KEY=VALUE")]
        vars: Vec<String>,
    },
    /// List a group's contacts
    List {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long)]
        group: String,
        /// Only contacts whose email or name contains this
        #[arg(long)]
        search: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Deactivate a contact of a group
    Deactivate {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long)]
        group: String,
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SuppressCommand {
    /// Suppress addresses
    Add {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(required = true)]
        emails: Vec<String>,
        #[arg(long, default_value = "manual")]
        reason: String,
    },
    /// Lift the suppression of addresses
    Remove {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(required = true)]
        emails: Vec<String>,
    },
    /// List suppressed addresses
    List {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Suppress every address of a CSV file (an `email` column)
    Import {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        file: PathBuf,
        #[arg(long, default_value = "import")]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Create a template from files; prints its id and records the variables it uses
    Create {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        subject: String,
        /// HTML body (minijinja; values are HTML-escaped)
        #[arg(long, value_name = "FILE")]
        html_file: PathBuf,
        /// Text body; derived from the HTML when left out
        #[arg(long, value_name = "FILE")]
        text_file: Option<PathBuf>,
    },
    /// List a tenant's templates
    List {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Show one template
    Show {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        /// Template name or id
        template: String,
        #[arg(long)]
        json: bool,
    },
    /// Print the complete message (headers and parts) as it would be sent to one contact
    Preview {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        /// Template name or id
        #[arg(long, value_name = "NAME_OR_ID")]
        template: String,
        /// Group name or id
        #[arg(long, value_name = "NAME_OR_ID")]
        group: String,
        /// The contact's address
        #[arg(long, value_name = "ADDR")]
        email: String,
        /// Batch variables as a JSON object (what a batch would add to every recipient)
        #[arg(long, value_name = "JSON")]
        vars: Option<String>,
    },
    /// Render for one contact and send it to another address through the tenant's transport
    SendTest {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long, value_name = "NAME_OR_ID")]
        template: String,
        #[arg(long, value_name = "NAME_OR_ID")]
        group: String,
        /// The contact whose data fills the template
        #[arg(long, value_name = "EMAIL")]
        contact: String,
        /// Where the test message goes
        #[arg(long, value_name = "ADDR")]
        to: String,
        /// Batch variables as a JSON object
        #[arg(long, value_name = "JSON")]
        vars: Option<String>,
    },
}

/// How the SMTP connection is secured (flag values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecurityArg {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Subcommand)]
pub enum SmtpCommand {
    /// Set the tenant's transport: an SMTP server, or --outbox [PATH] for .eml files
    Set(SmtpSetArgs),
    /// Show the tenant's transport (never the password)
    Show {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Connect to the tenant's SMTP server and report greeting, EHLO, STARTTLS and AUTH
    Test {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
    },
}

#[derive(Debug, Args)]
pub struct SmtpSetArgs {
    /// The tenant's domain
    #[arg(long, value_name = "DOMAIN")]
    pub tenant: String,
    /// Write messages as .eml files into PATH (default: outbox/ in the data directory)
    #[arg(long, value_name = "PATH", num_args = 0..=1, conflicts_with_all = ["host", "port", "security", "username", "password_stdin", "connections", "rate", "rate_per_hour", "insecure_tls"])]
    pub outbox: Option<Option<PathBuf>>,
    /// SMTP server name or address
    #[arg(long, required_unless_present = "outbox")]
    pub host: Option<String>,
    /// SMTP port (587 for starttls, 465 for tls, 25 between servers)
    #[arg(long, required_unless_present = "outbox")]
    pub port: Option<u16>,
    /// none (plain text), starttls (upgrade, required) or tls (TLS from the first byte)
    #[arg(long, value_enum, required_unless_present = "outbox")]
    pub security: Option<SecurityArg>,
    /// SMTP AUTH user; without --password-stdin the stored password of the same user is kept
    #[arg(long)]
    pub username: Option<String>,
    /// Read the SMTP password from standard input (it is stored encrypted)
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Sender address: one of the tenant's active sender addresses
    #[arg(long, value_name = "ADDR")]
    pub from: Option<String>,
    /// Reply-To address of every message
    #[arg(long, value_name = "ADDR")]
    pub reply_to: Option<String>,
    /// Parallel connections (default 4)
    #[arg(long, value_name = "N")]
    pub connections: Option<u32>,
    /// Messages per second
    #[arg(long, value_name = "N")]
    pub rate: Option<u32>,
    /// Messages per hour
    #[arg(long, value_name = "N")]
    pub rate_per_hour: Option<u32>,
    /// Accept self-signed or invalid certificates (test servers only)
    #[arg(long)]
    pub insecure_tls: bool,
}
