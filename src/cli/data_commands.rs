//! Handlers of the data-protection commands: backup (and verify), restore, maintenance
//! clean-logs, tenant purge and retention, migrate --row-level-security.

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use super::commands::{open, tenant_by_domain};
use super::data_args::CleanLogsArgs;
use super::data_args::{BackupArgs, BackupCommand, KeyArgs, PurgeArgs, RestoreArgs, RetentionArgs};
use super::output::{print_json, print_table};
use super::{CliError, CliResult};
use crate::backup::{self, BackupError, CryptoError, KeySpec, Manifest};
use crate::config::Config;
use crate::db::{Actor, CleanOptions, CleanReport, Store};

impl From<BackupError> for CliError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Db(db) => db.into(),
            BackupError::Tool(_) | BackupError::Invalid(_) => CliError::usage(e.to_string()),
            other => CliError::failed(other.to_string()),
        }
    }
}

fn key_error(e: CryptoError) -> CliError {
    CliError::failed(e.to_string())
}

fn print_manifest_summary(verb: &str, m: &Manifest) {
    println!(
        "{verb}: {} database, schema version {}, {} rows in {} tables, taken {}",
        m.backend,
        m.schema_version,
        m.total_rows(),
        m.tables.len(),
        m.created_at
    );
}

/// `recalliq backup --to FILE` and `recalliq backup verify FILE`.
pub async fn backup_command(config: &Config, args: BackupArgs) -> CliResult<u8> {
    match args.command {
        Some(BackupCommand::Verify { file, key, json }) => {
            let server = config.database_url.clone();
            let verified = backup::verify(&file, key_resolver(config, &key), Some(&server)).await?;
            if json {
                print_json(&verified);
            }
            if verified.mismatches.is_empty() {
                if !json {
                    print_manifest_summary("backup verified", &verified.manifest);
                    println!(
                        "restored into a temporary database: row counts of all {} tables and the checksum match the manifest",
                        verified.manifest.tables.len()
                    );
                }
                Ok(0)
            } else {
                let detail: Vec<String> = verified
                    .mismatches
                    .iter()
                    .map(|m| {
                        format!(
                            "{} (manifest {}, restored {})",
                            m.table,
                            m.manifest.map_or("-".into(), |n| n.to_string()),
                            m.restored.map_or("-".into(), |n| n.to_string())
                        )
                    })
                    .collect();
                Err(CliError::failed(format!(
                    "backup {} does not restore to its manifest: {}",
                    file.display(),
                    detail.join(", ")
                )))
            }
        }
        None => {
            let Some(to) = args.to else {
                return Err(CliError::usage(
                    "backup needs --to FILE (or `recalliq backup verify FILE`)",
                ));
            };
            let key =
                backup::crypto::resolve_key(args.key.key_file.as_deref(), &config.config_dir, true)
                    .map_err(key_error)?;
            let store = open(config).await?;
            let started = Instant::now();
            let m = backup::create(&store, &config.database_url, &to, &key).await?;
            store.close().await;
            if args.json {
                print_json(&m);
            } else {
                print_manifest_summary(&format!("backup written to {}", to.display()), &m);
                println!(
                    "{} bytes of dump, sha256 {}, {:.1} s",
                    m.dump_bytes,
                    m.dump_sha256,
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(0)
        }
    }
}

/// The key for opening a backup: the same order as for writing, but nothing is created.
fn key_resolver(
    config: &Config,
    key: &KeyArgs,
) -> impl FnOnce(bool) -> Result<KeySpec, CryptoError> + Send + 'static {
    let flag = key.key_file.clone();
    let dir = config.config_dir.clone();
    move |_passphrase| backup::crypto::resolve_key(flag.as_deref(), &dir, false)
}

/// `recalliq restore --from FILE --to URL [--force]`.
pub async fn restore_command(config: &Config, args: RestoreArgs) -> CliResult<u8> {
    let opened = backup::open(&args.from, key_resolver(config, &args.key)).await?;
    let restored = backup::restore(&opened, &args.to, args.force).await?;
    if args.json {
        print_json(&restored);
    } else {
        print_manifest_summary(
            &format!("restored into {}", restored.target),
            &restored.manifest,
        );
    }
    Ok(0)
}

/// `recalliq maintenance ...`.
pub async fn clean_logs(store: &Store, args: CleanLogsArgs) -> CliResult<u8> {
    {
        {
            let all = Actor::system().all_tenants()?;
            let opts = CleanOptions {
                email_logs_days: args.email_logs_days,
                batch_logs_days: args.batch_logs_days,
                dry_run: args.dry_run,
                chunk: args.chunk,
            };
            let tty = std::io::stderr().is_terminal();
            let mut last = Instant::now();
            let mut progress = move |r: &CleanReport| {
                // Progress on standard error: at most once a second (every chunk on a tty).
                if tty || last.elapsed() >= Duration::from_secs(1) {
                    last = Instant::now();
                    let mut err = std::io::stderr().lock();
                    let _ = writeln!(
                        err,
                        "{}: {} email logs, {} batch logs {}",
                        r.domain,
                        r.email_logs,
                        r.batch_logs,
                        if r.dry_run {
                            "to delete"
                        } else {
                            "deleted so far"
                        }
                    );
                }
            };
            let reports = store.clean_logs(&all, opts, &mut progress).await?;
            if args.json {
                print_json(&reports);
            } else {
                let rows: Vec<Vec<String>> = reports
                    .iter()
                    .map(|r| {
                        vec![
                            r.domain.clone(),
                            format!("{} d", r.email_logs_days),
                            r.email_logs.to_string(),
                            format!("{} d", r.batch_logs_days),
                            r.batch_logs.to_string(),
                        ]
                    })
                    .collect();
                let verb = if args.dry_run {
                    "WOULD DELETE"
                } else {
                    "DELETED"
                };
                print_table(
                    &[
                        "TENANT",
                        "EMAIL KEEP",
                        &format!("EMAIL {verb}"),
                        "BATCH KEEP",
                        &format!("BATCH {verb}"),
                    ],
                    &rows,
                );
                let e: u64 = reports.iter().map(|r| r.email_logs).sum();
                let b: u64 = reports.iter().map(|r| r.batch_logs).sum();
                if args.dry_run {
                    println!("dry run: {e} email logs and {b} batch logs would be deleted");
                } else {
                    println!("deleted {e} email logs and {b} batch logs");
                }
            }
            store.close().await;
            Ok(0)
        }
    }
}

/// `recalliq tenant purge DOMAIN [--confirm DOMAIN]`.
pub async fn purge_command(config: &Config, args: PurgeArgs) -> CliResult<u8> {
    let store = open(config).await?;
    let tenant = tenant_by_domain(&store, &args.domain).await?;
    let confirmed = match &args.confirm {
        Some(c) => c.trim() == tenant.domain,
        None => {
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "This deletes tenant {} ({}) and every row it owns: users, groups, contacts, templates, batches, logs. Type the domain to confirm: ",
                tenant.domain, tenant.name
            );
            let _ = err.flush();
            drop(err);
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| CliError::usage(format!("cannot read the confirmation: {e}")))?;
            line.trim() == tenant.domain
        }
    };
    if !confirmed {
        return Err(CliError::failed(format!(
            "not confirmed: tenant {} left as it was (type its domain exactly, or pass --confirm {})",
            tenant.domain, tenant.domain
        )));
    }
    let all = super::acting::actor().all_tenants()?;
    let report = store.purge_tenant(&all, tenant.id).await?;
    tracing::warn!(
        tenant = %report.domain,
        tenant_id = report.tenant_id,
        rows = report.total(),
        actor = %super::acting::actor().username,
        origin = %crate::db::origin(),
        "tenant purged"
    );
    if args.json {
        print_json(&report);
    } else {
        let rows: Vec<Vec<String>> = report
            .deleted
            .iter()
            .map(|(t, n)| vec![t.clone(), n.to_string()])
            .collect();
        print_table(&["TABLE", "ROWS DELETED"], &rows);
        println!(
            "purged tenant {} (#{}): {} rows deleted",
            report.domain,
            report.tenant_id,
            report.total()
        );
    }
    store.close().await;
    Ok(0)
}

