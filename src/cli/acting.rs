//! Who the command line acts as. By default the shell's operator, who holds the database
//! credentials and so is `Actor::system()` (a super admin). `--as USER` (or
//! `RECALLIQ_AS`) narrows that to a RecallIQ user: the permission matrix of
//! `domain::permissions` is applied to the command before it runs, and every tenant lookup
//! goes through that user's scope, so a tenant admin's script cannot touch another tenant.
//! No password is asked: whoever runs the CLI can read the database anyway; `--as` is a
//! seat belt for scripts and for delegating work, not a login.

use std::sync::OnceLock;

use super::args::{
    AuthCommand, BatchCommand, Command, ContactCommand, GroupCommand, SenderCommand, SmtpCommand,
    SuppressCommand, TemplateCommand, TenantCommand, UserCommand,
};
use super::{CliError, CliResult};
use crate::db::{Actor, Store, UserScope};
use crate::domain::permissions::{Action, allowed};

static ACTOR: OnceLock<Actor> = OnceLock::new();

/// The actor of this process: the `--as` user once established, else the system actor.
pub fn actor() -> Actor {
    ACTOR.get().cloned().unwrap_or_else(Actor::system)
}

/// What `cmd` needs. `None`: something only the operator of the installation may do
/// (schema, demo, the engine), refused under `--as` unless the user is a super admin.
pub fn required(cmd: &Command) -> Option<Action> {
    use Action::*;
    Some(match cmd {
        Command::Migrate(_) | Command::Demo(_) | Command::Worker(_) => return None,
        Command::Maintenance(_) | Command::Backup(_) | Command::Restore(_) | Command::Doctor(_) => {
            return None;
        }
        Command::Audit(_) => ViewAudit,
        Command::Completions(_) | Command::Man => View,
        // Reports from receivers and the public endpoint concern every tenant.
        Command::Bounces(super::bounce_commands::BouncesCommand::Ingest { .. })
        | Command::Unsubscribe(_) => return None,
        Command::Bounces(super::bounce_commands::BouncesCommand::Stats { .. }) => View,
        // A tenant's own mailbox changes only that tenant; the global one any tenant.
        Command::Bounces(super::bounce_commands::BouncesCommand::Watch { tenant, .. }) => {
            match tenant {
                Some(_) => ManageSmtp,
                None => return None,
            }
        }
        Command::Bounces(super::bounce_commands::BouncesCommand::Mailbox(c)) => {
            match (c, c.tenant()) {
                (_, None) => return None,
                (super::bounce_commands::MailboxCommand::Show { .. }, Some(_)) => View,
                (_, Some(_)) => ManageSmtp,
            }
        }
        Command::Auth(AuthCommand::Check { .. }) => View,
        Command::User(c) => match c {
            UserCommand::List { .. } => View,
            UserCommand::Create { .. }
            | UserCommand::Passwd { .. }
            | UserCommand::Deactivate { .. } => ManageUsers,
        },
        Command::Tenant(c) => match c {
            TenantCommand::Show { .. } => View,
            TenantCommand::List { .. } | TenantCommand::Create { .. } => ManageTenants,
            TenantCommand::Purge(_) => ManageTenants,
            TenantCommand::Retention(r)
                if r.email_logs_days.is_none() && r.batch_logs_days.is_none() =>
            {
                View
            }
            TenantCommand::Retention(_) => ManageTenants,
            TenantCommand::Sender(SenderCommand::List { .. }) => View,
            TenantCommand::Sender(_) => ManageSmtp,
        },
        Command::Group(c) => match c {
            GroupCommand::List { .. } | GroupCommand::Show { .. } | GroupCommand::Export { .. } => {
                View
            }
            GroupCommand::Import { dry_run: true, .. } => View,
            _ => EditGroups,
        },
        Command::Contact(c) => match c {
            ContactCommand::List { .. } => View,
            _ => EditContacts,
        },
        Command::Suppress(c) => match c {
            SuppressCommand::List { .. } => View,
            _ => EditContacts,
        },
        Command::Template(c) => match c {
            TemplateCommand::List { .. }
            | TemplateCommand::Show { .. }
            | TemplateCommand::Preview { .. } => View,
            TemplateCommand::Create { .. } => EditTemplates,
            TemplateCommand::SendTest { .. } => ManageSmtp,
        },
        Command::Smtp(c) => match c {
            SmtpCommand::Show { .. } => View,
            SmtpCommand::Set(_) | SmtpCommand::Test { .. } => ManageSmtp,
        },
        Command::Batch(c) => match c {
            BatchCommand::List { .. } | BatchCommand::Show { .. } => View,
            BatchCommand::Create { .. } => EditBatches,
            _ => ControlBatches,
        },
        Command::Logs(_) | Command::Stats(_) => View,
        Command::Dkim(c) => {
            use super::dkim_commands::DkimCommand as D;
            match c {
                D::List { .. } | D::Show { .. } | D::Dns { .. } => View,
                D::Generate { .. } | D::Import { .. } | D::Rotate { .. } => ManageSmtp,
            }
        }
    })
}

