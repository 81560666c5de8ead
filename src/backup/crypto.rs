//! The encrypted container of a backup: XChaCha20-Poly1305 in the STREAM construction
//! (Hoang, Reyhanitabar, Rogaway, Vizár 2015, as in `age`): the plaintext is cut into 64 KiB
//! chunks, chunk i is sealed under nonce = prefix(19 random bytes) || i (u32, big endian) ||
//! last-flag, and the file header is the associated data of every chunk. Reordered,
//! dropped, truncated or altered chunks and an altered header all fail authentication.
//!
//! Header (64 bytes): magic (16) | key kind (1) | PBKDF2 iterations (u32 BE) | salt (16) |
//! nonce prefix (19) | key check (8). The key check (HMAC-SHA256 of the header prefix
//! under the key, truncated) tells a wrong key apart from a damaged file, without helping
//! anyone guess the key.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

pub const MAGIC: &[u8; 16] = b"RECALLIQ-BACKUP1";
pub const HEADER_LEN: usize = 64;
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const PBKDF2_ITERATIONS: u32 = 600_000;

pub const ENV_BACKUP_KEY: &str = "RECALLIQ_BACKUP_KEY";
pub const ENV_BACKUP_PASSPHRASE: &str = "RECALLIQ_BACKUP_PASSPHRASE";
pub const BACKUP_KEY_FILE: &str = "backup.key";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("{0}")]
    Key(String),
    #[error(
        "wrong key for this backup: it was encrypted with another {0} (the backup key is separate from the SMTP key)"
    )]
    WrongKey(&'static str),
    #[error("the backup is damaged or was altered (chunk {0} fails authentication)")]
    Tampered(u64),
    #[error("the backup is truncated or was altered (its last chunk is missing)")]
    Truncated,
    #[error("not a recalliq backup (unknown header)")]
    NotABackup,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Where a backup's key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySpec {
    /// A 32-byte key, base64, in a file (0600) or in RECALLIQ_BACKUP_KEY.
    Key { key: [u8; 32], origin: String },
    /// A passphrase (RECALLIQ_BACKUP_PASSPHRASE), stretched with PBKDF2-HMAC-SHA256.
    Passphrase(String),
}

impl fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySpec::Key { origin, .. } => write!(f, "Key({origin})"),
            KeySpec::Passphrase(_) => f.write_str("Passphrase(***)"),
        }
    }
}

const KIND_KEY: u8 = 1;
const KIND_PASSPHRASE: u8 = 2;

fn decode_key(text: &str) -> Option<[u8; 32]> {
    B64.decode(text.trim()).ok()?.try_into().ok()
}

/// Reads (or with `create`, creates with mode 0600) a base64 key file; a file readable by
/// group or others is refused.
pub fn key_file(path: &Path, create: bool) -> Result<[u8; 32], CryptoError> {
    let err =
        |what: String| CryptoError::Key(format!("backup key file {}: {what}", path.display()));
    if !path.exists() {
        if !create {
            return Err(err(
                "does not exist (the key that made the backup is needed; --key-file names another)"
                    .into(),
            ));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| err(e.to_string()))?;
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
                let text = format!("{}\n", B64.encode(rand::random::<[u8; 32]>()));
                f.write_all(text.as_bytes())
                    .map_err(|e| err(e.to_string()))?;
                f.sync_all().map_err(|e| err(e.to_string()))?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err(e.to_string())),
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| err(e.to_string()))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(err(format!(
                "is readable by group or others (mode {mode:o}); run `chmod 600 {}`",
                path.display()
            )));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    decode_key(&text).ok_or_else(|| err("must hold the base64 encoding of exactly 32 bytes".into()))
}

/// Picks the key: `--key-file` > RECALLIQ_BACKUP_PASSPHRASE > RECALLIQ_BACKUP_KEY >
/// backup.key in the config directory (created on the first backup). A key equal to the
/// SMTP password key is refused: backups must not fall with the SMTP key.
pub fn resolve_key(
    key_file_flag: Option<&Path>,
    config_dir: &Path,
    create: bool,
) -> Result<KeySpec, CryptoError> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let spec = if let Some(path) = key_file_flag {
        KeySpec::Key {
            key: key_file(path, create)?,
            origin: path.display().to_string(),
        }
    } else if let Some(pass) = env(ENV_BACKUP_PASSPHRASE) {
        if pass.chars().count() < 12 {
            return Err(CryptoError::Key(format!(
                "{ENV_BACKUP_PASSPHRASE} is too short (at least 12 characters)"
            )));
        }
        KeySpec::Passphrase(pass)
    } else if let Some(text) = env(ENV_BACKUP_KEY) {
        KeySpec::Key {
            key: decode_key(&text).ok_or_else(|| {
                CryptoError::Key(format!(
                    "{ENV_BACKUP_KEY} must be the base64 encoding of exactly 32 bytes"
                ))
            })?,
            origin: ENV_BACKUP_KEY.to_string(),
        }
    } else {
        let path: PathBuf = config_dir.join(BACKUP_KEY_FILE);
        KeySpec::Key {
            key: key_file(&path, create)?,
            origin: path.display().to_string(),
        }
    };
    if let KeySpec::Key { key, origin } = &spec {
        let smtp_env = env(crate::secrets::ENV_SECRET_KEY).and_then(|v| decode_key(&v));
        let smtp_file = std::fs::read_to_string(config_dir.join(crate::secrets::KEY_FILE))
            .ok()
            .and_then(|t| decode_key(&t));
        if smtp_env.as_ref() == Some(key) || smtp_file.as_ref() == Some(key) {
            return Err(CryptoError::Key(format!(
                "the backup key ({origin}) is the SMTP password key; use a separate key (remove it to have a new {BACKUP_KEY_FILE} made)"
            )));
        }
    }
    Ok(spec)
}

