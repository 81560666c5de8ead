//! TUI of issue #8: the dashboard with data (snapshots for a super admin and a tenant
//! admin, live polling), the audit screen (snapshot, tenant scoping, denial with a reason),
//! maintenance from the palette (confirmation, super admins only) and the audit rows that
//! TUI writes and logins leave.

use std::time::{Duration, Instant};

use crossterm::event::KeyCode;
use recalliq::db::{Actor, AuditFilter, Page, Store, UserScope};
use recalliq::tui::keymap::ScreenId;
use recalliq::tui::{App, Options};

use crate::support::with_sqlite;
use crate::tui::{SIZES, app_as, opts, press, press_code, render, seed, snap};

async fn exec(store: &Store, sql: &str, now: chrono::NaiveDateTime) {
    // `$1` is "now"; each statement on its own.
    let p = store.sqlite_pool().expect("sqlite");
    for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        sqlx::query(sqlx::AssertSqlSafe(stmt.to_string()))
            .bind(now)
            .execute(p)
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
}

/// Acme (tenant 1) gets a group, a template, a finished batch (12.5 minutes, 80 %), a
/// running one (3 of 5 done) and logs on two of the last 30 days; Globex a paused batch.
const DATA: &str = "
INSERT INTO tenants_group (tenant_id, name, is_active) VALUES (1, 'Customers', TRUE);
INSERT INTO emails_emailtemplate (tenant_id, name, subject, body_html, is_active) VALUES (1, 'Welcome', 'Hi', '<p>Hi</p>', TRUE);
INSERT INTO emails_emailtemplate (tenant_id, name, subject, body_html, is_active) VALUES (2, 'Hello', 'Hi', '<p>Hi</p>', TRUE);
INSERT INTO batches_batch (tenant_id, template_id, name, status, sent_count, failed_count, started_at, completed_at, created_at)
VALUES (1, 1, 'Spring', 'completed', 8, 2, '2026-03-01 10:00:00', '2026-03-01 10:12:30', '2026-03-01 09:00:00');
INSERT INTO batches_batch (tenant_id, template_id, name, status, sent_count, failed_count, started_at, created_at)
VALUES (1, 1, 'Summer', 'running', 3, 0, '2026-03-02 10:00:00', '2026-03-02 09:00:00');
INSERT INTO batches_batch (tenant_id, template_id, name, status, sent_count, failed_count, started_at, created_at)
VALUES (2, 2, 'Launch', 'paused', 1, 1, '2026-03-03 10:00:00', '2026-03-03 09:00:00');
INSERT INTO logs_emaillog (batch_id, recipient_email, status, sent_at)
VALUES (2, 'a@x.test', 'sent', datetime($1, '-1 day')), (2, 'b@x.test', 'sent', datetime($1, '-1 day')),
       (2, 'c@x.test', 'sent', datetime($1, '-3 day')), (2, 'd@x.test', 'pending', NULL),
       (2, 'e@x.test', 'pending', NULL),
       (1, 'a@x.test', 'sent', datetime($1, '-3 day')), (1, 'f@x.test', 'failed', datetime($1, '-3 day')),
       (3, 'g@y.test', 'sent', datetime($1, '-2 day')), (3, 'h@y.test', 'failed', datetime($1, '-2 day'))
";

