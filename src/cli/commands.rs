//! Handlers of the subcommands. Each opens the store, acts as `acting::actor()` (the
//! shell's `Actor::system()`, or the `--as` user with their role's permissions) and prints
//! a table or JSON.

use std::io::Read;

use super::args::{AuthCommand, Cli, Command, TenantCommand, UserCommand};
use super::output::{print_json, print_table};
use super::{CliError, CliResult};
use crate::auth;
use crate::config::Config;
use crate::db::{Actor, Backend, NewTenant, NewUser, Store, Tenant, UserScope};
use crate::domain::{Role, TenantPlan};

/// Runs the parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> CliResult<u8> {
    let config = Config::load(cli.database_url.as_deref(), cli.config.as_deref())?;
    // The shell acts as the system actor: with row-level security on, its connections
    // explicitly bypass the policies (code paths still take their tenant's scope).
    crate::db::rls::set_default_bypass(&Actor::system().all_tenants()?);
    let audit = super::ops_audit::CliAudit::of(&cli);
    let result = dispatch(cli, &config).await;
    if let Some(audit) = audit {
        audit.record(&config, &result).await;
    }
    result
}

async fn dispatch(cli: Cli, config: &Config) -> CliResult<u8> {
    if let (Some(user), Some(cmd)) = (&cli.as_user, &cli.command) {
        let store = open(config).await?;
        super::acting::establish(&store, user, cmd).await?;
    }
    let tui_opts = crate::tui::Options::from_cli(&cli, config);
    match cli.command {
        None => {
            let store = open(config).await?;
            crate::tui::run_app(store, tui_opts, None)
                .await
                .map_err(|e| CliError::failed(e.to_string()))?;
            Ok(0)
        }
        Some(Command::Migrate(args)) => {
            let store = Store::connect(&config.database_url).await?;
            let report = store.migrate().await?;
            if args.row_level_security || args.no_row_level_security {
                super::data_commands::row_level_security(
                    &store,
                    args.row_level_security,
                    args.json,
                )
                .await?;
            }
            if args.json {
                print_json(&report);
            } else if report.applied.is_empty() {
                println!("schema is current (version {})", report.current);
            } else {
                let applied: Vec<String> = report.applied.iter().map(|v| v.to_string()).collect();
                println!(
                    "applied migration(s) {}; schema now at version {}",
                    applied.join(", "),
                    report.current
                );
            }
            Ok(0)
        }
        Some(Command::Demo(args)) => crate::demo::run(config, &args.db, args.no_tui, args.logs)
            .await
            .map(|_| 0)
            .map_err(|e| CliError::failed(e.to_string())),
        Some(Command::User(cmd)) => user_command(config, cmd).await,
        Some(Command::Auth(AuthCommand::Check { username, .. })) => {
            let store = open(config).await?;
            let password = read_password_stdin()?;
            match auth::authenticate(&store, &username, &password).await {
                Ok((user, _)) => {
                    println!("ok: {} ({})", user.username, user.role);
                    Ok(0)
                }
                Err(auth::LoginError::Store(e)) => Err(e.into()),
                Err(e) => Err(CliError::failed(e.to_string())),
            }
        }
        Some(Command::Tenant(cmd)) => tenant_command(config, cmd).await,
        Some(Command::Worker(args)) => super::batch_commands::worker(config, args).await,
        Some(Command::Group(cmd)) => {
            super::contacts::group_command(&open(config).await?, cmd).await
        }
        Some(Command::Contact(cmd)) => {
            super::contacts::contact_command(&open(config).await?, cmd).await
        }
        Some(Command::Suppress(cmd)) => {
            super::contacts::suppress_command(&open(config).await?, cmd).await
        }
        Some(Command::Template(cmd)) => super::mail_commands::template_command(config, cmd).await,
        Some(Command::Smtp(cmd)) => super::mail_commands::smtp_command(config, cmd).await,
        Some(Command::Batch(cmd)) => super::batch_commands::batch_command(config, cmd).await,
        Some(Command::Logs(args)) => super::logs_command::logs(config, args, tui_opts).await,
        Some(Command::Bounces(cmd)) => super::bounce_commands::bounces_command(config, cmd).await,
        Some(Command::Unsubscribe(cmd)) => {
            super::bounce_commands::unsubscribe_command(config, cmd).await
        }
        Some(Command::Dkim(cmd)) => super::dkim_commands::dkim_command(config, cmd).await,
        Some(Command::Backup(args)) => super::data_commands::backup_command(config, args).await,
        Some(Command::Restore(args)) => super::data_commands::restore_command(config, args).await,
        Some(Command::Stats(cmd)) => super::ops_commands::stats(&open(config).await?, cmd).await,
        Some(Command::Maintenance(cmd)) => {
            super::ops_commands::maintenance(&open(config).await?, cmd).await
        }
        Some(Command::Audit(cmd)) => super::ops_commands::audit(&open(config).await?, cmd).await,
        Some(Command::Doctor(args)) => super::ops_commands::doctor(config, args).await,
        Some(Command::Completions(args)) => super::ops_commands::completions(args),
        Some(Command::Man) => super::ops_commands::man(),
    }
}

