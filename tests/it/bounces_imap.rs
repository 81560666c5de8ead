//! `bounces watch` against a real IMAP server (dovecot, see support/imap.rs), with the real
//! binary on both backends: a batch sent to the SMTP sink, reports APPENDed to the INBOX,
//! `bounces watch --once`, then logs, suppression list, audit rows and the folders checked.
//! Also: the mailbox settings (password encrypted, never shown), a wrong password, TLS and
//! STARTTLS, and the watching loop stopped by SIGTERM.

use std::time::{Duration, Instant};

use crate::bounces::{message_to, send_news_batch, unsubscribe_targets};
use crate::bounces_corpus as corpus;
use crate::store_test;
use crate::support::cli::{Env, on_both_backends};
use crate::support::imap::{Dovecot, PASSWORD, USER};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Tenant acme.test with ann, bob and cat, batch sent through the sink, and a second tenant
/// other.test; returns the batch id and the messages received.
fn send_batch(env: &Env) -> (String, Vec<crate::support::smtp::Received>) {
    let sent = send_news_batch(
        env,
        &["ann@example.com", "bob@example.com", "cat@example.com"],
        b"<p>Hello.</p>",
    );
    env.create_tenant("Other", "other.test").ok();
    sent
}

fn mailbox_set(env: &Env, extra: &[&str], port: u16, security: &str, password: &str) -> i32 {
    let port = port.to_string();
    let mut args = vec![
        "bounces",
        "mailbox",
        "set",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--security",
        security,
        "--username",
        USER,
        "--password-stdin",
    ];
    args.extend_from_slice(extra);
    env.run(&args, Some(&format!("{password}\n"))).code
}

