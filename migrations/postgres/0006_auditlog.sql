-- Who did what, when, from where: every login (success and failure) and every write made
-- through the CLI or the TUI. Rows are only ever inserted. `tenant_id` is the tenant the
-- action concerned (NULL for installation-wide actions); no foreign key, so the trail of a
-- purged tenant survives it.
CREATE TABLE IF NOT EXISTS recalliq_auditlog (
    id SERIAL PRIMARY KEY,
    created_at TIMESTAMP NOT NULL DEFAULT NOW(),
    actor_id INTEGER,
    actor VARCHAR(150) NOT NULL,
    tenant_id INTEGER,
    action VARCHAR(100) NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    outcome VARCHAR(20) NOT NULL DEFAULT 'ok',
    origin VARCHAR(200) NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS idx_recalliq_auditlog_tenant ON recalliq_auditlog(tenant_id, id);
CREATE INDEX IF NOT EXISTS idx_recalliq_auditlog_action ON recalliq_auditlog(action);
