//! Reliability of the sending engine (issue #10 items 1, 2, 4; issue #6 items 6, 7): SMTP
//! faults, database faults, racing workers, scheduled starts, LISTEN/NOTIFY, the per-hour
//! limit. Real SQLite files, the real Postgres, the test SMTP server over TCP.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use recalliq::db::{
    Actor, DbResult, Security, SmtpServer, SmtpSettings, Store, TenantScope, TenantUpdate,
};
use recalliq::domain::BatchStatus;
use recalliq::engine::{Engine, EngineConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::engine::{Fixture, exec, fast_config, fixture, logs, rcpt_counts, run_once};
use crate::store_test;
use crate::support::proxy::TcpProxy;
use crate::support::smtp::{Received, SinkConfig, SmtpSink};

/// An engine running in the background until the sender is dropped or set.
fn spawn_engine(
    store: &Store,
    config: EngineConfig,
    once: bool,
) -> (watch::Sender<bool>, JoinHandle<DbResult<()>>) {
    let engine = Engine::new(store.clone(), config);
    let (tx, rx) = watch::channel(false);
    let h = tokio::spawn(async move { engine.run(rx, once).await });
    (tx, h)
}

async fn finish(h: JoinHandle<DbResult<()>>, within: Duration) {
    tokio::time::timeout(within, h)
        .await
        .expect("engine finished in time")
        .expect("engine task")
        .expect("engine result");
}

async fn until<F: FnMut() -> bool>(what: &str, within: Duration, mut f: F) {
    let end = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_messages(sinks: &[&SmtpSink], n: usize, within: Duration) {
    until("messages at the sink", within, || {
        sinks.iter().map(|s| s.messages().len()).sum::<usize>() >= n
    })
    .await;
}

async fn set_server(store: &Store, scope: TenantScope, f: impl FnOnce(&mut SmtpServer)) {
    let Some(SmtpSettings::Smtp(mut server)) = store.smtp_settings(scope).await.unwrap() else {
        panic!("fixture has SMTP settings");
    };
    f(&mut server);
    store
        .set_smtp_settings(scope, &SmtpSettings::Smtp(server))
        .await
        .unwrap();
}

/// Per-recipient count of messages accepted by all `sinks` together, plus `earlier`
/// messages of servers already stopped.
fn wire_counts(sinks: &[&SmtpSink], earlier: &[Received]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for s in sinks {
        for (k, v) in rcpt_counts(s) {
            *m.entry(k).or_insert(0) += v;
        }
    }
    for msg in earlier {
        for r in &msg.rcpt_to {
            *m.entry(r.to_lowercase()).or_insert(0) += 1;
        }
    }
    m
}

/// Every one of the `n` fixture recipients is logged `sent` exactly once, nothing is left
/// pending or sending, the counts and the quota agree. Returns the duplicates on the wire.
async fn all_sent_once(store: &Store, f: &Fixture, n: usize, sinks: &[&SmtpSink]) -> usize {
    all_sent_once_with(store, f, n, sinks, &[]).await
}

async fn all_sent_once_with(
    store: &Store,
    f: &Fixture,
    n: usize,
    sinks: &[&SmtpSink],
    earlier: &[Received],
) -> usize {
    let rows = logs(store, f).await;
    assert_eq!(rows.len(), n, "one log row per recipient");
    assert!(
        rows.iter().all(|r| r.status == "sent"),
        "{:?}",
        rows.iter()
            .filter(|r| r.status != "sent")
            .map(|r| (&r.recipient_email, &r.status, &r.error_message))
            .collect::<Vec<_>>()
    );
    let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
    assert_eq!((b.status.as_str(), b.sent_count), ("completed", n as i32));
    assert_eq!(
        store
            .get_tenant(f.scope)
            .await
            .unwrap()
            .emails_sent_this_month,
        n as i32,
        "quota counts each recipient once"
    );
    let wire = wire_counts(sinks, earlier);
    assert_eq!(wire.len(), n, "every recipient reached the server");
    wire.values().map(|c| c - 1).sum()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// --- SMTP faults (issue #10 item 1) ------------------------------------------------------

store_test!(smtp_down_at_start_pauses_then_resumes, |store| async move {
    let port = free_port();
    let f = fixture(&store, "acme.test", port, 10, 2).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    let cfg = EngineConfig {
        // Long enough that no row is tried twice before the batch pauses.
        backoff: vec![Duration::from_secs(30); 3],
        max_consecutive_failures: 4,
        ..fast_config()
    };
    run_once(&store, cfg.clone()).await;
    let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
    assert_eq!(b.status, "paused");
    let reason = b.status_reason.unwrap_or_default();
    assert!(reason.contains("consecutive failures"), "{reason}");
    assert!(reason.contains("cannot connect"), "{reason}");
    let c = store.queue_counts(f.scope, f.batch_id).await.unwrap();
    assert_eq!((c.pending, c.sending, c.failed, c.sent), (10, 0, 0, 0));
    // Nothing counted against the quota for messages that never left.
    assert_eq!(
        store
            .get_tenant(f.scope)
            .await
            .unwrap()
            .emails_sent_this_month,
        0
    );

    // The server comes up and the operator resumes (the test does not wait out the 30 s
    // backoff of the rows tried once).
    let sink = SmtpSink::start(SinkConfig {
        port,
        ..SinkConfig::default()
    });
    exec(&store, "UPDATE logs_emaillog SET next_attempt_at = NULL").await;
    store.resume_batch(f.scope, f.batch_id).await.unwrap();
    run_once(&store, cfg).await;
    assert_eq!(all_sent_once(&store, &f, 10, &[&sink]).await, 0);
});

store_test!(smtp_down_mid_batch_and_back, |store| async move {
    let first = SmtpSink::start(SinkConfig {
        reply_delay: Duration::from_millis(2),
        ..SinkConfig::default()
    });
    let port = first.port();
    let f = fixture(&store, "acme.test", port, 60, 2).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    let cfg = EngineConfig {
        backoff: [100, 200, 400, 800, 1600, 3200]
            .map(Duration::from_millis)
            .to_vec(),
        max_consecutive_failures: 10_000,
        ..fast_config()
    };
    let (_stop, h) = spawn_engine(&store, cfg, true);
    wait_messages(&[&first], 15, Duration::from_secs(20)).await;
    let earlier = first.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = SmtpSink::start(SinkConfig {
        port,
        ..SinkConfig::default()
    });
    finish(h, Duration::from_secs(60)).await;
    let dups = all_sent_once_with(&store, &f, 60, &[&second], &earlier).await;
    // Only a message whose reply was lost when the server went away can go out twice: at
    // most one per connection.
    assert!(dups <= 2, "{dups} duplicates");
});

store_test!(hanging_server_times_out_and_retries, |store| async move {
    let sink = SmtpSink::start(SinkConfig {
        hang_first_data: 2,
        ..SinkConfig::default()
    });
    let f = fixture(&store, "acme.test", sink.port(), 6, 2).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    let t0 = Instant::now();
    run_once(
        &store,
        EngineConfig {
            smtp_timeout: Duration::from_millis(500),
            ..fast_config()
        },
    )
    .await;
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(all_sent_once(&store, &f, 6, &[&sink]).await, 0);
    let retried: Vec<_> = logs(&store, &f)
        .await
        .into_iter()
        .filter(|r| r.attempts == 2)
        .collect();
    assert_eq!(retried.len(), 2, "the two hung sends were tried again");
});

store_test!(
    reply_lost_after_data_is_a_counted_duplicate,
    |store| async move {
        // The server queued the message but the connection dropped before its reply: the engine
        // cannot know, retries, and the recipient gets it twice. Counted and bounded.
        let sink = SmtpSink::start(SinkConfig {
            lose_reply_first_data: 3,
            ..SinkConfig::default()
        });
        let f = fixture(&store, "acme.test", sink.port(), 10, 1).await;
        store.start_batch(f.scope, f.batch_id).await.unwrap();
        run_once(&store, fast_config()).await;
        assert_eq!(all_sent_once(&store, &f, 10, &[&sink]).await, 3);
    }
);

store_test!(tls_failures_pause_with_the_reason, |store| async move {
    let sink = SmtpSink::start(SinkConfig::default());
    let f = fixture(&store, "acme.test", sink.port(), 5, 2).await;
    // Implicit TLS against a plain server: the handshake fails.
    set_server(&store, f.scope, |s| s.security = Security::Tls).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    run_once(&store, fast_config()).await;
    let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
    assert_eq!(b.status, "paused");
    let reason = b.status_reason.unwrap_or_default();
    assert!(reason.contains("TLS"), "{reason}");
    let c = store.queue_counts(f.scope, f.batch_id).await.unwrap();
    assert_eq!((c.pending, c.sending, c.failed), (5, 0, 0));
    assert!(
        logs(&store, &f).await.iter().all(|r| r.attempts == 0),
        "a configuration error costs no attempt"
    );
    // STARTTLS required, not offered.
    set_server(&store, f.scope, |s| s.security = Security::Starttls).await;
    store.resume_batch(f.scope, f.batch_id).await.unwrap();
    run_once(&store, fast_config()).await;
    let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
    assert_eq!(b.status, "paused");
    assert!(
        b.status_reason.unwrap_or_default().contains("STARTTLS"),
        "reason names STARTTLS"
    );
    assert!(sink.messages().is_empty());
    // Fixed: everything goes out once.
    set_server(&store, f.scope, |s| s.security = Security::None).await;
    store.resume_batch(f.scope, f.batch_id).await.unwrap();
    run_once(&store, fast_config()).await;
    assert_eq!(all_sent_once(&store, &f, 5, &[&sink]).await, 0);
});

store_test!(auth_failure_pauses_with_the_reason, |store| async move {
    let sink = SmtpSink::start(SinkConfig {
        users: vec![("mailer".into(), "right".into())],
        require_auth: true,
        ..SinkConfig::default()
    });
    let f = fixture(&store, "acme.test", sink.port(), 5, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let key = recalliq::secrets::SecretKey::load(dir.path()).unwrap();
    let enc = |pw: &str| {
        key.encrypt(&recalliq::secrets::Secret::new(pw), f.tenant_id)
            .unwrap()
    };
    let wrong = enc("wrong");
    set_server(&store, f.scope, |s| {
        s.username = Some("mailer".into());
        s.password_enc = Some(wrong);
    })
    .await;
    let cfg = EngineConfig {
        config_dir: Some(dir.path().to_path_buf()),
        ..fast_config()
    };
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    run_once(&store, cfg.clone()).await;
    let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
    assert_eq!(b.status, "paused");
    let reason = b.status_reason.unwrap_or_default();
    assert!(
        reason.contains("AUTH") && reason.contains("535"),
        "{reason}"
    );
    assert!(!reason.contains("wrong"), "no password in the reason");
    let c = store.queue_counts(f.scope, f.batch_id).await.unwrap();
    assert_eq!((c.pending, c.sending, c.failed), (5, 0, 0));
    let right = enc("right");
    set_server(&store, f.scope, |s| s.password_enc = Some(right)).await;
    store.resume_batch(f.scope, f.batch_id).await.unwrap();
    run_once(&store, cfg).await;
    assert_eq!(all_sent_once(&store, &f, 5, &[&sink]).await, 0);
});

// --- Database faults (issue #10 item 2) --------------------------------------------------

store_test!(failing_write_pauses_the_batch, |store| async move {
    let sink = SmtpSink::start(SinkConfig {
        reply_delay: Duration::from_millis(2),
        ..SinkConfig::default()
    });
    let f = fixture(&store, "acme.test", sink.port(), 40, 2).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    // Writes of sent rows fail, as on a full disk.
    if store.sqlite_pool().is_some() {
        exec(
            &store,
            "CREATE TRIGGER recalliq_test_full BEFORE UPDATE OF status ON logs_emaillog
             WHEN NEW.status = 'sent' BEGIN SELECT RAISE(ABORT, 'disk full (simulated)'); END",
        )
        .await;
    } else {
        exec(
            &store,
            "CREATE FUNCTION recalliq_test_full() RETURNS trigger AS $$
             BEGIN RAISE EXCEPTION 'disk full (simulated)' USING ERRCODE = 'disk_full'; END;
             $$ LANGUAGE plpgsql",
        )
        .await;
        exec(
            &store,
            "CREATE TRIGGER recalliq_test_full BEFORE UPDATE ON logs_emaillog FOR EACH ROW
             WHEN (NEW.status = 'sent') EXECUTE FUNCTION recalliq_test_full()",
        )
        .await;
    }
    let (_stop, h) = spawn_engine(&store, fast_config(), true);
    let mut reason = String::new();
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
        if b.status == "paused" {
            reason = b.status_reason.unwrap_or_default();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reason.contains("cannot record results"), "{reason}");
    assert!(reason.contains("disk full"), "{reason}");
    // Sends that had started before the pause may still finish.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent_while_failing = sink.messages().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.messages().len(),
        sent_while_failing,
        "no new sends while results cannot be recorded"
    );
    // The disk has room again: the results held in memory are written, nothing is lost.
    if store.sqlite_pool().is_some() {
        exec(&store, "DROP TRIGGER recalliq_test_full").await;
    } else {
        exec(&store, "DROP TRIGGER recalliq_test_full ON logs_emaillog").await;
    }
    finish(h, Duration::from_secs(30)).await;
    let c = store.queue_counts(f.scope, f.batch_id).await.unwrap();
    assert_eq!(c.sending, 0);
    assert_eq!(
        c.sent as usize,
        sink.messages().len(),
        "every send recorded"
    );
    store.resume_batch(f.scope, f.batch_id).await.unwrap();
    run_once(&store, fast_config()).await;
    assert_eq!(all_sent_once(&store, &f, 40, &[&sink]).await, 0);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_mid_batch() {
    let Some(db) = crate::support::PgDb::create().await else {
        return;
    };
    let server = crate::support::pg_server_url();
    let host_port = server.rsplit('@').next().unwrap().to_string();
    let proxy = TcpProxy::start(&host_port);
    let url = db
        .url
        .replace(&host_port, &format!("127.0.0.1:{}", proxy.port()));
    let store = Store::connect(&url)
        .await
        .expect("connect through the proxy");
    store.migrate().await.unwrap();
    let sink = SmtpSink::start(SinkConfig {
        reply_delay: Duration::from_millis(3),
        ..SinkConfig::default()
    });
    let f = fixture(&store, "acme.test", sink.port(), 150, 2).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    // A claim whose commit reply is lost in the cut comes back after this lease.
    let cfg = EngineConfig {
        lease: Duration::from_secs(3),
        ..fast_config()
    };
    let (_stop, h) = spawn_engine(&store, cfg, true);
    wait_messages(&[&sink], 30, Duration::from_secs(20)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = sink.messages().len();
    proxy.restore();
    finish(h, Duration::from_secs(60)).await;
    assert!(during < 150, "the cut happened mid-batch");
    let dups = all_sent_once(&store, &f, 150, &[&sink]).await;
    assert_eq!(
        dups, 0,
        "results held in memory are written after the reconnect"
    );
    store.close().await;
    db.drop_db().await;
}

/// Helper process for `sqlite_locked_by_another_process`: holds a write lock on the
/// database named by RECALLIQ_TEST_LOCK_DB for RECALLIQ_TEST_LOCK_MS. Run by that test
/// through the test binary itself; does nothing otherwise.
#[test]
#[ignore = "helper process of sqlite_locked_by_another_process"]
fn sqlite_lock_holder() {
    let (Ok(path), Ok(ms)) = (
        std::env::var("RECALLIQ_TEST_LOCK_DB"),
        std::env::var("RECALLIQ_TEST_LOCK_MS"),
    ) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{path}"))
            .await
            .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("UPDATE tenants_tenant SET name = name")
            .execute(&mut c)
            .await
            .unwrap();
        println!("LOCKED");
        use std::io::Write;
        std::io::stdout().flush().unwrap();
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
        sqlx::query("COMMIT").execute(&mut c).await.unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_by_another_process() {
    let db = crate::support::SqliteDb::create();
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let sink = SmtpSink::start(SinkConfig {
        reply_delay: Duration::from_millis(2),
        ..SinkConfig::default()
    });
    let f = fixture(&store, "acme.test", sink.port(), 80, 2).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    let (_stop, h) = spawn_engine(&store, fast_config(), true);
    wait_messages(&[&sink], 10, Duration::from_secs(20)).await;
    let path = db.dir.path().join("test.db");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "reliability::sqlite_lock_holder",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RECALLIQ_TEST_LOCK_DB", &path)
        .env("RECALLIQ_TEST_LOCK_MS", "1500")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the other process holds the lock.
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert!(n > 0, "lock holder ended without locking");
        if line.contains("LOCKED") {
            break;
        }
    }
    // A writer that does not wait gets the clear, retryable error.
    let impatient = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .busy_timeout(Duration::ZERO),
        )
        .await
        .unwrap();
    let err = recalliq::db::DbError::from(
        sqlx::query("UPDATE tenants_tenant SET name = name")
            .execute(&impatient)
            .await
            .expect_err("the database is locked"),
    );
    assert!(err.is_transient(), "{err}");
    assert!(
        err.describe().contains("locked by another process"),
        "{}",
        err.describe()
    );
    impatient.close().await;
    // The engine waits for the lock and goes on.
    assert!(child.wait().unwrap().success());
    finish(h, Duration::from_secs(60)).await;
    assert_eq!(all_sent_once(&store, &f, 80, &[&sink]).await, 0);
    store.close().await;
}

// --- Races (issue #10 item 4) ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_workers_on_postgres_never_send_twice_or_exceed_the_quota() {
    for workers in [2usize, 3] {
        let Some(db) = crate::support::PgDb::create().await else {
            return;
        };
        let store = Store::connect(&db.url).await.unwrap();
        store.migrate().await.unwrap();
        let sink = SmtpSink::start(SinkConfig::default());
        let f = fixture(&store, "acme.test", sink.port(), 150, 2).await;
        let all = Actor::system().all_tenants().unwrap();
        store
            .update_tenant(
                &all,
                f.tenant_id,
                &TenantUpdate {
                    monthly_email_limit: Some(100),
                    ..TenantUpdate::default()
                },
            )
            .await
            .unwrap();
        store.start_batch(f.scope, f.batch_id).await.unwrap();
        // Each worker with its own connection pool, as separate processes would have.
        let mut handles = Vec::new();
        for w in 0..workers {
            let own = Store::connect(&db.url).await.unwrap();
            let cfg = EngineConfig {
                worker_id: format!("w{w}"),
                chunk: 7,
                ..fast_config()
            };
            handles.push(spawn_engine(&own, cfg, true));
        }
        for (_stop, h) in handles {
            finish(h, Duration::from_secs(60)).await;
        }
        let wire = rcpt_counts(&sink);
        assert!(
            wire.values().all(|n| *n == 1),
            "{workers} workers: {wire:?}"
        );
        assert_eq!(wire.len(), 100, "{workers} workers: exactly the quota");
        let t = store.get_tenant(f.scope).await.unwrap();
        assert_eq!(t.emails_sent_this_month, 100);
        let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
        assert_eq!(b.status, "paused");
        assert_eq!(b.status_reason.as_deref(), Some("monthly quota exhausted"));
        let c = store.queue_counts(f.scope, f.batch_id).await.unwrap();
        assert_eq!((c.sent, c.pending, c.sending), (100, 50, 0));
        store.close().await;
        db.drop_db().await;
    }
}

// --- Scheduling, wake-ups, limits (issue #6 items 4, 6) ----------------------------------

store_test!(
    scheduled_batch_starts_within_a_second_across_a_restart,
    |store| async move {
        let sink = SmtpSink::start(SinkConfig::default());
        let f = fixture(&store, "acme.test", sink.port(), 3, 1).await;
        let at = recalliq::db::now() + chrono::Duration::milliseconds(1500);
        store
            .transition_batch(f.scope, f.batch_id, BatchStatus::Scheduled, None)
            .await
            .unwrap();
        store
            .update_batch(f.scope, f.batch_id, None, None, Some(at))
            .await
            .unwrap();
        // The product's poll interval, not the tests' fast one.
        let cfg = EngineConfig {
            poll: EngineConfig::default().poll,
            ..fast_config()
        };
        let (stop, h) = spawn_engine(&store, cfg.clone(), false);
        tokio::time::sleep(Duration::from_millis(400)).await;
        // Restart before the batch is due: the schedule lives in the database.
        stop.send(true).unwrap();
        finish(h, Duration::from_secs(10)).await;
        assert!(sink.messages().is_empty(), "not before its time");
        let (stop, h) = spawn_engine(&store, cfg, false);
        wait_messages(&[&sink], 1, Duration::from_secs(10)).await;
        let first = chrono::Utc::now().naive_utc();
        let late = (first - at).num_milliseconds();
        assert!(
            (0..=1000).contains(&late),
            "first message {late} ms after its time"
        );
        wait_messages(&[&sink], 3, Duration::from_secs(10)).await;
        stop.send(true).unwrap();
        finish(h, Duration::from_secs(10)).await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_notify_wakes_the_engine_before_its_poll() {
    crate::support::with_postgres(|store| async move {
        let sink = SmtpSink::start(SinkConfig::default());
        let f = fixture(&store, "acme.test", sink.port(), 2, 1).await;
        let cfg = EngineConfig {
            poll: Duration::from_secs(30),
            ..fast_config()
        };
        let (stop, h) = spawn_engine(&store, cfg, false);
        // Let the engine reach its idle wait.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t0 = Instant::now();
        store.start_batch(f.scope, f.batch_id).await.unwrap();
        wait_messages(&[&sink], 2, Duration::from_secs(10)).await;
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "woken by NOTIFY, not the 30 s poll: {:?}",
            t0.elapsed()
        );
        stop.send(true).unwrap();
        finish(h, Duration::from_secs(10)).await;
    })
    .await;
}

store_test!(per_hour_limit_is_honoured, |store| async move {
    let sink = SmtpSink::start(SinkConfig::default());
    let f = fixture(&store, "acme.test", sink.port(), 8, 2).await;
    set_server(&store, f.scope, |s| s.rate_per_hour = Some(5)).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    let (stop, h) = spawn_engine(&store, fast_config(), false);
    wait_messages(&[&sink], 5, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(true).unwrap();
    finish(h, Duration::from_secs(10)).await;
    assert_eq!(sink.messages().len(), 5, "five per hour");
    let c = store.queue_counts(f.scope, f.batch_id).await.unwrap();
    assert_eq!((c.sent, c.pending, c.sending), (5, 3, 0));
    assert_eq!(
        store.get_batch(f.scope, f.batch_id).await.unwrap().status,
        "running",
        "waiting for the hour, not paused"
    );
    // An hour later.
    exec(
        &store,
        "UPDATE logs_emaillog SET sent_at = '2000-01-01 00:00:00' WHERE status = 'sent'",
    )
    .await;
    run_once(&store, fast_config()).await;
    assert_eq!(all_sent_once(&store, &f, 8, &[&sink]).await, 0);
});
