//! Groups, contacts, CSV import/export and the suppression list (issue #4), through the store
//! and through the real binary, on SQLite and on Postgres.

use recalliq::csvio;
use recalliq::db::{DbError, NewBatch, NewContact, NewTemplate};
use recalliq::domain::BatchStatus;
use serde_json::json;

use crate::store_test;
use crate::support::cli::{Env, on_both_backends};
use crate::support::tenant;

store_test!(import_updates_and_never_duplicates, |store| async move {
    let (_t, scope) = tenant(&store, "a.example.com").await;
    let g = store.create_group(scope, "News", None).await.unwrap();
    let file = "email,name,city\nann@example.com,Ann,Oslo\nBob@Example.com,Bob,Rome\n";
    let parsed = csvio::parse(file.as_bytes()).unwrap();
    let mut seen = Vec::new();
    let c = store
        .import_contacts(scope, g.id, &parsed.rows, &mut |n| seen.push(n))
        .await
        .unwrap();
    assert_eq!((c.new, c.updated), (2, 0));
    assert_eq!(seen, vec![2]);
    let again = "email,name,city\nANN@example.com,Ann B,Paris\nbob@example.com,,Rome\ncid@example.com,Cid,Lima\n";
    let parsed = csvio::parse(again.as_bytes()).unwrap();
    let c = store
        .import_contacts(scope, g.id, &parsed.rows, &mut |_| {})
        .await
        .unwrap();
    assert_eq!((c.new, c.updated), (1, 2));
    let all = store.all_contacts(scope, g.id).await.unwrap();
    assert_eq!(all.len(), 3, "no duplicates after re-import");
    assert_eq!(all[0].email, "ann@example.com", "the stored spelling stays");
    assert_eq!(all[0].name.as_deref(), Some("Ann B"));
    assert_eq!(
        all[0].variables.as_ref().unwrap().0,
        json!({"city": "Paris"})
    );
    assert_eq!(
        all[1].name.as_deref(),
        Some("Bob"),
        "an empty name keeps the stored one"
    );

    // A big import is chunked but one transaction.
    let mut big = String::from("email,name,n\n");
    for i in 0..2_345 {
        big.push_str(&format!("u{i}@bulk.example.com,User {i},{i}\n"));
    }
    let parsed = csvio::parse(big.as_bytes()).unwrap();
    let c = store
        .import_contacts(scope, g.id, &parsed.rows, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(c.new, 2_345);
    assert_eq!(
        store.count_contacts(scope, g.id, None).await.unwrap(),
        2_348
    );
    let u7 = store
        .list_contacts(scope, g.id, recalliq::db::Page::first(5), Some("u7@bulk"))
        .await
        .unwrap();
    assert_eq!(u7[0].variables.as_ref().unwrap().0["n"], "7");
});

store_test!(group_delete_copy_move, |store| async move {
    let (_t, scope) = tenant(&store, "a.example.com").await;
    let (_u, other) = tenant(&store, "b.example.com").await;
    let g1 = store.create_group(scope, "G1", None).await.unwrap();
    let g2 = store.create_group(scope, "G2", None).await.unwrap();
    let a = store
        .add_contact(
            scope,
            g1.id,
            &NewContact {
                email: "a@x.example".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let b = store
        .add_contact(
            scope,
            g1.id,
            &NewContact {
                email: "b@x.example".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    store
        .add_contact(
            scope,
            g2.id,
            &NewContact {
                email: "A@X.example".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .copy_contacts(scope, &[a.id, b.id], g2.id, false)
            .await
            .unwrap(),
        1,
        "a is already in G2"
    );
    assert_eq!(store.count_contacts(scope, g1.id, None).await.unwrap(), 2);
    assert_eq!(store.count_contacts(scope, g2.id, None).await.unwrap(), 2);
    let g3 = store.create_group(scope, "G3", None).await.unwrap();
    assert_eq!(
        store
            .copy_contacts(scope, &[a.id], g3.id, true)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.count_contacts(scope, g1.id, None).await.unwrap(),
        1,
        "moved away"
    );
    assert!(matches!(
        store.copy_contacts(other, &[b.id], g3.id, false).await,
        Err(DbError::NotFound(_))
    ));
    store.delete_contact(scope, b.id).await.unwrap();
    assert!(matches!(
        store.get_contact(scope, b.id).await,
        Err(DbError::NotFound(_))
    ));

    let tpl = store
        .create_template(
            scope,
            &NewTemplate {
                name: "T".into(),
                subject: "S".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let batch = store
        .create_batch(
            scope,
            &NewBatch {
                name: "B".into(),
                template_id: tpl.id,
                group_ids: vec![g2.id],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    store
        .transition_batch(scope, batch.id, BatchStatus::Running, None)
        .await
        .unwrap();
    let e = store.delete_group(scope, g2.id).await.unwrap_err();
    assert!(e.to_string().contains("used by running batch"), "{e}");
    assert_eq!(
        store.count_contacts(scope, g2.id, None).await.unwrap(),
        2,
        "nothing deleted"
    );
    store
        .transition_batch(scope, batch.id, BatchStatus::Completed, None)
        .await
        .unwrap();
    store.delete_group(scope, g2.id).await.unwrap();
    assert!(matches!(
        store.get_group(scope, g2.id).await,
        Err(DbError::NotFound(_))
    ));
    assert!(
        store
            .batch_groups(scope, batch.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.delete_group(other, g3.id).await,
        Err(DbError::NotFound(_))
    ));
});

store_test!(suppression_list, |store| async move {
    let (_t, scope) = tenant(&store, "a.example.com").await;
    let (_u, other) = tenant(&store, "b.example.com").await;
    assert!(
        store
            .suppress(scope, "Ann@Example.com", "manual", None, None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .suppress(scope, "ann@example.COM", "bounced", None, None)
            .await
            .unwrap(),
        "case-insensitive"
    );
    assert!(store.is_suppressed(scope, "ANN@example.com").await.unwrap());
    assert!(
        !store.is_suppressed(other, "ann@example.com").await.unwrap(),
        "per tenant"
    );
    assert!(matches!(
        store
            .suppress(scope, "x@example.com", "two words", None, None)
            .await,
        Err(DbError::Invalid(_))
    ));
    assert!(matches!(
        store
            .suppress(scope, "not an address", "manual", None, None)
            .await,
        Err(DbError::Invalid(_))
    ));
    let rows = store
        .list_suppressions(scope, recalliq::db::Page::first(10), None)
        .await
        .unwrap();
    assert_eq!((rows.len(), rows[0].reason.as_str()), (1, "manual"));
    assert_eq!(store.count_suppressions(other).await.unwrap(), 0);
    assert!(!store.unsuppress(other, "ann@example.com").await.unwrap());
    assert!(store.unsuppress(scope, "ann@example.com").await.unwrap());
    assert_eq!(store.count_suppressions(scope).await.unwrap(), 0);
});

fn setup(env: &Env) {
    env.create_tenant("Acme", "acme.test").ok();
}

#[test]
fn cli_import_hostile_csv_files() {
    on_both_backends(|env| {
        setup(env);
        env.run(
            &["group", "create", "--tenant", "acme.test", "--name", "News"],
            None,
        )
        .ok();
        let count = |env: &Env| {
            env.json(&[
                "contact",
                "list",
                "--tenant",
                "acme.test",
                "--group",
                "News",
                "--json",
            ])
            .as_array()
            .unwrap()
            .len()
        };

        // BOM, CRLF, quoted commas and newlines, a control character in a name.
        let good = env.file("good.csv", b"\xef\xbb\xbfEmail,Name,City\r\nann@example.com,\"Lee, Ann\",\"Oslo\r\nNorth\"\r\nbob@example.com,\"Bob\x07\r\nBcc: x@y.z\",Rome\r\nANN@example.com,Dup,Paris\r\n");
        let r = env.run(
            &[
                "group",
                "import",
                "--tenant",
                "acme.test",
                "--group",
                "News",
                &good,
            ],
            None,
        );
        r.ok();
        assert!(
            r.stdout.contains("imported into 'News': 2 new, 0 updated"),
            "{}",
            r.stdout
        );
        assert!(
            r.stdout
                .contains("line 6: ANN@example.com (first on line 2)"),
            "{}",
            r.stdout
        );
        let list = env.json(&[
            "contact",
            "list",
            "--tenant",
            "acme.test",
            "--group",
            "News",
            "--json",
        ]);
        assert_eq!(list[0]["name"], "Lee, Ann");
        assert_eq!(list[0]["variables"]["City"], "Oslo\r\nNorth");
        assert_eq!(
            list[1]["name"], "Bob Bcc: x@y.z",
            "no line break can reach a header"
        );
        // The same file again: updates, never duplicates.
        let r = env.run(
            &[
                "group",
                "import",
                "--tenant",
                "acme.test",
                "--group",
                "News",
                &good,
            ],
            None,
        );
        assert!(r.stdout.contains("0 new, 2 updated"), "{}", r.stdout);
        assert_eq!(count(env), 2);

        // Invalid rows: reported by line, nothing imported without --skip-invalid.
        let mixed = env.file(
            "mixed.csv",
            b"email,name\ncid@example.com,Cid\nno at sign,X\ntwo@@example.com,Y\nz@nodot,Z\n",
        );
        let r = env.run(
            &[
                "group",
                "import",
                "--tenant",
                "acme.test",
                "--group",
                "News",
                &mixed,
            ],
            None,
        );
        r.fails_with(1, "nothing imported: 3 invalid row(s)");
        assert!(r.stdout.contains("line 3: invalid email"), "{}", r.stdout);
        assert!(
            r.stdout
                .contains("line 5: invalid email: 'z@nodot' has no dot in its domain"),
            "{}",
            r.stdout
        );
        assert_eq!(count(env), 2, "all or nothing");
        let r = env.run(
            &[
                "group",
                "import",
                "--tenant",
                "acme.test",
                "--group",
                "News",
                &mixed,
                "--dry-run",
            ],
            None,
        );
        r.ok();
        assert!(
            r.stdout.contains("would import into 'News': 1 new")
                && r.stdout.contains("dry run: nothing written")
        );
        assert_eq!(count(env), 2);
        env.run(
            &[
                "group",
                "import",
                "--tenant",
                "acme.test",
                "--group",
                "News",
                &mixed,
                "--skip-invalid",
            ],
            None,
        )
        .ok();
        assert_eq!(count(env), 3);

        // Windows-1252 is converted, and says so.
        let latin = env.file("latin.csv", b"email,name\nzoe@example.com,Zo\xeb\n");
        let r = env.run(
            &[
                "group",
                "import",
                "--tenant",
                "acme.test",
                "--group",
                "News",
                &latin,
                "--json",
            ],
            None,
        );
        r.ok();
        let s: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert!(
            s["encoding_note"]
                .as_str()
                .unwrap()
                .contains("Windows-1252")
        );
        let zoe = env.json(&[
            "contact",
            "list",
            "--tenant",
            "acme.test",
            "--group",
            "News",
            "--search",
            "zoe",
            "--json",
        ]);
        assert_eq!(zoe[0]["name"], "Zoë");

        // Whole-file refusals.
        for (name, bytes, msg) in [
            ("empty.csv", &b""[..], "the file is empty"),
            (
                "header.csv",
                &b"email,name\r\n"[..],
                "header row but no contacts",
            ),
            (
                "nomail.csv",
                &b"mail,name\nx@y.z,A\n"[..],
                "no 'email' column in the header (found: mail, name)",
            ),
        ] {
            let p = env.file(name, bytes);
            env.run(
                &[
                    "group",
                    "import",
                    "--tenant",
                    "acme.test",
                    "--group",
                    "News",
                    &p,
                ],
                None,
            )
            .fails_with(1, msg);
        }
        assert_eq!(count(env), 4);
        env.run(
            &[
                "group",
                "import",
                "--tenant",
                "acme.test",
                "--group",
                "Nope",
                &latin,
            ],
            None,
        )
        .fails_with(1, "group 'Nope' not found");
        env.run(
            &[
                "group",
                "import",
                "--tenant",
                "acme.test",
                "--group",
                "Fresh",
                &latin,
                "--create",
            ],
            None,
        )
        .ok();
    });
}

#[test]
fn cli_export_round_trips_and_escapes_formulas() {
    on_both_backends(|env| {
        setup(env);
        let src = env.file("src.csv", "email,name,promo,score\nann@example.com,=cmd|' /C calc'!A0,+1 free,-3\nbob@example.com,@Bob,\"a, \"\"b\"\"\",7\n".as_bytes());
        env.run(
            &[
                "group",
                "import",
                "--tenant",
                "acme.test",
                "--group",
                "G",
                &src,
                "--create",
            ],
            None,
        )
        .ok();
        let out = env.run(
            &["group", "export", "--tenant", "acme.test", "--group", "G"],
            None,
        );
        out.ok();
        assert!(
            out.stdout.starts_with("email,name,promo,score\r\n"),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout.contains("'=cmd")
                && out.stdout.contains("'+1 free")
                && out.stdout.contains("'-3")
                && out.stdout.contains("'@Bob")
        );
        let path = env.dir.path().join("out.csv");
        env.run(
            &[
                "group",
                "export",
                "--tenant",
                "acme.test",
                "--group",
                "G",
                "--output",
                path.to_str().unwrap(),
            ],
            None,
        )
        .ok();
        let r = env.run(
            &[
                "group",
                "import",
                "--tenant",
                "acme.test",
                "--group",
                "H",
                path.to_str().unwrap(),
                "--create",
            ],
            None,
        );
        r.ok();
        let g = env.json(&[
            "contact",
            "list",
            "--tenant",
            "acme.test",
            "--group",
            "G",
            "--json",
        ]);
        let h = env.json(&[
            "contact",
            "list",
            "--tenant",
            "acme.test",
            "--group",
            "H",
            "--json",
        ]);
        for (a, b) in g.as_array().unwrap().iter().zip(h.as_array().unwrap()) {
            assert_eq!(
                (&a["email"], &a["name"], &a["variables"]),
                (&b["email"], &b["name"], &b["variables"])
            );
        }
        assert_eq!(h[0]["name"], "=cmd|' /C calc'!A0");
    });
}

#[test]
fn cli_groups_contacts_suppression_and_senders() {
    on_both_backends(|env| {
        setup(env);
        env.create_tenant("Other", "other.test").ok();
        let id = env.run(
            &[
                "group",
                "create",
                "--tenant",
                "acme.test",
                "--name",
                "VIP",
                "--description",
                "best",
            ],
            None,
        );
        id.ok();
        env.run(
            &["group", "create", "--tenant", "acme.test", "--name", "vip"],
            None,
        )
        .fails_with(1, "already exists");
        env.run(
            &[
                "contact",
                "add",
                "--tenant",
                "acme.test",
                "--group",
                "VIP",
                "--email",
                "a@example.com",
                "--name",
                "A",
                "--var",
                "city=Oslo",
            ],
            None,
        )
        .ok();
        env.run(
            &[
                "contact",
                "add",
                "--tenant",
                "acme.test",
                "--group",
                "vip",
                "--email",
                "b@example.com",
            ],
            None,
        )
        .ok();
        env.run(
            &[
                "contact",
                "add",
                "--tenant",
                "acme.test",
                "--group",
                "VIP",
                "--email",
                "A@EXAMPLE.com",
            ],
            None,
        )
        .fails_with(1, "already in this group");
        env.run(
            &[
                "contact",
                "add",
                "--tenant",
                "acme.test",
                "--group",
                "VIP",
                "--email",
                "c@example.com",
                "--var",
                "novalue",
            ],
            None,
        )
        .fails_with(2, "KEY=VALUE");
        env.run(
            &[
                "contact",
                "deactivate",
                "--tenant",
                "acme.test",
                "--group",
                "VIP",
                "B@example.com",
            ],
            None,
        )
        .ok();
        let groups = env.json(&["group", "list", "--tenant", "acme.test", "--json"]);
        assert_eq!(
            (
                groups[0]["email_count"].as_i64(),
                groups[0]["active_emails"].as_i64()
            ),
            (Some(2), Some(1))
        );
        let shown = env.json(&["group", "show", "--tenant", "acme.test", "VIP", "--json"]);
        assert_eq!(shown["contact_count"], 2);
        // Another tenant sees none of it.
        env.run(&["group", "show", "--tenant", "other.test", "VIP"], None)
            .fails_with(1, "not found");
        env.run(
            &[
                "contact",
                "list",
                "--tenant",
                "other.test",
                "--group",
                id.stdout.trim(),
            ],
            None,
        )
        .fails_with(1, "not found");
        env.run(&["group", "delete", "--tenant", "acme.test", "VIP"], None)
            .fails_with(2, "pass --yes");
        env.run(
            &["group", "deactivate", "--tenant", "acme.test", "VIP"],
            None,
        )
        .ok();
        assert!(
            env.json(&["group", "list", "--tenant", "acme.test", "--json"])
                .as_array()
                .unwrap()
                .is_empty()
        );
        env.run(
            &["group", "delete", "--tenant", "acme.test", "VIP", "--yes"],
            None,
        )
        .ok();
        env.run(&["group", "show", "--tenant", "acme.test", "VIP"], None)
            .fails_with(1, "not found");

        env.run(
            &[
                "suppress",
                "add",
                "--tenant",
                "acme.test",
                "x@example.com",
                "Y@example.com",
                "--reason",
                "complaint",
            ],
            None,
        )
        .ok();
        let sup = env.file("sup.csv", b"email\ny@EXAMPLE.com\nz@example.com\nbad\n");
        let r = env.run(&["suppress", "import", "--tenant", "acme.test", &sup], None);
        r.ok();
        assert!(
            r.stdout
                .contains("1 suppressed, 1 already were, 1 invalid rows skipped"),
            "{}",
            r.stdout
        );
        let list = env.json(&["suppress", "list", "--tenant", "acme.test", "--json"]);
        let emails: Vec<_> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["email"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(emails, ["x@example.com", "Y@example.com", "z@example.com"]);
        assert!(
            env.json(&["suppress", "list", "--tenant", "other.test", "--json"])
                .as_array()
                .unwrap()
                .is_empty()
        );
        env.run(
            &[
                "suppress",
                "remove",
                "--tenant",
                "acme.test",
                "x@example.com",
            ],
            None,
        )
        .ok();
        assert_eq!(
            env.run(
                &[
                    "suppress",
                    "remove",
                    "--tenant",
                    "acme.test",
                    "x@example.com"
                ],
                None
            )
            .code,
            1
        );

        env.run(
            &[
                "tenant",
                "sender",
                "add",
                "--tenant",
                "acme.test",
                "news@acme.test",
                "--name",
                "Acme News",
            ],
            None,
        )
        .ok();
        let senders = env.json(&[
            "tenant",
            "sender",
            "list",
            "--tenant",
            "acme.test",
            "--json",
        ]);
        assert_eq!(senders[0]["name"], "Acme News");
        env.run(
            &[
                "tenant",
                "sender",
                "deactivate",
                "--tenant",
                "acme.test",
                "NEWS@acme.test",
            ],
            None,
        )
        .ok();
        assert_eq!(
            env.json(&[
                "tenant",
                "sender",
                "list",
                "--tenant",
                "acme.test",
                "--json"
            ])[0]["is_active"],
            false
        );
    });
}
