//! `recalliq logs --batch ID [--status S] [--follow] [--json|--csv]`: a batch's email logs
//! for scripts, or (on a terminal, without --json/--csv) the TUI's log viewer on that batch.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use super::args::LogsArgs;
use super::commands::open;
use super::output::{print_json, print_table};
use super::{CliError, CliResult};
use crate::config::Config;
use crate::db::{EmailLog, LogFilter, Page, Store, TenantScope};
use crate::domain::{BatchStatus, EmailStatus};

/// How often `--follow` looks for changes.
const POLL: Duration = Duration::from_millis(500);

pub async fn logs(config: &Config, args: LogsArgs, mut tui: crate::tui::Options) -> CliResult<u8> {
    let statuses = args
        .status
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.parse::<EmailStatus>()
                .map_err(|e| CliError::usage(format!("--status: {e}")))
        })
        .collect::<CliResult<Vec<_>>>()?;
    let store = open(config).await?;
    let scope = store
        .batch_scope(&super::acting::actor(), args.batch)
        .await?;
    if !args.json && !args.csv && std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
    {
        tui.open_logs = Some(args.batch);
        tui.follow_logs = args.follow;
        crate::tui::run_app(store, tui, None)
            .await
            .map_err(|e| CliError::failed(e.to_string()))?;
        return Ok(0);
    }
    let filter = LogFilter {
        statuses: statuses.clone(),
        ..LogFilter::batch(args.batch)
    };
    let mut out = Output::new(args.json, args.csv, args.follow);
    // Everything there is now, in pages.
    let started = crate::db::now();
    let mut seen: HashSet<(i32, String, i32)> = HashSet::new();
    let mut page = Page::first(5_000);
    loop {
        let rows = store.query_email_logs(scope, &filter, page).await?;
        let Some(last) = rows.last() else { break };
        page = Page::after(last.id, 5_000);
        for r in &rows {
            seen.insert((r.id, r.status.clone(), r.attempts));
        }
        out.rows(&rows)?;
    }
    if args.follow {
        follow(
            &store, scope, args.batch, &statuses, started, &mut seen, &mut out,
        )
        .await?;
    }
    out.finish()?;
    Ok(0)
}

async fn follow(
    store: &Store,
    scope: TenantScope,
    batch: i32,
    statuses: &[EmailStatus],
    mut since: chrono::NaiveDateTime,
    seen: &mut HashSet<(i32, String, i32)>,
    out: &mut Output,
) -> CliResult<()> {
    loop {
        let b = store.get_batch(scope, batch).await?;
        let finished = b.batch_status().is_ok_and(BatchStatus::is_finished);
        // A little overlap: rows written in the same instant as the last poll.
        let poll_at = crate::db::now();
        let rows = store
            .email_logs_changed_since(scope, batch, statuses, since, 100_000)
            .await?;
        let fresh: Vec<EmailLog> = rows
            .into_iter()
            .filter(|r| seen.insert((r.id, r.status.clone(), r.attempts)))
            .collect();
        out.rows(&fresh)?;
        since = poll_at - chrono::Duration::seconds(2);
        if finished {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Where rows go: a table at the end, a JSON array at the end (or JSON lines when
/// following), or CSV as they come.
struct Output {
    json: bool,
    follow: bool,
    csv: Option<csv::Writer<std::io::Stdout>>,
    buffered: Vec<EmailLog>,
}

impl Output {
    fn new(json: bool, csv: bool, follow: bool) -> Output {
        let csv = csv.then(|| {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            let _ = w.write_record(crate::csvio::EMAIL_LOG_HEADER);
            w
        });
        Output {
            json,
            follow,
            csv,
            buffered: Vec::new(),
        }
    }

    fn rows(&mut self, rows: &[EmailLog]) -> CliResult<()> {
        let io = |e: &dyn std::fmt::Display| CliError::failed(format!("cannot write output: {e}"));
        if let Some(w) = &mut self.csv {
            for r in rows {
                w.write_record(crate::csvio::email_log_fields(r))
                    .map_err(|e| io(&e))?;
            }
            w.flush().map_err(|e| io(&e))?;
        } else if self.follow {
            let mut stdout = std::io::stdout().lock();
            for r in rows {
                let line = if self.json {
                    serde_json::to_string(r).map_err(|e| io(&e))?
                } else {
                    table_row(r).join("  ")
                };
                writeln!(stdout, "{line}").map_err(|e| io(&e))?;
            }
            stdout.flush().map_err(|e| io(&e))?;
        } else {
            self.buffered.extend_from_slice(rows);
        }
        Ok(())
    }

    fn finish(&mut self) -> CliResult<()> {
        if self.csv.is_some() || self.follow {
            return Ok(());
        }
        if self.json {
            print_json(&self.buffered);
        } else {
            let rows: Vec<Vec<String>> = self.buffered.iter().map(table_row).collect();
            print_table(
                &["ID", "RECIPIENT", "STATUS", "ATTEMPTS", "SENT_AT", "REPLY"],
                &rows,
            );
        }
        Ok(())
    }
}

fn table_row(r: &EmailLog) -> Vec<String> {
    vec![
        r.id.to_string(),
        r.recipient_email.clone(),
        r.status.clone(),
        r.attempts.to_string(),
        r.sent_at
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default(),
        crate::tui::screens::logs::short_reply(r),
    ]
}
