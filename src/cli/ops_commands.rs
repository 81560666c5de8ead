//! Handlers of `stats`, `maintenance`, `audit`, `doctor`, `completions` and `man`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::Serialize;
use tokio::io::AsyncReadExt;

use super::args::Cli;
use super::commands::tenant_by_domain;
use super::ops_args::{
    AuditCommand, CompletionsArgs, DoctorArgs, MaintenanceCommand, OutputArgs, ShellArg,
    StatsCommand,
};
use super::output::{print_json, print_table};
use super::{CliError, CliResult};
use crate::config::Config;
use crate::db::{
    Actor, AuditFilter, Backend, LATEST_VERSION, Page, SmtpSettings, Store, UserScope,
};

/// Prints rows as a table, JSON (the serialized records) or CSV.
fn emit<T: Serialize>(out: OutputArgs, headers: &[&str], rows: Vec<Vec<String>>, records: &[T]) {
    if out.json {
        print_json(&records);
    } else if out.csv {
        let mut w = csv::Writer::from_writer(std::io::stdout().lock());
        let _ = w.write_record(headers);
        for r in rows {
            let _ = w.write_record(r.iter().map(|c| crate::csvio::escape_cell(c)));
        }
        let _ = w.flush();
    } else {
        print_table(headers, &rows);
    }
}

fn opt_f(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2}")).unwrap_or_default()
}

fn opt_t(v: Option<NaiveDateTime>) -> String {
    v.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// `--from`/`--to`: a day (UTC; `--to` means its end) or an RFC 3339 instant.
pub fn parse_bound(flag: &str, text: &str, end_of_day: bool) -> CliResult<NaiveDateTime> {
    let t = text.trim();
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let time = if end_of_day {
            NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap_or(NaiveTime::MIN)
        } else {
            NaiveTime::MIN
        };
        return Ok(d.and_time(time));
    }
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.naive_utc())
        .map_err(|_| {
            CliError::usage(format!(
                "{flag} '{text}': expected a date YYYY-MM-DD or an RFC 3339 time"
            ))
        })
}

async fn tenant_scope(store: &Store, domain: &str) -> CliResult<UserScope> {
    let t = tenant_by_domain(store, domain).await?;
    Ok(UserScope::Tenant(
        super::acting::actor().tenant_scope(t.id)?,
    ))
}

pub async fn stats(store: &Store, cmd: StatsCommand) -> CliResult<u8> {
    match cmd {
        StatsCommand::Tenants { out } => {
            let all = super::acting::actor().all_tenants()?;
            let rows = store.tenant_stats(UserScope::All(all)).await?;
            let table = rows
                .iter()
                .map(|r| {
                    vec![
                        r.domain.clone(),
                        r.name.clone(),
                        r.emails_sent_this_month.to_string(),
                        r.monthly_email_limit.to_string(),
                        format!("{:.1}", r.quota_ratio() * 100.0),
                        r.user_count.to_string(),
                        r.group_count.to_string(),
                        r.template_count.to_string(),
                        r.batch_count.to_string(),
                    ]
                })
                .collect();
            emit(
                out,
                &[
                    "DOMAIN",
                    "NAME",
                    "SENT",
                    "LIMIT",
                    "QUOTA_%",
                    "USERS",
                    "GROUPS",
                    "TEMPLATES",
                    "BATCHES",
                ],
                table,
                &rows,
            );
        }
        StatsCommand::Batches { tenant, limit, out } => {
            let scope = tenant_scope(store, &tenant).await?;
            let rows = store.batch_performance(scope, limit.max(1)).await?;
            let table = rows
                .iter()
                .map(|r| {
                    vec![
                        r.batch_id.to_string(),
                        r.name.clone(),
                        r.status.clone(),
                        r.sent_count.to_string(),
                        r.failed_count.to_string(),
                        opt_f(r.success_rate),
                        opt_t(r.scheduled_at),
                        opt_t(r.started_at),
                        opt_t(r.completed_at),
                        opt_f(r.duration_minutes),
                    ]
                })
                .collect();
            emit(
                out,
                &[
                    "ID",
                    "NAME",
                    "STATUS",
                    "SENT",
                    "FAILED",
                    "SUCCESS_%",
                    "SCHEDULED",
                    "STARTED",
                    "COMPLETED",
                    "MINUTES",
                ],
                table,
                &rows,
            );
        }
        StatsCommand::Activity {
            tenant,
            from,
            to,
            out,
        } => {
            let scope = tenant_scope(store, &tenant).await?;
            let to = match &to {
                Some(t) => parse_bound("--to", t, true)?,
                None => crate::db::now(),
            };
            let from = match &from {
                Some(f) => parse_bound("--from", f, false)?,
                None => (to.date() - chrono::Duration::days(29)).and_time(NaiveTime::MIN),
            };
            if from > to {
                return Err(CliError::usage(format!(
                    "--from ({from}) is after --to ({to})"
                )));
            }
            let rows = store.email_activity(scope, from, to).await?;
            let table = rows
                .iter()
                .map(|r| {
                    vec![
                        r.date.to_string(),
                        r.total_emails.to_string(),
                        r.sent_emails.to_string(),
                        r.failed_emails.to_string(),
                        format!("{:.2}", r.success_rate),
                    ]
                })
                .collect();
            emit(
                out,
                &["DATE", "TOTAL", "SENT", "FAILED", "SUCCESS_%"],
                table,
                &rows,
            );
        }
        StatsCommand::Groups { tenant, out } => {
            let scope = tenant_scope(store, &tenant).await?;
            let rows = store.group_email_counts(scope).await?;
            let table = rows
                .iter()
                .map(|r| {
                    vec![
                        r.group_id.to_string(),
                        r.name.clone(),
                        r.description.clone().unwrap_or_default(),
                        r.email_count.to_string(),
                        r.active_emails.to_string(),
                    ]
                })
                .collect();
            emit(
                out,
                &["ID", "NAME", "DESCRIPTION", "EMAILS", "ACTIVE"],
                table,
                &rows,
            );
        }
    }
    Ok(0)
}