/// `recalliq tenant retention DOMAIN [--email-logs-days N] [--batch-logs-days N]`.
pub async fn retention_command(config: &Config, args: RetentionArgs) -> CliResult<u8> {
    let store = open(config).await?;
    let tenant = tenant_by_domain(&store, &args.domain).await?;
    let scope = super::acting::actor().tenant_scope(tenant.id)?;
    let r = if args.email_logs_days.is_some() || args.batch_logs_days.is_some() {
        store
            .set_retention(scope, args.email_logs_days, args.batch_logs_days)
            .await?
    } else {
        store.retention(scope).await?
    };
    if args.json {
        print_json(&r);
    } else {
        println!(
            "{}: email logs kept {} days, batch logs kept {} days{}",
            tenant.domain,
            r.email_logs_days,
            r.batch_logs_days,
            if r.custom { "" } else { " (defaults)" }
        );
    }
    store.close().await;
    Ok(0)
}

/// `migrate --row-level-security` / `--no-row-level-security`, after the migrations.
pub async fn row_level_security(store: &Store, enable: bool, json: bool) -> CliResult<()> {
    let all = Actor::system().all_tenants()?;
    let report = store.set_row_level_security(&all, enable).await?;
    if json {
        print_json(&report);
    } else if enable {
        println!(
            "row-level security on {} tenant-owned tables: {}",
            report.tables.len(),
            report.tables.join(", ")
        );
    } else {
        println!("row-level security policies removed");
    }
    if let Some(w) = &report.warning {
        eprintln!("recalliq: warning: {w}");
    }
    Ok(())
}
