//! Tenant isolation (#10 item 5), table-driven over the store: every function that takes a
//! tenant scope is called with tenant A's scope on tenant B's ids, names and addresses.
//! Each call must be refused or come back empty, and afterwards B's data is exactly what it
//! was. A new store function that takes an id belongs in this table.

use recalliq::db::{
    Claim, NewBatch, NewContact, NewEmailLog, NewTemplate, Outcome, Page, RowResult, SmtpSettings,
    Store, TenantScope,
};
use recalliq::domain::{BatchStatus, EmailStatus};
use serde_json::json;

use crate::store_test;
use crate::support::tenant;

/// Everything of a tenant that a leak could read or change, in a comparable form.
async fn fingerprint(store: &Store, s: TenantScope) -> String {
    let mut out = Vec::new();
    for g in store.list_groups(s, Page::first(1000), None).await.unwrap() {
        out.push(format!(
            "group {} {} {:?} {}",
            g.id, g.name, g.description, g.is_active
        ));
        for c in store.all_contacts(s, g.id).await.unwrap() {
            out.push(format!(
                "  contact {} {} {:?} {:?} {}",
                c.id,
                c.email,
                c.name,
                c.variables.map(|v| v.0),
                c.is_active
            ));
        }
    }
    for t in store
        .list_templates(s, Page::first(1000), None)
        .await
        .unwrap()
    {
        out.push(format!(
            "template {} {} {} {:?} {}",
            t.id, t.name, t.subject, t.body_html, t.is_active
        ));
    }
    for b in store
        .list_batches(s, Page::first(1000), None)
        .await
        .unwrap()
    {
        out.push(format!(
            "batch {} {} {} {:?} {} {} {:?}",
            b.id,
            b.name,
            b.status,
            b.scheduled_at,
            b.sent_count,
            b.failed_count,
            b.variables.map(|v| v.0)
        ));
        for l in store
            .list_email_logs(s, b.id, Page::first(1000), None)
            .await
            .unwrap()
        {
            out.push(format!(
                "  log {} {} {} {:?} {:?}",
                l.id, l.recipient_email, l.status, l.error_message, l.smtp_response
            ));
        }
        let exec = store
            .list_execution_logs(s, b.id, Page::first(1000))
            .await
            .unwrap();
        out.push(format!("  execution logs {}", exec.len()));
    }
    for x in store
        .list_suppressions(s, Page::first(1000), None)
        .await
        .unwrap()
    {
        out.push(format!("suppressed {} {}", x.email, x.reason));
    }
    for e in store.list_tenant_emails(s).await.unwrap() {
        out.push(format!("sender {} {} {}", e.id, e.email, e.is_active));
    }
    out.push(format!("smtp {:?}", store.smtp_settings(s).await.unwrap()));
    let t = store.get_tenant(s).await.unwrap();
    out.push(format!(
        "tenant {} {} {}",
        t.domain, t.emails_sent_this_month, t.monthly_email_limit
    ));
    out.join("\n")
}

/// The call must fail. `Ok` is a leak whatever it holds.
macro_rules! refused {
    ($what:expr, $call:expr) => {
        if let Ok(v) = $call {
            panic!("{}: tenant A reached tenant B: {:?}", $what, v);
        }
    };
}

/// The call must fail or find nothing.
macro_rules! nothing {
    ($what:expr, $call:expr) => {
        if let Ok(v) = $call {
            assert!(v.is_empty(), "{}: tenant A saw tenant B's {:?}", $what, v);
        }
    };
}

/// The call must fail or count zero.
macro_rules! zero {
    ($what:expr, $call:expr) => {
        if let Ok(v) = $call {
            assert_eq!(v, 0, "{}: tenant A counted tenant B's rows", $what);
        }
    };
}

