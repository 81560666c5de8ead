//! Bounces and unsubscribes (issue #9): the corpus classified, and end to end on both
//! backends: a batch sent to the test SMTP server, reports dropped into a maildir and
//! ingested, logs and suppression updated, the next batch skipping those addresses; the
//! one-click endpoint over real TCP, with forged and replayed tokens.

use std::path::Path;
use std::time::Duration;

use recalliq::bounces::parse::Severity;
use recalliq::bounces::{IngestConfig, IngestSummary, Report, TokenKey, classify, ingest_path};
use recalliq::db::{
    NewBatch, NewContact, NewTemplate, Page, Security, SmtpServer, SmtpSettings, Store, TenantScope,
};
use recalliq::engine::{Engine, EngineConfig};
use recalliq::secrets::SecretKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::bounces_corpus as corpus;
use crate::store_test;
use crate::support::smtp::{Received, SinkConfig, SmtpSink};
use crate::support::tenant;

fn bounce(r: Report) -> recalliq::bounces::parse::Bounce {
    match r {
        Report::Bounce(b) => b,
        other => panic!("expected a bounce, got {other:?}"),
    }
}

#[test]
fn corpus_is_classified() {
    let mid = "<1a2b.c3d4@acme.test>";
    let to = "ann@example.com";
    let b = bounce(classify(
        corpus::postfix_dsn(
            to,
            Some(mid),
            "5.1.1",
            "550 5.1.1 <ann@example.com>: Recipient address rejected: User unknown",
        )
        .as_bytes(),
    ));
    assert_eq!(b.format, "rfc3464");
    assert_eq!(
        b.original_message_id.as_deref(),
        Some("1a2b.c3d4@acme.test")
    );
    assert_eq!(b.failures.len(), 1);
    assert_eq!(b.failures[0].email, to);
    assert_eq!(b.failures[0].severity, Severity::Hard);
    assert_eq!(b.failures[0].status.as_deref(), Some("5.1.1"));
    assert!(
        b.failures[0]
            .diagnostic
            .as_deref()
            .unwrap()
            .starts_with("550 5.1.1")
    );

    let soft = bounce(classify(
        corpus::postfix_dsn(to, Some(mid), "4.2.2", "452 4.2.2 Mailbox full").as_bytes(),
    ));
    assert_eq!(soft.failures[0].severity, Severity::Soft);

    for (name, raw) in [
        ("gmail", corpus::gmail_dsn(to, mid)),
        ("outlook", corpus::outlook_dsn(to, mid)),
    ] {
        let b = bounce(classify(raw.as_bytes()));
        assert_eq!(b.format, "rfc3464", "{name}");
        assert_eq!(
            b.original_message_id.as_deref(),
            Some("1a2b.c3d4@acme.test"),
            "{name}"
        );
        assert_eq!(b.failures[0].email, to, "{name}");
        assert_eq!(b.failures[0].severity, Severity::Hard, "{name}");
        assert!(
            b.failures[0]
                .status
                .as_deref()
                .unwrap()
                .starts_with("5.1.1"),
            "{name}"
        );
    }
    for (name, raw, code) in [
        ("exim", corpus::exim_text(to, mid), "5.1.1"),
        ("qmail", corpus::qmail_text(to, mid), "554"),
    ] {
        let b = bounce(classify(raw.as_bytes()));
        assert_eq!(b.format, "text", "{name}");
        assert!(b.quoted_headers, "{name}");
        assert_eq!(
            b.original_message_id.as_deref(),
            Some("1a2b.c3d4@acme.test"),
            "{name}"
        );
        assert_eq!(b.failures.len(), 1, "{name}: {:?}", b.failures);
        assert_eq!(b.failures[0].email, to, "{name}");
        assert_eq!(b.failures[0].status.as_deref(), Some(code), "{name}");
        assert_eq!(b.failures[0].severity, Severity::Hard, "{name}");
    }
    let bare = bounce(classify(corpus::bare_text_bounce(to, "452").as_bytes()));
    assert!(!bare.quoted_headers);
    assert_eq!(bare.original_message_id, None);
    assert_eq!(bare.failures[0].severity, Severity::Soft);

    assert_eq!(
        classify(corpus::delivered_notice(to).as_bytes()),
        Report::DeliveryNotice
    );
    for r in corpus::auto_replies(to) {
        assert_eq!(classify(r.as_bytes()), Report::AutoReply, "{r}");
    }
    let k = TokenKey::from_bytes(&[9; 32]);
    let t = k.sign(17, to);
    let mailto = recalliq::bounces::token::mailto_address("news@acme.test", &t);
    match classify(corpus::unsubscribe_mail(to, &mailto).as_bytes()) {
        Report::Unsubscribe(tok) => {
            assert_eq!(tok.log_id, 17);
            assert!(k.verify(&tok, to));
        }
        other => panic!("{other:?}"),
    }
    // A bounce quotes our List-Unsubscribe header: that is never an unsubscribe request.
    assert!(matches!(
        classify(corpus::exim_text(to, mid).as_bytes()),
        Report::Bounce(_)
    ));
    // Every prefix (cut anywhere, also inside UTF-8 sequences) and a byte-flipped copy of
    // every corpus message: no panic.
    let mut all = vec![
        corpus::postfix_dsn(to, Some(mid), "5.1.1", "550 5.1.1 ünïcödé"),
        corpus::gmail_dsn(to, mid),
        corpus::outlook_dsn(to, mid),
        corpus::exim_text(to, mid),
        corpus::qmail_text(to, mid),
        corpus::bare_text_bounce("ü@例え.jp", "550"),
    ];
    all.extend(corpus::auto_replies("Zoë <zoe@example.com>"));
    for m in &all {
        let bytes = m.as_bytes();
        for cut in (0..bytes.len()).step_by(23) {
            let _ = classify(&bytes[..cut]);
        }
        let flipped: Vec<u8> = bytes
            .iter()
            .enumerate()
            .map(|(i, b)| if i % 41 == 0 { b ^ 0x80 } else { *b })
            .collect();
        let _ = classify(&flipped);
    }
    for raw in corpus::malformed() {
        assert!(
            !matches!(classify(&raw), Report::Bounce(_) | Report::Unsubscribe(_)),
            "{:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        );
    }
}

/// Tenant `domain` sending through the sink to `user{i}@example.com`, i < n.
pub(crate) async fn setup(
    store: &Store,
    domain: &str,
    port: u16,
    n: usize,
) -> (TenantScope, i32, i32, i32) {
    let (_, scope) = tenant(store, domain).await;
    store
        .add_tenant_email(scope, &format!("news@{domain}"), Some("News"))
        .await
        .unwrap();
    let mut server = SmtpServer::new("127.0.0.1", port, Security::None);
    server.from = Some(format!("news@{domain}"));
    server.connections = 2;
    store
        .set_smtp_settings(scope, &SmtpSettings::Smtp(server))
        .await
        .unwrap();
    let template = store
        .create_template(
            scope,
            &NewTemplate {
                name: "News".into(),
                subject: "Spring news".into(),
                body_html: None,
                body_text: Some("Hello {{ name }}.\nUnsubscribe: {{ unsubscribe_url }}".into()),
                variables: None,
            },
        )
        .await
        .unwrap();
    let g = store.create_group(scope, "All", None).await.unwrap();
    for i in 0..n {
        store
            .add_contact(
                scope,
                g.id,
                &NewContact {
                    email: format!("user{i}@example.com"),
                    name: Some(format!("User {i}")),
                    variables: None,
                },
            )
            .await
            .unwrap();
    }
    let batch = new_batch(store, scope, template.id, g.id, "Spring").await;
    (scope, template.id, g.id, batch)
}

pub(crate) async fn new_batch(
    store: &Store,
    scope: TenantScope,
    template: i32,
    group: i32,
    name: &str,
) -> i32 {
    store
        .create_batch(
            scope,
            &NewBatch {
                name: name.into(),
                template_id: template,
                group_ids: vec![group],
                variables: None,
                scheduled_at: None,
            },
        )
        .await
        .unwrap()
        .id
}

pub(crate) async fn send(store: &Store, config_dir: &Path, base_url: Option<&str>) {
    let engine = Engine::new(
        store.clone(),
        EngineConfig {
            chunk: 8,
            poll: Duration::from_millis(20),
            flush_interval: Duration::from_millis(10),
            config_dir: Some(config_dir.to_path_buf()),
            public_base_url: base_url.map(str::to_string),
            ..EngineConfig::default()
        },
    );
    let (_tx, rx) = watch::channel(false);
    tokio::time::timeout(Duration::from_secs(60), engine.run(rx, true))
        .await
        .expect("engine finished in time")
        .unwrap();
}

pub(crate) fn message_to<'a>(msgs: &'a [Received], to: &str) -> &'a Received {
    msgs.iter()
        .find(|m| m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(to)))
        .unwrap_or_else(|| panic!("no message to {to}"))
}

