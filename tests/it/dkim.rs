//! DKIM: keys, DNS records and signatures checked by an independent verifier (Python's
//! dkimpy, with the public key supplied locally instead of DNS), through the library, the
//! engine over real SMTP and the CLI; pre-flight checks; private keys never printed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use recalliq::db::{
    NewBatch, NewContact, NewDkimKey, NewTemplate, Security, SmtpServer, SmtpSettings, Store,
};
use recalliq::dkim::{Algorithm, PrivateKey, Signer, dns_records};
use recalliq::engine::preflight::{PreflightOptions, Severity, preflight};
use recalliq::engine::{Engine, EngineConfig};
use recalliq::mail::{MessageParts, Unsubscribe, build_message};
use recalliq::render::Rendered;
use recalliq::secrets::{KeySource, SecretKey};
use serde_json::json;
use tokio::sync::watch;

use crate::store_test;
use crate::support::cli::on_both_backends;
use crate::support::smtp::{SinkConfig, SmtpSink};
use crate::support::tenant;

/// The Python interpreter of a virtualenv with dkimpy and PyNaCl (for Ed25519): the one in
/// `RECALLIQ_DKIMPY_PYTHON`, else one created once under the target directory. Under
/// CI=true a missing verifier fails the test; elsewhere the caller skips with a notice.
pub fn dkimpy() -> Option<PathBuf> {
    static PY: OnceLock<Option<PathBuf>> = OnceLock::new();
    PY.get_or_init(|| {
        if let Ok(p) = std::env::var("RECALLIQ_DKIMPY_PYTHON") {
            return Some(PathBuf::from(p));
        }
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dkimpy-venv");
        let python = venv.join("bin").join("python");
        let ready = |py: &Path| {
            Command::new(py)
                .args(["-c", "import dkim, nacl"])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if ready(&python) {
            return Some(python);
        }
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .is_ok_and(|o| o.status.success())
            && Command::new(venv.join("bin").join("pip"))
                .args(["install", "-q", "dkimpy==1.1.8", "pynacl==1.6.2"])
                .output()
                .is_ok_and(|o| o.status.success());
        (made && ready(&python)).then_some(python)
    })
    .clone()
}

fn verifier_or_skip(test: &str) -> Option<PathBuf> {
    match dkimpy() {
        Some(p) => Some(p),
        None if crate::support::ci() => {
            panic!(
                "{test}: dkimpy is needed under CI=true (python3 -m venv + pip install dkimpy pynacl failed)"
            )
        }
        None => {
            eprintln!("{test}: skipped, dkimpy is not available (needs python3 and pip)");
            None
        }
    }
}

/// Runs dkimpy on `message` with `records` (name, TXT) as the only DNS. True when it passes.
pub fn verify(python: &Path, message: &[u8], records: &[(String, String)]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("msg.eml");
    if let Ok(d) = std::env::var("DKIM_DEBUG_DIR") {
        let _ = std::fs::write(format!("{d}/msg.eml"), message);
        let _ = std::fs::write(format!("{d}/rec.txt"), format!("{records:?}"));
    }
    std::fs::write(&file, message).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/tools/dkim_verify.py");
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(&file);
    for (name, txt) in records {
        cmd.arg(name).arg(txt);
    }
    let out = cmd.output().expect("run dkimpy");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("pass") || stdout.starts_with("fail"),
        "dkimpy did not answer: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.status.success()
}

/// One RSA-2048 key per test run (generating one takes seconds in a debug build), as
/// PKCS#8 PEM.
fn rsa_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| {
        use rsa::pkcs8::EncodePrivateKey as _;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        key.to_pkcs8_pem(Default::default()).unwrap().to_string()
    })
}

fn record(key: &PrivateKey, domain: &str, selector: &str) -> (String, String) {
    (
        format!("{selector}._domainkey.{domain}"),
        recalliq::dkim::dkim_txt_value(key.algorithm(), &key.public_key_b64().unwrap()),
    )
}