struct Header {
    bytes: [u8; HEADER_LEN],
}

impl Header {
    fn kind(&self) -> u8 {
        self.bytes[16]
    }
    fn iterations(&self) -> u32 {
        u32::from_be_bytes(self.bytes[17..21].try_into().unwrap())
    }
    fn salt(&self) -> &[u8] {
        &self.bytes[21..37]
    }
    fn prefix(&self) -> &[u8] {
        &self.bytes[37..56]
    }
    fn check(&self) -> &[u8] {
        &self.bytes[56..64]
    }
}

fn derive(spec: &KeySpec, salt: &[u8], iterations: u32) -> [u8; 32] {
    match spec {
        KeySpec::Key { key, .. } => *key,
        KeySpec::Passphrase(p) => {
            let mut out = [0u8; 32];
            ring::pbkdf2::derive(
                ring::pbkdf2::PBKDF2_HMAC_SHA256,
                std::num::NonZeroU32::new(iterations.max(1)).unwrap(),
                salt,
                p.as_bytes(),
                &mut out,
            );
            out
        }
    }
}

fn key_check(key: &[u8; 32], header_prefix: &[u8]) -> [u8; 8] {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut msg = b"recalliq backup key check".to_vec();
    msg.extend_from_slice(header_prefix);
    let tag = ring::hmac::sign(&k, &msg);
    tag.as_ref()[..8].try_into().unwrap()
}

fn nonce(prefix: &[u8], counter: u64, last: bool) -> Result<XNonce, CryptoError> {
    let counter = u32::try_from(counter)
        .map_err(|_| CryptoError::Key("backup too large (over 2^32 chunks)".into()))?;
    let mut n = [0u8; 24];
    n[..19].copy_from_slice(prefix);
    n[19..23].copy_from_slice(&counter.to_be_bytes());
    n[23] = u8::from(last);
    Ok(XNonce::from(n))
}

/// Encrypts everything written to it into `inner`; call [`Encryptor::finish`] at the end.
pub struct Encryptor<W: Write> {
    inner: W,
    cipher: XChaCha20Poly1305,
    header: [u8; HEADER_LEN],
    buf: Vec<u8>,
    counter: u64,
}

impl<W: Write> Encryptor<W> {
    pub fn new(mut inner: W, spec: &KeySpec) -> Result<Self, CryptoError> {
        let mut header = [0u8; HEADER_LEN];
        header[..16].copy_from_slice(MAGIC);
        let (kind, iterations) = match spec {
            KeySpec::Key { .. } => (KIND_KEY, 0),
            KeySpec::Passphrase(_) => (KIND_PASSPHRASE, PBKDF2_ITERATIONS),
        };
        header[16] = kind;
        header[17..21].copy_from_slice(&iterations.to_be_bytes());
        header[21..37].copy_from_slice(&rand::random::<[u8; 16]>());
        header[37..56].copy_from_slice(&rand::random::<[u8; 19]>());
        let key = derive(spec, &header[21..37], iterations);
        let check = key_check(&key, &header[..56]);
        header[56..64].copy_from_slice(&check);
        inner.write_all(&header)?;
        let cipher = XChaCha20Poly1305::new_from_slice(&key)
            .map_err(|_| CryptoError::Key("bad key length".into()))?;
        Ok(Encryptor {
            inner,
            cipher,
            header,
            buf: Vec::with_capacity(CHUNK),
            counter: 0,
        })
    }

    fn seal(&mut self, last: bool) -> Result<(), CryptoError> {
        let n = nonce(&self.header[37..56], self.counter, last)?;
        let ct = self
            .cipher
            .encrypt(
                &n,
                Payload {
                    msg: &self.buf,
                    aad: &self.header,
                },
            )
            .map_err(|_| CryptoError::Key("encryption failed".into()))?;
        self.inner.write_all(&ct)?;
        self.buf.clear();
        self.counter += 1;
        Ok(())
    }