/// The mailto address and https URL of a received message's List-Unsubscribe.
pub(crate) fn unsubscribe_targets(m: &Received) -> (String, Option<String>) {
    let h = m.header("List-Unsubscribe").expect("List-Unsubscribe");
    let mut mailto = None;
    let mut https = None;
    for part in h.split(',') {
        let p = part.trim().trim_start_matches('<').trim_end_matches('>');
        if let Some(rest) = p.strip_prefix("mailto:") {
            mailto = Some(rest.split('?').next().unwrap().to_string());
        } else if p.starts_with("https://") {
            https = Some(p.to_string());
        }
    }
    (mailto.expect("mailto in List-Unsubscribe"), https)
}

fn write_maildir(dir: &Path, messages: &[(&str, Vec<u8>)]) {
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for (name, raw) in messages {
        std::fs::write(dir.join("new").join(name), raw).unwrap();
    }
}

pub(crate) async fn log_of(
    store: &Store,
    scope: TenantScope,
    batch: i32,
    email: &str,
) -> recalliq::db::EmailLog {
    store
        .list_email_logs(scope, batch, Page::first(1000), None)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.recipient_email == email)
        .unwrap()
}

pub(crate) async fn reason(store: &Store, scope: TenantScope, email: &str) -> Option<String> {
    store
        .list_suppressions(scope, Page::first(1000), Some(email))
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.email == email)
        .map(|s| s.reason)
}

