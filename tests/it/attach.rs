//! Attach mode: a Postgres database made by the web app (the spec's DDL run verbatim, rows in
//! it, no migrations table) is migrated twice; no seed column or row changes, and every row
//! reads back through the store.

use recalliq::db::{Actor, Page, Store, UserScope};
use sqlx::{Connection, Row};

use crate::support::PgDb;

const WEB_APP_DDL: &str = include_str!("../fixtures/web-app-schema.sql");

const SEED_ROWS: &str = r#"
INSERT INTO tenants_tenant (name, domain, plan, status, contact_person, monthly_email_limit, emails_sent_this_month, settings)
VALUES ('Acme', 'acme.test', 'professional', 'active', 'Ann', 5000, 42, '{"tz": "UTC"}'),
       ('Bolt', 'bolt.test', 'basic', 'suspended', NULL, 1000, 0, NULL);
INSERT INTO tenants_tenant (name, domain) VALUES ('Nulls', 'nulls.test');
UPDATE tenants_tenant SET is_active = NULL, plan = NULL, monthly_email_limit = NULL WHERE domain = 'nulls.test';
INSERT INTO core_user (username, email, password, first_name, role, tenant_id, is_superuser, is_staff)
VALUES ('root', 'root@x.test', 'pbkdf2_sha256$870000$abc$def=', 'Root', 'super_admin', NULL, TRUE, TRUE),
       ('ann', 'ann@acme.test', 'pbkdf2_sha256$870000$abc$def=', 'Ann', 'tenant_admin', 1, FALSE, FALSE);
INSERT INTO emails_emailtemplate (tenant_id, name, subject, body_html, variables)
VALUES (1, 'Welcome', 'Hi {{ name }}', '<p>Hi {{ name }}</p>', '["name"]');
INSERT INTO tenants_group (tenant_id, name, description) VALUES (1, 'Customers', 'All');
INSERT INTO tenants_groupemail (group_id, email, name, variables)
VALUES (1, 'a@x.test', 'A', '{"city": "Oslo"}'), (1, 'b@x.test', NULL, NULL);
INSERT INTO batches_batch (tenant_id, template_id, name, status, sent_count, failed_count, variables)
VALUES (1, 1, 'Spring', 'completed', 1, 1, '{"promo": "S"}');
INSERT INTO batches_batchgroup (batch_id, group_id) VALUES (1, 1);
INSERT INTO logs_emaillog (batch_id, recipient_email, recipient_name, status, sent_at, error_message, smtp_response)
VALUES (1, 'a@x.test', 'A', 'sent', NOW(), NULL, '250 OK'),
       (1, 'b@x.test', NULL, 'rejected', NULL, 'rejected', '550 5.1.1 no such user');
INSERT INTO logs_batchexecutionlog (batch_id, action, message, details) VALUES (1, 'completed', 'done', '{"n": 2}');
"#;

const SEED_TABLES: &[&str] = &[
    "tenants_tenant",
    "core_user",
    "emails_emailtemplate",
    "tenants_group",
    "tenants_groupemail",
    "batches_batch",
    "batches_batchgroup",
    "logs_emaillog",
    "logs_batchexecutionlog",
];

/// Columns recalliq adds; everything else must be left exactly as the web app made it.
const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("logs_emaillog", "attempts"),
    ("logs_emaillog", "next_attempt_at"),
    ("logs_emaillog", "lease_owner"),
    ("logs_emaillog", "lease_expires_at"),
    ("logs_emaillog", "message_id"),
    ("logs_emaillog", "contact_id"),
    ("logs_emaillog", "updated_at"),
    ("batches_batch", "status_reason"),
    ("batches_batch", "created_by_id"),
];

