//! The one command registry: every command's id, default keys, description, the screens it
//! belongs to and whether it writes. The footer, the `?` help and the `:` palette are all
//! generated from it, so they cannot drift from what the keys do. `keys.toml` in the config
//! dir rebinds commands by id: `quit = "ctrl-q"` or `down = ["j", "down"]`.

use std::collections::HashMap;
use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::domain::permissions::Action as Perm;

/// The screens of the app, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScreenId {
    Dashboard,
    Tenants,
    Users,
    Groups,
    /// The contacts of the group opened from Groups (not a tab of its own).
    Contacts,
    Suppression,
    Templates,
    Smtp,
    /// The template editor (opened from Templates; not a tab).
    Editor,
    Batches,
    /// One batch opened from Batches (not a tab).
    BatchDetail,
    /// The batch composer and its review page (opened from Batches; not a tab).
    Composer,
    /// The live log viewer and failed-recipient triage.
    Logs,
    /// The audit log (tab `0`).
    Audit,
    /// The tenant's DKIM keys and DNS records (opened from SMTP; not a tab).
    Dkim,
}

impl ScreenId {
    pub const ALL: [ScreenId; 10] = [
        ScreenId::Dashboard,
        ScreenId::Tenants,
        ScreenId::Users,
        ScreenId::Groups,
        ScreenId::Suppression,
        ScreenId::Templates,
        ScreenId::Smtp,
        ScreenId::Batches,
        ScreenId::Logs,
        ScreenId::Audit,
    ];

    pub fn title(self) -> &'static str {
        match self {
            ScreenId::Dashboard => "Dashboard",
            ScreenId::Tenants => "Tenants",
            ScreenId::Users => "Users",
            ScreenId::Groups => "Groups",
            ScreenId::Contacts => "Contacts",
            ScreenId::Suppression => "Suppression",
            ScreenId::Templates => "Templates",
            ScreenId::Smtp => "SMTP",
            ScreenId::Editor => "Editor",
            ScreenId::Logs => "Logs",
            ScreenId::Audit => "Audit",
            ScreenId::Batches => "Batches",
            ScreenId::BatchDetail => "Batch",
            ScreenId::Composer => "Composer",
            ScreenId::Dkim => "DKIM",
        }
    }

    /// The short name in the tab bar when the terminal is narrow.
    pub fn short_title(self) -> &'static str {
        match self {
            ScreenId::Dashboard => "Dash",
            ScreenId::Tenants => "Tenants",
            ScreenId::Users => "Users",
            ScreenId::Groups => "Groups",
            ScreenId::Suppression => "Supp",
            ScreenId::Templates => "Tmpl",
            ScreenId::Smtp => "SMTP",
            ScreenId::Batches => "Batch",
            other => other.title(),
        }
    }
}

/// Every command the user can give. Popups and text inputs handle their own keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmd {
    Quit,
    Help,
    Palette,
    NextScreen,
    PrevScreen,
    GotoDashboard,
    GotoTenants,
    GotoUsers,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    Enter,
    Back,
    Filter,
    Refresh,
    Create,
    Edit,
    ToggleActive,
    ResetPassword,
    SwitchTenant,
    AllTenants,
    Logout,
    GotoGroups,
    GotoSuppression,
    Delete,
    Tag,
    Copy,
    Move,
    Export,
    Import,
    GotoTemplates,
    Duplicate,
    OpenEditor,
    Save,
    NextField,
    PrevField,
    Undo,
    Redo,
    Find,
    FindNext,
    ToggleRaw,
    NextGroup,
    PrevContact,
    NextContact,
    CloseEditor,
    GotoSmtp,
    TestConnection,
    GotoBatches,
    StartBatch,
    PauseBatch,
    ResumeBatch,
    CancelBatch,
    RetryFailed,
    /// Ask the app to open the log viewer for a batch.
    OpenLogs,
    GotoAudit,
    ResetUsage,
    RecountUsage,
    CleanLogs,
    GotoLogs,
    /// Commands of the log viewer (`app/logs_ops.rs`).
    Logs(LogCmd),
    /// Commands of the DKIM keys screen (`app/dkim_ops.rs`).
    Dkim(DkimCmd),
}

/// The DKIM keys screen's own commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DkimCmd {
    /// Open the DKIM keys of the tenant (from SMTP).
    Open,
    Generate,
    Import,
    Rotate,
    /// Copy the selected domain's DNS records to the clipboard (OSC 52).
    Copy,
}

