//! The sending engine against the real test SMTP server over TCP, on SQLite and Postgres.

use std::collections::HashMap;
use std::time::Duration;

use recalliq::db::{
    Actor, Claim, NewBatch, NewContact, NewTemplate, Page, Security, SmtpServer, SmtpSettings,
    Store, TenantScope, TenantUpdate,
};
use recalliq::domain::BatchStatus;
use recalliq::engine::{Engine, EngineConfig, EngineEvent};
use serde_json::json;
use tokio::sync::watch;

use crate::store_test;
use crate::support::smtp::{SinkConfig, SmtpSink};
use crate::support::tenant;

/// Runs raw SQL (no parameters) on whichever backend.
pub(crate) async fn exec(store: &Store, sql: &str) {
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

pub(crate) fn fast_config() -> EngineConfig {
    EngineConfig {
        chunk: 8,
        poll: Duration::from_millis(20),
        backoff: vec![Duration::from_millis(20), Duration::from_millis(40)],
        smtp_timeout: Duration::from_secs(5),
        flush_interval: Duration::from_millis(10),
        ..EngineConfig::default()
    }
}

pub(crate) struct Fixture {
    pub scope: TenantScope,
    pub tenant_id: i32,
    pub batch_id: i32,
}

/// A tenant sending through `port` with `n` contacts `user{i}@example.com` in one group,
/// and a draft batch to that group.
pub(crate) async fn fixture(
    store: &Store,
    domain: &str,
    port: u16,
    n: usize,
    connections: u32,
) -> Fixture {
    let (t, scope) = tenant(store, domain).await;
    store
        .add_tenant_email(scope, &format!("news@{domain}"), Some("News"))
        .await
        .unwrap();
    let mut server = SmtpServer::new("127.0.0.1", port, Security::None);
    server.from = Some(format!("news@{domain}"));
    server.connections = connections;
    store
        .set_smtp_settings(scope, &SmtpSettings::Smtp(server))
        .await
        .unwrap();
    let template = store
        .create_template(
            scope,
            &NewTemplate {
                name: "Hello".into(),
                subject: "Hi {{ name }} ({{ campaign }})".into(),
                body_html: None,
                body_text: Some("Hello {{ name }}, plan {{ plan }}.".into()),
                variables: None,
            },
        )
        .await
        .unwrap();
    let g = store.create_group(scope, "All", None).await.unwrap();
    for i in 0..n {
        store
            .add_contact(
                scope,
                g.id,
                &NewContact {
                    email: format!("user{i}@example.com"),
                    name: Some(format!("User {i}")),
                    variables: Some(json!({"plan": format!("P{i}")})),
                },
            )
            .await
            .unwrap();
    }
    let batch = store
        .create_batch(
            scope,
            &NewBatch {
                name: "Spring".into(),
                template_id: template.id,
                group_ids: vec![g.id],
                variables: Some(json!({"campaign": "spring"})),
                scheduled_at: None,
            },
        )
        .await
        .unwrap();
    Fixture {
        scope,
        tenant_id: t.id,
        batch_id: batch.id,
    }
}

pub(crate) async fn run_once(store: &Store, config: EngineConfig) {
    let engine = Engine::new(store.clone(), config);
    let (_tx, rx) = watch::channel(false);
    tokio::time::timeout(Duration::from_secs(60), engine.run(rx, true))
        .await
        .expect("engine finished in time")
        .unwrap();
}

pub(crate) async fn logs(store: &Store, f: &Fixture) -> Vec<recalliq::db::EmailLog> {
    store
        .list_email_logs(f.scope, f.batch_id, Page::first(10_000), None)
        .await
        .unwrap()
}

pub(crate) fn rcpt_counts(sink: &SmtpSink) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for msg in sink.messages() {
        for r in msg.rcpt_to {
            *m.entry(r.to_lowercase()).or_insert(0) += 1;
        }
    }
    m
}

