-- Fewer index entries to write per message (issue 6): each status change of a row writes a
-- new entry into every index of logs_emaillog. Only RecallIQ's own indexes are touched; the
-- web app's stay.
--
-- The claim (ORDER BY id LIMIT n ... SKIP LOCKED) walks (batch_id, status, id); the claim
-- index (batch_id, status, next_attempt_at) was not used by it.
DROP INDEX IF EXISTS idx_recalliq_emaillog_claim;
-- Crash recovery looks for expired leases among rows in flight only.
DROP INDEX IF EXISTS idx_recalliq_emaillog_lease;
CREATE INDEX IF NOT EXISTS idx_recalliq_emaillog_lease_open
    ON logs_emaillog(lease_expires_at) WHERE status = 'sending';
-- Postgres writes a new entry into every index for each new row version, whether the
-- index's columns changed or not: two versions per message. Retention looks for old rows
-- by created_at, which follows the table's physical order: a BRIN index answers that
-- and costs next to nothing per row version. Bounces look up message_id, which only sent
-- rows have: the partial index gets no entry from the claim's version.
DROP INDEX IF EXISTS idx_recalliq_emaillog_created;
CREATE INDEX IF NOT EXISTS idx_recalliq_emaillog_created_brin
    ON logs_emaillog USING brin (created_at);
DROP INDEX IF EXISTS idx_recalliq_emaillog_message_id;
CREATE INDEX IF NOT EXISTS idx_recalliq_emaillog_message_id_set
    ON logs_emaillog(message_id) WHERE message_id IS NOT NULL;
