//! Handlers of `group`, `contact`, `suppress` and `tenant sender`: the scriptable side of
//! contact data. Imports show a preview and a summary before anything is written, and are
//! one transaction: all or nothing unless `--skip-invalid`.

use std::io::{IsTerminal, Write};

use serde_json::{Map, Value};

use super::args::{ContactCommand, GroupCommand, SenderCommand, SuppressCommand};
use super::commands::{collect_pages, tenant_by_domain};
use super::output::{print_json, print_table};
use super::{CliError, CliResult};
use crate::csvio::{self, ParsedCsv};
use crate::db::{Group, NewContact, Page, Store, TenantScope};

async fn scope_of(store: &Store, domain: &str) -> CliResult<TenantScope> {
    let t = tenant_by_domain(store, domain).await?;
    Ok(super::acting::actor().tenant_scope(t.id)?)
}

fn read_file(path: &std::path::Path) -> CliResult<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| CliError::failed(format!("cannot read {}: {e}", path.display())))
}

fn parse_csv(path: &std::path::Path) -> CliResult<ParsedCsv> {
    let bytes = read_file(path)?;
    csvio::parse(&bytes)
        .map_err(|e| CliError::failed(format!("{}: {e}; nothing imported", path.display())))
}

/// Asks on the terminal; without one, refuses unless `--yes` was given.
fn confirm(question: &str, yes: bool) -> CliResult<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(format!(
            "{question}: pass --yes to confirm without a terminal"
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(CliError::failed("not confirmed; nothing changed"))
    }
}

pub(super) fn parse_vars(vars: &[String]) -> CliResult<Option<Value>> {
    if vars.is_empty() {
        return Ok(None);
    }
    let mut map = Map::new();
    for kv in vars {
        let (k, v) = kv
            .split_once('=')
            .filter(|(k, _)| !k.trim().is_empty())
            .ok_or_else(|| CliError::usage(format!("--var expects KEY=VALUE, got '{kv}'")))?;
        map.insert(k.trim().to_string(), Value::String(v.to_string()));
    }
    Ok(Some(Value::Object(map)))
}

