//! The application state and its dispatch. Keys become commands (via the registry), commands
//! change state and push internal events, the app drains them (loading data from the store
//! as needed); `draw` only reads state. Tests drive an `App` with `handle_key` and draw it
//! on ratatui's `TestBackend`, no terminal needed.

use std::collections::VecDeque;
use std::time::Instant;

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::Options;
use super::event::{AppEvent, ExternalEvent};
use super::keymap::{COMMANDS, Cmd, CommandSpec, KeyMap, ScreenId, Where};
use super::screens::audit::Audit;
use super::screens::batches::Batches;
use super::screens::composer::Composer;
use super::screens::dashboard::Dashboard;
use super::screens::dkim::DkimKeys;
use super::screens::groups::{Contacts, Groups};
use super::screens::login::{Login, LoginOutcome};
use super::screens::logs::Logs;
use super::screens::smtp::{self, Smtp};
use super::screens::suppression::Suppressions;
use super::screens::templates::{self, Editor, Templates};
use super::screens::tenants::{self, Tenants};
use super::screens::users::{self, Users};
use super::screens::{Session, usage_ratio};
use super::theme::Theme;
use super::widgets::confirm::{Answer, Confirm};
use super::widgets::form::{Form, FormOutcome};
use super::widgets::palette::{Palette, PaletteOutcome};
use super::widgets::toast::{Level, Toast};
use crate::auth::{self, LoginError};
use crate::db::{Actor, DbError, Store, Template, User};
use crate::domain::TenantStatus;
use crate::domain::permissions::allowed;

/// What a form is for.
#[derive(Debug, Clone)]
pub enum FormPurpose {
    NewTenant,
    EditTenant(i32),
    NewUser,
    EditUser(Box<User>),
    ResetPassword(Box<User>),
    NewTemplate,
    DuplicateTemplate(Box<Template>),
    Smtp,
    NewSender,
    /// Groups, contacts, suppression: handled in `app/groups_ops.rs`.
    More(groups_ops::MoreForm),
    /// The log viewer: handled in `app/logs_ops.rs`.
    Logs(logs_ops::LogsForm),
    /// DKIM keys: handled in `app/dkim_ops.rs`.
    Dkim(dkim_ops::DkimForm),
}

/// What a confirmation dialog will do on "yes".
#[derive(Debug, Clone)]
pub enum Pending {
    SetTenantStatus {
        id: i32,
        status: TenantStatus,
    },
    SetUserActive {
        user: Box<User>,
        active: bool,
    },
    SetTemplateActive {
        id: i32,
        active: bool,
    },
    SetSenderActive {
        id: i32,
        email: String,
        active: bool,
    },
    /// Close the editor, dropping its unsaved changes.
    DiscardEdits,
    /// Groups, contacts, suppression: handled in `app/groups_ops.rs`.
    More(groups_ops::MorePending),
    /// The log viewer's triage: handled in `app/logs_ops.rs`.
    Logs(logs_ops::LogsPending),
    /// Batches and quitting while sending: handled in `app/batches_ops.rs`.
    Batch(batches_ops::BatchPending),
    /// Maintenance tasks: handled in `app/ops.rs`.
    Ops(ops::OpsPending),
    /// DKIM keys: handled in `app/dkim_ops.rs`.
    Dkim(dkim_ops::DkimPending),
}

/// The modal on top of a screen, if any.
#[derive(Debug, Clone)]
pub enum Popup {
    Help,
    Palette(Palette),
    Confirm(Confirm<Pending>),
    Form(Form<FormPurpose>),
    /// Lines of a report (the SMTP connection test); `running` while it is being made.
    Report {
        title: String,
        lines: Vec<String>,
        running: bool,
    },
    /// CSV import: file picker, preview, progress.
    Import(groups_ops::ImportPopup),
    /// The log viewer's batch picker.
    Logs(logs_ops::BatchPicker),
}

mod batches_ops;
mod dkim_ops;
mod groups_ops;
mod logs_ops;
mod ops;

pub struct App {
    pub store: Store,
    pub opts: Options,
    pub keymap: KeyMap,
    pub theme: Theme,
    pub session: Option<Session>,
    pub screen: ScreenId,
    pub login: Login,
    pub dashboard: Dashboard,
    pub tenants: Tenants,
    pub users: Users,
    pub templates: Templates,
    /// The template editor, when open (screen `Editor`).
    pub editor: Option<Box<Editor>>,
    pub smtp: Smtp,
    /// The DKIM keys of the tenant (screen `Dkim`, opened from SMTP).
    pub dkim: DkimKeys,
    /// The report of a connection test running in a spawned task.
    background: Option<tokio::sync::oneshot::Receiver<Vec<String>>>,
    pub groups: Groups,
    pub contacts: Contacts,
    pub suppressions: Suppressions,
    pub logs: Logs,
    logs_last_refresh: Option<Instant>,
    pub audit: Audit,
    pub popup: Option<Popup>,
    /// The `/` filter line is being edited.
    pub filtering: bool,
    pub toast: Option<Toast>,
    queue: VecDeque<AppEvent>,
    /// Something changed since the last draw.
    pub dirty: bool,
    pub quit: bool,
    area: Rect,
    /// Where background work (the CSV import) reports; none in tests that import inline.
    pub events: Option<tokio::sync::mpsc::Sender<ExternalEvent>>,
    /// Where the import file picker starts (default: the current directory).
    pub import_dir: Option<std::path::PathBuf>,
    pub batches: Batches,
    /// The batch composer, when open (screen `Composer`).
    pub composer: Option<Box<Composer>>,
    /// The sending engine running in this process, if any.
    pub engine: Option<batches_ops::InProcess>,
    last_poll: Option<Instant>,
}

/// The rows of the whole screen: tab bar, body, status line, key footer.
fn chrome(area: Rect) -> [Rect; 4] {
    Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area)
}

impl App {
    /// An app on `store`; keys and theme from the config dir (a bad file is reported in a
    /// toast and the defaults are used).
    pub fn new(store: Store, opts: Options) -> App {
        let mut problems = Vec::new();
        let keymap = KeyMap::load(&opts.config_dir).unwrap_or_else(|e| {
            problems.push(e);
            KeyMap::default()
        });
        let theme = Theme::load(&opts.config_dir, opts.theme.as_deref(), opts.no_color)
            .unwrap_or_else(|e| {
                problems.push(e);
                if opts.no_color {
                    Theme::monochrome()
                } else {
                    Theme::dark()
                }
            });
        let login = Login::new(opts.user.clone());
        let mut app = App {
            store,
            opts,
            keymap,
            theme,
            session: None,
            screen: ScreenId::Dashboard,
            login,
            dashboard: Dashboard::default(),
            tenants: Tenants::default(),
            users: Users::default(),
            templates: Templates::default(),
            editor: None,
            smtp: Smtp::default(),
            dkim: DkimKeys::default(),
            background: None,
            groups: Groups::default(),
            contacts: Contacts::default(),
            suppressions: Suppressions::default(),
            logs: Logs::new(),
            logs_last_refresh: None,
            audit: Audit::default(),
            popup: None,
            filtering: false,
            toast: None,
            queue: VecDeque::new(),
            dirty: true,
            quit: false,
            area: Rect::new(0, 0, 80, 24),
            events: None,
            import_dir: None,
            batches: Batches::default(),
            composer: None,
            engine: None,
            last_poll: None,
        };
        if let Some(p) = problems.first() {
            tracing::warn!("{p}");
            app.toast = Some(Toast::error(p.clone()));
        }
        app.layout_tables();
        app
    }

