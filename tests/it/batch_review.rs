//! The pre-start review (`engine::review`), duplicate and delete-draft, on SQLite and
//! Postgres, and `recalliq batch check` on both backends. The review's recipient count is
//! checked against what `start_batch` really queues, so the two cannot drift apart.

use recalliq::db::{
    NewBatch, NewContact, NewTemplate, OutboxSettings, SmtpSettings, Store, TenantScope,
};
use recalliq::engine::review::{Severity, review_batch};
use serde_json::json;

use crate::store_test;
use crate::support::cli::on_both_backends;
use crate::support::tenant;

/// Two groups that overlap case-insensitively, an inactive contact, a suppressed address,
/// a contact without the `plan` variable. Returns the scope and a draft batch to both groups.
pub(crate) async fn overlapping(store: &Store, domain: &str) -> (TenantScope, i32) {
    let (_, scope) = tenant(store, domain).await;
    store
        .set_smtp_settings(
            scope,
            &SmtpSettings::Outbox(OutboxSettings {
                path: std::env::temp_dir()
                    .join("recalliq-review-outbox")
                    .display()
                    .to_string(),
                from: None,
                reply_to: None,
            }),
        )
        .await
        .unwrap();
    let template = store
        .create_template(
            scope,
            &NewTemplate {
                name: "Plan".into(),
                subject: "Hi {{ name }}, {{ campaign }}".into(),
                body_html: None,
                body_text: Some("Your plan: {{ plan }}".into()),
                variables: None,
            },
        )
        .await
        .unwrap();
    let a = store.create_group(scope, "A", None).await.unwrap();
    let b = store.create_group(scope, "B", None).await.unwrap();
    let add = |g: i32, email: &'static str, plan: Option<&'static str>| {
        let store = store.clone();
        async move {
            store
                .add_contact(
                    scope,
                    g,
                    &NewContact {
                        email: email.into(),
                        name: Some(email.split('@').next().unwrap().into()),
                        variables: plan.map(|p| json!({ "plan": p })),
                    },
                )
                .await
                .unwrap()
        }
    };
    add(a.id, "ann@example.com", Some("gold")).await;
    add(a.id, "ben@example.com", Some("silver")).await;
    add(b.id, "ANN@example.com", Some("other")).await; // duplicate of ann
    add(b.id, "cat@example.com", None).await; // no plan: blocks
    let dan = add(b.id, "dan@example.com", Some("x")).await;
    store
        .set_contact_active(scope, dan.id, false)
        .await
        .unwrap();
    add(b.id, "eve@example.com", Some("y")).await;
    store
        .suppress(scope, "EVE@example.com", "manual", None, None)
        .await
        .unwrap();
    let batch = store
        .create_batch(
            scope,
            &NewBatch {
                name: "Review me".into(),
                template_id: template.id,
                group_ids: vec![a.id, b.id],
                variables: Some(json!({"campaign": "spring"})),
                scheduled_at: None,
            },
        )
        .await
        .unwrap();
    (scope, batch.id)
}

store_test!(
    review_counts_blocks_and_matches_materialize,
    |store| async move {
        let (scope, id) = overlapping(&store, "review.test").await;
        let r = review_batch(&store, scope, id).await.unwrap();
        // ann (once), ben, cat: ANN merged, dan inactive, eve suppressed.
        assert_eq!(r.recipients, 3, "{r:#?}");
        assert_eq!(r.duplicates, 1);
        assert_eq!(r.inactive, 1);
        assert_eq!(r.suppressed, 1);
        assert_eq!(r.quota_left, 1000);
        assert_eq!(r.error_count, 1);
        assert_eq!(r.errors[0].email, "cat@example.com");
        assert_eq!(r.errors[0].variable.as_deref(), Some("plan"));
        assert!(r.blocks());
        let blocking: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Blocking)
            .collect();
        assert_eq!(blocking.len(), 1, "{blocking:?}");
        assert_eq!(blocking[0].kind, "missing-variable");
        assert!(
            blocking[0].message.contains("cat@example.com"),
            "{}",
            blocking[0]
        );
        let sample = r.sample.as_ref().unwrap();
        assert_eq!(sample.recipient, "ann@example.com");
        assert_eq!(sample.subject, "Hi ann, spring");
        assert!(sample.text.contains("Your plan: gold"), "{}", sample.text);
        assert!(
            r.findings[0]
                .message
                .starts_with("3 unique recipients (1 duplicate"),
            "{}",
            r.findings[0]
        );

        // The count is what start really queues.
        let (_, queued) = store.start_batch(scope, id).await.unwrap();
        assert_eq!(queued as i64, r.recipients);
        // A running batch is reported as not startable.
        let again = review_batch(&store, scope, id).await.unwrap();
        assert!(
            again
                .findings
                .iter()
                .any(|f| f.kind == "status" && f.severity == Severity::Blocking)
        );
    }
);