pub async fn group_command(store: &Store, cmd: GroupCommand) -> CliResult<u8> {
    match cmd {
        GroupCommand::Create {
            tenant,
            name,
            description,
        } => {
            let scope = scope_of(store, &tenant).await?;
            let g = store
                .create_group(scope, &name, description.as_deref())
                .await?;
            println!("{}", g.id);
        }
        GroupCommand::List { tenant, json } => {
            let scope = scope_of(store, &tenant).await?;
            let groups = store.group_counts(scope).await?;
            if json {
                print_json(&groups);
            } else {
                let rows: Vec<Vec<String>> = groups
                    .iter()
                    .map(|g| {
                        vec![
                            g.id.to_string(),
                            g.name.clone(),
                            g.email_count.to_string(),
                            g.active_emails.to_string(),
                            g.description.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                print_table(&["ID", "NAME", "CONTACTS", "ACTIVE", "DESCRIPTION"], &rows);
            }
        }
        GroupCommand::Show {
            tenant,
            group,
            json,
        } => {
            let scope = scope_of(store, &tenant).await?;
            let g = store.find_group(scope, &group).await?;
            let total = store.count_contacts(scope, g.id, None).await?;
            if json {
                let mut v =
                    serde_json::to_value(&g).map_err(|e| CliError::failed(e.to_string()))?;
                v["contact_count"] = Value::from(total);
                print_json(&v);
            } else {
                println!("id           {}", g.id);
                println!("name         {}", g.name);
                println!("description  {}", g.description.clone().unwrap_or_default());
                println!("active       {}", g.is_active);
                println!("contacts     {total}");
            }
        }
        GroupCommand::Deactivate { tenant, group } => {
            let scope = scope_of(store, &tenant).await?;
            let g = store.find_group(scope, &group).await?;
            store.set_group_active(scope, g.id, false).await?;
            println!("group '{}' deactivated", g.name);
        }
        GroupCommand::Delete { tenant, group, yes } => {
            let scope = scope_of(store, &tenant).await?;
            let g = store.find_group(scope, &group).await?;
            let n = store.count_contacts(scope, g.id, None).await?;
            confirm(
                &format!("Delete group '{}' and its {n} contacts?", g.name),
                yes,
            )?;
            store.delete_group(scope, g.id).await?;
            println!("group '{}' deleted with {n} contacts", g.name);
        }
        GroupCommand::Import {
            tenant,
            group,
            file,
            dry_run,
            skip_invalid,
            create,
            json,
        } => {
            let scope = scope_of(store, &tenant).await?;
            let parsed = parse_csv(&file)?;
            let g = match store.find_group(scope, &group).await {
                Ok(g) => Some(g),
                Err(crate::db::DbError::NotFound(_)) if create => None,
                Err(e) => return Err(e.into()),
            };
            return import(
                store,
                scope,
                g,
                &group,
                &parsed,
                dry_run,
                skip_invalid,
                json,
            )
            .await;
        }
        GroupCommand::Export {
            tenant,
            group,
            output,
        } => {
            let scope = scope_of(store, &tenant).await?;
            let g = store.find_group(scope, &group).await?;
            let contacts = store.all_contacts(scope, g.id).await?;
            let rows: Vec<_> = contacts
                .into_iter()
                .map(|c| (c.email, c.name, c.variables.map(|j| j.0)))
                .collect();
            let result = match &output {
                Some(path) => std::fs::File::create(path)
                    .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))
                    .and_then(|f| {
                        csvio::write_contacts(std::io::BufWriter::new(f), &rows)
                            .map_err(|e| CliError::failed(e.to_string()))
                    }),
                None => csvio::write_contacts(std::io::stdout().lock(), &rows)
                    .map_err(|e| CliError::failed(e.to_string())),
            };
            result?;
            if let Some(path) = output {
                eprintln!("exported {} contacts to {}", rows.len(), path.display());
            }
        }
    }
    Ok(0)
}

#[derive(serde::Serialize)]
struct ImportSummary<'a> {
    group: &'a str,
    dry_run: bool,
    committed: bool,
    rows: usize,
    new: usize,
    updated: usize,
    duplicates: &'a [csvio::DuplicateRow],
    invalid: &'a [csvio::InvalidRow],
    encoding_note: Option<&'a str>,
}

#[allow(clippy::too_many_arguments)]
async fn import(
    store: &Store,
    scope: TenantScope,
    group: Option<Group>,
    group_name: &str,
    parsed: &ParsedCsv,
    dry_run: bool,
    skip_invalid: bool,
    json: bool,
) -> CliResult<u8> {
    let known = match &group {
        Some(g) => store.contact_ids_by_email(scope, g.id).await?,
        None => Default::default(),
    };
    let updated = parsed
        .rows
        .iter()
        .filter(|r| known.contains_key(&r.email.to_lowercase()))
        .count();
    let display_name = group
        .as_ref()
        .map_or(group_name.to_string(), |g| g.name.clone());
    let mut summary = ImportSummary {
        group: &display_name,
        dry_run,
        committed: false,
        rows: parsed.rows.len(),
        new: parsed.rows.len() - updated,
        updated,
        duplicates: &parsed.duplicates,
        invalid: &parsed.invalid,
        encoding_note: parsed.encoding_note.as_deref(),
    };
    if !json {
        print_preview(parsed);
    }
    let blocked = !parsed.invalid.is_empty() && !skip_invalid;
    if !dry_run && !blocked {
        let g = match group {
            Some(g) => g,
            None => store.create_group(scope, group_name, None).await?,
        };
        let total = parsed.rows.len();
        let show_progress = !json && std::io::stderr().is_terminal() && total >= 5_000;
        let mut progress = move |done: usize| {
            if show_progress {
                let width = 30;
                let filled = done * width / total.max(1);
                eprint!(
                    "\r[{}{}] {done}/{total}",
                    "#".repeat(filled),
                    " ".repeat(width - filled)
                );
            }
        };
        let counts = store
            .import_contacts(scope, g.id, &parsed.rows, &mut progress)
            .await?;
        if show_progress {
            eprintln!();
        }
        summary.new = counts.new;
        summary.updated = counts.updated;
        summary.committed = true;
    }
    if json {
        print_json(&summary);
    } else {
        print_summary(&summary);
    }
    if blocked && !dry_run {
        return Err(CliError::failed(format!(
            "nothing imported: {} invalid row(s); fix them or pass --skip-invalid",
            parsed.invalid.len()
        )));
    }
    Ok(0)
}

