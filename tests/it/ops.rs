//! Issue #8: reports (`db::stats`) checked against the spec's own SQL, usage maintenance,
//! the audit log (logins, CLI and TUI writes, scoping), `doctor`, completions and the man
//! page. Store tests run on SQLite and Postgres; CLI tests run the real binary on both.

use recalliq::db::{Actor, AuditFilter, Page, Store, UserScope, origin_from};
use sqlx::Row;

use crate::store_test;
use crate::support::cli::{Env, on_both_backends};
use crate::support::smtp::{SinkConfig, SmtpSink};

async fn exec(store: &Store, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    if let Some(p) = store.sqlite_pool() {
        sqlx::raw_sql(sql).execute(p).await.expect("seed sqlite");
    } else if let Some(p) = store.pg_pool() {
        sqlx::raw_sql(sql).execute(p).await.expect("seed postgres");
    }
}

/// Three tenants (the third inactive), users, groups with active and inactive contacts,
/// templates, batches in several states and email logs on two days.
const SEED: &str = r#"
INSERT INTO tenants_tenant (name, domain, is_active, plan, status, monthly_email_limit, emails_sent_this_month, created_at)
VALUES ('Acme', 'acme.test', TRUE, 'basic', 'active', 1000, 7, '2025-01-10 08:00:00'),
       ('Globex', 'globex.test', TRUE, 'basic', 'active', 500, 3, '2025-02-01 08:00:00'),
       ('Dormant', 'dormant.test', FALSE, 'basic', 'active', 100, 0, '2025-03-01 08:00:00');
INSERT INTO core_user (username, email, password, role, tenant_id, is_active)
VALUES ('a1', 'a1@acme.test', 'x', 'tenant_admin', 1, TRUE),
       ('a2', 'a2@acme.test', 'x', 'staff', 1, TRUE),
       ('a3', 'a3@acme.test', 'x', 'user', 1, FALSE),
       ('g1', 'g1@globex.test', 'x', 'tenant_admin', 2, TRUE),
       ('root', 'root@example.test', 'x', 'super_admin', NULL, TRUE);
INSERT INTO tenants_group (tenant_id, name, description, is_active)
VALUES (1, 'Customers', 'all of them', TRUE),
       (1, 'VIP', NULL, TRUE),
       (1, 'Old', 'retired', FALSE),
       (1, 'Empty', NULL, TRUE),
       (2, 'Leads', NULL, TRUE);
INSERT INTO tenants_groupemail (group_id, email, name, is_active)
VALUES (1, 'c1@x.test', 'C1', TRUE), (1, 'c2@x.test', NULL, TRUE), (1, 'c3@x.test', NULL, FALSE),
       (2, 'v1@x.test', 'V1', TRUE),
       (3, 'o1@x.test', NULL, TRUE),
       (5, 'l1@y.test', NULL, TRUE), (5, 'l2@y.test', NULL, FALSE);
INSERT INTO emails_emailtemplate (tenant_id, name, subject, body_html, is_active)
VALUES (1, 'Welcome', 'Hi', '<p>Hi</p>', TRUE), (1, 'News', 'News', '<p>N</p>', TRUE),
       (2, 'Hello', 'Hello', '<p>H</p>', TRUE);
INSERT INTO batches_batch (tenant_id, template_id, name, status, sent_count, failed_count, scheduled_at, started_at, completed_at, created_at)
VALUES (1, 1, 'Spring', 'completed', 8, 2, NULL, '2026-11-20 10:00:00', '2026-11-20 10:12:30', '2026-11-20 09:00:00'),
       (1, 2, 'Summer', 'running', 3, 0, '2026-11-21 07:00:00', '2026-11-21 08:00:00', NULL, '2026-11-21 06:00:00'),
       (1, 1, 'Autumn', 'draft', 0, 0, NULL, NULL, NULL, '2026-11-22 06:00:00'),
       (2, 3, 'Launch', 'completed', 5, 5, NULL, '2026-11-20 11:00:00', '2026-11-20 13:00:00', '2026-11-20 10:30:00');
