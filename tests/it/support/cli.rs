//! Runs the real `recalliq` binary with an isolated config and data directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// An isolated environment for the binary: its own config dir, data dir and database URL.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub database_url: Option<String>,
}

impl Env {
    /// Uses the default database (SQLite in the data dir).
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
            database_url: None,
        }
    }

    pub fn with_url(url: &str) -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
            database_url: Some(url.to_string()),
        }
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_recalliq"));
        cmd.env_remove("RECALLIQ_DATABASE_URL")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .env_remove("RECALLIQ_SECRET_KEY")
            .env("RECALLIQ_CONFIG_DIR", self.config_dir())
            .env("RECALLIQ_DATA_DIR", self.data_dir())
            .env("NO_COLOR", "1");
        if let Some(url) = &self.database_url {
            cmd.env("RECALLIQ_DATABASE_URL", url);
        }
        cmd
    }

    /// Runs `recalliq ARGS` with `stdin` piped in.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        self.run_env(args, stdin, &[])
    }

    /// As `run`, with extra environment variables.
    pub fn run_env(&self, args: &[&str], stdin: Option<&str>, vars: &[(&str, &str)]) -> Run {
        let mut cmd = self.command();
        cmd.envs(vars.iter().copied());
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn recalliq");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        Run::from(child.wait_with_output().expect("wait recalliq"))
    }

    pub fn write_config(&self, text: &str) -> PathBuf {
        std::fs::create_dir_all(self.config_dir()).unwrap();
        let p = self.config_dir().join("config.toml");
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn fails_with(&self, code: i32, needle: &str) -> &Self {
        assert_eq!(
            self.code, code,
            "wrong exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}: {}",
            self.stderr
        );
        self
    }
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// Runs `test` with an environment on the default SQLite database, then again on a fresh,
/// migrated Postgres database (dropped afterwards, also on panic).
pub fn on_both_backends(test: impl Fn(&Env)) {
    test(&Env::new());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(db) = rt.block_on(super::PgDb::create()) else {
        return;
    };
    let env = Env::with_url(&db.url);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        env.run(&["migrate"], None).ok();
        test(&env);
    }));
    rt.block_on(db.drop_db());
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

impl Env {
    /// Writes `bytes` to a file in the environment's directory and returns its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    }

    /// `recalliq tenant create --name NAME --domain DOMAIN`.
    pub fn create_tenant(&self, name: &str, domain: &str) -> Run {
        self.run(
            &["tenant", "create", "--name", name, "--domain", domain],
            None,
        )
    }

    /// `recalliq smtp set` for `tenant`: the server at 127.0.0.1:`port` without TLS (a
    /// test sink), then the `extra` flags.
    pub fn smtp_local(&self, tenant: &str, port: &str, extra: &[&str]) -> Run {
        let mut args = vec![
            "smtp",
            "set",
            "--tenant",
            tenant,
            "--host",
            "127.0.0.1",
            "--port",
            port,
            "--security",
            "none",
        ];
        args.extend_from_slice(extra);
        self.run(&args, None)
    }

    /// Runs and parses standard output as JSON, asserting success.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let r = self.run(args, None);
        r.ok();
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.stdout))
    }
}