    pub fn write_data(&mut self, mut data: &[u8]) -> Result<(), CryptoError> {
        while !data.is_empty() {
            if self.buf.len() == CHUNK {
                // A full chunk is sealed only once more data follows: the last chunk
                // must carry the last-flag.
                self.seal(false)?;
            }
            let take = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// Seals the last chunk and returns the inner writer (flushed).
    pub fn finish(mut self) -> Result<W, CryptoError> {
        self.seal(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// Decrypts a whole backup from `input` into `out`. The header kind decides which key is
/// needed: `spec_for` is asked with `true` for a passphrase backup.
pub fn decrypt<R: Read, W: Write>(
    input: R,
    out: &mut W,
    spec_for: impl FnOnce(bool) -> Result<KeySpec, CryptoError>,
) -> Result<u64, CryptoError> {
    let mut input = BufReader::with_capacity(CHUNK + TAG + 1, input);
    let mut hb = [0u8; HEADER_LEN];
    if input.read_exact(&mut hb).is_err() || &hb[..16] != MAGIC {
        return Err(CryptoError::NotABackup);
    }
    let header = Header { bytes: hb };
    let passphrase = match header.kind() {
        KIND_KEY => false,
        KIND_PASSPHRASE => true,
        _ => return Err(CryptoError::NotABackup),
    };
    let spec = spec_for(passphrase)?;
    match (&spec, passphrase) {
        (KeySpec::Key { .. }, true) => {
            return Err(CryptoError::Key(format!(
                "this backup is protected by a passphrase: set {ENV_BACKUP_PASSPHRASE}"
            )));
        }
        (KeySpec::Passphrase(_), false) => {
            return Err(CryptoError::Key(format!(
                "this backup was made with a key file, not a passphrase: unset {ENV_BACKUP_PASSPHRASE} and give the key (--key-file, {ENV_BACKUP_KEY} or {BACKUP_KEY_FILE})"
            )));
        }
        _ => {}
    }
    let key = derive(&spec, header.salt(), header.iterations());
    if key_check(&key, &header.bytes[..56]) != header.check() {
        return Err(CryptoError::WrongKey(if passphrase {
            "passphrase"
        } else {
            "key"
        }));
    }
    let cipher = XChaCha20Poly1305::new_from_slice(&key)
        .map_err(|_| CryptoError::Key("bad key length".into()))?;
    let mut counter = 0u64;
    let mut total = 0u64;
    let mut chunk = vec![0u8; CHUNK + TAG];
    loop {
        let mut filled = 0;
        while filled < chunk.len() {
            let n = input.read(&mut chunk[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled < TAG {
            return Err(CryptoError::Truncated);
        }
        let last = filled < chunk.len() || input.fill_buf()?.is_empty();
        let plain = cipher
            .decrypt(
                &nonce(header.prefix(), counter, last)?,
                Payload {
                    msg: &chunk[..filled],
                    aad: &header.bytes,
                },
            )
            .map_err(|_| {
                if last {
                    CryptoError::Truncated
                } else {
                    CryptoError::Tampered(counter)
                }
            })?;
        out.write_all(&plain)?;
        total += plain.len() as u64;
        counter += 1;
        if last {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> KeySpec {
        KeySpec::Key {
            key: [b; 32],
            origin: "test".into(),
        }
    }

    fn seal(data: &[u8], spec: &KeySpec) -> Vec<u8> {
        let mut e = Encryptor::new(Vec::new(), spec).unwrap();
        e.write_data(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn round_trips_at_chunk_boundaries() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let sealed = seal(&data, &key(1));
            let mut out = Vec::new();
            decrypt(&sealed[..], &mut out, |_| Ok(key(1))).unwrap();
            assert_eq!(out, data, "length {len}");
        }
    }

    #[test]
    fn wrong_key_tamper_and_truncation_are_told_apart() {
        let data = vec![42u8; 2 * CHUNK + 10];
        let sealed = seal(&data, &key(1));
        let err = decrypt(&sealed[..], &mut Vec::new(), |_| Ok(key(2))).unwrap_err();
        assert!(matches!(err, CryptoError::WrongKey("key")), "{err}");
        let mut bad = sealed.clone();
        bad[HEADER_LEN + 100] ^= 1;
        let err = decrypt(&bad[..], &mut Vec::new(), |_| Ok(key(1))).unwrap_err();
        assert!(matches!(err, CryptoError::Tampered(0)), "{err}");
        // Cut after the first two chunks: the new last chunk lacks the last-flag.
        let cut = &sealed[..HEADER_LEN + 2 * (CHUNK + TAG)];
        let err = decrypt(cut, &mut Vec::new(), |_| Ok(key(1))).unwrap_err();
        assert!(matches!(err, CryptoError::Truncated), "{err}");
        let mut hdr = sealed.clone();
        hdr[30] ^= 1; // the salt: authenticated as associated data
        assert!(decrypt(&hdr[..], &mut Vec::new(), |_| Ok(key(1))).is_err());
    }
}
