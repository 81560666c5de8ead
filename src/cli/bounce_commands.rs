//! `bounces ingest|stats|watch|mailbox` and `unsubscribe serve` (issue #9).

use std::path::PathBuf;

use clap::Subcommand;

use super::args::SecurityArg;
use super::commands::{open, read_password_stdin, tenant_by_domain};
use super::output::{print_json, print_table};
use super::{CliError, CliResult};
use crate::bounces::imap::{PollSummary, WatchError, WatchEvent, Watcher, watch_loop};
use crate::bounces::{IngestConfig, IngestSummary, TokenKey, ingest_path};
use crate::config::Config;
use crate::db::{
    BounceMailbox, DEFAULT_IMAP_MAILBOX, DEFAULT_PROCESSED_FOLDER, DEFAULT_UNMATCHED_FOLDER,
    MailboxOwner, Security, Store, mailbox_secret_context,
};
use crate::secrets::{Secret, SecretError, SecretKey};

#[derive(Debug, Subcommand)]
pub enum BouncesCommand {
    /// Read bounces (DSNs), auto-replies and unsubscribe mails from maildirs, mbox files or
    /// .eml files; unmatched and unrecognized messages are counted and left in place
    Ingest {
        /// A maildir, a directory of .eml files, an mbox file or a message file (repeatable)
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Soft bounces within --soft-days that suppress an address (config [bounces] soft_limit, default 3)
        #[arg(long, value_name = "N")]
        soft_limit: Option<u32>,
        /// Window of --soft-limit in days (config [bounces] soft_days, default 14)
        #[arg(long, value_name = "DAYS")]
        soft_days: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// Poll an IMAP mailbox (see `bounces mailbox set`) and ingest every message in it as
    /// `ingest` would; handled messages move to the processed folder, unmatched and
    /// unrecognized ones to the unmatched folder (never deleted)
    Watch {
        /// The tenant's own mailbox (its reports change only that tenant); without it the
        /// global mailbox
        #[arg(long, value_name = "DOMAIN")]
        tenant: Option<String>,
        /// Poll once and exit
        #[arg(long)]
        once: bool,
        /// Seconds between polls (default 60)
        #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
        interval: u64,
        /// One JSON object per poll
        #[arg(long)]
        json: bool,
    },
    /// The IMAP mailbox `bounces watch` polls: per tenant (--tenant) or global
    #[command(subcommand)]
    Mailbox(MailboxCommand),
    /// Bounce and unsubscribe counts of a tenant
    Stats {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        /// Only the last DAYS days
        #[arg(long, value_name = "DAYS")]
        days: Option<u32>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MailboxCommand {
    /// Store the IMAP settings; the password is read from standard input and stored encrypted
    Set(MailboxSetArgs),
    /// Show the IMAP settings (never the password)
    Show {
        /// The tenant's mailbox; without it the global one
        #[arg(long, value_name = "DOMAIN")]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove the IMAP settings
    Clear {
        /// The tenant's mailbox; without it the global one
        #[arg(long, value_name = "DOMAIN")]
        tenant: Option<String>,
    },
}

impl MailboxCommand {
    /// The tenant named, `None` for the global mailbox.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            MailboxCommand::Set(a) => a.tenant.as_deref(),
            MailboxCommand::Show { tenant, .. } | MailboxCommand::Clear { tenant } => {
                tenant.as_deref()
            }
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct MailboxSetArgs {
    /// The tenant's mailbox; without it the global one
    #[arg(long, value_name = "DOMAIN")]
    pub tenant: Option<String>,
    /// IMAP server name or address
    #[arg(long)]
    pub host: String,
    /// IMAP port (993 for tls, 143 for starttls and none)
    #[arg(long)]
    pub port: u16,
    /// none (plain text), starttls (upgrade, required) or tls (TLS from the first byte)
    #[arg(long, value_enum)]
    pub security: SecurityArg,
    /// IMAP login name
    #[arg(long)]
    pub username: String,
    /// Read the IMAP password from standard input (needed unless the same user's password is
    /// stored already)
    #[arg(long)]
    pub password_stdin: bool,
    /// The mailbox to poll
    #[arg(long, value_name = "NAME", default_value = DEFAULT_IMAP_MAILBOX)]
    pub mailbox: String,
    /// Where handled messages go (created when missing)
    #[arg(long, value_name = "FOLDER", default_value = DEFAULT_PROCESSED_FOLDER)]
    pub processed_folder: String,
    /// Where unmatched and unrecognized messages go (created when missing)
    #[arg(long, value_name = "FOLDER", default_value = DEFAULT_UNMATCHED_FOLDER)]
    pub unmatched_folder: String,
    /// Accept self-signed or invalid certificates (test servers only)
    #[arg(long)]
    pub insecure_tls: bool,
}

#[derive(Debug, Subcommand)]
pub enum UnsubscribeCommand {
    /// Serve the one-click unsubscribe endpoint (POST /u/TOKEN, confirmation page on GET)
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8025 (put a TLS proxy in front)
        #[arg(long, value_name = "ADDR")]
        bind: String,
    },
}

fn token_key(config: &Config) -> CliResult<TokenKey> {
    let key = SecretKey::load(&config.config_dir).map_err(|e| CliError::usage(e.to_string()))?;
    Ok(TokenKey::from_secret(&key))
}

/// Ingestion settings: flags, else config `[bounces]`, else the defaults.
fn ingest_config(
    config: &Config,
    soft_limit: Option<u32>,
    soft_days: Option<u32>,
) -> CliResult<IngestConfig> {
    let file = config.file.bounces.clone().unwrap_or_default();
    let defaults = IngestConfig::default();
    let cfg = IngestConfig {
        soft_limit: soft_limit
            .or(file.soft_limit)
            .unwrap_or(defaults.soft_limit),
        soft_days: soft_days.or(file.soft_days).unwrap_or(defaults.soft_days),
        match_days: file.match_days.unwrap_or(defaults.match_days),
        token_key: Some(token_key(config)?),
        ..defaults
    };
    if cfg.soft_days == 0 {
        return Err(CliError::usage("--soft-days must be at least 1"));
    }
    Ok(cfg)
}

pub async fn bounces_command(config: &Config, cmd: BouncesCommand) -> CliResult<u8> {
    let store = open(config).await?;
    match cmd {
        BouncesCommand::Ingest {
            paths,
            soft_limit,
            soft_days,
            json,
        } => {
            let cfg = ingest_config(config, soft_limit, soft_days)?;
            let mut sum = IngestSummary::default();
            for p in &paths {
                ingest_path(&store, &cfg, p, &mut sum)
                    .await
                    .map_err(|e| match e {
                        crate::bounces::ingest::IngestError::Db(e) => CliError::from(e),
                        other => CliError::usage(other.to_string()),
                    })?;
            }
            if json {
                print_json(&sum);
            } else {
                println!(
                    "{} messages: {} hard bounces, {} soft bounces, {} unsubscribes, {} addresses suppressed",
                    sum.messages, sum.hard, sum.soft, sum.unsubscribed, sum.suppressed
                );
                println!(
                    "ignored: {} auto-replies, {} delivery notices, {} already ingested",
                    sum.auto_replies, sum.delivery_notices, sum.duplicates
                );
                println!(
                    "left in place: {} unmatched, {} unrecognized, {} unreadable",
                    sum.unmatched, sum.unrecognized, sum.unreadable
                );
            }
            Ok(0)
        }
        BouncesCommand::Watch {
            tenant,
            once,
            interval,
            json,
        } => watch(config, &store, tenant.as_deref(), once, interval, json).await,
        BouncesCommand::Mailbox(cmd) => mailbox_command(config, &store, cmd).await,
        BouncesCommand::Stats { tenant, days, json } => {
            let t = tenant_by_domain(&store, &tenant).await?;
            let scope = super::acting::actor().tenant_scope(t.id)?;
            let since = days.map(|d| crate::db::now() - chrono::Duration::days(i64::from(d)));
            let c = store.bounce_counts_for_tenant(scope, since).await?;
            if json {
                print_json(&c);
            } else {
                print_table(
                    &["HARD BOUNCED", "SOFT BOUNCED", "UNSUBSCRIBED"],
                    &[vec![
                        c.hard_bounced.to_string(),
                        c.soft_bounced.to_string(),
                        c.unsubscribed.to_string(),
                    ]],
                );
            }
            Ok(0)
        }
    }
}

pub async fn unsubscribe_command(config: &Config, cmd: UnsubscribeCommand) -> CliResult<u8> {
    let UnsubscribeCommand::Serve { bind } = cmd;
    let store = open(config).await?;
    let key = token_key(config)?;
    let listener = tokio::net::TcpListener::bind(bind.trim())
        .await
        .map_err(|e| CliError::usage(format!("cannot listen on {bind}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::failed(e.to_string()))?;
    println!("listening on http://{addr}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let stop_rx = super::stop_on_signal();
    crate::bounces::http::serve(listener, store, key, stop_rx)
        .await
        .map_err(|e| CliError::failed(format!("unsubscribe endpoint: {e}")))?;
    Ok(0)
}

/// The owner of the mailbox `tenant` names (the global one without), as the acting user
/// may reach it; and how to name it in messages.
async fn mailbox_owner(store: &Store, tenant: Option<&str>) -> CliResult<(MailboxOwner, String)> {
    match tenant {
        None => {
            let all = super::acting::actor().all_tenants()?;
            Ok((MailboxOwner::Global(all), "the global mailbox".to_string()))
        }
        Some(domain) => {
            let t = tenant_by_domain(store, domain).await?;
            let scope = super::acting::actor().tenant_scope(t.id)?;
            Ok((MailboxOwner::Tenant(scope), format!("tenant {}", t.domain)))
        }
    }
}

fn decrypt_error(e: SecretError) -> CliError {
    match e {
        SecretError::WrongKey(loc) => CliError::failed(format!(
            "cannot decrypt the IMAP password: wrong key ({} or {loc}); store it again with `bounces mailbox set --password-stdin`",
            crate::secrets::ENV_SECRET_KEY
        )),
        other => CliError::failed(format!("IMAP password: {other}")),
    }
}

async fn mailbox_command(config: &Config, store: &Store, cmd: MailboxCommand) -> CliResult<u8> {
    let (owner, what) = mailbox_owner(store, cmd.tenant()).await?;
    match cmd {
        MailboxCommand::Set(a) => {
            let old = store.bounce_mailbox(owner).await?;
            let key =
                SecretKey::load(&config.config_dir).map_err(|e| CliError::usage(e.to_string()))?;
            let context = mailbox_secret_context(owner.tenant_id());
            let password_enc = if a.password_stdin {
                let p = Secret::new(read_password_stdin()?);
                key.encrypt_bound(&p, &context)
                    .map_err(|e| CliError::failed(e.to_string()))?
            } else {
                match old {
                    Some(o) if o.username == a.username.trim() => o.password_enc,
                    _ => {
                        return Err(CliError::usage(
                            "--password-stdin is needed (no stored password for this user)",
                        ));
                    }
                }
            };
            let m = BounceMailbox {
                tenant_id: owner.tenant_id(),
                host: a.host,
                port: a.port,
                security: match a.security {
                    SecurityArg::None => Security::None,
                    SecurityArg::Starttls => Security::Starttls,
                    SecurityArg::Tls => Security::Tls,
                },
                username: a.username,
                password_enc,
                mailbox: a.mailbox,
                processed_folder: a.processed_folder,
                unmatched_folder: a.unmatched_folder,
                tls_insecure: a.insecure_tls,
                updated_at: None,
            };
            store.set_bounce_mailbox(owner, &m).await?;
            println!("bounce mailbox of {what} saved");
            Ok(0)
        }
        MailboxCommand::Show { json, .. } => {
            let Some(m) = store.bounce_mailbox(owner).await? else {
                return Err(CliError::failed(format!(
                    "no bounce mailbox is configured for {what} (`recalliq bounces mailbox set`)"
                )));
            };
            if json {
                print_json(&m.public_json());
            } else {
                print!("{m}");
            }
            Ok(0)
        }
        MailboxCommand::Clear { .. } => {
            if store.clear_bounce_mailbox(owner).await? {
                println!("bounce mailbox of {what} removed");
                Ok(0)
            } else {
                Err(CliError::failed(format!(
                    "no bounce mailbox is configured for {what}"
                )))
            }
        }
    }
}

fn poll_line(m: &BounceMailbox, sum: &PollSummary) -> String {
    let i = &sum.ingest;
    format!(
        "{} {}@{}:{}/{}: {} messages: {} hard bounces, {} soft bounces, {} unsubscribes, {} suppressed, {} ignored, {} already ingested; moved {} to {}, {} to {} ({} unmatched, {} unrecognized)",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
        m.username,
        m.host,
        m.port,
        m.mailbox,
        i.messages,
        i.hard,
        i.soft,
        i.unsubscribed,
        i.suppressed,
        i.auto_replies + i.delivery_notices,
        i.duplicates,
        sum.moved_processed,
        m.processed_folder,
        sum.moved_unmatched,
        m.unmatched_folder,
        i.unmatched,
        i.unrecognized,
    )
}

fn watch_error(e: WatchError) -> CliError {
    match e {
        WatchError::Db(e) => CliError::from(e),
        other => CliError::failed(other.to_string()),
    }
}

async fn watch(
    config: &Config,
    store: &Store,
    tenant: Option<&str>,
    once: bool,
    interval: u64,
    json: bool,
) -> CliResult<u8> {
    let (owner, what) = mailbox_owner(store, tenant).await?;
    let Some(mailbox) = store.bounce_mailbox(owner).await? else {
        return Err(CliError::failed(format!(
            "no bounce mailbox is configured for {what} (`recalliq bounces mailbox set`)"
        )));
    };
    let key = SecretKey::load(&config.config_dir).map_err(|e| CliError::usage(e.to_string()))?;
    let password = key
        .decrypt_bound(
            &mailbox.password_enc,
            &mailbox_secret_context(owner.tenant_id()),
        )
        .map_err(decrypt_error)?;
    let mut ingest = ingest_config(config, None, None)?;
    ingest.only_tenant = owner.tenant_id();
    ingest.channel = "bounces watch".into();
    let watcher = Watcher {
        store,
        ingest: &ingest,
        mailbox: &mailbox,
        password: &password,
        timeout: std::time::Duration::from_secs(30),
    };
    let stop_rx = super::stop_on_signal();
    let print = |sum: &PollSummary| {
        if json {
            match serde_json::to_string(sum) {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("recalliq: cannot encode JSON: {e}"),
            }
        } else {
            println!("{}", poll_line(&mailbox, sum));
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
    };
    if once {
        let sum = watcher.poll(&stop_rx).await.map_err(watch_error)?;
        print(&sum);
        return Ok(0);
    }
    eprintln!(
        "watching {}@{}:{}/{} for {what} every {interval} s (Ctrl-C or SIGTERM stops)",
        mailbox.username, mailbox.host, mailbox.port, mailbox.mailbox
    );
    watch_loop(
        &watcher,
        std::time::Duration::from_secs(interval),
        stop_rx,
        |ev| match ev {
            WatchEvent::Polled(sum) => print(sum),
            WatchEvent::Retrying { error, delay } => {
                eprintln!("recalliq: {error}; retrying in {} s", delay.as_secs());
            }
        },
    )
    .await
    .map_err(watch_error)?;
    eprintln!("stopped");
    Ok(0)
}
