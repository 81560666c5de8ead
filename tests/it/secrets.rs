//! Secrets (issue #10 item 7): a known SMTP password is looked for in every real output —
//! CLI stdout/stderr (plain and --json), the engine's logs (captured at TRACE), email logs,
//! batch reasons, every file the program wrote — and never found. The key file is 0600, a
//! wrong or damaged key gives one clear line. (The TUI form is covered in tui_templates.)

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use recalliq::db::{NewBatch, NewContact, NewTemplate, Page, Security, SmtpServer, SmtpSettings};
use recalliq::engine::{Engine, EngineConfig};
use recalliq::secrets::{Secret, SecretKey};
use tokio::sync::watch;

use crate::support::cli::Env;
use crate::support::smtp::{SinkConfig, SmtpSink};
use crate::support::{SqliteDb, tenant};

const PW: &str = "Zq9-unique-SMTP-pa55word";

/// The password and the forms it could leak in (base64 of itself and of AUTH PLAIN).
fn leaks() -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        PW.to_string(),
        b64.encode(PW),
        b64.encode(format!("\0mailer\0{PW}")),
    ]
}

fn assert_no_leak(what: &str, hay: &str) {
    for l in leaks() {
        assert!(
            !hay.contains(&l),
            "SMTP password ({l}) found in {what}:\n{hay}"
        );
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn smtp_password_never_leaves_through_cli_outputs_or_files() {
    let sink = SmtpSink::start(SinkConfig {
        users: vec![("mailer".into(), PW.into())],
        require_auth: true,
        ..SinkConfig::default()
    });
    let env = Env::new();
    let mut out = String::new();
    let mut run = |args: &[&str], stdin: Option<&str>, vars: &[(&str, &str)]| {
        let r = env.run_env(args, stdin, vars);
        out.push_str(&r.stdout);
        out.push_str(&r.stderr);
        r
    };
    let trace = [("RUST_LOG", "trace")];
    run(
        &[
            "tenant",
            "create",
            "--name",
            "Acme",
            "--domain",
            "acme.test",
        ],
        None,
        &trace,
    )
    .ok();
    run(
        &[
            "tenant",
            "sender",
            "add",
            "--tenant",
            "acme.test",
            "news@acme.test",
        ],
        None,
        &trace,
    )
    .ok();
    let port = sink.port().to_string();
    run(
        &[
            "smtp",
            "set",
            "--tenant",
            "acme.test",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--security",
            "none",
            "--from",
            "news@acme.test",
            "--username",
            "mailer",
            "--password-stdin",
        ],
        Some(&format!("{PW}\n")),
        &trace,
    )
    .ok();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = env.config_dir().join("secret.key");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "key file mode");
    }
    run(&["smtp", "show", "--tenant", "acme.test"], None, &trace).ok();
    run(
        &["smtp", "show", "--tenant", "acme.test", "--json"],
        None,
        &trace,
    )
    .ok();
    run(&["smtp", "test", "--tenant", "acme.test"], None, &trace).ok();
    run(&["tenant", "show", "acme.test", "--json"], None, &trace).ok();
    run(&["tenant", "list", "--json"], None, &trace).ok();
    run(
        &["group", "create", "--tenant", "acme.test", "--name", "News"],
        None,
        &trace,
    )
    .ok();
    run(
        &[
            "contact",
            "add",
            "--tenant",
            "acme.test",
            "--group",
            "News",
            "--email",
            "ann@example.com",
        ],
        None,
        &trace,
    )
    .ok();
    run(
        &[
            "group",
            "export",
            "--tenant",
            "acme.test",
            "--group",
            "News",
        ],
        None,
        &trace,
    )
    .ok();
    let html = env.file("t.html", b"<p>Hi</p>");
    run(
        &[
            "template",
            "create",
            "--tenant",
            "acme.test",
            "--name",
            "T",
            "--subject",
            "S",
            "--html-file",
            &html,
        ],
        None,
        &trace,
    )
    .ok();
    run(
        &[
            "template",
            "send-test",
            "--tenant",
            "acme.test",
            "--template",
            "T",
            "--group",
            "News",
            "--contact",
            "ann@example.com",
            "--to",
            "qa@example.org",
        ],
        None,
        &trace,
    )
    .ok();
    assert_eq!(
        sink.wait_for(1, Duration::from_secs(5)).len(),
        1,
        "sent with AUTH"
    );

    // A wrong key: one clear line naming where keys come from.
    let other = SecretKey::generate_base64();
    let r = run(
        &["smtp", "test", "--tenant", "acme.test"],
        None,
        &[("RECALLIQ_SECRET_KEY", &other)],
    );
    r.fails_with(
        1,
        "cannot decrypt SMTP password: wrong key (RECALLIQ_SECRET_KEY or ",
    );
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    // A malformed key in the environment.
    run(
        &["smtp", "test", "--tenant", "acme.test"],
        None,
        &[("RECALLIQ_SECRET_KEY", "short")],
    )
    .fails_with(
        1,
        "RECALLIQ_SECRET_KEY must be the base64 encoding of exactly 32 bytes",
    );
    // A damaged key file, then one readable by others.
    let key_file = env.config_dir().join("secret.key");
    let good = std::fs::read(&key_file).unwrap();
    std::fs::write(&key_file, b"garbage\n").unwrap();
    run(&["smtp", "test", "--tenant", "acme.test"], None, &[])
        .fails_with(1, "must hold the base64 encoding of exactly 32 bytes");
    std::fs::write(&key_file, &good).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        run(&["smtp", "test", "--tenant", "acme.test"], None, &[]).fails_with(1, "chmod 600");
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    assert_no_leak("CLI output", &out);

    let mut files = String::new();
    for dir in [env.config_dir(), env.data_dir()] {
        for e in walk(&dir) {
            files.push_str(&String::from_utf8_lossy(&std::fs::read(e).unwrap()));
        }
    }
    assert_no_leak("files written by recalliq", &files);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "current_thread")]
