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
