//! Issue #12 (and `maintenance clean-logs` of #8): retention and clean-logs, tenant purge,
//! Postgres row-level security, encrypted backups that restore and verify — on real SQLite
//! files and a real Postgres, the engine sending over TCP to the test SMTP server.

use std::collections::BTreeMap;
use std::time::Duration;

use recalliq::backup::{self, KeySpec};
use recalliq::csvio::ImportRow;
use recalliq::db::{
    Actor, CleanOptions, NewBatch, NewContact, NewEmailLog, NewTemplate, NewUser, Security,
    SmtpServer, SmtpSettings, Store, TenantScope, rls,
};
use recalliq::domain::{EmailStatus, Role};
use recalliq::engine::{Engine, EngineConfig};
use serde_json::json;
use sqlx::Connection;
use tokio::sync::watch;

use crate::store_test;
use crate::support::cli::Env;
use crate::support::smtp::{SinkConfig, SmtpSink};
use crate::support::{PgDb, SqliteDb, tenant};

/// Runs one statement with bound integer/timestamp parameters on whichever backend.
async fn exec(store: &Store, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    if let Some(p) = store.sqlite_pool() {
        sqlx::query(sql).execute(p).await.unwrap();
    } else {
        sqlx::query(sql)
            .execute(store.pg_pool().unwrap())
            .await
            .unwrap();
    }
}

async fn count(store: &Store, sql: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    if let Some(p) = store.sqlite_pool() {
        sqlx::query_scalar(sql).fetch_one(p).await.unwrap()
    } else {
        sqlx::query_scalar(sql)
            .fetch_one(store.pg_pool().unwrap())
            .await
            .unwrap()
    }
}

/// Ages a row: `created_at` = now - `days` days.
async fn age(store: &Store, table: &str, id: i32, days: i64) {
    let ts = recalliq::db::now() - chrono::Duration::days(days);
    let sql = format!(
        "UPDATE {table} SET created_at = '{}' WHERE id = {id}",
        ts.format("%Y-%m-%d %H:%M:%S%.6f")
    );
    exec(store, &sql).await;
}

struct Owned {
    scope: TenantScope,
    tenant_id: i32,
    group_id: i32,
    template_id: i32,
    batch_id: i32,
}

/// A tenant with a user, a sender, a group of `n` contacts, a template, a draft batch, a
/// suppression entry and a retention setting.
async fn populate(store: &Store, domain: &str, n: usize) -> Owned {
    let (t, scope) = tenant(store, domain).await;
    store
        .add_tenant_email(scope, &format!("news@{domain}"), Some("News"))
        .await
        .unwrap();
    store
        .create_user(
            scope.into(),
            &NewUser {
                username: format!("admin-{domain}"),
                email: format!("admin@{domain}"),
                password_hash: "pbkdf2_sha256$1$x$y".into(),
                role: Role::TenantAdmin,
                tenant_id: Some(t.id),
                first_name: None,
                last_name: None,
            },
        )
        .await
        .unwrap();
    let g = store.create_group(scope, "All", None).await.unwrap();
    store
        .add_contact(
            scope,
            g.id,
            &NewContact {
                email: "user0@example.com".into(),
                name: Some("User 0".into()),
                variables: Some(json!({"plan": "P0"})),
            },
        )
        .await
        .unwrap();
    let rows: Vec<ImportRow> = (1..n)
        .map(|i| ImportRow {
            line: i as u64,
            email: format!("user{i}@example.com"),
            name: Some(format!("User {i}")),
            variables: Some(json!({"plan": format!("P{i}")})),
        })
        .collect();
    store
        .import_contacts(scope, g.id, &rows, &mut |_| {})
        .await
        .unwrap();
    let template = store
        .create_template(
            scope,
            &NewTemplate {
                name: "Hello".into(),
                subject: "Hi {{ name }}".into(),
                body_html: None,
                body_text: Some("Hello {{ name }}.".into()),
                variables: None,
            },
        )
        .await
        .unwrap();
    let batch = store
        .create_batch(
            scope,
            &NewBatch {
                name: "Spring".into(),
                template_id: template.id,
                group_ids: vec![g.id],
                variables: None,
                scheduled_at: None,
            },
        )
        .await
        .unwrap();
    store
        .suppress(scope, "gone@example.com", "manual", None, Some(batch.id))
        .await
        .unwrap();
    store.set_retention(scope, Some(60), None).await.unwrap();
    Owned {
        scope,
        tenant_id: t.id,
        group_id: g.id,
        template_id: template.id,
        batch_id: batch.id,
    }
}