fn long_unicode_message() -> recalliq::mail::Message {
    let unsub = Unsubscribe {
        mailto: "unsubscribe@acme.test".into(),
        https_url: Some(format!(
            "https://acme.test/u/{}?t={}",
            "x".repeat(90),
            "y".repeat(60)
        )),
    };
    let parts = MessageParts {
        from_email: "news@acme.test",
        from_name: Some("Acmé Nachrichten — Ωmega 😀"),
        to_email: "ann@example.com",
        to_name: Some("Ann Ñúñez-Åström"),
        reply_to: Some("help@acme.test"),
        unsubscribe: &unsub,
    };
    let subject = format!(
        "Grüße aus Köln — 日本語の件名 😀 {}",
        "a rather long subject that will have to be folded ".repeat(5)
    );
    build_message(
        &parts,
        &Rendered {
            subject,
            html: Some("<p>Hé  there,</p>\n<p>Ünïcödé body   with  spaces \t</p>\n\n\n".into()),
            text: format!("Hé there,\r\n{}\r\n\r\n\r\n", "long line ".repeat(40)),
        },
    )
    .unwrap()
}

/// Replaces the first header line starting with `name:` (and its folded continuation)
/// by `replacement`.
fn replace_header(raw: &str, name: &str, replacement: &str) -> String {
    let mut out = Vec::new();
    let mut skipping = false;
    let mut done = false;
    for line in raw.split("\r\n") {
        if skipping && (line.starts_with(' ') || line.starts_with('\t')) {
            continue;
        }
        skipping = false;
        if !done
            && line
                .to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        {
            out.push(replacement.to_string());
            skipping = true;
            done = true;
            continue;
        }
        out.push(line.to_string());
    }
    assert!(done, "no {name} header in\n{raw}");
    out.join("\r\n")
}

#[test]
fn signatures_verify_with_dkimpy_and_tampering_fails() {
    let Some(py) = verifier_or_skip("signatures_verify_with_dkimpy_and_tampering_fails") else {
        return;
    };
    for algo in [Algorithm::Ed25519, Algorithm::Rsa] {
        let key = match algo {
            Algorithm::Rsa => PrivateKey::from_pem(rsa_pem()).unwrap(),
            Algorithm::Ed25519 => PrivateKey::generate(algo).unwrap(),
        };
        let signer = Signer::new(&key, "acme.test", "sel1").unwrap();
        let mut msg = long_unicode_message();
        signer.sign(&mut msg);
        let raw = String::from_utf8(msg.bytes().to_vec()).unwrap();
        let head = raw.split("\r\n\r\n").next().unwrap().to_string();
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        assert!(
            unfolded.contains(&format!("a={algo}-sha256"))
                && unfolded.contains("c=relaxed/relaxed"),
            "{unfolded}"
        );
        for h in [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
            "mime-version",
            "content-type",
        ] {
            let tags = unfolded
                .split("h=")
                .nth(1)
                .and_then(|t| t.split(';').next())
                .unwrap_or_default()
                .replace(' ', "");
            assert!(tags.split(':').any(|t| t == h), "{h} not signed: {tags}");
        }
        let rec = vec![record(&key, "acme.test", "sel1")];
        assert!(
            verify(&py, raw.as_bytes(), &rec),
            "{algo}: valid signature rejected:\n{raw}"
        );

        // Another key under the same selector: fails.
        let other = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        if algo == Algorithm::Ed25519 {
            assert!(!verify(
                &py,
                raw.as_bytes(),
                &[record(&other, "acme.test", "sel1")]
            ));
        }
        // Tampered signed headers and body: fail.
        let tampered_subject = replace_header(&raw, "Subject", "Subject: You won a prize");
        assert!(
            !verify(&py, tampered_subject.as_bytes(), &rec),
            "{algo}: tampered Subject passed"
        );
        let tampered_to = replace_header(&raw, "To", "To: mallory@evil.test");
        assert!(
            !verify(&py, tampered_to.as_bytes(), &rec),
            "{algo}: tampered To passed"
        );
        let tampered_unsub = replace_header(
            &raw,
            "List-Unsubscribe",
            "List-Unsubscribe: <https://evil.test/u>",
        );
        assert!(
            !verify(&py, tampered_unsub.as_bytes(), &rec),
            "{algo}: tampered List-Unsubscribe passed"
        );
        let tampered_body = raw.replacen("long line", "LONG line", 1);
        assert!(
            !verify(&py, tampered_body.as_bytes(), &rec),
            "{algo}: tampered body passed"
        );
        // Relaxed canonicalisation: refolding whitespace in transit does not break it.
        let refolded = raw.replacen("Subject: ", "Subject:    ", 1);
        assert!(
            verify(&py, refolded.as_bytes(), &rec),
            "{algo}: relaxed whitespace change rejected"
        );
    }
}

