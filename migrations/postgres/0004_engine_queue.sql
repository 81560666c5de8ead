-- The sending engine: materialization checks "already queued for this batch" per address,
-- case-insensitively; crash recovery finds expired leases. Indexes only, additive.
CREATE INDEX IF NOT EXISTS idx_recalliq_emaillog_batch_lower
    ON logs_emaillog(batch_id, LOWER(recipient_email));
CREATE INDEX IF NOT EXISTS idx_recalliq_emaillog_lease
    ON logs_emaillog(status, lease_expires_at);