/// Asks "yes/no" on the terminal; refuses when standard input is not a terminal.
fn confirm(question: &str, flag: &str) -> CliResult<()> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(format!(
            "{question}: not confirmed (standard input is not a terminal; pass {flag})"
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| CliError::usage(format!("cannot read the answer: {e}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(CliError::failed("cancelled"))
    }
}

pub async fn maintenance(store: &Store, cmd: MaintenanceCommand) -> CliResult<u8> {
    let all = Actor::system().all_tenants()?;
    match cmd {
        MaintenanceCommand::ResetUsage { yes } => {
            if !yes {
                confirm(
                    "reset emails_sent_this_month to 0 for every tenant not created this month?",
                    "--yes",
                )?;
            }
            let n = store.reset_usage(&all).await?;
            println!("monthly usage reset for {n} tenant(s)");
        }
        MaintenanceCommand::CleanLogs(args) => {
            return super::data_commands::clean_logs(store, args).await;
        }
        MaintenanceCommand::RecountUsage { json } => {
            let changed = store.recount_usage(&all).await?;
            if json {
                print_json(&changed);
            } else if changed.is_empty() {
                println!("every tenant's usage counter already matches its batches");
            } else {
                for c in &changed {
                    println!("{}: {} -> {}", c.domain, c.old_value, c.new_value);
                }
                println!("{} tenant(s) recounted", changed.len());
            }
        }
    }
    Ok(0)
}

pub async fn audit(store: &Store, cmd: AuditCommand) -> CliResult<u8> {
    let AuditCommand::List {
        tenant,
        search,
        limit,
        json,
    } = cmd;
    let scope = match &tenant {
        Some(d) => tenant_scope(store, d).await?,
        None => UserScope::All(super::acting::actor().all_tenants()?),
    };
    let filter = AuditFilter {
        search,
        tenant_id: None,
    };
    let mut rows = store
        .list_audit(scope, &filter, Page::last(limit.clamp(1, 100_000)))
        .await?;
    rows.reverse();
    if json {
        print_json(&rows);
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    r.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    r.actor.clone(),
                    r.tenant_id
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "-".into()),
                    r.action.clone(),
                    r.outcome.clone(),
                    r.target.clone(),
                    r.origin.clone(),
                ]
            })
            .collect();
        print_table(
            &[
                "ID", "TIME", "ACTOR", "TENANT", "ACTION", "OUTCOME", "TARGET", "ORIGIN",
            ],
            &table,
        );
    }
    Ok(0)
}

/// One line of the doctor's report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub status: &'static str,
    pub check: String,
    pub detail: String,
}