#[test]
fn pem_import_round_trips_and_bad_keys_are_refused() {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let seed = [7u8; 32];
    let ed = ed25519_dalek::SigningKey::from_bytes(&seed);
    let pem = ed.to_pkcs8_pem(Default::default()).unwrap();
    let key = PrivateKey::from_pem(&pem).unwrap();
    assert_eq!(key.algorithm(), Algorithm::Ed25519);
    use base64::Engine as _;
    assert_eq!(
        key.public_key_b64().unwrap(),
        base64::engine::general_purpose::STANDARD.encode(ed.verifying_key().to_bytes())
    );
    assert!(!format!("{key:?}").contains(&base64::engine::general_purpose::STANDARD.encode(seed)));
    for (text, needle) in [
        ("hello", "not a PEM private key"),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
            "encrypted",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
            "not a valid PKCS#1",
        ),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
            "neither RSA nor Ed25519",
        ),
    ] {
        let err = PrivateKey::from_pem(text).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
    // Wrong key file: a clear message naming where keys come from.
    let k1 = SecretKey::from_bytes([1; 32], KeySource::File("/cfg/secret.key".into()));
    let k2 = SecretKey::from_bytes([2; 32], KeySource::File("/cfg/secret.key".into()));
    let enc = key.encrypt(&k1, 5, "acme.test", "s1").unwrap();
    assert!(!enc.contains(&base64::engine::general_purpose::STANDARD.encode(seed)));
    let row = recalliq::db::DkimKey {
        id: 1,
        tenant_id: 5,
        domain: "acme.test".into(),
        selector: "s1".into(),
        algorithm: "ed25519".into(),
        private_key_enc: enc.clone(),
        public_key: String::new(),
        status: "active".into(),
        created_at: chrono::Utc::now().naive_utc(),
        rotated_at: None,
    };
    assert!(PrivateKey::decrypt(&k1, &row).is_ok());
    let err = PrivateKey::decrypt(&k2, &row).unwrap_err().to_string();
    assert_eq!(
        err,
        "cannot decrypt the DKIM key of acme.test (selector 's1'): wrong key (RECALLIQ_SECRET_KEY or /cfg/secret.key)"
    );
    // Bound to its row: copied to another selector or tenant it does not decrypt.
    let moved = recalliq::db::DkimKey {
        selector: "s2".into(),
        ..row.clone()
    };
    assert!(PrivateKey::decrypt(&k1, &moved).is_err());
    assert!(
        !format!("{row:?}").contains(&enc),
        "Debug shows no ciphertext"
    );
    assert!(!serde_json::to_string(&row).unwrap().contains(&enc));
}

#[test]
fn dns_records_are_ready_to_paste() {
    let row = |selector: &str, status: &str, algo: &str, public: &str| recalliq::db::DkimKey {
        id: 1,
        tenant_id: 1,
        domain: "acme.test".into(),
        selector: selector.into(),
        algorithm: algo.into(),
        private_key_enc: "v1:x".into(),
        public_key: public.into(),
        status: status.into(),
        created_at: chrono::Utc::now().naive_utc(),
        rotated_at: None,
    };
    let long = "A".repeat(392);
    let recs = dns_records(
        &[
            row("new", "active", "ed25519", "PUB"),
            row("old", "published", "rsa", &long),
        ],
        Some("203.0.113.7"),
    );
    let names: Vec<&str> = recs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "new._domainkey.acme.test",
            "old._domainkey.acme.test",
            "acme.test",
            "_dmarc.acme.test"
        ]
    );
    assert_eq!(recs[0].value, "v=DKIM1; k=ed25519; p=PUB");
    assert_eq!(recs[2].value, "v=spf1 mx ip4:203.0.113.7 ~all");
    assert!(recs[3].value.starts_with("v=DMARC1; p=none;"));
    // A TXT string holds at most 255 bytes: the long RSA record is split.
    let line = recs[1].zone_line();
    assert!(
        line.starts_with("old._domainkey.acme.test. 3600 IN TXT \"v=DKIM1; k=rsa; p=AAA"),
        "{line}"
    );
    assert_eq!(line.matches('"').count(), 4, "{line}");
    let host = dns_records(&[row("s", "active", "rsa", "P")], Some("smtp.example.net"));
    assert_eq!(host[1].value, "v=spf1 mx a:smtp.example.net ~all");
}