store_test!(
    materialize_dedups_inactive_and_suppressed,
    |store| async move {
        let (_t, scope) = tenant(&store, "acme.test").await;
        let template = store
            .create_template(
                scope,
                &NewTemplate {
                    name: "T".into(),
                    subject: "S".into(),
                    body_html: None,
                    body_text: Some("B".into()),
                    variables: None,
                },
            )
            .await
            .unwrap();
        let g1 = store.create_group(scope, "G1", None).await.unwrap();
        let g2 = store.create_group(scope, "G2", None).await.unwrap();
        let g3 = store.create_group(scope, "Off", None).await.unwrap();
        let add = |g: i32, e: &'static str| {
            let store = store.clone();
            async move {
                store
                    .add_contact(
                        scope,
                        g,
                        &NewContact {
                            email: e.into(),
                            name: None,
                            variables: None,
                        },
                    )
                    .await
                    .unwrap()
            }
        };
        let a = add(g1.id, "ann@example.com").await;
        add(g2.id, "ann2@example.com").await;
        add(g1.id, "bob@example.com").await;
        let inactive = add(g1.id, "inactive@example.com").await;
        add(g3.id, "offgroup@example.com").await;
        add(g2.id, "supp@example.com").await;
        add(g2.id, "eve@example.com").await;
        // The same address in another case in another group (as the web app may store it).
        exec(
        &store,
        "UPDATE tenants_groupemail SET email = 'ANN@Example.COM' WHERE email = 'ann2@example.com'",
    )
    .await;
        exec(
            &store,
            &format!(
                "UPDATE tenants_groupemail SET is_active = FALSE WHERE id = {}",
                inactive.id
            ),
        )
        .await;
        exec(
            &store,
            &format!(
                "UPDATE tenants_group SET is_active = FALSE WHERE id = {}",
                g3.id
            ),
        )
        .await;
        store
            .suppress(scope, "SUPP@example.com", "unsubscribed", None, None)
            .await
            .unwrap();
        let batch = store
            .create_batch(
                scope,
                &NewBatch {
                    name: "B".into(),
                    template_id: template.id,
                    group_ids: vec![g1.id, g2.id, g3.id],
                    ..NewBatch::default()
                },
            )
            .await
            .unwrap();
        let (b, queued) = store.start_batch(scope, batch.id).await.unwrap();
        assert_eq!(b.status, "running");
        assert_eq!(queued, 3);
        let rows = store
            .list_email_logs(scope, batch.id, Page::first(100), None)
            .await
            .unwrap();
        let mut emails: Vec<String> = rows
            .iter()
            .map(|r| r.recipient_email.to_lowercase())
            .collect();
        emails.sort();
        assert_eq!(
            emails,
            ["ann@example.com", "bob@example.com", "eve@example.com"]
        );
        assert!(rows.iter().all(|r| r.status == "pending"));
        let ann = rows
            .iter()
            .find(|r| r.recipient_email.eq_ignore_ascii_case("ann@example.com"))
            .unwrap();
        assert_eq!(ann.recipient_email, a.email, "lowest contact id wins");
        // Idempotent.
        assert_eq!(store.materialize_batch(scope, batch.id).await.unwrap(), 0);
        let x = store
            .list_execution_logs(scope, batch.id, Page::first(100))
            .await
            .unwrap();
        assert!(x.iter().any(|l| l.action == "running"), "{x:?}");
        assert!(x.iter().any(|l| l.action == "materialized"), "{x:?}");
        // Starting twice is refused by the state machine.
        assert!(store.start_batch(scope, batch.id).await.is_err());
    }
);

store_test!(
    batch_sends_every_recipient_exactly_once,
    |store| async move {
        let sink = SmtpSink::start(SinkConfig::default());
        let f = fixture(&store, "acme.test", sink.port(), 30, 4).await;
        store.start_batch(f.scope, f.batch_id).await.unwrap();
        run_once(&store, fast_config()).await;
        let counts = rcpt_counts(&sink);
        assert_eq!(counts.len(), 30, "{counts:?}");
        assert!(counts.values().all(|n| *n == 1), "{counts:?}");
        let rows = logs(&store, &f).await;
        assert_eq!(rows.len(), 30);
        for r in &rows {
            assert_eq!(r.status, "sent", "{r:?}");
            assert!(r.sent_at.is_some());
            assert!(
                r.smtp_response.as_deref().unwrap_or("").starts_with("250"),
                "{r:?}"
            );
            assert!(r.message_id.is_some());
            assert_eq!(r.attempts, 1);
        }
        let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
        assert_eq!(b.status, "completed");
        assert_eq!((b.sent_count, b.failed_count), (30, 0));
        let t = store.get_tenant(f.scope).await.unwrap();
        assert_eq!(t.emails_sent_this_month, 30);
        // Rendered per recipient: contact and batch variables.
        let msg = sink
            .messages()
            .into_iter()
            .find(|m| m.rcpt_to.iter().any(|r| r == "user7@example.com"))
            .unwrap();
        assert_eq!(msg.header("Subject").as_deref(), Some("Hi User 7 (spring)"));
        assert!(msg.data.contains("plan P7"), "{}", msg.data);
        let x = store
            .list_execution_logs(f.scope, f.batch_id, Page::first(100))
            .await
            .unwrap();
        assert!(x.iter().any(|l| l.action == "completed"), "{x:?}");
    }
);

