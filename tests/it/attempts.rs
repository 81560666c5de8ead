//! Per-attempt history (`recalliq_emailattempt`, issue 7): the engine stores a row for each
//! attempt that did not end the recipient (deferrals, dropped connections), none for a
//! recipient accepted at once; the detail shows those rows plus the final state. Triage
//! retries keep it, retention and tenant purge remove it. Real SMTP sink, both backends.

use recalliq::db::{Actor, CleanOptions, RetryMode, Store};

use crate::engine::{Fixture, exec, fast_config, fixture, logs, run_once};
use crate::store_test;
use crate::support::smtp::{SinkConfig, SmtpSink};

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

const ATTEMPT_ROWS: &str = "SELECT COUNT(*) FROM recalliq_emailattempt";

store_test!(deferred_twice_then_accepted, |store| async move {
    let sink = SmtpSink::start(SinkConfig {
        defer_first: 2,
        ..SinkConfig::default()
    });
    let f = fixture(&store, "acme.test", sink.port(), 2, 1).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    run_once(&store, fast_config()).await;
    let rows = logs(&store, &f).await;
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!((row.status.as_str(), row.attempts), ("sent", 3), "{row:?}");
        let stored = store.email_attempts(f.scope, row.id).await.unwrap();
        assert_eq!(stored.len(), 2, "two deferrals stored: {stored:?}");
        for (i, a) in stored.iter().enumerate() {
            assert_eq!(a.attempt, i as i32 + 1, "{a:?}");
            assert_eq!(a.outcome, "retry", "{a:?}");
            assert_eq!(a.smtp_code, Some(451), "{a:?}");
            assert!(
                a.smtp_response.as_deref().unwrap_or("").starts_with("451"),
                "{a:?}"
            );
            assert!(a.error_message.is_some(), "{a:?}");
        }
        assert!(stored[0].attempted_at <= stored[1].attempted_at);
        let detail = store.email_log_detail(f.scope, row.id).await.unwrap();
        let outcomes: Vec<(i32, &str, Option<i32>)> = detail
            .attempts
            .iter()
            .map(|a| (a.attempt, a.outcome.as_str(), a.smtp_code))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                (1, "retry", Some(451)),
                (2, "retry", Some(451)),
                (3, "sent", Some(250))
            ]
        );
        assert_eq!(detail.attempts[2].attempted_at, row.sent_at.unwrap());
    }
    // Another tenant sees no history of these rows.
    let (_, other) = crate::support::tenant(&store, "other.test").await;
    assert!(
        store
            .email_attempts(other, rows[0].id)
            .await
            .unwrap()
            .is_empty()
    );
});

store_test!(
    first_try_success_writes_no_attempt_row,
    |store| async move {
        let sink = SmtpSink::start(SinkConfig {
            reject: ["user1@example.com".to_string()].into_iter().collect(),
            ..SinkConfig::default()
        });
        let f = fixture(&store, "acme.test", sink.port(), 4, 2).await;
        store.start_batch(f.scope, f.batch_id).await.unwrap();
        run_once(&store, fast_config()).await;
        let rows = logs(&store, &f).await;
        assert_eq!(rows.iter().filter(|r| r.status == "sent").count(), 3);
        // Sent and rejected at the first try: the log row is the whole history.
        assert_eq!(count(&store, ATTEMPT_ROWS).await, 0);
        let rejected = rows.iter().find(|r| r.status == "rejected").unwrap();
        let d = store.email_log_detail(f.scope, rejected.id).await.unwrap();
        assert_eq!(d.attempts.len(), 1);
        assert_eq!(
            (d.attempts[0].outcome.as_str(), d.attempts[0].smtp_code),
            ("rejected", Some(550))
        );
    }
);

store_test!(
    dropped_connections_are_stored_as_attempts,
    |store| async move {
        let sink = SmtpSink::start(SinkConfig {
            drop_first_data: 2,
            ..SinkConfig::default()
        });
        let f = fixture(&store, "acme.test", sink.port(), 3, 1).await;
        store.start_batch(f.scope, f.batch_id).await.unwrap();
        run_once(&store, fast_config()).await;
        let rows = logs(&store, &f).await;
        assert!(rows.iter().all(|r| r.status == "sent"), "{rows:?}");
        let extra: i32 = rows.iter().map(|r| r.attempts - 1).sum();
        // Every attempt beyond the final one is stored, none twice.
        assert_eq!(count(&store, ATTEMPT_ROWS).await, i64::from(extra));
        assert!(extra >= 2, "{rows:?}");
        for r in &rows {
            let d = store.email_log_detail(f.scope, r.id).await.unwrap();
            assert_eq!(d.attempts.len() as i32, r.attempts, "{d:?}");
            assert_eq!(d.attempts.last().unwrap().outcome, "sent");
        }
    }
);

