//! Templates, rendering, SMTP settings and sending (issue #5): the store on both backends,
//! the real binary against a real SMTP server over TCP (`support::smtp`), plain and
//! STARTTLS.

use std::time::Duration;

use recalliq::db::{
    Actor, NewContact, NewTenant, Security, SmtpServer, SmtpSettings, Store, TenantScope,
};
use recalliq::render::{Recipient, TemplateSource, TenantInfo, check_recipients};
use recalliq::secrets::{KeySource, Secret, SecretKey};
use serde_json::{Value, json};

use crate::store_test;
use crate::support::cli::{Env, Run};
use crate::support::smtp::{SinkConfig, SmtpSink};
use crate::support::tenant;

async fn raw_settings(store: &Store, tenant_id: i32) -> String {
    let sql = "SELECT CAST(settings AS TEXT) FROM tenants_tenant WHERE id = $1";
    let v: Option<String> = if let Some(p) = store.sqlite_pool() {
        sqlx::query_scalar(sql)
            .bind(tenant_id)
            .fetch_one(p)
            .await
            .unwrap()
    } else {
        sqlx::query_scalar(sql)
            .bind(tenant_id)
            .fetch_one(store.pg_pool().unwrap())
            .await
            .unwrap()
    };
    v.unwrap_or_default()
}

async fn put_raw_settings(store: &Store, tenant_id: i32, json: &str) {
    if let Some(p) = store.sqlite_pool() {
        sqlx::query("UPDATE tenants_tenant SET settings = $2 WHERE id = $1")
            .bind(tenant_id)
            .bind(json)
            .execute(p)
            .await
            .unwrap();
    } else {
        sqlx::query("UPDATE tenants_tenant SET settings = CAST($2 AS JSONB) WHERE id = $1")
            .bind(tenant_id)
            .bind(json)
            .execute(store.pg_pool().unwrap())
            .await
            .unwrap();
    }
}

