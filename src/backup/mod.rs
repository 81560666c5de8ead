//! Backups that restore: `recalliq backup --to FILE`, `backup verify FILE`, `restore`.
//!
//! A backup is a consistent snapshot taken while batches run — SQLite through `VACUUM INTO`
//! (one read transaction), Postgres through `pg_dump --snapshot` of a snapshot exported by a
//! REPEATABLE READ transaction in which the manifest's row counts are taken too — followed
//! by a manifest (schema version, row counts per table, created at, SHA-256 of the dump),
//! all encrypted (see `crypto.rs`) with a key separate from the SMTP key. Files are written
//! to a temporary name (0600) and renamed, so a crash never leaves a half backup in place.
//!
//! Plaintext layout: dump bytes | manifest JSON | manifest length (u64 BE) | "RIQMANIF".

pub mod crypto;

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use sqlx::Connection;
use tokio::io::AsyncReadExt;

use crate::db::{Backend, LATEST_VERSION, Store, redact_url};
pub use crypto::{CryptoError, KeySpec};

const TRAILER: &[u8; 8] = b"RIQMANIF";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Crypto(#[from] CryptoError),
    #[error("{0}")]
    Db(#[from] crate::db::DbError),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Tool(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl From<sqlx::Error> for BackupError {
    fn from(e: sqlx::Error) -> Self {
        BackupError::Db(e.into())
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

pub type BackupResult<T> = Result<T, BackupError>;

/// What a backup holds, stored encrypted inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub recalliq_version: String,
    /// "sqlite" or "postgres".
    pub backend: String,
    pub schema_version: i64,
    pub created_at: String,
    /// Rows per table in the snapshot.
    pub tables: BTreeMap<String, i64>,
    pub dump_bytes: u64,
    /// SHA-256 of the dump (hex).
    pub dump_sha256: String,
}

impl Manifest {
    pub fn total_rows(&self) -> i64 {
        self.tables.values().sum()
    }
}

/// A temporary file next to `target`, mode 0600, renamed over `target` on `persist`.
fn temp_next_to(target: &Path) -> BackupResult<tempfile::NamedTempFile> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
    tempfile::Builder::new()
        .prefix(".recalliq-")
        .suffix(".part")
        .tempfile_in(&dir)
        .map_err(io(format!("cannot write in {}", dir.display())))
}

fn sha256_hex(digest: ring::digest::Digest) -> String {
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits a Postgres URL into one without password (safe on a command line) and the
/// password (for PGPASSWORD).
fn pg_url_parts(url: &str) -> BackupResult<(String, Option<String>)> {
    let mut u = url::Url::parse(url)
        .map_err(|e| BackupError::Invalid(format!("bad database URL {}: {e}", redact_url(url))))?;
    let pw = u.password().map(percent_decode);
    let _ = u.set_password(None);
    Ok((u.to_string(), pw))
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

fn pg_tool(name: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(name);
    cmd.kill_on_drop(true);
    cmd
}

fn tool_error(name: &str, e: std::io::Error) -> BackupError {
    if e.kind() == std::io::ErrorKind::NotFound {
        BackupError::Tool(format!(
            "{name} was not found on PATH: install the PostgreSQL client tools (e.g. `apt install postgresql-client`), version 15 or newer"
        ))
    } else {
        BackupError::Tool(format!("cannot run {name}: {e}"))
    }
}

/// Row counts of every table of a SQLite database file (its own pool, read-only).
async fn sqlite_counts(path: &Path) -> BackupResult<(BTreeMap<String, i64>, i64)> {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await?;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await?;
    let mut counts = BTreeMap::new();
    for t in &names {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {}",
            crate::db::quote_ident(t)
        )))
        .fetch_one(&mut conn)
        .await?;
        counts.insert(t.clone(), n);
    }
    let version: i64 = if names.iter().any(|n| n == "recalliq_schema_migrations") {
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM recalliq_schema_migrations")
            .fetch_one(&mut conn)
            .await?
    } else {
        0
    };
    conn.close().await?;
    Ok((counts, version))
}