fn print_preview(parsed: &ParsedCsv) {
    println!("Preview (first rows):");
    let rows: Vec<Vec<String>> = parsed
        .rows
        .iter()
        .take(5)
        .map(|r| {
            let vars = r
                .variables
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_default();
            let vars: String = vars.chars().take(60).collect();
            vec![
                r.line.to_string(),
                r.email.clone(),
                r.name.clone().unwrap_or_default(),
                vars,
            ]
        })
        .collect();
    print_table(&["LINE", "EMAIL", "NAME", "VARIABLES"], &rows);
    println!();
}

fn print_summary(s: &ImportSummary<'_>) {
    if let Some(note) = s.encoding_note {
        println!("note: {note}");
    }
    let verb = if s.committed {
        "imported into"
    } else {
        "would import into"
    };
    println!("{verb} '{}': {} new, {} updated", s.group, s.new, s.updated);
    println!("duplicates in the file: {}", s.duplicates.len());
    for d in s.duplicates.iter().take(20) {
        println!(
            "  line {}: {} (first on line {})",
            d.line, d.email, d.first_line
        );
    }
    println!("invalid rows: {}", s.invalid.len());
    for i in s.invalid.iter().take(50) {
        println!("  line {}: {}", i.line, i.reason);
    }
    if s.invalid.len() > 50 {
        println!("  ... and {} more", s.invalid.len() - 50);
    }
    if s.dry_run {
        println!("dry run: nothing written");
    }
}

pub async fn contact_command(store: &Store, cmd: ContactCommand) -> CliResult<u8> {
    match cmd {
        ContactCommand::Add {
            tenant,
            group,
            email,
            name,
            vars,
        } => {
            let scope = scope_of(store, &tenant).await?;
            let g = store.find_group(scope, &group).await?;
            let variables = parse_vars(&vars)?;
            let c = store
                .add_contact(
                    scope,
                    g.id,
                    &NewContact {
                        email,
                        name,
                        variables,
                    },
                )
                .await?;
            println!("{}", c.id);
        }
        ContactCommand::List {
            tenant,
            group,
            search,
            json,
        } => {
            let scope = scope_of(store, &tenant).await?;
            let g = store.find_group(scope, &group).await?;
            let contacts = collect_pages(
                |page: Page| store.list_contacts(scope, g.id, page, search.as_deref()),
                |c| c.id,
            )
            .await?;
            if json {
                print_json(&contacts);
            } else {
                let rows: Vec<Vec<String>> = contacts
                    .iter()
                    .map(|c| {
                        vec![
                            c.id.to_string(),
                            c.email.clone(),
                            c.name.clone().unwrap_or_default(),
                            if c.is_active {
                                "yes".into()
                            } else {
                                "no".into()
                            },
                            c.variables
                                .as_ref()
                                .map(|v| v.0.to_string())
                                .unwrap_or_default(),
                        ]
                    })
                    .collect();
                print_table(&["ID", "EMAIL", "NAME", "ACTIVE", "VARIABLES"], &rows);
            }
        }
        ContactCommand::Deactivate {
            tenant,
            group,
            email,
        } => {
            let scope = scope_of(store, &tenant).await?;
            let g = store.find_group(scope, &group).await?;
            let ids = store.contact_ids_by_email(scope, g.id).await?;
            let id = ids.get(&email.trim().to_lowercase()).ok_or_else(|| {
                CliError::failed(format!("{} is not in group '{}'", email.trim(), g.name))
            })?;
            store.set_contact_active(scope, *id, false).await?;
            println!("{} deactivated in '{}'", email.trim(), g.name);
        }
    }
    Ok(0)
}

