//! `recalliq dkim`: DKIM keys of a tenant's sender domains and the DNS records to publish.
//! Private keys are encrypted before they reach the database and are never printed; every
//! output (table or `--json`) shows only selectors, algorithms and public keys.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use super::commands::{open, tenant_by_domain};
use super::output::{print_json, print_table};
use super::{CliError, CliResult};
use crate::config::Config;
use crate::db::{DKIM_ACTIVE, DkimKey, SmtpSettings, Store, Tenant, TenantScope};
use crate::dkim::{self, Algorithm, DkimError, PrivateKey};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AlgoArg {
    Rsa,
    Ed25519,
}

impl From<AlgoArg> for Algorithm {
    fn from(a: AlgoArg) -> Self {
        match a {
            AlgoArg::Rsa => Algorithm::Rsa,
            AlgoArg::Ed25519 => Algorithm::Ed25519,
        }
    }
}

#[derive(Debug, Args)]
pub struct KeyTarget {
    /// The tenant's domain
    #[arg(long, value_name = "DOMAIN")]
    pub tenant: String,
    /// The sender domain (of one of the tenant's sender addresses)
    #[arg(long, value_name = "D")]
    pub domain: String,
    /// DNS selector (default: riq + the current date and time)
    #[arg(long, value_name = "S")]
    pub selector: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Generate a signing key for a sender domain (RSA 2048 by default, or Ed25519)
    Generate {
        #[command(flatten)]
        target: KeyTarget,
        #[arg(long, value_enum, default_value = "rsa")]
        algo: AlgoArg,
    },
    /// Import an existing PEM private key (PKCS#1 or PKCS#8; RSA or Ed25519)
    Import {
        #[command(flatten)]
        target: KeyTarget,
        /// PEM file to read ("-" for standard input)
        #[arg(long, value_name = "PATH")]
        file: PathBuf,
        /// Refuse the key unless it is of this algorithm
        #[arg(long, value_enum)]
        algo: Option<AlgoArg>,
    },
    /// Sign with a new key under a new selector; the old key stays published (valid)
    Rotate {
        #[command(flatten)]
        target: KeyTarget,
        /// Algorithm of the new key (default: that of the current key)
        #[arg(long, value_enum)]
        algo: Option<AlgoArg>,
        /// Use this PEM private key instead of generating one
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// List the tenant's DKIM keys (never the private keys)
    List {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long, value_name = "D")]
        domain: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one key (the active one unless --selector) and its DNS record
    Show {
        #[command(flatten)]
        target: KeyTarget,
        #[arg(long)]
        json: bool,
    },
    /// The DNS records to publish: DKIM TXT, SPF suggestion, DMARC starting policy
    Dns {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long, value_name = "D")]
        domain: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

impl From<DkimError> for CliError {
    fn from(e: DkimError) -> Self {
        match e {
            DkimError::Db(db) => db.into(),
            other => CliError::failed(other.to_string()),
        }
    }
}

/// What `list`, `show` and `generate --json` print about a key: public parts only.
#[derive(Serialize)]
struct KeyView<'a> {
    #[serde(flatten)]
    key: &'a DkimKey,
    dns_name: String,
    dns_value: String,
}

fn view(k: &DkimKey) -> KeyView<'_> {
    let algo: Algorithm = k.algorithm.parse().unwrap_or(Algorithm::Rsa);
    KeyView {
        key: k,
        dns_name: format!("{}._domainkey.{}", k.selector, k.domain),
        dns_value: dkim::dkim_txt_value(algo, &k.public_key),
    }
}

async fn tenant_scope(store: &Store, domain: &str) -> CliResult<(Tenant, TenantScope)> {
    let t = tenant_by_domain(store, domain).await?;
    let scope = super::acting::actor().tenant_scope(t.id)?;
    Ok((t, scope))
}

/// The sender domain, checked against the tenant's domain and sender addresses.
async fn sender_domain(
    store: &Store,
    tenant: &Tenant,
    scope: TenantScope,
    domain: &str,
) -> CliResult<String> {
    let wanted = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let allowed = dkim::sender_domains(store, &tenant.domain, scope).await?;
    if allowed.contains(&wanted) {
        Ok(wanted)
    } else {
        Err(CliError::failed(format!(
            "'{}' is not a sender domain of tenant {} (its domains: {})",
            crate::render::header_safe(domain.trim()),
            tenant.domain,
            allowed.join(", ")
        )))
    }
}

fn read_pem(path: &std::path::Path) -> CliResult<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| {
            CliError::usage(format!("cannot read the key from standard input: {e}"))
        })?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("cannot read key file {}: {e}", path.display())))
}

async fn store_key(
    config: &Config,
    target: &KeyTarget,
    key: PrivateKey,
    rotate: bool,
) -> CliResult<u8> {
    let store = open(config).await?;
    let (tenant, scope) = tenant_scope(&store, &target.tenant).await?;
    let domain = sender_domain(&store, &tenant, scope, &target.domain).await?;
    let row = dkim::store_key(
        &store,
        scope,
        &config.config_dir,
        &domain,
        target.selector.as_deref(),
        &key,
        rotate,
    )
    .await?;
    let selector = &row.selector;
    println!(
        "{} key for {domain}, selector '{selector}', now signs new mail{}",
        row.algorithm,
        if rotate {
            "; the previous key stays published"
        } else {
            ""
        }
    );
    println!("publish this DNS record:");
    let records = dkim::dns_records(std::slice::from_ref(&row), None);
    if let Some(r) = records.first() {
        println!("{}", r.zone_line());
    }
    Ok(0)
}

