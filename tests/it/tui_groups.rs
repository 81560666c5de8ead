//! TUI tests of the groups, contacts, import and suppression screens: snapshots at 80x24
//! and 120x40 and behaviour checked through the store.

use crossterm::event::KeyCode;
use recalliq::db::{Actor, NewContact, Store, TenantScope};
use recalliq::tui::Options;
use serde_json::json;

use crate::support::with_sqlite;
use crate::tui::{SIZES, app_as, opts, press, press_code, render, seed, snap};

async fn acme(store: &Store) -> TenantScope {
    let all = Actor::system().all_tenants().unwrap();
    let t = store.tenant_by_domain(&all, "acme.test").await.unwrap();
    Actor::system().tenant_scope(t.id).unwrap()
}

/// Two groups, three contacts in the first, two suppressions.
async fn seed_groups(store: &Store) -> TenantScope {
    let scope = acme(store).await;
    let g = store
        .create_group(scope, "Customers", Some("paying customers"))
        .await
        .unwrap();
    store.create_group(scope, "Newsletter", None).await.unwrap();
    for (email, name, vars) in [
        ("ann@example.com", "Ann", Some(json!({"city": "Oslo"}))),
        ("ben@example.com", "Ben", None),
        ("dana@example.com", "Dana", Some(json!({"plan": "gold"}))),
    ] {
        store
            .add_contact(
                scope,
                g.id,
                &NewContact {
                    email: email.into(),
                    name: Some(name.into()),
                    variables: vars,
                },
            )
            .await
            .unwrap();
    }
    store
        .suppress(
            scope,
            "gone@example.com",
            "bounced",
            Some("hard bounce"),
            None,
        )
        .await
        .unwrap();
    store
        .suppress(scope, "nope@example.com", "unsubscribed", None, None)
        .await
        .unwrap();
    scope
}

const CSV: &str = "email,name,city\nzoe@example.com,Zoe,Rome\nnot-an-address,Bad,Paris\nann@example.com,Ann B,Oslo\n";