INSERT INTO logs_emaillog (batch_id, recipient_email, status, sent_at, created_at)
VALUES (1, 'c1@x.test', 'sent', '2026-11-20 10:01:00', '2026-11-20 10:00:00'),
       (1, 'c2@x.test', 'sent', '2026-11-20 10:02:00', '2026-11-20 10:00:00'),
       (1, 'v1@x.test', 'sent', '2026-11-20 10:03:00', '2026-11-20 10:00:00'),
       (1, 'bad@x.test', 'failed', '2026-11-20 10:04:00', '2026-11-20 10:00:00'),
       (1, 'no@x.test', 'rejected', '2026-11-20 10:05:00', '2026-11-20 10:00:00'),
       (2, 'c1@x.test', 'sent', '2026-11-21 08:01:00', '2026-11-21 08:00:00'),
       (2, 'c2@x.test', 'sent', '2026-11-21 23:59:00', '2026-11-21 08:00:00'),
       (2, 'v1@x.test', 'pending', NULL, '2026-11-21 08:00:00'),
       (4, 'l1@y.test', 'sent', '2026-11-20 11:01:00', '2026-11-20 11:00:00'),
       (4, 'l2@y.test', 'failed', '2026-11-20 11:02:00', '2026-11-20 11:00:00');
"#;

// The spec's "Common Queries" (spec/database-schema.md), verbatim but for `:name`
// parameters written `$n`, and ROUND's first argument cast to NUMERIC: as written,
// `ROUND(double precision, 2)` does not exist on Postgres ("function round(double
// precision, integer) does not exist"), so the spec's text fails there.
const SPEC_TENANT_STATS: &str = "SELECT 
    t.name,
    t.monthly_email_limit,
    t.emails_sent_this_month,
    COUNT(DISTINCT u.id) as user_count,
    COUNT(DISTINCT g.id) as group_count,
    COUNT(DISTINCT et.id) as template_count,
    COUNT(DISTINCT b.id) as batch_count
FROM tenants_tenant t
LEFT JOIN core_user u ON t.id = u.tenant_id
LEFT JOIN tenants_group g ON t.id = g.tenant_id
LEFT JOIN emails_emailtemplate et ON t.id = et.tenant_id  
LEFT JOIN batches_batch b ON t.id = b.tenant_id
WHERE t.is_active = TRUE
GROUP BY t.id, t.name, t.monthly_email_limit, t.emails_sent_this_month";

const SPEC_BATCH_PERFORMANCE: &str = "SELECT 
    b.name,
    b.status,
    b.sent_count,
    b.failed_count,
    ROUND(
        ((b.sent_count::FLOAT / NULLIF(b.sent_count + b.failed_count, 0)) * 100)::NUMERIC, 
        2
    ) as success_rate,
    b.scheduled_at,
    b.completed_at,
    EXTRACT(EPOCH FROM (b.completed_at - b.started_at))/60 as duration_minutes
FROM batches_batch b
WHERE b.tenant_id = $1
ORDER BY b.created_at DESC";

const SPEC_ACTIVITY: &str = "SELECT 
    DATE(el.sent_at) as date,
    COUNT(*) as total_emails,
    COUNT(CASE WHEN el.status = 'sent' THEN 1 END) as sent_emails,
    COUNT(CASE WHEN el.status = 'failed' THEN 1 END) as failed_emails,
    ROUND(
        ((COUNT(CASE WHEN el.status = 'sent' THEN 1 END)::FLOAT / COUNT(*)) * 100)::NUMERIC,
        2
    ) as success_rate
FROM logs_emaillog el
JOIN batches_batch b ON el.batch_id = b.id
WHERE b.tenant_id = $1
    AND el.sent_at >= $2
    AND el.sent_at <= $3
GROUP BY DATE(el.sent_at)
ORDER BY date DESC";

const SPEC_GROUP_COUNTS: &str = "SELECT 
    g.name,
    g.description,
    COUNT(ge.id) as email_count,
    COUNT(CASE WHEN ge.is_active = TRUE THEN 1 END) as active_emails