/// Row counts of every table of the current schema, on `conn` (inside the snapshot).
async fn pg_counts(conn: &mut sqlx::PgConnection) -> BackupResult<(BTreeMap<String, i64>, i64)> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut counts = BTreeMap::new();
    for t in &names {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {}",
            crate::db::quote_ident(t)
        )))
        .fetch_one(&mut *conn)
        .await?;
        counts.insert(t.clone(), n);
    }
    let version: i64 = if names.iter().any(|n| n == "recalliq_schema_migrations") {
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM recalliq_schema_migrations")
            .fetch_one(&mut *conn)
            .await?
    } else {
        0
    };
    Ok((counts, version))
}

fn manifest(
    backend: Backend,
    tables: BTreeMap<String, i64>,
    schema_version: i64,
    dump_bytes: u64,
    dump_sha256: String,
) -> Manifest {
    Manifest {
        format: 1,
        recalliq_version: env!("CARGO_PKG_VERSION").to_string(),
        backend: match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
        .to_string(),
        schema_version,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        tables,
        dump_bytes,
        dump_sha256,
    }
}

fn append_manifest<W: Write>(enc: &mut crypto::Encryptor<W>, m: &Manifest) -> BackupResult<()> {
    let json = serde_json::to_vec(m).map_err(|e| BackupError::Invalid(e.to_string()))?;
    enc.write_data(&json)?;
    enc.write_data(&(json.len() as u64).to_be_bytes())?;
    enc.write_data(TRAILER)?;
    Ok(())
}

/// Takes a backup of `store`'s database (whose URL is `url`) into `to`.
pub async fn create(store: &Store, url: &str, to: &Path, key: &KeySpec) -> BackupResult<Manifest> {
    let out = temp_next_to(to)?;
    let manifest = match store.backend() {
        Backend::Sqlite => {
            let pool = store.sqlite_pool().expect("sqlite store");
            let dir = tempfile::tempdir().map_err(io("cannot create a temporary directory"))?;
            let snap = dir.path().join("snapshot.db");
            // One read transaction: consistent even while the engine writes (WAL).
            sqlx::query("VACUUM INTO $1")
                .bind(snap.to_string_lossy().into_owned())
                .execute(pool)
                .await?;
            let (tables, version) = sqlite_counts(&snap).await?;
            let key = key.clone();
            let file = out.reopen().map_err(io("cannot write the backup"))?;
            tokio::task::spawn_blocking(move || -> BackupResult<Manifest> {
                let mut src = std::fs::File::open(&snap).map_err(io("cannot read the snapshot"))?;
                let mut enc = crypto::Encryptor::new(std::io::BufWriter::new(file), &key)?;
                let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
                let mut buf = vec![0u8; crypto::CHUNK];
                let mut total = 0u64;
                loop {
                    let n = src.read(&mut buf).map_err(io("cannot read the snapshot"))?;
                    if n == 0 {
                        break;
                    }
                    ctx.update(&buf[..n]);
                    enc.write_data(&buf[..n])?;
                    total += n as u64;
                }
                let m = manifest(
                    Backend::Sqlite,
                    tables,
                    version,
                    total,
                    sha256_hex(ctx.finish()),
                );
                append_manifest(&mut enc, &m)?;
                let w = enc.finish()?;
                let f = w.into_inner().map_err(|e| BackupError::Io {
                    what: "cannot write the backup".into(),
                    source: e.into_error(),
                })?;
                f.sync_all().map_err(io("cannot write the backup"))?;
                drop(dir);
                Ok(m)
            })
            .await
            .map_err(|e| BackupError::Invalid(format!("backup task failed: {e}")))??
        }
        Backend::Postgres => {
            let (safe_url, password) = pg_url_parts(url)?;
            let mut conn = sqlx::PgConnection::connect(url).await?;
            sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut conn)
                .await?;
            let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
                .fetch_one(&mut conn)
                .await?;
            let (tables, version) = pg_counts(&mut conn).await?;
            let mut cmd = pg_tool("pg_dump");
            cmd.arg("--format=custom")
                .arg("--no-owner")
                .arg("--no-privileges")
                .arg(format!("--snapshot={snapshot}"))
                .arg(format!("--dbname={safe_url}"))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            if let Some(pw) = &password {
                cmd.env("PGPASSWORD", pw);
            }
            let mut child = cmd.spawn().map_err(|e| tool_error("pg_dump", e))?;
            let mut stdout = child.stdout.take().expect("piped stdout");
            let mut stderr = child.stderr.take().expect("piped stderr");
            let err_task = tokio::spawn(async move {
                let mut s = String::new();
                let _ = stderr.read_to_string(&mut s).await;
                s
            });
            let file = out.reopen().map_err(io("cannot write the backup"))?;
            let mut enc = crypto::Encryptor::new(std::io::BufWriter::new(file), key)?;
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            let mut buf = vec![0u8; crypto::CHUNK];
            let mut total = 0u64;
            loop {
                let n = stdout
                    .read(&mut buf)
                    .await
                    .map_err(io("cannot read from pg_dump"))?;
                if n == 0 {
                    break;
                }
                ctx.update(&buf[..n]);
                enc.write_data(&buf[..n])?;
                total += n as u64;
            }
            let status = child.wait().await.map_err(|e| tool_error("pg_dump", e))?;
            let stderr = err_task.await.unwrap_or_default();
            let _ = sqlx::query("COMMIT").execute(&mut conn).await;
            let _ = conn.close().await;
            if !status.success() {
                return Err(BackupError::Tool(format!(
                    "pg_dump failed: {}",
                    stderr.lines().next().unwrap_or("no message")
                )));
            }
            let m = manifest(
                Backend::Postgres,
                tables,
                version,
                total,
                sha256_hex(ctx.finish()),
            );
            append_manifest(&mut enc, &m)?;
            let w = enc.finish()?;
            let f = w.into_inner().map_err(|e| BackupError::Io {
                what: "cannot write the backup".into(),
                source: e.into_error(),
            })?;
            f.sync_all().map_err(io("cannot write the backup"))?;
            m
        }
    };
    out.persist(to).map_err(|e| BackupError::Io {
        what: format!("cannot write {}", to.display()),
        source: e.error,
    })?;
    Ok(manifest)
}

