//! Batch change notifications. On Postgres a trigger (migration 0005) sends
//! `NOTIFY recalliq_batches '<id>:<status>'` whenever a batch is inserted or its status or
//! schedule changes, by this program, another worker or the web app. `BatchListener` wakes
//! engines (and screens) at once instead of at their next poll. SQLite has no such thing:
//! `Store::batch_listener` returns `None` there and callers keep polling.

use sqlx::postgres::PgListener;

use super::{DbResult, Store};

/// The channel the trigger notifies.
pub const BATCH_CHANNEL: &str = "recalliq_batches";

/// One notification: a batch and its (new) status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchChange {
    pub batch_id: i32,
    pub status: String,
}

/// A dedicated Postgres connection listening on `recalliq_batches`. It reconnects by itself
/// after the connection is lost; changes made meanwhile are not replayed (poll once after
/// an error).
pub struct BatchListener {
    inner: PgListener,
}

impl std::fmt::Debug for BatchListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BatchListener")
    }
}

impl BatchListener {
    /// The next change. An error means the connection was lost and could not be restored
    /// yet; calling again retries.
    pub async fn next(&mut self) -> DbResult<BatchChange> {
        loop {
            let n = self.inner.recv().await?;
            if let Some(change) = parse(n.payload()) {
                return Ok(change);
            }
        }
    }
}

fn parse(payload: &str) -> Option<BatchChange> {
    let (id, status) = payload.split_once(':')?;
    Some(BatchChange {
        batch_id: id.parse().ok()?,
        status: status.to_string(),
    })
}

impl Store {
    /// A listener for batch changes on Postgres; `None` on SQLite (poll instead).
    pub async fn batch_listener(&self) -> DbResult<Option<BatchListener>> {
        let Some(pool) = self.pg_pool() else {
            return Ok(None);
        };
        let mut inner = PgListener::connect_with(pool).await?;
        inner.listen(BATCH_CHANNEL).await?;
        Ok(Some(BatchListener { inner }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse() {
        assert_eq!(
            parse("12:running"),
            Some(BatchChange {
                batch_id: 12,
                status: "running".into()
            })
        );
        assert_eq!(parse("x:running"), None);
        assert_eq!(parse("garbage"), None);
    }
}