FROM tenants_group g
LEFT JOIN tenants_groupemail ge ON g.id = ge.group_id
WHERE g.tenant_id = $1 AND g.is_active = TRUE
GROUP BY g.id, g.name, g.description
ORDER BY email_count DESC";

fn tenant(id: i32) -> UserScope {
    UserScope::Tenant(Actor::system().tenant_scope(id).unwrap())
}

fn all() -> UserScope {
    UserScope::All(Actor::system().all_tenants().unwrap())
}

fn ts(s: &str) -> chrono::NaiveDateTime {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

store_test!(
    reports_give_the_figures_of_the_spec_queries,
    |store| async move {
        exec(&store, SEED).await;

        // Tenant statistics: inactive tenants left out; counts of every user/group/template/batch.
        let stats = store.tenant_stats(all()).await.unwrap();
        let got: Vec<(String, i32, i32, i64, i64, i64, i64)> = stats
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    s.monthly_email_limit,
                    s.emails_sent_this_month,
                    s.user_count,
                    s.group_count,
                    s.template_count,
                    s.batch_count,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("Acme".to_string(), 1000, 7, 3, 4, 2, 3),
                ("Globex".to_string(), 500, 3, 1, 1, 1, 1),
            ]
        );
        let one = store.tenant_stats(tenant(2)).await.unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].domain, "globex.test");

        // The spec's tenant statistics query runs verbatim on both backends.
        let spec = spec_rows(&store, SPEC_TENANT_STATS).await;
        let mut spec_t: Vec<(String, i32, i32, i64, i64, i64, i64)> = spec
            .iter()
            .map(|r| (r.0.clone(), r.1 as i32, r.2 as i32, r.3, r.4, r.5, r.6))
            .collect();
        spec_t.sort();
        assert_eq!(
            got, spec_t,
            "tenant statistics differ from the spec's query"
        );

        // Batch performance, newest first.
        let perf = store.batch_performance(tenant(1), 100).await.unwrap();
        let names: Vec<&str> = perf.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["Autumn", "Summer", "Spring"]);
        assert_eq!(perf[2].success_rate, Some(80.0));
        assert_eq!(perf[2].duration_minutes, Some(12.5));
        assert_eq!(perf[1].success_rate, Some(100.0));
        assert_eq!(perf[1].duration_minutes, None);
        assert_eq!(perf[0].success_rate, None);
        assert_eq!(
            store.batch_performance(tenant(2), 100).await.unwrap()[0].success_rate,
            Some(50.0)
        );

        // Activity by date for Acme in November 2026.
        let from = ts("2026-11-01 00:00:00");
        let to = ts("2026-11-30 23:59:59");
        let act = store.email_activity(tenant(1), from, to).await.unwrap();
        let got_act: Vec<(String, i64, i64, i64, f64)> = act
            .iter()
            .map(|d| {
                (
                    d.date.to_string(),
                    d.total_emails,
                    d.sent_emails,
                    d.failed_emails,
                    d.success_rate,
                )
            })
            .collect();
        assert_eq!(
            got_act,
            vec![
                ("2026-11-21".to_string(), 2, 2, 0, 100.0),
                ("2026-11-20".to_string(), 5, 3, 1, 60.0),
            ]
        );
        // The window is inclusive at both ends and sees only the tenant's own logs.
        let narrow = store
            .email_activity(
                tenant(1),
                ts("2026-11-21 08:01:00"),
                ts("2026-11-21 08:01:00"),
            )
            .await
            .unwrap();
        assert_eq!(narrow.len(), 1);
        assert_eq!(narrow[0].total_emails, 1);
        assert!(store.email_activity(tenant(1), to, from).await.is_err());

        // Group email counts: active groups, largest first.
        let groups = store.group_email_counts(tenant(1)).await.unwrap();
        let got_g: Vec<(String, Option<String>, i64, i64)> = groups
            .iter()
            .map(|g| {
                (
                    g.name.clone(),
                    g.description.clone(),
                    g.email_count,
                    g.active_emails,
                )
            })
            .collect();
        assert_eq!(
            got_g,
            vec![
                (
                    "Customers".to_string(),
                    Some("all of them".to_string()),
                    3,
                    2
                ),
                ("VIP".to_string(), None, 1, 1),
                ("Empty".to_string(), None, 0, 0),
            ]
        );

        // On Postgres, the spec's other three queries give the same figures.
        if let Some(pg) = store.pg_pool() {
            let rows = spec_pg(
                pg,
                SPEC_BATCH_PERFORMANCE,
                &["success_rate", "duration_minutes"],
                |q| q.bind(1i32),
            )
            .await;
            assert_eq!(rows.len(), perf.len());
            for (r, b) in rows.iter().zip(&perf) {
                assert_eq!(r.get::<String, _>("name"), b.name);
                assert_eq!(r.get::<String, _>("status"), b.status);
                assert_eq!(r.get::<i32, _>("sent_count"), b.sent_count);
                assert_eq!(r.get::<i32, _>("failed_count"), b.failed_count);
                let rate: Option<f64> = numeric(r, "success_rate");
                assert_eq!(rate, b.success_rate, "success rate of {}", b.name);
                let minutes: Option<f64> = numeric(r, "duration_minutes");
                match (minutes, b.duration_minutes) {
                    (Some(x), Some(y)) => assert!((x - y).abs() < 1e-9, "{x} vs {y}"),
                    (x, y) => assert_eq!(x, y),
                }
                assert_eq!(
                    r.get::<Option<chrono::NaiveDateTime>, _>("completed_at"),
                    b.completed_at
                );
            }
            let rows = spec_pg(pg, SPEC_ACTIVITY, &["success_rate"], |q| {
                q.bind(1i32).bind(from).bind(to)
            })
            .await;
            let spec_act: Vec<(String, i64, i64, i64, f64)> = rows
                .iter()
                .map(|r| {
                    (
                        r.get::<chrono::NaiveDate, _>("date").to_string(),
                        r.get("total_emails"),
                        r.get("sent_emails"),
                        r.get("failed_emails"),
                        numeric(r, "success_rate").unwrap(),
                    )
                })
                .collect();
            assert_eq!(got_act, spec_act, "activity differs from the spec's query");
            let rows = spec_pg(pg, SPEC_GROUP_COUNTS, &[], |q| q.bind(1i32)).await;
            let spec_g: Vec<(String, Option<String>, i64, i64)> = rows
                .iter()
                .map(|r| {
                    (
                        r.get("name"),
                        r.get("description"),
                        r.get("email_count"),
                        r.get("active_emails"),
                    )
                })
                .collect();
            assert_eq!(got_g, spec_g, "group counts differ from the spec's query");
        }
    }
);