async fn engine_fixture(store: &Store, port: u16) -> (recalliq::db::TenantScope, i32, i32) {
    let (t, scope) = tenant(store, "acme.test").await;
    store
        .add_tenant_email(scope, "news@acme.test", Some("Acmé News"))
        .await
        .unwrap();
    let mut server = SmtpServer::new("127.0.0.1", port, Security::None);
    server.from = Some("news@acme.test".into());
    store
        .set_smtp_settings(scope, &SmtpSettings::Smtp(server))
        .await
        .unwrap();
    let template = store
        .create_template(
            scope,
            &NewTemplate {
                name: "Hello".into(),
                subject: "Grüße {{ name }} — 😀 {{ city }}".into(),
                body_html: Some(
                    "<p>Hi {{ name }}</p><a href=\"{{ unsubscribe_url }}\">unsubscribe</a>".into(),
                ),
                body_text: Some("Hi {{ name }}\n{{ unsubscribe_url }}".into()),
                variables: None,
            },
        )
        .await
        .unwrap();
    let g = store.create_group(scope, "All", None).await.unwrap();
    for (i, email) in ["ann@example.com", "bob@example.com", "cy@example.com"]
        .iter()
        .enumerate()
    {
        store
            .add_contact(
                scope,
                g.id,
                &NewContact {
                    email: (*email).into(),
                    name: Some(format!("Ñame {i}")),
                    variables: Some(json!({"city": "Köln"})),
                },
            )
            .await
            .unwrap();
    }
    let batch = store
        .create_batch(
            scope,
            &NewBatch {
                name: "Spring".into(),
                template_id: template.id,
                group_ids: vec![g.id],
                variables: None,
                scheduled_at: None,
            },
        )
        .await
        .unwrap();
    (scope, t.id, batch.id)
}