/// A decrypted backup: the dump in a private temporary file, and its manifest.
pub struct Opened {
    pub manifest: Manifest,
    dir: tempfile::TempDir,
    dump: PathBuf,
}

impl Opened {
    pub fn dump_path(&self) -> &Path {
        &self.dump
    }
}

/// Decrypts `from`, checks the dump against the manifest's size and SHA-256.
pub async fn open(
    from: &Path,
    key_for: impl FnOnce(bool) -> Result<KeySpec, CryptoError> + Send + 'static,
) -> BackupResult<Opened> {
    let from = from.to_path_buf();
    tokio::task::spawn_blocking(move || open_blocking(&from, key_for))
        .await
        .map_err(|e| BackupError::Invalid(format!("restore task failed: {e}")))?
}

fn open_blocking(
    from: &Path,
    key_for: impl FnOnce(bool) -> Result<KeySpec, CryptoError>,
) -> BackupResult<Opened> {
    let input = std::fs::File::open(from).map_err(io(format!("cannot read {}", from.display())))?;
    let dir = tempfile::tempdir().map_err(io("cannot create a temporary directory"))?;
    let plain_path = dir.path().join("plain");
    let mut plain = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&plain_path)
        .map_err(io("cannot write a temporary file"))?;
    let total = {
        let mut w = std::io::BufWriter::new(&mut plain);
        let total = crypto::decrypt(std::io::BufReader::new(input), &mut w, key_for).map_err(
            |e| match e {
                CryptoError::Io(source) => BackupError::Io {
                    what: format!("cannot read {}", from.display()),
                    source,
                },
                other => BackupError::Crypto(other),
            },
        )?;
        w.flush().map_err(io("cannot write a temporary file"))?;
        total
    };
    let bad = || {
        BackupError::Invalid(format!(
            "{}: the backup has no valid manifest",
            from.display()
        ))
    };
    if total < 16 {
        return Err(bad());
    }
    let mut tail = [0u8; 16];
    plain
        .seek(SeekFrom::Start(total - 16))
        .map_err(io("seek"))?;
    plain.read_exact(&mut tail).map_err(io("read"))?;
    if &tail[8..] != TRAILER {
        return Err(bad());
    }
    let mlen = u64::from_be_bytes(tail[..8].try_into().unwrap());
    if mlen > total - 16 {
        return Err(bad());
    }
    let dump_len = total - 16 - mlen;
    let mut mjson = vec![0u8; mlen as usize];
    plain.seek(SeekFrom::Start(dump_len)).map_err(io("seek"))?;
    plain.read_exact(&mut mjson).map_err(io("read"))?;
    let manifest: Manifest = serde_json::from_slice(&mjson).map_err(|_| bad())?;
    plain.set_len(dump_len).map_err(io("truncate"))?;
    plain.seek(SeekFrom::Start(0)).map_err(io("seek"))?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; crypto::CHUNK];
    loop {
        let n = plain.read(&mut buf).map_err(io("read"))?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    if dump_len != manifest.dump_bytes || sha256_hex(ctx.finish()) != manifest.dump_sha256 {
        return Err(BackupError::Invalid(format!(
            "{}: the dump does not match the manifest's checksum",
            from.display()
        )));
    }
    Ok(Opened {
        manifest,
        dir,
        dump: plain_path,
    })
}

