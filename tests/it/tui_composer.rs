//! The batch composer (issues #6 and #11): the review of a large group runs in the
//! background while frames keep drawing and Esc cancels it; the review page shows the
//! pre-flight lines of `recalliq batch check` and a pre-flight block refuses the start; the
//! template and group pickers search the store, so the 600th of 650 groups can be picked
//! by typing its name.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use recalliq::csvio::ImportRow;
use recalliq::db::{
    Actor, NewDkimKey, NewTemplate, OutboxSettings, SmtpSettings, Store, TenantScope, TenantUpdate,
};
use recalliq::dkim::{Algorithm, PrivateKey};
use recalliq::secrets::SecretKey;
use recalliq::tui::keymap::ScreenId;
use recalliq::tui::screens::composer::{PICK_LIMIT, Step};
use recalliq::tui::{App, ExternalEvent, Options};
use serde_json::json;

use crate::store_test;
use crate::support::with_sqlite;
use crate::tui::{app_as, opts, press, press_code, render, seed, snap};

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

/// Acme (from `tui::seed`) with a template and the outbox transport.
async fn acme(store: &Store, outbox: &std::path::Path) -> TenantScope {
    seed(store).await;
    let all = Actor::system().all_tenants().unwrap();
    let t = store.tenant_by_domain(&all, "acme.test").await.unwrap();
    let scope = Actor::system().tenant_scope(t.id).unwrap();
    store
        .create_template(
            scope,
            &NewTemplate {
                name: "Welcome".into(),
                subject: "Hello {{ name }}".into(),
                body_html: None,
                body_text: Some("Hi {{ name }}, unsubscribe: {{ unsubscribe_url }}".into()),
                variables: Some(json!(["name"])),
            },
        )
        .await
        .unwrap();
    store
        .add_tenant_email(scope, "news@acme.test", None)
        .await
        .unwrap();
    store
        .set_smtp_settings(
            scope,
            &SmtpSettings::Outbox(OutboxSettings {
                path: outbox.display().to_string(),
                from: Some("news@acme.test".into()),
                reply_to: None,
            }),
        )
        .await
        .unwrap();
    scope
}