fn check(status: &'static str, name: impl Into<String>, detail: impl Into<String>) -> Check {
    Check {
        status,
        check: name.into(),
        detail: detail.into(),
    }
}

pub async fn doctor(config: &Config, args: DoctorArgs) -> CliResult<u8> {
    let checks = run_doctor(config, Duration::from_secs(args.timeout.clamp(1, 60))).await;
    let failed = checks.iter().any(|c| c.status == "fail");
    if args.json {
        print_json(&checks);
    } else {
        for c in &checks {
            println!("{:<5} {:<22} {}", c.status, c.check, c.detail);
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// Every check of `recalliq doctor`, in order; never fails itself.
pub async fn run_doctor(config: &Config, timeout: Duration) -> Vec<Check> {
    let mut out = Vec::new();
    let url = crate::db::redact_url(&config.database_url);
    let store = match Store::connect(&config.database_url).await {
        Ok(s) => {
            out.push(check("ok", "database", format!("{url} reachable")));
            s
        }
        Err(e) => {
            out.push(check("fail", "database", e.to_string()));
            out.push(key_check(&config.config_dir));
            out.push(clock_check(None));
            return out;
        }
    };
    match store.schema_version().await {
        Ok(v) if v >= LATEST_VERSION => {
            out.push(check("ok", "schema", format!("version {v} (current)")))
        }
        Ok(v) if store.backend() == Backend::Sqlite => out.push(check(
            "warn",
            "schema",
            format!("version {v}, this recalliq needs {LATEST_VERSION}: migrated automatically on next use"),
        )),
        Ok(v) => out.push(check(
            "fail",
            "schema",
            format!("version {v}, this recalliq needs {LATEST_VERSION}: run `recalliq migrate`"),
        )),
        Err(e) => out.push(check("fail", "schema", e.to_string())),
    }
    out.push(key_check(&config.config_dir));
    let db_now = match store.pg_pool() {
        Some(p) => {
            sqlx::query_scalar::<_, NaiveDateTime>("SELECT (NOW() AT TIME ZONE 'UTC')::TIMESTAMP")
                .fetch_one(p)
                .await
                .ok()
        }
        None => None,
    };
    out.push(clock_check(db_now));
    out.extend(transport_checks(&store, config, timeout).await);
    store.close().await;
    out
}

fn key_check(config_dir: &Path) -> Check {
    use crate::secrets::{ENV_SECRET_KEY, KEY_FILE, SecretKey};
    if let Some(v) = std::env::var(ENV_SECRET_KEY)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        return match SecretKey::resolve(Some(&v), &config_dir.join(KEY_FILE)) {
            Ok(_) => check("ok", "secret key", format!("from {ENV_SECRET_KEY}")),
            Err(e) => check("fail", "secret key", e.to_string()),
        };
    }
    let path = config_dir.join(KEY_FILE);
    if !path.exists() {
        return check(
            "warn",
            "secret key",
            format!(
                "{} does not exist yet (created 0600 when the first SMTP password is stored)",
                path.display()
            ),
        );
    }
    match SecretKey::from_file(&path) {
        Ok(_) => check(
            "ok",
            "secret key",
            format!("{} (mode 0600)", path.display()),
        ),
        Err(e) => check("fail", "secret key", e.to_string()),
    }
}

fn clock_check(db_now: Option<NaiveDateTime>) -> Check {
    let local = chrono::Utc::now().naive_utc();
    match db_now {
        Some(db) => {
            let skew = (db - local).num_milliseconds().abs() as f64 / 1000.0;
            let status = if skew > 5.0 { "warn" } else { "ok" };
            check(
                status,
                "clock",
                format!(
                    "UTC {} ; database clock differs by {skew:.1} s",
                    local.format("%Y-%m-%d %H:%M:%S")
                ),
            )
        }
        None => {
            // Before 2020 or far ahead: almost surely an unset clock (schedules and quota months depend on it).
            let year = local.format("%Y").to_string().parse::<i32>().unwrap_or(0);
            let status = if (2020..2100).contains(&year) {
                "ok"
            } else {
                "warn"
            };
            check(
                status,
                "clock",
                format!("UTC {}", local.format("%Y-%m-%d %H:%M:%S")),
            )
        }
    }
}

async fn transport_checks(store: &Store, config: &Config, timeout: Duration) -> Vec<Check> {
    let mut out = Vec::new();
    let system = Actor::system();
    let Ok(all) = system.all_tenants() else {
        return out;
    };
    let tenants =
        match super::commands::collect_pages(|page| store.list_tenants(&all, page, None), |t| t.id)
            .await
        {
            Ok(t) => t,
            Err(e) => {
                out.push(check("fail", "tenants", e.message));
                return out;
            }
        };
    for t in tenants.iter().filter(|t| t.is_usable()) {
        let name = format!("transport {}", t.domain);
        let Ok(scope) = system.tenant_scope(t.id) else {
            continue;
        };
        match store.smtp_settings(scope).await {
            Ok(None) => out.push(check("warn", name, "no SMTP server or outbox configured")),
            Ok(Some(SmtpSettings::Outbox(o))) => {
                let dir = resolve_outbox(&o.path, &config.data_dir);
                out.push(match writable_dir(&dir) {
                    Ok(()) => check("ok", name, format!("outbox {} writable", dir.display())),
                    Err(e) => check("fail", name, format!("outbox {}: {e}", dir.display())),
                });
            }
            Ok(Some(SmtpSettings::Smtp(s))) => {
                let tls = s.security == crate::db::Security::Tls;
                out.push(match smtp_banner(&s.host, s.port, tls, timeout).await {
                    Ok(banner) => check("ok", name, format!("{}:{} {banner}", s.host, s.port)),
                    Err(e) => check("fail", name, format!("{}:{} {e}", s.host, s.port)),
                });
            }
            Err(e) => out.push(check("fail", name, e.to_string())),
        }
    }
    out
}

fn resolve_outbox(path: &str, data_dir: &Path) -> std::path::PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        data_dir.join(p)
    }
}

