//! Events the loop reacts to besides terminal input: ticks and application events (engine
//! progress later), and the internal events components push instead of calling each other.

use crate::db::Tenant;
use crate::tui::keymap::{Cmd, ScreenId};
use crate::tui::widgets::toast::Toast;

/// Internal events: pushed by handlers, drained by the app after each input.
#[derive(Debug, Clone)]
pub enum AppEvent {
    Toast(Toast),
    /// Reload the data of a screen (after a write, a filter change, a switch).
    Reload(ScreenId),
    Goto(ScreenId),
    /// Run a command as if its key was pressed (the palette does this).
    Run(Cmd),
    /// Look at one tenant (`None`: all tenants).
    SwitchTenant(Option<Box<Tenant>>),
    /// Open the log viewer on one batch's email log (`l` on the batches screen).
    OpenLogViewer {
        batch_id: i32,
    },
}

/// Events from outside the UI (the sending engine, later) delivered over a channel.
#[derive(Debug, Clone)]
pub enum ExternalEvent {
    /// Something changed in the data shown; reload the current screen.
    DataChanged,
    /// A CSV import wrote `done` of `total` rows.
    ImportProgress { done: usize, total: usize },
    /// A CSV import finished (all or nothing).
    ImportDone(Result<crate::db::ImportCounts, String>),
    /// Progress or a status change from the engine running in this process.
    Engine(crate::engine::EngineEvent),
    /// A batch changed in the database (Postgres NOTIFY: any process, the web app too).
    BatchChanged(crate::db::BatchChange),
    /// The composer's background review.
    Review(ReviewEvent),
}

/// What the composer's background review reports; `token` names the review (a cancelled
/// one's events are ignored).
#[derive(Debug, Clone)]
pub enum ReviewEvent {
    Progress {
        token: u64,
        seen: i64,
    },
    Done {
        token: u64,
        result: Result<Box<crate::engine::review::Review>, String>,
    },
}