store_test!(smtp_settings_round_trip_encrypted, |store| async move {
    let (t, scope) = tenant(&store, "acme.test").await;
    assert_eq!(store.smtp_settings(scope).await.unwrap(), None);
    put_raw_settings(&store, t.id, r#"{"theme": "dark", "smtp": null}"#).await;
    store
        .add_tenant_email(scope, "News@Acme.test", Some("Acme News"))
        .await
        .unwrap();
    let key = SecretKey::from_bytes([9; 32], KeySource::Env);
    let mut server = SmtpServer::new("smtp.acme.test", 587, Security::Starttls);
    server.username = Some("mailer".into());
    server.password_enc = Some(key.encrypt(&Secret::new("s3cr3t-pw"), t.id).unwrap());
    server.from = Some("news@acme.test".into());
    server.rate_per_hour = Some(1000);
    store
        .set_smtp_settings(scope, &SmtpSettings::Smtp(server.clone()))
        .await
        .unwrap();
    let back = store.smtp_settings(scope).await.unwrap().unwrap();
    let SmtpSettings::Smtp(got) = &back else {
        panic!("{back:?}")
    };
    assert_eq!(got.host, "smtp.acme.test");
    assert_eq!(got.from.as_deref(), Some("News@acme.test"));
    assert_eq!(got.connections, 4);
    assert_eq!(
        key.decrypt(got.password_enc.as_deref().unwrap(), t.id)
            .unwrap()
            .expose(),
        "s3cr3t-pw"
    );
    let raw = raw_settings(&store, t.id).await;
    assert!(!raw.contains("s3cr3t-pw"), "plaintext in the DB: {raw}");
    assert!(raw.contains("\"theme\""), "other keys kept: {raw}");
    assert!(!back.public_json().to_string().contains("v1:"));
    assert!(!back.to_string().contains("v1:"));

    // The sender must be an active sender address of this tenant.
    server.from = Some("other@acme.test".into());
    let err = store
        .set_smtp_settings(scope, &SmtpSettings::Smtp(server.clone()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not an active sender address"), "{err}");

    // Another tenant cannot decrypt this tenant's password, even with the same key.
    let (t2, _) = tenant(&store, "beta.test").await;
    assert!(
        key.decrypt(got.password_enc.as_deref().unwrap(), t2.id)
            .is_err()
    );

    // The outbox transport replaces the server, other keys still kept.
    let outbox = SmtpSettings::Outbox(recalliq::db::OutboxSettings {
        path: "/tmp/outbox".into(),
        from: None,
        reply_to: Some("help@acme.test".into()),
    });
    store.set_smtp_settings(scope, &outbox).await.unwrap();
    assert_eq!(store.smtp_settings(scope).await.unwrap(), Some(outbox));
    assert!(raw_settings(&store, t.id).await.contains("\"theme\""));
});

#[test]
fn check_recipients_names_each_failing_contact() {
    let t = TemplateSource {
        subject: "Hi {{ name }}".into(),
        body_html: Some("<p>{{ plan }}</p>".into()),
        body_text: None,
    };
    let tenant = TenantInfo {
        name: "Acme".into(),
        domain: "acme.test".into(),
        ..TenantInfo::default()
    };
    let contacts = vec![
        Recipient {
            email: "ok@x.test".into(),
            name: Some("Ok".into()),
            variables: Some(json!({"plan": "Pro"})),
        },
        Recipient {
            email: "noname@x.test".into(),
            name: None,
            variables: Some(json!({"plan": "Pro"})),
        },
        Recipient {
            email: "noplan@x.test".into(),
            name: Some("No Plan".into()),
            variables: None,
        },
    ];
    let bad = check_recipients(&t, None, &tenant, contacts).unwrap();
    let got: Vec<(String, String)> = bad
        .iter()
        .map(|(e, err)| (e.clone(), err.to_string()))
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "noname@x.test");
    assert!(got[0].1.contains("'name'") && got[0].1.contains("noname@x.test"));
    assert_eq!(got[1].0, "noplan@x.test");
    assert!(got[1].1.contains("'plan'"), "{}", got[1].1);
}

/// A SQLite database shared by the binary and the test, with a tenant, a sender address,
/// a group and contacts.
struct Fixture {
    env: Env,
    store: Store,
    scope: TenantScope,
    _db: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("t.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let all = Actor::system().all_tenants().unwrap();
    let t = store
        .create_tenant(
            &all,
            &NewTenant {
                name: "Acme & Söhne".into(),
                domain: "acme.test".into(),
                ..NewTenant::default()
            },
        )
        .await
        .unwrap();
    let scope = Actor::system().tenant_scope(t.id).unwrap();
    store
        .add_tenant_email(scope, "news@acme.test", Some("Acme Néws"))
        .await
        .unwrap();
    let g = store.create_group(scope, "Customers", None).await.unwrap();
    store
        .add_contact(
            scope,
            g.id,
            &NewContact {
                email: "zoe@example.com".into(),
                name: Some("Zoë Ñúñez".into()),
                variables: Some(json!({"plan": "Pro <b>", "due": "2026-03-05"})),
            },
        )
        .await
        .unwrap();
    store
        .add_contact(
            scope,
            g.id,
            &NewContact {
                email: "bare@example.com".into(),
                name: None,
                variables: None,
            },
        )
        .await
        .unwrap();
    // As the web app might have stored them: CR/LF in a name and in a variable.
    let evil = store
        .add_contact(
            scope,
            g.id,
            &NewContact {
                email: "eve@example.com".into(),
                name: Some("Eve".into()),
                variables: None,
            },
        )
        .await
        .unwrap();
    sqlx::query("UPDATE tenants_groupemail SET name = $2, variables = $3 WHERE id = $1")
        .bind(evil.id)
        .bind("Eve\r\nBcc: name@evil.test")
        .bind(r#"{"plan": "Pro\r\nBcc: var@evil.test\nX-Injected: yes", "due": "2026-03-05"}"#)
        .execute(store.sqlite_pool().unwrap())
        .await
        .unwrap();
    Fixture {
        env: Env::with_url(&url),
        store,
        scope,
        _db: db,
    }
}

fn write(env: &Env, name: &str, text: &str) -> String {
    let p = env.dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const HTML: &str = "<h1>Hello {{ name }}</h1>\n<p>Your plan: {{ plan }}, due {{ due|date('%d %B %Y') }}.</p>\n<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a> &middot; {{ tenant.name }}</p>\n";

fn create_template(env: &Env) -> Run {
    let html = write(env, "welcome.html", HTML);
    env.run(
        &[
            "template",
            "create",
            "--tenant",
            "acme.test",
            "--name",
            "Welcome",
            "--subject",
            "Welcome {{ name }} — {{ plan }}",
            "--html-file",
            &html,
        ],
        None,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_cli_create_list_show_preview() {
    let f = fixture().await;
    let env = &f.env;
    let created = create_template(env);
    created.ok();
    let id: i32 = created.stdout.trim().parse().expect("prints the id");

    let list = env.run(
        &["template", "list", "--tenant", "acme.test", "--json"],
        None,
    );
    list.ok();
    let v: Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(v[0]["id"], id);
    assert_eq!(
        v[0]["variables"],
        json!(["due", "name", "plan", "tenant", "unsubscribe_url"])
    );
    let plain = env.run(&["template", "list", "--tenant", "acme.test"], None);
    plain.ok();
    assert!(plain.stdout.contains("Welcome"), "{}", plain.stdout);

    let show = env.run(
        &["template", "show", "--tenant", "acme.test", "welcome"],
        None,
    );
    show.ok();
    assert!(show.stdout.contains("{{ plan }}"), "{}", show.stdout);
    let show = env.run(
        &[
            "template",
            "show",
            "--tenant",
            "acme.test",
            &id.to_string(),
            "--json",
        ],
        None,
    );
    show.ok();
    assert_eq!(
        serde_json::from_str::<Value>(&show.stdout).unwrap()["name"],
        "Welcome"
    );

    let preview = env.run(
        &[
            "template",
            "preview",
            "--tenant",
            "acme.test",
            "--template",
            "Welcome",
            "--group",
            "Customers",
            "--email",
            "ZOE@example.com",
        ],
        None,
    );
    preview.ok();
    let out = preview.stdout.replace("\r\n", "\n");
    for needle in [
        "From: ",
        "<news@acme.test>",
        "To: ",
        "<zoe@example.com>",
        "Subject: Welcome =?utf-8?",
        "Message-ID: <",
        "@acme.test>",
        "Date: ",
        "List-Unsubscribe: <mailto:news@acme.test?subject=unsubscribe>",
        "multipart/alternative",
        "Content-Type: text/plain",
        "Content-Type: text/html",
        "05 March 2026",
        "Pro &lt;b&gt;",
        "Acme &amp; S=C3=B6hne",
    ] {
        assert!(out.contains(needle), "preview lacks {needle:?}:\n{out}");
    }
    assert!(
        !out.contains("List-Unsubscribe-Post"),
        "no https URL, no one-click: {out}"
    );

    // The nameless contact has no `name`: the error names the variable and the recipient.
    env.run(
        &[
            "template",
            "preview",
            "--tenant",
            "acme.test",
            "--template",
            "Welcome",
            "--group",
            "Customers",
            "--email",
            "bare@example.com",
        ],
        None,
    )
    .fails_with(1, "undefined variable 'name'")
    .fails_with(1, "bare@example.com");

    env.run(
        &[
            "template",
            "preview",
            "--tenant",
            "acme.test",
            "--template",
            "Welcome",
            "--group",
            "Customers",
            "--email",
            "nobody@example.com",
        ],
        None,
    )
    .fails_with(1, "not a contact");

    // Batch variables (--vars) fill what the contact lacks; the contact's own win.
    let html = write(env, "spring.html", "<p>{{ campaign }} / {{ plan }}</p>");
    env.run(
        &[
            "template",
            "create",
            "--tenant",
            "acme.test",
            "--name",
            "Spring",
            "--subject",
            "{{ campaign }} offer",
            "--html-file",
            &html,
        ],
        None,
    )
    .ok();
    let base = [
        "template",
        "preview",
        "--tenant",
        "acme.test",
        "--template",
        "Spring",
        "--group",
        "Customers",
        "--email",
        "zoe@example.com",
    ];
    env.run(&base, None)
        .fails_with(1, "undefined variable 'campaign' in the subject");
    let mut args = base.to_vec();
    args.extend(["--vars", r#"{"campaign": "Spring", "plan": "Basic"}"#]);
    let out = env.run(&args, None);
    out.ok();
    assert!(
        out.stdout.contains("Subject: Spring offer"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Spring / Pro &lt;b&gt;"),
        "{}",
        out.stdout
    );
    let mut args = base.to_vec();
    args.extend(["--vars", "[1]"]);
    env.run(&args, None).fails_with(2, "JSON object");
    f.store.close().await;
    let _ = f.scope;
}

#[test]
fn template_create_reports_syntax_errors_with_line_and_column() {
    let env = Env::new();
    env.create_tenant("Acme", "acme.test").ok();
    let html = write(&env, "bad.html", "<p>ok</p>\n<p>{{ name }</p>\n");
    env.run(
        &[
            "template",
            "create",
            "--tenant",
            "acme.test",
            "--name",
            "Bad",
            "--subject",
            "Hi",
            "--html-file",
            &html,
        ],
        None,
    )
    .fails_with(1, "syntax error in the HTML body at line 2, column");
    env.run(
        &[
            "template",
            "create",
            "--tenant",
            "acme.test",
            "--name",
            "Bad",
            "--subject",
            "Hi {% if %}",
            "--html-file",
            &html,
        ],
        None,
    )
    .fails_with(1, "syntax error in the subject");
    env.run(
        &[
            "template",
            "create",
            "--tenant",
            "acme.test",
            "--name",
            "X",
            "--subject",
            "Hi",
            "--html-file",
            "/nonexistent/file.html",
        ],
        None,
    )
    .fails_with(2, "cannot read HTML file");
    env.run(&["template", "list"], None)
        .fails_with(2, "--tenant");
}

fn smtp_set(env: &Env, port: u16, security: &str, extra: &[&str], stdin: Option<&str>) -> Run {
    let port = port.to_string();
    let mut args = vec![
        "smtp",
        "set",
        "--tenant",
        "acme.test",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--security",
        security,
        "--from",
        "news@acme.test",
        "--reply-to",
        "help@acme.test",
    ];
    args.extend_from_slice(extra);
    env.run(&args, stdin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_settings_cli_keeps_the_password_secret() {
    let f = fixture().await;
    let env = &f.env;
    smtp_set(
        env,
        2525,
        "starttls",
        &["--username", "mailer", "--password-stdin", "--rate", "50"],
        Some("pa55word\n"),
    )
    .ok();

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = env.config_dir().join("secret.key");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "key file mode");
    }
    let show = env.run(&["smtp", "show", "--tenant", "acme.test", "--json"], None);
    show.ok();
    let v: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(v["host"], "127.0.0.1");
    assert_eq!(v["security"], "starttls");
    assert_eq!(v["password_set"], true);
    assert_eq!(v["rate_per_second"], 50);
    assert!(v.get("password_enc").is_none());
    assert!(!show.stdout.contains("pa55word"));
    let human = env.run(&["smtp", "show", "--tenant", "acme.test"], None);
    human.ok();
    assert!(human.stdout.contains("set (encrypted)"), "{}", human.stdout);
    assert!(!human.stdout.contains("pa55word") && !human.stdout.contains("v1:"));

    let tenant = f.store.get_tenant(f.scope).await.unwrap();
    let raw = raw_settings(&f.store, tenant.id).await;
    assert!(raw.contains("\"password_enc\":\"v1:"), "{raw}");
    assert!(!raw.contains("pa55word"), "{raw}");

    // Changing the rate keeps the stored password of the same user.
    smtp_set(
        env,
        2525,
        "starttls",
        &["--username", "mailer", "--rate", "7"],
        None,
    )
    .ok();
    let show = env.run(&["smtp", "show", "--tenant", "acme.test", "--json"], None);
    let v: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(v["password_set"], true);
    assert_eq!(v["rate_per_second"], 7);

    // A different key cannot decrypt: a clear error, no panic.
    let other = SecretKey::generate_base64();
    env.run_env(
        &["smtp", "test", "--tenant", "acme.test"],
        None,
        &[("RECALLIQ_SECRET_KEY", &other)],
    )
    .fails_with(
        1,
        "cannot decrypt SMTP password: wrong key (RECALLIQ_SECRET_KEY or ",
    )
    .fails_with(1, "secret.key)");

    // Usage errors.
    env.run(
        &["smtp", "set", "--tenant", "acme.test", "--host", "h"],
        None,
    )
    .fails_with(2, "--port");
    env.run(
        &[
            "smtp",
            "set",
            "--tenant",
            "acme.test",
            "--host",
            "h.test",
            "--port",
            "25",
            "--security",
            "none",
            "--from",
            "stranger@acme.test",
        ],
        None,
    )
    .fails_with(1, "not an active sender address");

    // Outbox transport.
    let dir = env.dir.path().join("out");
    env.run(
        &[
            "smtp",
            "set",
            "--tenant",
            "acme.test",
            "--outbox",
            dir.to_str().unwrap(),
        ],
        None,
    )
    .ok();
    let show = env.run(&["smtp", "show", "--tenant", "acme.test", "--json"], None);
    assert_eq!(
        serde_json::from_str::<Value>(&show.stdout).unwrap()["transport"],
        "outbox"
    );
    create_template(env).ok();
    let sent = env.run(
        &[
            "template",
            "send-test",
            "--tenant",
            "acme.test",
            "--template",
            "Welcome",
            "--group",
            "Customers",
            "--contact",
            "zoe@example.com",
            "--to",
            "qa@example.org",
        ],
        None,
    );
    sent.ok();
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    let eml = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(eml.contains("To: qa@example.org"), "{eml}");
    f.store.close().await;
}

fn assert_welcome_message(m: &crate::support::smtp::Received, to: &str) {
    assert_eq!(m.rcpt_to, vec![to.to_string()]);
    assert_eq!(m.mail_from, "news@acme.test");
    let from = m.header("From").unwrap();
    assert!(
        from.ends_with("<news@acme.test>") && from.contains("=?utf-8?"),
        "{from}"
    );
    assert_eq!(m.header("To").unwrap(), to);
    assert_eq!(m.header("Reply-To").unwrap(), "help@acme.test");
    assert!(m.header("Subject").unwrap().contains("=?utf-8?"));
    assert!(m.header("Message-ID").unwrap().ends_with("@acme.test>"));
    assert!(m.header("Date").is_some());
    assert!(
        m.header("List-Unsubscribe")
            .unwrap()
            .contains("mailto:news@acme.test")
    );
    assert!(
        m.header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative")
    );
    for (k, v) in m.headers() {
        assert!(!v.contains('\r') && !v.contains('\n'), "{k}: {v:?}");
    }
    assert!(m.data.contains("Content-Type: text/plain"));
    assert!(m.data.contains("Content-Type: text/html"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_test_and_send_test_plain_with_auth() {
    let f = fixture().await;
    let env = &f.env;
    let sink = SmtpSink::start(SinkConfig {
        users: vec![("mailer".into(), "pa55word".into())],
        require_auth: true,
        reject: ["nobody@example.org".to_string()].into(),
        ..SinkConfig::default()
    });
    smtp_set(
        env,
        sink.port(),
        "none",
        &["--username", "mailer", "--password-stdin"],
        Some("pa55word\n"),
    )
    .ok();
    let test = env.run(&["smtp", "test", "--tenant", "acme.test"], None);
    test.ok();
    for needle in [
        "connected to 127.0.0.1:",
        "greeting: 220 sink.test",
        "EHLO: ",
        "warning: AUTH over an unencrypted connection",
        "AUTH as mailer: 235",
        "QUIT: 221",
    ] {
        assert!(
            test.stdout.contains(needle),
            "lacks {needle:?}:\n{}",
            test.stdout
        );
    }

    create_template(env).ok();
    let sent = env.run(
        &[
            "template",
            "send-test",
            "--tenant",
            "acme.test",
            "--template",
            "Welcome",
            "--group",
            "Customers",
            "--contact",
            "zoe@example.com",
            "--to",
            "qa@example.org",
        ],
        None,
    );
    sent.ok();
    assert!(
        sent.stdout.contains("250 2.0.0 Ok: queued as SINK1"),
        "{}",
        sent.stdout
    );
    let msgs = sink.wait_for(1, Duration::from_secs(5));
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert!(!m.tls);
    assert_eq!(m.auth_user.as_deref(), Some("mailer"));
    assert_welcome_message(m, "qa@example.org");

    // A rejected recipient: exit 1 with the server's reply.
    env.run(
        &[
            "template",
            "send-test",
            "--tenant",
            "acme.test",
            "--template",
            "Welcome",
            "--group",
            "Customers",
            "--contact",
            "zoe@example.com",
            "--to",
            "nobody@example.org",
        ],
        None,
    )
    .fails_with(1, "550");

    // Wrong password: AUTH fails with the reply.
    smtp_set(
        env,
        sink.port(),
        "none",
        &["--username", "mailer", "--password-stdin"],
        Some("nope\n"),
    )
    .ok();
    let bad = env.run(&["smtp", "test", "--tenant", "acme.test"], None);
    bad.fails_with(1, "AUTH");
    assert!(
        bad.stdout.contains("greeting: 220"),
        "partial report: {}",
        bad.stdout
    );
    f.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_test_and_send_test_over_starttls() {
    let f = fixture().await;
    let env = &f.env;
    let sink = SmtpSink::start(SinkConfig {
        starttls: true,
        users: vec![("mailer".into(), "pa55word".into())],
        ..SinkConfig::default()
    });
    // Without --insecure-tls the self-signed certificate is refused.
    smtp_set(env, sink.port(), "starttls", &[], None).ok();
    env.run(&["smtp", "test", "--tenant", "acme.test"], None)
        .fails_with(1, "");
    smtp_set(
        env,
        sink.port(),
        "starttls",
        &["--username", "mailer", "--password-stdin", "--insecure-tls"],
        Some("pa55word\n"),
    )
    .ok();
    let test = env.run(&["smtp", "test", "--tenant", "acme.test"], None);
    test.ok();
    for needle in [
        "greeting: 220",
        "STARTTLS: ok",
        "AUTH as mailer: 235",
        "QUIT: 221",
    ] {
        assert!(
            test.stdout.contains(needle),
            "lacks {needle:?}:\n{}",
            test.stdout
        );
    }
    create_template(env).ok();
    env.run(
        &[
            "template",
            "send-test",
            "--tenant",
            "acme.test",
            "--template",
            "Welcome",
            "--group",
            "Customers",
            "--contact",
            "zoe@example.com",
            "--to",
            "qa@example.org",
        ],
        None,
    )
    .ok();
    let msgs = sink.wait_for(1, Duration::from_secs(5));
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].tls, "sent after STARTTLS");
    assert_welcome_message(&msgs[0], "qa@example.org");
    // STARTTLS required but not offered: refused, not downgraded.
    let plain = SmtpSink::start(SinkConfig::default());
    smtp_set(env, plain.port(), "starttls", &[], None).ok();
    env.run(&["smtp", "test", "--tenant", "acme.test"], None)
        .fails_with(1, "does not offer STARTTLS");
    f.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_connection_over_implicit_tls_with_deferrals_and_drops() {
    let sink = SmtpSink::start(SinkConfig {
        implicit_tls: true,
        defer_first: 1,
        drop_first_data: 1,
        reply_delay: Duration::from_millis(5),
        ..SinkConfig::default()
    });
    let mut server = SmtpServer::new("127.0.0.1", sink.port(), Security::Tls);
    server.tls_insecure = true;
    let unsub = recalliq::mail::Unsubscribe {
        mailto: "u@acme.test".into(),
        https_url: Some("https://acme.test/u/1".into()),
    };
    let rendered = recalliq::render::Rendered {
        subject: "Hi".into(),
        html: None,
        text: "Hello".into(),
    };
    let parts = recalliq::mail::MessageParts {
        from_email: "news@acme.test",
        from_name: None,
        to_email: "r@example.org",
        to_name: Some("R"),
        reply_to: None,
        unsubscribe: &unsub,
    };
    let msg = recalliq::mail::build_message(&parts, &rendered).unwrap();
    let (mut conn, report) = recalliq::mail::connect(&server, None, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(conn.is_encrypted());
    assert!(report.to_string().contains("TLS established"), "{report}");
    let err = conn.send(&msg).await.unwrap_err();
    assert_eq!(err.code, Some(451), "{err}");
    assert!(!err.permanent);
    // lettre may close the connection after a refusal: reconnect when broken.
    if conn.is_broken() {
        conn = recalliq::mail::connect(&server, None, Duration::from_secs(5))
            .await
            .unwrap()
            .0;
    }
    // The first DATA is dropped by the server: a connection error, not a reply.
    let err = conn.send(&msg).await.unwrap_err();
    assert_eq!(err.code, None, "{err}");
    let (mut conn, _) = recalliq::mail::connect(&server, None, Duration::from_secs(5))
        .await
        .unwrap();
    let ok = conn.send(&msg).await.unwrap();
    assert_eq!(ok.code().to_string(), "250");
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].tls);
    assert_eq!(
        msgs[0].header("List-Unsubscribe-Post").unwrap(),
        "List-Unsubscribe=One-Click"
    );
    assert!(
        msgs[0]
            .header("List-Unsubscribe")
            .unwrap()
            .contains("<https://acme.test/u/1>")
    );
    assert!(sink.connections() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_server_times_out_and_commands_are_recorded() {
    let sink = SmtpSink::start(SinkConfig {
        reply_delay: Duration::from_millis(500),
        ..SinkConfig::default()
    });
    let server = SmtpServer::new("127.0.0.1", sink.port(), Security::None);
    let err = recalliq::mail::connect(&server, None, Duration::from_millis(100))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("timed out"), "{err}");
    let quick = SmtpSink::start(SinkConfig::default());
    let server = SmtpServer::new("127.0.0.1", quick.port(), Security::None);
    let report = recalliq::mail::test_connection(&server, None)
        .await
        .unwrap();
    assert!(report.to_string().contains("QUIT: 221"), "{report}");
    let cmds = quick.commands();
    assert!(cmds[0].starts_with("EHLO "), "{cmds:?}");
    assert_eq!(cmds.last().map(String::as_str), Some("QUIT"));
}

/// TCP_NODELAY is what keeps a connection from waiting for the server's delayed ACK after
/// every message (~40 ms each, see DESIGN.md): 100 messages must take well under a second
/// of that, so 3 s is a generous bound on a busy machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_sends_without_delayed_ack_stalls() {
    let sink = SmtpSink::start(SinkConfig::default());
    let server = SmtpServer::new("127.0.0.1", sink.port(), Security::None);
    let unsub = recalliq::mail::Unsubscribe {
        mailto: "u@acme.test".into(),
        https_url: None,
    };
    let rendered = recalliq::render::Rendered {
        subject: "Hi".into(),
        html: Some("<p>Hello</p>".into()),
        text: "Hello".into(),
    };
    let (mut conn, _) = recalliq::mail::connect(&server, None, Duration::from_secs(5))
        .await
        .unwrap();
    let start = std::time::Instant::now();
    for i in 0..100 {
        let to = format!("r{i}@example.org");
        let parts = recalliq::mail::MessageParts {
            from_email: "news@acme.test",
            from_name: Some("Acme"),
            to_email: &to,
            to_name: None,
            reply_to: None,
            unsubscribe: &unsub,
        };
        let msg = recalliq::mail::build_message(&parts, &rendered).unwrap();
        conn.send(&msg).await.unwrap();
    }
    let took = start.elapsed();
    eprintln!("100 messages on one connection: {took:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(sink.messages().len(), 100);
    let ids: std::collections::HashSet<String> = sink
        .messages()
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert_eq!(ids.len(), 100, "Message-IDs are unique");
}

fn plain_message(to: &str) -> recalliq::mail::Message {
    let unsub = recalliq::mail::Unsubscribe {
        mailto: "u@acme.test".into(),
        https_url: None,
    };
    let rendered = recalliq::render::Rendered {
        subject: "Hi".into(),
        html: None,
        text: ".a line that starts with a dot\r\nHello".into(),
    };
    let parts = recalliq::mail::MessageParts {
        from_email: "news@acme.test",
        from_name: None,
        to_email: to,
        to_name: None,
        reply_to: None,
        unsubscribe: &unsub,
    };
    recalliq::mail::build_message(&parts, &rendered).unwrap()
}

/// Issue #6: with PIPELINING offered, MAIL FROM + RCPT TO + DATA arrive in one write; a
/// recipient refused inside such a group is a permanent 550 and the same session sends the
/// next message (RSET, no reconnection). A server that answers DATA with 354 although it
/// refused the only recipient (`lenient_data`) gets an empty transfer, then RSET: nothing is
/// delivered. Without PIPELINING every command waits for its reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelining_groups_the_envelope_and_survives_a_refused_recipient() {
    for lenient_data in [false, true] {
        let sink = SmtpSink::start(SinkConfig {
            pipelining: true,
            lenient_data,
            reject: ["bad@example.org".to_string()].into(),
            ..SinkConfig::default()
        });
        let server = SmtpServer::new("127.0.0.1", sink.port(), Security::None);
        let (mut conn, report) = recalliq::mail::connect(&server, None, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(conn.is_pipelining());
        assert!(report.to_string().contains("PIPELINING"), "{report}");
        let ok = conn.send(&plain_message("a@example.org")).await.unwrap();
        assert_eq!(ok.code().to_string(), "250");
        let err = conn
            .send(&plain_message("bad@example.org"))
            .await
            .unwrap_err();
        assert_eq!(err.code, Some(550), "{err}");
        assert!(err.permanent, "{err}");
        assert!(
            err.message
                .starts_with("permanent error (550): 5.1.1 <bad@example.org>"),
            "{err}"
        );
        assert!(!conn.is_broken(), "a refusal does not break the session");
        conn.send(&plain_message("b@example.org")).await.unwrap();
        conn.quit().await.unwrap();

        assert_eq!(sink.connections(), 1, "one session for all three");
        let msgs = sink.messages();
        let to: Vec<String> = msgs.iter().map(|m| m.rcpt_to.join(",")).collect();
        assert_eq!(to, ["a@example.org", "b@example.org"]);
        assert!(
            msgs[0]
                .data
                .contains("\r\n.a line that starts with a dot\r\n"),
            "dot-stuffed and unstuffed: {}",
            msgs[0].data
        );
        assert!(!msgs[0].data.contains("..a line"), "{}", msgs[0].data);
        let groups = sink.command_groups();
        let envelopes = groups
            .iter()
            .filter(|g| {
                g.len() == 3
                    && g[0].starts_with("MAIL FROM:<news@acme.test>")
                    && g[1].starts_with("RCPT TO:<")
                    && g[2] == "DATA"
            })
            .count();
        assert_eq!(envelopes, 3, "each envelope in one write: {groups:?}");
        let cmds = sink.commands();
        assert!(cmds.iter().any(|c| c == "RSET"), "{cmds:?}");
        assert_eq!(cmds.last().map(String::as_str), Some("QUIT"));
    }

    let sink = SmtpSink::start(SinkConfig::default());
    let server = SmtpServer::new("127.0.0.1", sink.port(), Security::None);
    let (mut conn, _) = recalliq::mail::connect(&server, None, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(!conn.is_pipelining());
    conn.send(&plain_message("a@example.org")).await.unwrap();
    conn.quit().await.unwrap();
    let groups = sink.command_groups();
    assert!(groups.iter().all(|g| g.len() == 1), "{groups:?}");
    assert_eq!(sink.messages().len(), 1);
}