async fn log(store: &Store, o: &Owned, email: &str, status: EmailStatus, days: i64) -> i32 {
    let l = store
        .add_email_log(
            o.scope,
            o.batch_id,
            &NewEmailLog {
                recipient_email: email.into(),
                recipient_name: None,
                status,
                sent_at: None,
                error_message: None,
                smtp_response: None,
            },
        )
        .await
        .unwrap();
    age(store, "logs_emaillog", l.id, days).await;
    l.id
}

async fn exec_log(store: &Store, o: &Owned, days: i64) -> i32 {
    let x = store
        .add_execution_log(o.scope, o.batch_id, "note", Some("test"), None)
        .await
        .unwrap();
    age(store, "logs_batchexecutionlog", x.id, days).await;
    x.id
}

store_test!(
    clean_logs_applies_each_tenants_retention,
    |store| async move {
        let a = populate(&store, "keep.test", 1).await;
        let b = populate(&store, "short.test", 1).await;
        // a: the command's defaults (90 / 30); b: its own 10 / 5 days.
        exec(
            &store,
            &format!(
                "DELETE FROM recalliq_retention WHERE tenant_id = {}",
                a.tenant_id
            ),
        )
        .await;
        store
            .set_retention(b.scope, Some(10), Some(5))
            .await
            .unwrap();
        for o in [&a, &b] {
            for i in 0..3 {
                log(&store, o, &format!("old{i}@x.test"), EmailStatus::Sent, 200).await;
            }
            log(&store, o, "oldfail@x.test", EmailStatus::Failed, 200).await;
            log(&store, o, "mid@x.test", EmailStatus::Sent, 20).await;
            log(&store, o, "new@x.test", EmailStatus::Sent, 1).await;
            // Still the engine's queue (the batch is a draft): kept whatever its age.
            log(&store, o, "queued@x.test", EmailStatus::Pending, 200).await;
            exec_log(&store, o, 40).await;
            exec_log(&store, o, 7).await;
            exec_log(&store, o, 1).await;
        }
        let all = Actor::system().all_tenants().unwrap();
        let mut seen = Vec::new();
        let dry = store
            .clean_logs(
                &all,
                CleanOptions {
                    dry_run: true,
                    ..CleanOptions::default()
                },
                &mut |r| seen.push(r.clone()),
            )
            .await
            .unwrap();
        let by = |v: &[recalliq::db::CleanReport], d: &str| {
            let r = v.iter().find(|r| r.domain == d).unwrap().clone();
            (r.email_logs, r.batch_logs)
        };
        assert_eq!(by(&dry, "keep.test"), (4, 1));
        assert_eq!(by(&dry, "short.test"), (5, 2));
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM logs_emaillog").await,
            14
        );

        let mut progress = 0;
        let done = store
            .clean_logs(
                &all,
                CleanOptions {
                    chunk: 2,
                    ..CleanOptions::default()
                },
                &mut |_| progress += 1,
            )
            .await
            .unwrap();
        assert_eq!(by(&done, "keep.test"), (4, 1));
        assert_eq!(by(&done, "short.test"), (5, 2));
        assert!(progress >= 5, "progress after every chunk, got {progress}");
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM logs_emaillog").await,
            14 - 9
        );
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM logs_emaillog WHERE recipient_email = 'queued@x.test'"
            )
            .await,
            2
        );
        assert_eq!(
            count(
                &store,
                &format!(
                    "SELECT COUNT(*) FROM logs_emaillog l JOIN batches_batch b ON b.id = l.batch_id
                 WHERE b.tenant_id = {} AND l.recipient_email = 'mid@x.test'",
                    a.tenant_id
                )
            )
            .await,
            1,
            "20 days old is within the default 90"
        );
        // Idempotent.
        let again = store
            .clean_logs(&all, CleanOptions::default(), &mut |_| {})
            .await
            .unwrap();
        assert!(again.iter().all(|r| r.email_logs == 0 && r.batch_logs == 0));
        // Bad retention values are refused with the reason.
        let err = store
            .set_retention(a.scope, Some(0), None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("between 1 and 36500"), "{err}");
    }
);