/// How a restore went.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub manifest: Manifest,
    pub target: String,
}

/// Whether the database at `url` holds any table; SQLite files that do not exist are empty.
async fn target_tables(url: &str) -> BackupResult<Vec<String>> {
    if url.starts_with("sqlite:") {
        let Some(path) = crate::db::sqlite_path(url) else {
            return Err(BackupError::Invalid(format!("bad SQLite URL {url}")));
        };
        if !path.exists()
            || std::fs::metadata(&path)
                .map(|m| m.len() == 0)
                .unwrap_or(false)
        {
            return Ok(Vec::new());
        }
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .read_only(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&opts)
            .await
            .map_err(|e| BackupError::Invalid(format!("cannot open {}: {e}", path.display())))?;
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .fetch_all(&mut conn)
        .await?;
        let _ = conn.close().await;
        Ok(names)
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.map_err(|e| {
            BackupError::Db(crate::db::DbError::Connect {
                url: redact_url(url),
                reason: e.to_string(),
            })
        })?;
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await?;
        let _ = conn.close().await;
        Ok(names)
    }
}

fn backend_of(url: &str) -> BackupResult<Backend> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Backend::Postgres)
    } else {
        Err(BackupError::Invalid(format!(
            "unsupported target {} (expected sqlite://PATH or postgres://USER@HOST/DB)",
            redact_url(url)
        )))
    }
}

/// Restores an opened backup into `url`. A database that holds tables is refused unless
/// `force`; a SQLite target is replaced atomically, a Postgres one restored in a single
/// transaction (`pg_restore --single-transaction --exit-on-error`).
pub async fn restore(opened: &Opened, url: &str, force: bool) -> BackupResult<Restored> {
    let target = backend_of(url)?;
    let m = &opened.manifest;
    let want = if m.backend == "sqlite" {
        Backend::Sqlite
    } else {
        Backend::Postgres
    };
    if target != want {
        return Err(BackupError::Refused(format!(
            "this is a backup of a {} database; restore it to a {} URL",
            m.backend,
            if want == Backend::Sqlite {
                "sqlite://PATH"
            } else {
                "postgres://"
            }
        )));
    }
    if m.schema_version > LATEST_VERSION {
        return Err(BackupError::Refused(format!(
            "the backup's schema (version {}) is newer than this recalliq knows ({LATEST_VERSION}); restore it with a newer recalliq",
            m.schema_version
        )));
    }
    let existing = target_tables(url).await?;
    if !existing.is_empty() && !force {
        return Err(BackupError::Refused(format!(
            "{} is not empty ({} tables, e.g. {}); restoring would overwrite it: add --force",
            redact_url(url),
            existing.len(),
            existing[0]
        )));
    }
    match target {
        Backend::Sqlite => {
            let path = crate::db::sqlite_path(url)
                .ok_or_else(|| BackupError::Invalid(format!("bad SQLite URL {url}")))?;
            let tmp = temp_next_to(&path)?;
            {
                let mut src = std::fs::File::open(opened.dump_path()).map_err(io("read"))?;
                let mut dst = tmp.as_file();
                std::io::copy(&mut src, &mut dst)
                    .map_err(io(format!("cannot write next to {}", path.display())))?;
                dst.sync_all().map_err(io("sync"))?;
            }
            for suffix in ["-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(p));
            }
            tmp.persist(&path).map_err(|e| BackupError::Io {
                what: format!("cannot replace {}", path.display()),
                source: e.error,
            })?;
        }
        Backend::Postgres => {
            let (safe_url, password) = pg_url_parts(url)?;
            let mut cmd = pg_tool("pg_restore");
            cmd.arg("--no-owner")
                .arg("--no-privileges")
                .arg("--exit-on-error")
                .arg("--single-transaction")
                .arg(format!("--dbname={safe_url}"));
            if force {
                cmd.arg("--clean").arg("--if-exists");
            }
            cmd.arg(opened.dump_path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            if let Some(pw) = &password {
                cmd.env("PGPASSWORD", pw);
            }
            let out = cmd
                .output()
                .await
                .map_err(|e| tool_error("pg_restore", e))?;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                return Err(BackupError::Tool(format!(
                    "pg_restore failed (nothing was changed): {}",
                    err.lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("no message")
                )));
            }
        }
    }
    Ok(Restored {
        manifest: m.clone(),
        target: redact_url(url),
    })
}