/// The log viewer's own commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogCmd {
    Follow,
    /// Toggle one status in the filter; `None` clears the status filter (all).
    Status(Option<crate::domain::EmailStatus>),
    ReplyClass,
    DateRange,
    Sort,
    Reverse,
    Detail,
    ExecPane,
    PickBatch,
    Tag,
    TagAll,
    Untag,
    Retry,
    Suppress,
    Deactivate,
    Export,
    CopyAddresses,
}

/// Where a command applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    Everywhere,
    Tables,
    Only(ScreenId),
}

/// One entry of the registry.
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    pub cmd: Cmd,
    /// Stable name used in keys.toml and the palette.
    pub id: &'static str,
    pub keys: &'static [&'static str],
    pub description: &'static str,
    pub place: Where,
    /// Refused under `--readonly`.
    pub writes: bool,
    /// What the permission matrix must allow.
    pub needs: Option<Perm>,
    /// Shown in the footer (the rest only in help and the palette).
    pub footer: bool,
}

const fn spec(
    cmd: Cmd,
    id: &'static str,
    keys: &'static [&'static str],
    description: &'static str,
    place: Where,
) -> CommandSpec {
    CommandSpec {
        cmd,
        id,
        keys,
        description,
        place,
        writes: false,
        needs: None,
        footer: false,
    }
}

const fn shown(mut s: CommandSpec) -> CommandSpec {
    s.footer = true;
    s
}

const fn writes(mut s: CommandSpec, needs: Perm) -> CommandSpec {
    s.writes = true;
    s.needs = Some(needs);
    s
}

use crate::domain::EmailStatus as Es;
use ScreenId::{
    BatchDetail, Batches, Composer, Contacts, Dkim, Editor, Groups, Logs, Smtp, Suppression,
    Templates, Tenants, Users,
};
use Where::{Everywhere, Only, Tables};

