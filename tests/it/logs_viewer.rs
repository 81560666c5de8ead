//! The log viewer's store functions (filters, sort, keyset pages, triage) on SQLite and
//! Postgres, and the triage round trip against the test SMTP server.

use std::collections::HashMap;

use recalliq::db::{
    EmailLog, LogFilter, Page, ReplyClass, RetryMode, SortColumn, Store, TenantScope,
};
use recalliq::domain::{BatchStatus, EmailStatus};

use crate::engine::{Fixture, fast_config, fixture, rcpt_counts, run_once};
use crate::store_test;
use crate::support::smtp::{SinkConfig, SmtpSink};
use crate::support::tenant;

/// Six materialized rows with one outcome each:
/// user0 sent, user1 rejected 550, user2 failed 451, user3 failed without a reply
/// (connection), user4 bounced, user5 pending.
async fn outcomes(store: &Store) -> (Fixture, Vec<EmailLog>) {
    let f = fixture(store, "logs.test", 1, 6, 1).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    let rows = all(store, f.scope, &LogFilter::batch(f.batch_id)).await;
    assert_eq!(rows.len(), 6);
    let scope = f.scope;
    let set = |i: usize, s: EmailStatus, err: Option<&'static str>, reply: Option<&'static str>| {
        let id = rows[i].id;
        let store = store.clone();
        async move {
            store
                .set_email_log_status(scope, id, s, err, reply)
                .await
                .unwrap();
        }
    };
    set(0, EmailStatus::Sent, None, Some("250 2.0.0 Ok: queued")).await;
    set(
        1,
        EmailStatus::Rejected,
        Some("recipient refused"),
        Some("550 5.1.1 <user1@example.com>: User unknown"),
    )
    .await;
    set(
        2,
        EmailStatus::Failed,
        Some("gave up after 3 attempts: temporary failure"),
        Some("451 4.3.0 try again later"),
    )
    .await;
    set(
        3,
        EmailStatus::Failed,
        Some("gave up after 3 attempts: connection refused"),
        None,
    )
    .await;
    set(4, EmailStatus::Bounced, Some("DSN: mailbox full"), None).await;
    let rows = all(store, f.scope, &LogFilter::batch(f.batch_id)).await;
    (f, rows)
}

/// Every matching row, walking forward pages of 2.
async fn all(store: &Store, scope: TenantScope, f: &LogFilter) -> Vec<EmailLog> {
    let mut out: Vec<EmailLog> = Vec::new();
    let mut page = Page::first(2);
    loop {
        let rows = store.query_email_logs(scope, f, page).await.unwrap();
        let Some(last) = rows.last() else { break };
        page = Page::after(last.id, 2);
        out.extend(rows);
    }
    out
}

fn emails(rows: &[EmailLog]) -> Vec<String> {
    rows.iter().map(|r| r.recipient_email.clone()).collect()
}

store_test!(filters_combine_and_count, |store| async move {
    let (f, _) = outcomes(&store).await;
    let base = LogFilter::batch(f.batch_id);
    let check = async |filter: LogFilter, want: &[&str]| {
        let got = emails(&all(&store, f.scope, &filter).await);
        assert_eq!(got, want, "{filter:?}");
        let n = store.count_email_logs(f.scope, &filter).await.unwrap();
        assert_eq!(n as usize, want.len(), "count of {filter:?}");
    };
    check(
        LogFilter {
            statuses: vec![EmailStatus::Failed],
            ..base.clone()
        },
        &["user2@example.com", "user3@example.com"],
    )
    .await;
    check(
        LogFilter {
            statuses: vec![EmailStatus::Failed, EmailStatus::Rejected],
            ..base.clone()
        },
        &[
            "user1@example.com",
            "user2@example.com",
            "user3@example.com",
        ],
    )
    .await;
    check(
        LogFilter {
            reply: Some(ReplyClass::Permanent),
            ..base.clone()
        },
        &["user1@example.com"],
    )
    .await;
    check(
        LogFilter {
            reply: Some(ReplyClass::Temporary),
            ..base.clone()
        },
        &["user2@example.com"],
    )
    .await;
    check(
        LogFilter {
            reply: Some(ReplyClass::Connection),
            ..base.clone()
        },
        &["user3@example.com", "user4@example.com"],
    )
    .await;
    // Text search covers the reply and the error; combined with a status.
    check(
        LogFilter {
            search: Some("TRY again".into()),
            ..base.clone()
        },
        &["user2@example.com"],
    )
    .await;
    check(
        LogFilter {
            search: Some("connection".into()),
            statuses: vec![EmailStatus::Failed],
            ..base.clone()
        },
        &["user3@example.com"],
    )
    .await;
    // LIKE wildcards in the search are literal.
    check(
        LogFilter {
            search: Some("%".into()),
            ..base.clone()
        },
        &[],
    )
    .await;
    // Date range: everything happened just now.
    let now = recalliq::db::now();
    check(
        LogFilter {
            from: Some(now - chrono::Duration::hours(1)),
            to: Some(now + chrono::Duration::hours(1)),
            statuses: vec![EmailStatus::Sent],
            ..base.clone()
        },
        &["user0@example.com"],
    )
    .await;
    check(
        LogFilter {
            from: Some(now + chrono::Duration::hours(1)),
            ..base.clone()
        },
        &[],
    )
    .await;
    // The tenant-wide view (no batch) sees the same rows; another tenant sees none.
    let (_, other) = tenant(&store, "other.test").await;
    assert_eq!(
        store
            .count_email_logs(f.scope, &LogFilter::default())
            .await
            .unwrap(),
        6
    );
    assert_eq!(
        store
            .count_email_logs(other, &LogFilter::default())
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .count_email_logs(other, &LogFilter::batch(f.batch_id))
            .await
            .unwrap(),
        0
    );
    let counts: HashMap<String, i64> = store
        .status_counts(f.scope, Some(f.batch_id))
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(counts.get("failed"), Some(&2));
    assert_eq!(counts.get("pending"), Some(&1));
    assert!(store.status_counts(other, None).await.unwrap().is_empty());
    // The describe line shows what is active.
    let d = LogFilter {
        statuses: vec![EmailStatus::Failed],
        search: Some("bob".into()),
        reply: Some(ReplyClass::Permanent),
        ..base.clone()
    }
    .describe()
    .join(" ");
    assert_eq!(d, "status=failed /bob reply=5xx");
});

