-- Fewer index entries to rewrite per message (issue 6): a recipient's row changes status
-- twice (pending -> sending -> sent) and every index holding status or the lease is
-- rewritten each time. Only RecallIQ's own indexes are touched; the web app's stay.
--
-- SQLite index entries end with the rowid, so the web app's (batch_id, status) already
-- lists a batch's rows of one status in id order: the claim (ORDER BY id LIMIT n) and the
-- log viewer's status pages walk it. (batch_id, status, id) and the claim index
-- (batch_id, status, next_attempt_at) were duplicates of it.
DROP INDEX IF EXISTS idx_recalliq_emaillog_batch_status_id;
DROP INDEX IF EXISTS idx_recalliq_emaillog_claim;
-- Crash recovery looks for expired leases among rows in flight only: a partial index is
-- written when a row is claimed and dropped when its result is written, instead of
-- being rewritten on every status change.
DROP INDEX IF EXISTS idx_recalliq_emaillog_lease;
CREATE INDEX IF NOT EXISTS idx_recalliq_emaillog_lease_open
    ON logs_emaillog(lease_expires_at) WHERE status = 'sending';
-- Bounces look up message_id, which only rows sent (or refused after the data) have.
DROP INDEX IF EXISTS idx_recalliq_emaillog_message_id;
CREATE INDEX IF NOT EXISTS idx_recalliq_emaillog_message_id_set
    ON logs_emaillog(message_id) WHERE message_id IS NOT NULL;
