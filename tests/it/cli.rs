//! The real binary: users, auth check, tenants, config precedence and bad input. Runs on the
//! default SQLite database and, where it matters, on Postgres.

use crate::support::cli::Env;
use crate::support::{PgDb, pg_server_url};

const PW: &str = "correct horse battery\n";

#[test]
fn users_and_auth_check_on_default_sqlite() {
    let env = Env::new();
    env.run(
        &[
            "tenant",
            "create",
            "--name",
            "Acme",
            "--domain",
            "acme.test",
            "--plan",
            "professional",
            "--monthly-limit",
            "5000",
        ],
        None,
    )
    .ok();
    let id = env.run(
        &[
            "user",
            "create",
            "--username",
            "root",
            "--email",
            "root@x.test",
            "--role",
            "super_admin",
            "--password-stdin",
        ],
        Some(PW),
    );
    id.ok();
    assert!(
        id.stdout.trim().parse::<i32>().is_ok(),
        "prints the id: {}",
        id.stdout
    );
    env.run(
        &[
            "user",
            "create",
            "--username",
            "ann",
            "--email",
            "ann@acme.test",
            "--role",
            "staff",
            "--tenant",
            "acme.test",
            "--password-stdin",
        ],
        Some(PW),
    )
    .ok();

    let ok = env.run(&["auth", "check", "ann", "--password-stdin"], Some(PW));
    ok.ok();
    assert!(ok.stdout.contains("ok: ann (staff)"));
    env.run(
        &["auth", "check", "ann", "--password-stdin"],
        Some("nope\n"),
    )
    .fails_with(1, "wrong username or password");

    // The stored hash is Django's format at Django 5.x's default count.
    let db = env.data_dir().join("recalliq.db");
    assert!(db.exists(), "default database lives in the data dir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "database file is private");
    }
    let list = env.run(&["user", "list", "--json"], None);
    list.ok();
    let users: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 2);
    assert!(
        !list.stdout.contains("pbkdf2"),
        "hashes never leave through --json"
    );

    env.run(
        &["user", "passwd", "ann", "--password-stdin"],
        Some("new pass\n"),
    )
    .ok();
    env.run(&["auth", "check", "ann", "--password-stdin"], Some(PW))
        .fails_with(1, "wrong username or password");
    env.run(
        &["auth", "check", "ann", "--password-stdin"],
        Some("new pass\n"),
    )
    .ok();

    env.run(&["user", "deactivate", "ann"], None).ok();
    env.run(
        &["auth", "check", "ann", "--password-stdin"],
        Some("new pass\n"),
    )
    .fails_with(1, "user 'ann' is inactive");

    // Bad input: each a clear line, exit 1 for refused operations, 2 for usage.
    env.run(
        &[
            "user",
            "create",
            "--username",
            "x",
            "--email",
            "x@x.test",
            "--role",
            "admin",
            "--tenant",
            "acme.test",
            "--password-stdin",
        ],
        Some(PW),
    )
    .fails_with(2, "unknown role 'admin'");
    env.run(
        &[
            "user",
            "create",
            "--username",
            "root",
            "--email",
            "r2@x.test",
            "--role",
            "user",
            "--tenant",
            "acme.test",
            "--password-stdin",
        ],
        Some(PW),
    )
    .fails_with(1, "username 'root' is taken");
    env.run(
        &[
            "user",
            "create",
            "--username",
            "r2",
            "--email",
            "ROOT@x.test",
            "--role",
            "user",
            "--tenant",
            "acme.test",
            "--password-stdin",
        ],
        Some(PW),
    )
    .fails_with(1, "already used");
    env.run(
        &[
            "user",
            "create",
            "--username",
            "r3",
            "--email",
            "r3@x.test",
            "--role",
            "user",
            "--tenant",
            "nowhere.test",
            "--password-stdin",
        ],
        Some(PW),
    )
    .fails_with(1, "tenant with domain 'nowhere.test' not found");
    env.run(
        &[
            "user",
            "create",
            "--username",
            "r4",
            "--email",
            "r4@x.test",
            "--role",
            "user",
            "--password-stdin",
        ],
        None,
    )
    .fails_with(2, "role user needs a tenant (--tenant DOMAIN)");
    env.run(
        &["tenant", "create", "--name", "Dup", "--domain", "ACME.test"],
        None,
    )
    .fails_with(1, "already exists");
    env.run(
        &[
            "tenant",
            "create",
            "--name",
            "Bad",
            "--domain",
            "acme.test",
            "--plan",
            "gold",
        ],
        None,
    )
    .fails_with(2, "unknown plan 'gold'");
    let users_after = env.run(&["user", "list", "--json"], None);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&users_after.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2,
        "nothing half-written"
    );
}

