//! `bounces ingest|stats` and `unsubscribe serve` (issue #9).

use std::path::PathBuf;

use clap::Subcommand;

use super::commands::{open, tenant_by_domain};
use super::output::{print_json, print_table};
use super::{CliError, CliResult};
use crate::bounces::{IngestConfig, IngestSummary, TokenKey, ingest_path};
use crate::config::Config;
use crate::secrets::SecretKey;

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

pub async fn bounces_command(config: &Config, cmd: BouncesCommand) -> CliResult<u8> {
    let store = open(config).await?;
    match cmd {
        BouncesCommand::Ingest {
            paths,
            soft_limit,
            soft_days,
            json,
        } => {
            let file = config.file.bounces.clone().unwrap_or_default();
            let defaults = IngestConfig::default();
            let cfg = IngestConfig {
                soft_limit: soft_limit
                    .or(file.soft_limit)
                    .unwrap_or(defaults.soft_limit),
                soft_days: soft_days.or(file.soft_days).unwrap_or(defaults.soft_days),
                match_days: file.match_days.unwrap_or(defaults.match_days),
                token_key: Some(token_key(config)?),
            };
            if cfg.soft_days == 0 {
                return Err(CliError::usage("--soft-days must be at least 1"));
            }
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
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        let _ = stop_tx.send(true);
    });
    crate::bounces::http::serve(listener, store, key, stop_rx)
        .await
        .map_err(|e| CliError::failed(format!("unsubscribe endpoint: {e}")))?;
    Ok(0)
}
