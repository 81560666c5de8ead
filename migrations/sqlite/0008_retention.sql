-- Per-tenant retention of logs, applied by `recalliq maintenance clean-logs`: email logs
-- (one row per recipient, with the recipient's address) and batch execution logs are kept
-- this many days. A tenant without a row uses the command's defaults (90 / 30, the spec's).
CREATE TABLE IF NOT EXISTS recalliq_retention (
    tenant_id INTEGER PRIMARY KEY REFERENCES tenants_tenant(id),
    email_logs_days INTEGER NOT NULL DEFAULT 90 CHECK (email_logs_days >= 1),
    batch_logs_days INTEGER NOT NULL DEFAULT 30 CHECK (batch_logs_days >= 1),
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_recalliq_emaillog_created ON logs_emaillog(created_at);
