//! `recalliq logs` through the real binary on both backends, and the issue's end-to-end
//! scenario in tmux: a batch against the test SMTP server with rejected recipients, the
//! viewer opened with `recalliq logs --batch ID`, failed filtered, all tagged, retried after
//! the server stops rejecting: every recipient ends sent exactly once.

use std::collections::HashMap;

use recalliq::db::{Security, SmtpServer, SmtpSettings, Store};

use crate::engine::{fixture, rcpt_counts};
use crate::support::cli::{Env, on_both_backends};
use crate::support::smtp::{SinkConfig, SmtpSink};
use crate::tui::{Tmux, create_root, script, tmux_available, wait_file};

fn url(env: &Env) -> String {
    env.database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", env.data_dir().join("recalliq.db").display()))
}

fn stdout(env: &Env, args: &[&str]) -> String {
    env.run(args, None).ok().stdout.clone()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A tenant sending through `port`, five contacts user0..user4, a started batch; returns
/// the batch id.
fn started_batch(env: &Env, port: u16) -> i32 {
    env.run(&["migrate"], None).ok();
    rt().block_on(async {
        let store = Store::connect(&url(env)).await.unwrap();
        let f = fixture(&store, "acme.test", port, 5, 2).await;
        store.start_batch(f.scope, f.batch_id).await.unwrap();
        store.close().await;
        f.batch_id
    })
}

fn rejecting() -> SmtpSink {
    SmtpSink::start(SinkConfig {
        reject: ["user1@example.com", "user3@example.com"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ..SinkConfig::default()
    })
}

/// Points the tenant at another server (the one that stopped rejecting).
fn switch_server(env: &Env, port: u16) {
    rt().block_on(async {
        let store = Store::connect(&url(env)).await.unwrap();
        let all = recalliq::db::Actor::system().all_tenants().unwrap();
        let t = store.tenant_by_domain(&all, "acme.test").await.unwrap();
        let scope = recalliq::db::Actor::system().tenant_scope(t.id).unwrap();
        let mut server = SmtpServer::new("127.0.0.1", port, Security::None);
        server.from = Some("news@acme.test".into());
        store
            .set_smtp_settings(scope, &SmtpSettings::Smtp(server))
            .await
            .unwrap();
        store.close().await;
    });
}

#[test]
fn logs_command_prints_json_csv_and_tables() {
    on_both_backends(|env| {
        let sink = rejecting();
        let batch = started_batch(env, sink.port());
        let id = batch.to_string();
        env.run(&["worker", "--once"], None).ok();
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(&stdout(env, &["logs", "--batch", &id, "--json"])).unwrap();
        assert_eq!(rows.len(), 5);
        let status: HashMap<String, String> = rows
            .iter()
            .map(|r| {
                (
                    r["recipient_email"].as_str().unwrap().to_string(),
                    r["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(status["user1@example.com"], "rejected");
        assert_eq!(status["user0@example.com"], "sent");
        let csv = stdout(
            env,
            &["logs", "--batch", &id, "--status", "rejected", "--csv"],
        );
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3, "{csv}");
        assert!(lines[0].starts_with("id,batch_id,recipient_email"));
        assert!(lines[1].contains("user1@example.com") && lines[1].contains("550"));
        let table = stdout(env, &["logs", "--batch", &id, "--status", "sent,rejected"]);
        assert!(table.starts_with("ID"), "{table}");
        assert_eq!(table.lines().count(), 6, "{table}");
        // --follow on a finished batch prints what is there and exits.
        let follow = stdout(env, &["logs", "--batch", &id, "--follow", "--json"]);
        assert_eq!(follow.lines().count(), 5, "{follow}");
        for line in follow.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(v["id"].as_i64().is_some());
        }
        env.run(&["logs", "--batch", "99999"], None)
            .fails_with(1, "batch #99999 not found");
        env.run(&["logs", "--batch", &id, "--status", "lost"], None)
            .fails_with(2, "unknown email status 'lost'");
    });
}

#[test]
fn end_to_end_triage_in_tmux() {
    if !tmux_available() {
        eprintln!("NOTICE: tmux not installed; log viewer end-to-end test skipped");
        return;
    }
    let env = Env::new();
    create_root(&env);
    let first = rejecting();
    let batch = started_batch(&env, first.port());
    env.run(&["worker", "--once"], None).ok();
    assert_eq!(rcpt_counts(&first).len(), 3, "two recipients rejected");
    let polite = SmtpSink::start(SinkConfig::default());
    switch_server(&env, polite.port());

    let tmux = Tmux::start(
        env.dir.path(),
        &script(
            &env,
            &format!("--no-engine --user root logs --batch {batch} --follow"),
        ),
    );
    tmux.wait_for("Password");
    tmux.text("rootpass1");
    tmux.keys(&["Enter"]);
    tmux.wait_for(&format!("Logs of #{batch}"));
    tmux.wait_for("[follow]");
    tmux.wait_for("rejected 2");
    tmux.text("F");
    tmux.wait_for("status=failed");
    tmux.text("R");
    tmux.wait_for("status=failed,rejected");
    tmux.text("*");
    tmux.wait_for("tagged 2 rows");
    tmux.text("r");
    tmux.wait_for("Retry 2 rows of completed batch");
    // The finished batch runs again (rather than a new batch).
    tmux.keys(&["Right"]);
    tmux.wait_for("same batch");
    tmux.keys(&["Enter"]);
    tmux.wait_for("2 recipients queued again");
    tmux.text("q");
    let exit = wait_file(&env.dir.path().join("exit.txt"));
    assert_eq!(exit.trim(), "exit=0");

    env.run(&["worker", "--once"], None).ok();
    let mut sent = rcpt_counts(&first);
    for (k, v) in rcpt_counts(&polite) {
        *sent.entry(k).or_insert(0) += v;
    }
    assert_eq!(sent.len(), 5, "{sent:?}");
    assert!(sent.values().all(|n| *n == 1), "exactly once: {sent:?}");
    let json = stdout(&env, &["logs", "--batch", &batch.to_string(), "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert!(rows.iter().all(|r| r["status"] == "sent"), "{json}");
    rt().block_on(async {
        let store = Store::connect(&url(&env)).await.unwrap();
        let scope = store
            .batch_scope(&recalliq::db::Actor::system(), batch)
            .await
            .unwrap();
        let log = store
            .list_execution_logs(scope, batch, recalliq::db::Page::first(100))
            .await
            .unwrap();
        let e = log
            .iter()
            .find(|e| e.action == "retry_tagged")
            .expect("recorded");
        assert!(e.message.as_deref().unwrap_or("").contains("root"), "{e:?}");
        store.close().await;
    });
}