/// Row counts of every table.
async fn table_counts(store: &Store) -> BTreeMap<String, i64> {
    let cat = store.catalog().await.unwrap();
    let mut out = BTreeMap::new();
    for t in &cat.tables {
        out.insert(
            t.clone(),
            count(store, &format!("SELECT COUNT(*) FROM {t}")).await,
        );
    }
    out
}

store_test!(purge_leaves_no_row_of_the_tenant, |store| async move {
    let a = populate(&store, "gone.test", 5).await;
    let b = populate(&store, "stays.test", 5).await;
    for o in [&a, &b] {
        store.start_batch(o.scope, o.batch_id).await.unwrap();
        exec_log(&store, o, 1).await;
    }
    let all = Actor::system().all_tenants().unwrap();
    // A running batch blocks the purge.
    let err = store.purge_tenant(&all, a.tenant_id).await.unwrap_err();
    assert!(err.to_string().contains("running batch"), "{err}");
    for o in [&a, &b] {
        store.cancel_batch(o.scope, o.batch_id).await.unwrap();
    }
    let before = table_counts(&store).await;
    let report = store.purge_tenant(&all, a.tenant_id).await.unwrap();
    assert_eq!(report.domain, "gone.test");
    let after = table_counts(&store).await;
    let cat = store.catalog().await.unwrap();
    // Both tenants were built alike: every tenant-owned table lost exactly half its rows,
    // every other table nothing.
    for (table, n) in &before {
        let expect = if cat.owned.contains_key(table) {
            n / 2
        } else {
            *n
        };
        assert_eq!(after[table], expect, "table {table}");
        if cat.owned.contains_key(table) && *n > 0 {
            assert_eq!(
                report.deleted.get(table).copied(),
                Some((n / 2) as u64),
                "{table}"
            );
        }
    }
    for (table, how) in &cat.owned {
        let sql = match how {
            recalliq::db::Ownership::Tenant => {
                format!("SELECT COUNT(*) FROM {table} WHERE id = {}", a.tenant_id)
            }
            recalliq::db::Ownership::Direct => {
                format!(
                    "SELECT COUNT(*) FROM {table} WHERE tenant_id = {}",
                    a.tenant_id
                )
            }
            recalliq::db::Ownership::Via(fk) => format!(
                "SELECT COUNT(*) FROM {table} WHERE {} IN ({}, {}, {})",
                fk.column, a.batch_id, a.group_id, a.template_id
            ),
        };
        if matches!(how, recalliq::db::Ownership::Via(_)) && a.batch_id == b.batch_id {
            continue;
        }
        assert_eq!(
            count(&store, &sql).await,
            0,
            "{table} still has rows of the tenant"
        );
    }
    // The other tenant is whole.
    assert_eq!(store.list_contacts_count(b.scope, b.group_id).await, 5);
    assert!(store.get_batch(b.scope, b.batch_id).await.is_ok());
    assert!(store.get_tenant(a.scope).await.is_err());
});

trait ContactCount {
    async fn list_contacts_count(&self, scope: TenantScope, group: i32) -> i64;
}

impl ContactCount for Store {
    async fn list_contacts_count(&self, scope: TenantScope, group: i32) -> i64 {
        self.get_group(scope, group).await.unwrap();
        count(
            self,
            &format!("SELECT COUNT(*) FROM tenants_groupemail WHERE group_id = {group}"),
        )
        .await
    }
}