store_test!(rejected_and_deferred_recipients, |store| async move {
    let sink = SmtpSink::start(SinkConfig {
        reject: ["user1@example.com".to_string()].into_iter().collect(),
        defer_first: 1,
        ..SinkConfig::default()
    });
    let f = fixture(&store, "acme.test", sink.port(), 4, 2).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    run_once(&store, fast_config()).await;
    let rows = logs(&store, &f).await;
    let rejected = rows
        .iter()
        .find(|r| r.recipient_email == "user1@example.com")
        .unwrap();
    assert_eq!(rejected.status, "rejected", "{rejected:?}");
    assert!(
        rejected
            .smtp_response
            .as_deref()
            .unwrap_or("")
            .starts_with("550"),
        "{rejected:?}"
    );
    assert!(rejected.error_message.is_some());
    for r in rows
        .iter()
        .filter(|r| r.recipient_email != "user1@example.com")
    {
        assert_eq!(r.status, "sent", "{r:?}");
        assert_eq!(r.attempts, 2, "451 first, then sent: {r:?}");
    }
    let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
    assert_eq!(b.status, "completed");
    assert_eq!((b.sent_count, b.failed_count), (3, 1));
    // Quota counts only what was sent.
    assert_eq!(
        store
            .get_tenant(f.scope)
            .await
            .unwrap()
            .emails_sent_this_month,
        3
    );
    assert_eq!(rcpt_counts(&sink).len(), 3);
});

store_test!(dropped_connections_are_retried, |store| async move {
    let sink = SmtpSink::start(SinkConfig {
        drop_first_data: 2,
        ..SinkConfig::default()
    });
    let f = fixture(&store, "acme.test", sink.port(), 5, 1).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    run_once(&store, fast_config()).await;
    let rows = logs(&store, &f).await;
    assert!(rows.iter().all(|r| r.status == "sent"), "{rows:?}");
    assert_eq!(rows.iter().map(|r| r.attempts).sum::<i32>(), 7, "{rows:?}");
    let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
    assert_eq!((b.status.as_str(), b.sent_count), ("completed", 5));
});

store_test!(
    retries_run_out_then_fail_and_retry_failed_sends_them,
    |store| async move {
        let sink = SmtpSink::start(SinkConfig {
            defer_first: 3,
            ..SinkConfig::default()
        });
        let f = fixture(&store, "acme.test", sink.port(), 2, 1).await;
        store.start_batch(f.scope, f.batch_id).await.unwrap();
        run_once(&store, fast_config()).await;
        let rows = logs(&store, &f).await;
        for r in &rows {
            assert_eq!(r.status, "failed", "{r:?}");
            assert_eq!(r.attempts, 3);
            assert!(
                r.smtp_response.as_deref().unwrap_or("").starts_with("451"),
                "{r:?}"
            );
            assert!(
                r.error_message
                    .as_deref()
                    .unwrap_or("")
                    .contains("gave up after 3"),
                "{r:?}"
            );
        }
        let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
        assert_eq!((b.status.as_str(), b.failed_count), ("completed", 2));
        assert_eq!(
            store
                .get_tenant(f.scope)
                .await
                .unwrap()
                .emails_sent_this_month,
            0
        );
        let (b, n) = store.retry_failed(f.scope, f.batch_id).await.unwrap();
        assert_eq!((b.status.as_str(), n, b.failed_count), ("running", 2, 0));
        run_once(&store, fast_config()).await;
        let rows = logs(&store, &f).await;
        assert!(rows.iter().all(|r| r.status == "sent"), "{rows:?}");
        let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
        assert_eq!(
            (b.status.as_str(), b.sent_count, b.failed_count),
            ("completed", 2, 0)
        );
    }
);

store_test!(quota_is_never_exceeded_and_pauses, |store| async move {
    let sink = SmtpSink::start(SinkConfig::default());
    let f = fixture(&store, "acme.test", sink.port(), 12, 4).await;
    let all = Actor::system().all_tenants().unwrap();
    store
        .update_tenant(
            &all,
            f.tenant_id,
            &TenantUpdate {
                monthly_email_limit: Some(5),
                ..TenantUpdate::default()
            },
        )
        .await
        .unwrap();
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    run_once(&store, fast_config()).await;
    assert_eq!(sink.messages().len(), 5);
    let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
    assert_eq!(b.status, "paused");
    assert_eq!(b.status_reason.as_deref(), Some("monthly quota exhausted"));
    assert_eq!(b.sent_count, 5);
    assert_eq!(
        store
            .get_tenant(f.scope)
            .await
            .unwrap()
            .emails_sent_this_month,
        5
    );
    let c = store.queue_counts(f.scope, f.batch_id).await.unwrap();
    assert_eq!((c.sent, c.pending, c.sending), (5, 7, 0));
});