store_test!(
    engine_signs_every_message_and_preflight_reports,
    |store| async move {
        let sink = SmtpSink::start(SinkConfig::default());
        let (scope, tenant_id, batch_id) = engine_fixture(&store, sink.port()).await;
        let dir = tempfile::tempdir().unwrap();
        let opts = PreflightOptions {
            config_dir: Some(dir.path().to_path_buf()),
            ..PreflightOptions::default()
        };

        // Without a key: a warning, nothing blocking.
        let pf = preflight(&store, scope, batch_id, &opts).await.unwrap();
        assert_eq!(pf.recipients, 3);
        assert_eq!(
            pf.find("dkim").unwrap().severity,
            Severity::Warning,
            "{pf:#?}"
        );
        assert!(
            pf.find("dkim")
                .unwrap()
                .message
                .contains("recalliq dkim generate")
        );
        assert!(!pf.blocking(), "{pf:#?}");
        for code in ["suppression", "quota", "variables", "size"] {
            assert_eq!(
                pf.find(code).unwrap().severity,
                Severity::Ok,
                "{code}: {pf:#?}"
            );
        }
        // No https unsubscribe URL: no one-click header.
        assert_eq!(
            pf.find("list_unsubscribe").unwrap().severity,
            Severity::Warning
        );

        let secret = SecretKey::load(dir.path()).unwrap();
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let enc = key
            .encrypt(&secret, tenant_id, "acme.test", "riq1")
            .unwrap();
        store
            .add_dkim_key(
                scope,
                &NewDkimKey {
                    domain: "acme.test",
                    selector: "riq1",
                    algorithm: "ed25519",
                    private_key_enc: &enc,
                    public_key: &key.public_key_b64().unwrap(),
                },
                false,
            )
            .await
            .unwrap();
        let pf = preflight(&store, scope, batch_id, &opts).await.unwrap();
        let dkim = pf.find("dkim").unwrap();
        assert_eq!(dkim.severity, Severity::Ok, "{pf:#?}");
        assert!(dkim.line().contains("selector 'riq1'"), "{}", dkim.line());

        // A key that does not decrypt (another key directory) blocks: sending would pause.
        let wrong = tempfile::tempdir().unwrap();
        let pf_wrong = preflight(
            &store,
            scope,
            batch_id,
            &PreflightOptions {
                config_dir: Some(wrong.path().to_path_buf()),
                ..PreflightOptions::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(pf_wrong.find("dkim").unwrap().severity, Severity::Blocking);
        assert!(
            pf_wrong.find("dkim").unwrap().message.contains("wrong key"),
            "{pf_wrong:#?}"
        );

        store.start_batch(scope, batch_id).await.unwrap();
        let engine = Engine::new(
            store.clone(),
            EngineConfig {
                poll: Duration::from_millis(20),
                flush_interval: Duration::from_millis(10),
                config_dir: Some(dir.path().to_path_buf()),
                ..EngineConfig::default()
            },
        );
        let (_tx, rx) = watch::channel(false);
        tokio::time::timeout(Duration::from_secs(60), engine.run(rx, true))
            .await
            .expect("engine finished in time")
            .unwrap();
        let msgs = sink.messages();
        assert_eq!(msgs.len(), 3);
        let rec = vec![record(&key, "acme.test", "riq1")];
        if let Some(py) = verifier_or_skip("engine_signs_every_message") {
            for m in &msgs {
                assert!(m.data.contains("DKIM-Signature:"), "{}", m.data);
                assert!(
                    verify(&py, m.data.as_bytes(), &rec),
                    "engine message fails DKIM:\n{}",
                    m.data
                );
            }
        }
    }
);

/// Every file under `dir` (logs, databases, exports) as lossy text.
fn all_files_text(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    out
}

#[test]
fn dkim_cli_keys_dns_signing_and_no_private_key_anywhere() {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let python = verifier_or_skip("dkim_cli_keys_dns_signing_and_no_private_key_anywhere");
    let sink = SmtpSink::start(SinkConfig::default());
    // A known private key, so we can look for it in every output.
    let seed: [u8; 32] = rand::random();
    let ed = ed25519_dalek::SigningKey::from_bytes(&seed);
    let pem = ed.to_pkcs8_pem(Default::default()).unwrap().to_string();
    use base64::Engine as _;
    let seed_b64 = base64::engine::general_purpose::STANDARD.encode(seed);
    let pem_body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    on_both_backends(|env| {
        let outputs = std::cell::RefCell::new(String::new());
        let run = |args: &[&str], stdin: Option<&str>| {
            let r = env.run(args, stdin);
            outputs.borrow_mut().push_str(&r.stdout);
            outputs.borrow_mut().push_str(&r.stderr);
            r
        };
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
        )
        .ok();
        run(
            &[
                "tenant",
                "sender",
                "add",
                "--tenant",
                "acme.test",
                "news@mail.acme.test",
                "--name",
                "Acmé",
            ],
            None,
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
                "news@mail.acme.test",
            ],
            None,
        )
        .ok();
        // Refusals: unknown domain, bad selector, bad PEM, rotate without a key.
        run(
            &[
                "dkim",
                "generate",
                "--tenant",
                "acme.test",
                "--domain",
                "evil.test",
            ],
            None,
        )
        .fails_with(
            1,
            "not a sender domain of tenant acme.test (its domains: acme.test, mail.acme.test)",
        );
        run(
            &[
                "dkim",
                "generate",
                "--tenant",
                "acme.test",
                "--domain",
                "mail.acme.test",
                "--selector",
                "bad_sel",
            ],
            None,
        )
        .fails_with(1, "invalid DKIM selector 'bad_sel'");
        let junk = env.file("junk.pem", b"not a key");
        run(
            &[
                "dkim",
                "import",
                "--tenant",
                "acme.test",
                "--domain",
                "mail.acme.test",
                "--file",
                &junk,
            ],
            None,
        )
        .fails_with(1, "not a PEM private key");
        run(
            &[
                "dkim",
                "rotate",
                "--tenant",
                "acme.test",
                "--domain",
                "mail.acme.test",
            ],
            None,
        )
        .fails_with(1, "no active DKIM key to rotate");
        run(&["dkim", "dns", "--tenant", "acme.test"], None).fails_with(1, "has no DKIM key");

        let pem_file = env.file("ed.pem", pem.as_bytes());
        run(
            &[
                "dkim",
                "import",
                "--tenant",
                "acme.test",
                "--domain",
                "mail.acme.test",
                "--file",
                &pem_file,
                "--algo",
                "rsa",
            ],
            None,
        )
        .fails_with(1, "is ed25519, not rsa");
        let imported = run(
            &[
                "dkim",
                "import",
                "--tenant",
                "acme.test",
                "--domain",
                "Mail.Acme.Test",
                "--selector",
                "ed1",
                "--file",
                &pem_file,
            ],
            None,
        );
        imported.ok();
        assert!(
            imported
                .stdout
                .contains("ed1._domainkey.mail.acme.test. 3600 IN TXT \"v=DKIM1; k=ed25519; p="),
            "{}",
            imported.stdout
        );
        run(
            &[
                "dkim",
                "generate",
                "--tenant",
                "acme.test",
                "--domain",
                "mail.acme.test",
            ],
            None,
        )
        .fails_with(
            1,
            "already has an active DKIM key (selector 'ed1'); use `recalliq dkim rotate`",
        );

        // A message sent with send-test is signed with ed1 and verifies.
        run(
            &["group", "create", "--tenant", "acme.test", "--name", "News"],
            None,
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
                "--name",
                "Ann Ñúñez",
            ],
            None,
        )
        .ok();
        let html = env.file("t.html", "<p>Grüße {{ name }}</p>".as_bytes());
        run(
            &[
                "template",
                "create",
                "--tenant",
                "acme.test",
                "--name",
                "Hello",
                "--subject",
                "Grüße {{ name }} 😀",
                "--html-file",
                &html,
            ],
            None,
        )
        .ok();
        let before = sink.messages().len();
        run(
            &[
                "template",
                "send-test",
                "--tenant",
                "acme.test",
                "--template",
                "Hello",
                "--group",
                "News",
                "--contact",
                "ann@example.com",
                "--to",
                "qa@example.org",
            ],
            None,
        )
        .ok();
        let msgs = sink.wait_for(before + 1, Duration::from_secs(5));
        let sent = &msgs[before];
        assert!(sent.data.contains("s=ed1"), "{}", sent.data);

        let dns = env.json(&["dkim", "dns", "--tenant", "acme.test", "--json"]);
        outputs.borrow_mut().push_str(&dns.to_string());
        let recs = dns.as_array().unwrap();
        assert_eq!(recs.len(), 3, "{dns}");
        assert_eq!(recs[0]["name"], "ed1._domainkey.mail.acme.test");
        assert_eq!(recs[1]["value"], "v=spf1 mx ip4:127.0.0.1 ~all");
        assert_eq!(recs[2]["name"], "_dmarc.mail.acme.test");
        let txt = recs[0]["value"].as_str().unwrap().to_string();
        if let Some(py) = &python {
            let rec = vec![("ed1._domainkey.mail.acme.test".to_string(), txt.clone())];
            assert!(
                verify(py, sent.data.as_bytes(), &rec),
                "send-test message fails DKIM:\n{}",
                sent.data
            );
        }

        // Rotate to RSA: the new key signs, the old one stays published. SQLite run: a
        // generated key; Postgres run: an imported PKCS#8 PEM (generation is slow in debug).
        let rsa_file = env.file("rsa.pem", rsa_pem().as_bytes());
        let source: [&str; 2] = if env.database_url.is_some() {
            ["--file", &rsa_file]
        } else {
            ["--algo", "rsa"]
        };
        let rotated = run(
            &[
                "dkim",
                "rotate",
                "--tenant",
                "acme.test",
                "--domain",
                "mail.acme.test",
                "--selector",
                "rsa2",
                source[0],
                source[1],
            ],
            None,
        );
        rotated.ok();
        assert!(
            rotated.stdout.contains("the previous key stays published"),
            "{}",
            rotated.stdout
        );
        let list = env.json(&["dkim", "list", "--tenant", "acme.test", "--json"]);
        outputs.borrow_mut().push_str(&list.to_string());
        let keys = list.as_array().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(
            (keys[0]["selector"].as_str(), keys[0]["status"].as_str()),
            (Some("rsa2"), Some("active"))
        );
        assert_eq!(
            (keys[1]["selector"].as_str(), keys[1]["status"].as_str()),
            (Some("ed1"), Some("published"))
        );
        assert!(
            keys.iter().all(|k| k.get("private_key_enc").is_none()),
            "{list}"
        );
        let show = env.json(&[
            "dkim",
            "show",
            "--tenant",
            "acme.test",
            "--domain",
            "mail.acme.test",
            "--selector",
            "ED1",
            "--json",
        ]);
        outputs.borrow_mut().push_str(&show.to_string());
        assert_eq!(show["dns_value"], txt);
        let human = run(
            &[
                "dkim",
                "show",
                "--tenant",
                "acme.test",
                "--domain",
                "mail.acme.test",
            ],
            None,
        );
        human.ok();
        assert!(
            human.stdout.contains("rsa2") && human.stdout.contains("k=rsa"),
            "{}",
            human.stdout
        );
        run(&["dkim", "list", "--tenant", "acme.test"], None).ok();
        let zone = run(&["dkim", "dns", "--tenant", "acme.test"], None);
        zone.ok();
        assert!(
            zone.stdout
                .contains("rsa2._domainkey.mail.acme.test. 3600 IN TXT \"v=DKIM1; k=rsa; p="),
            "{}",
            zone.stdout
        );
        assert!(
            zone.stdout.contains("ed1._domainkey.mail.acme.test."),
            "old key stays published: {}",
            zone.stdout
        );
        let dns = env.json(&["dkim", "dns", "--tenant", "acme.test", "--json"]);
        let rsa_txt = dns[0]["value"].as_str().unwrap().to_string();
        let before = sink.messages().len();
        run(
            &[
                "template",
                "send-test",
                "--tenant",
                "acme.test",
                "--template",
                "Hello",
                "--group",
                "News",
                "--contact",
                "ann@example.com",
                "--to",
                "qa@example.org",
            ],
            None,
        )
        .ok();
        let msgs = sink.wait_for(before + 1, Duration::from_secs(5));
        let sent = &msgs[before];
        assert!(
            sent.data.contains("s=rsa2") && sent.data.contains("a=rsa-sha256"),
            "{}",
            sent.data
        );
        if let Some(py) = &python {
            let recs = vec![
                (
                    "rsa2._domainkey.mail.acme.test".to_string(),
                    rsa_txt.clone(),
                ),
                ("ed1._domainkey.mail.acme.test".to_string(), txt.clone()),
            ];
            assert!(
                verify(py, sent.data.as_bytes(), &recs),
                "rotated key fails DKIM:\n{}",
                sent.data
            );
        }

        // Another key file cannot decrypt: a clear one-line error, nothing sent.
        let other = SecretKey::generate_base64();
        let r = env.run_env(
            &[
                "template",
                "send-test",
                "--tenant",
                "acme.test",
                "--template",
                "Hello",
                "--group",
                "News",
                "--contact",
                "ann@example.com",
                "--to",
                "qa@example.org",
            ],
            None,
            &[("RECALLIQ_SECRET_KEY", &other)],
        );
        r.fails_with(
            1,
            "cannot decrypt the DKIM key of mail.acme.test (selector 'rsa2'): wrong key",
        );
        assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);

        // The private key appears nowhere: no output, log, database or export file.
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
        )
        .ok();
        let files = all_files_text(env.dir.path());
        let outputs = outputs.borrow().clone();
        for (what, hay) in [("outputs", &outputs), ("files", &files)] {
            assert!(!hay.contains(&seed_b64), "private key seed in {what}");
            // The PEM's first 40 characters encode the key's header and most of the
            // seed (its tail is the public key, which is meant to be published).
            assert!(
                !hay.contains(&pem_body[..40]) || what == "files",
                "PEM text in {what}"
            );
        }
        // The PEM file the operator gave is the only place the key is in the clear.
        assert!(files.contains(&pem_body[..40]));
        std::fs::remove_file(&pem_file).unwrap();
        let files = all_files_text(env.dir.path());
        assert!(
            !files.contains(&pem_body[..40]),
            "private key stored in the clear"
        );
    });
}

