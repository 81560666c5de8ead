//! The outbox transport: each message becomes `<time>-<random>.eml` in a directory, written
//! to a temporary name first and renamed, so a reader never sees half a message. Used by
//! `recalliq demo` so that nothing leaves the machine.

use std::path::{Path, PathBuf};

use super::Message;

use super::MailError;

/// Writes `message` into `dir` (created when missing) and returns the file's path.
pub fn write_outbox(dir: &Path, message: &Message) -> Result<PathBuf, MailError> {
    let io = |source| MailError::Outbox {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let r: u64 = rand::random();
    let stem = format!(
        "{}-{r:016x}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ")
    );
    let tmp = dir.join(format!(".{stem}.tmp"));
    let path = dir.join(format!("{stem}.eml"));
    std::fs::write(&tmp, message.bytes()).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(path)
}
