//! Templates screen and editor: snapshots of the list, the editor with its preview and a
//! rendering error at 80x24 and 120x40, and behaviour checked through the store (save
//! records the variables, a syntax error is not saved, the unsaved-changes prompt).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use recalliq::auth::make_password_with;
use recalliq::db::{
    Actor, NewContact, NewTemplate, NewTenant, NewUser, Security, SmtpServer, SmtpSettings, Store,
    TenantScope, UserScope,
};
use recalliq::domain::Role;
use recalliq::secrets::SecretKey;
use recalliq::tui::keymap::ScreenId;
use recalliq::tui::{App, Options};
use serde_json::json;

use crate::support::smtp::{SinkConfig, SmtpSink};
use crate::support::with_sqlite;

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

/// Acme with a tenant admin, a plain user, two templates and a group of two contacts.
async fn seed(store: &Store) -> TenantScope {
    let all = Actor::system().all_tenants().unwrap();
    let acme = store
        .create_tenant(
            &all,
            &NewTenant {
                name: "Acme Corp".into(),
                domain: "acme.test".into(),
                monthly_email_limit: Some(1000),
                ..NewTenant::default()
            },
        )
        .await
        .unwrap();
    for (name, role) in [("alice", Role::TenantAdmin), ("carol", Role::User)] {
        store
            .create_user(
                UserScope::All(all),
                &NewUser {
                    username: name.into(),
                    email: format!("{name}@example.com"),
                    password_hash: make_password_with("secret-pw", "testsalt", 1000).unwrap(),
                    role,
                    tenant_id: Some(acme.id),
                    first_name: None,
                    last_name: None,
                },
            )
            .await
            .unwrap();
    }
    let scope = Actor::system().tenant_scope(acme.id).unwrap();
    store
        .create_template(
            scope,
            &NewTemplate {
                name: "Welcome".into(),
                subject: "Hello {{ name }}".into(),
                body_html: Some("<h1>Hi {{ name }}</h1><p>Your plan: {{ plan }}</p>".into()),
                body_text: None,
                variables: Some(json!(["name", "plan"])),
            },
        )
        .await
        .unwrap();
    store
        .create_template(
            scope,
            &NewTemplate {
                name: "Invoice".into(),
                subject: "Invoice {{ number }}".into(),
                body_html: None,
                body_text: Some("Amount: {{ amount }}".into()),
                variables: Some(json!(["amount", "number"])),
            },
        )
        .await
        .unwrap();
    let group = store.create_group(scope, "Customers", None).await.unwrap();
    for (email, name, plan) in [
        ("ann@example.com", "Ann", "gold"),
        ("ben@example.com", "Ben", "silver"),
    ] {
        store
            .add_contact(
                scope,
                group.id,
                &NewContact {
                    email: email.into(),
                    name: Some(name.into()),
                    variables: Some(json!({ "plan": plan })),
                },
            )
            .await
            .unwrap();
    }
    scope
}

fn opts() -> Options {
    let dir = std::env::temp_dir().join("recalliq-tui-tests-no-config");
    Options {
        config_dir: dir.clone(),
        data_dir: dir,
        no_color: true,
        ..Options::default()
    }
}

async fn app_as(store: &Store, username: &str, (w, h): (u16, u16), opts: Options) -> App {
    let mut app = App::new(store.clone(), opts);
    app.resize(w, h).await;
    let all = Actor::system().all_tenants().unwrap();
    let user = store
        .user_by_username(UserScope::All(all), username)
        .await
        .unwrap();
    let actor = Actor::from_user(&user).unwrap();
    app.start_session(user, actor).await;
    app
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

async fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        app.handle_key(key(KeyCode::Char(c))).await;
    }
}

async fn press_code(app: &mut App, code: KeyCode) {
    app.handle_key(key(code)).await;
}

fn render(app: &App, (w, h): (u16, u16)) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| app.draw(f)).unwrap();
    let buf = term.backend().buffer();
    let mut out = String::new();
    for y in 0..h {
        let mut line = String::new();
        for x in 0..w {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn snap(name: &str, size: (u16, u16), text: String) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(format!("{name}_{}x{}", size.0, size.1), text));
}

