//! `recalliq demo [--db PATH] [--no-tui] [--logs N]`: a fresh SQLite database full of
//! realistic sample data, then the TUI logged in as the demo super admin.
//!
//! - The database goes to `--db PATH`, by default `demo.db` in the data directory. A demo
//!   database is marked by the `recalliq_demo` table. An existing demo database is replaced
//!   (with its `-wal`/`-shm` files); any other existing file is refused and left untouched.
//! - The data comes from `assets/demo/*.toml` (embedded) and a seeded RNG, so every run
//!   builds the same tenants, contacts, batches and logs; only the passwords (random on
//!   every run) and the timestamps (relative to now) differ. See `seed.rs` for what is in it.
//! - Every tenant sends through a local outbox transport: messages become files in
//!   `<data dir>/outbox/<tenant domain>/` (`tenants_tenant.settings.smtp`), so nothing leaves
//!   the machine.
//! - `--logs N` adds a completed batch with N email logs (performance work) and reports how
//!   long that took.
//!
//! Output: without `--no-tui`, the TUI opens logged in as `admin`; the summary (tenants,
//! users with their passwords, counts, database URL, outbox path) is printed to stdout when
//! the TUI closes, or instead of it while the TUI is not available. With `--no-tui`, stdout
//! holds exactly one line, the database URL (`sqlite://...`), so scripts can capture it;
//! the summary with the passwords goes to stderr. Passwords are never written to a file.

mod seed;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

pub use seed::{Credential, SEED, Seeded, TenantSummary};

use crate::config::{Config, sqlite_url};
use crate::db::{Actor, Store, UserScope};

/// The table that marks a database as built by `recalliq demo`.
pub const MARKER_TABLE: &str = "recalliq_demo";

/// Runs the `demo` subcommand.
pub async fn run(
    config: &Config,
    db: &Option<PathBuf>,
    no_tui: bool,
    logs: Option<u64>,
) -> Result<()> {
    let path = match db {
        Some(p) => p.clone(),
        None => config.data_dir.join("demo.db"),
    };
    let path =
        std::path::absolute(&path).wrap_err_with(|| format!("invalid path {}", path.display()))?;
    let outbox = config.data_dir.join("outbox");
    let outbox = std::path::absolute(&outbox).unwrap_or(outbox);

    let started = Instant::now();
    let (store, seeded) = build(&path, &outbox).await?;
    let seed_secs = started.elapsed().as_secs_f64();
    let url = sqlite_url(&path);

    let mut perf = None;
    if let Some(n) = logs.filter(|n| *n > 0) {
        let t = Instant::now();
        let batch_id = seed::add_log_batch(&store, n).await?;
        perf = Some((n, batch_id, t.elapsed().as_secs_f64()));
    }

    let summary = summary_text(&seeded, &url, &outbox, seed_secs, perf);
    if no_tui {
        store.close().await;
        println!("{url}");
        eprint!("{summary}");
        return Ok(());
    }

    let all = Actor::system().all_tenants()?;
    let user = store
        .user_by_username(UserScope::All(all), &seeded.super_admin)
        .await?;
    let actor = Actor::from_user(&user)?;
    let opts = crate::tui::Options {
        config_dir: config.config_dir.clone(),
        data_dir: config.data_dir.clone(),
        user: Some(user.username.clone()),
        ..crate::tui::Options::default()
    };
    let outcome = crate::tui::run_app(store.clone(), opts, Some((user, actor))).await;
    store.close().await;
    match outcome {
        Ok(()) => {
            print!("{summary}");
            Ok(())
        }
        Err(e) if e.to_string().contains("not available") => {
            print!("{summary}");
            Ok(())
        }
        Err(e) => {
            eprint!("{summary}");
            Err(e)
        }
    }
}

/// Builds the demo database at `path` (replacing an earlier demo database) and seeds it.
pub async fn build(path: &Path, outbox: &Path) -> Result<(Store, Seeded)> {
    prepare_path(path).await?;
    let url = sqlite_url(path);
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let pool = store
        .sqlite_pool()
        .ok_or_else(|| eyre!("the demo database must be SQLite"))?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS recalliq_demo (
            id INTEGER PRIMARY KEY,
            created_at DATETIME NOT NULL,
            seed INTEGER NOT NULL,
            version TEXT NOT NULL
        )",
    )
    .execute(pool)
    .await?;
    sqlx::query("INSERT INTO recalliq_demo (id, created_at, seed, version) VALUES (1, $1, $2, $3)")
        .bind(crate::db::now())
        .bind(SEED as i64)
        .bind(env!("CARGO_PKG_VERSION"))
        .execute(pool)
        .await?;
    let seeded = seed::seed(&store, outbox).await?;
    Ok((store, seeded))
}

