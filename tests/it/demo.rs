//! `recalliq demo`: the database it builds keeps the promises of the issue, its printed
//! passwords log in, re-running replaces it, and it never overwrites a foreign file.

use std::collections::HashMap;
use std::path::Path;

use recalliq::db::Store;

use crate::support::cli::{Env, Run};

/// (username, role, password) of the credentials table of the summary.
fn credentials(text: &str) -> Vec<(String, String, String)> {
    let lines = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("USERNAME"))
        .skip(1);
    let mut out = Vec::new();
    for l in lines {
        let cols: Vec<&str> = l.split_whitespace().collect();
        if cols.len() != 4 {
            break;
        }
        out.push((
            cols[0].to_string(),
            cols[1].to_string(),
            cols[3].to_string(),
        ));
    }
    out
}

fn demo(env: &Env, db: &Path, extra: &[&str]) -> Run {
    let db = db.to_str().unwrap();
    let mut args = vec!["demo", "--db", db, "--no-tui"];
    args.extend_from_slice(extra);
    env.run(&args, None)
}

async fn open(url: &str) -> Store {
    Store::connect(url).await.expect("open demo db")
}

async fn scalar(store: &Store, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.sqlite_pool().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn demo_no_tui_builds_the_promised_database() {
    let env = Env::new();
    let db = env.dir.path().join("demo.db");
    let run = demo(&env, &db, &[]);
    run.ok();
    // stdout is exactly the URL, for scripts.
    let url = format!("sqlite://{}", db.display());
    assert_eq!(run.stdout, format!("{url}\n"), "stderr: {}", run.stderr);
    let store = open(&url).await;
    let pool = store.sqlite_pool().unwrap();

    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM recalliq_demo").await,
        1
    );
    let plans: Vec<String> = sqlx::query_scalar("SELECT plan FROM tenants_tenant ORDER BY plan")
        .fetch_all(pool)
        .await
        .unwrap();
    assert_eq!(plans, ["basic", "enterprise", "professional"]);
    let over: i64 = scalar(
        &store,
        "SELECT COUNT(*) FROM tenants_tenant WHERE emails_sent_this_month <= 0
            OR emails_sent_this_month > monthly_email_limit",
    )
    .await;
    assert_eq!(over, 0, "usage must be positive and within the limit");
    // Outbox transport and a sender per tenant.
    let settings: Vec<String> = sqlx::query_scalar("SELECT settings FROM tenants_tenant")
        .fetch_all(pool)
        .await
        .unwrap();
    for s in &settings {
        let v: serde_json::Value = serde_json::from_str(s).unwrap();
        assert_eq!(v["smtp"]["transport"], "outbox", "{s}");
        let path = v["smtp"]["path"].as_str().unwrap();
        assert!(
            path.starts_with(env.data_dir().join("outbox").to_str().unwrap()),
            "{path}"
        );
        assert!(Path::new(path).is_dir(), "{path}");
    }
    assert_eq!(
        scalar(
            &store,
            "SELECT COUNT(DISTINCT tenant_id) FROM tenants_tenantemail"
        )
        .await,
        3
    );

    // Every role; super admins without a tenant, the others with one.
    let roles: Vec<(String, i64)> =
        sqlx::query_as("SELECT role, COUNT(*) FROM core_user GROUP BY role ORDER BY role")
            .fetch_all(pool)
            .await
            .unwrap();
    let roles: HashMap<_, _> = roles.into_iter().collect();
    assert_eq!(roles.get("super_admin"), Some(&1));
    for r in ["tenant_admin", "staff", "user"] {
        assert_eq!(roles.get(r), Some(&3), "{r}: {roles:?}");
    }
    assert_eq!(
        scalar(
            &store,
            "SELECT COUNT(*) FROM core_user WHERE (role = 'super_admin') = (tenant_id IS NOT NULL)"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &store,
            "SELECT COUNT(*) FROM core_user WHERE password NOT LIKE 'pbkdf2_sha256$%'"
        )
        .await,
        0
    );

    // ~5,000 contacts, each with a variables object.
    let contacts = scalar(&store, "SELECT COUNT(*) FROM tenants_groupemail").await;
    assert!((4_500..=5_500).contains(&contacts), "{contacts}");
    assert_eq!(
        scalar(
            &store,
            "SELECT COUNT(*) FROM tenants_groupemail WHERE json_type(variables) IS NOT 'object'
                OR json_extract(variables, '$.city') IS NULL OR json_extract(variables, '$.plan') IS NULL"
        )
        .await,
        0
    );
    // Templates use the per-recipient variables.
    assert_eq!(
        scalar(
            &store,
            "SELECT COUNT(*) FROM emails_emailtemplate WHERE body_html LIKE '%{{ name }}%'
                AND body_html LIKE '%{{ email }}%' AND (body_html || subject LIKE '%{{ city }}%'
                OR body_html || subject LIKE '%{{ plan }}%')"
        )
        .await,
        scalar(&store, "SELECT COUNT(*) FROM emails_emailtemplate").await
    );

    // A batch in every status, each with execution logs.
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT status FROM batches_batch ORDER BY status")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(
        statuses,
        [
            "cancelled",
            "completed",
            "draft",
            "failed",
            "paused",
            "running",
            "scheduled"
        ]
    );
    assert_eq!(
        scalar(
            &store,
            "SELECT COUNT(*) FROM batches_batch b WHERE NOT EXISTS
                (SELECT 1 FROM logs_batchexecutionlog e WHERE e.batch_id = b.id)"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &store,
            "SELECT COUNT(*) FROM batches_batch b WHERE b.status = 'paused' AND NOT EXISTS
                (SELECT 1 FROM logs_batchexecutionlog e WHERE e.batch_id = b.id AND e.action = 'paused'
                 AND e.message LIKE '%: %')"
        )
        .await,
        0,
        "the pause is logged with its reason"
    );

    // Email logs of every status; final ones carry the SMTP reply.
    let log_statuses: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT status FROM logs_emaillog ORDER BY status")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(
        log_statuses,
        ["bounced", "failed", "pending", "rejected", "sent"]
    );
    assert_eq!(
        scalar(
            &store,
            "SELECT COUNT(*) FROM logs_emaillog WHERE status <> 'pending' AND (smtp_response IS NULL OR smtp_response = '')"
        )
        .await,
        0
    );
    assert!(
        scalar(&store, "SELECT COUNT(*) FROM logs_emaillog WHERE smtp_response LIKE '250 2.0.0 Ok: queued as %'").await > 0
    );
    assert!(
        scalar(&store, "SELECT COUNT(*) FROM logs_emaillog WHERE smtp_response LIKE '550 5.1.1 <%>: Recipient address rejected: User unknown'").await > 0
    );
    // Counters agree with the logs.
    assert_eq!(
        scalar(
            &store,
            "SELECT COUNT(*) FROM batches_batch b WHERE
                b.sent_count <> (SELECT COUNT(*) FROM logs_emaillog l WHERE l.batch_id = b.id AND l.status = 'sent')
                OR b.failed_count <> (SELECT COUNT(*) FROM logs_emaillog l WHERE l.batch_id = b.id
                                      AND l.status IN ('failed', 'bounced', 'rejected'))"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM logs_emaillog l JOIN batches_batch b ON b.id = l.batch_id WHERE b.status IN ('draft', 'scheduled')").await,
        0
    );
    store.close().await;

    // The printed passwords log in (against the demo database via --database-url).
    let creds = credentials(&run.stderr);
    assert_eq!(creds.len(), 10, "{}", run.stderr);
    for (user, role, password) in &creds {
        let check = env.run(
            &[
                "--database-url",
                &url,
                "auth",
                "check",
                user,
                "--password-stdin",
            ],
            Some(&format!("{password}\n")),
        );
        check.ok();
        assert!(
            check.stdout.contains(&format!("ok: {user} ({role})")),
            "{}",
            check.stdout
        );
    }

    // Re-running replaces the demo database: new passwords, same shape, no leftovers.
    let again = demo(&env, &db, &[]);
    again.ok();
    let new_creds = credentials(&again.stderr);
    assert_eq!(new_creds.len(), 10);
    assert_ne!(new_creds[0].2, creds[0].2, "fresh passwords on every run");
    let store = open(&url).await;
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM tenants_tenant").await,
        3
    );
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM tenants_groupemail").await,
        contacts
    );
    store.close().await;
    let old = env.run(
        &[
            "--database-url",
            &url,
            "auth",
            "check",
            &creds[0].0,
            "--password-stdin",
        ],
        Some(&format!("{}\n", creds[0].2)),
    );
    assert_eq!(old.code, 1, "the old password must be gone: {old:?}");
}

