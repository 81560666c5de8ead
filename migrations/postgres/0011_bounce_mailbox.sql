-- IMAP mailboxes polled by `recalliq bounces watch` (issue #9): one per tenant, plus at most
-- one global mailbox (tenant_id NULL) whose reports may concern any tenant. The password is
-- only ever stored encrypted (see src/secrets.rs). Additive only.
CREATE TABLE IF NOT EXISTS recalliq_bounce_mailbox (
    id SERIAL PRIMARY KEY,
    tenant_id INTEGER REFERENCES tenants_tenant(id),
    host VARCHAR(253) NOT NULL,
    port INTEGER NOT NULL,
    security VARCHAR(10) NOT NULL,
    username VARCHAR(254) NOT NULL,
    password_enc TEXT NOT NULL,
    mailbox VARCHAR(200) NOT NULL DEFAULT 'INBOX',
    processed_folder VARCHAR(200) NOT NULL DEFAULT 'RecallIQ/Processed',
    unmatched_folder VARCHAR(200) NOT NULL DEFAULT 'RecallIQ/Unmatched',
    tls_insecure BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at TIMESTAMP NOT NULL DEFAULT NOW()
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_recalliq_bounce_mailbox_tenant
    ON recalliq_bounce_mailbox(COALESCE(tenant_id, 0));