store_test!(consecutive_failures_auto_pause, |store| async move {
    let sink = SmtpSink::start(SinkConfig {
        reject: (0..10).map(|i| format!("user{i}@example.com")).collect(),
        ..SinkConfig::default()
    });
    let f = fixture(&store, "acme.test", sink.port(), 10, 1).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    let cfg = EngineConfig {
        max_consecutive_failures: 3,
        chunk: 2,
        flush_every: 1,
        ..fast_config()
    };
    run_once(&store, cfg).await;
    let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
    assert_eq!(b.status, "paused");
    assert!(
        b.status_reason
            .as_deref()
            .unwrap_or("")
            .contains("3 consecutive failures"),
        "{b:?}"
    );
    let c = store.queue_counts(f.scope, f.batch_id).await.unwrap();
    assert_eq!(c.sending, 0);
    assert!(c.pending > 0, "{c:?}");
});

/// A started batch of `n` recipients on a sink answering after `delay`, and an engine
/// claiming 4 at a time: slow enough to watch it run.
async fn started_slow_batch(
    store: &Store,
    sink: SinkConfig,
    n: usize,
) -> (SmtpSink, Fixture, Engine) {
    let sink = SmtpSink::start(sink);
    let f = fixture(store, "acme.test", sink.port(), n, 1).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    let engine = Engine::new(
        store.clone(),
        EngineConfig {
            chunk: 4,
            ..fast_config()
        },
    );
    (sink, f, engine)
}

store_test!(pause_resume_and_cancel, |store| async move {
    let (sink, f, engine) = started_slow_batch(
        &store,
        SinkConfig {
            reply_delay: Duration::from_millis(3),
            ..SinkConfig::default()
        },
        60,
    )
    .await;
    let mut events = engine.subscribe();
    let (stop_tx, stop_rx) = watch::channel(false);
    let e2 = engine.clone();
    let handle = tokio::spawn(async move { e2.run(stop_rx, false).await });
    sink.wait_for(5, Duration::from_secs(20));
    store
        .pause_batch(f.scope, f.batch_id, Some("operator"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let c = store.queue_counts(f.scope, f.batch_id).await.unwrap();
    assert_eq!(c.sending, 0, "{c:?}");
    assert!(c.pending > 0, "{c:?}");
    let sent_at_pause = sink.messages().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.messages().len(),
        sent_at_pause,
        "nothing sent while paused"
    );
    assert_eq!(c.sent as usize, sent_at_pause);
    store.resume_batch(f.scope, f.batch_id).await.unwrap();
    let end = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
        if b.status == "completed" || std::time::Instant::now() > end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let counts = rcpt_counts(&sink);
    assert_eq!(counts.len(), 60);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
    assert_eq!((b.status.as_str(), b.sent_count), ("completed", 60));
    let mut progress = 0;
    let mut completed = false;
    let mut paused = false;
    // The Completed event follows the database transition by a moment: wait for it (a
    // lagging receiver skips what it missed and carries on).
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while !(completed && paused) {
        let ev = match tokio::time::timeout_at(until, events.recv()).await {
            Ok(Ok(ev)) => ev,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(_)) | Err(_) => break,
        };
        match ev {
            EngineEvent::Progress { .. } => progress += 1,
            EngineEvent::StatusChanged {
                status: BatchStatus::Paused,
                ..
            } => paused = true,
            EngineEvent::StatusChanged {
                status: BatchStatus::Completed,
                ..
            } => completed = true,
            _ => {}
        }
    }
    assert!(
        progress >= 1 && completed && paused,
        "{progress} {completed} {paused}"
    );

    // Cancel: a second batch of the same tenant stops, unsent rows stay pending.
    let f2 = Fixture {
        batch_id: store
            .create_batch(
                f.scope,
                &NewBatch {
                    name: "Second".into(),
                    template_id: b.template_id,
                    group_ids: store
                        .batch_groups(f.scope, f.batch_id)
                        .await
                        .unwrap()
                        .iter()
                        .map(|g| g.group_id)
                        .collect(),
                    ..NewBatch::default()
                },
            )
            .await
            .unwrap()
            .id,
        ..f
    };
    let before = sink.messages().len();
    store.start_batch(f2.scope, f2.batch_id).await.unwrap();
    sink.wait_for(before + 3, Duration::from_secs(20));
    store.cancel_batch(f2.scope, f2.batch_id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let c = store.queue_counts(f2.scope, f2.batch_id).await.unwrap();
    assert_eq!(c.sending, 0, "{c:?}");
    assert!(c.pending > 0, "{c:?}");
    let after = sink.messages().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), after);
    assert_eq!(
        store.get_batch(f2.scope, f2.batch_id).await.unwrap().status,
        "cancelled"
    );
    stop_tx.send(true).unwrap();
    handle.await.unwrap().unwrap();
});