/// Signing cost per message (bench/dkim.sh runs it): building a message unsigned (the
/// baseline), then building and signing with Ed25519 and with RSA-2048.
#[test]
#[ignore = "benchmark: run bench/dkim.sh"]
fn bench_signing() {
    let n: u32 = std::env::var("DKIM_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let time = |signer: Option<&Signer>| {
        let started = std::time::Instant::now();
        let mut bytes = 0usize;
        for _ in 0..n {
            let mut msg = long_unicode_message();
            if let Some(s) = signer {
                s.sign(&mut msg);
            }
            bytes += msg.bytes().len();
        }
        (started.elapsed() / n, bytes / n as usize)
    };
    let ed = Signer::new(
        &PrivateKey::generate(Algorithm::Ed25519).unwrap(),
        "acme.test",
        "e",
    )
    .unwrap();
    let rsa = Signer::new(
        &PrivateKey::generate(Algorithm::Rsa).unwrap(),
        "acme.test",
        "r",
    )
    .unwrap();
    let _ = time(None); // warm up
    let (base, size) = time(None);
    let (t_ed, _) = time(Some(&ed));
    let (t_rsa, _) = time(Some(&rsa));
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("messages per variant: {n}, {size} bytes each");
    println!("build only (baseline):   {:>9.1} us/message", us(base));
    println!(
        "build + Ed25519 sign:    {:>9.1} us/message  (signing {:.1} us, x{:.2} baseline)",
        us(t_ed),
        us(t_ed) - us(base),
        us(t_ed) / us(base)
    );
    println!(
        "build + RSA-2048 sign:   {:>9.1} us/message  (signing {:.1} us, x{:.2} baseline)",
        us(t_rsa),
        us(t_rsa) - us(base),
        us(t_rsa) / us(base)
    );
    println!(
        "one core signs about {:.0} msg/s with RSA-2048, {:.0} msg/s with Ed25519",
        1e6 / (us(t_rsa) - us(base)).max(0.001),
        1e6 / (us(t_ed) - us(base)).max(0.001)
    );
}