/// A NUMERIC column (or NULL) as f64: the wrapped spec query adds `<col>_text`.
fn numeric(row: &sqlx::postgres::PgRow, col: &str) -> Option<f64> {
    row.get::<Option<String>, _>(format!("{col}_text").as_str())
        .map(|t| t.parse().unwrap())
}

/// Runs a spec query unchanged as a subquery, adding the text form of NUMERIC columns
/// (sqlx decodes NUMERIC only with a decimal crate, which this project does not need).
async fn spec_pg(
    pg: &sqlx::PgPool,
    spec: &str,
    numeric_cols: &[&str],
    binds: impl FnOnce(
        sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> Vec<sqlx::postgres::PgRow> {
    let extra: String = numeric_cols
        .iter()
        .map(|c| format!(", q.{c}::TEXT AS {c}_text"))
        .collect();
    let sql = format!("SELECT q.*{extra} FROM ({spec}) q");
    binds(sqlx::query(sqlx::AssertSqlSafe(sql)))
        .fetch_all(pg)
        .await
        .unwrap()
}

/// The spec's tenant statistics rows as (name, limit, sent, users, groups, templates, batches).
async fn spec_rows(
    store: &Store,
    sql: &'static str,
) -> Vec<(String, i64, i64, i64, i64, i64, i64)> {
    if let Some(p) = store.sqlite_pool() {
        sqlx::query(sql)
            .fetch_all(p)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                )
            })
            .collect()
    } else {
        let p = store.pg_pool().unwrap();
        sqlx::query(sql)
            .fetch_all(p)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    i64::from(r.get::<i32, _>(1)),
                    i64::from(r.get::<i32, _>(2)),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                )
            })
            .collect()
    }
}

