-- Addresses a tenant must never send to again (unsubscribed, hard-bounced, complained,
-- or added by an operator). One row per tenant and address, compared case-insensitively.
CREATE TABLE IF NOT EXISTS recalliq_suppression (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants_tenant(id),
    email VARCHAR(254) NOT NULL,
    reason VARCHAR(50) NOT NULL DEFAULT 'manual',
    note TEXT,
    source_batch_id INTEGER REFERENCES batches_batch(id) ON DELETE SET NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_recalliq_suppression_email
    ON recalliq_suppression(tenant_id, LOWER(email));