/// Row-level security on Postgres: a connection as an ordinary role sees only the rows of
/// the tenant in its context, whatever the query says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_security_hides_other_tenants_rows() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    let role = format!("riq_rls_{:08x}", rand::random::<u32>());
    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        let owner = Store::connect(&db.url).await.unwrap();
        owner.migrate().await.unwrap();
        let a = populate(&owner, "a.test", 3).await;
        let b = populate(&owner, "b.test", 2).await;
        owner.start_batch(a.scope, a.batch_id).await.unwrap();
        owner.start_batch(b.scope, b.batch_id).await.unwrap();
        // One attempt row per log (issue 7's history): a 3, b 2.
        sqlx::query(
            "INSERT INTO recalliq_emailattempt (tenant_id, email_log_id, attempt, attempted_at, outcome)
             SELECT b.tenant_id, l.id, 1, NOW(), 'retry' FROM logs_emaillog l
             JOIN batches_batch b ON b.id = l.batch_id",
        )
        .execute(owner.pg_pool().unwrap())
        .await
        .unwrap();
        let all = Actor::system().all_tenants().unwrap();
        let report = owner.set_row_level_security(&all, true).await.unwrap();
        assert!(report.tables.contains(&"logs_emaillog".to_string()));
        assert!(report.tables.contains(&"recalliq_emailattempt".to_string()));
        assert!(report.tables.contains(&"tenants_groupemail".to_string()));
        assert!(
            report
                .warning
                .as_deref()
                .unwrap_or("")
                .contains("superuser"),
            "the connected superuser is told it is exempt: {report:?}"
        );
        let pg = owner.pg_pool().unwrap();
        for sql in [
            format!("CREATE ROLE {role} LOGIN"),
            format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
            ),
            format!("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(pg)
                .await
                .unwrap();
        }
        let url = db.url.replacen("://root@", &format!("://{role}@"), 1);
        let app = Store::connect(&url).await.unwrap();
        let ap = app.pg_pool().unwrap().clone();
        let raw = |sql: &'static str| {
            let ap = ap.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&ap)
                    .await
                    .unwrap()
            }
        };
        // Tenant a's context: raw queries without any tenant filter see only a's rows.
        rls::scoped(a.scope, async {
            assert_eq!(raw("SELECT COUNT(*) FROM tenants_tenant").await, 1);
            assert_eq!(raw("SELECT COUNT(*) FROM tenants_group").await, 1);
            assert_eq!(raw("SELECT COUNT(*) FROM tenants_groupemail").await, 3);
            assert_eq!(raw("SELECT COUNT(*) FROM logs_emaillog").await, 3);
            assert_eq!(raw("SELECT COUNT(*) FROM recalliq_suppression").await, 1);
            assert_eq!(raw("SELECT COUNT(*) FROM recalliq_emailattempt").await, 3);
            let n: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM logs_emaillog WHERE batch_id = $1")
                    .bind(b.batch_id)
                    .fetch_one(&ap)
                    .await
                    .unwrap();
            assert_eq!(n, 0, "b's logs by id: nothing");
            // A store call handed the wrong scope (a bug) finds nothing either.
            let err = app.get_group(b.scope, b.group_id).await;
            assert!(err.is_err(), "b's group is invisible in a's context");
            // Writing a row for b is refused by the policy's check.
            let ins = sqlx::query("INSERT INTO tenants_group (tenant_id, name) VALUES ($1, 'x')")
                .bind(b.tenant_id)
                .execute(&ap)
                .await;
            assert!(ins.is_err(), "insert into another tenant refused");
            let upd = sqlx::query("UPDATE logs_emaillog SET status = 'failed'")
                .execute(&ap)
                .await
                .unwrap();
            assert_eq!(
                upd.rows_affected(),
                3,
                "an unfiltered update touches a's rows only"
            );
        })
        .await;
        // No context at all: nothing.
        rls::nothing(async {
            assert_eq!(raw("SELECT COUNT(*) FROM tenants_groupemail").await, 0);
            assert_eq!(raw("SELECT COUNT(*) FROM batches_batch").await, 0);
        })
        .await;
        // Super admin work: the explicit bypass sees everything.
        rls::bypass(&all, async {
            assert_eq!(raw("SELECT COUNT(*) FROM tenants_groupemail").await, 5);
            assert_eq!(raw("SELECT COUNT(*) FROM logs_emaillog").await, 5);
            assert_eq!(raw("SELECT COUNT(*) FROM recalliq_emailattempt").await, 5);
            let failed: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM logs_emaillog WHERE status = 'failed'")
                    .fetch_one(&ap)
                    .await
                    .unwrap();
            assert_eq!(failed, 3, "b's rows were not touched by a's update");
        })
        .await;
        app.close().await;
        // Turning it off again restores plain access.
        let off = owner.set_row_level_security(&all, false).await.unwrap();
        assert!(!off.enabled);
        assert!(!owner.row_level_security().await.unwrap());
        owner.close().await;
    }))
    .await;
    db.drop_db().await;
    if let Ok(mut admin) =
        sqlx::PgConnection::connect(&format!("{}/postgres", crate::support::pg_server_url())).await
    {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}")))
            .execute(&mut admin)
            .await;
    }
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