/// The audit rows of applied unsubscribe requests in the tenant, oldest first.
pub(crate) async fn unsubscribe_audit(
    store: &Store,
    scope: TenantScope,
) -> Vec<recalliq::db::AuditRecord> {
    store
        .list_audit(
            recalliq::db::UserScope::Tenant(scope),
            &recalliq::db::AuditFilter::default(),
            Page::first(1000),
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.action == recalliq::bounces::ingest::ACTION_UNSUBSCRIBE)
        .collect()
}

store_test!(maildir_end_to_end, |store| async move {
    let sink = SmtpSink::start(SinkConfig::default());
    let (scope, template, group, batch) = setup(&store, "acme.test", sink.port(), 8).await;
    store.start_batch(scope, batch).await.unwrap();
    let keydir = tempfile::tempdir().unwrap();
    send(&store, keydir.path(), None).await;
    let msgs = sink.wait_for(8, Duration::from_secs(20));
    let mid = |i: usize| {
        message_to(&msgs, &format!("user{i}@example.com"))
            .header("Message-ID")
            .expect("Message-ID")
    };
    // Every message has its own Message-ID, stored on its log row.
    let mut ids: Vec<String> = (0..8).map(mid).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8);
    assert_eq!(
        log_of(&store, scope, batch, "user0@example.com")
            .await
            .message_id
            .as_deref(),
        Some(mid(0).as_str())
    );
    let (mailto5, https5) = unsubscribe_targets(message_to(&msgs, "user5@example.com"));
    assert!(mailto5.starts_with("news+unsubscribe-u"), "{mailto5}");
    assert_eq!(https5, None, "no https URL without a public base URL");
    let (mailto6, _) = unsubscribe_targets(message_to(&msgs, "user6@example.com"));
    assert_ne!(mailto5, mailto6, "tokens are per recipient");

    let forged_mailto = {
        // user6's token with user7's log id: a forgery.
        let t6 = mailto6
            .split("unsubscribe-")
            .nth(1)
            .unwrap()
            .split('@')
            .next()
            .unwrap();
        let log7 = log_of(&store, scope, batch, "user7@example.com").await.id;
        let forged = format!("u{log7}-{}", t6.split('-').nth(1).unwrap());
        format!("news+unsubscribe-{forged}@acme.test")
    };
    let mail = tempfile::tempdir().unwrap();
    let md = mail.path().join("Maildir");
    let mut inbox: Vec<(&str, Vec<u8>)> = vec![
        (
            "01.postfix-hard",
            corpus::postfix_dsn(
                "user0@example.com",
                Some(&mid(0)),
                "5.1.1",
                "550 5.1.1 <user0@example.com>: Recipient address rejected: User unknown",
            )
            .into_bytes(),
        ),
        (
            "02.exim-hard",
            corpus::exim_text("user1@example.com", &mid(1)).into_bytes(),
        ),
        // Soft, quoting no headers: matched by recipient and recent batch.
        (
            "03.bare-soft",
            corpus::bare_text_bounce("user2@example.com", "452").into_bytes(),
        ),
        (
            "04.soft-a",
            corpus::postfix_dsn(
                "user3@example.com",
                Some(&mid(3)),
                "4.2.2",
                "452 4.2.2 Mailbox full",
            )
            .into_bytes(),
        ),
        (
            "05.soft-b",
            corpus::postfix_dsn(
                "user3@example.com",
                Some(&mid(3)),
                "4.2.2",
                "452 4.2.2 Mailbox still full",
            )
            .into_bytes(),
        ),
        // Forged: quotes a Message-ID we never sent.
        (
            "06.forged",
            corpus::gmail_dsn("user4@example.com", "<never-sent.1@acme.test>").into_bytes(),
        ),
        // Foreign: no quoted headers, an address we never sent to.
        (
            "07.foreign",
            corpus::bare_text_bounce("stranger@example.org", "550").into_bytes(),
        ),
        (
            "08.unsubscribe",
            corpus::unsubscribe_mail("user5@example.com", &mailto5).into_bytes(),
        ),
        (
            "09.forged-unsubscribe",
            corpus::unsubscribe_mail("user7@example.com", &forged_mailto).into_bytes(),
        ),
        (
            "10.delivered",
            corpus::delivered_notice("user6@example.com").into_bytes(),
        ),
    ];
    for (i, r) in corpus::auto_replies("user6@example.com")
        .into_iter()
        .enumerate()
    {
        inbox.push((["11.auto-a", "11.auto-b", "11.auto-c"][i], r.into_bytes()));
    }
    for (i, raw) in corpus::malformed().into_iter().enumerate() {
        inbox.push((
            [
                "12.bad-a", "12.bad-b", "12.bad-c", "12.bad-d", "12.bad-e", "12.bad-f",
            ][i],
            raw,
        ));
    }
    write_maildir(&md, &inbox);

    let key = SecretKey::load(keydir.path()).unwrap();
    let cfg = IngestConfig {
        soft_limit: 2,
        soft_days: 7,
        token_key: Some(TokenKey::from_secret(&key)),
        ..IngestConfig::default()
    };
    let mut sum = IngestSummary::default();
    ingest_path(&store, &cfg, &md, &mut sum).await.unwrap();
    assert_eq!(sum.messages, inbox.len() as u64, "{sum:?}");
    assert_eq!(sum.hard, 2, "{sum:?}");
    assert_eq!(sum.soft, 3, "{sum:?}");
    assert_eq!(sum.unsubscribed, 1, "{sum:?}");
    assert_eq!(
        sum.suppressed, 4,
        "user0, user1, user3 (2 soft), user5: {sum:?}"
    );
    assert_eq!(sum.unmatched, 3, "forged, foreign, forged token: {sum:?}");
    assert_eq!(sum.auto_replies, 3, "{sum:?}");
    assert_eq!(sum.delivery_notices, 1, "{sum:?}");
    assert_eq!(sum.unrecognized, 6, "{sum:?}");
    assert_eq!(sum.duplicates, 0, "{sum:?}");

    // Logs and suppression list.
    for i in [0, 1] {
        let l = log_of(&store, scope, batch, &format!("user{i}@example.com")).await;
        assert_eq!(l.status, "bounced", "{l:?}");
        assert!(
            l.smtp_response.as_deref().unwrap().contains("5.1.1"),
            "{l:?}"
        );
        assert_eq!(
            reason(&store, scope, &format!("user{i}@example.com"))
                .await
                .as_deref(),
            Some("bounced")
        );
    }
    for i in [2, 3, 4, 6, 7] {
        let l = log_of(&store, scope, batch, &format!("user{i}@example.com")).await;
        assert_eq!(
            l.status, "sent",
            "soft bounces and forgeries leave the log: {l:?}"
        );
    }
    assert_eq!(
        reason(&store, scope, "user2@example.com").await,
        None,
        "1 soft bounce < limit 2"
    );
    assert_eq!(
        reason(&store, scope, "user3@example.com").await.as_deref(),
        Some("bounced")
    );
    assert_eq!(
        reason(&store, scope, "user4@example.com").await,
        None,
        "forged report"
    );
    assert_eq!(
        reason(&store, scope, "user5@example.com").await.as_deref(),
        Some("unsubscribed")
    );
    assert_eq!(
        reason(&store, scope, "user7@example.com").await,
        None,
        "forged token"
    );
    assert_eq!(store.count_suppressions(scope).await.unwrap(), 4);
    // The unsubscribe mail is audited (address, tenant, path); the forged one is not.
    let audit = unsubscribe_audit(&store, scope).await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].tenant_id, Some(scope.tenant_id()));
    assert_eq!(audit[0].outcome, "ok");
    assert!(
        audit[0]
            .target
            .starts_with("user5@example.com via unsubscribe mail (bounces ingest)"),
        "{audit:?}"
    );
    let counts = store.bounce_counts_for_batch(scope, batch).await.unwrap();
    assert_eq!(
        (
            counts.hard_bounced,
            counts.soft_bounced,
            counts.unsubscribed
        ),
        (2, 2, 1)
    );
    assert_eq!(
        store.bounce_counts_for_tenant(scope, None).await.unwrap(),
        counts
    );

    // Unmatched and unrecognized stay in new/; the rest moved to cur/; nothing deleted.
    let left: Vec<String> = std::fs::read_dir(md.join("new"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left.len(), 9, "{left:?}");
    assert!(left.iter().any(|n| n == "06.forged") && left.iter().any(|n| n == "12.bad-a"));
    assert_eq!(
        std::fs::read_dir(md.join("cur")).unwrap().count(),
        inbox.len() - 9
    );

    // Ingesting again changes nothing.
    let mut again = IngestSummary::default();
    ingest_path(&store, &cfg, &md, &mut again).await.unwrap();
    assert_eq!(
        (again.hard, again.soft, again.suppressed),
        (0, 0, 0),
        "{again:?}"
    );
    assert_eq!(again.duplicates, 5, "{again:?}");
    assert_eq!(store.count_suppressions(scope).await.unwrap(), 4);
    assert_eq!(
        store.bounce_counts_for_batch(scope, batch).await.unwrap(),
        counts
    );

    // The next batch skips every suppressed address.
    let next = new_batch(&store, scope, template, group, "Summer").await;
    let (_, queued) = store.start_batch(scope, next).await.unwrap();
    assert_eq!(queued, 4, "8 contacts - 4 suppressed");
    let queued_to: Vec<String> = store
        .list_email_logs(scope, next, Page::first(100), None)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.recipient_email)
        .collect();
    for i in [0, 1, 3, 5] {
        assert!(
            !queued_to.contains(&format!("user{i}@example.com")),
            "{queued_to:?}"
        );
    }
});

