//! SMTP passwords encrypted at rest: XChaCha20-Poly1305 with a 32-byte key from
//! `RECALLIQ_SECRET_KEY` (base64) or from `secret.key` in the config directory, created with
//! mode 0600 on first use. The stored form is `v1:<base64(nonce || ciphertext)>`; the tenant
//! id is authenticated data, so a value copied to another tenant does not decrypt.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

pub const ENV_SECRET_KEY: &str = "RECALLIQ_SECRET_KEY";
pub const KEY_FILE: &str = "secret.key";
const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 24;

/// A plaintext secret. Its `Debug` and `Display` print `***`, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The plaintext, for the one place that needs it (SMTP AUTH).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where the key came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Env,
    File(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Env => f.write_str(ENV_SECRET_KEY),
            KeySource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{ENV_SECRET_KEY} must be the base64 encoding of exactly 32 bytes")]
    BadEnvKey,
    #[error("key file {0} must hold the base64 encoding of exactly 32 bytes")]
    BadKeyFile(PathBuf),
    #[error(
        "key file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    KeyFilePermissions { path: PathBuf, mode: u32 },
    #[error("cannot use key file {path}: {source}")]
    KeyFileIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot decrypt SMTP password: wrong key ({ENV_SECRET_KEY} or {0})")]
    WrongKey(String),
    #[error("cannot decrypt SMTP password: the stored value is not in the v1:<base64> form")]
    Malformed,
    #[error("cannot encrypt the SMTP password")]
    Encrypt,
}

/// The key that encrypts SMTP passwords. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey {
    key: [u8; 32],
    source: KeySource,
    /// The key file that would be used without the environment variable, for messages.
    key_file: Option<PathBuf>,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

fn decode_key(text: &str) -> Option<[u8; 32]> {
    B64.decode(text.trim()).ok()?.try_into().ok()
}

impl SecretKey {
    /// The key from `RECALLIQ_SECRET_KEY` when set, else from `secret.key` in `config_dir`
    /// (created on first use).
    pub fn load(config_dir: &Path) -> Result<SecretKey, SecretError> {
        let env = std::env::var(ENV_SECRET_KEY)
            .ok()
            .filter(|v| !v.trim().is_empty());
        SecretKey::resolve(env.as_deref(), &config_dir.join(KEY_FILE))
    }

    /// As `load`, with the environment value passed in (tests).
    pub fn resolve(env: Option<&str>, key_file: &Path) -> Result<SecretKey, SecretError> {
        match env {
            Some(v) => Ok(SecretKey {
                key: decode_key(v).ok_or(SecretError::BadEnvKey)?,
                source: KeySource::Env,
                key_file: Some(key_file.to_path_buf()),
            }),
            None => SecretKey::from_file(key_file),
        }
    }

    pub fn from_bytes(key: [u8; 32], source: KeySource) -> SecretKey {
        let key_file = match &source {
            KeySource::File(p) => Some(p.clone()),
            KeySource::Env => None,
        };
        SecretKey {
            key,
            source,
            key_file,
        }
    }

    /// A fresh random key, base64, as `RECALLIQ_SECRET_KEY` expects.
    pub fn generate_base64() -> String {
        B64.encode(rand::random::<[u8; 32]>())
    }

