//! The command line: clap definitions (`args.rs`), the handlers (`commands.rs`) and plain
//! table / JSON output (`output.rs`). Every error leaves as one line with an exit code:
//! 1 for a refused operation, 2 for usage, configuration or an unreachable database.

mod acting;
mod args;
mod batch_commands;
mod bounce_commands;
mod commands;
mod contacts;
mod data_args;
mod data_commands;
mod dkim_commands;
mod logs_command;
mod mail_commands;
mod ops_args;
mod ops_audit;
mod ops_commands;
mod output;

pub use args::Cli;
pub use commands::run;

/// An error on its way out of the process.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn failed(message: impl Into<String>) -> Self {
        CliError {
            code: 1,
            message: message.into(),
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<crate::db::DbError> for CliError {
    fn from(e: crate::db::DbError) -> Self {
        let code = match e {
            crate::db::DbError::Connect { .. } => 2,
            _ => 1,
        };
        CliError {
            code,
            message: e.to_string(),
        }
    }
}

impl From<crate::config::ConfigError> for CliError {
    fn from(e: crate::config::ConfigError) -> Self {
        CliError::usage(e.to_string())
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;

/// A stop flag that turns true on Ctrl-C (SIGINT) or SIGTERM: long-running commands
/// (`worker`, `bounces watch`, `unsubscribe serve`) finish their current step and exit.
fn stop_on_signal() -> tokio::sync::watch::Receiver<bool> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        let _ = stop_tx.send(true);
    });
    stop_rx
}