store_test!(sorted_keyset_pages_walk_both_ways, |store| async move {
    let (f, rows) = outcomes(&store).await;
    for sort in SortColumn::ALL {
        for descending in [false, true] {
            let filter = LogFilter {
                sort,
                descending,
                ..LogFilter::batch(f.batch_id)
            };
            // Reference order, computed here.
            let mut want = rows.clone();
            want.sort_by(|a, b| {
                let k = match sort {
                    SortColumn::Id => std::cmp::Ordering::Equal,
                    SortColumn::Recipient => a.recipient_email.cmp(&b.recipient_email),
                    SortColumn::Status => a.status.cmp(&b.status),
                    SortColumn::Attempts => a.attempts.cmp(&b.attempts),
                    SortColumn::SentAt => a.sent_at.cmp(&b.sent_at),
                };
                k.then(a.id.cmp(&b.id))
            });
            if descending {
                want.reverse();
            }
            let want_ids: Vec<i32> = want.iter().map(|r| r.id).collect();
            let fwd: Vec<i32> = all(&store, f.scope, &filter)
                .await
                .iter()
                .map(|r| r.id)
                .collect();
            assert_eq!(fwd, want_ids, "forward {sort:?} desc={descending}");
            // Backward from the end in pages of 2 gives the same order.
            let mut back: Vec<i32> = Vec::new();
            let mut page = Page::last(2);
            loop {
                let got = store
                    .query_email_logs(f.scope, &filter, page)
                    .await
                    .unwrap();
                let Some(first) = got.first() else { break };
                page = Page::before(first.id, 2);
                let mut ids: Vec<i32> = got.iter().map(|r| r.id).collect();
                ids.extend(back);
                back = ids;
            }
            assert_eq!(back, want_ids, "backward {sort:?} desc={descending}");
        }
    }
});

store_test!(triage_actions_are_recorded, |store| async move {
    let (f, rows) = outcomes(&store).await;
    let ids: Vec<i32> = rows.iter().map(|r| r.id).collect();
    // Retry in a running batch: only failed/rejected/bounced rows, failed_count uncounted.
    let before = store.get_batch(f.scope, f.batch_id).await.unwrap();
    let r = store
        .retry_logs(f.scope, f.batch_id, &ids, RetryMode::SameBatch, "alice")
        .await
        .unwrap();
    assert_eq!((r.changed, r.skipped, r.new_batch), (4, 2, None));
    let after = all(&store, f.scope, &LogFilter::batch(f.batch_id)).await;
    let statuses: Vec<&str> = after.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "sent", "pending", "pending", "pending", "pending", "pending"
        ]
    );
    assert!(after.iter().skip(1).all(|r| r.attempts == 0));
    let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
    assert!(b.failed_count <= before.failed_count);
    // Nothing left to retry: a clear refusal.
    let err = store
        .retry_logs(f.scope, f.batch_id, &ids, RetryMode::SameBatch, "alice")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("only failed"), "{err}");

    // Suppress and deactivate the tagged rows' addresses and contacts.
    let two = &ids[1..3];
    let s = store
        .suppress_logs(f.scope, f.batch_id, two, "bounced", "alice")
        .await
        .unwrap();
    assert_eq!(s.changed, 2);
    assert!(
        store
            .is_suppressed(f.scope, "USER1@example.com")
            .await
            .unwrap()
    );
    let d = store
        .deactivate_log_contacts(f.scope, f.batch_id, two, "alice")
        .await
        .unwrap();
    assert_eq!(d.changed, 2);
    let detail = store.email_log_detail(f.scope, ids[1]).await.unwrap();
    assert_eq!(detail.contact_active, Some(false));
    assert!(detail.suppressed);
    assert_eq!(detail.group_name.as_deref(), Some("All"));
    assert!(
        detail.history.iter().any(|h| h.contains("suppress_tagged")),
        "{:?}",
        detail.history
    );
    // Every action is in the execution log with who did it.
    let log = store
        .list_execution_logs(f.scope, f.batch_id, Page::first(100))
        .await
        .unwrap();
    for action in ["retry_tagged", "suppress_tagged", "deactivate_tagged"] {
        let e = log.iter().find(|e| e.action == action).expect(action);
        assert!(e.message.as_deref().unwrap().contains("alice"), "{e:?}");
    }

    // Another tenant cannot touch these rows.
    let (_, other) = tenant(&store, "intruder.test").await;
    assert!(
        store
            .retry_logs(other, f.batch_id, &ids, RetryMode::SameBatch, "mallory")
            .await
            .is_err()
    );
    assert!(
        store
            .email_logs_by_ids(other, &ids)
            .await
            .unwrap()
            .is_empty()
    );
});