/// A group of `n` contacts written with one bulk import.
async fn big_group(store: &Store, scope: TenantScope, name: &str, n: usize) -> i32 {
    let g = store.create_group(scope, name, None).await.unwrap();
    let rows: Vec<ImportRow> = (0..n)
        .map(|i| ImportRow {
            line: i as u64 + 2,
            email: format!("c{i:06}@example.com"),
            name: Some(format!("C{i}")),
            variables: None,
        })
        .collect();
    let counts = store
        .import_contacts(scope, g.id, &rows, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(counts.new, n, "{counts:?}");
    g.id
}

/// Batches, `n` (new batch), a name, the first template, the first group chosen.
async fn compose(app: &mut App, name: &str) {
    press(app, "8n").await;
    assert_eq!(app.screen, ScreenId::Composer, "{:?}", app.toast);
    press(app, name).await;
    press_code(app, KeyCode::Tab).await; // template
    press_code(app, KeyCode::Tab).await; // groups
    press(app, " ").await;
}

fn reviewing(app: &App) -> bool {
    app.composer.as_ref().is_some_and(|c| c.reviewing.is_some())
}

store_test!(
    review_of_20k_contacts_runs_in_the_background_and_esc_cancels,
    |store| async move {
        let outbox = tempfile::tempdir().unwrap();
        let scope = acme(&store, outbox.path()).await;
        big_group(&store, scope, "Everyone", 20_000).await;
        let size = (100, 30);
        let mut app = app_as(&store, "alice", size, opts()).await;
        // As the event loop does: background work reports over this channel.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<ExternalEvent>(64);
        app.events = Some(tx);
        compose(&mut app, "Big one").await;

        // Ctrl-S saves the draft and returns at once: the review runs in a task.
        app.handle_key(ctrl('s')).await;
        assert!(
            reviewing(&app),
            "the review did not start in the background"
        );
        let frame = render(&app, size);
        assert!(frame.contains("reviewing… 0 recipients"), "{frame}");
        assert!(frame.contains("esc cancels"), "{frame}");

        // Progress arrives as an event before the result; applied, it is drawn.
        let ev = tokio::time::timeout(Duration::from_secs(120), rx.recv())
            .await
            .expect("review events")
            .expect("channel open");
        assert!(
            matches!(
                ev,
                ExternalEvent::Review(recalliq::tui::event::ReviewEvent::Progress { .. })
            ),
            "{ev:?}"
        );
        app.handle_external(ev).await;
        assert!(reviewing(&app), "still reviewing after a progress event");
        let seen = app
            .composer
            .as_ref()
            .unwrap()
            .reviewing
            .as_ref()
            .unwrap()
            .seen;
        assert!(seen > 0 && seen < 20_000, "{seen}");
        let frame = render(&app, size);
        assert!(
            frame.contains(&format!("reviewing… {seen} recipients")),
            "{frame}"
        );
        // Keys are handled while the review runs: Esc cancels it.
        press_code(&mut app, KeyCode::Esc).await;
        assert!(!reviewing(&app));
        let c = app.composer.as_ref().unwrap();
        assert_eq!(c.step, Step::Edit, "back to the form");
        assert!(c.review.is_none());
        // Whatever the cancelled task still sent is ignored.
        while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
            app.handle_external(ev).await;
        }
        assert!(app.composer.as_ref().unwrap().review.is_none());

        // Again, to the end this time.
        app.handle_key(ctrl('s')).await;
        assert!(reviewing(&app));
        let mut last_seen = 0;
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(120), rx.recv())
                .await
                .expect("review events")
                .expect("channel open");
            app.handle_external(ev).await;
            match app.composer.as_ref().and_then(|c| c.reviewing.as_ref()) {
                Some(r) => {
                    assert!(r.seen >= last_seen, "progress only grows");
                    last_seen = r.seen;
                    assert!(render(&app, size).contains(&format!("reviewing… {last_seen}")));
                }
                None => break,
            }
        }
        assert!(last_seen > 0, "progress was reported");
        let c = app.composer.as_ref().unwrap();
        let review = c.review.as_ref().expect("review applied");
        assert_eq!(review.recipients, 20_000);
        let page = render(&app, size);
        assert!(page.contains("20000 unique recipients"), "{page}");
        assert!(page.contains("dkim:"), "pre-flight lines shown: {page}");
    }
);

store_test!(
    pickers_search_the_store_so_the_600th_group_can_be_picked,
    |store| async move {
        let outbox = tempfile::tempdir().unwrap();
        let scope = acme(&store, outbox.path()).await;
        let mut wanted = 0;
        for i in 1..=650 {
            let g = store
                .create_group(scope, &format!("Group {i:04}"), None)
                .await
                .unwrap();
            if i == 600 {
                wanted = g.id;
                store
                    .add_contact(
                        scope,
                        g.id,
                        &recalliq::db::NewContact {
                            email: "six@example.com".into(),
                            name: Some("Six".into()),
                            variables: None,
                        },
                    )
                    .await
                    .unwrap();
            }
        }
        store
            .create_template(
                scope,
                &NewTemplate {
                    name: "Invoice".into(),
                    subject: "Invoice".into(),
                    body_html: None,
                    body_text: Some("Due. {{ unsubscribe_url }}".into()),
                    variables: None,
                },
            )
            .await
            .unwrap();
        let size = (100, 30);
        let mut app = app_as(&store, "alice", size, opts()).await;
        press(&mut app, "8n").await;
        let c = app.composer.as_ref().unwrap();
        assert!(c.groups.len() as i64 <= PICK_LIMIT, "{}", c.groups.len());
        assert!(
            !c.groups.iter().any(|g| g.id == wanted),
            "not listed before a search"
        );
        press(&mut app, "Six hundred").await;
        // Template: search "inv", Enter ends the search, space picks it.
        press_code(&mut app, KeyCode::Tab).await;
        press(&mut app, "/inv").await;
        press_code(&mut app, KeyCode::Enter).await;
        press(&mut app, " ").await;
        assert_eq!(
            app.composer
                .as_ref()
                .unwrap()
                .chosen_template
                .as_ref()
                .map(|t| t.1.as_str()),
            Some("Invoice")
        );
        // Groups: typing the name narrows the list to the 600th group.
        press_code(&mut app, KeyCode::Tab).await;
        press(&mut app, "/group 0600").await;
        let c = app.composer.as_ref().unwrap();
        assert_eq!(
            c.groups.iter().map(|g| g.id).collect::<Vec<_>>(),
            vec![wanted]
        );
        let frame = render(&app, size);
        assert!(frame.contains("/group 0600_"), "{frame}");
        assert!(frame.contains("Group 0600"), "{frame}");
        press_code(&mut app, KeyCode::Enter).await;
        press(&mut app, " ").await;
        // Esc clears a search (typed after `/`), the choice stays.
        press(&mut app, "/x").await;
        press_code(&mut app, KeyCode::Esc).await;
        assert_eq!(
            app.screen,
            ScreenId::Composer,
            "Esc in a search does not close"
        );
        assert!(app.composer.as_ref().unwrap().chosen.contains(&wanted));
        // Tab leaves a search: the next part gets the keys typed after it.
        press(&mut app, "/zz").await;
        press_code(&mut app, KeyCode::Tab).await; // variables
        press(&mut app, "k=v").await;
        press_code(&mut app, KeyCode::Enter).await;
        assert_eq!(
            app.composer.as_ref().unwrap().vars,
            vec![("k".to_string(), "v".to_string())]
        );
        app.handle_key(ctrl('s')).await;
        let c = app.composer.as_ref().unwrap();
        let id = c.batch_id.expect("saved");
        let groups: Vec<i32> = store
            .batch_groups(scope, id)
            .await
            .unwrap()
            .iter()
            .map(|g| g.group_id)
            .collect();
        assert_eq!(groups, vec![wanted]);
        let b = store.get_batch(scope, id).await.unwrap();
        let t = store.get_template(scope, b.template_id).await.unwrap();
        assert_eq!(t.name, "Invoice");
        assert_eq!(c.review.as_ref().unwrap().recipients, 1);
    }
);

