//! The store on both backends: CRUD and keyset pagination of every table, and tenant
//! isolation by construction.

use recalliq::db::{
    Actor, DbError, NewBatch, NewContact, NewEmailLog, NewTemplate, NewUser, Page, TenantUpdate,
    UserUpdate,
};
use recalliq::domain::{BatchStatus, EmailStatus, Role, TenantPlan, TenantStatus};
use serde_json::json;

use crate::store_test;
use crate::support::tenant;

store_test!(tenants_crud_and_keyset, |store| async move {
    let all = Actor::system().all_tenants().unwrap();
    for i in 0..25 {
        tenant(&store, &format!("t{i:02}.example.com")).await;
    }
    assert_eq!(store.count_tenants(&all, None).await.unwrap(), 25);
    let p1 = store
        .list_tenants(&all, Page::first(10), None)
        .await
        .unwrap();
    assert_eq!(p1.len(), 10);
    assert_eq!(p1[0].domain, "t00.example.com");
    let p2 = store
        .list_tenants(&all, Page::after(p1[9].id, 10), None)
        .await
        .unwrap();
    assert_eq!(p2[0].domain, "t10.example.com");
    let last = store.list_tenants(&all, Page::last(3), None).await.unwrap();
    let domains: Vec<_> = last.iter().map(|t| t.domain.as_str()).collect();
    assert_eq!(
        domains,
        ["t22.example.com", "t23.example.com", "t24.example.com"]
    );
    let back = store
        .list_tenants(&all, Page::before(p2[0].id, 2), None)
        .await
        .unwrap();
    assert_eq!(
        back.iter().map(|t| t.domain.as_str()).collect::<Vec<_>>(),
        ["t08.example.com", "t09.example.com"]
    );
    let found = store
        .list_tenants(&all, Page::first(50), Some("T1"))
        .await
        .unwrap();
    assert_eq!(found.len(), 10, "t10..t19 match 't1'");
    assert_eq!(store.count_tenants(&all, Some("t1")).await.unwrap(), 10);

    let t = &p1[0];
    assert_eq!(t.plan, "basic");
    assert_eq!(t.status, "active");
    assert_eq!(t.monthly_email_limit, 1000);
    let upd = TenantUpdate {
        plan: Some(TenantPlan::Enterprise),
        monthly_email_limit: Some(50_000),
        ..Default::default()
    };
    let t2 = store.update_tenant(&all, t.id, &upd).await.unwrap();
    assert_eq!(
        (t2.plan.as_str(), t2.monthly_email_limit),
        ("enterprise", 50_000)
    );
    let s = store
        .set_tenant_status(&all, t.id, TenantStatus::Suspended)
        .await
        .unwrap();
    assert_eq!(s.status, "suspended");
    assert!(!s.is_active && !s.is_usable());
    assert_eq!(
        store
            .tenant_by_domain(&all, "T00.EXAMPLE.COM")
            .await
            .unwrap()
            .id,
        t.id
    );

    // Bad input: duplicate domain, malformed domain, negative limit.
    let dup = store
        .create_tenant(
            &all,
            &recalliq::db::NewTenant {
                name: "x".into(),
                domain: "t00.example.com".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(dup, DbError::Conflict(_)), "{dup}");
    assert!(dup.to_string().contains("t00.example.com"));
    let bad = store
        .create_tenant(
            &all,
            &recalliq::db::NewTenant {
                name: "x".into(),
                domain: "not a domain".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(bad, DbError::Invalid(_)));
    let neg = TenantUpdate {
        monthly_email_limit: Some(-1),
        ..Default::default()
    };
    assert!(matches!(
        store.update_tenant(&all, t.id, &neg).await,
        Err(DbError::Invalid(_))
    ));
    assert_eq!(
        store.count_tenants(&all, None).await.unwrap(),
        25,
        "nothing half-written"
    );
});

store_test!(users_crud_roles_and_conflicts, |store| async move {
    let all = Actor::system().all_tenants().unwrap();
    let (a, sa) = tenant(&store, "a.example.com").await;
    let (_b, sb) = tenant(&store, "b.example.com").await;
    let mk = |username: &str, email: &str, role: Role, tenant_id: Option<i32>| NewUser {
        username: username.into(),
        email: email.into(),
        password_hash: "pbkdf2_sha256$1000$s$x".into(),
        role,
        tenant_id,
        first_name: Some("Ann\r\nBcc: x".into()),
        last_name: None,
    };
    let root = store
        .create_user(
            all.into(),
            &mk("root", "root@example.com", Role::SuperAdmin, None),
        )
        .await
        .unwrap();
    assert!(root.is_superuser && root.tenant_id.is_none());
    let admin = store
        .create_user(
            all.into(),
            &mk("ann", "ann@a.example.com", Role::TenantAdmin, Some(a.id)),
        )
        .await
        .unwrap();
    assert_eq!(
        admin.first_name.as_deref(),
        Some("Ann Bcc: x"),
        "no line breaks survive"
    );
    // A tenant scope creates users only in its own tenant, never super admins.
    let staff = store
        .create_user(
            sa.into(),
            &mk("sam", "sam@a.example.com", Role::Staff, None),
        )
        .await
        .unwrap();
    assert_eq!(staff.tenant_id, Some(a.id));
    let e = store
        .create_user(
            sa.into(),
            &mk("eve", "eve@a.example.com", Role::SuperAdmin, None),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, DbError::Denied(_)));
    let e = store
        .create_user(
            sb.into(),
            &mk("eve", "eve@a.example.com", Role::User, Some(a.id)),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, DbError::Denied(_)), "{e}");
    // Role rules.
    let e = store
        .create_user(all.into(), &mk("x", "x@example.com", Role::Staff, None))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("needs a tenant"), "{e}");
    let e = store
        .create_user(
            all.into(),
            &mk("x", "x@example.com", Role::SuperAdmin, Some(a.id)),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no tenant"), "{e}");
    // Duplicates, case-insensitively.
    let e = store
        .create_user(
            all.into(),
            &mk("ANN", "other@example.com", Role::User, Some(a.id)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, DbError::Conflict(_)) && e.to_string().contains("username"),
        "{e}"
    );
    let e = store
        .create_user(
            all.into(),
            &mk("zed", "Ann@A.example.com", Role::User, Some(a.id)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, DbError::Conflict(_)) && e.to_string().contains("email"),
        "{e}"
    );
    let e = store
        .create_user(
            all.into(),
            &mk("bad name", "b@example.com", Role::User, Some(a.id)),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, DbError::Invalid(_)));
    let e = store
        .create_user(
            all.into(),
            &mk("nomail", "not-an-address", Role::User, Some(a.id)),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, DbError::Invalid(_)));

    // Listing is scoped.
    assert_eq!(store.count_users(all.into(), None).await.unwrap(), 3);
    assert_eq!(store.count_users(sa.into(), None).await.unwrap(), 2);
    assert_eq!(store.count_users(sb.into(), None).await.unwrap(), 0);
    let listed = store
        .list_users(sa.into(), Page::first(10), Some("sam"))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(matches!(
        store.get_user(sb.into(), staff.id).await,
        Err(DbError::NotFound(_))
    ));
    assert!(matches!(
        store.get_user(sa.into(), root.id).await,
        Err(DbError::NotFound(_))
    ));

    // Update, role change, deactivate, password, last_login.
    let upd = UserUpdate {
        role: Some(Role::User),
        email: Some("sam2@a.example.com".into()),
        ..Default::default()
    };
    let s2 = store.update_user(sa.into(), staff.id, &upd).await.unwrap();
    assert_eq!(
        (s2.role.as_str(), s2.email.as_str()),
        ("user", "sam2@a.example.com")
    );
    let promote = UserUpdate {
        role: Some(Role::SuperAdmin),
        ..Default::default()
    };
    assert!(matches!(
        store.update_user(sa.into(), staff.id, &promote).await,
        Err(DbError::Denied(_))
    ));
    let d = store.deactivate_user(sa.into(), staff.id).await.unwrap();
    assert!(!d.is_active);
    store
        .set_password_hash(sa.into(), staff.id, "pbkdf2_sha256$1$a$b")
        .await
        .unwrap();
    assert_eq!(
        store.get_user(all.into(), staff.id).await.unwrap().password,
        "pbkdf2_sha256$1$a$b"
    );
    assert!(matches!(
        store.set_password_hash(sa.into(), root.id, "x").await,
        Err(DbError::NotFound(_))
    ));
    store.touch_last_login(admin.id).await.unwrap();
    assert!(
        store
            .get_user(all.into(), admin.id)
            .await
            .unwrap()
            .last_login
            .is_some()
    );
    assert_eq!(
        store.find_login_user("ANN").await.unwrap().unwrap().id,
        admin.id
    );
});

