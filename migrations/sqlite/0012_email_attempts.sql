-- Per-attempt history (issue 7): one row per attempt that did not end the recipient
-- (a 4xx deferral, a dropped or refused connection). The final attempt is the
-- logs_emaillog row itself (status, sent_at, smtp_response, error_message), so a recipient
-- accepted at the first try costs no row here. Rows go with their log row (retention,
-- batch deletion) and with their tenant (purge). Additive only.
CREATE TABLE IF NOT EXISTS recalliq_emailattempt (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants_tenant(id),
    email_log_id INTEGER NOT NULL REFERENCES logs_emaillog(id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    attempted_at DATETIME NOT NULL,
    outcome VARCHAR(20) NOT NULL,
    smtp_code INTEGER,
    smtp_response TEXT,
    error_message TEXT
);
CREATE INDEX IF NOT EXISTS idx_recalliq_emailattempt_log
    ON recalliq_emailattempt(email_log_id, id);