/// The review page with a DKIM key (pre-flight: signed), and a tenant whose quota is used
/// up: pre-flight blocks, so `s` refuses to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_page_shows_preflight_and_a_preflight_block_refuses_the_start() {
    with_sqlite(|store| async move {
        let outbox = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let scope = acme(&store, outbox.path()).await;
        big_group(&store, scope, "Customers", 3).await;
        let secret = SecretKey::load(dir.path()).unwrap();
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        store
            .add_dkim_key(
                scope,
                &NewDkimKey {
                    domain: "acme.test",
                    selector: "s1",
                    algorithm: "ed25519",
                    private_key_enc: &key
                        .encrypt(&secret, scope.tenant_id(), "acme.test", "s1")
                        .unwrap(),
                    public_key: &key.public_key_b64().unwrap(),
                },
                false,
            )
            .await
            .unwrap();
        let options = Options {
            config_dir: dir.path().to_path_buf(),
            data_dir: dir.path().to_path_buf(),
            ..opts()
        };
        for size in [(80, 24), (120, 40)] {
            let mut app = app_as(&store, "alice", size, options.clone()).await;
            compose(&mut app, "Signed").await;
            app.handle_key(ctrl('s')).await;
            let page = render(&app, size);
            assert!(
                page.contains("mail from acme.test is DKIM-signed (ed25519, selector 's1')"),
                "{page}"
            );
            snap("composer_review_preflight", size, page);
            press_code(&mut app, KeyCode::Esc).await;
        }

        // Quota used up: the review's own line only warns, pre-flight blocks.
        let all = Actor::system().all_tenants().unwrap();
        store
            .update_tenant(
                &all,
                scope.tenant_id(),
                &TenantUpdate {
                    monthly_email_limit: Some(0),
                    ..TenantUpdate::default()
                },
            )
            .await
            .unwrap();
        let size = (120, 40);
        let mut app = app_as(&store, "alice", size, options.clone()).await;
        compose(&mut app, "Over quota").await;
        app.handle_key(ctrl('s')).await;
        let page = render(&app, size);
        assert!(
            page.contains("✗ quota: tenant acme.test has used its monthly quota"),
            "{page}"
        );
        let id = app.composer.as_ref().unwrap().batch_id.unwrap();
        press(&mut app, "s").await;
        let refused = render(&app, size);
        assert!(refused.contains("cannot start batch"), "{refused}");
        assert_eq!(store.get_batch(scope, id).await.unwrap().status, "draft");
    })
    .await;
}