/// The registry, in the order help lists it.
pub const COMMANDS: &[CommandSpec] = &[
    shown(spec(
        Cmd::Quit,
        "quit",
        &["q", "ctrl-c"],
        "quit",
        Everywhere,
    )),
    shown(spec(Cmd::Help, "help", &["?"], "help", Everywhere)),
    shown(spec(
        Cmd::Palette,
        "palette",
        &[":"],
        "commands",
        Everywhere,
    )),
    shown(spec(
        Cmd::NextScreen,
        "next-screen",
        &["tab"],
        "next screen",
        Everywhere,
    )),
    spec(
        Cmd::PrevScreen,
        "prev-screen",
        &["backtab"],
        "previous screen",
        Everywhere,
    ),
    spec(
        Cmd::GotoDashboard,
        "dashboard",
        &["1"],
        "go to dashboard",
        Everywhere,
    ),
    spec(
        Cmd::GotoTenants,
        "tenants",
        &["2"],
        "go to tenants",
        Everywhere,
    ),
    spec(Cmd::GotoUsers, "users", &["3"], "go to users", Everywhere),
    spec(Cmd::Up, "up", &["k", "up"], "move up", Tables),
    spec(Cmd::Down, "down", &["j", "down"], "move down", Tables),
    spec(Cmd::PageUp, "page-up", &["pageup"], "page up", Tables),
    spec(
        Cmd::PageDown,
        "page-down",
        &["pagedown"],
        "page down",
        Tables,
    ),
    spec(Cmd::Home, "home", &["home", "g"], "first row", Tables),
    spec(Cmd::End, "end", &["end", "G"], "last row", Tables),
    spec(
        Cmd::Back,
        "back",
        &["esc"],
        "back / clear filter",
        Everywhere,
    ),
    shown(spec(Cmd::Filter, "filter", &["/"], "filter", Tables)),
    spec(Cmd::Refresh, "refresh", &["ctrl-r"], "reload", Everywhere),
    shown(writes(
        spec(
            Cmd::Create,
            "new-tenant",
            &["n"],
            "new tenant",
            Only(Tenants),
        ),
        Perm::ManageTenants,
    )),
    shown(writes(
        spec(
            Cmd::Edit,
            "edit-tenant",
            &["e"],
            "edit tenant",
            Only(Tenants),
        ),
        Perm::ManageTenants,
    )),
    shown(writes(
        spec(Cmd::Create, "new-user", &["n"], "new user", Only(Users)),
        Perm::ManageUsers,
    )),
    shown(writes(
        spec(Cmd::Edit, "edit-user", &["e"], "edit role", Only(Users)),
        Perm::ManageUsers,
    )),
    shown(writes(
        spec(
            Cmd::ToggleActive,
            "toggle-active",
            &["s"],
            "suspend/activate",
            Only(Tenants),
        ),
        Perm::ManageTenants,
    )),
    shown(writes(
        spec(
            Cmd::ToggleActive,
            "deactivate",
            &["d"],
            "deactivate",
            Only(Users),
        ),
        Perm::ManageUsers,
    )),
    shown(writes(
        spec(
            Cmd::ResetPassword,
            "reset-password",
            &["p"],
            "reset password",
            Only(Users),
        ),
        Perm::ManageUsers,
    )),
    CommandSpec {
        needs: Some(Perm::SwitchTenant),
        footer: true,
        ..spec(
            Cmd::SwitchTenant,
            "switch-tenant",
            &["enter"],
            "use tenant",
            Only(Tenants),
        )
    },
    CommandSpec {
        needs: Some(Perm::SwitchTenant),
        ..spec(
            Cmd::AllTenants,
            "all-tenants",
            &["a"],
            "view all tenants",
            Only(Tenants),
        )
    },
    spec(Cmd::Enter, "open", &["enter"], "details", Tables),
    spec(Cmd::Logout, "logout", &["ctrl-l"], "log out", Everywhere),
    // Groups, contacts, suppression.
    spec(
        Cmd::GotoGroups,
        "groups",
        &["4"],
        "go to groups",
        Everywhere,
    ),
    spec(
        Cmd::GotoSuppression,
        "suppression",
        &["5"],
        "go to suppression list",
        Everywhere,
    ),
    shown(spec(
        Cmd::Enter,
        "open-group",
        &["enter"],
        "contacts",
        Only(Groups),
    )),
    shown(writes(
        spec(Cmd::Create, "new-group", &["n"], "new group", Only(Groups)),
        Perm::EditGroups,
    )),
    shown(writes(
        spec(Cmd::Edit, "edit-group", &["e"], "rename", Only(Groups)),
        Perm::EditGroups,
    )),
    shown(writes(
        spec(
            Cmd::ToggleActive,
            "toggle-group",
            &["d"],
            "deactivate/activate",
            Only(Groups),
        ),
        Perm::EditGroups,
    )),
    shown(writes(
        spec(Cmd::Delete, "delete-group", &["x"], "delete", Only(Groups)),
        Perm::EditGroups,
    )),
    shown(writes(
        spec(
            Cmd::Create,
            "new-contact",
            &["n"],
            "add contact",
            Only(Contacts),
        ),
        Perm::EditContacts,
    )),
    shown(writes(
        spec(Cmd::Edit, "edit-contact", &["e"], "edit", Only(Contacts)),
        Perm::EditContacts,
    )),
    writes(
        spec(
            Cmd::ToggleActive,
            "toggle-contact",
            &["d"],
            "deactivate/activate contact",
            Only(Contacts),
        ),
        Perm::EditContacts,
    ),
    writes(
        spec(
            Cmd::Delete,
            "delete-contact",
            &["x"],
            "delete contact",
            Only(Contacts),
        ),
        Perm::EditContacts,
    ),
    shown(spec(Cmd::Tag, "tag", &["space"], "tag", Only(Contacts))),
    shown(writes(
        spec(Cmd::Copy, "copy-contacts", &["c"], "copy", Only(Contacts)),
        Perm::EditContacts,
    )),
    shown(writes(
        spec(Cmd::Move, "move-contacts", &["m"], "move", Only(Contacts)),
        Perm::EditContacts,
    )),
    shown(writes(
        spec(
            Cmd::Import,
            "import-csv",
            &["i"],
            "import CSV",
            Only(Contacts),
        ),
        Perm::EditContacts,
    )),
    spec(
        Cmd::Export,
        "export-csv",
        &["E"],
        "export to CSV",
        Only(Contacts),
    ),
    shown(writes(
        spec(
            Cmd::Create,
            "new-suppression",
            &["n"],
            "suppress address",
            Only(Suppression),
        ),
        Perm::EditContacts,
    )),
    shown(writes(
        spec(
            Cmd::Delete,
            "remove-suppression",
            &["x"],
            "remove",
            Only(Suppression),
        ),
        Perm::EditContacts,
    )),
    spec(
        Cmd::GotoTemplates,
        "templates",
        &["6"],
        "go to templates",
        Everywhere,
    ),
    shown(writes(
        spec(
            Cmd::Create,
            "new-template",
            &["n"],
            "new template",
            Only(Templates),
        ),
        Perm::EditTemplates,
    )),
    shown(writes(
        spec(
            Cmd::Duplicate,
            "duplicate-template",
            &["c"],
            "duplicate",
            Only(Templates),
        ),
        Perm::EditTemplates,
    )),
    shown(writes(
        spec(
            Cmd::ToggleActive,
            "toggle-template",
            &["d"],
            "deactivate/activate",
            Only(Templates),
        ),
        Perm::EditTemplates,
    )),
    shown(spec(
        Cmd::OpenEditor,
        "edit-template",
        &["enter"],
        "edit",
        Only(Templates),
    )),
    shown(writes(
        spec(
            Cmd::Save,
            "save-template",
            &["ctrl-s"],
            "save",
            Only(Editor),
        ),
        Perm::EditTemplates,
    )),
    shown(spec(
        Cmd::NextField,
        "next-field",
        &["tab"],
        "next field",
        Only(Editor),
    )),
    spec(
        Cmd::PrevField,
        "prev-field",
        &["backtab"],
        "previous field",
        Only(Editor),
    ),
    shown(spec(Cmd::Undo, "undo", &["ctrl-z"], "undo", Only(Editor))),
    shown(spec(Cmd::Redo, "redo", &["ctrl-y"], "redo", Only(Editor))),
    shown(spec(Cmd::Find, "find", &["ctrl-f"], "find", Only(Editor))),
    spec(
        Cmd::FindNext,
        "find-next",
        &["f3"],
        "find next",
        Only(Editor),
    ),
    shown(spec(
        Cmd::ToggleRaw,
        "toggle-raw",
        &["ctrl-t"],
        "raw/text HTML",
        Only(Editor),
    )),
    shown(spec(
        Cmd::NextGroup,
        "preview-group",
        &["alt-g"],
        "preview group",
        Only(Editor),
    )),
    shown(spec(
        Cmd::PrevContact,
        "prev-contact",
        &["alt-["],
        "prev contact",
        Only(Editor),
    )),
    shown(spec(
        Cmd::NextContact,
        "next-contact",
        &["alt-]"],
        "next contact",
        Only(Editor),
    )),
    spec(Cmd::Help, "editor-help", &["f1"], "help", Only(Editor)),
    shown(spec(
        Cmd::CloseEditor,
        "close-editor",
        &["esc"],
        "close",
        Only(Editor),
    )),
    spec(
        Cmd::GotoSmtp,
        "smtp",
        &["7"],
        "go to SMTP settings",
        Everywhere,
    ),
    // First on SMTP, so the footer shows it at 120 columns.
    shown(CommandSpec {
        needs: Some(Perm::ManageSmtp),
        ..spec(
            Cmd::Dkim(DkimCmd::Open),
            "dkim-keys",
            &["D"],
            "DKIM keys",
            Only(Smtp),
        )
    }),
    shown(writes(
        spec(Cmd::Edit, "edit-smtp", &["e"], "edit settings", Only(Smtp)),
        Perm::ManageSmtp,
    )),
    shown(CommandSpec {
        needs: Some(Perm::ManageSmtp),
        ..spec(
            Cmd::TestConnection,
            "test-connection",
            &["t"],
            "test connection",
            Only(Smtp),
        )
    }),
    shown(writes(
        spec(
            Cmd::Create,
            "new-sender",
            &["n"],
            "new sender address",
            Only(Smtp),
        ),
        Perm::ManageSmtp,
    )),
    shown(writes(
        spec(
            Cmd::ToggleActive,
            "toggle-sender",
            &["d"],
            "deactivate/activate sender",
            Only(Smtp),
        ),
        Perm::ManageSmtp,
    )),
    spec(
        Cmd::Up,
        "sender-up",
        &["k", "up"],
        "previous sender",
        Only(Smtp),
    ),
    spec(
        Cmd::Down,
        "sender-down",
        &["j", "down"],
        "next sender",
        Only(Smtp),
    ),
    // The DKIM keys of the tenant (a sub-screen of SMTP).
    shown(writes(
        spec(
            Cmd::Dkim(DkimCmd::Generate),
            "dkim-generate",
            &["g"],
            "generate key",
            Only(Dkim),
        ),
        Perm::ManageSmtp,
    )),
    shown(writes(
        spec(
            Cmd::Dkim(DkimCmd::Import),
            "dkim-import",
            &["i"],
            "import PEM",
            Only(Dkim),
        ),
        Perm::ManageSmtp,
    )),
    shown(writes(
        spec(
            Cmd::Dkim(DkimCmd::Rotate),
            "dkim-rotate",
            &["r"],
            "rotate",
            Only(Dkim),
        ),
        Perm::ManageSmtp,
    )),
    shown(spec(
        Cmd::Dkim(DkimCmd::Copy),
        "dkim-copy-dns",
        &["y"],
        "copy DNS",
        Only(Dkim),
    )),
    spec(Cmd::Up, "dkim-up", &["k", "up"], "previous key", Only(Dkim)),
    spec(
        Cmd::Down,
        "dkim-down",
        &["j", "down"],
        "next key",
        Only(Dkim),
    ),
    shown(spec(
        Cmd::Back,
        "dkim-back",
        &["esc"],
        "back to SMTP",
        Only(Dkim),
    )),
    CommandSpec {
        needs: Some(Perm::ViewAudit),
        ..spec(
            Cmd::GotoAudit,
            "audit",
            &["0"],
            "go to the audit log",
            Everywhere,
        )
    },
    writes(
        spec(
            Cmd::ResetUsage,
            "maintenance-reset-usage",
            &[],
            "maintenance: reset monthly usage counters",
            Everywhere,
        ),
        Perm::Maintenance,
    ),
    writes(
        spec(
            Cmd::RecountUsage,
            "maintenance-recount-usage",
            &[],
            "maintenance: recount this month's usage",
            Everywhere,
        ),
        Perm::Maintenance,
    ),
    writes(
        spec(
            Cmd::CleanLogs,
            "maintenance-clean-logs",
            &[],
            "maintenance: delete logs older than each tenant's retention",
            Everywhere,
        ),
        Perm::Maintenance,
    ),
    // Batches, the batch detail and the composer.
    spec(
        Cmd::GotoBatches,
        "batches",
        &["8"],
        "go to batches",
        Everywhere,
    ),
    shown(spec(
        Cmd::Enter,
        "open-batch",
        &["enter"],
        "details",
        Only(Batches),
    )),
    shown(writes(
        spec(Cmd::Create, "new-batch", &["n"], "new batch", Only(Batches)),
        Perm::EditBatches,
    )),
    shown(writes(
        spec(
            Cmd::StartBatch,
            "start-batch",
            &["s"],
            "review & start",
            Only(Batches),
        ),
        Perm::ControlBatches,
    )),
    shown(writes(
        spec(
            Cmd::PauseBatch,
            "pause-batch",
            &["p"],
            "pause",
            Only(Batches),
        ),
        Perm::ControlBatches,
    )),
    shown(writes(
        spec(
            Cmd::ResumeBatch,
            "resume-batch",
            &["r"],
            "resume",
            Only(Batches),
        ),
        Perm::ControlBatches,
    )),
    shown(writes(
        spec(
            Cmd::CancelBatch,
            "cancel-batch",
            &["X"],
            "cancel",
            Only(Batches),
        ),
        Perm::ControlBatches,
    )),
    writes(
        spec(
            Cmd::RetryFailed,
            "retry-failed",
            &["F"],
            "retry failed recipients",
            Only(Batches),
        ),
        Perm::ControlBatches,
    ),
    writes(
        spec(
            Cmd::Duplicate,
            "duplicate-batch",
            &["c"],
            "duplicate as a new draft",
            Only(Batches),
        ),
        Perm::EditBatches,
    ),
    writes(
        spec(
            Cmd::Delete,
            "delete-draft",
            &["x"],
            "delete draft",
            Only(Batches),
        ),
        Perm::EditBatches,
    ),
    spec(
        Cmd::OpenLogs,
        "batch-logs",
        &["l"],
        "open the batch's email log",
        Only(Batches),
    ),
    shown(writes(
        spec(
            Cmd::PauseBatch,
            "pause-this-batch",
            &["p"],
            "pause",
            Only(BatchDetail),
        ),
        Perm::ControlBatches,
    )),
    shown(writes(
        spec(
            Cmd::ResumeBatch,
            "resume-this-batch",
            &["r"],
            "resume",
            Only(BatchDetail),
        ),
        Perm::ControlBatches,
    )),
    shown(writes(
        spec(
            Cmd::CancelBatch,
            "cancel-this-batch",
            &["X"],
            "cancel",
            Only(BatchDetail),
        ),
        Perm::ControlBatches,
    )),
    shown(writes(
        spec(
            Cmd::RetryFailed,
            "retry-this-batch",
            &["F"],
            "retry failed",
            Only(BatchDetail),
        ),
        Perm::ControlBatches,
    )),
    shown(spec(
        Cmd::OpenLogs,
        "this-batch-logs",
        &["l"],
        "email log",
        Only(BatchDetail),
    )),
    shown(writes(
        spec(
            Cmd::Save,
            "save-batch",
            &["ctrl-s"],
            "save draft & review",
            Only(Composer),
        ),
        Perm::EditBatches,
    )),
    shown(spec(
        Cmd::NextField,
        "composer-next",
        &["tab"],
        "next part",
        Only(Composer),
    )),
    spec(
        Cmd::PrevField,
        "composer-prev",
        &["backtab"],
        "previous part",
        Only(Composer),
    ),
    shown(writes(
        spec(
            Cmd::StartBatch,
            "start-reviewed",
            &["s"],
            "start (review page)",
            Only(Composer),
        ),
        Perm::ControlBatches,
    )),
    shown(spec(
        Cmd::Edit,
        "edit-draft",
        &["e"],
        "edit (review page)",
        Only(Composer),
    )),
    shown(spec(
        Cmd::CloseEditor,
        "close-composer",
        &["esc"],
        "close",
        Only(Composer),
    )),
    // The log viewer.
    spec(Cmd::GotoLogs, "logs", &["9"], "go to logs", Everywhere),
    shown(spec(
        Cmd::Logs(LogCmd::PickBatch),
        "logs-batch",
        &["b"],
        "batch",
        Only(Logs),
    )),
    shown(spec(
        Cmd::Logs(LogCmd::Follow),
        "logs-follow",
        &["f"],
        "follow",
        Only(Logs),
    )),
    shown(spec(
        Cmd::Logs(LogCmd::Status(Some(Es::Failed))),
        "logs-failed",
        &["F"],
        "failed",
        Only(Logs),
    )),
    spec(
        Cmd::Logs(LogCmd::Status(Some(Es::Rejected))),
        "logs-rejected",
        &["R"],
        "filter: rejected (toggle)",
        Only(Logs),
    ),
    spec(
        Cmd::Logs(LogCmd::Status(Some(Es::Bounced))),
        "logs-bounced",
        &["B"],
        "filter: bounced (toggle)",
        Only(Logs),
    ),
    spec(
        Cmd::Logs(LogCmd::Status(Some(Es::Pending))),
        "logs-pending",
        &["P"],
        "filter: pending (toggle)",
        Only(Logs),
    ),
    spec(
        Cmd::Logs(LogCmd::Status(Some(Es::Sent))),
        "logs-sent",
        &["S"],
        "filter: sent (toggle)",
        Only(Logs),
    ),
    spec(
        Cmd::Logs(LogCmd::Status(None)),
        "logs-all",
        &["A"],
        "filter: every status",
        Only(Logs),
    ),
    spec(
        Cmd::Logs(LogCmd::ReplyClass),
        "logs-reply-class",
        &["c"],
        "filter: reply 4xx / 5xx / connection",
        Only(Logs),
    ),
    spec(
        Cmd::Logs(LogCmd::DateRange),
        "logs-date-range",
        &["D"],
        "filter: date range",
        Only(Logs),
    ),
    spec(
        Cmd::Logs(LogCmd::Sort),
        "logs-sort",
        &["o"],
        "sort by next column",
        Only(Logs),
    ),
    spec(
        Cmd::Logs(LogCmd::Reverse),
        "logs-reverse",
        &["O"],
        "reverse the sort",
        Only(Logs),
    ),
    shown(spec(
        Cmd::Logs(LogCmd::Detail),
        "logs-detail",
        &["enter"],
        "detail",
        Only(Logs),
    )),
    spec(
        Cmd::Logs(LogCmd::ExecPane),
        "logs-exec-pane",
        &["x"],
        "execution log pane",
        Only(Logs),
    ),
    shown(spec(
        Cmd::Logs(LogCmd::Tag),
        "logs-tag",
        &["space"],
        "tag",
        Only(Logs),
    )),
    spec(
        Cmd::Logs(LogCmd::TagAll),
        "logs-tag-all",
        &["*"],
        "tag every row matching the filter",
        Only(Logs),
    ),
    spec(
        Cmd::Logs(LogCmd::Untag),
        "logs-untag",
        &["u"],
        "untag all",
        Only(Logs),
    ),
    shown(writes(
        spec(
            Cmd::Logs(LogCmd::Retry),
            "logs-retry",
            &["r"],
            "retry",
            Only(Logs),
        ),
        Perm::ControlBatches,
    )),
    shown(writes(
        spec(
            Cmd::Logs(LogCmd::Suppress),
            "logs-suppress",
            &["s"],
            "suppress",
            Only(Logs),
        ),
        Perm::EditContacts,
    )),
    writes(
        spec(
            Cmd::Logs(LogCmd::Deactivate),
            "logs-deactivate",
            &["d"],
            "deactivate the tagged rows' contacts",
            Only(Logs),
        ),
        Perm::EditContacts,
    ),
    spec(
        Cmd::Logs(LogCmd::Export),
        "logs-export",
        &["e"],
        "export tagged (or filtered) rows to CSV",
        Only(Logs),
    ),
    spec(
        Cmd::Logs(LogCmd::CopyAddresses),
        "logs-copy",
        &["y"],
        "copy addresses (OSC 52 clipboard)",
        Only(Logs),
    ),
];