async fn usage(store: &Store) -> Vec<(String, i32)> {
    let stats = store.tenant_stats(all()).await.unwrap();
    stats
        .iter()
        .map(|s| (s.domain.clone(), s.emails_sent_this_month))
        .collect()
}

store_test!(usage_counters_reset_and_recount, |store| async move {
    exec(&store, SEED).await;
    let all_t = Actor::system().all_tenants().unwrap();
    // Globex was created this month: the spec's reset leaves it alone.
    let now = recalliq::db::now();
    if let Some(p) = store.sqlite_pool() {
        sqlx::query("UPDATE tenants_tenant SET created_at = $1 WHERE id = 2")
            .bind(now)
            .execute(p)
            .await
            .unwrap();
        sqlx::query("UPDATE batches_batch SET completed_at = $1 WHERE id IN (1, 4)")
            .bind(now)
            .execute(p)
            .await
            .unwrap();
    } else if let Some(p) = store.pg_pool() {
        sqlx::query("UPDATE tenants_tenant SET created_at = $1 WHERE id = 2")
            .bind(now)
            .execute(p)
            .await
            .unwrap();
        sqlx::query("UPDATE batches_batch SET completed_at = $1 WHERE id IN (1, 4)")
            .bind(now)
            .execute(p)
            .await
            .unwrap();
    }
    let reset = store.reset_usage(&all_t).await.unwrap();
    assert_eq!(reset, 2, "Acme and Dormant were created in earlier months");
    assert_eq!(
        usage(&store).await,
        vec![("acme.test".to_string(), 0), ("globex.test".to_string(), 3)]
    );

    // Recount: the sum of sent_count of the batches completed this month.
    let changed = store.recount_usage(&all_t).await.unwrap();
    let summary: Vec<(String, i32, i32)> = changed
        .iter()
        .map(|c| (c.domain.clone(), c.old_value, c.new_value))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("acme.test".to_string(), 0, 8),
            ("globex.test".to_string(), 3, 5)
        ]
    );
    assert!(
        store.recount_usage(&all_t).await.unwrap().is_empty(),
        "idempotent"
    );

    // The spec's recompute, verbatim on Postgres, finds nothing left to change.
    if let Some(p) = store.pg_pool() {
        sqlx::query(
            "UPDATE tenants_tenant t
SET emails_sent_this_month = (
    SELECT COALESCE(SUM(b.sent_count), 0)
    FROM batches_batch b
    WHERE b.tenant_id = t.id
    AND date_trunc('month', b.completed_at) = date_trunc('month', NOW())
)",
        )
        .execute(p)
        .await
        .unwrap();
        assert_eq!(
            usage(&store).await,
            vec![("acme.test".to_string(), 8), ("globex.test".to_string(), 5)]
        );
    }
});