store_test!(expired_leases_return_to_pending, |store| async move {
    let sink = SmtpSink::start(SinkConfig::default());
    let f = fixture(&store, "acme.test", sink.port(), 6, 2).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    // A worker claims 4 rows and dies.
    let claim = store
        .claim(f.scope, f.batch_id, "dead#1", 4, Duration::from_millis(50))
        .await
        .unwrap();
    let Claim::Rows { rows, .. } = claim else {
        panic!("{claim:?}")
    };
    assert_eq!(rows.len(), 4);
    let c = store.queue_counts(f.scope, f.batch_id).await.unwrap();
    assert_eq!((c.sending, c.pending), (4, 2));
    assert_eq!(
        store
            .get_tenant(f.scope)
            .await
            .unwrap()
            .emails_sent_this_month,
        4
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.requeue_expired_leases().await.unwrap(), 4);
    assert_eq!(
        store
            .get_tenant(f.scope)
            .await
            .unwrap()
            .emails_sent_this_month,
        0,
        "the dead claim's quota is given back"
    );
    let c = store.queue_counts(f.scope, f.batch_id).await.unwrap();
    assert_eq!((c.sending, c.pending), (0, 6));
    run_once(&store, fast_config()).await;
    let counts = rcpt_counts(&sink);
    assert_eq!(counts.len(), 6);
    assert!(counts.values().all(|n| *n == 1));
    assert_eq!(
        store.get_batch(f.scope, f.batch_id).await.unwrap().status,
        "completed"
    );
    assert_eq!(
        store
            .get_tenant(f.scope)
            .await
            .unwrap()
            .emails_sent_this_month,
        6
    );
});

store_test!(rate_limit_spaces_messages, |store| async move {
    let sink = SmtpSink::start(SinkConfig {
        pipelining: true,
        ..SinkConfig::default()
    });
    let f = fixture(&store, "acme.test", sink.port(), 6, 4).await;
    let Some(SmtpSettings::Smtp(mut server)) = store.smtp_settings(f.scope).await.unwrap() else {
        panic!("smtp settings")
    };
    server.rate_per_second = Some(20);
    store
        .set_smtp_settings(f.scope, &SmtpSettings::Smtp(server))
        .await
        .unwrap();
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    let t0 = std::time::Instant::now();
    run_once(&store, fast_config()).await;
    assert_eq!(rcpt_counts(&sink).len(), 6);
    // 6 messages at 20/s: the last starts at least 250 ms after the first.
    assert!(
        t0.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t0.elapsed()
    );
    // Rate-limited, a body is not held for the next message's slot: it goes out alone.
    let groups = sink.command_groups();
    assert!(
        groups
            .iter()
            .all(|g| g.first().map(String::as_str) != Some(".") || g.len() == 1),
        "{groups:?}"
    );
    assert_eq!(
        groups.iter().filter(|g| g.as_slice() == ["."]).count(),
        6,
        "{groups:?}"
    );
});

store_test!(suspended_tenant_pauses_with_reason, |store| async move {
    let sink = SmtpSink::start(SinkConfig::default());
    let f = fixture(&store, "acme.test", sink.port(), 2, 1).await;
    exec(
        &store,
        &format!(
            "UPDATE tenants_tenant SET status = 'suspended' WHERE id = {}",
            f.tenant_id
        ),
    )
    .await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    run_once(&store, fast_config()).await;
    let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
    assert_eq!(b.status, "paused");
    assert!(b.status_reason.unwrap_or_default().contains("suspended"));
    assert!(sink.messages().is_empty());
});

store_test!(two_workers_send_each_recipient_once, |store| async move {
    let sink = SmtpSink::start(SinkConfig::default());
    let f = fixture(&store, "acme.test", sink.port(), 80, 2).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    let cfg = |id: &str| EngineConfig {
        worker_id: id.into(),
        chunk: 5,
        ..fast_config()
    };
    let (a, b) = tokio::join!(run_once(&store, cfg("w1")), run_once(&store, cfg("w2")));
    let _ = (a, b);
    let counts = rcpt_counts(&sink);
    assert_eq!(counts.len(), 80);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    let bt = store.get_batch(f.scope, f.batch_id).await.unwrap();
    assert_eq!((bt.status.as_str(), bt.sent_count), ("completed", 80));
    assert_eq!(
        store
            .get_tenant(f.scope)
            .await
            .unwrap()
            .emails_sent_this_month,
        80
    );
});