/// The outbox directory exists (or can be made) and a file can be created in it.
fn writable_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".recalliq-doctor-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

/// TCP connect and read the greeting line (for implicit TLS ports only the connect: the
/// greeting comes after the handshake, which `smtp test` performs).
pub async fn smtp_banner(
    host: &str,
    port: u16,
    tls: bool,
    timeout: Duration,
) -> Result<String, String> {
    let connect = tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port)));
    let mut stream = match connect.await {
        Err(_) => return Err(format!("no connection within {} s", timeout.as_secs())),
        Ok(Err(e)) => return Err(format!("cannot connect: {e}")),
        Ok(Ok(s)) => s,
    };
    if tls {
        return Ok("TCP connect ok (TLS port: run `recalliq smtp test` for the handshake)".into());
    }
    let mut buf = vec![0u8; 512];
    let mut got = 0;
    let read = async {
        loop {
            let n = stream
                .read(&mut buf[got..])
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the server closed the connection before greeting".to_string());
            }
            got += n;
            if buf[..got].contains(&b'\n') || got == buf.len() {
                return Ok(());
            }
        }
    };
    match tokio::time::timeout(timeout, read).await {
        Err(_) => Err(format!("no greeting within {} s", timeout.as_secs())),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => {
            let line = String::from_utf8_lossy(&buf[..got]);
            let line = line.lines().next().unwrap_or("").trim().to_string();
            let line: String = line.chars().filter(|c| !c.is_control()).take(120).collect();
            if line.starts_with("220") {
                Ok(format!("greeting: {line}"))
            } else {
                Err(format!("unexpected greeting: {line}"))
            }
        }
    }
}

pub fn completions(args: CompletionsArgs) -> CliResult<u8> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let shell = match args.shell {
        ShellArg::Bash => Shell::Bash,
        ShellArg::Zsh => Shell::Zsh,
        ShellArg::Fish => Shell::Fish,
    };
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "recalliq", &mut buf);
    write_stdout(&buf, "the completion script")
}

/// Writes to standard output; a closed pipe (`| head`) is not an error.
fn write_stdout(bytes: &[u8], what: &str) -> CliResult<u8> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(CliError::failed(format!("cannot write {what}: {e}"))),
    }
}

pub fn man() -> CliResult<u8> {
    use clap::CommandFactory;
    let page = clap_mangen::Man::new(Cli::command());
    let mut buf = Vec::new();
    page.render(&mut buf)
        .map_err(|e| CliError::failed(format!("cannot render the man page: {e}")))?;
    write_stdout(&buf, "the man page")
}
