//! The terminal user interface: terminal setup and restore (on every exit path: normal,
//! error, panic, Ctrl-C, SIGTERM, SIGHUP), logging to a file, and the event loop that
//! `select!`s over terminal input, a tick and application events and draws only when the
//! state changed. State and dispatch live in `app.rs`.

pub mod app;
pub mod event;
pub mod keymap;
pub mod screens;
pub mod theme;
pub mod widgets;

use std::io::{Write, stdout};
use std::time::{Duration, Instant};

use crossterm::event::{DisableMouseCapture, EnableMouseCapture, Event, EventStream};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Config;
use crate::db::{Actor, Store, User};
pub use app::App;
pub use event::ExternalEvent;

/// How the TUI was asked to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub user: Option<String>,
    pub readonly: bool,
    pub mouse: bool,
    pub config_dir: std::path::PathBuf,
    pub data_dir: std::path::PathBuf,
    /// Theme name (`dark`, `light`) or a theme file; `None`: theme.toml or dark.
    pub theme: Option<String>,
    /// NO_COLOR is set: draw without any colour.
    pub no_color: bool,
    /// Open the log viewer on this batch once logged in (`recalliq logs --batch ID`).
    pub open_logs: Option<i32>,
    /// ... in follow mode (`--follow`).
    pub follow_logs: bool,
    /// Run the sending engine in this process: `Some(true)` `--engine`, `Some(false)`
    /// `--no-engine`, `None` only on SQLite (the single-user case).
    pub engine: Option<bool>,
}

impl Options {
    pub fn from_cli(cli: &crate::cli::Cli, config: &Config) -> Options {
        Options {
            user: cli.user.clone(),
            readonly: cli.readonly,
            mouse: cli.mouse || config.file.mouse.unwrap_or(false),
            config_dir: config.config_dir.clone(),
            data_dir: config.data_dir.clone(),
            theme: config.file.theme.clone(),
            no_color: no_color_env(),
            open_logs: None,
            follow_logs: false,
            engine: if cli.no_engine {
                Some(false)
            } else if cli.engine {
                Some(true)
            } else {
                None
            },
        }
    }
}

/// https://no-color.org: set and not empty.
pub fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// How often the loop wakes without input (toasts fade, login countdown). Nothing is drawn
/// on a tick unless something changed.
const TICK: Duration = Duration::from_millis(500);

/// Opens the TUI on `store`; `login` skips the login screen (the demo).
pub async fn run_app(
    store: Store,
    opts: Options,
    login: Option<(User, Actor)>,
) -> color_eyre::Result<()> {
    let _log_guard = init_logging(&opts);
    crate::db::set_interface(crate::db::Interface::Tui);
    let (tx, rx) = tokio::sync::mpsc::channel::<ExternalEvent>(64);
    let mut app = App::new(store, opts.clone());
    let in_process = opts.engine.unwrap_or(store_is_sqlite(&app.store));
    if in_process {
        let engine = crate::engine::Engine::new(
            app.store.clone(),
            crate::engine::EngineConfig {
                config_dir: Some(opts.config_dir.clone()),
                ..crate::engine::EngineConfig::default()
            },
        );
        forward_engine_events(engine.subscribe(), tx.clone());
        app.attach_engine(engine);
    }
    spawn_batch_listener(app.store.clone(), tx.clone());
    app.events = Some(tx);
    if let Some((user, actor)) = login {
        app.start_session(user, actor).await;
    }
    let mut terminal = setup_terminal(opts.mouse)?;
    let _guard = RestoreGuard { mouse: opts.mouse };
    let result = event_loop(&mut terminal, &mut app, rx).await;
    drop(terminal);
    restore_terminal(opts.mouse);
    // In-flight messages are recorded before the process leaves (a confirmed quit has
    // already paused its batches; after a signal they stay running for the next engine).
    app.stop_engine().await;
    match &result {
        Ok(reason) => tracing::info!("TUI closed: {reason}"),
        Err(e) => tracing::error!("TUI failed: {e}"),
    }
    result.map(|_| ())
}