/// Applies `--as USER`: the user must exist and be active, their tenant active, and their
/// role must allow `cmd`. Afterwards `actor()` is that user.
pub async fn establish(store: &Store, username: &str, cmd: &Command) -> CliResult<()> {
    let all = Actor::system().all_tenants()?;
    let user = store
        .user_by_username(UserScope::All(all), username)
        .await
        .map_err(|_| CliError::failed(format!("--as: no user named '{}'", username.trim())))?;
    use crate::auth::LoginError;
    let actor = crate::auth::may_act(store, &user)
        .await
        .map_err(|e| match e {
            LoginError::Inactive(name) => {
                CliError::failed(format!("--as: user {name} is deactivated"))
            }
            LoginError::TenantSuspended(d) => CliError::failed(format!(
                "--as: tenant {d} of {} is suspended",
                user.username
            )),
            LoginError::TenantInactive(d) => {
                CliError::failed(format!("--as: tenant {d} of {} is inactive", user.username))
            }
            other => CliError::failed(format!("--as: {other}")),
        })?;
    match required(cmd) {
        Some(action) => allowed(actor.role, action).map_err(|d| CliError::failed(d.to_string()))?,
        None if actor.is_super_admin() => {}
        None => {
            return Err(CliError::failed(format!(
                "{} is {}: only the installation's operator (no --as) or a super admin may run this",
                user.username, actor.role
            )));
        }
    }
    ACTOR
        .set(actor)
        .map_err(|_| CliError::usage("--as given twice"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::domain::Role;
    use clap::Parser;

    fn needs(args: &[&str]) -> Option<Action> {
        let cli = Cli::try_parse_from(std::iter::once("recalliq").chain(args.iter().copied()))
            .expect("parses");
        required(&cli.command.expect("a command"))
    }

    #[test]
    fn reads_are_views_and_writes_need_their_permission() {
        assert_eq!(
            needs(&["group", "list", "--tenant", "a.test"]),
            Some(Action::View)
        );
        assert_eq!(
            needs(&["group", "create", "--tenant", "a.test", "--name", "x"]),
            Some(Action::EditGroups)
        );
        assert_eq!(
            needs(&[
                "group",
                "import",
                "--tenant",
                "a.test",
                "--group",
                "g",
                "f.csv",
                "--dry-run"
            ]),
            Some(Action::View)
        );
        assert_eq!(
            needs(&["batch", "pause", "7"]),
            Some(Action::ControlBatches)
        );
        assert_eq!(needs(&["tenant", "list"]), Some(Action::ManageTenants));
        assert_eq!(
            needs(&["smtp", "show", "--tenant", "a.test"]),
            Some(Action::View)
        );
        assert_eq!(needs(&["migrate"]), None);
        assert_eq!(needs(&["worker", "--once"]), None);
        // The global bounce mailbox concerns every tenant; a tenant's own only that tenant.
        assert_eq!(needs(&["bounces", "watch", "--once"]), None);
        assert_eq!(
            needs(&["bounces", "watch", "--tenant", "a.example"]),
            Some(Action::ManageSmtp)
        );
        assert_eq!(needs(&["bounces", "mailbox", "clear"]), None);
        assert_eq!(
            needs(&["bounces", "mailbox", "show", "--tenant", "a.example"]),
            Some(Action::View)
        );
        assert_eq!(
            needs(&["bounces", "mailbox", "clear", "--tenant", "a.example"]),
            Some(Action::ManageSmtp)
        );
    }

    #[test]
    fn the_matrix_decides() {
        // A read-only user may list but not create; staff may edit groups but not SMTP.
        let group_create =
            needs(&["group", "create", "--tenant", "a.test", "--name", "x"]).unwrap();
        assert!(allowed(Role::User, group_create).is_err());
        assert!(allowed(Role::Staff, group_create).is_ok());
        let smtp_set = needs(&["smtp", "test", "--tenant", "a.test"]).unwrap();
        assert!(allowed(Role::Staff, smtp_set).is_err());
        assert!(allowed(Role::TenantAdmin, smtp_set).is_ok());
    }
}