    /// Logs `user` in without the login screen (the demo, tests).
    pub async fn start_session(&mut self, user: User, actor: Actor) {
        let tenant = match actor.tenant_id {
            Some(id) => match actor.tenant_scope(id) {
                Ok(scope) => self.store.get_tenant(scope).await.ok(),
                Err(_) => None,
            },
            None => None,
        };
        tracing::info!(user = %user.username, role = %actor.role, "logged in");
        self.session = Some(Session {
            user,
            actor,
            tenant,
        });
        self.screen = ScreenId::Dashboard;
        self.tenants = Tenants::default();
        self.users = Users::default();
        self.templates = Templates::default();
        self.editor = None;
        self.smtp = Smtp::default();
        self.composer = None;
        self.batches = Batches {
            utc_offset: self.batches.utc_offset,
            ..Batches::default()
        };
        self.reset_tenant_screens();
        self.layout_tables();
        self.load(ScreenId::Dashboard).await;
        if let Some(batch) = self.opts.open_logs.take() {
            self.open_logs(Some(batch)).await;
            self.logs.follow = self.opts.follow_logs;
        }
        self.dirty = true;
    }

    pub async fn resize(&mut self, width: u16, height: u16) {
        self.area = Rect::new(0, 0, width, height);
        self.layout_tables();
        if self.session.is_some() {
            self.load(self.screen).await;
        }
        self.dirty = true;
    }

    fn layout_tables(&mut self) {
        let body = chrome(self.area)[1];
        self.tenants.set_area(body);
        self.users.set_area(body);
        self.templates.set_area(body);
        self.groups.set_area(body);
        self.contacts.set_area(body);
        self.suppressions.set_area(body);
        self.logs.set_area(body);
        self.batches.set_area(body);
        self.audit.set_area(body);
    }

    /// Periodic housekeeping: expire the toast, count down a login delay. Marks the app
    /// dirty only when something visible changed.
    pub fn tick(&mut self, now: Instant) {
        self.poll_background();
        if self.toast.as_ref().is_some_and(|t| t.expired(now)) {
            self.toast = None;
            self.dirty = true;
        }
        if self.session.is_none() && self.login.locked_until.is_some() {
            if self.login.wait_left(now).is_none() {
                self.login.locked_until = None;
            }
            self.dirty = true;
        }
    }