/// Runs until quit or a signal; returns why it stopped.
async fn event_loop(
    terminal: &mut Terminal<CrosstermBackend<std::io::Stdout>>,
    app: &mut App,
    mut external: tokio::sync::mpsc::Receiver<ExternalEvent>,
) -> color_eyre::Result<&'static str> {
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let size = terminal.size()?;
    app.resize(size.width, size.height).await;
    loop {
        if app.quit {
            return Ok("quit");
        }
        if app.dirty {
            terminal.draw(|f| app.draw(f))?;
            app.dirty = false;
        }
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Key(key))) => app.handle_key(key).await,
                Some(Ok(Event::Mouse(m))) => app.handle_mouse(m).await,
                Some(Ok(Event::Resize(w, h))) => {
                    terminal.autoresize()?;
                    app.resize(w, h).await;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Ok("input closed"),
            },
            _ = tick.tick() => {
                app.tick(Instant::now());
                app.live_tick().await;
                app.poll_batches(Instant::now()).await;
                app.poll_dashboard(Instant::now()).await;
            }
            Some(ev) = external.recv() => app.handle_external(ev).await,
            _ = sigterm.recv() => return Ok("SIGTERM"),
            _ = sighup.recv() => return Ok("SIGHUP"),
            _ = sigint.recv() => return Ok("SIGINT"),
        }
    }
}

/// On Postgres, forwards batch changes (NOTIFY from this or any other process, the web app
/// included) to the event loop, so status changes show at once rather than at the next
/// poll. Nothing on SQLite (the screens poll). A lost connection is retried every few
/// seconds; the screens keep polling meanwhile.
pub fn spawn_batch_listener(store: Store, tx: tokio::sync::mpsc::Sender<ExternalEvent>) {
    tokio::spawn(async move {
        let mut listener = match store.batch_listener().await {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "no batch notifications; polling only");
                return;
            }
        };
        loop {
            match listener.next().await {
                Ok(change) => {
                    if tx.send(ExternalEvent::BatchChanged(change)).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "batch notifications lost; retrying");
                    if tx.is_closed() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    });
}

fn store_is_sqlite(store: &Store) -> bool {
    store.backend() == crate::db::Backend::Sqlite
}

/// Hands the engine's events to the event loop (a lagging receiver skips to the newest:
/// progress is cumulative).
fn forward_engine_events(
    mut rx: tokio::sync::broadcast::Receiver<crate::engine::EngineEvent>,
    tx: tokio::sync::mpsc::Sender<ExternalEvent>,
) {
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if tx.send(ExternalEvent::Engine(ev)).await.is_err() {
                        break;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

fn setup_terminal(mouse: bool) -> color_eyre::Result<Terminal<CrosstermBackend<std::io::Stdout>>> {
    install_panic_hook(mouse);
    enable_raw_mode()?;
    let mut out = stdout();
    if let Err(e) = execute!(out, EnterAlternateScreen) {
        restore_terminal(mouse);
        return Err(e.into());
    }
    if mouse {
        let _ = execute!(out, EnableMouseCapture);
    }
    match Terminal::new(CrosstermBackend::new(out)) {
        Ok(t) => Ok(t),
        Err(e) => {
            restore_terminal(mouse);
            Err(e.into())
        }
    }
}

/// Leaves the alternate screen and raw mode. Safe to call more than once and when the
/// terminal is gone (a dropped SSH connection): errors are ignored.
pub fn restore_terminal(mouse: bool) {
    let mut out = stdout();
    if mouse {
        let _ = execute!(out, DisableMouseCapture);
    }
    let _ = execute!(out, LeaveAlternateScreen, crossterm::cursor::Show);
    let _ = disable_raw_mode();
    let _ = out.flush();
}

/// Restores the terminal when the loop is left by `?` or unwinding.
struct RestoreGuard {
    mouse: bool,
}

impl Drop for RestoreGuard {
    fn drop(&mut self) {
        restore_terminal(self.mouse);
    }
}

fn install_panic_hook(mouse: bool) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal(mouse);
        tracing::error!("panic: {info}");
        previous(info);
    }));
}

/// Logs go to `recalliq.log` in the data dir, never to the screen. `RUST_LOG` filters
/// (default: info). Returns the guard that flushes the file on exit.
fn init_logging(opts: &Options) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    if std::fs::create_dir_all(&opts.data_dir).is_err() {
        return None;
    }
    let appender = tracing_appender::rolling::never(&opts.data_dir, "recalliq.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ok = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .is_ok();
    ok.then_some(guard)
}