impl CommandSpec {
    pub fn applies_to(&self, screen: ScreenId) -> bool {
        match self.place {
            Everywhere => !matches!(screen, ScreenId::Editor | ScreenId::Composer),
            Tables => !matches!(
                screen,
                ScreenId::Dashboard
                    | ScreenId::Editor
                    | ScreenId::Smtp
                    | ScreenId::BatchDetail
                    | ScreenId::Composer
                    | ScreenId::Dkim
            ),
            Only(s) => s == screen,
        }
    }
}

/// A key with its modifiers, as written in keys.toml ("ctrl-c", "shift-tab", "G").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

impl Key {
    pub fn from_event(ev: &KeyEvent) -> Key {
        // Upper-case letters arrive as themselves (with SHIFT, which is ignored); Shift-Tab
        // arrives as BackTab.
        Key {
            code: ev.code,
            ctrl: ev.modifiers.contains(KeyModifiers::CONTROL),
            alt: ev.modifiers.contains(KeyModifiers::ALT),
        }
    }

    pub fn parse(text: &str) -> Result<Key, String> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = text.trim();
        loop {
            let lower = rest.to_ascii_lowercase();
            if rest.len() > 5 && lower.starts_with("ctrl-") {
                ctrl = true;
                rest = &rest[5..];
            } else if rest.len() > 4 && lower.starts_with("alt-") {
                alt = true;
                rest = &rest[4..];
            } else {
                break;
            }
        }
        let code = match rest.to_ascii_lowercase().as_str() {
            "enter" | "return" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" | "shift-tab" => KeyCode::BackTab,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pageup" | "pgup" => KeyCode::PageUp,
            "pagedown" | "pgdn" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "space" => KeyCode::Char(' '),
            "backspace" => KeyCode::Backspace,
            "delete" | "del" => KeyCode::Delete,
            f if f.len() >= 2 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                KeyCode::F(f[1..].parse::<u8>().unwrap_or(1))
            }
            _ => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => KeyCode::Char(if ctrl { c.to_ascii_lowercase() } else { c }),
                    _ => return Err(format!("unknown key '{text}'")),
                }
            }
        };
        Ok(Key { code, ctrl, alt })
    }

    /// How the key is shown in the footer and help.
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Enter => "enter".to_string(),
            KeyCode::Esc => "esc".to_string(),
            KeyCode::Tab => "tab".to_string(),
            KeyCode::BackTab => "S-tab".to_string(),
            KeyCode::Up => "↑".to_string(),
            KeyCode::Down => "↓".to_string(),
            KeyCode::Left => "←".to_string(),
            KeyCode::Right => "→".to_string(),
            KeyCode::PageUp => "pgup".to_string(),
            KeyCode::PageDown => "pgdn".to_string(),
            KeyCode::Home => "home".to_string(),
            KeyCode::End => "end".to_string(),
            KeyCode::Char(' ') => "space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::F(n) => format!("F{n}"),
            _ => "?".to_string(),
        };
        match (self.ctrl, self.alt) {
            (true, _) => format!("^{base}"),
            (false, true) => format!("M-{base}"),
            _ => base,
        }
    }
}