store_test!(
    preflight_grades_suppression_variables_and_quota,
    |store| async move {
        let (scope, tenant_id, batch_id) = engine_fixture(&store, 2525).await;
        let opts = PreflightOptions::default();
        let pf = preflight(&store, scope, batch_id, &opts).await.unwrap();
        assert!(!pf.blocking(), "{pf:#?}");

        // One suppressed recipient: information, it will be skipped.
        store
            .suppress(scope, "ANN@example.com", "manual", None, None)
            .await
            .unwrap();
        // One contact lacks the variable the subject uses: that message would fail.
        let groups = store
            .list_groups(scope, recalliq::db::Page::first(10), None)
            .await
            .unwrap();
        store
            .add_contact(
                scope,
                groups[0].id,
                &NewContact {
                    email: "nocity@example.com".into(),
                    name: None,
                    variables: None,
                },
            )
            .await
            .unwrap();
        let pf = preflight(&store, scope, batch_id, &opts).await.unwrap();
        assert_eq!((pf.recipients, pf.suppressed), (4, 1));
        let sup = pf.find("suppression").unwrap();
        assert_eq!(sup.severity, Severity::Info);
        assert!(
            sup.message.contains("1 of 4 recipients are suppressed"),
            "{}",
            sup.message
        );
        let vars = pf.find("variables").unwrap();
        assert_eq!(vars.severity, Severity::Warning, "{pf:#?}");
        assert!(
            vars.message.contains("1 of 3 messages do not render"),
            "{}",
            vars.message
        );
        assert!(
            vars.message.contains("nocity@example.com"),
            "{}",
            vars.message
        );
        assert!(!pf.blocking());

        // Quota smaller than the batch: a warning (the engine pauses at the limit).
        let all = recalliq::db::Actor::system().all_tenants().unwrap();
        let limit = |n: i32| recalliq::db::TenantUpdate {
            monthly_email_limit: Some(n),
            ..recalliq::db::TenantUpdate::default()
        };
        store
            .update_tenant(&all, tenant_id, &limit(2))
            .await
            .unwrap();
        let pf = preflight(&store, scope, batch_id, &opts).await.unwrap();
        assert_eq!(
            pf.find("quota").unwrap().severity,
            Severity::Warning,
            "{pf:#?}"
        );
        assert!(!pf.blocking());
        // No quota left: nothing can be sent, blocking.
        store
            .update_tenant(&all, tenant_id, &limit(0))
            .await
            .unwrap();
        let pf = preflight(&store, scope, batch_id, &opts).await.unwrap();
        let quota = pf.find("quota").unwrap();
        assert_eq!(quota.severity, Severity::Blocking, "{pf:#?}");
        assert!(pf.blocking());
        assert!(
            quota.line().starts_with("blocking  quota: "),
            "{}",
            quota.line()
        );

        // Another tenant cannot run pre-flight on this batch.
        let (_, other) = tenant(&store, "other.test").await;
        assert!(preflight(&store, other, batch_id, &opts).await.is_err());
    }
);