#[test]
fn watch_once_end_to_end() {
    on_both_backends(|env| {
        let Some(imap) = Dovecot::start() else {
            return;
        };
        let (batch, msgs) = send_batch(env);
        let mid = |to: &str| message_to(&msgs, to).header("Message-ID").unwrap();
        let (bob_mailto, _) = unsubscribe_targets(message_to(&msgs, "bob@example.com"));
        let rt = rt();
        rt.block_on(async {
            let mut c = imap.client().await;
            c.append(
                "INBOX",
                corpus::gmail_dsn("ann@example.com", &mid("ann@example.com")).as_bytes(),
            )
            .await;
            c.append(
                "INBOX",
                corpus::unsubscribe_mail("bob@example.com", &bob_mailto).as_bytes(),
            )
            .await;
            // Forged: quotes a Message-ID this installation never sent.
            c.append(
                "INBOX",
                corpus::gmail_dsn("cat@example.com", "<never-sent.1@acme.test>").as_bytes(),
            )
            .await;
            c.append("INBOX", b"Subject: hello\r\n\r\njust a note\r\n")
                .await;
            c.logout().await;
        });

        // Settings: stored with the password encrypted, never shown.
        env.run(&["bounces", "watch", "--once"], None)
            .fails_with(1, "no bounce mailbox is configured");
        assert_eq!(mailbox_set(env, &[], imap.port, "none", PASSWORD), 0);
        let shown = env.run(&["bounces", "mailbox", "show"], None);
        shown.ok();
        assert!(shown.stdout.contains("set (encrypted)"), "{}", shown.stdout);
        assert!(
            shown.stdout.contains("RecallIQ/Processed"),
            "{}",
            shown.stdout
        );
        let json = env.json(&["bounces", "mailbox", "show", "--json"]);
        assert_eq!(json["password_set"], true, "{json}");
        assert_eq!(json["username"], USER, "{json}");
        assert!(json.get("password_enc").is_none(), "{json}");
        assert!(!json.to_string().contains(PASSWORD), "{json}");
        let dump = env.run(&["bounces", "mailbox", "show", "--json"], None);
        assert!(!dump.stdout.contains(PASSWORD) && !dump.stderr.contains(PASSWORD));

        let sum = env.json(&["bounces", "watch", "--once", "--json"]);
        assert_eq!(sum["messages"], 4, "{sum}");
        assert_eq!(sum["hard"], 1, "{sum}");
        assert_eq!(sum["unsubscribed"], 1, "{sum}");
        assert_eq!(sum["suppressed"], 2, "{sum}");
        assert_eq!(sum["unmatched"], 1, "{sum}");
        assert_eq!(sum["unrecognized"], 1, "{sum}");
        assert_eq!(sum["moved_processed"], 2, "{sum}");
        assert_eq!(sum["moved_unmatched"], 2, "{sum}");

        // Logs, suppression list, audit.
        let logs = env.json(&["logs", "--batch", &batch, "--json"]);
        let status = |to: &str| {
            logs.as_array()
                .unwrap_or_else(|| panic!("{logs}"))
                .iter()
                .find(|l| l["recipient_email"] == to)
                .unwrap_or_else(|| panic!("{to}: {logs}"))["status"]
                .clone()
        };
        assert_eq!(status("ann@example.com"), "bounced");
        assert_eq!(status("bob@example.com"), "sent");
        assert_eq!(
            status("cat@example.com"),
            "sent",
            "a forged report marks nobody"
        );
        let sup = env.run(&["suppress", "list", "--tenant", "acme.test"], None);
        sup.ok();
        assert!(sup.stdout.contains("ann@example.com"), "{}", sup.stdout);
        assert!(sup.stdout.contains("bob@example.com"), "{}", sup.stdout);
        assert!(!sup.stdout.contains("cat@example.com"), "{}", sup.stdout);
        let audit = env.json(&[
            "audit",
            "list",
            "--tenant",
            "acme.test",
            "--search",
            "bob@",
            "--json",
        ]);
        let rows: Vec<_> = audit
            .as_array()
            .unwrap_or_else(|| panic!("{audit}"))
            .iter()
            .filter(|r| r["action"] == "unsubscribe")
            .collect();
        assert_eq!(rows.len(), 1, "{audit}");
        assert!(
            rows[0]["target"]
                .as_str()
                .unwrap()
                .contains("via unsubscribe mail (bounces watch)"),
            "{audit}"
        );
        let watch_rows = env.json(&["audit", "list", "--search", "bounces watch", "--json"]);
        assert!(
            watch_rows
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["action"] == "bounces watch"),
            "the command itself is audited by the CLI hook: {watch_rows}"
        );

        // The folders: nothing deleted, nothing flagged.
        rt.block_on(async {
            let mut c = imap.client().await;
            assert!(c.messages("INBOX").await.is_empty());
            let processed = c.messages("RecallIQ/Processed").await;
            assert_eq!(processed.len(), 2, "{processed:?}");
            let unmatched = c.messages("RecallIQ/Unmatched").await;
            assert_eq!(unmatched.len(), 2);
            assert!(
                unmatched
                    .iter()
                    .any(|m| m.text().contains("never-sent.1@acme.test")),
                "the forged report is kept"
            );
            for m in processed.iter().chain(&unmatched) {
                assert!(
                    !m.flags
                        .iter()
                        .any(|f| f.contains("Seen") || f.contains("Deleted")),
                    "{:?}",
                    m.flags
                );
            }
            // A second poll finds nothing; a report to another tenant's mailbox changes
            // nothing of acme.test's.
            c.create("Other").await;
            c.append(
                "Other",
                corpus::gmail_dsn("cat@example.com", &mid("cat@example.com")).as_bytes(),
            )
            .await;
            c.logout().await;
        });
        let again = env.json(&["bounces", "watch", "--once", "--json"]);
        assert_eq!(again["messages"], 0, "{again}");
        assert_eq!(
            mailbox_set(
                env,
                &["--tenant", "other.test", "--mailbox", "Other"],
                imap.port,
                "none",
                PASSWORD
            ),
            0
        );
        let other = env.json(&[
            "bounces",
            "watch",
            "--once",
            "--json",
            "--tenant",
            "other.test",
        ]);
        assert_eq!(
            (other["hard"].clone(), other["unmatched"].clone()),
            (0.into(), 1.into()),
            "{other}"
        );
        let logs = env.json(&["logs", "--batch", &batch, "--json"]);
        let cat = logs
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["recipient_email"] == "cat@example.com")
            .unwrap();
        assert_eq!(cat["status"], "sent", "{cat}");
        assert!(
            !env.run(&["suppress", "list", "--tenant", "acme.test"], None)
                .stdout
                .contains("cat@example.com")
        );

        // A wrong password: a clear error, exit code 1.
        assert_eq!(mailbox_set(env, &[], imap.port, "none", "wrong"), 0);
        env.run(&["bounces", "watch", "--once"], None)
            .fails_with(1, "refused the login of bounces");
        env.run(&["bounces", "watch", "--interval", "1"], None)
            .fails_with(1, "refused the login of bounces");
        // Nothing listening: exit code 1 naming the server.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        assert_eq!(mailbox_set(env, &[], closed, "none", PASSWORD), 0);
        env.run(&["bounces", "watch", "--once"], None)
            .fails_with(1, &format!("127.0.0.1:{closed}"));

        env.run(&["bounces", "mailbox", "clear"], None).ok();
        env.run(&["bounces", "mailbox", "show"], None)
            .fails_with(1, "no bounce mailbox");
    });
}