/// Opens the configured database. The embedded SQLite database is migrated on the spot;
/// a Postgres database is only ever changed by an explicit `recalliq migrate`, since the
/// web app may share it.
pub async fn open(config: &Config) -> CliResult<Store> {
    let store = Store::connect(&config.database_url).await?;
    if store.backend() == Backend::Sqlite {
        store.migrate().await?;
    } else {
        store.require_current_schema().await?;
    }
    Ok(store)
}

/// Reads a password from standard input: everything up to the first line break.
pub(super) fn read_password_stdin() -> CliResult<String> {
    let mut buf = String::new();
    std::io::stdin().read_to_string(&mut buf).map_err(|e| {
        CliError::usage(format!("cannot read the password from standard input: {e}"))
    })?;
    let password = buf.split(['\n', '\r']).next().unwrap_or("").to_string();
    if password.is_empty() {
        return Err(CliError::usage("empty password on standard input"));
    }
    Ok(password)
}

/// The tenant of `domain`, if the acting user may act in it (`--as`): a tenant user naming
/// another tenant gets the same answer as for a domain that does not exist.
pub(super) async fn tenant_by_domain(store: &Store, domain: &str) -> CliResult<Tenant> {
    let all = Actor::system().all_tenants()?;
    let t = store.tenant_by_domain(&all, domain).await?;
    let actor = super::acting::actor();
    if actor.tenant_scope(t.id).is_err() {
        return Err(crate::db::DbError::NotFound(format!(
            "tenant with domain '{}'",
            domain.trim()
        ))
        .into());
    }
    Ok(t)
}

async fn user_command(config: &Config, cmd: UserCommand) -> CliResult<u8> {
    let store = open(config).await?;
    let actor = super::acting::actor();
    // A super admin works across tenants; a tenant admin (`--as`) inside their own tenant.
    let scope = |tenant_id: Option<i32>| -> CliResult<UserScope> {
        if actor.is_super_admin() {
            return Ok(UserScope::All(actor.all_tenants()?));
        }
        let scope = match tenant_id {
            Some(id) => actor.tenant_scope(id)?,
            None => actor.own_scope()?,
        };
        Ok(UserScope::Tenant(scope))
    };
    let may_manage = |target: &str| -> CliResult<()> {
        let target: Role = target.parse().unwrap_or(Role::SuperAdmin);
        crate::domain::permissions::may_manage_user(actor.role, target)
            .map_err(|d| CliError::failed(d.to_string()))
    };
    match cmd {
        UserCommand::Create {
            username,
            email,
            role,
            tenant,
            first_name,
            last_name,
            ..
        } => {
            let role: Role = role
                .parse()
                .map_err(|e: crate::domain::UnknownValue| CliError::usage(e.to_string()))?;
            // Argument mistakes are reported before the password is read.
            match (role.needs_tenant(), &tenant) {
                (true, None) => {
                    return Err(CliError::usage(format!(
                        "role {role} needs a tenant (--tenant DOMAIN)"
                    )));
                }
                (false, Some(_)) => {
                    return Err(CliError::usage(
                        "super admins belong to no tenant: leave out --tenant",
                    ));
                }
                _ => {}
            }
            let tenant_id = match &tenant {
                Some(d) => Some(tenant_by_domain(&store, d).await?.id),
                None => None,
            };
            if !crate::domain::permissions::assignable_roles(actor.role).contains(&role) {
                return Err(CliError::failed(format!(
                    "{} is {} and may not hand out the role {role}",
                    actor.username, actor.role
                )));
            }
            let user_scope = scope(tenant_id)?;
            let password = read_password_stdin()?;
            let hash = auth::make_password_blocking(password)
                .await
                .map_err(|e| CliError::failed(e.to_string()))?;
            let new = NewUser {
                username,
                email,
                password_hash: hash,
                role,
                tenant_id,
                first_name,
                last_name,
            };
            let user = store.create_user(user_scope, &new).await?;
            println!("{}", user.id);
            Ok(0)
        }
        UserCommand::Passwd { username, .. } => {
            let user = store.user_by_username(scope(None)?, &username).await?;
            may_manage(&user.role)?;
            let password = read_password_stdin()?;
            let hash = auth::make_password_blocking(password)
                .await
                .map_err(|e| CliError::failed(e.to_string()))?;
            store
                .set_password_hash(scope(None)?, user.id, &hash)
                .await?;
            println!("password of {} changed", user.username);
            Ok(0)
        }
        UserCommand::List { tenant, json } => {
            let scope = match &tenant {
                Some(d) => {
                    let t = tenant_by_domain(&store, d).await?;
                    UserScope::Tenant(super::acting::actor().tenant_scope(t.id)?)
                }
                None => scope(None)?,
            };
            let users = collect_pages(|page| store.list_users(scope, page, None), |u| u.id).await?;
            if json {
                print_json(&users);
            } else {
                let rows: Vec<Vec<String>> = users
                    .iter()
                    .map(|u| {
                        vec![
                            u.id.to_string(),
                            u.username.clone(),
                            u.email.clone(),
                            u.role.clone(),
                            u.tenant_id
                                .map(|t| t.to_string())
                                .unwrap_or_else(|| "-".into()),
                            if u.is_active {
                                "yes".into()
                            } else {
                                "no".into()
                            },
                        ]
                    })
                    .collect();
                print_table(
                    &["ID", "USERNAME", "EMAIL", "ROLE", "TENANT", "ACTIVE"],
                    &rows,
                );
            }
            Ok(0)
        }
        UserCommand::Deactivate { username } => {
            let user = store.user_by_username(scope(None)?, &username).await?;
            may_manage(&user.role)?;
            store.deactivate_user(scope(None)?, user.id).await?;
            println!("{} deactivated", user.username);
            Ok(0)
        }
    }
}