store_test!(finished_batch_retry_same_or_new, |store| async move {
    let (f, rows) = outcomes(&store).await;
    store
        .transition_batch(f.scope, f.batch_id, BatchStatus::Completed, None)
        .await
        .unwrap();
    let rejected = rows[1].id;
    let failed = rows[2].id;
    // New batch of just one recipient.
    let r = store
        .retry_logs(f.scope, f.batch_id, &[rejected], RetryMode::NewBatch, "bob")
        .await
        .unwrap();
    let new_id = r.new_batch.expect("new batch");
    let nb = store.get_batch(f.scope, new_id).await.unwrap();
    assert_eq!(nb.status, "running");
    let nrows = all(&store, f.scope, &LogFilter::batch(new_id)).await;
    assert_eq!(emails(&nrows), ["user1@example.com"]);
    assert_eq!(nrows[0].status, "pending");
    // The old row stays as it was (history), the old batch stays completed.
    let old = store.get_batch(f.scope, f.batch_id).await.unwrap();
    assert_eq!(old.status, "completed");
    // Same batch: it runs again.
    let r = store
        .retry_logs(f.scope, f.batch_id, &[failed], RetryMode::SameBatch, "bob")
        .await
        .unwrap();
    assert_eq!(r.changed, 1);
    let old = store.get_batch(f.scope, f.batch_id).await.unwrap();
    assert_eq!(old.status, "running");
    let log = store
        .list_execution_logs(f.scope, f.batch_id, Page::first(100))
        .await
        .unwrap();
    assert!(log.iter().any(|e| e.action == "retry_new_batch"));
    assert!(log.iter().any(|e| e.action == "retry_tagged"));
});

// The scenario at the store level: a batch with rejected recipients, filter failed,
// tag all, retry after the server stops rejecting: every recipient ends sent exactly once.
store_test!(retry_after_server_stops_rejecting, |store| async move {
    let rejecting = SmtpSink::start(SinkConfig {
        reject: ["user1@example.com", "user3@example.com"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..SinkConfig::default()
    });
    let f = fixture(&store, "acme.test", rejecting.port(), 5, 2).await;
    store.start_batch(f.scope, f.batch_id).await.unwrap();
    run_once(&store, fast_config()).await;
    let failed = LogFilter {
        statuses: vec![EmailStatus::Failed, EmailStatus::Rejected],
        ..LogFilter::batch(f.batch_id)
    };
    let tagged = store
        .email_log_ids(f.scope, &failed, 100_000)
        .await
        .unwrap();
    assert_eq!(tagged.len(), 2);
    // The server is fixed: point the tenant at a polite one.
    let polite = SmtpSink::start(SinkConfig::default());
    let mut server =
        recalliq::db::SmtpServer::new("127.0.0.1", polite.port(), recalliq::db::Security::None);
    server.from = Some("news@acme.test".into());
    store
        .set_smtp_settings(f.scope, &recalliq::db::SmtpSettings::Smtp(server))
        .await
        .unwrap();
    let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
    assert_eq!(b.status, "completed");
    store
        .retry_logs(f.scope, f.batch_id, &tagged, RetryMode::SameBatch, "ops")
        .await
        .unwrap();
    run_once(&store, fast_config()).await;
    let rows = all(&store, f.scope, &LogFilter::batch(f.batch_id)).await;
    assert!(rows.iter().all(|r| r.status == "sent"), "{rows:?}");
    let mut sent = rcpt_counts(&rejecting);
    for (k, v) in rcpt_counts(&polite) {
        *sent.entry(k).or_insert(0) += v;
    }
    assert_eq!(sent.len(), 5);
    assert!(sent.values().all(|n| *n == 1), "{sent:?}");
    let b = store.get_batch(f.scope, f.batch_id).await.unwrap();
    assert_eq!(
        (b.status.as_str(), b.sent_count, b.failed_count),
        ("completed", 5, 0)
    );
});