#[test]
fn watch_over_tls_and_starttls_and_until_sigterm() {
    let Some(imap) = Dovecot::start() else {
        return;
    };
    let env = Env::new();
    // The self-signed certificate is refused unless --insecure-tls says otherwise.
    assert_eq!(mailbox_set(&env, &[], imap.tls_port, "tls", PASSWORD), 0);
    env.run(&["bounces", "watch", "--once"], None)
        .fails_with(1, "TLS handshake");
    for (port, security) in [(imap.tls_port, "tls"), (imap.port, "starttls")] {
        assert_eq!(
            mailbox_set(&env, &["--insecure-tls"], port, security, PASSWORD),
            0
        );
        let sum = env.json(&["bounces", "watch", "--once", "--json"]);
        assert_eq!(sum["messages"], 0, "{security}: {sum}");
    }

    // The loop: picks up a message appended while it runs, stops on SIGTERM with exit 0.
    let child = env
        .command()
        .args(["bounces", "watch", "--interval", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rt = rt();
    rt.block_on(async {
        let mut c = imap.client().await;
        c.append("INBOX", b"Subject: hello\r\n\r\nnot a bounce\r\n")
            .await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.messages("RecallIQ/Unmatched").await.is_empty() {
            assert!(Instant::now() < deadline, "the loop did not poll");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        c.logout().await;
    });
    let st = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("watching bounces@127.0.0.1"), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 messages"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The server gone: the loop says so, retries with a backoff, and still stops on SIGTERM.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    assert_eq!(mailbox_set(&env, &[], closed, "none", PASSWORD), 0);
    let child = env
        .command()
        .args(["bounces", "watch", "--interval", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("IMAP server 127.0.0.1:{closed}: cannot connect"))
            && stderr.contains("retrying in 5 s"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "SIGTERM ends the backoff wait"
    );
}

store_test!(mailbox_settings_per_tenant_and_global, |store| async move {
    use recalliq::db::{Actor, BounceMailbox, MailboxOwner, Security, mailbox_secret_context};
    use recalliq::secrets::{KeySource, Secret, SecretKey};
    let (_, acme) = crate::support::tenant(&store, "acme.test").await;
    let (_, other) = crate::support::tenant(&store, "other.test").await;
    let all = Actor::system().all_tenants().unwrap();
    let key = SecretKey::from_bytes([7; 32], KeySource::Env);
    let make = |tenant_id: Option<i32>, host: &str| BounceMailbox {
        tenant_id,
        host: host.into(),
        port: 993,
        security: Security::Tls,
        username: "bounces".into(),
        password_enc: key
            .encrypt_bound(&Secret::new("hunter2"), &mailbox_secret_context(tenant_id))
            .unwrap(),
        mailbox: "INBOX".into(),
        processed_folder: "RecallIQ/Processed".into(),
        unmatched_folder: "RecallIQ/Unmatched".into(),
        tls_insecure: false,
        updated_at: None,
    };
    let global = MailboxOwner::Global(all);
    let acme_owner = MailboxOwner::Tenant(acme);
    assert_eq!(store.bounce_mailbox(global).await.unwrap(), None);
    store
        .set_bounce_mailbox(global, &make(None, "imap.global.test"))
        .await
        .unwrap();
    store
        .set_bounce_mailbox(acme_owner, &make(Some(acme.tenant_id()), "imap.acme.test"))
        .await
        .unwrap();
    // Replacing keeps one row per owner.
    store
        .set_bounce_mailbox(acme_owner, &make(Some(acme.tenant_id()), "imap2.acme.test"))
        .await
        .unwrap();
    let g = store.bounce_mailbox(global).await.unwrap().unwrap();
    let a = store.bounce_mailbox(acme_owner).await.unwrap().unwrap();
    assert_eq!((g.host.as_str(), g.tenant_id), ("imap.global.test", None));
    assert_eq!(
        (a.host.as_str(), a.tenant_id),
        ("imap2.acme.test", Some(acme.tenant_id()))
    );
    assert_eq!(
        store
            .bounce_mailbox(MailboxOwner::Tenant(other))
            .await
            .unwrap(),
        None
    );
    // Encrypted at rest, bound to its owner: another owner's context does not decrypt it.
    assert!(a.password_enc.starts_with("v1:") && !a.password_enc.contains("hunter2"));
    assert_eq!(
        key.decrypt_bound(&a.password_enc, &mailbox_secret_context(a.tenant_id))
            .unwrap()
            .expose(),
        "hunter2"
    );
    assert!(
        key.decrypt_bound(&a.password_enc, &mailbox_secret_context(None))
            .is_err()
    );
    assert!(
        key.decrypt_bound(
            &a.password_enc,
            &mailbox_secret_context(Some(other.tenant_id()))
        )
        .is_err()
    );
    // Nor is it an SMTP password of the tenant.
    assert!(key.decrypt(&a.password_enc, acme.tenant_id()).is_err());
    // Invalid settings are refused.
    let mut bad = make(None, "imap.global.test");
    bad.processed_folder = "INBOX".into();
    assert!(store.set_bounce_mailbox(global, &bad).await.is_err());
    let mut bad = make(None, "bad host");
    bad.port = 0;
    assert!(store.set_bounce_mailbox(global, &bad).await.is_err());
    assert!(store.clear_bounce_mailbox(acme_owner).await.unwrap());
    assert!(!store.clear_bounce_mailbox(acme_owner).await.unwrap());
    assert!(store.bounce_mailbox(global).await.unwrap().is_some());
});

/// The server goes away while `bounces watch` runs and comes back on the same port: the
/// loop reports the failure, retries, and processes what arrived meanwhile.
#[test]
fn watch_reconnects_when_the_server_comes_back() {
    use std::io::BufRead;
    let Some(first) = Dovecot::start() else {
        return;
    };
    let (port, tls_port) = (first.port, first.tls_port);
    let env = Env::new();
    assert_eq!(mailbox_set(&env, &[], port, "none", PASSWORD), 0);
    let mut child = env
        .command()
        .args(["bounces", "watch", "--interval", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first_poll = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a first poll");
    assert!(first_poll.contains("0 messages"), "{first_poll}");
    drop(first);
    // Down for a moment: long enough for at least one failed poll.
    std::thread::sleep(Duration::from_millis(2500));
    let second = Dovecot::start_on(port, tls_port).expect("dovecot again on the same port");
    let rt = rt();
    rt.block_on(async {
        let mut c = second.client().await;
        c.append("INBOX", b"Subject: hello\r\n\r\nwhile you were away\r\n")
            .await;
        c.logout().await;
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("a poll after the server came back");
        if line.contains("1 messages") {
            break;
        }
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("retrying in 5 s"), "{stderr}");
    rt.block_on(async {
        let mut c = second.client().await;
        assert_eq!(c.messages("RecallIQ/Unmatched").await.len(), 1);
        assert!(c.messages("INBOX").await.is_empty());
        c.logout().await;
    });
}