/// Keys bound to command ids, after keys.toml overrides.
#[derive(Debug, Clone)]
pub struct KeyMap {
    by_id: HashMap<&'static str, Vec<Key>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum KeysValue {
    One(String),
    Many(Vec<String>),
}

impl Default for KeyMap {
    fn default() -> Self {
        let mut by_id = HashMap::new();
        for c in COMMANDS {
            let keys = c.keys.iter().filter_map(|k| Key::parse(k).ok()).collect();
            by_id.insert(c.id, keys);
        }
        KeyMap { by_id }
    }
}

impl KeyMap {
    /// The defaults with `keys.toml` (if present in `config_dir`) applied.
    pub fn load(config_dir: &Path) -> Result<KeyMap, String> {
        let path = config_dir.join("keys.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => KeyMap::from_toml(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyMap::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    pub fn from_toml(text: &str) -> Result<KeyMap, String> {
        let table: HashMap<String, KeysValue> = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut map = KeyMap::default();
        for (id, value) in table {
            let Some(spec) = COMMANDS.iter().find(|c| c.id == id) else {
                return Err(format!(
                    "unknown command '{id}' (known: {})",
                    command_ids().join(", ")
                ));
            };
            let texts = match value {
                KeysValue::One(s) => vec![s],
                KeysValue::Many(v) => v,
            };
            let keys = texts
                .iter()
                .map(|t| Key::parse(t))
                .collect::<Result<Vec<_>, _>>()?;
            map.by_id.insert(spec.id, keys);
        }
        Ok(map)
    }

    pub fn keys_of(&self, id: &str) -> &[Key] {
        self.by_id.get(id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The label of a command's first key ("" when unbound).
    pub fn label(&self, id: &str) -> String {
        self.keys_of(id).first().map(Key::label).unwrap_or_default()
    }

    /// The command a key means on `screen`; screen-specific bindings win over general ones.
    pub fn lookup(&self, screen: ScreenId, ev: &KeyEvent) -> Option<&'static CommandSpec> {
        let key = Key::from_event(ev);
        let matches =
            |c: &&'static CommandSpec| c.applies_to(screen) && self.keys_of(c.id).contains(&key);
        COMMANDS
            .iter()
            .filter(|c| matches!(c.place, Only(_)))
            .find(matches)
            .or_else(|| COMMANDS.iter().find(matches))
    }

    /// A command bound only to `screen` (the editor: every other key is typed as text).
    pub fn lookup_local(&self, screen: ScreenId, ev: &KeyEvent) -> Option<&'static CommandSpec> {
        let key = Key::from_event(ev);
        COMMANDS
            .iter()
            .find(|c| c.place == Only(screen) && self.keys_of(c.id).contains(&key))
    }

    /// The commands of `screen`, in registry order.
    pub fn commands_for(screen: ScreenId) -> impl Iterator<Item = &'static CommandSpec> {
        COMMANDS.iter().filter(move |c| c.applies_to(screen))
    }
}