#[test]
fn tenant_list_and_show() {
    let env = Env::new();
    env.create_tenant("Acme Corp", "acme.test").ok();
    env.run(
        &[
            "tenant",
            "create",
            "--name",
            "Bolt",
            "--domain",
            "bolt.test",
            "--plan",
            "enterprise",
            "--monthly-limit",
            "100000",
        ],
        None,
    )
    .ok();
    let table = env.run(&["tenant", "list"], None);
    table.ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("ID  DOMAIN"), "{}", table.stdout);
    assert!(
        lines[2].contains("bolt.test")
            && lines[2].contains("enterprise")
            && lines[2].contains("100000")
    );
    let json = env.run(&["tenant", "show", "bolt.test", "--json"], None);
    json.ok();
    let t: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(t["plan"], "enterprise");
    assert_eq!(t["monthly_email_limit"], 100000);
    let human = env.run(&["tenant", "show", "acme.test"], None);
    assert!(human.stdout.contains("Acme Corp") && human.stdout.contains("basic"));
    env.run(&["tenant", "show", "zzz.test"], None)
        .fails_with(1, "not found");
}

#[test]
fn config_precedence_flag_env_file_default() {
    let env = Env::new();
    let dir = env.dir.path();
    let url = |n: &str| format!("sqlite://{}", dir.join(n).display());
    env.write_config(&format!("database_url = '{}'\n", url("file.db")));
    let mk = |extra: &[&str], domain: &str, env_url: Option<String>| {
        let mut cmd = env.command();
        if let Some(u) = env_url {
            cmd.env("RECALLIQ_DATABASE_URL", u);
        }
        let out = cmd
            .args(extra)
            .args(["tenant", "create", "--name", "T", "--domain", domain])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    mk(
        &["--database-url", &url("flag.db")],
        "flag.test",
        Some(url("env.db")),
    );
    mk(&[], "env.test", Some(url("env.db")));
    mk(&[], "file.test", None);
    for (db, domain) in [
        ("flag.db", "flag.test"),
        ("env.db", "env.test"),
        ("file.db", "file.test"),
    ] {
        let out = env
            .command()
            .args(["--database-url", &url(db), "tenant", "list", "--json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let domains: Vec<_> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["domain"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            domains,
            vec![domain.to_string()],
            "{db} holds only what was aimed at it"
        );
    }
    // Without a file, the default is the data dir.
    std::fs::remove_file(env.config_dir().join("config.toml")).unwrap();
    mk(&[], "default.test", None);
    assert!(env.data_dir().join("recalliq.db").exists());
    // A broken config file is one clear line.
    env.write_config("database_url = \n");
    let out = env.run(&["tenant", "list"], None);
    out.fails_with(2, "invalid config file");
    assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
}

#[test]
fn bad_and_unreachable_databases_exit_2_with_one_line() {
    let env = Env::new();
    let out = env.run(
        &["--database-url", "mysql://u:pw@h/db", "tenant", "list"],
        None,
    );
    out.fails_with(2, "expected sqlite://PATH or postgres://");
    assert!(
        !out.stderr.contains("pw@"),
        "password redacted: {}",
        out.stderr
    );
    // Nothing listens on port 1.
    let out = env.run(
        &[
            "--database-url",
            "postgres://admin:hunter2@127.0.0.1:1/x",
            "tenant",
            "list",
        ],
        None,
    );
    out.fails_with(2, "cannot open database postgres://admin:***@127.0.0.1:1/x");
    assert!(!out.stderr.contains("hunter2"));
    assert_eq!(
        out.stderr.lines().count(),
        1,
        "no backtrace: {}",
        out.stderr
    );
    let out = env.run(
        &[
            "--database-url",
            "sqlite:///proc/nope/x.db",
            "tenant",
            "list",
        ],
        None,
    );
    out.fails_with(2, "cannot open database");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_needs_explicit_migrate_then_works() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    let env = Env::with_url(&db.url);
    let r = env.run(&["tenant", "list"], None);
    let r2 = env.run(&["migrate", "--json"], None);
    let r3 = env.run(
        &["tenant", "create", "--name", "P", "--domain", "p.test"],
        None,
    );
    let r4 = env.run(&["tenant", "list", "--json"], None);
    db.drop_db().await;
    r.fails_with(1, "run `recalliq migrate`");
    r2.ok();
    let expected = format!("\"current\": {}", recalliq::db::LATEST_VERSION);
    assert!(r2.stdout.contains(&expected), "{}", r2.stdout);
    r3.ok();
    assert!(r4.stdout.contains("p.test"));
    let _ = pg_server_url();
}

/// #3 item 3 in the CLI: `--as USER` applies the permission matrix and the user's tenant
/// scope to a command; without it the shell's operator acts as the system.
#[test]
fn as_user_applies_roles_and_tenant_scope() {
    crate::support::cli::on_both_backends(|env| {
        for d in ["a.test", "b.test"] {
            env.run(&["tenant", "create", "--name", d, "--domain", d], None)
                .ok();
        }
        for (name, role, tenant) in [
            ("sam", "staff", "a.test"),
            ("vic", "user", "a.test"),
            ("tia", "tenant_admin", "a.test"),
            ("old", "staff", "a.test"),
        ] {
            env.run(
                &[
                    "user",
                    "create",
                    "--username",
                    name,
                    "--email",
                    &format!("{name}@{tenant}"),
                    "--role",
                    role,
                    "--tenant",
                    tenant,
                    "--password-stdin",
                ],
                Some(PW),
            )
            .ok();
        }
        env.run(&["user", "deactivate", "old"], None).ok();
        env.run(
            &["group", "create", "--tenant", "b.test", "--name", "Secret"],
            None,
        )
        .ok();

        // Staff may create groups in their tenant...
        env.run(
            &[
                "--as", "sam", "group", "create", "--tenant", "a.test", "--name", "News",
            ],
            None,
        )
        .ok();
        // ...but another tenant looks like a tenant that does not exist.
        env.run(
            &["--as", "sam", "group", "list", "--tenant", "b.test"],
            None,
        )
        .fails_with(1, "tenant with domain 'b.test'");
        env.run(
            &[
                "--as", "sam", "group", "delete", "--tenant", "b.test", "Secret", "--yes",
            ],
            None,
        )
        .fails_with(1, "tenant with domain 'b.test'");
        let groups = env.json(&["group", "list", "--tenant", "b.test", "--json"]);
        assert_eq!(groups.as_array().map(|a| a.len()), Some(1), "{groups}");
        // A read-only user reads, and is told why a write is refused.
        let listed = env.json(&[
            "--as", "vic", "group", "list", "--tenant", "a.test", "--json",
        ]);
        assert_eq!(listed[0]["name"], "News", "{listed}");
        env.run(
            &[
                "--as", "vic", "group", "create", "--tenant", "a.test", "--name", "X",
            ],
            None,
        )
        .fails_with(1, "read-only");
        // SMTP settings: tenant admins only.
        env.run(&["--as", "sam", "smtp", "test", "--tenant", "a.test"], None)
            .fails_with(1, "SMTP");
        // Cross-tenant and installation-wide commands need a super admin.
        env.run(&["--as", "tia", "tenant", "list"], None)
            .fails_with(1, "tenant");
        env.run(&["--as", "tia", "migrate"], None)
            .fails_with(1, "only the installation's operator");
        // The variable works like the flag; unknown and deactivated users are refused.
        let r = env.run_env(
            &["group", "create", "--tenant", "a.test", "--name", "Y"],
            None,
            &[("RECALLIQ_AS", "vic")],
        );
        r.fails_with(1, "read-only");
        env.run(
            &["--as", "nobody", "group", "list", "--tenant", "a.test"],
            None,
        )
        .fails_with(1, "no user named 'nobody'");
        env.run(
            &["--as", "old", "group", "list", "--tenant", "a.test"],
            None,
        )
        .fails_with(1, "deactivated");
    });
}

/// `--as` a tenant admin: users of their own tenant only, never super admins, only the roles
/// a tenant admin may hand out.
#[test]
fn as_tenant_admin_manages_only_their_tenants_users() {
    let env = crate::support::cli::Env::new();
    for d in ["a.test", "b.test"] {
        env.run(&["tenant", "create", "--name", d, "--domain", d], None)
            .ok();
    }
    let user = |name: &str, role: &str, tenant: Option<&str>| {
        let mut args = vec![
            "user".to_string(),
            "create".into(),
            "--username".into(),
            name.into(),
            "--email".into(),
            format!("{name}@x.test"),
            "--role".into(),
            role.into(),
            "--password-stdin".into(),
        ];
        if let Some(t) = tenant {
            args.push("--tenant".into());
            args.push(t.into());
        }
        args
    };
    let run = |prefix: &[&str], args: Vec<String>| {
        let mut all: Vec<&str> = prefix.to_vec();
        all.extend(args.iter().map(String::as_str));
        env.run(&all, Some(PW))
    };
    run(&[], user("tia", "tenant_admin", Some("a.test"))).ok();
    run(&[], user("boss", "super_admin", None)).ok();
    run(&[], user("bea", "staff", Some("b.test"))).ok();
    let tia = ["--as", "tia"];
    run(&tia, user("sam", "staff", Some("a.test"))).ok();
    run(&tia, user("eve", "staff", Some("b.test"))).fails_with(1, "tenant with domain 'b.test'");
    run(&tia, user("king", "super_admin", None)).fails_with(1, "may not hand out");
    env.run(
        &["--as", "tia", "user", "passwd", "sam", "--password-stdin"],
        Some(PW),
    )
    .ok();
    env.run(&["--as", "tia", "user", "deactivate", "bea"], None)
        .fails_with(1, "not found");
    env.run(&["--as", "tia", "user", "deactivate", "boss"], None)
        .fails_with(1, "not found");
    env.run(&["--as", "tia", "user", "deactivate", "sam"], None)
        .ok();
    let listed = env.json(&["--as", "tia", "user", "list", "--json"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, vec!["tia", "sam"], "{listed}");
    let bea = env.json(&["user", "list", "--tenant", "b.test", "--json"]);
    assert_eq!(bea[0]["is_active"], true, "{bea}");
}