    /// Shows the connection test's report once its task is done.
    fn poll_background(&mut self) {
        let Some(rx) = self.background.as_mut() else {
            return;
        };
        let lines = match rx.try_recv() {
            Ok(lines) => lines,
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => return,
            Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                vec!["the connection test stopped unexpectedly".into()]
            }
        };
        self.background = None;
        if matches!(self.popup, Some(Popup::Report { running: true, .. })) {
            self.popup = Some(Popup::Report {
                title: "Connection test".into(),
                lines,
                running: false,
            });
        }
        self.dirty = true;
    }

    /// Waits for a background task (the connection test) and shows its result (tests).
    pub async fn wait_background(&mut self) {
        for _ in 0..300 {
            if self.background.is_none() {
                return;
            }
            self.poll_background();
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub async fn handle_external(&mut self, ev: ExternalEvent) {
        match ev {
            ExternalEvent::DataChanged => {
                if self.session.is_some() {
                    self.invalidate(self.screen);
                    self.load(self.screen).await;
                    self.dirty = true;
                }
            }
            ExternalEvent::ImportProgress { done, total } => {
                self.import_progress(done, total);
                self.dirty = true;
            }
            ExternalEvent::ImportDone(result) => {
                self.import_done(result).await;
                self.dirty = true;
                self.drain().await;
            }
            ExternalEvent::Engine(ev) => self.engine_event(ev).await,
            ExternalEvent::BatchChanged(change) => self.batch_changed(&change).await,
            ExternalEvent::Review(ev) => self.review_event(ev).await,
        }
    }

    pub async fn handle_key(&mut self, key: KeyEvent) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        self.dirty = true;
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        if self.session.is_none() {
            if ctrl_c {
                self.quit = true;
                return;
            }
            match self.login.handle_key(&key) {
                LoginOutcome::Quit => self.quit = true,
                LoginOutcome::Submit => self.submit_login().await,
                LoginOutcome::Continue => {}
            }
        } else if let Some(popup) = self.popup.take() {
            self.popup_key(popup, key).await;
        } else if self.filtering {
            self.filter_key(key).await;
        } else if self.screen == ScreenId::Editor {
            self.editor_key(key).await;
        } else if self.screen == ScreenId::Composer {
            self.composer_key(key).await;
        } else if let Some(spec) = self.keymap.lookup(self.screen, &key) {
            self.run(spec).await;
        }
        self.drain().await;
    }

    pub async fn handle_mouse(&mut self, ev: MouseEvent) {
        if !self.opts.mouse || self.session.is_none() || self.popup.is_some() {
            return;
        }
        let find = |cmd: Cmd| COMMANDS.iter().find(|c| c.cmd == cmd);
        match ev.kind {
            MouseEventKind::ScrollDown => {
                if let Some(spec) = find(Cmd::Down) {
                    self.run(spec).await;
                }
            }
            MouseEventKind::ScrollUp => {
                if let Some(spec) = find(Cmd::Up) {
                    self.run(spec).await;
                }
            }
            MouseEventKind::Down(MouseButton::Left) => {
                let [header, body, _, _] = chrome(self.area);
                if ev.row == header.y {
                    let mut x = 0u16;
                    let (labels, _) = self.header_layout(header.width as usize);
                    for (s, label) in ScreenId::ALL.iter().zip(&labels) {
                        let w = label.chars().count() as u16;
                        if ev.column >= x + 11 && ev.column < x + 11 + w {
                            self.goto(*s).await;
                        }
                        x += w;
                    }
                } else {
                    let table_area = match self.screen {
                        ScreenId::Tenants => tenants::layout(body)[0],
                        ScreenId::Logs => self.logs.layout(body)[1],
                        _ => body,
                    };
                    let first = table_area.y + 2;
                    if !matches!(
                        self.screen,
                        ScreenId::Dashboard
                            | ScreenId::Editor
                            | ScreenId::Smtp
                            | ScreenId::BatchDetail
                            | ScreenId::Composer
                            | ScreenId::Dkim
                    ) && ev.row >= first
                        && ev.row < table_area.bottom() - 1
                    {
                        let table = match self.screen {
                            ScreenId::Tenants => self.tenants.table.offset,
                            ScreenId::Templates => self.templates.table.offset,
                            ScreenId::Groups => self.groups.table.offset,
                            ScreenId::Contacts => self.contacts.table.offset,
                            ScreenId::Suppression => self.suppressions.table.offset,
                            ScreenId::Logs => self.logs.table.offset,
                            ScreenId::Batches => self.batches.table.offset,
                            ScreenId::Audit => self.audit.table.offset,
                            _ => self.users.table.offset,
                        };
                        let target = table + (ev.row - first) as usize;
                        let current = self.current_selected();
                        self.move_selection(target as isize - current as isize)
                            .await;
                    }
                }
            }
            _ => return,
        }
        self.dirty = true;
        self.drain().await;
    }

    fn current_selected(&self) -> usize {
        match self.screen {
            ScreenId::Tenants => self.tenants.table.selected,
            ScreenId::Users => self.users.table.selected,
            ScreenId::Templates => self.templates.table.selected,
            ScreenId::Dashboard | ScreenId::Editor | ScreenId::Smtp => 0,
            ScreenId::Groups => self.groups.table.selected,
            ScreenId::Contacts => self.contacts.table.selected,
            ScreenId::Suppression => self.suppressions.table.selected,
            ScreenId::Logs => self.logs.table.selected,
            ScreenId::Batches => self.batches.table.selected,
            ScreenId::BatchDetail | ScreenId::Composer => 0,
            ScreenId::Audit => self.audit.table.selected,
            ScreenId::Dkim => self.dkim.selected,
        }
    }

    async fn submit_login(&mut self) {
        let now = Instant::now();
        if let Some(s) = self.login.wait_left(now) {
            self.login.message = Some(format!("too many failures: wait {s} s before trying again"));
            return;
        }
        let username = self.login.username.trim().to_string();
        match auth::authenticate(&self.store, &username, &self.login.password).await {
            Ok((user, actor)) => {
                if let Err(e) = self.store.touch_last_login(user.id).await {
                    tracing::warn!("cannot record last login of {}: {e}", user.username);
                }
                self.login.password.clear();
                self.login.message = None;
                self.login.failures = 0;
                crate::db::rls::enter_session(&actor);
                self.start_session(user, actor).await;
            }
            Err(LoginError::Store(e)) => {
                tracing::error!("login of {username}: {e}");
                self.login.message = Some(e.to_string());
            }
            Err(e) => {
                tracing::info!("login of {username} refused: {e}");
                self.login.failed(e.to_string(), Instant::now());
            }
        }
    }

    /// Screens the session may open, in Tab order.
    fn screens(&self) -> Vec<ScreenId> {
        let sa = self
            .session
            .as_ref()
            .is_some_and(|s| s.actor.is_super_admin());
        ScreenId::ALL
            .iter()
            .copied()
            .filter(|s| *s != ScreenId::Tenants || sa)
            .filter(|s| {
                *s != ScreenId::Smtp
                    || self.session.as_ref().is_some_and(|x| {
                        allowed(x.actor.role, crate::domain::permissions::Action::ManageSmtp)
                            .is_ok()
                    })
            })
            .filter(|s| {
                *s != ScreenId::Audit
                    || self.session.as_ref().is_some_and(|x| {
                        allowed(x.actor.role, crate::domain::permissions::Action::ViewAudit).is_ok()
                    })
            })
            .collect()
    }

    /// Refuses `spec` with a reason when the session may not run it.
    fn permit(&self, spec: &CommandSpec) -> Result<(), String> {
        if spec.writes && self.opts.readonly {
            return Err(format!(
                "read-only session (--readonly): '{}' is disabled",
                spec.description
            ));
        }
        if let (Some(need), Some(s)) = (spec.needs, &self.session) {
            allowed(s.actor.role, need).map_err(|d| d.to_string())?;
        }
        Ok(())
    }

    fn deny(&mut self, reason: String) {
        tracing::info!("denied: {reason}");
        self.queue.push_back(AppEvent::Toast(Toast::error(reason)));
    }

    fn info(&mut self, text: String) {
        self.queue.push_back(AppEvent::Toast(Toast::info(text)));
    }

    async fn run(&mut self, spec: &'static CommandSpec) {
        if let Where::Only(screen) = spec.place
            && screen != self.screen
            && !self.goto(screen).await
        {
            return;
        }
        if let Err(reason) = self.permit(spec) {
            self.deny(reason);
            return;
        }
        match spec.cmd {
            Cmd::Quit => self.ask_quit().await,
            Cmd::Enter if self.screen == ScreenId::Batches => self.open_batch().await,
            cmd if self.screen == ScreenId::Composer => self.batches_command(cmd).await,
            Cmd::Create | Cmd::Duplicate | Cmd::Delete
                if matches!(self.screen, ScreenId::Batches | ScreenId::BatchDetail) =>
            {
                self.batches_command(spec.cmd).await
            }
            Cmd::StartBatch
            | Cmd::PauseBatch
            | Cmd::ResumeBatch
            | Cmd::CancelBatch
            | Cmd::RetryFailed
            | Cmd::OpenLogs => self.batches_command(spec.cmd).await,
            Cmd::GotoBatches => {
                self.goto(ScreenId::Batches).await;
            }
            Cmd::Help => self.popup = Some(Popup::Help),
            Cmd::Palette => self.popup = Some(Popup::Palette(Palette::default())),
            Cmd::NextScreen | Cmd::PrevScreen => {
                let screens = self.screens();
                let i = screens.iter().position(|s| *s == self.screen).unwrap_or(0);
                let n = screens.len();
                let next = if spec.cmd == Cmd::NextScreen {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.goto(screens[next]).await;
            }
            Cmd::GotoDashboard => {
                self.goto(ScreenId::Dashboard).await;
            }
            Cmd::GotoTenants => {
                self.goto(ScreenId::Tenants).await;
            }
            Cmd::GotoUsers => {
                self.goto(ScreenId::Users).await;
            }
            Cmd::Up => self.move_selection(-1).await,
            Cmd::Down => self.move_selection(1).await,
            Cmd::PageUp => self.move_selection(-self.page()).await,
            Cmd::PageDown => self.move_selection(self.page()).await,
            Cmd::Home | Cmd::End => {
                let end = spec.cmd == Cmd::End;
                match self.screen {
                    ScreenId::Tenants if end => self.tenants.table.end(),
                    ScreenId::Tenants => self.tenants.table.home(),
                    ScreenId::Users if end => self.users.table.end(),
                    ScreenId::Users => self.users.table.home(),
                    ScreenId::Templates if end => self.templates.table.end(),
                    ScreenId::Templates => self.templates.table.home(),
                    ScreenId::Dashboard | ScreenId::Editor | ScreenId::Smtp => {}
                    ScreenId::Dkim => {}
                    ScreenId::Groups if end => self.groups.table.end(),
                    ScreenId::Groups => self.groups.table.home(),
                    ScreenId::Contacts if end => self.contacts.table.end(),
                    ScreenId::Contacts => self.contacts.table.home(),
                    ScreenId::Suppression if end => self.suppressions.table.end(),
                    ScreenId::Suppression => self.suppressions.table.home(),
                    ScreenId::Logs if end => {
                        self.wait_log_counts().await;
                        self.logs.table.end()
                    }
                    ScreenId::Logs => {
                        self.logs.follow = false;
                        self.logs.table.home()
                    }
                    ScreenId::Batches if end => self.batches.table.end(),
                    ScreenId::Batches => self.batches.table.home(),
                    ScreenId::BatchDetail | ScreenId::Composer => {}
                    ScreenId::Audit if end => self.audit.table.end(),
                    ScreenId::Audit => self.audit.table.home(),
                }
                self.load(self.screen).await;
            }
            Cmd::Enter if self.screen == ScreenId::Groups => self.open_group().await,
            Cmd::Enter => self.details(),
            Cmd::Back => self.back().await,
            Cmd::Filter => {
                if !matches!(
                    self.screen,
                    ScreenId::Dashboard | ScreenId::Editor | ScreenId::Smtp
                ) {
                    self.filtering = true;
                }
            }
            Cmd::Refresh => {
                self.invalidate(self.screen);
                self.load(self.screen).await;
            }
            Cmd::Create => self.open_create(),
            Cmd::Edit => self.open_edit(),
            Cmd::ToggleActive => self.ask_toggle(),
            Cmd::ResetPassword => {
                if let Some(u) = self.users.table.selected_row().cloned() {
                    self.popup = Some(Popup::Form(users::password_form(
                        FormPurpose::ResetPassword(Box::new(u.clone())),
                        &u,
                    )));
                }
            }
            Cmd::SwitchTenant => {
                if let Some(t) = self.tenants.table.selected_row().cloned() {
                    self.queue
                        .push_back(AppEvent::SwitchTenant(Some(Box::new(t))));
                    self.queue.push_back(AppEvent::Goto(ScreenId::Dashboard));
                }
            }
            Cmd::AllTenants => {
                self.queue.push_back(AppEvent::SwitchTenant(None));
            }
            Cmd::GotoTemplates => {
                self.goto(ScreenId::Templates).await;
            }
            Cmd::Duplicate => {
                if let Some(t) = self.templates.table.selected_row().cloned() {
                    self.popup = Some(Popup::Form(templates::duplicate_form(
                        FormPurpose::DuplicateTemplate(Box::new(t.clone())),
                        &t,
                    )));
                }
            }
            Cmd::OpenEditor => self.open_editor().await,
            Cmd::GotoSmtp => {
                self.goto(ScreenId::Smtp).await;
            }
            Cmd::TestConnection => self.start_connection_test(),
            Cmd::Save
            | Cmd::NextField
            | Cmd::PrevField
            | Cmd::Undo
            | Cmd::Redo
            | Cmd::Find
            | Cmd::FindNext
            | Cmd::ToggleRaw
            | Cmd::NextGroup
            | Cmd::PrevContact
            | Cmd::NextContact
            | Cmd::CloseEditor => self.editor_command(spec.cmd).await,
            Cmd::GotoGroups => {
                self.goto(ScreenId::Groups).await;
            }
            Cmd::GotoSuppression => {
                self.goto(ScreenId::Suppression).await;
            }
            Cmd::Delete => self.ask_delete(),
            Cmd::Tag => self.contacts.toggle_tag(),
            Cmd::Copy | Cmd::Move => self.ask_target(spec.cmd == Cmd::Move).await,
            Cmd::Export => self.ask_export(),
            Cmd::Import => self.open_import(),
            Cmd::GotoLogs => {
                self.goto(ScreenId::Logs).await;
            }
            Cmd::Logs(c) => self.logs_command(c).await,
            Cmd::Dkim(c) => self.dkim_command(c).await,
            Cmd::GotoAudit => {
                self.goto(ScreenId::Audit).await;
            }
            Cmd::ResetUsage => self.ask_maintenance(ops::OpsPending::ResetUsage),
            Cmd::RecountUsage => self.ask_maintenance(ops::OpsPending::RecountUsage),
            Cmd::CleanLogs => self.ask_maintenance(ops::OpsPending::CleanLogs),
            Cmd::Logout => {
                crate::db::rls::leave_session();
                self.editor = None;
                let name = self.session.take().map(|s| s.user.username);
                self.login = Login::new(name);
                self.popup = None;
                self.filtering = false;
            }
        }
    }

    // ---- templates and the editor ----

    async fn open_editor(&mut self) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let Some(t) = self.templates.table.selected_row().cloned() else {
            return;
        };
        match Editor::open(&self.store, &session, t, &self.theme).await {
            Ok(ed) => {
                self.editor = Some(Box::new(ed));
                self.screen = ScreenId::Editor;
                self.filtering = false;
            }
            Err(e) => self.deny(e.to_string()),
        }
    }

    /// Tests the stored transport in a spawned task; the popup shows "testing" until the
    /// report arrives (the UI stays responsive meanwhile).
    fn start_connection_test(&mut self) {
        let Some(session) = &self.session else { return };
        let Some(tenant) = &session.tenant else {
            self.deny("mail settings belong to a tenant: pick one first".into());
            return;
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let settings = self.smtp.settings.clone();
        let config_dir = self.opts.config_dir.clone();
        let tenant_id = tenant.id;
        tokio::spawn(async move {
            let lines = smtp::test_connection(settings, &config_dir, tenant_id).await;
            let _ = tx.send(lines);
        });
        self.background = Some(rx);
        self.popup = Some(Popup::Report {
            title: "Connection test".into(),
            lines: vec![format!("testing the transport of {} …", tenant.domain)],
            running: true,
        });
    }

    async fn close_editor(&mut self) {
        self.editor = None;
        self.screen = ScreenId::Templates;
        self.invalidate(ScreenId::Templates);
        self.load(ScreenId::Templates).await;
    }

    /// Keys in the editor: its own commands first, the find prompt, else typed text.
    async fn editor_key(&mut self, key: KeyEvent) {
        let Some(ed) = self.editor.as_mut() else {
            self.screen = ScreenId::Templates;
            return;
        };
        if let Some(query) = ed.find.as_mut() {
            match key.code {
                KeyCode::Enter => {
                    ed.last_find = std::mem::take(query);
                    ed.find = None;
                    ed.find_next();
                }
                KeyCode::Esc => ed.find = None,
                KeyCode::Backspace => {
                    query.pop();
                }
                KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => query.push(c),
                _ => {}
            }
            return;
        }
        if let Some(spec) = self.keymap.lookup_local(ScreenId::Editor, &key) {
            self.run(spec).await;
        } else if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            // Ctrl-C leaves the editor the way Esc does (asking about unsaved changes).
            self.editor_command(Cmd::CloseEditor).await;
        } else if self.opts.readonly {
            self.deny("read-only session (--readonly): the template cannot be changed".into());
        } else if let Some(ed) = self.editor.as_mut() {
            ed.input(key);
        }
    }

    async fn editor_command(&mut self, cmd: Cmd) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let Some(ed) = self.editor.as_mut() else {
            return;
        };
        match cmd {
            Cmd::Save => match ed.save(&self.store, &session).await {
                Ok(t) => {
                    let text = format!("template {} saved", t.name);
                    tracing::info!("{text}");
                    self.audit_write("tui save-template", Ok(&text)).await;
                    self.info(text);
                }
                Err(e) => {
                    ed.message = Some(format!("not saved: {e}"));
                    let name = ed.template.name.clone();
                    self.audit_write("tui save-template", Err(&format!("{name}: {e}")))
                        .await;
                }
            },
            Cmd::NextField => ed.focus_next(1),
            Cmd::PrevField => ed.focus_next(-1),
            Cmd::Undo => {
                let f = ed.focus;
                ed.fields[f].undo();
            }
            Cmd::Redo => {
                let f = ed.focus;
                ed.fields[f].redo();
            }
            Cmd::Find => ed.find = Some(String::new()),
            Cmd::FindNext => ed.find_next(),
            Cmd::ToggleRaw => ed.raw = !ed.raw,
            Cmd::NextGroup if !ed.groups.is_empty() => {
                ed.group = (ed.group + 1) % ed.groups.len();
                if let Err(e) = ed.load_contacts(&self.store, &session).await {
                    self.deny(e.to_string());
                }
            }
            Cmd::PrevContact => ed.cycle_contact(-1),
            Cmd::NextContact => ed.cycle_contact(1),
            Cmd::CloseEditor => {
                if ed.modified() {
                    self.popup = Some(Popup::Confirm(Confirm::new(
                        "Unsaved changes",
                        format!(
                            "Discard the changes to {}? Ctrl-S in the editor saves them.",
                            ed.template.name
                        ),
                        Pending::DiscardEdits,
                    )));
                } else {
                    self.close_editor().await;
                }
            }
            _ => {}
        }
    }

    fn page(&self) -> isize {
        match self.screen {
            ScreenId::Tenants => self.tenants.table.page(),
            ScreenId::Templates => self.templates.table.page(),
            ScreenId::Groups => self.groups.table.page(),
            ScreenId::Contacts => self.contacts.table.page(),
            ScreenId::Suppression => self.suppressions.table.page(),
            ScreenId::Logs => self.logs.table.page(),
            ScreenId::Batches => self.batches.table.page(),
            ScreenId::Audit => self.audit.table.page(),
            _ => self.users.table.page(),
        }
    }

    async fn move_selection(&mut self, delta: isize) {
        match self.screen {
            ScreenId::Tenants => self.tenants.table.move_by(delta),
            ScreenId::Users => self.users.table.move_by(delta),
            ScreenId::Templates => self.templates.table.move_by(delta),
            ScreenId::Smtp => self.smtp.move_by(delta),
            ScreenId::Dashboard | ScreenId::Editor => return,
            ScreenId::Groups => self.groups.table.move_by(delta),
            ScreenId::Contacts => self.contacts.table.move_by(delta),
            ScreenId::Suppression => self.suppressions.table.move_by(delta),
            ScreenId::Logs => {
                self.logs.follow = false;
                self.logs.table.move_by(delta)
            }
            ScreenId::Batches => self.batches.table.move_by(delta),
            ScreenId::BatchDetail | ScreenId::Composer => return,
            ScreenId::Audit => self.audit.table.move_by(delta),
            ScreenId::Dkim => self.dkim.move_by(delta),
        }
        self.load(self.screen).await;
    }

    /// Opens `screen`; false (with a toast) when the session may not.
    async fn goto(&mut self, screen: ScreenId) -> bool {
        let contacts_open = screen == ScreenId::Contacts && self.contacts.group.is_some();
        // The DKIM keys open from SMTP, for whoever may open SMTP.
        let screen_of = if screen == ScreenId::Dkim {
            ScreenId::Smtp
        } else {
            screen
        };
        if !contacts_open && !self.screens().contains(&screen_of) {
            let role = self.session.as_ref().map(|s| s.actor.role);
            let needs = match screen_of {
                ScreenId::Audit => crate::domain::permissions::Action::ViewAudit,
                ScreenId::Smtp => crate::domain::permissions::Action::ManageSmtp,
                _ => crate::domain::permissions::Action::ManageTenants,
            };
            let reason = match role.map(|r| allowed(r, needs)) {
                Some(Err(d)) => d.to_string(),
                _ => format!("{} is not available", screen.title()),
            };
            self.deny(reason);
            return false;
        }
        self.screen = screen;
        self.filtering = false;
        match screen {
            ScreenId::Tenants => self.tenants.table.recount(),
            ScreenId::Users => self.users.table.recount(),
            ScreenId::Templates => self.templates.table.recount(),
            ScreenId::Dashboard | ScreenId::Editor | ScreenId::Smtp => {}
            ScreenId::Groups => self.groups.table.recount(),
            ScreenId::Contacts => self.contacts.table.recount(),
            ScreenId::Suppression => self.suppressions.table.recount(),
            ScreenId::Logs => self.logs.table.recount(),
            ScreenId::Batches => {
                self.batches.table.recount();
                self.batches.detail = None;
                self.last_poll = Some(Instant::now());
            }
            ScreenId::BatchDetail | ScreenId::Composer => {}
            ScreenId::Audit => self.audit.table.recount(),
            ScreenId::Dkim => {}
        }
        self.load(screen).await;
        true
    }

    async fn back(&mut self) {
        let has_filter = match self.screen {
            ScreenId::Tenants => self.tenants.table.search().is_some(),
            ScreenId::Users => self.users.table.search().is_some(),
            ScreenId::Templates => self.templates.table.search().is_some(),
            ScreenId::Smtp => false,
            ScreenId::Dashboard | ScreenId::Editor => return,
            ScreenId::Groups => self.groups.table.search().is_some(),
            ScreenId::Contacts => self.contacts.table.search().is_some(),
            ScreenId::Suppression => self.suppressions.table.search().is_some(),
            ScreenId::Logs => self.logs.table.search().is_some(),
            ScreenId::Batches => self.batches.table.search().is_some(),
            ScreenId::BatchDetail => {
                self.batches.detail = None;
                self.goto(ScreenId::Batches).await;
                return;
            }
            ScreenId::Composer => return,
            ScreenId::Audit => self.audit.table.search().is_some(),
            ScreenId::Dkim => {
                self.goto(ScreenId::Smtp).await;
                return;
            }
        };
        if has_filter {
            self.edit_filter(|f| f.clear());
            self.load(self.screen).await;
        } else if self.screen == ScreenId::Contacts {
            self.goto(ScreenId::Groups).await;
        } else {
            self.goto(ScreenId::Dashboard).await;
        }
    }

    /// Changes the current table's filter and rewinds it to the first row.
    fn edit_filter(&mut self, change: impl FnOnce(&mut String)) {
        match self.screen {
            ScreenId::Tenants => {
                change(&mut self.tenants.table.filter);
                self.tenants.table.reset();
            }
            ScreenId::Users => {
                change(&mut self.users.table.filter);
                self.users.table.reset();
            }
            ScreenId::Templates => {
                change(&mut self.templates.table.filter);
                self.templates.table.reset();
            }
            ScreenId::Dashboard | ScreenId::Editor | ScreenId::Smtp => {}
            ScreenId::Groups => {
                change(&mut self.groups.table.filter);
                self.groups.table.reset();
            }
            ScreenId::Contacts => {
                change(&mut self.contacts.table.filter);
                self.contacts.table.reset();
            }
            ScreenId::Suppression => {
                change(&mut self.suppressions.table.filter);
                self.suppressions.table.reset();
            }
            ScreenId::Logs => {
                change(&mut self.logs.table.filter);
                self.logs.table.reset();
            }
            ScreenId::Batches => {
                change(&mut self.batches.table.filter);
                self.batches.table.reset();
            }
            ScreenId::BatchDetail | ScreenId::Composer => {}
            ScreenId::Audit => {
                change(&mut self.audit.table.filter);
                self.audit.table.reset();
            }
            ScreenId::Dkim => {}
        }
    }

    fn details(&mut self) {
        if self.screen == ScreenId::Users
            && let Some(u) = self.users.table.selected_row()
        {
            let last = u
                .last_login
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| "never".into());
            let text = format!(
                "{} <{}> — {}, tenant {}, {}, last login {last}",
                u.username,
                u.email,
                u.role,
                u.tenant_id
                    .map(|t| format!("#{t}"))
                    .unwrap_or_else(|| "none".into()),
                if u.is_active { "active" } else { "inactive" }
            );
            self.info(text);
        }
    }

    fn open_create(&mut self) {
        let Some(session) = &self.session else { return };
        self.popup = Some(Popup::Form(match self.screen {
            ScreenId::Tenants => tenants::new_form(FormPurpose::NewTenant),
            ScreenId::Users => users::new_form(FormPurpose::NewUser, session),
            ScreenId::Templates => templates::new_form(FormPurpose::NewTemplate),
            ScreenId::Smtp if session.tenant.is_some() => smtp::sender_form(FormPurpose::NewSender),
            ScreenId::Smtp => {
                return self.deny("sender addresses belong to a tenant: pick one first".into());
            }
            ScreenId::Dashboard | ScreenId::Editor => return,
            ScreenId::Batches | ScreenId::BatchDetail | ScreenId::Composer => return,
            _ => return self.open_create_more(),
        }));
    }

    fn open_edit(&mut self) {
        let Some(session) = &self.session else { return };
        let form = match self.screen {
            ScreenId::Tenants => {
                let Some(t) = self.tenants.table.selected_row() else {
                    return;
                };
                tenants::edit_form(FormPurpose::EditTenant(t.id), t)
            }
            ScreenId::Users => {
                let Some(u) = self.users.table.selected_row() else {
                    return;
                };
                if let Err(d) = crate::domain::permissions::may_manage_user(
                    session.actor.role,
                    u.role.parse().unwrap_or(crate::domain::Role::SuperAdmin),
                ) {
                    self.deny(d.to_string());
                    return;
                }
                users::edit_form(FormPurpose::EditUser(Box::new(u.clone())), session, u)
            }
            ScreenId::Smtp => {
                if session.tenant.is_none() {
                    self.deny("mail settings belong to a tenant: pick one first".into());
                    return;
                }
                self.smtp.form(FormPurpose::Smtp)
            }
            ScreenId::Dashboard => return,
            ScreenId::Batches | ScreenId::BatchDetail | ScreenId::Composer => return,
            _ => return self.open_edit_more(),
        };
        self.popup = Some(Popup::Form(form));
    }

    fn ask_toggle(&mut self) {
        let confirm = match self.screen {
            ScreenId::Tenants => {
                let Some(t) = self.tenants.table.selected_row() else {
                    return;
                };
                let status = tenants::toggled_status(t);
                let suspend = status == TenantStatus::Suspended;
                toggle_confirm(
                    if suspend { "Suspend" } else { "Activate" },
                    "tenant",
                    &format!("{} ({})", t.name, t.domain),
                    if suspend {
                        "Its users can no longer log in and its batches stop."
                    } else {
                        "Its users can log in again."
                    },
                    Pending::SetTenantStatus { id: t.id, status },
                )
            }
            ScreenId::Users => {
                let Some(u) = self.users.table.selected_row() else {
                    return;
                };
                let active = !u.is_active;
                toggle_confirm(
                    activate_verb(active),
                    "user",
                    &u.username,
                    if active {
                        "They can log in again."
                    } else {
                        "They can no longer log in; their data stays."
                    },
                    Pending::SetUserActive {
                        user: Box::new(u.clone()),
                        active,
                    },
                )
            }
            ScreenId::Templates => {
                let Some(t) = self.templates.table.selected_row() else {
                    return;
                };
                let active = !t.is_active;
                toggle_confirm(
                    activate_verb(active),
                    "template",
                    &t.name,
                    if active {
                        "It can be used for new batches again."
                    } else {
                        "New batches can no longer use it; it is kept."
                    },
                    Pending::SetTemplateActive { id: t.id, active },
                )
            }
            ScreenId::Smtp => {
                let Some(s) = self.smtp.selected_sender() else {
                    return;
                };
                let active = !s.is_active;
                toggle_confirm(
                    activate_verb(active),
                    "sender",
                    &s.email,
                    if active {
                        "It can be chosen as From again."
                    } else {
                        "It can no longer be chosen as From; it is kept."
                    },
                    Pending::SetSenderActive {
                        id: s.id,
                        email: s.email.clone(),
                        active,
                    },
                )
            }
            ScreenId::Dashboard | ScreenId::Editor => return,
            ScreenId::Batches | ScreenId::BatchDetail | ScreenId::Composer => return,
            _ => return self.ask_toggle_more(),
        };
        self.popup = Some(Popup::Confirm(confirm));
    }

    async fn popup_key(&mut self, popup: Popup, key: KeyEvent) {
        if matches!(popup, Popup::Report { running: true, .. }) && key.code != KeyCode::Esc {
            // The test is still running: only Esc hides its popup.
            self.popup = Some(popup);
            return;
        }
        match popup {
            Popup::Help => {}
            Popup::Report { .. } => {}
            Popup::Palette(mut p) => match p.handle_key(&key) {
                PaletteOutcome::Run(spec) => self.run(spec).await,
                PaletteOutcome::Close => {}
                PaletteOutcome::Continue => self.popup = Some(Popup::Palette(p)),
            },
            Popup::Confirm(c) => match c.handle_key(&key) {
                Answer::Yes => self.confirmed(c.action).await,
                Answer::No => self.info("cancelled".into()),
                Answer::Undecided => self.popup = Some(Popup::Confirm(c)),
            },
            Popup::Form(mut f) => match f.handle_key(&key) {
                FormOutcome::Cancel => {}
                FormOutcome::Continue => self.popup = Some(Popup::Form(f)),
                FormOutcome::Submit => {
                    if let Err(e) = self.submit_form(&f).await {
                        f.error = Some(e.to_string());
                        self.popup = Some(Popup::Form(f));
                    }
                }
            },
            Popup::Import(p) => self.import_key(p, key).await,
            Popup::Logs(p) => self.batch_picker_key(p, key).await,
        }
    }

    async fn confirmed(&mut self, pending: Pending) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let action = ops::action_name(&pending);
        let result = match pending {
            Pending::DiscardEdits => {
                self.close_editor().await;
                return;
            }
            Pending::SetTemplateActive { id, active } => {
                templates::set_active(&self.store, &session, id, active)
                    .await
                    .map(|t| {
                        (
                            ScreenId::Templates,
                            format!(
                                "template {} {}",
                                t.name,
                                if t.is_active {
                                    "activated"
                                } else {
                                    "deactivated"
                                }
                            ),
                        )
                    })
            }
            Pending::SetTenantStatus { id, status } => {
                tenants::set_status(&self.store, &session, id, status)
                    .await
                    .map(|t| {
                        (
                            ScreenId::Tenants,
                            format!("tenant {} is now {}", t.domain, t.status),
                        )
                    })
            }
            Pending::SetUserActive { user, active } => {
                users::set_active(&self.store, &session, &user, active)
                    .await
                    .map(|u| {
                        (
                            ScreenId::Users,
                            format!(
                                "user {} {}",
                                u.username,
                                if u.is_active {
                                    "activated"
                                } else {
                                    "deactivated"
                                }
                            ),
                        )
                    })
            }
            Pending::SetSenderActive { id, email, active } => {
                smtp::set_sender_active(&self.store, &session, id, active)
                    .await
                    .map(|()| {
                        let state = if active { "activated" } else { "deactivated" };
                        (ScreenId::Smtp, format!("sender {email} {state}"))
                    })
            }
            Pending::More(p) => self.confirmed_more(&session, p).await,
            Pending::Logs(p) => self.confirmed_logs(&session, p).await,
            Pending::Batch(p) => self.confirmed_batch(&session, p).await,
            Pending::Ops(p) => self.confirmed_ops(p).await,
            Pending::Dkim(p) => self.confirmed_dkim(&session, p).await,
        };
        match &result {
            Ok((_, text)) => self.audit_write(&action, Ok(text)).await,
            Err(e) => self.audit_write(&action, Err(&e.to_string())).await,
        }
        match result {
            Ok((screen, text)) => {
                tracing::info!("{text}");
                self.info(text);
                self.invalidate(screen);
                self.queue.push_back(AppEvent::Reload(screen));
            }
            Err(e) => self.deny(e.to_string()),
        }
    }

    async fn submit_form(&mut self, form: &Form<FormPurpose>) -> Result<(), DbError> {
        let Some(session) = self.session.clone() else {
            return Ok(());
        };
        if let FormPurpose::Dkim(p) = &form.purpose {
            // Checked here, stored only after the confirmation (audited there).
            return self.dkim_form_submitted(p, form).await;
        }
        let store = self.store.clone();
        let action = ops::action_name(&form.purpose);
        let outcome = self.submit_form_inner(&session, &store, form).await;
        match &outcome {
            Ok((_, text)) => self.audit_write(&action, Ok(text)).await,
            Err(e) => self.audit_write(&action, Err(&e.to_string())).await,
        }
        let (screen, text) = outcome?;
        tracing::info!("{text}");
        self.info(text);
        self.invalidate(screen);
        self.queue.push_back(AppEvent::Reload(screen));
        Ok(())
    }

    async fn submit_form_inner(
        &mut self,
        session: &Session,
        store: &Store,
        form: &Form<FormPurpose>,
    ) -> Result<(ScreenId, String), DbError> {
        let session = session.clone();
        let store = store.clone();
        let (screen, text) = match &form.purpose {
            FormPurpose::NewTenant => {
                let t = tenants::create(&store, &session, form).await?;
                (ScreenId::Tenants, format!("tenant {} created", t.domain))
            }
            FormPurpose::EditTenant(id) => {
                let t = tenants::update(&store, &session, *id, form).await?;
                (ScreenId::Tenants, format!("tenant {} saved", t.domain))
            }
            FormPurpose::NewUser => {
                let u = users::create(&store, &session, form).await?;
                (ScreenId::Users, format!("user {} created", u.username))
            }
            FormPurpose::EditUser(u) => {
                let u = users::update(&store, &session, u, form).await?;
                (
                    ScreenId::Users,
                    format!("user {} saved ({})", u.username, u.role),
                )
            }
            FormPurpose::ResetPassword(u) => {
                users::reset_password(&store, &session, u, form).await?;
                (ScreenId::Users, format!("password of {} reset", u.username))
            }
            FormPurpose::Smtp => {
                let s = smtp::save(
                    &store,
                    &session,
                    &self.opts.config_dir,
                    &self.opts.data_dir,
                    form,
                )
                .await?;
                let what = match s {
                    crate::db::SmtpSettings::Smtp(_) => "SMTP settings saved",
                    crate::db::SmtpSettings::Outbox(_) => "outbox transport saved",
                };
                (ScreenId::Smtp, what.to_string())
            }
            FormPurpose::NewSender => {
                let s = smtp::add_sender(&store, &session, form).await?;
                (ScreenId::Smtp, format!("sender address {} added", s.email))
            }
            FormPurpose::NewTemplate => {
                let t = templates::create(&store, &session, form).await?;
                (ScreenId::Templates, format!("template {} created", t.name))
            }
            FormPurpose::DuplicateTemplate(of) => {
                let t = templates::duplicate(&store, &session, of, form).await?;
                (
                    ScreenId::Templates,
                    format!("template {} duplicated as {}", of.name, t.name),
                )
            }
            FormPurpose::More(p) => self.submit_more(&session, p, form).await?,
            FormPurpose::Logs(p) => self.submit_logs(&session, p, form).await?,
            FormPurpose::Dkim(_) => {
                return Err(DbError::Invalid("DKIM forms are confirmed first".into()));
            }
        };
        Ok((screen, text))
    }

    async fn filter_key(&mut self, key: KeyEvent) {
        if matches!(
            self.screen,
            ScreenId::Dashboard
                | ScreenId::Editor
                | ScreenId::Smtp
                | ScreenId::BatchDetail
                | ScreenId::Composer
        ) {
            self.filtering = false;
            return;
        }
        match key.code {
            KeyCode::Enter => {
                self.filtering = false;
                return;
            }
            KeyCode::Esc => {
                self.filtering = false;
                self.edit_filter(|f| f.clear());
            }
            KeyCode::Backspace => self.edit_filter(|f| {
                f.pop();
            }),
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.edit_filter(|f| f.push(c))
            }
            _ => return,
        }
        self.load(self.screen).await;
    }

    fn invalidate(&mut self, screen: ScreenId) {
        match screen {
            ScreenId::Tenants => self.tenants.table.invalidate(),
            ScreenId::Users => self.users.table.invalidate(),
            ScreenId::Templates => self.templates.table.invalidate(),
            ScreenId::Dashboard | ScreenId::Editor | ScreenId::Smtp => {}
            ScreenId::Groups => self.groups.table.invalidate(),
            ScreenId::Contacts => self.contacts.table.invalidate(),
            ScreenId::Suppression => self.suppressions.table.invalidate(),
            ScreenId::Logs => self.logs.table.invalidate(),
            ScreenId::Batches => self.batches.table.invalidate(),
            ScreenId::BatchDetail | ScreenId::Composer => {}
            ScreenId::Audit => self.audit.table.invalidate(),
            ScreenId::Dkim => {}
        }
    }

    /// Loads what `screen` needs to draw; errors become a toast.
    async fn load(&mut self, screen: ScreenId) {
        let Some(session) = &self.session else { return };
        let result = match screen {
            ScreenId::Dashboard => self.dashboard.load(&self.store, session).await,
            ScreenId::Tenants => self.tenants.load(&self.store, session).await,
            ScreenId::Users => self.users.load(&self.store, session).await,
            ScreenId::Templates => self.templates.load(&self.store, session).await,
            ScreenId::Smtp => self.smtp.load(&self.store, session).await,
            ScreenId::Editor => Ok(()),
            ScreenId::Groups => self.groups.load(&self.store, session).await,
            ScreenId::Contacts => self.contacts.load(&self.store, session).await,
            ScreenId::Suppression => self.suppressions.load(&self.store, session).await,
            ScreenId::Logs => self.logs.load(&self.store, session).await,
            ScreenId::Batches | ScreenId::BatchDetail => {
                self.batches.load(&self.store, session).await
            }
            ScreenId::Composer => Ok(()),
            ScreenId::Audit => self.audit.load(&self.store, session).await,
            ScreenId::Dkim => self.dkim.load(&self.store, session).await,
        };
        if let Err(e) = result {
            tracing::error!("loading {}: {e}", screen.title());
            self.toast = Some(Toast::error(e.to_string()));
        }
    }

    async fn drain(&mut self) {
        let mut guard = 0;
        while let Some(ev) = self.queue.pop_front() {
            guard += 1;
            if guard > 64 {
                tracing::error!("internal event loop did not settle");
                self.queue.clear();
                break;
            }
            match ev {
                AppEvent::Toast(t) => self.toast = Some(t),
                AppEvent::Reload(s) => {
                    if s == self.screen {
                        self.load(s).await;
                    }
                }
                AppEvent::Goto(s) => {
                    self.goto(s).await;
                }
                AppEvent::OpenLogViewer { batch_id } => {
                    Box::pin(self.open_logs(Some(batch_id))).await;
                }
                AppEvent::Run(cmd) => {
                    if let Some(spec) = COMMANDS
                        .iter()
                        .find(|c| c.cmd == cmd && c.applies_to(self.screen))
                    {
                        Box::pin(self.run(spec)).await;
                    }
                }
                AppEvent::SwitchTenant(t) => {
                    if let Some(s) = &mut self.session {
                        let text = match &t {
                            Some(t) => format!("now in tenant {} ({})", t.name, t.domain),
                            None => "viewing all tenants".to_string(),
                        };
                        s.tenant = t.map(|t| *t);
                        self.users = Users::default();
                        self.templates = Templates::default();
                        self.smtp = Smtp::default();
                        self.batches = Batches {
                            utc_offset: self.batches.utc_offset,
                            ..Batches::default()
                        };
                        self.reset_tenant_screens();
                        self.layout_tables();
                        self.info(text);
                        self.load(self.screen).await;
                    }
                }
            }
        }
    }

    // ---- drawing: reads state only ----

    pub fn draw(&self, frame: &mut Frame) {
        let area = frame.area();
        frame.render_widget(Block::default().style(self.theme.base()), area);
        let Some(session) = &self.session else {
            self.login.draw(
                frame,
                area,
                &self.theme,
                self.login.wait_left(Instant::now()),
            );
            if let Some(t) = &self.toast {
                let [_, _, status, _] = chrome(area);
                self.draw_toast(frame, status, t);
            }
            return;
        };
        let [header, body, status, footer] = chrome(area);
        self.draw_header(frame, header);
        match self.screen {
            ScreenId::Dashboard => self.dashboard.draw(frame, body, &self.theme),
            ScreenId::Tenants => self.tenants.draw(frame, body, &self.theme),
            ScreenId::Users => self.users.draw(frame, body, &self.theme),
            ScreenId::Templates => self.templates.draw(frame, body, &self.theme),
            ScreenId::Smtp => self.smtp.draw(
                frame,
                body,
                &self.theme,
                session.tenant.as_ref().map(|t| t.domain.as_str()),
            ),
            ScreenId::Editor => {
                if let Some(ed) = &self.editor {
                    ed.draw(frame, body, &self.theme);
                }
            }
            ScreenId::Groups => self.groups.draw(frame, body, &self.theme),
            ScreenId::Contacts => self.contacts.draw(frame, body, &self.theme),
            ScreenId::Suppression => self.suppressions.draw(frame, body, &self.theme),
            ScreenId::Logs => self.logs.draw(frame, body, &self.theme),
            ScreenId::Batches => self.batches.draw(frame, body, &self.theme),
            ScreenId::BatchDetail => self.batches.draw_detail(frame, body, &self.theme),
            ScreenId::Composer => {
                if let Some(c) = &self.composer {
                    c.draw(frame, body, &self.theme);
                }
            }
            ScreenId::Audit => self.audit.draw(frame, body, &self.theme),
            ScreenId::Dkim => self.dkim.draw(
                frame,
                body,
                &self.theme,
                session.tenant.as_ref().map(|t| t.domain.as_str()),
            ),
        }
        self.draw_status(frame, status);
        self.draw_footer(frame, footer);
        match &self.popup {
            Some(Popup::Help) => super::widgets::help::draw(
                frame,
                body,
                &self.theme,
                &self.keymap,
                self.screen,
                self.opts.readonly,
            ),
            Some(Popup::Palette(p)) => p.draw(frame, body, &self.theme, &self.keymap),
            Some(Popup::Confirm(c)) => c.draw(frame, body, &self.theme),
            Some(Popup::Form(f)) => f.draw(frame, body, &self.theme),
            Some(Popup::Report {
                title,
                lines,
                running,
            }) => draw_report(frame, body, &self.theme, title, lines, *running),
            Some(Popup::Import(p)) => p.draw(frame, body, &self.theme),
            Some(Popup::Logs(p)) => p.draw(frame, body, &self.theme),
            None => {}
        }
    }

    /// The right part of the header: tenant and user, with quota and role unless `narrow`.
    fn header_right(&self, session: &Session, narrow: bool) -> String {
        let tenant = match &session.tenant {
            Some(x) if !narrow => {
                let pct = (usage_ratio(x) * 100.0).round();
                format!("{} ({pct}% quota)", x.domain)
            }
            Some(x) => shorten(&x.domain, 24),
            None => "all tenants".to_string(),
        };
        let mut right = if narrow {
            format!("│ {tenant} │ {} ", shorten(&session.user.username, 16))
        } else {
            format!(
                "│ {tenant} │ {} ({}) ",
                session.user.username, session.actor.role
            )
        };
        if self.opts.readonly {
            right.push_str(if narrow { "[ro] " } else { "[read-only] " });
        }
        right
    }

    /// The tab labels and the right part that fit `width`, trying in turn: full tab names,
    /// short names, short names with the plain user and tenant, numbers with only the
    /// current screen named. The user and the tenant always stay visible.
    fn header_layout(&self, width: usize) -> (Vec<String>, String) {
        let current = match self.screen {
            ScreenId::Contacts => ScreenId::Groups,
            ScreenId::Editor => ScreenId::Templates,
            ScreenId::BatchDetail | ScreenId::Composer => ScreenId::Batches,
            ScreenId::Dkim => ScreenId::Smtp,
            s => s,
        };
        let key = |i: usize| (i + 1) % 10;
        let full = |i: usize, s: ScreenId| format!(" {} {} ", key(i), s.title());
        let short = |i: usize, s: ScreenId| format!(" {} {}", key(i), s.short_title());
        let numbers = |i: usize, s: ScreenId| {
            if s == current {
                format!(" {} {}", key(i), s.short_title())
            } else {
                format!(" {}", key(i))
            }
        };
        let tiers: [(&TabLabel<'_>, bool); 4] = [
            (&full, false),
            (&short, false),
            (&short, true),
            (&numbers, true),
        ];
        let mut out = (Vec::new(), String::new());
        for (label, narrow) in tiers {
            let narrow = narrow || width < 100;
            let right = match &self.session {
                Some(s) => self.header_right(s, narrow),
                None => String::new(),
            };
            let labels: Vec<String> = ScreenId::ALL
                .iter()
                .enumerate()
                .map(|(i, s)| label(i, *s))
                .collect();
            let used: usize = labels.iter().map(|l| l.chars().count()).sum();
            let fits = BRAND_WIDTH + used + right.chars().count() <= width;
            out = (labels, right);
            if fits {
                break;
            }
        }
        out
    }

    fn draw_header(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let mut spans = vec![Span::styled(" RecallIQ ", t.accent()), Span::raw("│")];
        let available = self.screens();
        let (labels, right) = self.header_layout(area.width as usize);
        for (s, label) in ScreenId::ALL.iter().zip(labels) {
            let style = if *s == self.screen {
                t.selected()
            } else if available.contains(s) {
                t.base()
            } else {
                t.muted()
            };
            spans.push(Span::styled(label, style));
        }
        let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
        let pad = (area.width as usize).saturating_sub(used + right.chars().count());
        spans.push(Span::raw(" ".repeat(pad)));
        spans.push(Span::styled(right, t.muted()));
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
    }

    fn draw_status(&self, frame: &mut Frame, area: Rect) {
        if self.filtering {
            let filter = match self.screen {
                ScreenId::Tenants => &self.tenants.table.filter,
                ScreenId::Templates => &self.templates.table.filter,
                ScreenId::Groups => &self.groups.table.filter,
                ScreenId::Contacts => &self.contacts.table.filter,
                ScreenId::Suppression => &self.suppressions.table.filter,
                ScreenId::Logs => &self.logs.table.filter,
                ScreenId::Batches => &self.batches.table.filter,
                ScreenId::Audit => &self.audit.table.filter,
                _ => &self.users.table.filter,
            };
            frame.render_widget(
                Paragraph::new(Line::from(vec![
                    Span::styled("/", self.theme.key()),
                    Span::raw(format!("{filter}_")),
                    Span::styled("   enter keep  esc clear", self.theme.muted()),
                ])),
                area,
            );
        } else if let Some(t) = &self.toast {
            self.draw_toast(frame, area, t);
        }
    }

    fn draw_toast(&self, frame: &mut Frame, area: Rect, toast: &Toast) {
        let style = match toast.level {
            Level::Info => self.theme.ok(),
            Level::Error => self.theme.error(),
        };
        let mark = if toast.level == Level::Error {
            "✗ "
        } else {
            "✓ "
        };
        frame.render_widget(
            Paragraph::new(Line::styled(format!(" {mark}{}", toast.text), style)),
            area,
        );
    }

    /// The footer: the current screen's keys, from the registry.
    fn draw_footer(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let mut spans = Vec::new();
        for c in KeyMap::commands_for(self.screen).filter(|c| c.footer) {
            let key = self.keymap.label(c.id);
            if key.is_empty() {
                continue;
            }
            if c.writes && self.opts.readonly && self.screen == ScreenId::Logs {
                continue;
            }
            let disabled = (c.writes && self.opts.readonly) || self.permit(c).is_err();
            spans.push(Span::styled(
                format!(" {key}"),
                if disabled { t.muted() } else { t.key() },
            ));
            spans.push(Span::styled(format!(" {} ", c.description), t.muted()));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
    }
}

/// "Activate" or "Deactivate": the verb of a toggle that leaves the row `active`.
fn activate_verb(active: bool) -> &'static str {
    if active { "Activate" } else { "Deactivate" }
}