store_test!(review_quota_and_empty_batch, |store| async move {
    let (scope, id) = overlapping(&store, "quota.test").await;
    let all = recalliq::db::Actor::system().all_tenants().unwrap();
    let t = store.get_tenant(scope).await.unwrap();
    store
        .update_tenant(
            &all,
            t.id,
            &recalliq::db::TenantUpdate {
                monthly_email_limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let r = review_batch(&store, scope, id).await.unwrap();
    assert_eq!(r.quota_left, 2);
    let q = r.findings.iter().find(|f| f.kind == "quota").unwrap();
    assert_eq!(q.severity, Severity::Warning);
    assert!(q.message.contains("only 2 of 3"), "{q}");

    // A group with nobody in it: nothing to send blocks.
    let empty = store.create_group(scope, "Empty", None).await.unwrap();
    let tpl = store.get_batch(scope, id).await.unwrap().template_id;
    let b = store
        .create_batch(
            scope,
            &NewBatch {
                name: "Nobody".into(),
                template_id: tpl,
                group_ids: vec![empty.id],
                ..NewBatch::default()
            },
        )
        .await
        .unwrap();
    let r = review_batch(&store, scope, b.id).await.unwrap();
    assert_eq!(r.recipients, 0);
    assert!(r.blocks());
    assert_eq!(r.findings[0].severity, Severity::Blocking);
    assert!(r.sample.is_none());
});

store_test!(duplicate_and_delete_draft, |store| async move {
    let (scope, id) = overlapping(&store, "dup.test").await;
    let copy = store
        .duplicate_batch(scope, id, "Review me (copy)")
        .await
        .unwrap();
    assert_ne!(copy.id, id);
    assert_eq!(copy.status, "draft");
    assert_eq!(
        copy.variables.as_ref().map(|j| j.0.clone()),
        Some(json!({"campaign": "spring"}))
    );
    let groups = store.batch_groups(scope, copy.id).await.unwrap();
    assert_eq!(groups.len(), 2);
    // Another tenant cannot see or delete it.
    let (_, other) = tenant(&store, "other.test").await;
    assert!(store.delete_draft_batch(other, copy.id).await.is_err());
    store.delete_draft_batch(scope, copy.id).await.unwrap();
    assert!(store.get_batch(scope, copy.id).await.is_err());
    // A started batch is not deleted.
    store.start_batch(scope, id).await.unwrap();
    let err = store.delete_draft_batch(scope, id).await.unwrap_err();
    assert!(
        err.to_string().contains("only drafts can be deleted"),
        "{err}"
    );
    assert!(store.get_batch(scope, id).await.is_ok());
});

#[test]
fn batch_check_cli_prints_findings_and_exits_1_when_blocked() {
    on_both_backends(|env| {
        env.run(&["migrate"], None).ok();
        env.create_tenant("Acme", "acme.test").ok();
        env.run(
            &[
                "smtp",
                "set",
                "--tenant",
                "acme.test",
                "--outbox",
                &env.dir.path().join("outbox").display().to_string(),
            ],
            None,
        )
        .ok();
        env.run(
            &["group", "create", "--tenant", "acme.test", "--name", "G"],
            None,
        )
        .ok();
        for (email, vars) in [("a@x.test", "plan=gold"), ("b@x.test", "other=1")] {
            env.run(
                &[
                    "contact",
                    "add",
                    "--tenant",
                    "acme.test",
                    "--group",
                    "G",
                    "--email",
                    email,
                    "--var",
                    vars,
                ],
                None,
            )
            .ok();
        }
        let html = env.file("t.html", b"<p>Hello {{ plan }}</p>");
        env.run(
            &[
                "template",
                "create",
                "--tenant",
                "acme.test",
                "--name",
                "T",
                "--subject",
                "Plan {{ plan }}",
                "--html-file",
                &html,
            ],
            None,
        )
        .ok();
        let id = env
            .run(
                &[
                    "batch",
                    "create",
                    "--tenant",
                    "acme.test",
                    "--name",
                    "B",
                    "--template",
                    "T",
                    "--group",
                    "G",
                ],
                None,
            )
            .ok()
            .stdout
            .trim()
            .to_string();
        let run = env.run(&["batch", "check", &id], None);
        assert_eq!(run.code, 1, "{run:?}");
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert!(
            lines[0].starts_with("ok: recipients: 2 unique recipients"),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("BLOCKING: missing-variable:")
                    && l.contains("b@x.test")
                    && l.contains("'plan'")),
            "{lines:?}"
        );
        // Pre-flight lines follow: the From domain has no DKIM key; the message size.
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("warning: dkim:") && l.contains("not be DKIM-signed")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("ok: size:")),
            "{lines:?}"
        );
        let run = env.run(&["batch", "check", &id, "--json"], None);
        assert_eq!(run.code, 1, "{run:?}");
        let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(json["recipients"], 2);
        assert_eq!(json["errors"][0]["variable"], "plan");
        let codes: Vec<&str> = json["preflight"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["code"].as_str())
            .collect();
        assert!(
            codes.contains(&"size") && codes.contains(&"dkim"),
            "{codes:?}"
        );
    });
}