fn csv_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("contacts.csv"), CSV).unwrap();
    std::fs::create_dir(dir.path().join("old")).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_of_groups_contacts_import_and_suppression() {
    with_sqlite(|store| async move {
        seed(&store).await;
        seed_groups(&store).await;
        let dir = csv_dir();
        let shown = dir.path().display().to_string();
        for size in SIZES {
            let mut app = app_as(&store, "alice", size, opts()).await;
            app.import_dir = Some(dir.path().to_path_buf());
            press(&mut app, "4").await;
            snap("groups", size, render(&app, size));
            press_code(&mut app, KeyCode::Enter).await;
            press(&mut app, "/an").await;
            snap("contacts_filter", size, render(&app, size));
            press_code(&mut app, KeyCode::Esc).await;
            press(&mut app, "i").await;
            snap(
                "import_picker",
                size,
                render(&app, size).replace(&shown, "<dir>"),
            );
            press_code(&mut app, KeyCode::Down).await;
            press_code(&mut app, KeyCode::Down).await;
            press_code(&mut app, KeyCode::Enter).await;
            snap("import_preview", size, render(&app, size));
            press_code(&mut app, KeyCode::Esc).await;
            press(&mut app, "5").await;
            snap("suppression", size, render(&app, size));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_and_contact_writes_reach_the_store() {
    with_sqlite(|store| async move {
        seed(&store).await;
        let scope = seed_groups(&store).await;
        let size = (120, 40);
        let mut app = app_as(&store, "alice", size, opts()).await;
        // Create a group.
        press(&mut app, "4n").await;
        press(&mut app, "VIP").await;
        press_code(&mut app, KeyCode::Tab).await;
        press(&mut app, "top buyers").await;
        press_code(&mut app, KeyCode::Enter).await;
        assert!(app.popup.is_none(), "form closed: {:?}", app.popup);
        let vip = store.find_group(scope, "VIP").await.unwrap();
        assert_eq!(vip.description.as_deref(), Some("top buyers"));
        // Open Customers (the first row), add a contact.
        press_code(&mut app, KeyCode::Home).await;
        press_code(&mut app, KeyCode::Enter).await;
        assert_eq!(app.screen, recalliq::tui::keymap::ScreenId::Contacts);
        let customers = store.find_group(scope, "Customers").await.unwrap();
        press(&mut app, "n").await;
        press(&mut app, "eve@example.com").await;
        press_code(&mut app, KeyCode::Tab).await;
        press(&mut app, "Eve").await;
        press_code(&mut app, KeyCode::Enter).await;
        assert!(app.popup.is_none(), "form closed: {:?}", app.popup);
        assert_eq!(
            store
                .count_contacts(scope, customers.id, None)
                .await
                .unwrap(),
            4
        );
        // Edit the variables of the first contact (ann).
        press_code(&mut app, KeyCode::Home).await;
        press(&mut app, "e").await;
        press_code(&mut app, KeyCode::Tab).await;
        for _ in 0.."city=Oslo".len() {
            press_code(&mut app, KeyCode::Backspace).await;
        }
        press(&mut app, "city=Bergen; tier=2").await;
        press_code(&mut app, KeyCode::Enter).await;
        assert!(app.popup.is_none(), "form closed: {:?}", app.popup);
        let ids = store
            .contact_ids_by_email(scope, customers.id)
            .await
            .unwrap();
        let ann = store
            .get_contact(scope, ids["ann@example.com"])
            .await
            .unwrap();
        assert_eq!(
            ann.variables.map(|j| j.0),
            Some(json!({"city": "Bergen", "tier": "2"}))
        );
        // A bad variables line is refused in the form.
        press(&mut app, "e").await;
        press_code(&mut app, KeyCode::Tab).await;
        press(&mut app, "; oops").await;
        press_code(&mut app, KeyCode::Enter).await;
        assert!(app.popup.is_some(), "form stays open on a bad line");
        press_code(&mut app, KeyCode::Esc).await;
        // Tag ann and ben, move them to the first other group (Newsletter).
        press_code(&mut app, KeyCode::Home).await;
        press(&mut app, "  ").await;
        press(&mut app, "m").await;
        press_code(&mut app, KeyCode::Enter).await;
        assert!(app.popup.is_none(), "form closed: {:?}", app.popup);
        let news = store.find_group(scope, "Newsletter").await.unwrap();
        assert_eq!(store.count_contacts(scope, news.id, None).await.unwrap(), 2);
        assert_eq!(
            store
                .count_contacts(scope, customers.id, None)
                .await
                .unwrap(),
            2
        );
        // Deactivate and delete the selected contact.
        press_code(&mut app, KeyCode::Home).await;
        press(&mut app, "dy").await;
        let left = store
            .contact_ids_by_email(scope, customers.id)
            .await
            .unwrap();
        let dana = store
            .get_contact(scope, left["dana@example.com"])
            .await
            .unwrap();
        assert!(!dana.is_active);
        press(&mut app, "xy").await;
        assert_eq!(
            store
                .count_contacts(scope, customers.id, None)
                .await
                .unwrap(),
            1
        );
        // Esc goes back to the groups; deactivate and delete VIP.
        press_code(&mut app, KeyCode::Esc).await;
        assert_eq!(app.screen, recalliq::tui::keymap::ScreenId::Groups);
        press_code(&mut app, KeyCode::End).await;
        press(&mut app, "dy").await;
        assert!(!store.get_group(scope, vip.id).await.unwrap().is_active);
        press(&mut app, "xy").await;
        assert!(store.get_group(scope, vip.id).await.is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_import_shows_invalid_rows_and_writes_all_or_skips() {
    with_sqlite(|store| async move {
        seed(&store).await;
        let scope = seed_groups(&store).await;
        let customers = store.find_group(scope, "Customers").await.unwrap();
        let dir = csv_dir();
        let size = (120, 40);
        let mut app = app_as(&store, "alice", size, opts()).await;
        app.import_dir = Some(dir.path().to_path_buf());
        press(&mut app, "4").await;
        press_code(&mut app, KeyCode::Enter).await;
        press(&mut app, "i").await;
        // Typing filters the entries: only contacts.csv is left.
        press(&mut app, "csv").await;
        press_code(&mut app, KeyCode::Enter).await;
        let screen = render(&app, size);
        assert!(screen.contains("1 new, 1 updated"), "{screen}");
        assert!(screen.contains("line 3"), "{screen}");
        // Enter refuses (all or nothing); nothing written.
        press_code(&mut app, KeyCode::Enter).await;
        assert!(app.popup.is_some());
        assert_eq!(
            store
                .count_contacts(scope, customers.id, None)
                .await
                .unwrap(),
            3
        );
        // Skip the invalid row, through the event channel like the real loop.
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        app.events = Some(tx);
        press(&mut app, "s").await;
        let mut progress = 0;
        while let Some(ev) = rx.recv().await {
            let done = matches!(ev, recalliq::tui::ExternalEvent::ImportDone(_));
            if !done {
                progress += 1;
            }
            app.handle_external(ev).await;
            if done {
                break;
            }
        }
        assert!(progress > 0, "progress reported");
        assert!(app.popup.is_none());
        assert_eq!(
            store
                .count_contacts(scope, customers.id, None)
                .await
                .unwrap(),
            4
        );
        let ids = store
            .contact_ids_by_email(scope, customers.id)
            .await
            .unwrap();
        let ann = store
            .get_contact(scope, ids["ann@example.com"])
            .await
            .unwrap();
        assert_eq!(ann.name.as_deref(), Some("Ann B"));
        // Export the group next to the file.
        let out = dir.path().join("out.csv");
        press(&mut app, "E").await;
        for _ in 0.."Customers.csv".len() {
            press_code(&mut app, KeyCode::Backspace).await;
        }
        press(&mut app, &out.display().to_string()).await;
        press_code(&mut app, KeyCode::Enter).await;
        assert!(app.popup.is_none(), "form closed: {:?}", app.popup);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains("zoe@example.com"), "{text}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppression_add_remove_and_readonly() {
    with_sqlite(|store| async move {
        seed(&store).await;
        let scope = seed_groups(&store).await;
        let size = (80, 24);
        let mut app = app_as(&store, "bob", size, opts()).await;
        press(&mut app, "5n").await;
        press(&mut app, "spam@example.com").await;
        press_code(&mut app, KeyCode::Enter).await;
        assert!(app.popup.is_none(), "form closed: {:?}", app.popup);
        assert!(
            store
                .is_suppressed(scope, "spam@example.com")
                .await
                .unwrap()
        );
        // The list is ordered by id: the new one is last.
        press_code(&mut app, KeyCode::End).await;
        press(&mut app, "xy").await;
        assert!(
            !store
                .is_suppressed(scope, "spam@example.com")
                .await
                .unwrap()
        );
        // A plain user and a read-only session are told why.
        let mut app = app_as(&store, "carol", size, opts()).await;
        press(&mut app, "4n").await;
        assert!(app.popup.is_none());
        let toast = app.toast.clone().unwrap().text;
        assert!(toast.contains("denied") || toast.contains("not"), "{toast}");
        let mut app = app_as(
            &store,
            "alice",
            size,
            Options {
                readonly: true,
                ..opts()
            },
        )
        .await;
        press(&mut app, "5n").await;
        assert!(app.popup.is_none());
        assert!(app.toast.clone().unwrap().text.contains("read-only"));
    })
    .await;
}

/// #4 item 1: deleting a group that a running batch uses is refused with the reason in the
/// status line, and nothing is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_group_in_use_is_refused_with_the_reason() {
    with_sqlite(|store| async move {
        seed(&store).await;
        let scope = seed_groups(&store).await;
        let customers = store.find_group(scope, "Customers").await.unwrap();
        let t = store
            .create_template(
                scope,
                &recalliq::db::NewTemplate {
                    name: "Hello".into(),
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
                    name: "Spring sale".into(),
                    template_id: t.id,
                    group_ids: vec![customers.id],
                    variables: None,
                    scheduled_at: None,
                },
            )
            .await
            .unwrap();
        let (running, _) = store.start_batch(scope, b.id).await.unwrap();
        assert_eq!(running.status, "running");

        let size = (80, 24);
        let mut app = app_as(&store, "alice", size, opts()).await;
        press(&mut app, "4").await;
        press_code(&mut app, KeyCode::Home).await;
        press(&mut app, "x").await;
        assert!(app.popup.is_some(), "delete asks first");
        press(&mut app, "y").await;
        let screen = render(&app, size);
        assert!(
            screen.contains("is used by running batch"),
            "the refusal is shown: {screen}"
        );
        snap("groups_delete_refused", size, screen);
        let still = store.get_group(scope, customers.id).await.unwrap();
        assert_eq!(still.name, "Customers");
        assert_eq!(
            store
                .count_contacts(scope, customers.id, None)
                .await
                .unwrap(),
            3
        );
    })
    .await;
}
