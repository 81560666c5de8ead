-- DKIM signing keys per tenant sender domain. The private key is only ever stored
-- encrypted (see src/secrets.rs); `public_key` is the base64 `p=` value of the DNS record.
-- status: 'active' signs new mail (at most one per tenant and domain); 'published' is a
-- rotated-out key whose DNS record stays valid for mail already in flight.
CREATE TABLE IF NOT EXISTS recalliq_dkimkey (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants_tenant(id),
    domain VARCHAR(253) NOT NULL,
    selector VARCHAR(63) NOT NULL,
    algorithm VARCHAR(10) NOT NULL,
    private_key_enc TEXT NOT NULL,
    public_key TEXT NOT NULL,
    status VARCHAR(10) NOT NULL DEFAULT 'active',
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    rotated_at DATETIME
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_recalliq_dkimkey_selector
    ON recalliq_dkimkey(tenant_id, domain, selector);
CREATE UNIQUE INDEX IF NOT EXISTS idx_recalliq_dkimkey_active
    ON recalliq_dkimkey(tenant_id, domain) WHERE status = 'active';
