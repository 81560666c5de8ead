-- The log viewer (issue 7): filter a batch's logs by status and sort by sent time in keyset
-- pages (ORDER BY key, id) without sorting a million rows. Indexes only, additive.
CREATE INDEX IF NOT EXISTS idx_recalliq_emaillog_batch_status_id
    ON logs_emaillog(batch_id, status, id);
CREATE INDEX IF NOT EXISTS idx_recalliq_emaillog_batch_sent_id
    ON logs_emaillog(batch_id, sent_at, id);
CREATE INDEX IF NOT EXISTS idx_recalliq_batchlog_batch_id
    ON logs_batchexecutionlog(batch_id, id);