/// Every seed table's columns (name, type, default, nullability) and every row as JSON text,
/// restricted to the seed's own columns.
async fn snapshot(conn: &mut sqlx::PgConnection) -> Vec<String> {
    let mut out = Vec::new();
    for table in SEED_TABLES {
        let cols: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text, column_default::text, is_nullable::text
             FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
        )
        .bind(*table)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        let seed_cols: Vec<String> = cols
            .iter()
            .filter(|c| !ADDED_COLUMNS.contains(&(*table, c.0.as_str())))
            .map(|c| format!("{table}.{}:{}:{:?}:{}", c.0, c.1, c.2, c.3))
            .collect();
        out.extend(seed_cols.iter().cloned());
        let names: Vec<&str> = seed_cols
            .iter()
            .map(|c| c.split([':', '.']).nth(1).unwrap())
            .collect();
        let sql = format!(
            "SELECT json_build_array({})::text FROM {table} ORDER BY id",
            names.join(", ")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        for r in rows {
            out.push(format!("{table}: {}", r.get::<String, _>(0)));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_attaches_to_a_web_app_database() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql(WEB_APP_DDL).execute(&mut conn).await.unwrap();
        sqlx::raw_sql(SEED_ROWS).execute(&mut conn).await.unwrap();
        let before = snapshot(&mut conn).await;
        assert_eq!(
            before.len(),
            85 + 14,
            "snapshot covers all 85 seed columns and 14 rows"
        );

        // Through the real binary, twice.
        let env = crate::support::cli::Env::with_url(&db.url);
        let first = env.run(&["migrate"], None);
        first.ok();
        assert!(
            first.stdout.contains("applied migration(s) 1, 2, 3"),
            "{}",
            first.stdout
        );
        let second = env.run(&["migrate"], None);
        second.ok();
        assert!(
            second.stdout.contains(&format!(
                "schema is current (version {})",
                recalliq::db::LATEST_VERSION
            )),
            "{}",
            second.stdout
        );

        let after = snapshot(&mut conn).await;
        assert_eq!(before, after, "no seed column or row changed");
        let sqlx_table: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(sqlx_table, None, "only recalliq_ tables are added");

        // Every row reads back through the store.
        let store = Store::connect(&db.url).await.unwrap();
        let all = Actor::system().all_tenants().unwrap();
        let tenants = store
            .list_tenants(&all, Page::first(10), None)
            .await
            .unwrap();
        assert_eq!(tenants.len(), 3);
        assert_eq!(tenants[0].settings.as_ref().unwrap().0["tz"], "UTC");
        let nulls = &tenants[2];
        assert!(
            nulls.is_active && nulls.plan == "basic" && nulls.monthly_email_limit == 1000,
            "NULLs read as the seed defaults"
        );
        let users = store
            .list_users(UserScope::All(all), Page::first(10), None)
            .await
            .unwrap();
        assert_eq!(
            users
                .iter()
                .map(|u| u.username.as_str())
                .collect::<Vec<_>>(),
            ["root", "ann"]
        );
        let scope = Actor::system().tenant_scope(tenants[0].id).unwrap();
        let tpl = store
            .list_templates(scope, Page::first(10), None)
            .await
            .unwrap();
        assert_eq!(
            tpl[0].variables.as_ref().unwrap().0,
            serde_json::json!(["name"])
        );
        let groups = store
            .list_groups(scope, Page::first(10), None)
            .await
            .unwrap();
        assert_eq!(groups.len(), 1);
        let contacts = store
            .list_contacts(scope, groups[0].id, Page::first(10), None)
            .await
            .unwrap();
        assert_eq!(contacts.len(), 2);
        assert_eq!(contacts[0].variables.as_ref().unwrap().0["city"], "Oslo");
        let batches = store
            .list_batches(scope, Page::first(10), None)
            .await
            .unwrap();
        assert_eq!(
            (
                batches[0].status.as_str(),
                batches[0].sent_count,
                batches[0].failed_count
            ),
            ("completed", 1, 1)
        );
        assert_eq!(
            store
                .batch_groups(scope, batches[0].id)
                .await
                .unwrap()
                .len(),
            1
        );
        let logs = store
            .list_email_logs(scope, batches[0].id, Page::first(10), None)
            .await
            .unwrap();
        assert_eq!(
            logs[1].smtp_response.as_deref(),
            Some("550 5.1.1 no such user")
        );
        assert_eq!(
            logs[0].attempts, 0,
            "new engine columns read their defaults"
        );
        let xl = store
            .list_execution_logs(scope, batches[0].id, Page::first(10))
            .await
            .unwrap();
        assert_eq!(xl[0].details.as_ref().unwrap().0["n"], 2);
        store.close().await;
        conn.close().await.unwrap();
    }))
    .await;
    db.drop_db().await;
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
