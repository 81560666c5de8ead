//! The DKIM keys screen (SMTP, then `D`): snapshots of the list with its DNS records and of
//! every form and confirmation; generate, import and rotate through the TUI change the
//! store on both backends, are audited and never show private keys; roles and --readonly.

use crossterm::event::KeyCode;
use recalliq::db::{
    Actor, AuditFilter, NewDkimKey, Page, Security, SmtpServer, SmtpSettings, Store, TenantScope,
    UserScope,
};
use recalliq::dkim::PrivateKey;
use recalliq::secrets::SecretKey;
use recalliq::tui::keymap::ScreenId;
use recalliq::tui::{App, Options};

use crate::store_test;
use crate::support::with_sqlite;
use crate::tui::{SIZES, app_as, opts, press, press_code, render, seed, snap};

/// Dates vary between runs; snapshots show a placeholder.
fn redact(text: String) -> String {
    let chars: Vec<char> = text.chars().collect();
    let shape: Vec<char> = "dddd-dd-dd dd:dd".chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let hit = shape.iter().enumerate().all(|(k, c)| {
            chars.get(i + k).is_some_and(|x| match c {
                'd' => x.is_ascii_digit(),
                other => x == other,
            })
        });
        if hit {
            out.push_str("YYYY-MM-DD hh:mm");
            i += shape.len();
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Acme (from `tui::seed`) with a second sender domain and an SMTP host.
async fn acme(store: &Store) -> TenantScope {
    seed(store).await;
    let all = Actor::system().all_tenants().unwrap();
    let t = store.tenant_by_domain(&all, "acme.test").await.unwrap();
    let scope = Actor::system().tenant_scope(t.id).unwrap();
    store
        .add_tenant_email(scope, "news@mail.acme.test", Some("Acme News"))
        .await
        .unwrap();
    store
        .set_smtp_settings(
            scope,
            &SmtpSettings::Smtp(SmtpServer::new("smtp.acme.test", 587, Security::Starttls)),
        )
        .await
        .unwrap();
    scope
}

fn opts_in(dir: &std::path::Path) -> Options {
    Options {
        config_dir: dir.to_path_buf(),
        data_dir: dir.to_path_buf(),
        ..opts()
    }
}

/// Opens SMTP, then the DKIM keys.
async fn open_dkim(app: &mut App) {
    press(app, "7").await;
    assert_eq!(app.screen, ScreenId::Smtp);
    press(app, "D").await;
    assert_eq!(app.screen, ScreenId::Dkim, "{:?}", app.toast);
}

fn ed25519_pem(seed: [u8; 32]) -> String {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    ed25519_dalek::SigningKey::from_bytes(&seed)
        .to_pkcs8_pem(Default::default())
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_of_the_dkim_screen_and_its_forms() {
    with_sqlite(|store| async move {
        let scope = acme(&store).await;
        // Two fixed keys (a rotated-out one and the active one) so the records are stable.
        for (selector, public) in [("s1", "AAAAoldkey"), ("s2", "BBBBnewkey")] {
            store
                .add_dkim_key(
                    scope,
                    &NewDkimKey {
                        domain: "acme.test",
                        selector,
                        algorithm: "ed25519",
                        private_key_enc: "not-a-real-ciphertext",
                        public_key: public,
                    },
                    true,
                )
                .await
                .unwrap();
        }
        for size in SIZES {
            let mut app = app_as(&store, "alice", size, opts()).await;
            press(&mut app, "7").await;
            let smtp = render(&app, size);
            if size.0 >= 120 {
                assert!(smtp.contains("D DKIM keys"), "{smtp}");
            }
            press(&mut app, "D").await;
            let keys = redact(render(&app, size));
            assert!(keys.contains("s2") && keys.contains("active"), "{keys}");
            assert!(keys.contains("retired"), "{keys}");
            assert!(keys.contains("mail.acme.test"), "{keys}");
            assert!(keys.contains("v=DKIM1; k=ed25519; p=BBBBnewkey"), "{keys}");
            assert!(!keys.contains("not-a-real-ciphertext"), "{keys}");
            snap("dkim_keys", size, keys);
            // The help lists the screen's keys from the registry.
            press(&mut app, "?").await;
            let help = render(&app, size);
            assert!(
                help.contains("generate key") && help.contains("import PEM"),
                "{help}"
            );
            snap("dkim_help", size, redact(help));
            press_code(&mut app, KeyCode::Esc).await;
            assert_eq!(app.screen, ScreenId::Dkim);
            // The domain without a key: its DNS pane says so.
            press(&mut app, "jj").await;
            snap("dkim_no_key", size, redact(render(&app, size)));
            press(&mut app, "kk").await;

            press(&mut app, "g").await;
            snap("dkim_generate_form", size, redact(render(&app, size)));
            press_code(&mut app, KeyCode::Esc).await;
            press(&mut app, "i").await;
            snap("dkim_import_form", size, redact(render(&app, size)));
            press_code(&mut app, KeyCode::Esc).await;
            press(&mut app, "r").await;
            snap("dkim_rotate_form", size, redact(render(&app, size)));
            press_code(&mut app, KeyCode::Tab).await;
            press(&mut app, "s3").await;
            press_code(&mut app, KeyCode::Enter).await;
            let confirm = render(&app, size);
            assert!(confirm.contains("Rotate DKIM key"), "{confirm}");
            snap("dkim_rotate_confirm", size, redact(confirm));
            press(&mut app, "n").await;
            assert_eq!(store.list_dkim_keys(scope, None).await.unwrap().len(), 2);
            press(&mut app, "y").await;
            let copied = render(&app, size);
            assert!(
                copied.contains("4 DNS records of acme.test copied"),
                "{copied}"
            );
            // Esc goes back to SMTP.
            press_code(&mut app, KeyCode::Esc).await;
            assert_eq!(app.screen, ScreenId::Smtp);
        }
    })
    .await;
}

store_test!(
    generate_import_rotate_through_the_tui_change_the_store,
    |store| async move {
        let scope = acme(&store).await;
        let dir = tempfile::tempdir().unwrap();
        let mut app = app_as(&store, "alice", (120, 40), opts_in(dir.path())).await;
        open_dkim(&mut app).await;

        // Generate an Ed25519 key with a chosen selector for acme.test (the first row).
        press(&mut app, "g").await;
        press_code(&mut app, KeyCode::Tab).await; // algorithm
        press_code(&mut app, KeyCode::Right).await; // ed25519
        press_code(&mut app, KeyCode::Tab).await; // selector
        press(&mut app, "tui1").await;
        press_code(&mut app, KeyCode::Enter).await;
        assert!(
            render(&app, (120, 40)).contains("Generate DKIM key"),
            "confirmation first"
        );
        assert!(store.list_dkim_keys(scope, None).await.unwrap().is_empty());
        press(&mut app, "y").await;
        let keys = store
            .list_dkim_keys(scope, Some("acme.test"))
            .await
            .unwrap();
        assert_eq!(keys.len(), 1, "{:?}", app.toast);
        assert_eq!(
            (keys[0].selector.as_str(), keys[0].algorithm.as_str()),
            ("tui1", "ed25519")
        );
        assert_eq!(keys[0].status, "active");
        // Encrypted with the key file of the config dir: it decrypts and signs.
        let secret = SecretKey::load(dir.path()).unwrap();
        let private = PrivateKey::decrypt(&secret, &keys[0]).unwrap();
        assert_eq!(private.public_key_b64().unwrap(), keys[0].public_key);
        let screen = render(&app, (120, 40));
        assert!(
            screen.contains(&format!("p={}", keys[0].public_key)),
            "{screen}"
        );

        // Generating again for a domain with an active key is refused in the form.
        press(&mut app, "g").await;
        press_code(&mut app, KeyCode::Enter).await;
        let refused = render(&app, (120, 40));
        assert!(refused.contains("press r to rotate"), "{refused}");
        press_code(&mut app, KeyCode::Esc).await;

        // Rotate: a new selector signs, the old one stays published.
        press(&mut app, "r").await;
        press_code(&mut app, KeyCode::Tab).await; // selector
        press(&mut app, "tui2").await;
        press_code(&mut app, KeyCode::Enter).await;
        press(&mut app, "y").await;
        let keys = store
            .list_dkim_keys(scope, Some("acme.test"))
            .await
            .unwrap();
        let status: Vec<(&str, &str, &str)> = keys
            .iter()
            .map(|k| (k.selector.as_str(), k.algorithm.as_str(), k.status.as_str()))
            .collect();
        assert_eq!(
            status,
            vec![
                ("tui2", "ed25519", "active"),
                ("tui1", "ed25519", "published")
            ]
        );

        // Import a PEM file for the second sender domain (the row after acme.test's keys).
        let seed: [u8; 32] = rand::random();
        let pem = ed25519_pem(seed);
        let pem_path = dir.path().join("mail.pem");
        std::fs::write(&pem_path, &pem).unwrap();
        press(&mut app, "jj").await;
        press(&mut app, "i").await;
        press_code(&mut app, KeyCode::Tab).await; // path
        press(&mut app, &pem_path.display().to_string()).await;
        press_code(&mut app, KeyCode::Tab).await; // selector
        press(&mut app, "imp1").await;
        press_code(&mut app, KeyCode::Enter).await;
        let confirm = render(&app, (120, 40));
        assert!(confirm.contains("Import DKIM key"), "{confirm}");
        press(&mut app, "y").await;
        let imported = store
            .active_dkim_key(scope, "mail.acme.test")
            .await
            .unwrap()
            .expect("imported key stored");
        assert_eq!(imported.selector, "imp1");
        let expected = PrivateKey::from_pem(&pem).unwrap();
        assert_eq!(imported.public_key, expected.public_key_b64().unwrap());
        assert_eq!(
            PrivateKey::decrypt(&secret, &imported)
                .unwrap()
                .public_key_b64()
                .unwrap(),
            imported.public_key
        );
        // The private key never reaches the screen.
        use base64::Engine as _;
        let seed_b64 = base64::engine::general_purpose::STANDARD.encode(seed);
        let pem_body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let screen = render(&app, (120, 40));
        assert!(!screen.contains(&seed_b64) && !screen.contains(&pem_body));

        // A bad PEM file is reported in the form; nothing stored.
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a key").unwrap();
        press(&mut app, "i").await;
        press_code(&mut app, KeyCode::Left).await; // another domain
        press_code(&mut app, KeyCode::Tab).await;
        press(&mut app, &junk.display().to_string()).await;
        press_code(&mut app, KeyCode::Enter).await;
        let bad = render(&app, (120, 40));
        assert!(bad.contains("not a PEM private key"), "{bad}");
        press_code(&mut app, KeyCode::Esc).await;
        assert_eq!(store.list_dkim_keys(scope, None).await.unwrap().len(), 3);

        // Every write is audited with its outcome.
        let all = Actor::system().all_tenants().unwrap();
        let rows = store
            .list_audit(
                UserScope::All(all),
                &AuditFilter::default(),
                Page::first(100),
            )
            .await
            .unwrap();
        let seen: Vec<(String, String)> = rows
            .iter()
            .filter(|r| r.actor == "alice")
            .map(|r| (r.action.clone(), r.outcome.clone()))
            .collect();
        for action in ["tui dkim-generate", "tui dkim-rotate", "tui dkim-import"] {
            assert!(
                seen.contains(&(action.to_string(), "ok".to_string())),
                "{action}: {seen:?}"
            );
        }
        assert!(
            rows.iter().all(|r| !r.target.contains(&seed_b64)),
            "no key material in the audit log"
        );
    }
);

store_test!(
    dkim_keys_are_read_only_without_the_right_or_with_readonly,
    |store| async move {
        let scope = acme(&store).await;
        let dir = tempfile::tempdir().unwrap();
        // Staff may not open SMTP, so not the DKIM keys either.
        let mut staff = app_as(&store, "bob", (100, 30), opts_in(dir.path())).await;
        press(&mut staff, "7").await;
        assert_ne!(staff.screen, ScreenId::Dkim);
        assert_ne!(staff.screen, ScreenId::Smtp);
        // A read-only session of the admin sees the keys but changes nothing.
        let mut ro = app_as(
            &store,
            "alice",
            (100, 30),
            Options {
                readonly: true,
                ..opts_in(dir.path())
            },
        )
        .await;
        open_dkim(&mut ro).await;
        for k in ["g", "i", "r"] {
            press(&mut ro, k).await;
            assert!(ro.popup.is_none(), "{k} opened {:?}", ro.popup);
            let screen = render(&ro, (100, 30));
            assert!(screen.contains("read-only session"), "{screen}");
        }
        assert!(store.list_dkim_keys(scope, None).await.unwrap().is_empty());
    }
);

/// RSA (the default algorithm) through the TUI: generated off the UI task, stored
/// encrypted, 2048 bits. SQLite only: RSA generation is slow in a debug build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_key_generated_through_the_tui() {
    with_sqlite(|store| async move {
        let scope = acme(&store).await;
        let dir = tempfile::tempdir().unwrap();
        let mut app = app_as(&store, "alice", (100, 30), opts_in(dir.path())).await;
        open_dkim(&mut app).await;
        press(&mut app, "g").await; // acme.test, rsa, automatic selector
        press_code(&mut app, KeyCode::Enter).await;
        press(&mut app, "y").await;
        let key = store
            .active_dkim_key(scope, "acme.test")
            .await
            .unwrap()
            .expect("generated");
        assert_eq!(key.algorithm, "rsa");
        assert!(key.selector.starts_with("riq"), "{}", key.selector);
        let secret = SecretKey::load(dir.path()).unwrap();
        let private = PrivateKey::decrypt(&secret, &key).unwrap();
        assert_eq!(private.public_key_b64().unwrap(), key.public_key);
        // An RSA-2048 SubjectPublicKeyInfo is 294 bytes: 392 base64 characters.
        assert_eq!(key.public_key.len(), 392, "{}", key.public_key);
    })
    .await;
}
