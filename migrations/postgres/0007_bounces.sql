-- Bounces and unsubscribes (issue #9). What came back for a message we sent: hard and soft
-- bounces and unsubscribe requests, one row per report and address, so ingesting the same
-- report twice changes nothing. Soft bounces are counted from here; the TUI and `batch show`
-- count bounces and unsubscribes per batch and tenant. Additive only.
CREATE TABLE IF NOT EXISTS recalliq_bounce_event (
    id SERIAL PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants_tenant(id),
    batch_id INTEGER REFERENCES batches_batch(id) ON DELETE SET NULL,
    log_id INTEGER REFERENCES logs_emaillog(id) ON DELETE SET NULL,
    email VARCHAR(254) NOT NULL,
    kind VARCHAR(20) NOT NULL,
    status_code VARCHAR(20),
    diagnostic TEXT,
    source VARCHAR(100) NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT NOW()
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_recalliq_bounce_event_source
    ON recalliq_bounce_event(source, LOWER(email), kind);
CREATE INDEX IF NOT EXISTS idx_recalliq_bounce_event_tenant
    ON recalliq_bounce_event(tenant_id, LOWER(email), kind, created_at);
CREATE INDEX IF NOT EXISTS idx_recalliq_bounce_event_batch
    ON recalliq_bounce_event(batch_id, kind);
-- A bounce quoting the original Message-ID finds its log row.
CREATE INDEX IF NOT EXISTS idx_recalliq_emaillog_message_id
    ON logs_emaillog(message_id);