async fn seeded(store: &Store) {
    seed(store).await;
    exec(store, DATA, recalliq::db::now()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_statistics_live_batches_activity_and_performance() {
    with_sqlite(|store| async move {
        seeded(&store).await;
        for size in SIZES {
            let app = app_as(&store, "root", size, opts()).await;
            snap("dashboard_data_all", size, render(&app, size));
            let app = app_as(&store, "alice", size, opts()).await;
            snap("dashboard_data_tenant", size, render(&app, size));
        }
        // What the snapshots show, as data.
        let app = app_as(&store, "alice", (120, 40), opts()).await;
        let d = &app.dashboard;
        assert_eq!(d.stats.len(), 1);
        assert_eq!(d.stats[0].batch_count, 2);
        assert_eq!(d.running.len(), 1, "only acme's batch: {:?}", d.running);
        assert_eq!((d.running[0].total, d.running[0].remaining), (5, 2));
        assert_eq!(d.days.len(), 30);
        let totals: Vec<i64> = d.days.iter().map(|x| x.total_emails).collect();
        assert_eq!(totals[29 - 1], 2, "yesterday");
        assert_eq!(totals[29 - 3], 3, "three days ago");
        assert_eq!(totals.iter().sum::<i64>(), 5);
        assert_eq!(d.performance[1].success_rate, Some(80.0));
        assert_eq!(d.performance[1].duration_minutes, Some(12.5));
        let root = app_as(&store, "root", (120, 40), opts()).await;
        assert_eq!(root.dashboard.running.len(), 2, "every tenant's");
        // #9 item 4: bounces and unsubscribes reported back show on the tenant's dashboard.
        assert_eq!(d.bounces, Some(recalliq::db::BounceCounts::default()));
        let all = Actor::system().all_tenants().unwrap();
        let acme = store.tenant_by_domain(&all, "acme.test").await.unwrap();
        let scope = Actor::system().tenant_scope(acme.id).unwrap();
        for (email, kind) in [("a@x.test", "hard"), ("b@x.test", "unsubscribe")] {
            store
                .record_bounce_event(
                    scope,
                    &recalliq::db::NewBounceEvent {
                        batch_id: Some(2),
                        log_id: None,
                        email,
                        kind,
                        status_code: None,
                        diagnostic: None,
                        source: "test",
                    },
                )
                .await
                .unwrap();
        }
        let app = app_as(&store, "alice", (120, 40), opts()).await;
        let screen = render(&app, (120, 40));
        assert!(
            screen.contains("Bounced 1") && screen.contains("Unsubscribed 1"),
            "{screen}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_polls_while_visible() {
    with_sqlite(|store| async move {
        seeded(&store).await;
        let mut app = app_as(&store, "alice", (120, 40), opts()).await;
        assert_eq!(app.dashboard.running[0].sent_count, 3);
        // Another process sends one more.
        let p = store.sqlite_pool().unwrap();
        sqlx::query("UPDATE logs_emaillog SET status = 'sent' WHERE recipient_email = 'd@x.test'")
            .execute(p)
            .await
            .unwrap();
        sqlx::query("UPDATE batches_batch SET sent_count = 4 WHERE id = 2")
            .execute(p)
            .await
            .unwrap();
        // Not yet due: nothing reloads.
        assert!(!app.poll_dashboard(Instant::now()).await);
        let later = Instant::now() + Duration::from_millis(1100);
        assert!(app.poll_dashboard(later).await);
        assert_eq!(app.dashboard.running[0].sent_count, 4);
        assert_eq!(app.dashboard.running[0].remaining, 1);
        // On another screen the dashboard is left alone.
        press(&mut app, "4").await;
        assert!(!app.poll_dashboard(later + Duration::from_secs(20)).await);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_screen_maintenance_and_the_audit_trail_of_tui_writes() {
    with_sqlite(|store| async move {
        seeded(&store).await;
        let all = Actor::system().all_tenants().unwrap();
        // A TUI write (a new group as alice) and a TUI login leave audit rows.
        let mut app = app_as(&store, "alice", (120, 40), opts()).await;
        press(&mut app, "4n").await;
        press(&mut app, "Partners").await;
        press_code(&mut app, KeyCode::Enter).await;
        assert!(app.popup.is_none(), "{:?}", app.popup);
        let mut login = app_as(
            &store,
            "",
            (120, 40),
            Options {
                user: Some("bob".into()),
                ..opts()
            },
        )
        .await;
        press(&mut login, "wrong-pw").await;
        press_code(&mut login, KeyCode::Enter).await;
        let rows = store
            .list_audit(
                UserScope::All(all),
                &AuditFilter::default(),
                Page::first(50),
            )
            .await
            .unwrap();
        let seen: Vec<(String, String, String, Option<i32>)> = rows
            .iter()
            .map(|r| {
                (
                    r.actor.clone(),
                    r.action.clone(),
                    r.outcome.clone(),
                    r.tenant_id,
                )
            })
            .collect();
        assert!(
            seen.contains(&("alice".into(), "tui new-group".into(), "ok".into(), Some(1))),
            "{seen:?}"
        );
        assert!(
            seen.contains(&("bob".into(), "login".into(), "failed".into(), None)),
            "{seen:?}"
        );
        assert!(rows.iter().all(|r| !r.target.contains("wrong-pw")));
        // Rows of another tenant, which alice must not see.
        store
            .audit(&Actor::system(), Some(2), "group create", "name=Secret")
            .await;

        for size in SIZES {
            // The tenant admin's audit screen: own tenant only.
            let mut app = app_as(&store, "alice", size, opts()).await;
            press(&mut app, "0").await;
            assert_eq!(app.screen, ScreenId::Audit);
            assert!(app.audit.table.rows.iter().all(|r| r.tenant_id == Some(1)));
            assert!(!app.audit.table.rows.is_empty());
            mask_times(&mut app);
            snap("audit_tenant", size, render(&app, size));
            press(&mut app, "/partners").await;
            assert_eq!(app.audit.table.total, 1);
            // Maintenance is refused to a tenant admin, with the reason.
            press_code(&mut app, KeyCode::Enter).await;
            press(&mut app, ":reset-usage").await;
            press_code(&mut app, KeyCode::Enter).await;
            assert!(app.popup.is_none());
            let toast = app.toast.clone().unwrap().text;
            assert!(
                toast.contains("may not run maintenance tasks (needs super admin)"),
                "{toast}"
            );

            // Staff may not open the audit log and are told why.
            let mut app = app_as(&store, "bob", size, opts()).await;
            press(&mut app, "0").await;
            assert_eq!(app.screen, ScreenId::Dashboard);
            snap("audit_denied", size, render(&app, size));
            let toast = app.toast.clone().unwrap().text;
            assert!(toast.contains("may not view the audit log"), "{toast}");

            // A super admin sees every tenant's rows, and runs maintenance after confirming.
            let mut app = app_as(&store, "root", size, opts()).await;
            press(&mut app, "0").await;
            assert!(app.audit.table.rows.iter().any(|r| r.tenant_id == Some(2)));
            mask_times(&mut app);
            press(&mut app, ":recount-usage").await;
            press_code(&mut app, KeyCode::Enter).await;
            snap("maintenance_confirm", size, render(&app, size));
            press(&mut app, "y").await;
            let toast = app.toast.clone().unwrap().text;
            assert!(toast.starts_with("usage recounted"), "{toast}");
        }
        let rows = store
            .list_audit(
                UserScope::All(all),
                &AuditFilter {
                    search: Some("recount".into()),
                    tenant_id: None,
                },
                Page::first(50),
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "one per size");
        assert_eq!(rows[0].actor, "root");
        assert_eq!(rows[0].action, "tui recount-usage");
        assert!(rows[0].origin.starts_with("cli ") || rows[0].origin.starts_with("tui "));
    })
    .await;
}

/// Audit times change every run: show them as a fixed instant in snapshots.
fn mask_times(app: &mut App) {
    let fixed =
        chrono::NaiveDateTime::parse_from_str("2026-03-04 05:06:07", "%Y-%m-%d %H:%M:%S").unwrap();
    for r in &mut app.audit.table.rows {
        r.created_at = fixed;
        r.origin = "tui ops local".into();
    }
}

/// #8 item 3 in the TUI: a super admin runs clean-logs from the palette after confirming;
/// only logs older than the retention go, and the run is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_logs_from_the_palette() {
    with_sqlite(|store| async move {
        seeded(&store).await;
        let all = Actor::system().all_tenants().unwrap();
        let t = store.tenant_by_domain(&all, "acme.test").await.unwrap();
        let scope = Actor::system().tenant_scope(t.id).unwrap();
        let g = store.create_group(scope, "Old", None).await.unwrap();
        let tpl = store
            .create_template(
                scope,
                &recalliq::db::NewTemplate {
                    name: "Old".into(),
                    subject: "Hi".into(),
                    body_html: Some("<p>Hi</p>".into()),
                    body_text: None,
                    variables: None,
                },
            )
            .await
            .unwrap();
        let b = store
            .create_batch(
                scope,
                &recalliq::db::NewBatch {
                    name: "Old".into(),
                    template_id: tpl.id,
                    group_ids: vec![g.id],
                    ..recalliq::db::NewBatch::default()
                },
            )
            .await
            .unwrap();
        let mut ids = Vec::new();
        for who in ["old@x.test", "new@x.test"] {
            let l = store
                .add_email_log(
                    scope,
                    b.id,
                    &recalliq::db::NewEmailLog {
                        recipient_email: who.into(),
                        recipient_name: None,
                        status: recalliq::domain::EmailStatus::Sent,
                        sent_at: None,
                        error_message: None,
                        smtp_response: Some("250 ok".into()),
                    },
                )
                .await
                .unwrap();
            ids.push(l.id);
        }
        let pool = store.sqlite_pool().unwrap();
        sqlx::query(
            "UPDATE logs_emaillog SET created_at = datetime('now', '-200 days') WHERE id = $1",
        )
        .bind(ids[0])
        .execute(pool)
        .await
        .unwrap();
        let count = || async {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM logs_emaillog")
                .fetch_one(store.sqlite_pool().unwrap())
                .await
                .unwrap()
        };
        let before = count().await;

        let mut app = app_as(&store, "root", (80, 24), opts()).await;
        press(&mut app, ":clean-logs").await;
        press_code(&mut app, KeyCode::Enter).await;
        assert!(app.popup.is_some(), "asks first");
        press(&mut app, "y").await;
        let toast = app.toast.clone().unwrap().text;
        assert!(toast.starts_with("logs cleaned: 1 email logs"), "{toast}");
        assert_eq!(count().await, before - 1);
        assert!(store.get_email_log(scope, ids[0]).await.is_err());
        assert!(store.get_email_log(scope, ids[1]).await.is_ok());
        let rows = store
            .list_audit(
                UserScope::All(all),
                &AuditFilter {
                    search: Some("clean-logs".into()),
                    tenant_id: None,
                },
                Page::first(10),
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
    })
    .await;
}