#[tokio::test]
async fn demo_refuses_to_overwrite_a_foreign_file() {
    let env = Env::new();
    // A plain file.
    let notes = env.dir.path().join("notes.db");
    std::fs::write(&notes, "my precious notes\n").unwrap();
    let run = demo(&env, &notes, &[]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("not a recalliq demo database"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&notes).unwrap(),
        "my precious notes\n"
    );

    // A real recalliq database that is not a demo.
    let real = env.dir.path().join("real.db");
    let url = format!("sqlite://{}", real.display());
    env.run(
        &[
            "--database-url",
            &url,
            "tenant",
            "create",
            "--name",
            "Mine",
            "--domain",
            "mine.example",
        ],
        None,
    )
    .ok();
    let store = open(&url).await;
    store.close().await;
    let before = std::fs::read(&real).unwrap();
    let run = demo(&env, &real, &[]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("refusing to overwrite"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(&real).unwrap(),
        before,
        "the file must be untouched"
    );
    assert!(run.stdout.is_empty());
}

#[tokio::test]
async fn demo_logs_adds_that_many_email_logs() {
    let env = Env::new();
    let db = env.dir.path().join("perf.db");
    let run = demo(&env, &db, &["--logs", "20000"]);
    run.ok();
    assert!(
        run.stderr.contains("with 20000 email logs in"),
        "{}",
        run.stderr
    );
    let store = open(run.stdout.trim()).await;
    let pool = store.sqlite_pool().unwrap();
    let (id, sent, failed): (i32, i64, i64) = sqlx::query_as(
        "SELECT id, sent_count, failed_count FROM batches_batch WHERE name LIKE 'Archive mailing%'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let (total, sent_logs, failed_logs, distinct): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), SUM(status = 'sent'), SUM(status IN ('failed', 'bounced', 'rejected')),
                COUNT(DISTINCT recipient_email)
         FROM logs_emaillog WHERE batch_id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(total, 20_000);
    assert_eq!(distinct, 20_000, "every recipient of the batch is distinct");
    assert_eq!((sent, failed), (sent_logs, failed_logs));
    assert!(sent > 18_000 && failed > 0, "{sent} {failed}");
    store.close().await;
}
