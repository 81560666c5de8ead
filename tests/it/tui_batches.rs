//! Batches screen, detail, composer and review, the quit confirmation while the in-process
//! engine sends, and an end-to-end run of the real binary in tmux that composes a batch,
//! starts it and watches the in-process engine deliver it to the test SMTP server.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use recalliq::db::{
    Actor, NewBatch, NewContact, NewTemplate, OutboxSettings, Security, SmtpServer, SmtpSettings,
    Store, TenantScope,
};
use recalliq::engine::{Engine, EngineConfig};
use recalliq::tui::App;
use recalliq::tui::keymap::ScreenId;
use serde_json::json;

use crate::support::smtp::{SinkConfig, SmtpSink};
use crate::support::with_sqlite;
use crate::tui::{SIZES, app_as, opts, press, press_code, render, seed, snap};

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

/// Dates and times vary between runs; snapshots show a placeholder.
fn redact(text: String) -> String {
    let mut out = String::new();
    let b: Vec<char> = text.chars().collect();
    let mut i = 0;
    // YYYY-MM-DD HH:MM
    let shape = "dddd-dd-dd dd:dd";
    while i < b.len() {
        let m = shape.chars().enumerate().all(|(k, c)| {
            b.get(i + k).is_some_and(|x| match c {
                'd' => x.is_ascii_digit(),
                other => *x == other,
            })
        });
        if m {
            out.push_str("YYYY-MM-DD hh:mm");
            i += shape.len();
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

async fn acme(store: &Store) -> TenantScope {
    let all = Actor::system().all_tenants().unwrap();
    let t = store.tenant_by_domain(&all, "acme.test").await.unwrap();
    Actor::system().tenant_scope(t.id).unwrap()
}

/// Acme (from `tui::seed`) with a template, two overlapping groups (one contact lacks the
/// `plan` variable), a draft, a completed batch (sent through the outbox by the engine) and
/// a running one.
async fn seed_batches(store: &Store, outbox: &std::path::Path) -> TenantScope {
    seed(store).await;
    let scope = acme(store).await;
    store
        .set_smtp_settings(
            scope,
            &SmtpSettings::Outbox(OutboxSettings {
                path: outbox.display().to_string(),
                from: None,
                reply_to: None,
            }),
        )
        .await
        .unwrap();
    let tpl = store
        .create_template(
            scope,
            &NewTemplate {
                name: "Welcome".into(),
                subject: "Hello {{ name }}".into(),
                body_html: None,
                body_text: Some("Your plan: {{ plan }} ({{ campaign }})".into()),
                variables: None,
            },
        )
        .await
        .unwrap();
    let customers = store.create_group(scope, "Customers", None).await.unwrap();
    let vip = store.create_group(scope, "VIP", None).await.unwrap();
    for (g, email, plan) in [
        (customers.id, "ann@example.com", Some("gold")),
        (customers.id, "ben@example.com", Some("silver")),
        (vip.id, "ANN@example.com", Some("dup")),
        (vip.id, "cat@example.com", None),
    ] {
        store
            .add_contact(
                scope,
                g,
                &NewContact {
                    email: email.into(),
                    name: Some(email.split('@').next().unwrap().to_lowercase()),
                    variables: plan.map(|p| json!({ "plan": p })),
                },
            )
            .await
            .unwrap();
    }
    let new = |name: &str| NewBatch {
        name: name.into(),
        template_id: tpl.id,
        group_ids: vec![customers.id],
        variables: Some(json!({"campaign": "spring"})),
        scheduled_at: None,
    };
    store
        .create_batch(scope, &new("Spring draft"))
        .await
        .unwrap();
    let done = store
        .create_batch(scope, &new("Welcome wave"))
        .await
        .unwrap();
    store.start_batch(scope, done.id).await.unwrap();
    let engine = Engine::new(
        store.clone(),
        EngineConfig {
            poll: Duration::from_millis(20),
            flush_interval: Duration::from_millis(10),
            ..EngineConfig::default()
        },
    );
    let (_tx, rx) = tokio::sync::watch::channel(false);
    engine.run(rx, true).await.unwrap();
    let running = store.create_batch(scope, &new("Autumn")).await.unwrap();
    store.start_batch(scope, running.id).await.unwrap();
    scope
}

async fn app_for(store: &Store, user: &str, size: (u16, u16)) -> App {
    let mut app = app_as(store, user, size, opts()).await;
    app.batches.utc_offset = chrono::FixedOffset::east_opt(0);
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_of_batches_detail_composer_and_review() {
    with_sqlite(|store| async move {
        let outbox = tempfile::tempdir().unwrap();
        let scope = seed_batches(&store, outbox.path()).await;
        // One hard bounce and one unsubscribe reported back for the finished batch (id 2).
        for (email, kind) in [
            ("ann@example.com", "hard"),
            ("ben@example.com", "unsubscribe"),
        ] {
            store
                .record_bounce_event(
                    scope,
                    &recalliq::db::NewBounceEvent {
                        batch_id: Some(2),
                        log_id: None,
                        email,
                        kind,
                        status_code: Some("5.1.1"),
                        diagnostic: None,
                        source: "test",
                    },
                )
                .await
                .unwrap();
        }
        for size in SIZES {
            let mut app = app_for(&store, "alice", size).await;
            press(&mut app, "8").await;
            assert_eq!(app.screen, ScreenId::Batches);
            snap("batches_list", size, render(&app, size));

            // The completed batch's detail.
            press(&mut app, "j").await;
            press_code(&mut app, KeyCode::Enter).await;
            assert_eq!(app.screen, ScreenId::BatchDetail);
            let detail = redact(render(&app, size));
            assert!(detail.contains("Welcome wave"), "{detail}");
            assert!(detail.contains("completed"), "{detail}");
            assert!(
                detail.contains("1 hard   0 soft   unsubscribed 1"),
                "bounces shown: {detail}"
            );
            snap("batches_detail", size, detail);
            // `l` opens the log viewer on that batch; the batches tab brings us back.
            press(&mut app, "l").await;
            assert_eq!(app.screen, ScreenId::Logs);
            assert_eq!(app.logs.batch.as_ref().map(|b| b.id), Some(2));
            press(&mut app, "8").await;
            assert_eq!(app.screen, ScreenId::Batches);

            // The composer: name, template, two groups, a variable.
            press(&mut app, "n").await;
            assert_eq!(app.screen, ScreenId::Composer);
            press(&mut app, "Summer sale").await;
            press_code(&mut app, KeyCode::Tab).await; // template (Welcome)
            press_code(&mut app, KeyCode::Tab).await; // groups
            press(&mut app, " j ").await;
            press_code(&mut app, KeyCode::Tab).await; // variables
            press(&mut app, "campaign=summer").await;
            press_code(&mut app, KeyCode::Enter).await;
            snap("batches_composer", size, render(&app, size));

            // Saving without a name part fails inline; here everything is there.
            app.handle_key(ctrl('s')).await;
            let review = render(&app, size);
            assert!(review.contains("Review batch"), "{review}");
            snap("batches_review", size, redact(review));
            let id = app.composer.as_ref().unwrap().batch_id.unwrap();
            // cat@example.com has no `plan`: the start is refused and the draft stays.
            press(&mut app, "s").await;
            let refused = render(&app, size);
            assert!(refused.contains("cannot start batch"), "{refused}");
            assert_eq!(store.get_batch(scope, id).await.unwrap().status, "draft");
            // Esc keeps the draft and returns to the list.
            press_code(&mut app, KeyCode::Esc).await;
            assert_eq!(app.screen, ScreenId::Batches);
            store.delete_draft_batch(scope, id).await.unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_are_confirmed_denied_with_reasons_and_reach_the_store() {
    with_sqlite(|store| async move {
        let outbox = tempfile::tempdir().unwrap();
        let scope = seed_batches(&store, outbox.path()).await;
        let size = (100, 30);
        // A read-only user sees why.
        let mut carol = app_for(&store, "carol", size).await;
        press(&mut carol, "8n").await;
        let s = render(&carol, size);
        assert!(s.contains("may not edit batches"), "{s}");
        press(&mut carol, "X").await;
        assert!(render(&carol, size).contains("may not start, pause or cancel batches"));

        let mut app = app_for(&store, "bob", size).await;
        press(&mut app, "8").await;
        // Row 1 draft, 2 completed, 3 running (ids 1..3).
        press(&mut app, "p").await;
        assert!(render(&app, size).contains("cannot become paused"));
        press(&mut app, "r").await;
        assert!(render(&app, size).contains("resume works only on paused"));
        // Duplicate the draft, then delete the copy (confirmed).
        press(&mut app, "c").await;
        assert!(render(&app, size).contains("duplicated as draft #4"));
        press(&mut app, "G").await;
        press(&mut app, "x").await;
        assert!(render(&app, size).contains("Delete draft batch #4"));
        press(&mut app, "y").await;
        assert!(store.get_batch(scope, 4).await.is_err());
        // Pause and resume the running batch; cancel it (confirmed).
        press(&mut app, "G").await;
        press(&mut app, "p").await;
        assert_eq!(store.get_batch(scope, 3).await.unwrap().status, "paused");
        press(&mut app, "r").await;
        assert_eq!(store.get_batch(scope, 3).await.unwrap().status, "running");
        press(&mut app, "X").await;
        let s = render(&app, size);
        assert!(s.contains("Cancel batch #3 Autumn?"), "{s}");
        press(&mut app, "n").await;
        assert_eq!(store.get_batch(scope, 3).await.unwrap().status, "running");
        press(&mut app, "Xy").await;
        assert_eq!(store.get_batch(scope, 3).await.unwrap().status, "cancelled");
        // Retry failed on the completed batch runs it again (nothing failed: 0 queued).
        press(&mut app, "gj").await;
        press(&mut app, "F").await;
        assert!(render(&app, size).contains("0 failed recipients queued again"));
        // `s` on a draft opens its review page.
        press(&mut app, "g").await;
        press(&mut app, "s").await;
        assert_eq!(app.screen, ScreenId::Composer);
        let s = render(&app, size);
        assert!(s.contains("2 unique recipients"), "{s}");
        // Not blocked: start it.
        press(&mut app, "s").await;
        assert_eq!(app.screen, ScreenId::Batches);
        assert_eq!(store.get_batch(scope, 1).await.unwrap().status, "running");
        assert_eq!(store.queue_counts(scope, 1).await.unwrap().pending, 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_while_sending_asks_then_pauses_with_nothing_in_sending() {
    with_sqlite(|store| async move {
        seed(&store).await;
        let scope = acme(&store).await;
        let sink = SmtpSink::start(SinkConfig {
            reply_delay: Duration::from_millis(40),
            ..SinkConfig::default()
        });
        let mut server = SmtpServer::new("127.0.0.1", sink.port(), Security::None);
        server.connections = 1;
        store
            .set_smtp_settings(scope, &SmtpSettings::Smtp(server))
            .await
            .unwrap();
        let tpl = store
            .create_template(
                scope,
                &NewTemplate {
                    name: "T".into(),
                    subject: "Hi".into(),
                    body_html: None,
                    body_text: Some("Hello {{ name }}".into()),
                    variables: None,
                },
            )
            .await
            .unwrap();
        let g = store.create_group(scope, "Many", None).await.unwrap();
        for i in 0..200 {
            store
                .add_contact(
                    scope,
                    g.id,
                    &NewContact {
                        email: format!("u{i}@example.com"),
                        name: Some(format!("U{i}")),
                        variables: None,
                    },
                )
                .await
                .unwrap();
        }
        let b = store
            .create_batch(
                scope,
                &NewBatch {
                    name: "Big".into(),
                    template_id: tpl.id,
                    group_ids: vec![g.id],
                    ..NewBatch::default()
                },
            )
            .await
            .unwrap();
        store.start_batch(scope, b.id).await.unwrap();
        for size in SIZES {
            let mut app = app_for(&store, "alice", size).await;
            app.attach_engine(Engine::new(
                store.clone(),
                EngineConfig {
                    chunk: 4,
                    poll: Duration::from_millis(20),
                    flush_interval: Duration::from_millis(10),
                    ..EngineConfig::default()
                },
            ));
            let before = sink.messages().len();
            sink.wait_for(before + 2, Duration::from_secs(10));
            // The users screen behind the question: nothing on it moves while the engine
            // sends (the dashboard's quota line would).
            press(&mut app, "3").await;
            press(&mut app, "q").await;
            assert!(!app.quit, "asks first while sending");
            snap("batches_quit_confirm", size, render(&app, size));
            press(&mut app, "y").await;
            assert!(app.quit);
            assert!(app.engine.is_none(), "engine stopped");
            let batch = store.get_batch(scope, b.id).await.unwrap();
            assert_eq!(batch.status, "paused");
            let q = store.queue_counts(scope, b.id).await.unwrap();
            assert_eq!(q.sending, 0, "nothing left in sending: {q:?}");
            assert_eq!(
                q.sent as usize,
                sink.messages().len(),
                "every send recorded"
            );
            assert!(q.pending > 0, "stopped before the end: {q:?}");
            store.resume_batch(scope, b.id).await.unwrap();
        }
        // Without an engine in the process, q quits at once.
        let mut app = app_for(&store, "alice", (80, 24)).await;
        press(&mut app, "q").await;
        assert!(app.quit);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_keeps_user_and_tenant_visible_at_80_columns() {
    with_sqlite(|store| async move {
        seed(&store).await;
        for user in ["alice", "bob", "carol"] {
            let app = app_for(&store, user, (80, 24)).await;
            let top = render(&app, (80, 24)).lines().next().unwrap().to_string();
            assert!(top.contains(user), "{top}");
            assert!(top.contains("acme.test"), "{top}");
            assert!(top.contains(" 8 "), "{top}");
        }
    })
    .await;
}

// ---- the real binary in tmux, with the in-process engine and the test SMTP server ----

#[test]
fn compose_and_send_in_tmux_with_the_in_process_engine() {
    use crate::tui::{Tmux, script, tmux_available, wait_file};
    if !tmux_available() {
        eprintln!("NOTICE: tmux not installed; end-to-end batches test skipped");
        return;
    }
    let sink = SmtpSink::start(SinkConfig::default());
    let env = crate::support::cli::Env::new();
    env.run(&["migrate"], None).ok();
    env.create_tenant("Acme", "acme.test").ok();
    env.run(
        &[
            "user",
            "create",
            "--username",
            "staff1",
            "--email",
            "s@acme.test",
            "--role",
            "staff",
            "--tenant",
            "acme.test",
            "--password-stdin",
        ],
        Some("staffpass1\n"),
    )
    .ok();
    env.run(
        &[
            "tenant",
            "sender",
            "add",
            "--tenant",
            "acme.test",
            "news@acme.test",
        ],
        None,
    )
    .ok();
    env.smtp_local("acme.test", &sink.port().to_string(), &[])
        .ok();
    env.run(
        &[
            "group",
            "create",
            "--tenant",
            "acme.test",
            "--name",
            "Readers",
        ],
        None,
    )
    .ok();
    for i in 0..5 {
        env.run(
            &[
                "contact",
                "add",
                "--tenant",
                "acme.test",
                "--group",
                "Readers",
                "--email",
                &format!("reader{i}@example.com"),
                "--var",
                "plan=gold",
            ],
            None,
        )
        .ok();
    }
    let html = env.file("t.html", b"<p>Hi, plan {{ plan }}, {{ campaign }}</p>");
    env.run(
        &[
            "template",
            "create",
            "--tenant",
            "acme.test",
            "--name",
            "News",
            "--subject",
            "News for {{ plan }}",
            "--html-file",
            &html,
        ],
        None,
    )
    .ok();

    let tmux = Tmux::start(env.dir.path(), &script(&env, "--user staff1"));
    tmux.wait_for("Password");
    tmux.text("staffpass1");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Dashboard");
    tmux.text("8");
    tmux.wait_for("0 rows");
    tmux.text("n");
    tmux.wait_for("New batch");
    tmux.text("Weekly");
    tmux.keys(&["Tab", "Tab", "Space", "Tab"]);
    tmux.text("campaign=weekly");
    tmux.keys(&["Enter", "C-s"]);
    tmux.wait_for("Review batch #1 Weekly");
    tmux.wait_for("5 unique recipients");
    tmux.text("s");
    // No worker runs: only the engine inside the TUI can deliver these. (The "started" toast
    // may already be replaced by "completed" when the screen is captured.)
    let got = sink.wait_for(5, Duration::from_secs(20));
    assert_eq!(got.len(), 5);
    tmux.wait_for("completed");
    let show = env.json(&["batch", "show", "1", "--json"]);
    assert_eq!(show["status"], "completed");
    assert_eq!(show["sent_count"], 5);
    assert_eq!(
        show["sent_count"].as_u64().unwrap() as usize,
        sink.messages().len()
    );
    assert!(got[0].data.contains("weekly"), "{}", got[0].data);
    tmux.text("q");
    let exit = wait_file(&env.dir.path().join("exit.txt"));
    assert!(exit.contains("exit=0"), "{exit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_updates_from_engine_events_and_database_polling() {
    use recalliq::engine::EngineEvent;
    use recalliq::tui::ExternalEvent;
    use std::time::Instant;
    with_sqlite(|store| async move {
        let outbox = tempfile::tempdir().unwrap();
        let scope = seed_batches(&store, outbox.path()).await;
        let size = (120, 20);
        let mut app = app_for(&store, "alice", size).await;
        press(&mut app, "8").await;
        // An engine event moves the running batch's counts without a query.
        app.handle_external(ExternalEvent::Engine(EngineEvent::Progress {
            batch_id: 3,
            sent: 1,
            failed: 0,
            open: 1,
        }))
        .await;
        let row = |app: &App| {
            render(app, size)
                .lines()
                .find(|l| l.contains("Autumn"))
                .unwrap()
                .to_string()
        };
        let r = row(&app);
        assert!(r.contains(" 50%"), "{r}");
        // Another process pauses it: the next poll (a second later) shows it; none sooner.
        store
            .pause_batch(scope, 3, Some("paused elsewhere"))
            .await
            .unwrap();
        let t0 = Instant::now();
        app.poll_batches(t0 + Duration::from_secs(2)).await;
        assert!(row(&app).contains("paused"), "{}", row(&app));
        store.resume_batch(scope, 3).await.unwrap();
        app.poll_batches(t0 + Duration::from_millis(2300)).await;
        assert!(row(&app).contains("paused"), "polled again within a second");
        app.poll_batches(t0 + Duration::from_secs(4)).await;
        assert!(row(&app).contains("running"), "{}", row(&app));
        // Not polled while another screen is shown.
        press(&mut app, "1").await;
        store.cancel_batch(scope, 3).await.unwrap();
        app.poll_batches(t0 + Duration::from_secs(9)).await;
        assert_eq!(app.batches.table.rows[2].status, "running");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composer_schedules_in_local_time_and_refuses_bad_input() {
    with_sqlite(|store| async move {
        let outbox = tempfile::tempdir().unwrap();
        let scope = seed_batches(&store, outbox.path()).await;
        let size = (100, 30);
        let mut app = app_for(&store, "bob", size).await;
        app.batches.utc_offset = chrono::FixedOffset::east_opt(2 * 3600);
        press(&mut app, "8n").await;
        // Nothing chosen: saving says what is missing.
        app.handle_key(ctrl('s')).await;
        assert!(render(&app, size).contains("the batch needs a name"));
        press(&mut app, "Later").await;
        app.handle_key(ctrl('s')).await;
        assert!(render(&app, size).contains("choose at least one group"));
        press_code(&mut app, KeyCode::Tab).await;
        press_code(&mut app, KeyCode::Tab).await;
        press(&mut app, " ").await;
        press_code(&mut app, KeyCode::Tab).await;
        press(&mut app, "bad var").await;
        press_code(&mut app, KeyCode::Enter).await;
        assert!(render(&app, size).contains("write KEY=VALUE"));
        for _ in 0..7 {
            press_code(&mut app, KeyCode::Backspace).await;
        }
        press(&mut app, "campaign=later").await;
        press_code(&mut app, KeyCode::Enter).await;
        press_code(&mut app, KeyCode::Tab).await; // schedule
        assert!(render(&app, size).contains("UTC+02:00"));
        press(&mut app, "2001-01-01 10:00").await;
        app.handle_key(ctrl('s')).await;
        assert!(render(&app, size).contains("is in the past"));
        for _ in 0.."2001-01-01 10:00".len() {
            press_code(&mut app, KeyCode::Backspace).await;
        }
        press(&mut app, "2099-06-01 10:30").await;
        app.handle_key(ctrl('s')).await;
        let s = render(&app, size);
        assert!(
            s.contains("scheduled for 2099-06-01 10:30 UTC+02:00"),
            "{s}"
        );
        let id = app.composer.as_ref().unwrap().batch_id.unwrap();
        let b = store.get_batch(scope, id).await.unwrap();
        assert_eq!(b.status, "scheduled");
        assert_eq!(
            b.scheduled_at.unwrap().to_string(),
            "2099-06-01 08:30:00",
            "stored in UTC"
        );
        assert_eq!(b.variables.unwrap().0, json!({"campaign": "later"}));
        // Back to editing replaces the draft instead of leaving a second one.
        press(&mut app, "e").await;
        press_code(&mut app, KeyCode::BackTab).await; // variables
        press_code(&mut app, KeyCode::BackTab).await; // groups
        press(&mut app, "j ").await; // add VIP
        app.handle_key(ctrl('s')).await;
        let new_id = app.composer.as_ref().unwrap().batch_id.unwrap();
        assert_ne!(new_id, id);
        assert!(
            store.get_batch(scope, id).await.is_err(),
            "old draft replaced"
        );
        assert_eq!(store.batch_groups(scope, new_id).await.unwrap().len(), 2);
    })
    .await;
}

/// On Postgres the screen hears of another process's status change through LISTEN/NOTIFY
/// (the migration 5 trigger) at once, without waiting for its next poll; SQLite has no
/// notifications and keeps polling.
mod batch_notifications {
    use super::*;
    use recalliq::tui::ExternalEvent;

    async fn case(store: Store) {
        let outbox = tempfile::tempdir().unwrap();
        let scope = seed_batches(&store, outbox.path()).await;
        let size = (120, 20);
        let mut app = app_for(&store, "alice", size).await;
        press(&mut app, "8").await;
        let row = |app: &App| {
            render(app, size)
                .lines()
                .find(|l| l.contains("Autumn"))
                .unwrap()
                .to_string()
        };
        assert!(row(&app).contains("running"), "{}", row(&app));
        // Just polled: a poll now would not reload.
        app.poll_batches(std::time::Instant::now()).await;
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        recalliq::tui::spawn_batch_listener(store.clone(), tx);
        let other = store.clone();
        // The listener needs a moment to LISTEN; pause from "another process" until it
        // hears, at most a few seconds.
        let mut heard = None;
        if store.backend() == recalliq::db::Backend::Postgres {
            for attempt in 0..50 {
                if attempt % 2 == 0 {
                    let _ = other.pause_batch(scope, 3, Some("paused elsewhere")).await;
                    let _ = other.resume_batch(scope, 3).await;
                    other
                        .pause_batch(scope, 3, Some("paused elsewhere"))
                        .await
                        .ok();
                }
                if let Ok(Some(ev)) =
                    tokio::time::timeout(Duration::from_millis(100), rx.recv()).await
                {
                    heard = Some(ev);
                    break;
                }
            }
            let ev = heard.expect("no notification within 5 s");
            assert!(
                matches!(ev, ExternalEvent::BatchChanged(ref c) if c.batch_id == 3),
                "{ev:?}"
            );
            // Make sure the latest state is paused, then apply the event: shown at once.
            while let Ok(Some(_)) =
                tokio::time::timeout(Duration::from_millis(300), rx.recv()).await
            {}
            let b = store.get_batch(scope, 3).await.unwrap();
            assert_eq!(b.status, "paused");
            app.handle_external(ev).await;
            assert!(row(&app).contains("paused"), "{}", row(&app));
        } else {
            store
                .pause_batch(scope, 3, Some("paused elsewhere"))
                .await
                .unwrap();
            let none = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
            assert!(
                matches!(none, Ok(None) | Err(_)),
                "SQLite has no notifications: {none:?}"
            );
            assert!(row(&app).contains("running"), "{}", row(&app));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        crate::support::with_sqlite(|store| async move { case(store).await }).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        crate::support::with_postgres(|store| async move { case(store).await }).await;
    }
}