async fn smtp_password_never_in_engine_logs_errors_or_debug_output() {
    // Every tracing event of this thread (the whole engine runs on this current-thread
    // runtime), at TRACE.
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let db = SqliteDb::create();
    let store = recalliq::db::Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::load(dir.path()).unwrap();
    let (t, scope) = tenant(&store, "acme.test").await;
    store
        .add_tenant_email(scope, "news@acme.test", None)
        .await
        .unwrap();
    // The server knows another password: AUTH fails, and the failure is recorded.
    let sink = SmtpSink::start(SinkConfig {
        users: vec![("mailer".into(), "other-password".into())],
        require_auth: true,
        ..SinkConfig::default()
    });
    let mut server = SmtpServer::new("127.0.0.1", sink.port(), Security::None);
    server.username = Some("mailer".into());
    server.from = Some("news@acme.test".into());
    server.password_enc = Some(key.encrypt(&Secret::new(PW), t.id).unwrap());
    let settings = SmtpSettings::Smtp(server);
    store.set_smtp_settings(scope, &settings).await.unwrap();
    let template = store
        .create_template(
            scope,
            &NewTemplate {
                name: "T".into(),
                subject: "S".into(),
                body_html: None,
                body_text: Some("hi".into()),
                variables: None,
            },
        )
        .await
        .unwrap();
    let g = store.create_group(scope, "G", None).await.unwrap();
    store
        .add_contact(
            scope,
            g.id,
            &NewContact {
                email: "ann@example.com".into(),
                ..NewContact::default()
            },
        )
        .await
        .unwrap();
    let batch = store
        .create_batch(
            scope,
            &NewBatch {
                name: "B".into(),
                template_id: template.id,
                group_ids: vec![g.id],
                ..NewBatch::default()
            },
        )
        .await
        .unwrap();
    store.start_batch(scope, batch.id).await.unwrap();
    let engine = Engine::new(
        store.clone(),
        EngineConfig {
            poll: Duration::from_millis(20),
            flush_interval: Duration::from_millis(10),
            backoff: vec![Duration::from_millis(10)],
            smtp_timeout: Duration::from_secs(5),
            config_dir: Some(dir.path().to_path_buf()),
            ..EngineConfig::default()
        },
    );
    let (_tx, rx) = watch::channel(false);
    tokio::time::timeout(Duration::from_secs(60), engine.run(rx, true))
        .await
        .expect("engine finished")
        .unwrap();
    let logs = store
        .list_email_logs(scope, batch.id, Page::first(10), None)
        .await
        .unwrap();
    assert_eq!(logs.len(), 1);
    assert_ne!(
        logs[0].status, "sent",
        "AUTH must have failed: {:?}",
        logs[0]
    );
    let b = store.get_batch(scope, batch.id).await.unwrap();
    let mut seen = format!(
        "{logs:?}\n{b:?}\n{settings:?}\n{:?}\n",
        store.smtp_settings(scope).await.unwrap()
    );
    seen.push_str(&format!(
        "{key:?} {:?} {}",
        Secret::new(PW),
        Secret::new(PW)
    ));
    seen.push_str(&serde_json::to_string(&settings.public_json()).unwrap());
    seen.push_str(&String::from_utf8_lossy(&captured.0.lock().unwrap()));
    // (The engine itself emits few tracing events today; whatever it and its libraries
    // emit at TRACE on this thread is in `seen`.)
    assert_no_leak("engine logs, email logs, batch and Debug output", &seen);

    // With another key directory the batch is paused with a clear reason, not a panic.
    let (_t2, scope2) = tenant(&store, "beta.test").await;
    store
        .add_tenant_email(scope2, "news@beta.test", None)
        .await
        .unwrap();
    let mut server2 = SmtpServer::new("127.0.0.1", sink.port(), Security::None);
    server2.username = Some("mailer".into());
    server2.password_enc = Some(key.encrypt(&Secret::new(PW), _t2.id).unwrap());
    store
        .set_smtp_settings(scope2, &SmtpSettings::Smtp(server2))
        .await
        .unwrap();
    let t2 = store
        .create_template(
            scope2,
            &NewTemplate {
                name: "T".into(),
                subject: "S".into(),
                body_html: None,
                body_text: Some("x".into()),
                variables: None,
            },
        )
        .await
        .unwrap();
    let g2 = store.create_group(scope2, "G", None).await.unwrap();
    store
        .add_contact(
            scope2,
            g2.id,
            &NewContact {
                email: "bo@example.com".into(),
                ..NewContact::default()
            },
        )
        .await
        .unwrap();
    let b2 = store
        .create_batch(
            scope2,
            &NewBatch {
                name: "B".into(),
                template_id: t2.id,
                group_ids: vec![g2.id],
                ..NewBatch::default()
            },
        )
        .await
        .unwrap();
    store.start_batch(scope2, b2.id).await.unwrap();
    let wrong_dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(
        store.clone(),
        EngineConfig {
            poll: Duration::from_millis(20),
            flush_interval: Duration::from_millis(10),
            config_dir: Some(wrong_dir.path().to_path_buf()),
            ..EngineConfig::default()
        },
    );
    let (_tx, rx) = watch::channel(false);
    tokio::time::timeout(Duration::from_secs(60), engine.run(rx, true))
        .await
        .expect("engine finished")
        .unwrap();
    let b2 = store.get_batch(scope2, b2.id).await.unwrap();
    assert_eq!(b2.status, "paused", "{b2:?}");
    let reason = b2.status_reason.unwrap_or_default();
    assert!(reason.contains("wrong key"), "{reason}");
    assert_no_leak("pause reason", &reason);
    store.close().await;
}