/// Opens the editor on the first template (Welcome: the list is ordered by id).
async fn open_welcome(app: &mut App) {
    press(app, "6").await;
    assert_eq!(app.screen, ScreenId::Templates);
    press_code(app, KeyCode::Enter).await;
    assert_eq!(app.screen, ScreenId::Editor, "editor did not open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_of_templates_and_editor() {
    with_sqlite(|store| async move {
        seed(&store).await;
        for size in SIZES {
            let mut app = app_as(&store, "alice", size, opts()).await;
            press(&mut app, "6").await;
            snap("templates", size, render(&app, size));
            press(&mut app, "/inv").await;
            snap("templates_filter", size, render(&app, size));
            press_code(&mut app, KeyCode::Enter).await;
            press_code(&mut app, KeyCode::Esc).await;
            press_code(&mut app, KeyCode::Enter).await;
            snap("template_editor", size, render(&app, size));
            app.handle_key(KeyEvent::new(KeyCode::Char(']'), KeyModifiers::ALT))
                .await;
            app.handle_key(ctrl('t')).await;
            snap(
                "template_editor_raw_second_contact",
                size,
                render(&app, size),
            );
            // An undefined variable: the preview names it.
            press(&mut app, "{{ coupon }}").await;
            snap("template_editor_render_error", size, render(&app, size));
            press_code(&mut app, KeyCode::Esc).await;
            snap("template_editor_unsaved_prompt", size, render(&app, size));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_records_variables_and_refuses_syntax_errors() {
    with_sqlite(|store| async move {
        let scope = seed(&store).await;
        let mut app = app_as(&store, "alice", (120, 40), opts()).await;
        open_welcome(&mut app).await;
        // Focus starts in the HTML body, cursor at its start.
        press(&mut app, "<p>{{ city }}</p>").await;
        app.handle_key(ctrl('s')).await;
        let t = store.find_template(scope, "Welcome").await.unwrap();
        assert!(
            t.body_html
                .as_deref()
                .unwrap()
                .starts_with("<p>{{ city }}</p><h1>")
        );
        assert_eq!(
            t.variables.unwrap().0,
            json!(["city", "name", "plan"]),
            "variables recorded on save"
        );
        // A syntax error: shown with line and column, nothing saved.
        press(&mut app, "{% if %}").await;
        app.handle_key(ctrl('s')).await;
        let screen = render(&app, (120, 40));
        assert!(
            screen.contains("not saved: syntax error in the HTML body at line 1, column"),
            "{screen}"
        );
        let again = store.find_template(scope, "Welcome").await.unwrap();
        assert_eq!(again.body_html, t.body_html);
        // Undo removes the bad text; then Esc closes without a prompt after saving.
        for _ in 0.."{% if %}".len() {
            app.handle_key(ctrl('z')).await;
        }
        app.handle_key(ctrl('s')).await;
        press_code(&mut app, KeyCode::Esc).await;
        assert_eq!(app.screen, ScreenId::Templates);
        assert!(app.popup.is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsaved_changes_prompt_keeps_or_discards() {
    with_sqlite(|store| async move {
        let scope = seed(&store).await;
        let mut app = app_as(&store, "alice", (80, 24), opts()).await;
        open_welcome(&mut app).await;
        press(&mut app, "draft ").await;
        press_code(&mut app, KeyCode::Esc).await;
        let screen = render(&app, (80, 24));
        assert!(screen.contains("Unsaved changes"), "{screen}");
        // "n" keeps editing.
        press(&mut app, "n").await;
        assert_eq!(app.screen, ScreenId::Editor);
        press_code(&mut app, KeyCode::Esc).await;
        press(&mut app, "y").await;
        assert_eq!(app.screen, ScreenId::Templates);
        let t = store.find_template(scope, "Welcome").await.unwrap();
        assert!(!t.body_html.unwrap().contains("draft"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_duplicate_deactivate_and_permissions() {
    with_sqlite(|store| async move {
        let scope = seed(&store).await;
        let mut app = app_as(&store, "alice", (120, 40), opts()).await;
        press(&mut app, "6n").await;
        press(&mut app, "Promo").await;
        press_code(&mut app, KeyCode::Tab).await;
        press(&mut app, "Sale for {{ name }}").await;
        press_code(&mut app, KeyCode::Enter).await;
        let promo = store.find_template(scope, "Promo").await.unwrap();
        assert_eq!(promo.subject, "Sale for {{ name }}");
        // Duplicate the selected (first) template.
        press(&mut app, "c").await;
        press_code(&mut app, KeyCode::Enter).await;
        let copy = store.find_template(scope, "Welcome (copy)").await.unwrap();
        assert_eq!(
            copy.body_html,
            store
                .find_template(scope, "Welcome")
                .await
                .unwrap()
                .body_html
        );
        // Deactivate it after confirming.
        press(&mut app, "d").await;
        press(&mut app, "y").await;
        assert!(
            !store
                .find_template(scope, "Welcome")
                .await
                .unwrap()
                .is_active
        );

        // A plain user may look but not change; --readonly refuses writes.
        let mut app = app_as(&store, "carol", (80, 24), opts()).await;
        press(&mut app, "6n").await;
        assert!(app.popup.is_none());
        let mut app = app_as(
            &store,
            "alice",
            (80, 24),
            Options {
                readonly: true,
                ..opts()
            },
        )
        .await;
        open_welcome(&mut app).await;
        press(&mut app, "x").await;
        app.handle_key(ctrl('s')).await;
        let screen = render(&app, (80, 24));
        assert!(screen.contains("read-only"), "{screen}");
    })
    .await;
}

// ---- SMTP settings ----

fn opts_in(dir: &std::path::Path) -> Options {
    Options {
        config_dir: dir.to_path_buf(),
        data_dir: dir.to_path_buf(),
        no_color: true,
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_form_saves_password_encrypted_and_never_shows_it() {
    with_sqlite(|store| async move {
        let scope = seed(&store).await;
        let dir = tempfile::tempdir().unwrap();
        for size in SIZES {
            let mut app = app_as(&store, "alice", size, opts_in(dir.path())).await;
            press(&mut app, "7").await;
            assert_eq!(app.screen, ScreenId::Smtp);
            press(&mut app, "e").await;
            snap("smtp_form", size, render(&app, size));
            press_code(&mut app, KeyCode::Esc).await;
        }
        let mut app = app_as(&store, "alice", (120, 40), opts_in(dir.path())).await;
        press(&mut app, "7e").await;
        press_code(&mut app, KeyCode::Tab).await;
        press(&mut app, "127.0.0.1").await;
        press_code(&mut app, KeyCode::Tab).await;
        for _ in 0..3 {
            press_code(&mut app, KeyCode::Backspace).await;
        }
        press(&mut app, "2525").await;
        press_code(&mut app, KeyCode::Tab).await;
        press_code(&mut app, KeyCode::Left).await;
        press_code(&mut app, KeyCode::Tab).await;
        press(&mut app, "mailer").await;
        press_code(&mut app, KeyCode::Tab).await;
        press(&mut app, "hunter2").await;
        let screen = render(&app, (120, 40));
        assert!(
            !screen.contains("hunter2"),
            "password typed in clear:\n{screen}"
        );
        press_code(&mut app, KeyCode::Enter).await;
        assert!(
            app.popup.is_none(),
            "form not submitted:\n{}",
            render(&app, (120, 40))
        );
        let Some(SmtpSettings::Smtp(saved)) = store.smtp_settings(scope).await.unwrap() else {
            panic!("SMTP settings not saved");
        };
        assert_eq!(
            (saved.host.as_str(), saved.port, saved.security),
            ("127.0.0.1", 2525, Security::None)
        );
        assert_eq!(saved.username.as_deref(), Some("mailer"));
        assert_eq!(saved.connections, 4);
        let enc = saved.password_enc.clone().expect("password stored");
        assert!(!enc.contains("hunter2"));
        let key = SecretKey::load(dir.path()).unwrap();
        assert_eq!(
            key.decrypt(&enc, scope.tenant_id()).unwrap().expose(),
            "hunter2"
        );
        let screen = render(&app, (120, 40));
        assert!(screen.contains("stored (encrypted)"), "{screen}");
        assert!(!screen.contains("hunter2") && !screen.contains(&enc));
        // Editing again shows an empty password; saving keeps the stored one.
        press(&mut app, "e").await;
        let screen = render(&app, (120, 40));
        assert!(
            !screen.contains("hunter2") && !screen.contains("•"),
            "{screen}"
        );
        press_code(&mut app, KeyCode::Enter).await;
        let Some(SmtpSettings::Smtp(again)) = store.smtp_settings(scope).await.unwrap() else {
            panic!("SMTP settings lost");
        };
        assert_eq!(again.password_enc, Some(enc));

        // A plain user does not get the screen.
        let mut app = app_as(&store, "carol", (80, 24), opts_in(dir.path())).await;
        press(&mut app, "7").await;
        assert_ne!(app.screen, ScreenId::Smtp);
    })
    .await;
}

/// The report with what varies from run to run (the sink's port, the order of the EHLO
/// extensions) cut off after the line's label.
fn normalize_report(screen: &str, port: u16) -> String {
    let port = port.to_string();
    let mut out = String::new();
    for line in screen.lines() {
        if line.contains(&port) || line.contains("EHLO:") {
            let keep: String = line.chars().take_while(|c| *c != ':').collect();
            out.push_str(&format!("{keep}: <varies>"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_test_connection_report_popup() {
    with_sqlite(|store| async move {
        let scope = seed(&store).await;
        let dir = tempfile::tempdir().unwrap();
        let sink = SmtpSink::start(SinkConfig::default());
        let port = sink.port();
        store
            .set_smtp_settings(
                scope,
                &SmtpSettings::Smtp(SmtpServer::new("127.0.0.1", port, Security::None)),
            )
            .await
            .unwrap();
        for size in SIZES {
            let mut app = app_as(&store, "alice", size, opts_in(dir.path())).await;
            press(&mut app, "7t").await;
            app.wait_background().await;
            let screen = render(&app, size);
            assert!(screen.contains("greeting: 220"), "{screen}");
            assert!(screen.contains("EHLO"), "{screen}");
            assert!(screen.contains("QUIT: 221"), "{screen}");
            assert!(screen.contains("│ok"), "{screen}");
            snap("smtp_test_report", size, normalize_report(&screen, port));
            press_code(&mut app, KeyCode::Esc).await;
            assert!(app.popup.is_none());
        }
    })
    .await;
}

/// #4 item 8: a tenant admin manages the tenant's sender addresses from the settings
/// screen: add one (a bad address is refused in the form, nothing stored), deactivate it
/// with a confirmation, and the From choices of the transport form follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_sender_addresses_add_and_deactivate() {
    with_sqlite(|store| async move {
        let scope = seed(&store).await;
        let dir = tempfile::tempdir().unwrap();
        let size = (80, 24);
        let mut app = app_as(&store, "alice", size, opts_in(dir.path())).await;
        press(&mut app, "7").await;
        snap("smtp_senders_empty", size, render(&app, size));

        // An invalid address stays in the form with the reason.
        press(&mut app, "n").await;
        press(&mut app, "not an address").await;
        press_code(&mut app, KeyCode::Enter).await;
        assert!(app.popup.is_some(), "the form stays open on a bad address");
        assert!(store.list_tenant_emails(scope).await.unwrap().is_empty());
        press_code(&mut app, KeyCode::Esc).await;

        for (email, name) in [
            ("news@acme.test", "Acme\r\nBcc: evil@x.test"),
            ("ops@acme.test", ""),
        ] {
            press(&mut app, "n").await;
            press(&mut app, email).await;
            press_code(&mut app, KeyCode::Tab).await;
            press(&mut app, name).await;
            press_code(&mut app, KeyCode::Enter).await;
            assert!(app.popup.is_none(), "form closed: {:?}", app.popup);
        }
        let senders = store.list_tenant_emails(scope).await.unwrap();
        assert_eq!(senders.len(), 2);
        // The display name never carries a line break into a header.
        let name = senders[0].name.clone().unwrap_or_default();
        assert!(!name.contains('\r') && !name.contains('\n'), "{name:?}");
        snap("smtp_senders", size, render(&app, size));

        // Deactivate the second one (j moves the selection) after a confirmation.
        press(&mut app, "jd").await;
        let screen = render(&app, size);
        assert!(screen.contains("Deactivate ops@acme.test?"), "{screen}");
        press(&mut app, "y").await;
        let senders = store.list_tenant_emails(scope).await.unwrap();
        assert_eq!(
            senders
                .iter()
                .map(|s| (s.email.as_str(), s.is_active))
                .collect::<Vec<_>>(),
            vec![("news@acme.test", true), ("ops@acme.test", false)]
        );
        assert_eq!(
            app.smtp.senders.len(),
            1,
            "only active senders are From choices"
        );
        snap("smtp_senders_deactivated", size, render(&app, size));
    })
    .await;
}