store_test!(tenants_are_kept_apart, |store| async move {
    // The same address receives from two tenants; a report quoting one tenant's message
    // suppresses it for that tenant only, and a bare report cannot tell which one is meant.
    let sink = SmtpSink::start(SinkConfig::default());
    let (a, _, _, batch_a) = setup(&store, "acme.test", sink.port(), 1).await;
    let (b, _, _, batch_b) = setup(&store, "globex.test", sink.port(), 1).await;
    store.start_batch(a, batch_a).await.unwrap();
    store.start_batch(b, batch_b).await.unwrap();
    let keydir = tempfile::tempdir().unwrap();
    send(&store, keydir.path(), None).await;
    let msgs = sink.wait_for(2, Duration::from_secs(20));
    let mid_a = msgs
        .iter()
        .find(|m| m.header("From").unwrap().contains("acme.test"))
        .unwrap()
        .header("Message-ID")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("bare.eml");
    std::fs::write(&bare, corpus::bare_text_bounce("user0@example.com", "550")).unwrap();
    let quoted = dir.path().join("quoted.eml");
    std::fs::write(&quoted, corpus::outlook_dsn("user0@example.com", &mid_a)).unwrap();
    let cfg = IngestConfig::default();
    let mut sum = IngestSummary::default();
    ingest_path(&store, &cfg, &bare, &mut sum).await.unwrap();
    assert_eq!(sum.unmatched, 1, "{sum:?}");
    ingest_path(&store, &cfg, &quoted, &mut sum).await.unwrap();
    assert_eq!(sum.hard, 1, "{sum:?}");
    assert_eq!(
        reason(&store, a, "user0@example.com").await.as_deref(),
        Some("bounced")
    );
    assert_eq!(reason(&store, b, "user0@example.com").await, None);
    assert_eq!(
        log_of(&store, b, batch_b, "user0@example.com").await.status,
        "sent"
    );
    // The files are left where they were.
    assert!(bare.exists() && quoted.exists());
});