store_test!(groups_and_contacts, |store| async move {
    let (_a, sa) = tenant(&store, "a.example.com").await;
    let (_b, sb) = tenant(&store, "b.example.com").await;
    let g = store
        .create_group(sa, "Customers", Some("All of them"))
        .await
        .unwrap();
    assert!(matches!(
        store.create_group(sa, "customers", None).await,
        Err(DbError::Conflict(_))
    ));
    store
        .create_group(sb, "Customers", None)
        .await
        .expect("same name in another tenant is fine");
    for i in 0..30 {
        let vars = json!({"city": format!("City {i}"), "n": i});
        store
            .add_contact(
                sa,
                g.id,
                &NewContact {
                    email: format!("c{i:02}@Example.com"),
                    name: Some(format!("C {i}")),
                    variables: Some(vars),
                },
            )
            .await
            .unwrap();
    }
    let e = store
        .add_contact(
            sa,
            g.id,
            &NewContact {
                email: "C01@example.com".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, DbError::Conflict(_)),
        "case-insensitive uniqueness: {e}"
    );
    let e = store
        .add_contact(
            sa,
            g.id,
            &NewContact {
                email: "two@@example.com".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, DbError::Invalid(_)));
    let e = store
        .add_contact(
            sa,
            g.id,
            &NewContact {
                email: "v@example.com".into(),
                name: None,
                variables: Some(json!([1, 2])),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, DbError::Invalid(_)));
    // Tenant B cannot add to, list or read tenant A's group.
    assert!(matches!(
        store
            .add_contact(
                sb,
                g.id,
                &NewContact {
                    email: "x@example.com".into(),
                    ..Default::default()
                }
            )
            .await,
        Err(DbError::NotFound(_))
    ));
    assert!(
        store
            .list_contacts(sb, g.id, Page::first(100), None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.count_contacts(sa, g.id, None).await.unwrap(), 30);
    assert_eq!(store.count_contacts(sb, g.id, None).await.unwrap(), 0);

    let first = store
        .list_contacts(sa, g.id, Page::first(12), None)
        .await
        .unwrap();
    assert_eq!(first.len(), 12);
    assert_eq!(first[0].email, "c00@example.com");
    assert_eq!(first[0].variables.as_ref().unwrap().0["city"], "City 0");
    let next = store
        .list_contacts(sa, g.id, Page::after(first[11].id, 12), None)
        .await
        .unwrap();
    assert_eq!(next[0].email, "c12@example.com");
    let found = store
        .list_contacts(sa, g.id, Page::first(50), Some("c 2"))
        .await
        .unwrap();
    assert_eq!(found.len(), 11, "names 'C 2', 'C 20'..'C 29'");
    let c = store
        .update_contact(
            sa,
            first[0].id,
            Some("Zoë\nX"),
            Some(json!({"city": "Paris"})),
        )
        .await
        .unwrap();
    assert_eq!(c.name.as_deref(), Some("Zoë X"));
    assert_eq!(c.variables.unwrap().0, json!({"city": "Paris"}));
    assert!(matches!(
        store.get_contact(sb, c.id).await,
        Err(DbError::NotFound(_))
    ));
    assert!(
        !store
            .set_contact_active(sa, c.id, false)
            .await
            .unwrap()
            .is_active
    );

    let counts = store.group_counts(sa).await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!((counts[0].email_count, counts[0].active_emails), (30, 29));
    let g2 = store
        .update_group(sa, g.id, Some("Clients"), Some("renamed"))
        .await
        .unwrap();
    assert_eq!(g2.name, "Clients");
    assert_eq!(store.find_group(sa, "clients").await.unwrap().id, g.id);
    assert!(matches!(
        store.find_group(sb, &g.id.to_string()).await,
        Err(DbError::NotFound(_))
    ));
    assert!(
        !store
            .set_group_active(sa, g.id, false)
            .await
            .unwrap()
            .is_active
    );
    assert!(
        store.group_counts(sa).await.unwrap().is_empty(),
        "inactive groups leave the counts"
    );
    assert!(matches!(
        store.set_group_active(sb, g.id, true).await,
        Err(DbError::NotFound(_))
    ));
});

store_test!(templates_batches_and_logs, |store| async move {
    let (_a, sa) = tenant(&store, "a.example.com").await;
    let (_b, sb) = tenant(&store, "b.example.com").await;
    let tpl = store
        .create_template(
            sa,
            &NewTemplate {
                name: "Welcome".into(),
                subject: "Hi {{ name }}".into(),
                body_html: Some("<p>Hi</p>".into()),
                body_text: None,
                variables: Some(json!(["name"])),
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_template(
                sa,
                &NewTemplate {
                    name: "x".into(),
                    subject: "a\r\nBcc: b".into(),
                    ..Default::default()
                }
            )
            .await,
        Err(DbError::Invalid(_))
    ));
    assert_eq!(store.find_template(sa, "welcome").await.unwrap().id, tpl.id);
    assert!(matches!(
        store.get_template(sb, tpl.id).await,
        Err(DbError::NotFound(_))
    ));
    let tpl2 = store
        .update_template(
            sa,
            tpl.id,
            &NewTemplate {
                name: "Welcome v2".into(),
                subject: "Hello".into(),
                body_html: None,
                body_text: Some("Hello".into()),
                variables: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(tpl2.name, "Welcome v2");
    assert!(
        !store
            .set_template_active(sa, tpl.id, false)
            .await
            .unwrap()
            .is_active
    );
    assert_eq!(
        store
            .list_templates(sa, Page::first(10), Some("v2"))
            .await
            .unwrap()
            .len(),
        1
    );

    let g1 = store.create_group(sa, "G1", None).await.unwrap();
    let g2 = store.create_group(sa, "G2", None).await.unwrap();
    let gb = store.create_group(sb, "GB", None).await.unwrap();
    // A batch cannot use another tenant's template or group.
    let e = store
        .create_batch(
            sa,
            &NewBatch {
                name: "x".into(),
                template_id: tpl.id,
                group_ids: vec![gb.id],
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, DbError::NotFound(_)), "{e}");
    let e = store
        .create_batch(
            sb,
            &NewBatch {
                name: "x".into(),
                template_id: tpl.id,
                group_ids: vec![gb.id],
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, DbError::NotFound(_)), "{e}");
    assert_eq!(
        store.count_batches(sa).await.unwrap() + store.count_batches(sb).await.unwrap(),
        0,
        "nothing half-written"
    );

    let b = store
        .create_batch(
            sa,
            &NewBatch {
                name: "Launch".into(),
                template_id: tpl.id,
                group_ids: vec![g2.id, g1.id, g1.id],
                variables: Some(json!({"promo": "X1"})),
                scheduled_at: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(b.status, "draft");
    let groups: Vec<i32> = store
        .batch_groups(sa, b.id)
        .await
        .unwrap()
        .iter()
        .map(|g| g.group_id)
        .collect();
    assert_eq!(groups, vec![g1.id, g2.id]);
    let b = store
        .update_batch(sa, b.id, Some("Launch 2"), None, None)
        .await
        .unwrap();
    assert_eq!(b.name, "Launch 2");
    // The state machine guards every transition.
    let e = store
        .transition_batch(sa, b.id, BatchStatus::Completed, None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot become completed"), "{e}");
    let b = store
        .transition_batch(sa, b.id, BatchStatus::Running, None)
        .await
        .unwrap();
    assert!(b.started_at.is_some());
    assert!(matches!(
        store.update_batch(sa, b.id, Some("nope"), None, None).await,
        Err(DbError::Invalid(_))
    ));
    let b = store
        .transition_batch(sa, b.id, BatchStatus::Paused, Some("operator"))
        .await
        .unwrap();
    assert_eq!(
        (b.status.as_str(), b.status_reason.as_deref()),
        ("paused", Some("operator"))
    );
    assert!(matches!(
        store
            .transition_batch(sb, b.id, BatchStatus::Running, None)
            .await,
        Err(DbError::NotFound(_))
    ));

    for i in 0..40 {
        let status = if i % 4 == 0 {
            EmailStatus::Failed
        } else {
            EmailStatus::Sent
        };
        store
            .add_email_log(
                sa,
                b.id,
                &NewEmailLog {
                    recipient_email: format!("r{i:02}@example.com"),
                    recipient_name: None,
                    status,
                    sent_at: None,
                    error_message: None,
                    smtp_response: Some("250 OK".into()),
                },
            )
            .await
            .unwrap();
    }
    let counts = store.email_log_counts(sa, b.id).await.unwrap();
    assert_eq!(
        counts,
        vec![("failed".to_string(), 10), ("sent".to_string(), 30)]
    );
    let failed = store
        .list_email_logs(sa, b.id, Page::first(100), Some(EmailStatus::Failed))
        .await
        .unwrap();
    assert_eq!(failed.len(), 10);
    let tail = store
        .list_email_logs(sa, b.id, Page::last(5), None)
        .await
        .unwrap();
    assert_eq!(tail.last().unwrap().recipient_email, "r39@example.com");
    assert!(tail.windows(2).all(|w| w[0].id < w[1].id));
    let l = store
        .set_email_log_status(
            sa,
            failed[0].id,
            EmailStatus::Sent,
            None,
            Some("250 2.0.0 queued"),
        )
        .await
        .unwrap();
    assert!(l.sent_at.is_some());
    assert!(matches!(
        store.get_email_log(sb, l.id).await,
        Err(DbError::NotFound(_))
    ));
    assert!(matches!(
        store.list_email_logs(sb, b.id, Page::first(10), None).await,
        Err(DbError::NotFound(_))
    ));

    store
        .add_execution_log(
            sa,
            b.id,
            "note",
            Some("checked"),
            Some(json!({"by": "test"})),
        )
        .await
        .unwrap();
    let xl = store
        .list_execution_logs(sa, b.id, Page::first(10))
        .await
        .unwrap();
    let actions: Vec<_> = xl.iter().map(|x| x.action.as_str()).collect();
    assert_eq!(actions, ["created", "running", "paused", "note"]);
    assert!(matches!(
        store.list_execution_logs(sb, b.id, Page::first(10)).await,
        Err(DbError::NotFound(_))
    ));
});

store_test!(tenant_sender_addresses, |store| async move {
    let (_a, sa) = tenant(&store, "a.example.com").await;
    let (_b, sb) = tenant(&store, "b.example.com").await;
    let e = store
        .add_tenant_email(sa, "News@A.example.com", Some("News\r\nDesk"))
        .await
        .unwrap();
    assert_eq!(
        (e.email.as_str(), e.name.as_deref()),
        ("News@a.example.com", Some("News Desk"))
    );
    assert!(matches!(
        store.add_tenant_email(sa, "News@a.example.com", None).await,
        Err(DbError::Conflict(_))
    ));
    assert!(store.list_tenant_emails(sb).await.unwrap().is_empty());
    assert!(matches!(
        store.set_tenant_email_active(sb, e.id, false).await,
        Err(DbError::NotFound(_))
    ));
    store
        .set_tenant_email_active(sa, e.id, false)
        .await
        .unwrap();
    assert!(!store.list_tenant_emails(sa).await.unwrap()[0].is_active);
});

store_test!(migrate_is_idempotent, |store| async move {
    let again = store.migrate().await.unwrap();
    assert!(again.applied.is_empty());
    assert_eq!(again.current, recalliq::db::LATEST_VERSION);
    for table in [
        "tenants_tenant",
        "core_user",
        "emails_emailtemplate",
        "tenants_group",
        "tenants_groupemail",
        "batches_batch",
        "batches_batchgroup",
        "logs_emaillog",
        "logs_batchexecutionlog",
        "tenants_tenantemail",
        "recalliq_schema_migrations",
        "recalliq_suppression",
    ] {
        assert!(store.table_exists(table).await.unwrap(), "{table} missing");
    }
});

// The counts the TUI's virtual tables size themselves with must agree with the pages they
// fetch, for every search (case-insensitive, LIKE wildcards taken literally), on both
// backends, and never count another tenant's rows.
store_test!(search_counts_agree_with_pages, |store| async move {
    let (_, sa) = tenant(&store, "counts-a.example.com").await;
    let (_, sb) = tenant(&store, "counts-b.example.com").await;
    for scope in [sa, sb] {
        for name in ["Customers", "customers_eu", "Partners 100%", "Staff"] {
            let g = store
                .create_group(scope, name, Some("Main LIST"))
                .await
                .unwrap();
            for email in ["ann@x.test", "Bob_1@x.test", "carl@y.test"] {
                store
                    .add_contact(
                        scope,
                        g.id,
                        &NewContact {
                            email: email.into(),
                            name: Some(format!("{name} member")),
                            variables: None,
                        },
                    )
                    .await
                    .unwrap();
            }
        }
        for (name, subject) in [("Welcome", "Hello 50% off"), ("Digest", "WEEKLY news")] {
            store
                .create_template(
                    scope,
                    &NewTemplate {
                        name: name.into(),
                        subject: subject.into(),
                        body_html: Some("<p>hi</p>".into()),
                        body_text: None,
                        variables: None,
                    },
                )
                .await
                .unwrap();
        }
        for email in ["gone@x.test", "left_1@y.test"] {
            store
                .suppress(scope, email, "unsubscribed", None, None)
                .await
                .unwrap();
        }
    }
    let searches = [
        None,
        Some("CUST"),
        Some("_"),
        Some("%"),
        Some("list"),
        Some("zzz"),
    ];
    for search in searches {
        let groups = store
            .list_groups(sa, Page::first(100), search)
            .await
            .unwrap();
        let n = store.count_groups_matching(sa, search).await.unwrap();
        assert_eq!(n, groups.len() as i64, "groups matching {search:?}");
        let templates = store
            .list_templates(sa, Page::first(100), search)
            .await
            .unwrap();
        let n = store.count_templates_matching(sa, search).await.unwrap();
        assert_eq!(n, templates.len() as i64, "templates matching {search:?}");
        let supp = store
            .list_suppressions(sa, Page::first(100), search)
            .await
            .unwrap();
        let n = store.count_suppressions_matching(sa, search).await.unwrap();
        assert_eq!(n, supp.len() as i64, "suppressions matching {search:?}");
        let g = &store.list_groups(sa, Page::first(1), None).await.unwrap()[0];
        let contacts = store
            .list_contacts(sa, g.id, Page::first(100), search)
            .await
            .unwrap();
        let n = store.count_contacts(sa, g.id, search).await.unwrap();
        assert_eq!(n, contacts.len() as i64, "contacts matching {search:?}");
    }
    // The expected figures, so an always-empty result cannot pass.
    assert_eq!(store.count_groups_matching(sa, None).await.unwrap(), 4);
    assert_eq!(
        store.count_groups_matching(sa, Some("cust")).await.unwrap(),
        2
    );
    assert_eq!(store.count_groups_matching(sa, Some("_")).await.unwrap(), 1);
    assert_eq!(store.count_groups_matching(sa, Some("%")).await.unwrap(), 1);
    assert_eq!(
        store.count_groups_matching(sa, Some("list")).await.unwrap(),
        4
    );
    assert_eq!(
        store.count_templates_matching(sa, Some("%")).await.unwrap(),
        1
    );
    assert_eq!(
        store
            .count_templates_matching(sa, Some("weekly"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_suppressions_matching(sa, Some("_"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_suppressions_matching(sa, Some("UNSUB"))
            .await
            .unwrap(),
        2
    );
    let g = &store.list_groups(sa, Page::first(1), None).await.unwrap()[0];
    assert_eq!(store.count_contacts(sa, g.id, Some("_")).await.unwrap(), 1);
    assert_eq!(
        store
            .count_contacts(sa, g.id, Some("MEMBER"))
            .await
            .unwrap(),
        3
    );
    // Another tenant's group id counts nothing.
    assert_eq!(store.count_contacts(sb, g.id, None).await.unwrap(), 0);
});