store_test!(tenant_a_reaches_nothing_of_tenant_b, |store| async move {
    let (_, a) = tenant(&store, "iso-a.example.com").await;
    let (_, b) = tenant(&store, "iso-b.example.com").await;

    // Tenant B: a group with a contact, a template, a running batch with a log and an
    // execution log, a draft batch, a suppression, a sender, SMTP settings.
    let bg = store
        .create_group(b, "B customers", Some("b only"))
        .await
        .unwrap();
    let bc = store
        .add_contact(
            b,
            bg.id,
            &NewContact {
                email: "bob@b.test".into(),
                name: Some("Bob".into()),
                variables: Some(json!({"tier": "gold"})),
            },
        )
        .await
        .unwrap();
    let new_template = |name: &str| NewTemplate {
        name: name.into(),
        subject: "Hi {{ name }}".into(),
        body_html: Some("<p>Hi</p>".into()),
        body_text: None,
        variables: None,
    };
    let bt = store
        .create_template(b, &new_template("B welcome"))
        .await
        .unwrap();
    let new_batch = |name: &str, template_id: i32, group_id: i32| NewBatch {
        name: name.into(),
        template_id,
        group_ids: vec![group_id],
        variables: None,
        scheduled_at: None,
    };
    let bb = store
        .create_batch(b, &new_batch("B running", bt.id, bg.id))
        .await
        .unwrap();
    store.start_batch(b, bb.id).await.unwrap();
    let blog = store
        .add_email_log(
            b,
            bb.id,
            &NewEmailLog {
                recipient_email: "carl@b.test".into(),
                recipient_name: None,
                status: EmailStatus::Failed,
                sent_at: None,
                error_message: Some("550 no".into()),
                smtp_response: Some("550 no".into()),
            },
        )
        .await
        .unwrap();
    let bdraft = store
        .create_batch(b, &new_batch("B draft", bt.id, bg.id))
        .await
        .unwrap();
    store
        .suppress(b, "gone@b.test", "bounced", None, None)
        .await
        .unwrap();
    let bs = store
        .add_tenant_email(b, "news@b.test", Some("B news"))
        .await
        .unwrap();
    store
        .set_smtp_settings(
            b,
            &SmtpSettings::Smtp(recalliq::db::SmtpServer::new(
                "smtp.b.test",
                587,
                recalliq::db::Security::Starttls,
            )),
        )
        .await
        .unwrap();

    // Tenant A's own things, used as the other end of cross-tenant references.
    let ag = store.create_group(a, "A list", None).await.unwrap();
    let at = store
        .create_template(a, &new_template("A welcome"))
        .await
        .unwrap();

    let before = fingerprint(&store, b).await;
    assert!(
        before.contains("bob@b.test") && before.contains("carl@b.test"),
        "the fixture is in place: {before}"
    );

    // Reads by id, name or address.
    refused!("get_group", store.get_group(a, bg.id).await);
    refused!(
        "find_group by name",
        store.find_group(a, "B customers").await
    );
    refused!(
        "find_group by id",
        store.find_group(a, &bg.id.to_string()).await
    );
    refused!("get_contact", store.get_contact(a, bc.id).await);
    refused!("get_template", store.get_template(a, bt.id).await);
    refused!("find_template", store.find_template(a, "B welcome").await);
    refused!(
        "find_template by id",
        store.find_template(a, &bt.id.to_string()).await
    );
    refused!("get_batch", store.get_batch(a, bb.id).await);
    refused!("get_email_log", store.get_email_log(a, blog.id).await);
    refused!("queue_counts", store.queue_counts(a, bb.id).await);
    if let Ok((total, active)) = store.contact_counts(a, bg.id).await {
        assert_eq!((total, active), (0, 0), "contact_counts leaked");
    }
    nothing!("batch_groups", store.batch_groups(a, bb.id).await);
    nothing!("all_contacts", store.all_contacts(a, bg.id).await);
    nothing!(
        "list_contacts",
        store.list_contacts(a, bg.id, Page::first(100), None).await
    );
    zero!("count_contacts", store.count_contacts(a, bg.id, None).await);
    nothing!(
        "contact_ids_by_email",
        store.contact_ids_by_email(a, bg.id).await
    );
    nothing!(
        "list_email_logs",
        store
            .list_email_logs(a, bb.id, Page::first(100), None)
            .await
    );
    nothing!("email_log_counts", store.email_log_counts(a, bb.id).await);
    nothing!(
        "list_execution_logs",
        store.list_execution_logs(a, bb.id, Page::first(100)).await
    );
    if let Ok(s) = store.is_suppressed(a, "gone@b.test").await {
        assert!(!s, "is_suppressed answered from tenant B's list");
    }
    // Lists and counts in A's scope hold only A's rows.
    let groups = store.list_groups(a, Page::first(100), None).await.unwrap();
    assert_eq!(groups.iter().map(|g| g.id).collect::<Vec<_>>(), vec![ag.id]);
    let templates = store
        .list_templates(a, Page::first(100), None)
        .await
        .unwrap();
    assert_eq!(
        templates.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![at.id]
    );
    nothing!(
        "list_batches",
        store.list_batches(a, Page::first(100), None).await
    );
    nothing!(
        "list_suppressions",
        store.list_suppressions(a, Page::first(100), None).await
    );
    nothing!("list_tenant_emails", store.list_tenant_emails(a).await);
    assert_eq!(store.count_groups(a).await.unwrap(), 1);
    assert_eq!(store.count_templates(a).await.unwrap(), 1);
    assert_eq!(store.count_batches(a).await.unwrap(), 0);
    assert_eq!(store.count_suppressions(a).await.unwrap(), 0);
    assert!(store.smtp_settings(a).await.unwrap().is_none());
    let counts = store.group_counts(a).await.unwrap();
    assert!(counts.iter().all(|c| c.id == ag.id), "{counts:?}");

    // Writes on B's rows.
    refused!(
        "update_group",
        store.update_group(a, bg.id, Some("pwned"), None).await
    );
    refused!(
        "set_group_active",
        store.set_group_active(a, bg.id, false).await
    );
    refused!(
        "add_contact into B's group",
        store
            .add_contact(
                a,
                bg.id,
                &NewContact {
                    email: "eve@a.test".into(),
                    name: None,
                    variables: None,
                },
            )
            .await
    );
    refused!(
        "update_contact",
        store
            .update_contact(a, bc.id, Some("pwned"), Some(json!({"x": 1})))
            .await
    );
    refused!(
        "set_contact_active",
        store.set_contact_active(a, bc.id, false).await
    );
    refused!("delete_contact", store.delete_contact(a, bc.id).await);
    refused!("delete_group", store.delete_group(a, bg.id).await);
    // Copying B's contact into A's group, or A's into B's group.
    if let Ok(n) = store.copy_contacts(a, &[bc.id], ag.id, true).await {
        assert_eq!(n, 0, "copy_contacts moved tenant B's contact");
    }
    refused!(
        "copy_contacts into B's group",
        store.copy_contacts(a, &[], bg.id, false).await
    );
    let row = recalliq::csvio::ImportRow {
        line: 2,
        email: "eve@a.test".into(),
        name: None,
        variables: None,
    };
    refused!(
        "import_contacts into B's group",
        store
            .import_contacts(a, bg.id, std::slice::from_ref(&row), &mut |_| {})
            .await
    );
    refused!(
        "update_template",
        store
            .update_template(a, bt.id, &new_template("pwned"))
            .await
    );
    refused!(
        "set_template_active",
        store.set_template_active(a, bt.id, false).await
    );
    refused!(
        "create_batch with B's template",
        store.create_batch(a, &new_batch("x", bt.id, ag.id)).await
    );
    refused!(
        "create_batch with B's group",
        store.create_batch(a, &new_batch("x", at.id, bg.id)).await
    );
    refused!(
        "update_batch",
        store
            .update_batch(a, bdraft.id, Some("pwned"), None, None)
            .await
    );
    refused!(
        "transition_batch",
        store
            .transition_batch(a, bb.id, BatchStatus::Cancelled, Some("pwned"))
            .await
    );
    refused!("start_batch", store.start_batch(a, bdraft.id).await);
    refused!(
        "materialize_batch",
        store.materialize_batch(a, bdraft.id).await
    );
    refused!("pause_batch", store.pause_batch(a, bb.id, Some("x")).await);
    refused!("resume_batch", store.resume_batch(a, bb.id).await);
    refused!("cancel_batch", store.cancel_batch(a, bb.id).await);
    refused!("retry_failed", store.retry_failed(a, bb.id).await);
    refused!(
        "add_email_log",
        store
            .add_email_log(
                a,
                bb.id,
                &NewEmailLog {
                    recipient_email: "x@a.test".into(),
                    recipient_name: None,
                    status: EmailStatus::Sent,
                    sent_at: None,
                    error_message: None,
                    smtp_response: None,
                },
            )
            .await
    );
    refused!(
        "set_email_log_status",
        store
            .set_email_log_status(a, blog.id, EmailStatus::Sent, None, None)
            .await
    );
    refused!(
        "add_execution_log",
        store.add_execution_log(a, bb.id, "pwned", None, None).await
    );
    match store
        .claim(a, bb.id, "token-a", 100, std::time::Duration::from_secs(60))
        .await
    {
        Err(_) | Ok(Claim::QuotaExhausted) => {}
        Ok(Claim::Rows { rows, .. }) => assert!(rows.is_empty(), "claimed B's rows: {rows:?}"),
    }
    let result = RowResult {
        id: blog.id,
        token: "token-a".into(),
        outcome: Outcome::Sent {
            smtp_response: "250 pwned".into(),
            message_id: None,
        },
    };
    if let Ok(w) = store.write_results(a, bb.id, &[result]).await {
        assert_eq!(w.sent, 0, "write_results changed tenant B's log");
    }
    if let Ok(removed) = store.unsuppress(a, "gone@b.test").await {
        assert!(!removed, "unsuppress removed tenant B's suppression");
    }
    refused!(
        "set_tenant_email_active",
        store.set_tenant_email_active(a, bs.id, false).await
    );

    let after = fingerprint(&store, b).await;
    assert_eq!(before, after, "tenant B's data changed");
});