/// Row counts of every table at `url`.
pub async fn counts_at(url: &str) -> BackupResult<BTreeMap<String, i64>> {
    match backend_of(url)? {
        Backend::Sqlite => {
            let path = crate::db::sqlite_path(url)
                .ok_or_else(|| BackupError::Invalid(format!("bad SQLite URL {url}")))?;
            Ok(sqlite_counts(&path).await?.0)
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            let c = pg_counts(&mut conn).await?.0;
            let _ = conn.close().await;
            Ok(c)
        }
    }
}

/// A table whose restored row count differs from the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub table: String,
    pub manifest: Option<i64>,
    pub restored: Option<i64>,
}

/// The result of `backup verify`.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub manifest: Manifest,
    pub mismatches: Vec<Mismatch>,
}

pub fn compare(
    manifest: &BTreeMap<String, i64>,
    restored: &BTreeMap<String, i64>,
) -> Vec<Mismatch> {
    let mut names: Vec<&String> = manifest.keys().chain(restored.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|t| {
            let a = manifest.get(t).copied();
            let b = restored.get(t).copied();
            (a != b).then(|| Mismatch {
                table: t.clone(),
                manifest: a,
                restored: b,
            })
        })
        .collect()
}

/// Restores `from` into a temporary database and compares every table's row count with
/// the manifest (the dump's checksum is checked on opening). A Postgres backup needs a
/// server: `pg_server` is a URL of any database on it (a `recalliq_verify_*` database is
/// created there and dropped afterwards).
pub async fn verify(
    from: &Path,
    key_for: impl FnOnce(bool) -> Result<KeySpec, CryptoError> + Send + 'static,
    pg_server: Option<&str>,
) -> BackupResult<Verified> {
    let opened = open(from, key_for).await?;
    let restored = if opened.manifest.backend == "sqlite" {
        let dir = tempfile::tempdir().map_err(io("cannot create a temporary directory"))?;
        let url = format!("sqlite://{}", dir.path().join("verify.db").display());
        restore(&opened, &url, false).await?;
        counts_at(&url).await?
    } else {
        let Some(server) = pg_server.filter(|u| u.starts_with("postgres")) else {
            return Err(BackupError::Invalid(
                "verifying a Postgres backup needs a Postgres server to restore into: give --database-url postgres://USER@HOST/DB (a temporary database is created there)".into(),
            ));
        };
        let mut admin = sqlx::PgConnection::connect(server).await.map_err(|e| {
            BackupError::Db(crate::db::DbError::Connect {
                url: redact_url(server),
                reason: e.to_string(),
            })
        })?;
        let name = format!(
            "recalliq_verify_{}_{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .map_err(|e| {
                BackupError::Tool(format!(
                    "cannot create a temporary database for verification ({e}); the role needs CREATEDB"
                ))
            })?;
        let mut u = url::Url::parse(server).map_err(|e| BackupError::Invalid(e.to_string()))?;
        u.set_path(&format!("/{name}"));
        let url = u.to_string();
        let result = async {
            restore(&opened, &url, false).await?;
            counts_at(&url).await
        }
        .await;
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await;
        let _ = admin.close().await;
        result?
    };
    let mismatches = compare(&opened.manifest.tables, &restored);
    drop(opened.dir);
    Ok(Verified {
        manifest: opened.manifest,
        mismatches,
    })
}
