//! TUI tests: whole-screen insta snapshots of every screen and popup at 80x24 and 120x40
//! (the `App` driven with `handle_key` and drawn on `TestBackend`), behaviour checks through
//! the store, an end-to-end run of the real binary in tmux, SIGHUP restoring the terminal,
//! and an ignored benchmark on 100,000 users.

use std::process::Command;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use recalliq::auth::make_password_with;
use recalliq::db::{Actor, NewTenant, NewUser, Store, UserScope};
use recalliq::domain::Role;
use recalliq::tui::{App, Options};

use crate::support::cli::Env;
use crate::support::with_sqlite;

pub(crate) const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

fn cheap_hash(pw: &str) -> String {
    make_password_with(pw, "testsalt", 1000).unwrap()
}

/// Two tenants, a super admin, a tenant admin, staff and a plain user.
pub(crate) async fn seed(store: &Store) {
    let all = Actor::system().all_tenants().unwrap();
    let acme = store
        .create_tenant(
            &all,
            &NewTenant {
                name: "Acme Corp".into(),
                domain: "acme.test".into(),
                monthly_email_limit: Some(1000),
                ..NewTenant::default()
            },
        )
        .await
        .unwrap();
    store
        .create_tenant(
            &all,
            &NewTenant {
                name: "Globex".into(),
                domain: "globex.test".into(),
                monthly_email_limit: Some(500),
                ..NewTenant::default()
            },
        )
        .await
        .unwrap();
    let users = [
        ("root", Role::SuperAdmin, None),
        ("alice", Role::TenantAdmin, Some(acme.id)),
        ("bob", Role::Staff, Some(acme.id)),
        ("carol", Role::User, Some(acme.id)),
    ];
    for (name, role, tenant) in users {
        store
            .create_user(
                UserScope::All(all),
                &NewUser {
                    username: name.into(),
                    email: format!("{name}@example.com"),
                    password_hash: cheap_hash("secret-pw"),
                    role,
                    tenant_id: tenant,
                    first_name: Some(name.to_uppercase()),
                    last_name: None,
                },
            )
            .await
            .unwrap();
    }
}

pub(crate) fn opts() -> Options {
    let dir = std::env::temp_dir().join("recalliq-tui-tests-no-config");
    Options {
        config_dir: dir.clone(),
        data_dir: dir,
        no_color: true,
        ..Options::default()
    }
}

pub(crate) async fn app_as(
    store: &Store,
    username: &str,
    (w, h): (u16, u16),
    opts: Options,
) -> App {
    let mut app = App::new(store.clone(), opts);
    app.resize(w, h).await;
    if !username.is_empty() {
        let all = Actor::system().all_tenants().unwrap();
        let user = store
            .user_by_username(UserScope::All(all), username)
            .await
            .unwrap();
        let actor = Actor::from_user(&user).unwrap();
        app.start_session(user, actor).await;
    }
    app
}

pub(crate) fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

pub(crate) async fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        app.handle_key(key(KeyCode::Char(c))).await;
    }
}

pub(crate) async fn press_code(app: &mut App, code: KeyCode) {
    app.handle_key(key(code)).await;
}