store_test!(scheduled_batches_start_when_due, |store| async move {
    let sink = SmtpSink::start(SinkConfig::default());
    let f = fixture(&store, "acme.test", sink.port(), 3, 1).await;
    let past = recalliq::db::now() - chrono::Duration::seconds(1);
    store
        .transition_batch(f.scope, f.batch_id, BatchStatus::Scheduled, None)
        .await
        .unwrap();
    store
        .update_batch(f.scope, f.batch_id, None, None, Some(past))
        .await
        .unwrap();
    run_once(&store, fast_config()).await;
    assert_eq!(rcpt_counts(&sink).len(), 3);
    assert_eq!(
        store.get_batch(f.scope, f.batch_id).await.unwrap().status,
        "completed"
    );
});

#[test]
fn batch_cli_and_worker_once() {
    crate::support::cli::on_both_backends(|env| {
        let sink = SmtpSink::start(SinkConfig {
            reject: ["carol@example.com".to_string()].into_iter().collect(),
            ..SinkConfig::default()
        });
        let port = sink.port().to_string();
        env.create_tenant("Acme", "acme.test").ok();
        env.run(
            &["group", "create", "--tenant", "acme.test", "--name", "News"],
            None,
        )
        .ok();
        for (email, name) in [
            ("ann@example.com", "Ann"),
            ("bob@example.com", "Bob"),
            ("carol@example.com", "Carol"),
        ] {
            env.run(
                &[
                    "contact",
                    "add",
                    "--tenant",
                    "acme.test",
                    "--group",
                    "News",
                    "--email",
                    email,
                    "--name",
                    name,
                ],
                None,
            )
            .ok();
        }
        let html = env.file("t.html", b"<p>Hello {{ name }} from {{ city }}</p>");
        env.run(
            &[
                "template",
                "create",
                "--tenant",
                "acme.test",
                "--name",
                "Hello",
                "--subject",
                "Hi {{ name }}",
                "--html-file",
                &html,
            ],
            None,
        )
        .ok();
        env.smtp_local("acme.test", &port, &[]).ok();
        let created = env.run(
            &[
                "batch",
                "create",
                "--tenant",
                "acme.test",
                "--name",
                "Spring",
                "--template",
                "Hello",
                "--group",
                "News",
                "--var",
                "city=Oslo",
            ],
            None,
        );
        created.ok();
        let id = created.stdout.trim().to_string();
        assert!(id.parse::<i32>().is_ok(), "{}", created.stdout);
        let shown = env.json(&["batch", "show", &id, "--json"]);
        assert_eq!(shown["status"], "draft");
        env.run(&["batch", "pause", &id], None)
            .fails_with(1, "cannot become paused");
        env.run(&["batch", "start", &id, "--tenant", "other.test"], None)
            .fails_with(1, "not found");
        let started = env.run(&["batch", "start", &id, "--tenant", "acme.test"], None);
        started.ok();
        assert!(
            started.stdout.contains("3 recipients queued"),
            "{}",
            started.stdout
        );
        let shown = env.json(&["batch", "show", &id, "--json"]);
        assert_eq!(shown["status"], "running");
        assert_eq!(shown["queue"]["pending"], 3);
        env.run(&["worker", "--once"], None).ok();
        let shown = env.json(&["batch", "show", &id, "--json"]);
        assert_eq!(shown["status"], "completed", "{shown}");
        assert_eq!(shown["sent_count"], 2);
        assert_eq!(shown["failed_count"], 1);
        assert_eq!(shown["queue"]["pending"], 0);
        assert_eq!(shown["queue"]["rejected"], 1);
        let msgs = sink.messages();
        assert_eq!(msgs.len(), 2);
        assert!(msgs.iter().all(|m| m.data.contains("from Oslo")));
        let list = env.json(&["batch", "list", "--tenant", "acme.test", "--json"]);
        assert_eq!(list.as_array().unwrap().len(), 1);
        let human = env.run(&["batch", "show", &id], None);
        human.ok();
        assert!(human.stdout.contains("completed"), "{}", human.stdout);
        // Nothing left: the worker exits at once.
        env.run(&["worker", "--once"], None).ok();
        let retried = env.run(&["batch", "retry-failed", &id], None);
        retried.ok();
        assert!(
            retried.stdout.contains("1 recipients queued again"),
            "{}",
            retried.stdout
        );
        env.run(&["batch", "cancel", &id], None).ok();
        assert_eq!(
            env.json(&["batch", "show", &id, "--json"])["status"],
            "cancelled"
        );
        env.run(&["worker", "--once"], None).ok();
        assert_eq!(sink.messages().len(), 2, "a cancelled batch sends nothing");
        // The re-queued recipient stays pending: shown as unsent, never counted as failed.
        let shown = env.json(&["batch", "show", &id, "--json"]);
        assert_eq!(shown["unsent"], 1, "{shown}");
        assert_eq!(shown["queue"]["pending"], 1, "{shown}");
        assert_eq!(shown["sent_count"], 2, "{shown}");
        let human = env.run(&["batch", "show", &id], None);
        assert!(human.stdout.contains("unsent 1"), "{}", human.stdout);
    });
}