store_test!(audit_log_records_and_scopes, |store| async move {
    let (acme, acme_scope) = crate::support::tenant(&store, "acme.test").await;
    let (globex, _) = crate::support::tenant(&store, "globex.test").await;
    let root = Actor::system();
    store
        .audit(&root, Some(acme.id), "group create", "name=Customers")
        .await;
    store
        .audit(&root, Some(globex.id), "group create", "name=Leads")
        .await;
    store
        .audit(&root, None, "maintenance reset-usage", "")
        .await;
    store
        .audit_login(
            "mallory\u{1b}[2J",
            None,
            None,
            Err("wrong username or password"),
        )
        .await;

    let all_scope = UserScope::All(root.all_tenants().unwrap());
    let every = store
        .list_audit(all_scope, &AuditFilter::default(), Page::first(100))
        .await
        .unwrap();
    assert_eq!(every.len(), 4);
    assert_eq!(every[0].action, "group create");
    assert_eq!(every[0].outcome, "ok");
    assert!(every[0].origin.starts_with("cli "), "{}", every[0].origin);
    assert_eq!(every[3].action, "login");
    assert_eq!(every[3].outcome, "failed");
    assert_eq!(
        every[3].actor, "mallory[2J",
        "control characters are dropped"
    );

    // A tenant's scope sees its own rows only, however it filters.
    let mine = UserScope::Tenant(acme_scope);
    let rows = store
        .list_audit(mine, &AuditFilter::default(), Page::first(100))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].target, "name=Customers");
    let sneaky = AuditFilter {
        search: Some("Leads".into()),
        tenant_id: Some(globex.id),
    };
    assert!(
        store
            .list_audit(mine, &sneaky, Page::first(100))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .count_audit(mine, &AuditFilter::default())
            .await
            .unwrap(),
        1
    );

    // Search and the newest page.
    let search = AuditFilter {
        search: Some("RESET".into()),
        tenant_id: None,
    };
    assert_eq!(store.count_audit(all_scope, &search).await.unwrap(), 1);
    let last = store
        .list_audit(all_scope, &AuditFilter::default(), Page::last(2))
        .await
        .unwrap();
    assert_eq!(
        last.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![every[2].id, every[3].id]
    );
});