pub(crate) fn render(app: &App, (w, h): (u16, u16)) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| app.draw(f)).unwrap();
    let buf = term.backend().buffer();
    let mut out = String::new();
    for y in 0..h {
        let mut line = String::new();
        for x in 0..w {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub(crate) fn snap(name: &str, size: (u16, u16), text: String) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(format!("{name}_{}x{}", size.0, size.1), text));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_of_every_screen_and_popup() {
    with_sqlite(|store| async move {
        seed(&store).await;
        for size in SIZES {
            // Login, empty and after a refusal.
            let mut app = app_as(
                &store,
                "",
                size,
                Options {
                    user: Some("root".into()),
                    ..opts()
                },
            )
            .await;
            snap("login", size, render(&app, size));
            press(&mut app, "wrong").await;
            press_code(&mut app, KeyCode::Enter).await;
            snap("login_refused", size, render(&app, size));

            // Super admin: dashboard over all tenants, tenants, switch into acme.
            let mut app = app_as(&store, "root", size, opts()).await;
            snap("dashboard_all", size, render(&app, size));
            press(&mut app, "2").await;
            snap("tenants", size, render(&app, size));
            press(&mut app, "?").await;
            snap("help_tenants", size, render(&app, size));
            press_code(&mut app, KeyCode::Esc).await;
            press(&mut app, "s").await;
            snap("confirm_suspend", size, render(&app, size));
            press(&mut app, "n").await;
            press(&mut app, "n").await;
            press_code(&mut app, KeyCode::Enter).await;
            snap("form_new_tenant_invalid", size, render(&app, size));
            press_code(&mut app, KeyCode::Esc).await;
            press(&mut app, "e").await;
            snap("form_edit_tenant", size, render(&app, size));
            press_code(&mut app, KeyCode::Esc).await;
            press_code(&mut app, KeyCode::Enter).await;
            snap("dashboard_tenant", size, render(&app, size));
            press(&mut app, "3").await;
            snap("users", size, render(&app, size));
            press(&mut app, "/ca").await;
            snap("filter", size, render(&app, size));
            press_code(&mut app, KeyCode::Enter).await;
            press_code(&mut app, KeyCode::Esc).await;
            press(&mut app, "n").await;
            snap("form_new_user", size, render(&app, size));
            press_code(&mut app, KeyCode::Esc).await;
            press(&mut app, "p").await;
            snap("form_reset_password", size, render(&app, size));
            press_code(&mut app, KeyCode::Esc).await;
            press(&mut app, ":").await;
            snap("palette", size, render(&app, size));
            press(&mut app, "res").await;
            snap("palette_query", size, render(&app, size));
            press_code(&mut app, KeyCode::Esc).await;
            press(&mut app, "?").await;
            snap("help_users", size, render(&app, size));

            // A read-only user is told why a write is refused.
            let mut app = app_as(&store, "carol", size, opts()).await;
            press(&mut app, "3").await;
            press(&mut app, "n").await;
            snap("users_denied", size, render(&app, size));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_and_readonly_are_applied() {
    with_sqlite(|store| async move {
        seed(&store).await;
        let size = (100, 30);
        // Staff cannot manage users; the toast says why and nothing opens.
        let mut app = app_as(&store, "bob", size, opts()).await;
        press(&mut app, "3n").await;
        assert!(app.popup.is_none());
        let toast = app.toast.clone().expect("denial toast").text;
        assert!(toast.contains("may not manage users"), "{toast}");
        // Tenant admins never see the tenants screen.
        let mut app = app_as(&store, "alice", size, opts()).await;
        press(&mut app, "2").await;
        assert_eq!(app.screen, recalliq::tui::keymap::ScreenId::Dashboard);
        assert!(
            app.toast
                .clone()
                .unwrap()
                .text
                .contains("may not manage tenants")
        );
        // --readonly disables writes even for a super admin.
        let mut app = app_as(
            &store,
            "root",
            size,
            Options {
                readonly: true,
                ..opts()
            },
        )
        .await;
        press(&mut app, "2n").await;
        assert!(app.popup.is_none());
        assert!(app.toast.clone().unwrap().text.contains("read-only"));
        // Tab cycles screens.
        press_code(&mut app, KeyCode::Tab).await;
        assert_eq!(app.screen, recalliq::tui::keymap::ScreenId::Users);
        press_code(&mut app, KeyCode::BackTab).await;
        assert_eq!(app.screen, recalliq::tui::keymap::ScreenId::Tenants);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_the_tui_reach_the_store() {
    with_sqlite(|store| async move {
        seed(&store).await;
        let size = (120, 40);
        let mut app = app_as(&store, "root", size, opts()).await;
        // Create a tenant through the form.
        press(&mut app, "2n").await;
        press(&mut app, "Initech").await;
        press_code(&mut app, KeyCode::Tab).await;
        press(&mut app, "initech.test").await;
        press_code(&mut app, KeyCode::Enter).await;
        assert!(app.popup.is_none(), "form closed: {:?}", app.popup);
        let all = Actor::system().all_tenants().unwrap();
        let t = store.tenant_by_domain(&all, "initech.test").await.unwrap();
        assert_eq!(t.name, "Initech");
        // Suspend the first tenant (acme) after confirming.
        press_code(&mut app, KeyCode::Home).await;
        press(&mut app, "sy").await;
        let acme = store.tenant_by_domain(&all, "acme.test").await.unwrap();
        assert_eq!(acme.status, "suspended");
        // A suspended tenant's users are refused at login, with the reason.
        let mut login = app_as(
            &store,
            "",
            size,
            Options {
                user: Some("alice".into()),
                ..opts()
            },
        )
        .await;
        press(&mut login, "secret-pw").await;
        press_code(&mut login, KeyCode::Enter).await;
        assert!(login.session.is_none());
        assert!(login.login.message.clone().unwrap().contains("suspended"));
        // Activate again; alice logs in and last_login is recorded.
        press(&mut app, "sy").await;
        let mut login = app_as(
            &store,
            "",
            size,
            Options {
                user: Some("alice".into()),
                ..opts()
            },
        )
        .await;
        press(&mut login, "secret-pw").await;
        press_code(&mut login, KeyCode::Enter).await;
        assert!(login.session.is_some(), "{:?}", login.login.message);
        let alice = store
            .user_by_username(UserScope::All(all), "alice")
            .await
            .unwrap();
        assert!(alice.last_login.is_some());
        // Deactivate carol from the users screen (filtered to her).
        press(&mut app, "3/carol").await;
        press_code(&mut app, KeyCode::Enter).await;
        press(&mut app, "dy").await;
        let carol = store
            .user_by_username(UserScope::All(all), "carol")
            .await
            .unwrap();
        assert!(!carol.is_active);
        // Repeated failures make the next attempt wait.
        let mut login = app_as(
            &store,
            "",
            size,
            Options {
                user: Some("bob".into()),
                ..opts()
            },
        )
        .await;
        for _ in 0..2 {
            press(&mut login, "nope").await;
            press_code(&mut login, KeyCode::Enter).await;
        }
        assert!(login.login.wait_left(Instant::now()).is_some());
        press(&mut login, "secret-pw").await;
        press_code(&mut login, KeyCode::Enter).await;
        assert!(login.session.is_none(), "locked out for a moment");
        assert!(login.login.message.clone().unwrap().contains("wait"));
    })
    .await;
}

// ---- the real binary in tmux ----

pub(crate) struct Tmux {
    socket: std::path::PathBuf,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket);
        c
    }

    /// Starts `script` in a 120x40 window.
    pub(crate) fn start(dir: &std::path::Path, script: &str) -> Tmux {
        let path = dir.join("run.sh");
        std::fs::write(&path, script).unwrap();
        let t = Tmux {
            socket: dir.join("tmux.sock"),
        };
        let ok = t
            .cmd()
            .args([
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "120",
                "-y",
                "40",
            ])
            .arg(format!("bash {}", path.display()))
            .status()
            .unwrap();
        assert!(ok.success());
        t
    }

    pub(crate) fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[track_caller]
    pub(crate) fn wait_for(&self, needle: &str) {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.screen();
            if s.contains(needle) {
                return;
            }
            if Instant::now() > until {
                panic!("timed out waiting for {needle:?}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn keys(&self, keys: &[&str]) {
        self.cmd()
            .args(["send-keys", "-t", "t"])
            .args(keys)
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }

    pub(crate) fn text(&self, text: &str) {
        self.cmd()
            .args(["send-keys", "-t", "t", "-l", text])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }

    fn pane_pid(&self) -> u32 {
        let out = self
            .cmd()
            .args(["list-panes", "-t", "t", "-F", "#{pane_pid}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

pub(crate) fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

pub(crate) fn script(env: &Env, args: &str) -> String {
    format!(
        "export RECALLIQ_CONFIG_DIR='{}' RECALLIQ_DATA_DIR='{}' TERM=xterm-256color NO_COLOR=1\n\
         unset RECALLIQ_DATABASE_URL\n\
         '{}' {args}\n\
         echo \"exit=$?\" > '{dir}/exit.txt'\n\
         stty -a > '{dir}/stty.txt'\n\
         sleep 60\n",
        env.config_dir().display(),
        env.data_dir().display(),
        env!("CARGO_BIN_EXE_recalliq"),
        dir = env.dir.path().display(),
    )
}

pub(crate) fn wait_file(path: &std::path::Path) -> String {
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if let Ok(s) = std::fs::read_to_string(path)
            && !s.is_empty()
        {
            return s;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{} never written", path.display());
}

fn create_root(env: &Env) {
    env.run(
        &[
            "user",
            "create",
            "--username",
            "root",
            "--email",
            "root@example.com",
            "--role",
            "super_admin",
            "--password-stdin",
        ],
        Some("rootpass1\n"),
    )
    .ok();
}

fn assert_cooked(stty: &str) {
    let words: Vec<&str> = stty.split_whitespace().collect();
    assert!(
        words.contains(&"icanon") && words.contains(&"echo"),
        "terminal left raw: {stty}"
    );
}

#[test]
fn end_to_end_in_tmux() {
    if !tmux_available() {
        eprintln!("NOTICE: tmux not installed; end-to-end TUI test skipped");
        return;
    }
    let env = Env::new();
    create_root(&env);
    let tmux = Tmux::start(env.dir.path(), &script(&env, "--user root"));
    tmux.wait_for("Password");
    tmux.text("rootpass1");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Dashboard — all tenants");
    // Create a tenant.
    tmux.text("2");
    tmux.wait_for("0 rows");
    tmux.text("n");
    tmux.wait_for("New tenant");
    tmux.text("Acme Corp");
    tmux.keys(&["Tab"]);
    tmux.text("acme.test");
    tmux.keys(&["Enter"]);
    tmux.wait_for("tenant acme.test created");
    // Switch into it and create a user.
    tmux.keys(&["Enter"]);
    tmux.wait_for("now in tenant Acme Corp");
    tmux.text("3");
    tmux.wait_for("0 rows");
    tmux.text("n");
    tmux.wait_for("New user");
    tmux.text("dave");
    tmux.keys(&["Tab"]);
    tmux.text("dave@acme.test");
    tmux.keys(&["Tab", "Tab"]);
    tmux.text("davepass1");
    tmux.keys(&["Enter"]);
    tmux.wait_for("user dave created");
    // Filter, help, palette, quit through the palette.
    tmux.text("/dav");
    tmux.wait_for("/dav");
    tmux.keys(&["Enter"]);
    tmux.text("?");
    tmux.wait_for("Keys: Users");
    tmux.keys(&["Escape"]);
    tmux.text(":");
    tmux.wait_for("Command");
    tmux.text("quit");
    tmux.keys(&["Enter"]);
    let exit = wait_file(&env.dir.path().join("exit.txt"));
    assert_eq!(exit.trim(), "exit=0");
    assert_cooked(&wait_file(&env.dir.path().join("stty.txt")));

    // The database through the store.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", env.data_dir().join("recalliq.db").display());
        let store = Store::connect(&url).await.unwrap();
        let all = Actor::system().all_tenants().unwrap();
        let acme = store.tenant_by_domain(&all, "acme.test").await.unwrap();
        assert_eq!(acme.name, "Acme Corp");
        let dave = store
            .user_by_username(UserScope::All(all), "dave")
            .await
            .unwrap();
        assert_eq!(dave.tenant_id, Some(acme.id));
        assert_eq!(dave.role, "user");
        let root = store
            .user_by_username(UserScope::All(all), "root")
            .await
            .unwrap();
        assert!(root.last_login.is_some());
        store.close().await;
    });
    let log = std::fs::read_to_string(env.data_dir().join("recalliq.log")).unwrap_or_default();
    assert!(
        log.contains("logged in"),
        "tracing goes to the log file: {log}"
    );
}

#[test]
fn sighup_restores_the_terminal() {
    if !tmux_available() {
        eprintln!("NOTICE: tmux not installed; SIGHUP test skipped");
        return;
    }
    let env = Env::new();
    create_root(&env);
    let tmux = Tmux::start(env.dir.path(), &script(&env, "--user root"));
    tmux.wait_for("Password");
    // The binary is the shell's child.
    let shell = tmux.pane_pid();
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
    let pid: i32 = children
        .split_whitespace()
        .next()
        .expect("recalliq running")
        .parse()
        .unwrap();
    let ok = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let exit = wait_file(&env.dir.path().join("exit.txt"));
    assert_eq!(exit.trim(), "exit=0", "SIGHUP is a clean exit");
    assert_cooked(&wait_file(&env.dir.path().join("stty.txt")));
}

/// `cargo test --release --test it tui::bench_users_100k -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_users_100k() {
    with_sqlite(|store| async move {
        seed(&store).await;
        let pool = store.sqlite_pool().unwrap().clone();
        let t0 = Instant::now();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
             INSERT INTO core_user (username, email, password, role, tenant_id, is_active, is_staff, is_superuser, first_name, last_name, date_joined)
             SELECT 'user' || i, 'user' || i || '@bench.test', 'x', 'user', 1, TRUE, FALSE, FALSE, 'First', 'Last', '2026-01-01 00:00:00' FROM n",
        )
        .execute(&pool)
        .await
        .unwrap();
        eprintln!("seeded 100,000 users in {:?}", t0.elapsed());
        let size = (200, 60);
        let mut app = app_as(&store, "root", size, opts()).await;
        let mut term = Terminal::new(TestBackend::new(size.0, size.1)).unwrap();
        let t = Instant::now();
        press(&mut app, "3").await;
        term.draw(|f| app.draw(f)).unwrap();
        let first = t.elapsed();
        let mut worst = Duration::ZERO;
        let mut total = Duration::ZERO;
        let mut n = 0;
        let codes = [KeyCode::Down, KeyCode::PageDown, KeyCode::End, KeyCode::PageUp, KeyCode::Up, KeyCode::Home];
        for round in 0..20 {
            for code in codes {
                let t = Instant::now();
                press_code(&mut app, code).await;
                term.draw(|f| app.draw(f)).unwrap();
                let d = t.elapsed();
                if round > 0 {
                    worst = worst.max(d);
                    total += d;
                    n += 1;
                }
            }
        }
        eprintln!(
            "users screen on 100,004 users: first frame {first:?}; keypress to frame: mean {:?}, worst {worst:?} over {n} keys",
            total / n
        );
        assert_eq!(app.users.table.total, 100_004);
    })
    .await;
}

fn buffer(app: &App, (w, h): (u16, u16)) -> ratatui::buffer::Buffer {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| app.draw(f)).unwrap();
    term.backend().buffer().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colours_resizing_mouse_and_key_overrides() {
    use ratatui::style::Color;
    with_sqlite(|store| async move {
        seed(&store).await;
        // NO_COLOR: not one coloured cell.
        let mut app = app_as(&store, "root", (120, 40), opts()).await;
        press(&mut app, "2").await;
        let buf = buffer(&app, (120, 40));
        assert!(
            buf.content
                .iter()
                .all(|c| c.fg == Color::Reset && c.bg == Color::Reset)
        );
        // Default and light themes: only the 16 named ANSI colours.
        for theme in ["dark", "light"] {
            let mut app = app_as(
                &store,
                "root",
                (120, 40),
                Options {
                    theme: Some(theme.into()),
                    no_color: false,
                    ..opts()
                },
            )
            .await;
            press(&mut app, "2").await;
            let buf = buffer(&app, (120, 40));
            assert!(
                buf.content
                    .iter()
                    .all(|c| !matches!(c.fg, Color::Rgb(..) | Color::Indexed(_))
                        && !matches!(c.bg, Color::Rgb(..) | Color::Indexed(_))),
                "{theme}"
            );
            assert!(
                buf.content.iter().any(|c| c.fg != Color::Reset),
                "{theme} has colour"
            );
        }
        // Resizing from 80x24 to 200x60 and back keeps the selection visible.
        let mut app = app_as(&store, "root", (80, 24), opts()).await;
        press(&mut app, "3G").await;
        app.resize(200, 60).await;
        assert!(render(&app, (200, 60)).contains("carol@example.com"));
        app.resize(80, 24).await;
        assert!(render(&app, (80, 24)).contains("carol@example.com"));
        app.resize(20, 5).await;
        let _ = render(&app, (20, 5));
        // Mouse: ignored without --mouse, scrolls with it.
        use crossterm::event::{MouseEvent, MouseEventKind};
        let scroll = MouseEvent {
            kind: MouseEventKind::ScrollDown,
            column: 10,
            row: 5,
            modifiers: KeyModifiers::NONE,
        };
        let mut app = app_as(&store, "root", (120, 40), opts()).await;
        press(&mut app, "3").await;
        app.handle_mouse(scroll).await;
        assert_eq!(app.users.table.selected, 0);
        let mut app = app_as(
            &store,
            "root",
            (120, 40),
            Options {
                mouse: true,
                ..opts()
            },
        )
        .await;
        press(&mut app, "3").await;
        app.handle_mouse(scroll).await;
        assert_eq!(app.users.table.selected, 1);
        // keys.toml in the config dir rebinds commands.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keys.toml"), "quit = \"x\"\n").unwrap();
        let mut app = app_as(
            &store,
            "root",
            (120, 40),
            Options {
                config_dir: dir.path().into(),
                ..opts()
            },
        )
        .await;
        press(&mut app, "q").await;
        assert!(!app.quit);
        press(&mut app, "x").await;
        assert!(app.quit);
    })
    .await;
}