/// One HTTP/1.1 request over a fresh connection; returns (status, body).
pub(crate) async fn http(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut out))
        .await
        .expect("response in time")
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub(crate) fn post(path: &str) -> Vec<u8> {
    let body = "List-Unsubscribe=One-Click";
    format!(
        "POST {path} HTTP/1.1\r\nHost: unsub.acme.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

store_test!(one_click_unsubscribe_endpoint, |store| async move {
    let sink = SmtpSink::start(SinkConfig::default());
    let (scope, _, _, batch) = setup(&store, "acme.test", sink.port(), 3).await;
    store.start_batch(scope, batch).await.unwrap();
    let keydir = tempfile::tempdir().unwrap();
    send(&store, keydir.path(), Some("https://unsub.acme.test/")).await;
    let msgs = sink.wait_for(3, Duration::from_secs(20));
    let m0 = message_to(&msgs, "user0@example.com");
    let (mailto, https) = unsubscribe_targets(m0);
    let https = https.expect("https URL with a public base URL");
    assert!(https.starts_with("https://unsub.acme.test/u/u"), "{https}");
    assert_eq!(
        mailto
            .split("unsubscribe-")
            .nth(1)
            .unwrap()
            .split('@')
            .next()
            .unwrap(),
        https.rsplit('/').next().unwrap(),
        "mailto and URL carry the same token"
    );
    assert_eq!(
        m0.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(
        m0.data.contains(&https),
        "{{{{ unsubscribe_url }}}} renders the URL"
    );
    let path0 = format!("/u/{}", https.rsplit('/').next().unwrap());
    let (_, https1) = unsubscribe_targets(message_to(&msgs, "user1@example.com"));
    let token1 = https1.unwrap().rsplit('/').next().unwrap().to_string();

    let key = TokenKey::from_secret(&SecretKey::load(keydir.path()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(recalliq::bounces::http::serve(
        listener,
        store.clone(),
        key,
        stop_rx,
    ));

    // GET only confirms (link scanners must not unsubscribe anyone).
    let (status, body) = http(
        addr,
        format!("GET {path0} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<form method=\"post\""), "{body}");
    assert!(body.contains("u****@example.com"), "{body}");
    assert!(
        !body.contains("user0@"),
        "the page does not print the address: {body}"
    );
    assert_eq!(reason(&store, scope, "user0@example.com").await, None);

    let (status, body) = http(addr, &post(&path0)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        reason(&store, scope, "user0@example.com").await.as_deref(),
        Some("unsubscribed")
    );
    // Replayed: same answer, nothing doubled.
    let (status, _) = http(addr, &post(&path0)).await;
    assert_eq!(status, 200);
    assert_eq!(store.count_suppressions(scope).await.unwrap(), 1);
    assert_eq!(
        store
            .bounce_counts_for_batch(scope, batch)
            .await
            .unwrap()
            .unsubscribed,
        1
    );

    // Forged: user1's tag on user2's id, a flipped tag, a made-up token, garbage.
    let log2 = log_of(&store, scope, batch, "user2@example.com").await.id;
    let tag1 = token1.split('-').nth(1).unwrap();
    let mut flipped = token1.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == '0' { '1' } else { '0' });
    for path in [
        format!("/u/u{log2}-{tag1}"),
        format!("/u/{flipped}"),
        "/u/u1-00000000000000000000".to_string(),
        "/u/../../etc/passwd".to_string(),
    ] {
        let (status, body) = http(addr, &post(&path)).await;
        assert_eq!(status, 404, "{path}: {body}");
        let (status, _) = http(addr, format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes()).await;
        assert_eq!(status, 404, "{path}");
    }
    assert_eq!(
        store.count_suppressions(scope).await.unwrap(),
        1,
        "forgeries suppress nobody"
    );

    // Limits and malformed requests.
    let huge = format!("GET /u/x HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(http(addr, huge.as_bytes()).await.0, 413);
    assert_eq!(
        http(
            addr,
            b"POST /u/x HTTP/1.1\r\nContent-Length: 999999\r\n\r\n"
        )
        .await
        .0,
        413
    );
    assert_eq!(http(addr, b"HELLO\r\n\r\n").await.0, 400);
    assert_eq!(
        http(
            addr,
            b"POST /u/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .await
        .0,
        400
    );
    assert_eq!(
        http(addr, format!("DELETE {path0} HTTP/1.1\r\n\r\n").as_bytes())
            .await
            .0,
        405
    );

    // The unsubscribe mail of the same token is a replay too.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("unsub.eml");
    std::fs::write(&f, corpus::unsubscribe_mail("user0@example.com", &mailto)).unwrap();
    let cfg = IngestConfig {
        token_key: Some(TokenKey::from_secret(
            &SecretKey::load(keydir.path()).unwrap(),
        )),
        ..IngestConfig::default()
    };
    let mut sum = IngestSummary::default();
    ingest_path(&store, &cfg, &f, &mut sum).await.unwrap();
    assert_eq!((sum.unsubscribed, sum.suppressed), (1, 0), "{sum:?}");
    assert_eq!(
        store
            .bounce_counts_for_batch(scope, batch)
            .await
            .unwrap()
            .unsubscribed,
        1
    );

    // Audited: the POST, its replay and the mail replay; no forgery.
    let audit = unsubscribe_audit(&store, scope).await;
    let targets: Vec<&str> = audit.iter().map(|a| a.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            format!(
                "user0@example.com via one-click unsubscribe (unsubscribe serve) (batch #{batch})"
            ),
            format!(
                "user0@example.com via one-click unsubscribe (unsubscribe serve) (batch #{batch}, already suppressed)"
            ),
            format!(
                "user0@example.com via unsubscribe mail (bounces ingest) (batch #{batch}, already suppressed)"
            ),
        ],
    );
    assert!(
        audit
            .iter()
            .all(|a| a.tenant_id == Some(scope.tenant_id()) && a.outcome == "ok"),
        "{audit:?}"
    );

    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops")
        .unwrap()
        .unwrap();
});

/// Through the real binary: tenant acme.test with `contacts` in group News, template N
/// (`html`), SMTP to a fresh sink, batch S started and sent by `worker --once`. Returns the
/// batch id and the messages the sink received.
pub(crate) fn send_news_batch(
    env: &crate::support::cli::Env,
    contacts: &[&str],
    html: &[u8],
) -> (String, Vec<Received>) {
    let sink = SmtpSink::start(SinkConfig::default());
    let port = sink.port().to_string();
    let run = |args: &[&str]| {
        env.run(args, None).ok();
    };
    env.create_tenant("Acme", "acme.test").ok();
    run(&["group", "create", "--tenant", "acme.test", "--name", "News"]);
    for e in contacts {
        run(&[
            "contact",
            "add",
            "--tenant",
            "acme.test",
            "--group",
            "News",
            "--email",
            e,
        ]);
    }
    let html = env.file("t.html", html);
    run(&[
        "template",
        "create",
        "--tenant",
        "acme.test",
        "--name",
        "N",
        "--subject",
        "News",
        "--html-file",
        &html,
    ]);
    env.smtp_local("acme.test", &port, &[]).ok();
    let created = env.run(
        &[
            "batch",
            "create",
            "--tenant",
            "acme.test",
            "--name",
            "S",
            "--template",
            "N",
            "--group",
            "News",
        ],
        None,
    );
    created.ok();
    let id = created.stdout.trim().to_string();
    run(&["batch", "start", &id]);
    run(&["worker", "--once"]);
    let msgs = sink.wait_for(contacts.len(), Duration::from_secs(20));
    (id, msgs)
}

/// The real binary: send with `worker`, `bounces ingest`, `batch show`, `bounces stats` and
/// `unsubscribe serve`, on both backends.
#[test]
fn cli_ingest_show_and_serve() {
    use crate::support::cli::on_both_backends;
    use std::io::BufRead;
    on_both_backends(|env| {
        env.write_config(
            "[unsubscribe]\nbase_url = \"https://unsub.acme.test\"\n[bounces]\nsoft_limit = 5\n",
        );
        let (id, msgs) = send_news_batch(
            env,
            &["ann@example.com", "bob@example.com"],
            b"<p>Hello. <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>",
        );
        let ann = message_to(&msgs, "ann@example.com");
        let (_, https) = unsubscribe_targets(message_to(&msgs, "bob@example.com"));
        let https = https.expect("the worker uses [unsubscribe] base_url");

        let dir = env.dir.path().join("reports");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("ann.eml"),
            corpus::gmail_dsn("ann@example.com", &ann.header("Message-ID").unwrap()),
        )
        .unwrap();
        std::fs::write(dir.join("junk.eml"), b"hello").unwrap();
        let sum = env.json(&["bounces", "ingest", dir.to_str().unwrap(), "--json"]);
        assert_eq!(sum["hard"], 1, "{sum}");
        assert_eq!(sum["unrecognized"], 1, "{sum}");
        let shown = env.json(&["batch", "show", &id, "--json"]);
        assert_eq!(shown["bounces"]["hard_bounced"], 1, "{shown}");
        assert_eq!(shown["queue"]["bounced"], 1, "{shown}");
        let human = env.run(&["batch", "show", &id], None);
        assert!(human.stdout.contains("bounces: 1 hard"), "{}", human.stdout);
        env.run(&["bounces", "ingest", "/nonexistent/maildir"], None)
            .fails_with(2, "/nonexistent/maildir");

        // The one-click endpoint as its own process.
        let mut child = env
            .command()
            .args(["unsubscribe", "serve", "--bind", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr: std::net::SocketAddr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("{line}"))
            .parse()
            .unwrap();
        let path = format!("/u/{}", https.rsplit('/').next().unwrap());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (status, body) = rt.block_on(http(addr, &post(&path)));
        let (forged, _) = rt.block_on(http(addr, &post("/u/u1-ffffffffffffffffffff")));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(status, 200, "{body}");
        assert_eq!(forged, 404);
        let stats = env.json(&["bounces", "stats", "--tenant", "acme.test", "--json"]);
        assert_eq!(stats["unsubscribed"], 1, "{stats}");
        assert_eq!(stats["hard_bounced"], 1, "{stats}");
        let sup = env.run(&["suppress", "list", "--tenant", "acme.test"], None);
        assert!(
            sup.stdout.contains("unsubscribed") && sup.stdout.contains("bounced"),
            "{}",
            sup.stdout
        );
    });
}