fn test_key(b: u8) -> KeySpec {
    KeySpec::Key {
        key: [b; 32],
        origin: "test".into(),
    }
}

/// A backup taken while the engine sends is a consistent snapshot: restored, every batch's
/// sent_count equals its sent rows, and row counts match the manifest.
async fn backup_while_sending(url: String, restore_url: String) {
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    // Slow enough (about 50 messages/s) that the backup lands mid-run on a loaded machine.
    let sink = SmtpSink::start(SinkConfig {
        reply_delay: Duration::from_millis(10),
        ..SinkConfig::default()
    });
    let o = populate(&store, "live.test", 300).await;
    let mut server = SmtpServer::new("127.0.0.1", sink.port(), Security::None);
    server.from = Some("news@live.test".into());
    server.connections = 2;
    store
        .set_smtp_settings(o.scope, &SmtpSettings::Smtp(server))
        .await
        .unwrap();
    store.start_batch(o.scope, o.batch_id).await.unwrap();
    let engine = Engine::new(
        store.clone(),
        EngineConfig {
            chunk: 10,
            poll: Duration::from_millis(20),
            flush_interval: Duration::from_millis(10),
            ..EngineConfig::default()
        },
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let running = tokio::spawn(async move { engine.run(stop_rx, true).await });
    // Back up in the middle of the run.
    let sent_so_far = || async {
        count(
            &store,
            "SELECT COUNT(*) FROM logs_emaillog WHERE status = 'sent'",
        )
        .await
    };
    let t0 = std::time::Instant::now();
    while sent_so_far().await < 20 && t0.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.riqbak");
    let m = backup::create(&store, &url, &file, &test_key(3))
        .await
        .unwrap();
    let sent_at_backup = count(
        &store,
        "SELECT COUNT(*) FROM logs_emaillog WHERE status = 'sent'",
    )
    .await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(60), running).await;
    assert!(
        sent_at_backup < 300,
        "the backup was taken while the batch was still sending ({sent_at_backup} sent)"
    );
    assert_eq!(m.tables["logs_emaillog"], 300);
    assert_eq!(m.schema_version, recalliq::db::LATEST_VERSION);

    // Restore into an empty database and check consistency there.
    let opened = backup::open(&file, |_| Ok(test_key(3))).await.unwrap();
    backup::restore(&opened, &restore_url, false).await.unwrap();
    let restored = Store::connect(&restore_url).await.unwrap();
    let counts = backup::counts_at(&restore_url).await.unwrap();
    assert!(backup::compare(&m.tables, &counts).is_empty());
    let sent_rows = count(
        &restored,
        "SELECT COUNT(*) FROM logs_emaillog WHERE status = 'sent'",
    )
    .await;
    let sent_count = count(
        &restored,
        &format!(
            "SELECT CAST(sent_count AS BIGINT) FROM batches_batch WHERE id = {}",
            o.batch_id
        ),
    )
    .await;
    assert_eq!(
        sent_rows, sent_count,
        "counters and rows from the same instant"
    );
    assert!(
        sent_rows > 0 && sent_rows < 300,
        "mid-run snapshot: {sent_rows}"
    );
    // The restored database works: the batch can be read through the store.
    let batch = restored.get_batch(o.scope, o.batch_id).await.unwrap();
    assert_eq!(batch.name, "Spring");
    restored.close().await;
    // Refusing a non-empty target, --force and `verify` are covered through the CLI
    // (`cli_backup_verify_restore_*`); on SQLite (cheap) they run here too.
    if restore_url.starts_with("sqlite:") {
        let err = backup::restore(&opened, &restore_url, false)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("add --force"), "{err}");
        backup::restore(&opened, &restore_url, true).await.unwrap();
        let v = backup::verify(&file, |_| Ok(test_key(3)), Some(&url))
            .await
            .unwrap();
        assert!(v.mismatches.is_empty(), "{:?}", v.mismatches);
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_a_batch_is_sending_sqlite() {
    let db = SqliteDb::create();
    let target = format!("sqlite://{}", db.dir.path().join("restored.db").display());
    backup_while_sending(db.url.clone(), target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_a_batch_is_sending_postgres() {
    let Some(src) = PgDb::create().await else {
        return;
    };
    let Some(dst) = PgDb::create().await else {
        return;
    };
    let r = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(backup_while_sending(
        src.url.clone(),
        dst.url.clone(),
    )))
    .await;
    src.drop_db().await;
    dst.drop_db().await;
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
}

/// The CLI: backup, verify, restore, refusals with clear messages, on one backend. The
/// checks that do not depend on the backend (keys, damage) run with `full` only.
fn cli_round_trip(env: &Env, restore_to: &str, full: bool) {
    env.create_tenant("Acme", "acme.test").ok();
    env.run(
        &["group", "create", "--tenant", "acme.test", "--name", "VIP"],
        None,
    )
    .ok();
    let file = env.dir.path().join("nightly.riqbak");
    let f = file.to_str().unwrap();
    let out = env.run(&["backup", "--to", f], None);
    out.ok();
    assert!(out.stdout.contains("backup written to"), "{}", out.stdout);
    // The key file was created 0600 beside the config, separate from secret.key.
    let key = env.config_dir().join("backup.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let v = env.run(&["backup", "verify", f], None);
    v.ok();
    assert!(v.stdout.contains("backup verified"), "{}", v.stdout);

    // Restore into an empty database; a second time it is not empty any more.
    env.run(&["restore", "--from", f, "--to", restore_to], None)
        .ok();
    env.run(&["restore", "--from", f, "--to", restore_to], None)
        .fails_with(1, "is not empty");
    env.run(
        &["restore", "--from", f, "--to", restore_to, "--force"],
        None,
    )
    .ok();
    let restored = Env::with_url(restore_to);
    let t = restored.json(&["tenant", "show", "acme.test", "--json"]);
    assert_eq!(t["domain"], "acme.test");
    if !full {
        return;
    }

    // A wrong key, a tampered file and a truncated file are refused, each saying so.
    let cmd_key = env.dir.path().join("other.key").display().to_string();
    std::fs::write(
        &cmd_key,
        format!("{}\n", recalliq::secrets::SecretKey::generate_base64()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cmd_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    env.run(&["backup", "verify", f, "--key-file", &cmd_key], None)
        .fails_with(1, "wrong key for this backup");
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    let tampered = env.file("tampered.riqbak", &bytes);
    env.run(&["backup", "verify", &tampered], None)
        .fails_with(1, "altered");
    let bytes = std::fs::read(&file).unwrap();
    let truncated = env.file("truncated.riqbak", &bytes[..bytes.len() - 20]);
    env.run(
        &[
            "restore", "--from", &truncated, "--to", restore_to, "--force",
        ],
        None,
    )
    .fails_with(1, "truncated");
    let junk = env.file("junk.riqbak", b"hello");
    env.run(&["backup", "verify", &junk], None)
        .fails_with(1, "not a recalliq backup");

    // A passphrase backup needs the passphrase back.
    let pf = env.dir.path().join("pass.riqbak");
    let pfs = pf.to_str().unwrap();
    let pass = [("RECALLIQ_BACKUP_PASSPHRASE", "correct horse battery staple")];
    env.run_env(&["backup", "--to", pfs], None, &pass).ok();
    env.run_env(&["backup", "verify", pfs], None, &pass).ok();
    env.run(&["backup", "verify", pfs], None)
        .fails_with(1, "protected by a passphrase");
    env.run_env(
        &["backup", "verify", pfs],
        None,
        &[("RECALLIQ_BACKUP_PASSPHRASE", "wrong horse battery staple")],
    )
    .fails_with(1, "wrong key for this backup");
}

#[test]
fn cli_backup_verify_restore_sqlite() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let target = format!("sqlite://{}", dir.path().join("restored.db").display());
    cli_round_trip(&env, &target, true);
    // The SMTP key is never accepted as the backup key.
    let smtp = env.config_dir().join("secret.key");
    std::fs::write(
        &smtp,
        format!("{}\n", recalliq::secrets::SecretKey::generate_base64()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&smtp, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let f = env.dir.path().join("x.riqbak");
    env.run(
        &[
            "backup",
            "--to",
            f.to_str().unwrap(),
            "--key-file",
            smtp.to_str().unwrap(),
        ],
        None,
    )
    .fails_with(1, "is the SMTP password key");
    // A Postgres URL for a SQLite backup is refused, naming the right kind.
    env.run(
        &[
            "restore",
            "--from",
            env.dir.path().join("nightly.riqbak").to_str().unwrap(),
            "--to",
            "postgres://root@127.0.0.1:5432/nowhere",
        ],
        None,
    )
    .fails_with(1, "backup of a sqlite database");
}

#[test]
fn cli_backup_verify_restore_postgres() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(src) = rt.block_on(PgDb::create()) else {
        return;
    };
    let Some(dst) = rt.block_on(PgDb::create()) else {
        return;
    };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let env = Env::with_url(&src.url);
        env.run(&["migrate"], None).ok();
        cli_round_trip(&env, &dst.url, false);
        // Without pg_dump on PATH the message names the missing tool.
        let f = env.dir.path().join("nopg.riqbak");
        env.run_env(
            &["backup", "--to", f.to_str().unwrap()],
            None,
            &[("PATH", "")],
        )
        .fails_with(2, "pg_dump was not found");
    }));
    rt.block_on(src.drop_db());
    rt.block_on(dst.drop_db());
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
}

#[test]
fn cli_clean_logs_and_purge() {
    crate::support::cli::on_both_backends(|env| {
        env.create_tenant("Acme", "acme.test").ok();
        env.run(
            &[
                "tenant",
                "retention",
                "acme.test",
                "--email-logs-days",
                "45",
            ],
            None,
        )
        .ok();
        let r = env.json(&["tenant", "retention", "acme.test", "--json"]);
        assert_eq!(r["email_logs_days"], 45);
        assert_eq!(r["batch_logs_days"], 30);
        let out = env.run(&["maintenance", "clean-logs", "--dry-run"], None);
        out.ok();
        assert!(
            out.stdout.contains("dry run: 0 email logs"),
            "{}",
            out.stdout
        );
        let j = env.json(&["maintenance", "clean-logs", "--json"]);
        assert_eq!(j[0]["email_logs_days"], 45);
        env.run(
            &["maintenance", "clean-logs", "--email-logs-days", "0"],
            None,
        )
        .fails_with(1, "between 1 and 36500");
        // Purge: a wrong typed confirmation leaves the tenant; the right one removes it.
        env.run(&["tenant", "purge", "acme.test"], Some("acme.tes\n"))
            .fails_with(1, "not confirmed");
        env.run(&["tenant", "show", "acme.test"], None).ok();
        let out = env.run(&["tenant", "purge", "acme.test"], Some("acme.test\n"));
        out.ok();
        assert!(
            out.stdout.contains("purged tenant acme.test"),
            "{}",
            out.stdout
        );
        env.run(&["tenant", "show", "acme.test"], None)
            .fails_with(1, "not found");
        env.run(
            &["tenant", "create", "--name", "B", "--domain", "b.test"],
            None,
        )
        .ok();
        env.run(&["tenant", "purge", "b.test", "--confirm", "b.test"], None)
            .ok();
    });
}
