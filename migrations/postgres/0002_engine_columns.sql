-- RecallIQ's own needs, additive only: nullable or defaulted columns, never a change to a
-- seed column. The web app ignores these columns and keeps working.
ALTER TABLE logs_emaillog ADD COLUMN IF NOT EXISTS attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE logs_emaillog ADD COLUMN IF NOT EXISTS next_attempt_at TIMESTAMP;
ALTER TABLE logs_emaillog ADD COLUMN IF NOT EXISTS lease_owner VARCHAR(100);
ALTER TABLE logs_emaillog ADD COLUMN IF NOT EXISTS lease_expires_at TIMESTAMP;
ALTER TABLE logs_emaillog ADD COLUMN IF NOT EXISTS message_id VARCHAR(255);
ALTER TABLE logs_emaillog ADD COLUMN IF NOT EXISTS contact_id INTEGER;
ALTER TABLE logs_emaillog ADD COLUMN IF NOT EXISTS updated_at TIMESTAMP;
ALTER TABLE batches_batch ADD COLUMN IF NOT EXISTS status_reason TEXT;
ALTER TABLE batches_batch ADD COLUMN IF NOT EXISTS created_by_id INTEGER;

-- The engine claims due work of a batch: status + next attempt.
CREATE INDEX IF NOT EXISTS idx_recalliq_emaillog_claim
    ON logs_emaillog(batch_id, status, next_attempt_at);
-- Keyset listing of a group's contacts and case-insensitive lookups.
CREATE INDEX IF NOT EXISTS idx_recalliq_groupemail_group_id ON tenants_groupemail(group_id, id);
CREATE INDEX IF NOT EXISTS idx_recalliq_groupemail_lower ON tenants_groupemail(group_id, LOWER(email));
CREATE INDEX IF NOT EXISTS idx_recalliq_user_username_lower ON core_user(LOWER(username));
CREATE INDEX IF NOT EXISTS idx_recalliq_emaillog_batch_id ON logs_emaillog(batch_id, id);