// Issue #6: a server offering PIPELINING gets each envelope in one write; recipients it
// refuses inside the group are rejected (550, no retry) and the session goes on after RSET:
// one connection for the whole batch.
store_test!(pipelined_refusals_keep_the_session, |store| async move {
    let refused = ["user1@example.com", "user3@example.com"];
    let sink = SmtpSink::start(SinkConfig {
        pipelining: true,
        reject: refused.iter().map(|s| s.to_string()).collect(),
        ..SinkConfig::default()
    });
    let f = fixture(&store, "acme.test", sink.port(), 6, 1).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    run_once(&store, fast_config()).await;
    let rows = logs(&store, &f).await;
    assert_eq!(rows.len(), 6);
    for r in &rows {
        if refused.contains(&r.recipient_email.as_str()) {
            assert_eq!(r.status, "rejected", "{r:?}");
            assert!(
                r.smtp_response
                    .as_deref()
                    .unwrap_or("")
                    .starts_with("550 5.1.1"),
                "{r:?}"
            );
            assert_eq!(r.attempts, 1, "{r:?}");
        } else {
            assert_eq!(r.status, "sent", "{r:?}");
        }
    }
    assert_eq!(sink.messages().len(), 4);
    assert_eq!(sink.connections(), 1, "refusals cost no reconnection");
    // Each envelope is one write; the body of the message before ("." in the groups) goes
    // in the same write when it was waiting for this envelope.
    let groups = sink.command_groups();
    let envelope = |g: &[String]| {
        g.len() == 3
            && g[0].starts_with("MAIL FROM:")
            && g[1].starts_with("RCPT TO:")
            && g[2] == "DATA"
    };
    let alone = groups.iter().filter(|g| envelope(g)).count();
    let after_body = groups
        .iter()
        .filter(|g| g.len() == 4 && g[0] == "." && envelope(&g[1..]))
        .count();
    assert_eq!(alone + after_body, 6, "{groups:?}");
    // The refused messages had no body to send, so the envelopes after them go alone.
    assert!(
        after_body >= 1,
        "no body shared a write with the next envelope: {groups:?}"
    );
    assert!(alone >= 3, "{groups:?}");
});

// Issue #6: across messages the body and "." of one message share a write with the next
// envelope (RFC 2920), so a steady batch costs one write per message; the last body goes
// alone. Every message arrives once, whole.
store_test!(
    bodies_share_a_write_with_the_next_envelope,
    |store| async move {
        let sink = SmtpSink::start(SinkConfig {
            pipelining: true,
            ..SinkConfig::default()
        });
        let f = fixture(&store, "acme.test", sink.port(), 40, 1).await;
        store.start_batch(f.scope, f.batch_id).await.unwrap();
        // One claim for all: the queue never runs dry between messages.
        let config = EngineConfig {
            chunk: 50,
            ..fast_config()
        };
        run_once(&store, config).await;
        let rows = logs(&store, &f).await;
        assert_eq!(rows.len(), 40);
        assert!(
            rows.iter().all(|r| r.status == "sent" && r.attempts == 1),
            "{rows:?}"
        );
        let msgs = sink.messages();
        let mut to: Vec<String> = msgs.iter().map(|m| m.rcpt_to.join(",")).collect();
        to.sort();
        to.dedup();
        assert_eq!((msgs.len(), to.len()), (40, 40), "each recipient once");
        for m in &msgs {
            assert!(m.data.contains("Subject: "), "{}", m.data);
            assert!(
                !m.data.contains("MAIL FROM"),
                "a command leaked into a body: {}",
                m.data
            );
        }
        let groups = sink.command_groups();
        let shared = groups
            .iter()
            .filter(|g| {
                g.len() == 4 && g[0] == "." && g[1].starts_with("MAIL FROM:") && g[3] == "DATA"
            })
            .count();
        let bodies: usize = groups
            .iter()
            .map(|g| g.iter().filter(|c| *c == ".").count())
            .sum();
        assert_eq!(bodies, 40, "{groups:?}");
        assert!(
            shared >= 30,
            "only {shared} of 40 bodies shared a write: {groups:?}"
        );
        assert_eq!(sink.connections(), 1);
    }
);