/// One recipient whose three tries were deferred, which uses up the retries (fast_config:
/// two): its row ends `failed`. The sink accepts the fourth try.
async fn failed_after_three_deferrals(
    store: &Store,
) -> (SmtpSink, Fixture, recalliq::db::EmailLog) {
    let sink = SmtpSink::start(SinkConfig {
        defer_first: 3,
        ..SinkConfig::default()
    });
    let f = fixture(store, "acme.test", sink.port(), 1, 1).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    run_once(store, fast_config()).await;
    let row = logs(store, &f).await.remove(0);
    (sink, f, row)
}

store_test!(triage_retry_keeps_the_history, |store| async move {
    let (_sink, f, row) = failed_after_three_deferrals(&store).await;
    assert_eq!((row.status.as_str(), row.attempts), ("failed", 3));
    let d = store.email_log_detail(f.scope, row.id).await.unwrap();
    let outcomes: Vec<&str> = d.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["retry", "retry", "failed"]);
    store
        .retry_logs(
            f.scope,
            f.batch_id,
            &[row.id],
            RetryMode::SameBatch,
            "alice",
        )
        .await
        .unwrap();
    run_once(&store, fast_config()).await;
    let row = logs(&store, &f).await.remove(0);
    assert_eq!(row.status, "sent", "{row:?}");
    let d = store.email_log_detail(f.scope, row.id).await.unwrap();
    let outcomes: Vec<(&str, Option<i32>)> = d
        .attempts
        .iter()
        .map(|a| (a.outcome.as_str(), a.smtp_code))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("retry", Some(451)),
            ("retry", Some(451)),
            ("failed", Some(451)),
            ("sent", Some(250))
        ]
    );
    assert!(
        d.attempts[2]
            .error_message
            .as_deref()
            .unwrap_or("")
            .contains("gave up"),
        "{d:?}"
    );
});

store_test!(batch_retry_failed_keeps_the_history, |store| async move {
    // As above, but the whole batch's failures are retried (batches screen / CLI
    // `batch retry-failed`), not one row from triage.
    let (_sink, f, row) = failed_after_three_deferrals(&store).await;
    assert_eq!(row.status, "failed", "{row:?}");
    store.retry_failed(f.scope, f.batch_id).await.unwrap();
    run_once(&store, fast_config()).await;
    let row = logs(&store, &f).await.remove(0);
    assert_eq!(row.status, "sent", "{row:?}");
    let d = store.email_log_detail(f.scope, row.id).await.unwrap();
    let outcomes: Vec<&str> = d.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["retry", "retry", "failed", "sent"], "{d:?}");
});

store_test!(retention_and_purge_remove_attempts, |store| async move {
    // One sink per tenant: the sink counts tries per address, and both use user0...
    let config = || SinkConfig {
        defer_first: 1,
        ..SinkConfig::default()
    };
    let (sink_a, sink_b) = (SmtpSink::start(config()), SmtpSink::start(config()));
    let a = fixture(&store, "old.test", sink_a.port(), 2, 1).await;
    let b = fixture(&store, "gone.test", sink_b.port(), 3, 1).await;
    for f in [&a, &b] {
        store.start_batch(f.scope, f.batch_id).await.unwrap();
    }
    run_once(&store, fast_config()).await;
    // Each address deferred once.
    let per_tenant =
        |t: i32| format!("SELECT COUNT(*) FROM recalliq_emailattempt WHERE tenant_id = {t}");
    assert_eq!(count(&store, &per_tenant(a.tenant_id)).await, 2);
    assert_eq!(count(&store, &per_tenant(b.tenant_id)).await, 3);
    // Retention: a's logs are old enough to go, and their attempts with them.
    exec(
        &store,
        &format!(
            "UPDATE logs_emaillog SET created_at = '2000-01-01 00:00:00'
             WHERE batch_id = {}",
            a.batch_id
        ),
    )
    .await;
    let all = Actor::system().all_tenants().unwrap();
    store
        .clean_logs(&all, CleanOptions::default(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(count(&store, &per_tenant(a.tenant_id)).await, 0);
    let b_rows = count(&store, &per_tenant(b.tenant_id)).await;
    assert_eq!(b_rows, 3, "the other tenant's history stays");
    // Purge: every attempt row of the tenant goes.
    let report = store.purge_tenant(&all, b.tenant_id).await.unwrap();
    assert_eq!(
        report.deleted.get("recalliq_emailattempt").copied(),
        Some(b_rows as u64),
        "{report:?}"
    );
    assert_eq!(count(&store, ATTEMPT_ROWS).await, 0);
});