store_test!(logins_are_audited_with_their_outcome, |store| async move {
    let (acme, _) = crate::support::tenant(&store, "acme.test").await;
    let all = Actor::system().all_tenants().unwrap();
    store
        .create_user(
            UserScope::All(all),
            &recalliq::db::NewUser {
                username: "ann".into(),
                email: "ann@acme.test".into(),
                password_hash: recalliq::auth::make_password_with("s3cret!", "salt", 1000).unwrap(),
                role: recalliq::domain::Role::TenantAdmin,
                tenant_id: Some(acme.id),
                first_name: None,
                last_name: None,
            },
        )
        .await
        .unwrap();
    recalliq::auth::authenticate(&store, "ann", "s3cret!")
        .await
        .unwrap();
    assert!(
        recalliq::auth::authenticate(&store, "ann", "nope")
            .await
            .is_err()
    );
    assert!(
        recalliq::auth::authenticate(&store, "ghost", "nope")
            .await
            .is_err()
    );
    let rows = store
        .list_audit(
            UserScope::All(all),
            &AuditFilter::default(),
            Page::first(10),
        )
        .await
        .unwrap();
    let seen: Vec<(&str, &str, &str, Option<i32>)> = rows
        .iter()
        .map(|r| {
            (
                r.action.as_str(),
                r.actor.as_str(),
                r.outcome.as_str(),
                r.tenant_id,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("login", "ann", "ok", Some(acme.id)),
            ("login", "ann", "failed", None),
            ("login", "ghost", "failed", None),
        ]
    );
    assert_eq!(rows[1].target, "wrong username or password");
    assert!(
        !rows.iter().any(|r| r.target.contains("nope")),
        "passwords never logged"
    );
});

#[test]
fn origin_names_ssh_clients() {
    assert_eq!(
        origin_from(Some("198.51.100.7 40022 10.0.0.2 22"), Some("ops")),
        "ops ssh 198.51.100.7:40022"
    );
}

#[test]
fn cli_reports_maintenance_and_audit() {
    on_both_backends(|env: &Env| {
        env.create_tenant("Acme", "acme.test").ok();
        env.run(
            &[
                "group",
                "create",
                "--tenant",
                "acme.test",
                "--name",
                "Customers",
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
                "Customers",
                "--email",
                "c1@x.test",
            ],
            None,
        )
        .ok();

        // Reports: table, JSON and CSV.
        let t = env.run(&["stats", "tenants"], None);
        t.ok();
        assert!(t.stdout.starts_with("DOMAIN"), "{}", t.stdout);
        assert!(t.stdout.contains("acme.test"));
        let j = env.json(&["stats", "tenants", "--json"]);
        assert_eq!(j[0]["domain"], "acme.test");
        assert_eq!(j[0]["group_count"], 1);
        let c = env.run(&["stats", "groups", "--tenant", "acme.test", "--csv"], None);
        c.ok();
        assert_eq!(
            c.stdout.lines().collect::<Vec<_>>(),
            vec!["ID,NAME,DESCRIPTION,EMAILS,ACTIVE", "1,Customers,,1,1"]
        );
        let a = env.json(&[
            "stats",
            "activity",
            "--tenant",
            "acme.test",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-31",
            "--json",
        ]);
        assert_eq!(a, serde_json::json!([]));
        env.run(
            &[
                "stats",
                "activity",
                "--tenant",
                "acme.test",
                "--from",
                "yesterday",
            ],
            None,
        )
        .fails_with(2, "--from 'yesterday': expected a date YYYY-MM-DD");
        env.run(&["stats", "batches", "--tenant", "nope.test"], None)
            .fails_with(1, "not found");
        env.json(&["stats", "batches", "--tenant", "acme.test", "--json"]);

        // Maintenance: reset asks unless --yes (and refuses without a terminal).
        env.run(&["maintenance", "reset-usage"], None)
            .fails_with(2, "pass --yes");
        let r = env.run(&["maintenance", "reset-usage", "--yes"], None);
        r.ok();
        assert!(
            r.stdout.contains("monthly usage reset for 0 tenant(s)"),
            "{}",
            r.stdout
        );
        let r = env.json(&["maintenance", "recount-usage", "--json"]);
        assert_eq!(r, serde_json::json!([]));

        // A refused write is audited too, with its reason; the SSH client is the origin.
        env.run_env(
            &[
                "tenant",
                "create",
                "--name",
                "Again",
                "--domain",
                "acme.test",
            ],
            None,
            &[
                ("SSH_CONNECTION", "203.0.113.9 51234 10.0.0.1 22"),
                ("USER", "ops"),
            ],
        )
        .fails_with(1, "already exists");
        let audit = env.json(&["audit", "list", "--json"]);
        let entries = audit.as_array().unwrap();
        // Newest first; on Postgres the harness's `migrate` (a schema write) comes first.
        let actions: Vec<&str> = entries
            .iter()
            .rev()
            .map(|e| e["action"].as_str().unwrap())
            .filter(|a| *a != "migrate")
            .collect();
        assert_eq!(
            actions,
            vec![
                "tenant create",
                "group create",
                "contact add",
                "maintenance reset-usage",
                "maintenance recount-usage",
                "tenant create"
            ],
            "reads (stats, audit) are not audited: {audit:#}"
        );
        let refused = &entries[0];
        assert_eq!(refused["outcome"], "failed");
        assert_eq!(refused["origin"], "cli ops ssh 203.0.113.9:51234");
        assert!(
            refused["target"]
                .as_str()
                .unwrap()
                .contains("already exists")
        );
        let group = entries
            .iter()
            .find(|e| e["action"] == "group create")
            .unwrap();
        assert_eq!(group["tenant_id"], 1);
        assert_eq!(group["target"], "tenant=acme.test name=Customers");
        let mine = env.json(&["audit", "list", "--tenant", "acme.test", "--json"]);
        assert_eq!(mine.as_array().unwrap().len(), 4);
        let table = env.run(&["audit", "list", "--search", "contact"], None);
        table.ok();
        assert_eq!(table.stdout.lines().count(), 2, "{}", table.stdout);
    });
}

#[test]
fn doctor_checks_database_key_transports_and_clock() {
    let sink = SmtpSink::start(SinkConfig::default());
    on_both_backends(|env: &Env| {
        env.create_tenant("Acme", "acme.test").ok();
        env.create_tenant("Globex", "globex.test").ok();
        env.create_tenant("Dead", "dead.test").ok();
        env.run(&["smtp", "set", "--tenant", "acme.test", "--outbox"], None)
            .ok();
        let port = sink.port().to_string();
        env.smtp_local("globex.test", &port, &[]).ok();
        // A port nobody listens on: bind, note, close.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_port = dead.local_addr().unwrap().port().to_string();
        drop(dead);
        env.smtp_local("dead.test", &dead_port, &[]).ok();
        let r = env.run(&["doctor", "--timeout", "2"], None);
        assert_eq!(
            r.code, 1,
            "a dead SMTP server fails the check:\n{}",
            r.stdout
        );
        let line = |name: &str| {
            r.stdout
                .lines()
                .find(|l| l.contains(name))
                .unwrap_or_else(|| panic!("no {name} line in\n{}", r.stdout))
                .to_string()
        };
        assert!(line("database").starts_with("ok"));
        assert!(line("schema").starts_with("ok"), "{}", line("schema"));
        assert!(line("clock").starts_with("ok"));
        assert!(line("secret key").starts_with("warn"), "no key file yet");
        assert!(line("transport acme.test").contains("writable"));
        let g = line("transport globex.test");
        assert!(g.starts_with("ok") && g.contains("greeting: 220"), "{g}");
        assert!(line("transport dead.test").starts_with("fail"));

        // A key file readable by others fails; JSON says the same.
        std::fs::create_dir_all(env.config_dir()).unwrap();
        let key = env.config_dir().join("secret.key");
        std::fs::write(&key, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let j = env.run(&["doctor", "--json", "--timeout", "2"], None);
        let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
        let key_check = v
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "secret key")
            .unwrap();
        assert_eq!(key_check["status"], "fail");
        assert!(key_check["detail"].as_str().unwrap().contains("chmod 600"));
        std::fs::remove_file(&key).unwrap();
    });
}

#[test]
fn doctor_reports_an_unreachable_database() {
    let env = Env::with_url("postgres://nobody@127.0.0.1:1/none");
    let r = env.run(&["doctor"], None);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .lines()
            .next()
            .unwrap()
            .starts_with("fail  database"),
        "{}",
        r.stdout
    );
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    let env = Env::new();
    for (shell, marker) in [
        ("bash", "_recalliq()"),
        ("zsh", "#compdef recalliq"),
        ("fish", "complete -c recalliq"),
    ] {
        let r = env.run(&["completions", shell], None);
        r.ok();
        assert!(
            r.stdout.contains(marker),
            "{shell}: {}",
            &r.stdout[..200.min(r.stdout.len())]
        );
        assert!(
            r.stdout.contains("maintenance"),
            "{shell} completes subcommands"
        );
    }
    let man = env.run(&["man"], None);
    man.ok();
    assert!(man.stdout.starts_with(".ie") || man.stdout.contains(".TH recalliq 1"));
    assert!(man.stdout.contains(".TH recalliq 1"));
    assert!(man.stdout.contains("doctor"));
    env.run(&["completions", "tcsh"], None)
        .fails_with(2, "invalid value");
}

#[test]
fn systemd_unit_runs_the_worker_and_verifies() {
    let unit = include_str!("../../assets/systemd/recalliq-worker.service");
    assert!(unit.contains("\nExecStart=/usr/local/bin/recalliq worker\n"));
    assert!(unit.contains("KillSignal=SIGTERM"));
    // systemd's own checker, when this machine has it, on a copy pointing at the built binary.
    let Ok(out) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("NOTICE: systemd-analyze not installed; unit syntax not verified");
        return;
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let copy = unit
        .replace("/usr/local/bin/recalliq", env!("CARGO_BIN_EXE_recalliq"))
        .replace("Documentation=man:recalliq(1)\n", "");
    let path = dir.path().join("recalliq-worker.service");
    std::fs::write(&path, copy).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("recalliq-worker.service"))
        // The service user does not exist on a build machine.
        .filter(|l| !l.contains("User") && !l.contains("Group"))
        .collect();
    assert!(problems.is_empty(), "systemd-analyze: {text}");
}