/// The same promise through the real binary: a tenant admin of A (`--as`, the broadest
/// tenant role) names tenant B's domain, groups, templates and batches in every command that
/// takes them. Each is refused, the answer does not tell B exists, and B is unchanged.
#[test]
fn cli_commands_as_tenant_a_never_touch_tenant_b() {
    crate::support::cli::on_both_backends(|env| {
        for d in ["a.test", "b.test"] {
            env.run(&["tenant", "create", "--name", d, "--domain", d], None)
                .ok();
        }
        env.run(
            &[
                "user",
                "create",
                "--username",
                "ada",
                "--email",
                "ada@a.test",
                "--role",
                "tenant_admin",
                "--tenant",
                "a.test",
                "--password-stdin",
            ],
            Some("a long passphrase\n"),
        )
        .ok();
        // Tenant B's data, made by the operator.
        env.run(
            &["group", "create", "--tenant", "b.test", "--name", "G"],
            None,
        )
        .ok();
        env.run(
            &[
                "contact",
                "add",
                "--tenant",
                "b.test",
                "--group",
                "G",
                "--email",
                "bob@b.test",
            ],
            None,
        )
        .ok();
        let html = env.file("t.html", b"<p>Hi {{ name }}</p>");
        env.run(
            &[
                "template",
                "create",
                "--tenant",
                "b.test",
                "--name",
                "T",
                "--subject",
                "Hi",
                "--html-file",
                &html,
            ],
            None,
        )
        .ok();
        env.run(&["smtp", "set", "--tenant", "b.test", "--outbox"], None)
            .ok();
        env.run(
            &["suppress", "add", "--tenant", "b.test", "gone@b.test"],
            None,
        )
        .ok();
        env.run(
            &[
                "tenant",
                "sender",
                "add",
                "--tenant",
                "b.test",
                "news@b.test",
            ],
            None,
        )
        .ok();
        let created = env.run(
            &[
                "batch",
                "create",
                "--tenant",
                "b.test",
                "--name",
                "B1",
                "--template",
                "T",
                "--group",
                "G",
            ],
            None,
        );
        created.ok();
        let batch = created.stdout.trim().to_string();
        let csv = env.file("c.csv", b"email\neve@a.test\n");
        // Everything of tenant B the commands could touch, as the operator sees it.
        let state_of_b = || {
            [
                vec!["group", "list", "--tenant", "b.test", "--json"],
                vec![
                    "contact", "list", "--tenant", "b.test", "--group", "G", "--json",
                ],
                vec!["template", "list", "--tenant", "b.test", "--json"],
                vec!["suppress", "list", "--tenant", "b.test", "--json"],
                vec!["batch", "show", &batch, "--json"],
                vec!["smtp", "show", "--tenant", "b.test", "--json"],
                vec!["tenant", "sender", "list", "--tenant", "b.test", "--json"],
            ]
            .map(|args| env.run(&args, None).stdout)
        };
        let before = state_of_b();

        let b = "b.test";
        let commands: Vec<Vec<&str>> = vec![
            vec!["tenant", "show", b],
            vec!["tenant", "sender", "list", "--tenant", b],
            vec!["tenant", "sender", "add", "--tenant", b, "x@b.test"],
            vec![
                "tenant",
                "sender",
                "deactivate",
                "--tenant",
                b,
                "news@b.test",
            ],
            vec!["user", "list", "--tenant", b],
            vec!["group", "list", "--tenant", b],
            vec!["group", "create", "--tenant", b, "--name", "X"],
            vec!["group", "show", "--tenant", b, "G"],
            vec!["group", "deactivate", "--tenant", b, "G"],
            vec!["group", "delete", "--tenant", b, "G", "--yes"],
            vec!["group", "import", "--tenant", b, "--group", "G", &csv],
            vec!["group", "export", "--tenant", b, "--group", "G"],
            vec![
                "contact", "add", "--tenant", b, "--group", "G", "--email", "x@b.test",
            ],
            vec!["contact", "list", "--tenant", b, "--group", "G"],
            vec![
                "contact",
                "deactivate",
                "--tenant",
                b,
                "--group",
                "G",
                "bob@b.test",
            ],
            vec!["suppress", "add", "--tenant", b, "x@b.test"],
            vec!["suppress", "remove", "--tenant", b, "gone@b.test"],
            vec!["suppress", "list", "--tenant", b],
            vec!["suppress", "import", "--tenant", b, &csv],
            vec!["template", "list", "--tenant", b],
            vec!["template", "show", "--tenant", b, "T"],
            vec![
                "template",
                "create",
                "--tenant",
                b,
                "--name",
                "X",
                "--subject",
                "x",
                "--html-file",
                &html,
            ],
            vec![
                "template",
                "preview",
                "--tenant",
                b,
                "--template",
                "T",
                "--group",
                "G",
                "--email",
                "bob@b.test",
            ],
            vec![
                "template",
                "send-test",
                "--tenant",
                b,
                "--template",
                "T",
                "--group",
                "G",
                "--contact",
                "bob@b.test",
                "--to",
                "ada@a.test",
            ],
            vec!["smtp", "show", "--tenant", b],
            vec!["smtp", "test", "--tenant", b],
            vec!["smtp", "set", "--tenant", b, "--outbox"],
            vec!["batch", "list", "--tenant", b],
            vec![
                "batch",
                "create",
                "--tenant",
                b,
                "--name",
                "X",
                "--template",
                "T",
                "--group",
                "G",
            ],
            vec!["batch", "show", &batch],
            vec!["batch", "start", &batch],
            vec!["batch", "pause", &batch],
            vec!["batch", "resume", &batch],
            vec!["batch", "cancel", &batch],
            vec!["batch", "retry-failed", &batch],
        ];
        for cmd in &commands {
            let mut args = vec!["--as", "ada"];
            args.extend(cmd.iter().copied());
            let r = env.run(&args, None);
            assert_eq!(
                r.code, 1,
                "{cmd:?} must be refused: {} {}",
                r.stdout, r.stderr
            );
            assert!(
                r.stderr.contains("not found") || r.stderr.contains("not exist"),
                "{cmd:?}: the refusal reads like an unknown name: {}",
                r.stderr
            );
            assert!(
                !r.stdout.contains("bob@b.test") && !r.stdout.contains("gone@b.test"),
                "{cmd:?} printed tenant B's data: {}",
                r.stdout
            );
        }
        let after = state_of_b();
        assert_eq!(before, after, "tenant B changed");
    });
}