pub fn command_ids() -> Vec<&'static str> {
    COMMANDS.iter().map(|c| c.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique() {
        let mut ids = command_ids();
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(n, ids.len());
    }

    #[test]
    fn parses_keys() {
        assert_eq!(
            Key::parse("ctrl-c").unwrap(),
            Key {
                code: KeyCode::Char('c'),
                ctrl: true,
                alt: false
            }
        );
        assert_eq!(Key::parse("G").unwrap().code, KeyCode::Char('G'));
        assert_eq!(Key::parse("shift-tab").unwrap().code, KeyCode::BackTab);
        assert!(Key::parse("nope").is_err());
    }

    #[test]
    fn overrides_from_toml() {
        let map = KeyMap::from_toml("quit = \"x\"\ndown = [\"n\", \"down\"]").unwrap();
        let ev = KeyEvent::new(KeyCode::Char('x'), KeyModifiers::NONE);
        assert_eq!(
            map.lookup(ScreenId::Users, &ev).map(|c| c.cmd),
            Some(Cmd::Quit)
        );
        assert!(KeyMap::from_toml("bogus = \"x\"").is_err());
    }

    #[test]
    fn screen_bindings_win() {
        let map = KeyMap::default();
        let enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(
            map.lookup(ScreenId::Tenants, &enter).map(|c| c.cmd),
            Some(Cmd::SwitchTenant)
        );
        assert_eq!(
            map.lookup(ScreenId::Users, &enter).map(|c| c.cmd),
            Some(Cmd::Enter)
        );
    }
}