/// The question before a toggle: title "Verb noun", message "Verb name? consequence".
fn toggle_confirm(
    verb: &str,
    noun: &str,
    name: &str,
    consequence: &str,
    action: Pending,
) -> Confirm<Pending> {
    Confirm::new(
        format!("{verb} {noun}"),
        format!("{verb} {name}? {consequence}"),
        action,
    )
}

/// " RecallIQ │".
const BRAND_WIDTH: usize = 11;

/// How a tab is labelled: its index and screen to text.
type TabLabel<'a> = dyn Fn(usize, ScreenId) -> String + 'a;

/// `text` cut to `max` characters with an ellipsis.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

fn draw_report(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    title: &str,
    lines: &[String],
    running: bool,
) {
    let height = (lines.len() as u16 + 4).min(area.height);
    let rect = super::widgets::centered(area, area.width.saturating_sub(4).min(90), height);
    frame.render_widget(ratatui::widgets::Clear, rect);
    let mut text: Vec<Line> = lines
        .iter()
        .map(|l| {
            if l.starts_with("failed") {
                Line::styled(l.clone(), theme.error())
            } else {
                Line::raw(l.clone())
            }
        })
        .collect();
    text.push(Line::raw(""));
    text.push(Line::styled(
        if running {
            "esc hide"
        } else {
            "any key closes"
        },
        theme.muted(),
    ));
    frame.render_widget(
        Paragraph::new(text)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .block(
                Block::bordered()
                    .title(Span::styled(format!(" {title} "), theme.accent()))
                    .style(theme.base()),
            ),
        rect,
    );
}