    /// Reads the key file, creating it (0600, random key) when missing. A file that group
    /// or others may read is refused.
    pub fn from_file(path: &Path) -> Result<SecretKey, SecretError> {
        let io = |source| SecretError::KeyFileIo {
            path: path.to_path_buf(),
            source,
        };
        if !path.exists() {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            match opts.open(path) {
                Ok(mut f) => {
                    use std::io::Write;
                    let text = format!("{}\n", SecretKey::generate_base64());
                    f.write_all(text.as_bytes()).map_err(io)?;
                    f.sync_all().map_err(io)?;
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(SecretError::KeyFilePermissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Ok(SecretKey {
            key: decode_key(&text).ok_or_else(|| SecretError::BadKeyFile(path.to_path_buf()))?,
            source: KeySource::File(path.to_path_buf()),
            key_file: Some(path.to_path_buf()),
        })
    }

    /// A key for another purpose (`purpose` names it), derived with HMAC-SHA256 so that
    /// the secret key itself is never used twice. Unsubscribe tokens are signed with one.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.key);
        let tag = ring::hmac::sign(&k, format!("recalliq derived key: {purpose}").as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    pub fn source(&self) -> &KeySource {
        &self.source
    }

    fn cipher(&self) -> Result<XChaCha20Poly1305, SecretError> {
        XChaCha20Poly1305::new_from_slice(&self.key).map_err(|_| SecretError::Encrypt)
    }

    /// Encrypts `plain` for tenant `tenant_id`: `v1:<base64(nonce || ciphertext)>`.
    pub fn encrypt(&self, plain: &Secret, tenant_id: i32) -> Result<String, SecretError> {
        self.encrypt_bound(plain, &aad(tenant_id))
    }

    /// Decrypts a stored value; a wrong key (or a value of another tenant) is an error that
    /// names where keys come from.
    pub fn decrypt(&self, stored: &str, tenant_id: i32) -> Result<Secret, SecretError> {
        self.decrypt_bound(stored, &aad(tenant_id))
    }

    /// As `encrypt`, bound to `context` (authenticated data) instead of an SMTP password
    /// of a tenant: a value only decrypts with the same context (DKIM keys use this).
    pub fn encrypt_bound(&self, plain: &Secret, context: &[u8]) -> Result<String, SecretError> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = XNonce::from(nonce_bytes);
        let ct = self
            .cipher()?
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.expose().as_bytes(),
                    aad: context,
                },
            )
            .map_err(|_| SecretError::Encrypt)?;
        let mut blob = nonce_bytes.to_vec();
        blob.extend_from_slice(&ct);
        Ok(format!("{PREFIX}{}", B64.encode(blob)))
    }

    /// Decrypts a value of `encrypt_bound` made with the same `context`.
    pub fn decrypt_bound(&self, stored: &str, context: &[u8]) -> Result<Secret, SecretError> {
        let blob = stored
            .strip_prefix(PREFIX)
            .and_then(|b| B64.decode(b.trim()).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or(SecretError::Malformed)?;
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        let nonce_arr: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SecretError::Malformed)?;
        let wrong = || SecretError::WrongKey(self.key_location());
        let plain = self
            .cipher()?
            .decrypt(
                &XNonce::from(nonce_arr),
                Payload {
                    msg: ct,
                    aad: context,
                },
            )
            .map_err(|_| wrong())?;
        String::from_utf8(plain)
            .map(Secret)
            .map_err(|_| SecretError::Malformed)
    }

    /// The key file this key is (or would be) read from, for messages.
    pub fn key_location(&self) -> String {
        match &self.key_file {
            Some(p) => p.display().to_string(),
            None => KEY_FILE.to_string(),
        }
    }
}

fn aad(tenant_id: i32) -> Vec<u8> {
    format!("recalliq smtp password, tenant {tenant_id}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_key() {
        let k1 = SecretKey::from_bytes([7; 32], KeySource::Env);
        let k2 = SecretKey::from_bytes([8; 32], KeySource::File("/tmp/k".into()));
        let enc = k1.encrypt(&Secret::new("hunter2"), 3).unwrap();
        assert!(enc.starts_with("v1:"));
        assert!(!enc.contains("hunter2"));
        assert_ne!(enc, k1.encrypt(&Secret::new("hunter2"), 3).unwrap());
        assert_eq!(k1.decrypt(&enc, 3).unwrap().expose(), "hunter2");
        let err = k2.decrypt(&enc, 3).unwrap_err().to_string();
        assert_eq!(
            err,
            "cannot decrypt SMTP password: wrong key (RECALLIQ_SECRET_KEY or /tmp/k)"
        );
        assert!(matches!(k1.decrypt(&enc, 4), Err(SecretError::WrongKey(_))));
        assert!(matches!(
            k1.decrypt("garbage", 3),
            Err(SecretError::Malformed)
        ));
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        let k = SecretKey::from_bytes([1; 32], KeySource::Env);
        assert!(!format!("{k:?}").contains("[1"));
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_created_0600_and_loose_files_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg").join(KEY_FILE);
        let k = SecretKey::resolve(None, &path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = SecretKey::resolve(None, &path).unwrap();
        let enc = k.encrypt(&Secret::new("pw"), 1).unwrap();
        assert_eq!(again.decrypt(&enc, 1).unwrap().expose(), "pw");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SecretKey::resolve(None, &path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(matches!(
            SecretKey::resolve(Some("c2hvcnQ="), &path),
            Err(SecretError::BadEnvKey)
        ));
        let env_key = SecretKey::generate_base64();
        assert!(SecretKey::resolve(Some(&env_key), &path).is_ok());
    }
}