fn sidecars(path: &Path) -> Vec<PathBuf> {
    ["-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| {
            let mut s = path.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        })
        .collect()
}

/// Makes room for a fresh demo database at `path`: nothing there, or an earlier demo
/// database, which is removed with its sidecar files. Anything else is refused untouched.
async fn prepare_path(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => bail!("cannot inspect {}: {e}", path.display()),
        Ok(meta) if !meta.is_file() => {
            bail!(
                "{} exists and is not a regular file; choose another --db path",
                path.display()
            )
        }
        Ok(_) => {
            if !is_demo_database(path).await {
                bail!(
                    "{} exists and is not a recalliq demo database (no {MARKER_TABLE} table); refusing to \
                     overwrite it. Choose another --db path or remove the file yourself.",
                    path.display()
                );
            }
            std::fs::remove_file(path)
                .wrap_err_with(|| format!("cannot remove {}", path.display()))?;
        }
    }
    // Sidecars of the old demo database (or stale ones with no database) must not be
    // replayed into the new one.
    for side in sidecars(path) {
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(eyre!("cannot remove {}: {e}", side.display())),
        }
    }
    Ok(())
}

/// Whether `path` is a SQLite database with the demo marker table. Opened read-only: a
/// file that is not a demo database is never written to.
pub async fn is_demo_database(path: &Path) -> bool {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false);
    let Ok(mut conn) = SqliteConnection::connect_with(&opts).await else {
        return false;
    };
    let found: Result<i64, _> = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'recalliq_demo'",
    )
    .fetch_one(&mut conn)
    .await;
    let _ = conn.close().await;
    matches!(found, Ok(1))
}

fn summary_text(
    seeded: &Seeded,
    url: &str,
    outbox: &Path,
    seed_secs: f64,
    perf: Option<(u64, i32, f64)>,
) -> String {
    let mut out = Vec::new();
    let _ = write_summary(&mut out, seeded, url, outbox, seed_secs, perf);
    String::from_utf8_lossy(&out).into_owned()
}

fn write_summary(
    out: &mut impl Write,
    seeded: &Seeded,
    url: &str,
    outbox: &Path,
    seed_secs: f64,
    perf: Option<(u64, i32, f64)>,
) -> std::io::Result<()> {
    writeln!(out, "RecallIQ demo database built in {seed_secs:.1} s")?;
    writeln!(out, "  database  {url}")?;
    writeln!(
        out,
        "  outbox    {}/<tenant domain>/ (messages are written there, nothing is sent)",
        outbox.display()
    )?;
    writeln!(out)?;
    writeln!(out, "Tenants")?;
    for t in &seeded.tenants {
        writeln!(
            out,
            "  {:<28} {:<28} {:<13} {:>7} of {:>7} emails this month",
            t.name, t.domain, t.plan, t.emails_sent_this_month, t.monthly_email_limit
        )?;
    }
    writeln!(out)?;
    writeln!(out, "Users (passwords are shown only this once)")?;
    writeln!(
        out,
        "  {:<18} {:<13} {:<28} PASSWORD",
        "USERNAME", "ROLE", "TENANT"
    )?;
    for c in &seeded.credentials {
        writeln!(
            out,
            "  {:<18} {:<13} {:<28} {}",
            c.username,
            c.role.as_str(),
            c.tenant.as_deref().unwrap_or("-"),
            c.password
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Counts: {} tenants, {} users, {} groups, {} contacts, {} templates, {} batches, {} email logs, {} execution logs",
        seeded.tenants.len(),
        seeded.credentials.len(),
        seeded.groups,
        seeded.contacts,
        seeded.templates,
        seeded.batches,
        seeded.email_logs,
        seeded.execution_logs
    )?;
    if let Some((n, batch_id, secs)) = perf {
        writeln!(
            out,
            "Added batch #{batch_id} with {n} email logs in {secs:.2} s"
        )?;
    }
    writeln!(
        out,
        "Log in with: recalliq --database-url {url} --user {}",
        seeded.super_admin
    )?;
    Ok(())
}
