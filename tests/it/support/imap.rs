//! A real IMAP server for the tests: Debian's dovecot (`dovecot-imapd`), started with a
//! config written into a temp dir (no system config): passwd-file auth, maildirs in the temp
//! dir, plain IMAP with STARTTLS on one random port and IMAPS on another (self-signed
//! certificate from rcgen). Run as an ordinary user it runs as that user; run as root, its
//! processes and mail files belong to `nobody`.
//!
//! Without dovecot: `Dovecot::start` returns `None` with a notice, or panics when CI=true
//! (`.ci/run` installs it).
//!
//! `ImapClient` is a plain-text client (async-imap) to APPEND messages and look at folders.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::net::TcpStream;

pub const USER: &str = "bounces";
pub const PASSWORD: &str = "imap-test-secret";

pub struct Dovecot {
    dir: tempfile::TempDir,
    pub port: u16,
    pub tls_port: u16,
    conf: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn binary() -> Option<PathBuf> {
    ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn id(flag: &str) -> String {
    let out = Command::new("id").arg(flag).output().expect("run id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn unavailable(reason: String) -> Option<Dovecot> {
    if super::ci() {
        panic!("CI=true but no IMAP server for the tests: {reason}");
    }
    eprintln!("NOTICE: IMAP tests skipped: {reason} (set CI=true to make this fatal)");
    None
}

impl Dovecot {
    /// On two random free ports.
    pub fn start() -> Option<Dovecot> {
        Dovecot::start_on(free_port(), free_port())
    }

    /// On the given ports (a server coming back where it was).
    pub fn start_on(port: u16, tls_port: u16) -> Option<Dovecot> {
        let Some(bin) = binary() else {
            return unavailable(
                "dovecot is not installed (apt-get install dovecot-imapd)".to_string(),
            );
        };
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (user, group) = if id("-u") == "0" {
            ("nobody".to_string(), "nogroup".to_string())
        } else {
            (id("-un"), id("-gn"))
        };
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        if id("-u") == "0" {
            let st = Command::new("chown")
                .args([
                    &format!("{user}:{group}"),
                    root.join("mail").to_str().unwrap(),
                ])
                .status()
                .unwrap();
            assert!(st.success(), "chown the mail dir");
        }
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("self-signed certificate");
        std::fs::write(root.join("cert.pem"), cert.cert.pem()).unwrap();
        std::fs::write(root.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
        std::fs::write(
            root.join("passwd"),
            format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n"),
        )
        .unwrap();
        let r = root.display();
        let conf = root.join("dovecot.conf");
        std::fs::write(
            &conf,
            format!(
                "base_dir = {r}/run
state_dir = {r}/state
log_path = {r}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{r}/cert.pem
ssl_key = <{r}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {user}
default_internal_user = {user}
default_internal_group = {group}
first_valid_uid = 1
mail_location = maildir:{r}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {r}/passwd
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={r}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
  }}
}}
service auth {{
  chroot =
}}
service anvil {{
  chroot =
}}
"
            ),
        )
        .unwrap();
        // The daemon keeps inherited pipes open: its stderr goes to a file, not a pipe.
        let errors = root.join("start.err");
        let status = Command::new(&bin)
            .arg("-c")
            .arg(&conf)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&errors).unwrap())
            .status()
            .unwrap();
        let d = Dovecot {
            dir,
            port,
            tls_port,
            conf,
        };
        if !status.success() {
            return unavailable(format!(
                "dovecot did not start: {}{}",
                std::fs::read_to_string(&errors).unwrap_or_default(),
                d.log()
            ));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return unavailable(format!("dovecot is not listening: {}", d.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(d)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// A logged-in plain-text client.
    pub async fn client(&self) -> ImapClient {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let mut c = async_imap::Client::new(tcp);
        c.read_response().await.unwrap().expect("greeting");
        let session = c
            .login(USER, PASSWORD)
            .await
            .map_err(|(e, _)| e)
            .unwrap_or_else(|e| panic!("test login: {e}\n{}", self.log()));
        ImapClient { session }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.dir.path().join("run/master.pid"))
            .unwrap_or_default()
            .trim()
            .to_string();
        if !pid.is_empty() {
            let _ = Command::new("kill").arg(&pid).status();
            // The master removes its pid file on the way out.
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.dir.path().join("run/master.pid").exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// One message of a folder: its flags and its raw text.
#[derive(Debug, Clone)]
pub struct Stored {
    pub flags: Vec<String>,
    pub raw: Vec<u8>,
}

impl Stored {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

pub struct ImapClient {
    session: async_imap::Session<TcpStream>,
}

impl ImapClient {
    pub async fn append(&mut self, folder: &str, raw: &[u8]) {
        self.session
            .append(folder, None, None, raw)
            .await
            .unwrap_or_else(|e| panic!("APPEND to {folder}: {e}"));
    }

    pub async fn create(&mut self, folder: &str) {
        self.session
            .create(folder)
            .await
            .unwrap_or_else(|e| panic!("CREATE {folder}: {e}"));
    }

    /// Every message in `folder` (empty when the folder does not exist).
    pub async fn messages(&mut self, folder: &str) -> Vec<Stored> {
        if self.session.examine(folder).await.is_err() {
            return Vec::new();
        }
        let fetched: Vec<_> = self
            .session
            .fetch("1:*", "(FLAGS BODY.PEEK[])")
            .await
            .unwrap()
            .collect()
            .await;
        let mut out = Vec::new();
        for f in fetched {
            let Ok(f) = f else { continue };
            out.push(Stored {
                flags: f.flags().map(|fl| format!("{fl:?}")).collect(),
                raw: f.body().unwrap_or_default().to_vec(),
            });
        }
        out
    }

    pub async fn logout(mut self) {
        let _ = self.session.logout().await;
    }
}
