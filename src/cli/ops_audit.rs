//! The CLI's audit hook: one place (`cli::run`) records every command that writes, with
//! its outcome, so new subcommands are audited without code of their own. The action is the
//! subcommand path (`tenant create`), the target the arguments given on the command line
//! (passwords never are: they come from standard input), the tenant the `--tenant` domain
//! (or the batch's tenant for batch commands by id).
//!
//! Commands that only read are listed here (`READ_COMMANDS`, `READ_LEAVES`); everything else
//! counts as a write, so a new command is audited unless someone decides it only reads.

use clap::CommandFactory;
use clap::parser::ValueSource;

use super::args::Cli;
use super::{CliError, CliResult};
use crate::config::Config;
use crate::db::{Actor, OUTCOME_FAILED, OUTCOME_OK, Store};

/// Top-level commands that never write to the database on a user's behalf (`auth check` is
/// audited as a login by `auth::authenticate`; the worker's writes are the engine's, recorded
/// in `logs_batchexecutionlog`; `demo` builds its own database).
pub const READ_COMMANDS: &[&str] = &[
    "stats",
    "audit",
    "doctor",
    "completions",
    "man",
    "demo",
    "worker",
    "auth",
    "logs",
];

/// Leaf subcommands that only read, whatever their parent.
pub const READ_LEAVES: &[&str] = &[
    "list", "show", "preview", "check", "test", "export", "tail", "dns", "verify",
];

/// Arguments that say how to print or whether to ask, not what to change.
const NOT_TARGET: &[&str] = &["json", "csv", "yes", "password_stdin"];

/// What the hook will record once the command has run.
#[derive(Debug, Clone, PartialEq)]
pub struct CliAudit {
    pub action: String,
    pub target: String,
    tenant_domain: Option<String>,
    batch_id: Option<i32>,
}

/// Whether the subcommand path `path` (e.g. `["tenant", "create"]`) may write.
pub fn writes(path: &[String]) -> bool {
    let Some(top) = path.first() else {
        return false;
    };
    if READ_COMMANDS.contains(&top.as_str()) {
        return false;
    }
    !path
        .last()
        .is_some_and(|leaf| READ_LEAVES.contains(&leaf.as_str()))
}

impl CliAudit {
    /// The audit entry of this process's command line, if it is a write.
    pub fn of(cli: &Cli) -> Option<CliAudit> {
        cli.command.as_ref()?;
        CliAudit::from_args(std::env::args_os())
    }

    /// As `of`, for an explicit argument list (the first item is the program name).
    pub fn from_args<I, T>(args: I) -> Option<CliAudit>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let command = Cli::command();
        let matches = command.clone().try_get_matches_from(args).ok()?;
        let mut path = Vec::new();
        let mut leaf = &matches;
        let mut leaf_cmd = &command;
        while let Some((name, sub)) = leaf.subcommand() {
            path.push(name.to_string());
            leaf = sub;
            leaf_cmd = leaf_cmd.find_subcommand(name)?;
        }
        if !writes(&path) {
            return None;
        }
        let mut target = Vec::new();
        let mut tenant_domain = None;
        let mut batch_id = None;
        for id in leaf.ids() {
            let name = id.as_str();
            let is_arg = leaf_cmd.get_arguments().any(|a| a.get_id() == id);
            if !is_arg
                || NOT_TARGET.contains(&name)
                || leaf.value_source(name) != Some(ValueSource::CommandLine)
            {
                continue;
            }
            let Ok(Some(raw)) = leaf.try_get_raw(name) else {
                continue;
            };
            let values: Vec<String> = raw.map(|v| v.to_string_lossy().into_owned()).collect();
            let joined = values.join(",");
            if name == "tenant" || (path[0] == "tenant" && name == "domain") {
                tenant_domain = values.first().cloned();
            }
            if path[0] == "batch" && name == "id" {
                batch_id = values.first().and_then(|v| v.parse().ok());
            }
            let flag = name.replace('_', "-");
            if joined == "true" || values.is_empty() {
                target.push(format!("--{flag}"));
            } else {
                target.push(format!("{flag}={joined}"));
            }
        }
        Some(CliAudit {
            action: path.join(" "),
            target: target.join(" "),
            tenant_domain,
            batch_id,
        })
    }

    /// Writes the entry: `ok` after success, `failed` (with the reason) after a refusal.
    /// Usage and connection errors (exit 2) changed nothing and are not recorded.
    pub async fn record(&self, config: &Config, result: &CliResult<u8>) {
        let (outcome, target) = match result {
            Ok(_) => (OUTCOME_OK, self.target.clone()),
            Err(CliError { code: 1, message }) => (
                OUTCOME_FAILED,
                format!("{} -- {message}", self.target).trim().to_string(),
            ),
            Err(_) => return,
        };
        let Ok(store) = Store::connect(&config.database_url).await else {
            return;
        };
        let system = Actor::system();
        let mut tenant_id = None;
        if let (Some(domain), Ok(all)) = (&self.tenant_domain, system.all_tenants()) {
            tenant_id = store
                .tenant_by_domain(&all, domain)
                .await
                .ok()
                .map(|t| t.id);
        }
        if let (None, Some(id)) = (tenant_id, self.batch_id) {
            tenant_id = store
                .batch_scope(&system, id)
                .await
                .ok()
                .map(|s| s.tenant_id());
        }
        // The `--as` user when there is one (refused `--as` runs are the operator's).
        let actor = super::acting::actor();
        store
            .audit_outcome(&actor, tenant_id, &self.action, &target, outcome)
            .await;
        store.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::CliAudit;

    #[test]
    fn writes_are_audited_with_their_arguments() {
        let a = CliAudit::from_args([
            "recalliq",
            "tenant",
            "create",
            "--name",
            "Acme",
            "--domain",
            "acme.example",
        ])
        .unwrap();
        assert_eq!(a.action, "tenant create");
        assert!(a.target.contains("domain=acme.example"), "{}", a.target);
        assert!(a.target.contains("name=Acme"));
        assert!(
            !a.target.contains("Create="),
            "argument groups are not targets: {}",
            a.target
        );
        assert_eq!(a.tenant_domain.as_deref(), Some("acme.example"));

        let b = CliAudit::from_args(["recalliq", "batch", "pause", "7"]).unwrap();
        assert_eq!(b.action, "batch pause");
        assert_eq!(b.batch_id, Some(7));
    }

    #[test]
    fn reads_are_not_audited() {
        for args in [
            &["recalliq", "tenant", "list", "--json"][..],
            &["recalliq", "stats", "tenants"],
            &["recalliq", "audit", "list"],
            &[
                "recalliq",
                "tenant",
                "sender",
                "list",
                "--tenant",
                "a.example",
            ],
            &["recalliq", "man"],
        ] {
            assert_eq!(CliAudit::from_args(args.iter().copied()), None, "{args:?}");
        }
    }
}