pub async fn suppress_command(store: &Store, cmd: SuppressCommand) -> CliResult<u8> {
    match cmd {
        SuppressCommand::Add {
            tenant,
            emails,
            reason,
        } => {
            let scope = scope_of(store, &tenant).await?;
            for e in &emails {
                let added = store.suppress(scope, e, &reason, None, None).await?;
                println!(
                    "{} {}",
                    e.trim(),
                    if added {
                        "suppressed"
                    } else {
                        "was already suppressed"
                    }
                );
            }
        }
        SuppressCommand::Remove { tenant, emails } => {
            let scope = scope_of(store, &tenant).await?;
            let mut missing = 0;
            for e in &emails {
                if store.unsuppress(scope, e).await? {
                    println!("{} no longer suppressed", e.trim());
                } else {
                    eprintln!("{} was not suppressed", e.trim());
                    missing += 1;
                }
            }
            if missing > 0 {
                return Ok(1);
            }
        }
        SuppressCommand::List { tenant, json } => {
            let scope = scope_of(store, &tenant).await?;
            let rows = collect_pages(
                |page: Page| store.list_suppressions(scope, page, None),
                |s| s.id,
            )
            .await?;
            if json {
                print_json(&rows);
            } else {
                let table: Vec<Vec<String>> = rows
                    .iter()
                    .map(|s| {
                        vec![
                            s.email.clone(),
                            s.reason.clone(),
                            s.source_batch_id.map(|b| b.to_string()).unwrap_or_default(),
                            s.created_at.format("%Y-%m-%d %H:%M").to_string(),
                        ]
                    })
                    .collect();
                print_table(&["EMAIL", "REASON", "BATCH", "SINCE"], &table);
            }
        }
        SuppressCommand::Import {
            tenant,
            file,
            reason,
        } => {
            let scope = scope_of(store, &tenant).await?;
            let parsed = parse_csv(&file)?;
            let mut added = 0;
            for r in &parsed.rows {
                if store
                    .suppress(scope, &r.email, &reason, Some("csv import"), None)
                    .await?
                {
                    added += 1;
                }
            }
            println!(
                "{added} suppressed, {} already were, {} invalid rows skipped",
                parsed.rows.len() - added,
                parsed.invalid.len()
            );
        }
    }
    Ok(0)
}

pub async fn sender_command(store: &Store, cmd: SenderCommand) -> CliResult<u8> {
    match cmd {
        SenderCommand::Add {
            tenant,
            email,
            name,
        } => {
            let scope = scope_of(store, &tenant).await?;
            let e = store
                .add_tenant_email(scope, &email, name.as_deref())
                .await?;
            println!("{}", e.id);
        }
        SenderCommand::List { tenant, json } => {
            let scope = scope_of(store, &tenant).await?;
            let rows = store.list_tenant_emails(scope).await?;
            if json {
                print_json(&rows);
            } else {
                let table: Vec<Vec<String>> = rows
                    .iter()
                    .map(|e| {
                        vec![
                            e.email.clone(),
                            e.name.clone().unwrap_or_default(),
                            if e.is_active {
                                "yes".into()
                            } else {
                                "no".into()
                            },
                        ]
                    })
                    .collect();
                print_table(&["EMAIL", "NAME", "ACTIVE"], &table);
            }
        }
        SenderCommand::Deactivate { tenant, email } => {
            let scope = scope_of(store, &tenant).await?;
            let rows = store.list_tenant_emails(scope).await?;
            let e = rows
                .iter()
                .find(|e| e.email.eq_ignore_ascii_case(email.trim()))
                .ok_or_else(|| {
                    CliError::failed(format!(
                        "{} is not a sender address of {tenant}",
                        email.trim()
                    ))
                })?;
            store.set_tenant_email_active(scope, e.id, false).await?;
            println!("{} deactivated", e.email);
        }
    }
    Ok(0)
}