async fn tenant_command(config: &Config, cmd: TenantCommand) -> CliResult<u8> {
    let store = open(config).await?;
    let all = || super::acting::actor().all_tenants();
    match cmd {
        TenantCommand::Create {
            name,
            domain,
            plan,
            monthly_limit,
        } => {
            let plan: Option<TenantPlan> = plan
                .map(|p| p.parse())
                .transpose()
                .map_err(|e: crate::domain::UnknownValue| CliError::usage(e.to_string()))?;
            let new = NewTenant {
                name,
                domain,
                plan,
                monthly_email_limit: monthly_limit,
                ..NewTenant::default()
            };
            let t = store.create_tenant(&all()?, &new).await?;
            println!("{}", t.id);
            Ok(0)
        }
        TenantCommand::List { json } => {
            let all = all()?;
            let tenants =
                collect_pages(|page| store.list_tenants(&all, page, None), |t| t.id).await?;
            if json {
                print_json(&tenants);
            } else {
                let rows: Vec<Vec<String>> = tenants.iter().map(tenant_row).collect();
                print_table(
                    &["ID", "DOMAIN", "NAME", "PLAN", "STATUS", "USED", "LIMIT"],
                    &rows,
                );
            }
            Ok(0)
        }
        TenantCommand::Sender(cmd) => super::contacts::sender_command(&store, cmd).await,
        TenantCommand::Purge(args) => super::data_commands::purge_command(config, args).await,
        TenantCommand::Retention(args) => {
            super::data_commands::retention_command(config, args).await
        }
        TenantCommand::Show { domain, json } => {
            let t = tenant_by_domain(&store, &domain).await?;
            if json {
                print_json(&t);
            } else {
                let fields = [
                    ("id", t.id.to_string()),
                    ("name", t.name.clone()),
                    ("domain", t.domain.clone()),
                    ("plan", t.plan.clone()),
                    ("status", t.status.clone()),
                    ("active", t.is_active.to_string()),
                    ("monthly limit", t.monthly_email_limit.to_string()),
                    ("sent this month", t.emails_sent_this_month.to_string()),
                    ("contact", t.contact_person.clone().unwrap_or_default()),
                    ("contact email", t.contact_email.clone().unwrap_or_default()),
                    (
                        "created",
                        t.created_at.map(|d| d.to_string()).unwrap_or_default(),
                    ),
                ];
                for (k, v) in fields {
                    println!("{k:<16} {v}");
                }
            }
            Ok(0)
        }
    }
}

fn tenant_row(t: &Tenant) -> Vec<String> {
    vec![
        t.id.to_string(),
        t.domain.clone(),
        t.name.clone(),
        t.plan.clone(),
        t.status.clone(),
        t.emails_sent_this_month.to_string(),
        t.monthly_email_limit.to_string(),
    ]
}

/// Walks a keyset-paginated listing to the end.
pub(super) async fn collect_pages<T, F, Fut>(
    mut fetch: F,
    id: impl Fn(&T) -> i32,
) -> CliResult<Vec<T>>
where
    F: FnMut(crate::db::Page) -> Fut,
    Fut: std::future::Future<Output = crate::db::DbResult<Vec<T>>>,
{
    const PAGE: i64 = 500;
    let mut all = Vec::new();
    let mut page = crate::db::Page::first(PAGE);
    loop {
        let rows = fetch(page).await?;
        let done = (rows.len() as i64) < PAGE;
        if let Some(last) = rows.last() {
            page = crate::db::Page::after(id(last), PAGE);
        }
        all.extend(rows);
        if done {
            return Ok(all);
        }
    }
}