pub async fn dkim_command(config: &Config, cmd: DkimCommand) -> CliResult<u8> {
    match cmd {
        DkimCommand::Generate { target, algo } => {
            let key = PrivateKey::generate(algo.into())?;
            store_key(config, &target, key, false).await
        }
        DkimCommand::Import { target, file, algo } => {
            let key = PrivateKey::from_pem(&read_pem(&file)?)?;
            if let Some(a) = algo
                && Algorithm::from(a) != key.algorithm()
            {
                return Err(CliError::failed(format!(
                    "the key in {} is {}, not {}",
                    file.display(),
                    key.algorithm(),
                    Algorithm::from(a)
                )));
            }
            store_key(config, &target, key, false).await
        }
        DkimCommand::Rotate { target, algo, file } => {
            let key = match &file {
                Some(f) => PrivateKey::from_pem(&read_pem(f)?)?,
                None => {
                    let algo = match algo {
                        Some(a) => a.into(),
                        None => {
                            let store = open(config).await?;
                            let (_, scope) = tenant_scope(&store, &target.tenant).await?;
                            store
                                .active_dkim_key(scope, &target.domain)
                                .await?
                                .and_then(|k| k.algorithm.parse().ok())
                                .unwrap_or(Algorithm::Rsa)
                        }
                    };
                    PrivateKey::generate(algo)?
                }
            };
            store_key(config, &target, key, true).await
        }
        DkimCommand::List {
            tenant,
            domain,
            json,
        } => {
            let store = open(config).await?;
            let (_, scope) = tenant_scope(&store, &tenant).await?;
            let keys = store.list_dkim_keys(scope, domain.as_deref()).await?;
            if json {
                let views: Vec<KeyView> = keys.iter().map(view).collect();
                print_json(&views);
            } else {
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.domain.clone(),
                            k.selector.clone(),
                            k.algorithm.clone(),
                            k.status.clone(),
                            k.created_at.format("%Y-%m-%d %H:%M").to_string(),
                        ]
                    })
                    .collect();
                print_table(&["DOMAIN", "SELECTOR", "ALGO", "STATUS", "CREATED"], &rows);
            }
            Ok(0)
        }
        DkimCommand::Show { target, json } => {
            let store = open(config).await?;
            let (_, scope) = tenant_scope(&store, &target.tenant).await?;
            let keys = store.list_dkim_keys(scope, Some(&target.domain)).await?;
            let wanted = target.selector.as_deref().map(str::to_ascii_lowercase);
            let key = keys
                .iter()
                .find(|k| match &wanted {
                    Some(s) => &k.selector == s,
                    None => k.status == DKIM_ACTIVE,
                })
                .ok_or_else(|| {
                    CliError::failed(match &wanted {
                        Some(s) => format!(
                            "domain {} has no DKIM key with selector '{}'",
                            target.domain.trim(),
                            crate::render::header_safe(s)
                        ),
                        None => format!("domain {} has no active DKIM key", target.domain.trim()),
                    })
                })?;
            if json {
                print_json(&view(key));
            } else {
                let v = view(key);
                println!("{:<10} {}", "domain", key.domain);
                println!("{:<10} {}", "selector", key.selector);
                println!("{:<10} {}", "algorithm", key.algorithm);
                println!("{:<10} {}", "status", key.status);
                println!(
                    "{:<10} {}",
                    "created",
                    key.created_at.format("%Y-%m-%d %H:%M")
                );
                println!("{:<10} {}", "dns name", v.dns_name);
                println!("{:<10} {}", "dns value", v.dns_value);
            }
            Ok(0)
        }
        DkimCommand::Dns {
            tenant,
            domain,
            json,
        } => {
            let store = open(config).await?;
            let (t, scope) = tenant_scope(&store, &tenant).await?;
            let keys = store.list_dkim_keys(scope, domain.as_deref()).await?;
            if keys.is_empty() {
                return Err(CliError::failed(format!(
                    "tenant {} has no DKIM key{}: run `recalliq dkim generate --tenant {} --domain D`",
                    t.domain,
                    domain
                        .as_deref()
                        .map(|d| format!(" for {}", crate::render::header_safe(d.trim())))
                        .unwrap_or_default(),
                    t.domain
                )));
            }
            let host = match store.smtp_settings(scope).await? {
                Some(SmtpSettings::Smtp(s)) => Some(s.host),
                _ => None,
            };
            let records = dkim::dns_records(&keys, host.as_deref());
            if json {
                print_json(&records);
            } else {
                for r in &records {
                    println!("; {} {} — {}", r.purpose.to_uppercase(), r.domain, r.note);
                    println!("{}", r.zone_line());
                }
            }
            Ok(0)
        }
    }
}