// Issue #6: claims go on from the last id claimed; rows deferred early in a batch wait
// behind that cursor and must still be retried (the claimer starts from the beginning again
// when a claim comes back short). 60 recipients in claims of 5, every one deferred once.
store_test!(
    deferred_rows_behind_the_claim_cursor_are_retried,
    |store| async move {
        let sink = SmtpSink::start(SinkConfig {
            defer_first: 1,
            ..SinkConfig::default()
        });
        let f = fixture(&store, "acme.test", sink.port(), 60, 2).await;
        store.start_batch(f.scope, f.batch_id).await.unwrap();
        let config = EngineConfig {
            chunk: 5,
            // Sixty deferrals in a row are the point here, not a reason to pause.
            max_consecutive_failures: 0,
            ..fast_config()
        };
        let started = std::time::Instant::now();
        run_once(&store, config).await;
        // Not a speed target: the claimer restarts from the beginning every 10 s anyway; the
        // retries must be found when the cursor runs out, not at that restart.
        assert!(
            started.elapsed() < Duration::from_secs(9),
            "retries waited for the periodic restart: {:?}",
            started.elapsed()
        );
        let rows = logs(&store, &f).await;
        assert_eq!(rows.len(), 60);
        for r in &rows {
            assert_eq!((r.status.as_str(), r.attempts), ("sent", 2), "{r:?}");
        }
        let counts = rcpt_counts(&sink);
        assert_eq!(counts.len(), 60);
        assert!(
            counts.values().all(|n| *n == 1),
            "each delivered once: {counts:?}"
        );
        let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
        assert_eq!((b.status.as_str(), b.sent_count), ("completed", 60));
    }
);

/// Postgres: `start_batch` refreshes the planner's statistics when it queues a large batch
/// (without them every claim sorted all of the batch's pending rows), and leaves them alone
/// for a small one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_batch_analyzes_a_large_queue_on_postgres() {
    crate::support::with_postgres(|store| async move {
        let analyzed = |store: Store| async move {
            sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
                "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'logs_emaillog'",
            )
            .fetch_one(store.pg_pool().unwrap())
            .await
            .unwrap()
        };
        let small = fixture(&store, "small.test", 25, 3, 1).await;
        store
            .start_batch(small.scope, small.batch_id)
            .await
            .unwrap();
        assert_eq!(analyzed(store.clone()).await, None);

        let large = fixture(&store, "large.test", 25, 0, 1).await;
        exec(
            &store,
            &format!(
                "INSERT INTO tenants_groupemail (group_id, email, name, is_active, created_at)
                 SELECT g.id, 'user' || i || '@example.com', 'User', TRUE, now()
                 FROM tenants_group g, generate_series(1, 10000) i WHERE g.tenant_id = {}",
                large.tenant_id
            ),
        )
        .await;
        let (_, queued) = store
            .start_batch(large.scope, large.batch_id)
            .await
            .unwrap();
        assert_eq!(queued, 10_000);
        assert!(analyzed(store.clone()).await.is_some());
    })
    .await;
}

// Progress counts the open rows only now and then and subtracts what it wrote in between:
// with one worker and no retries, every event still accounts for each recipient exactly
// once, and the last one reports nothing open.
store_test!(progress_accounts_for_every_recipient, |store| async move {
    let (_sink, _f, engine) = started_slow_batch(
        &store,
        SinkConfig {
            reply_delay: Duration::from_millis(4),
            reject: ["user3@example.com".to_string()].into(),
            ..SinkConfig::default()
        },
        80,
    )
    .await;
    let mut events = engine.subscribe();
    let collect = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            match events.recv().await {
                Ok(EngineEvent::Progress {
                    sent, failed, open, ..
                }) => seen.push((sent, failed, open)),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break seen,
            }
        }
    });
    let (_tx, rx) = watch::channel(false);
    tokio::time::timeout(Duration::from_secs(60), engine.run(rx, true))
        .await
        .expect("engine finished in time")
        .unwrap();
    drop(engine);
    let seen = collect.await.unwrap();
    assert!(seen.len() >= 3, "{seen:?}");
    for (sent, failed, open) in &seen {
        assert_eq!(i64::from(*sent) + i64::from(*failed) + open, 80, "{seen:?}");
    }
    assert_eq!(seen.last(), Some(&(79, 1, 0)));
});
