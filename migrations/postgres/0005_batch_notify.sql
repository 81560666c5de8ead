-- The sending engine wakes on batch changes instead of waiting for its next poll: every
-- insert of a batch and every change of its status or schedule sends
-- NOTIFY recalliq_batches '<id>:<status>'. A trigger (not our own code) so that batches
-- started, paused or cancelled by the web app or by any other process wake workers too.
-- Additive: a new function and trigger with the recalliq_ prefix; polling stays the
-- fallback.
CREATE OR REPLACE FUNCTION recalliq_notify_batch() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT'
       OR NEW.status IS DISTINCT FROM OLD.status
       OR NEW.scheduled_at IS DISTINCT FROM OLD.scheduled_at THEN
        PERFORM pg_notify('recalliq_batches', NEW.id::text || ':' || COALESCE(NEW.status, ''));
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS recalliq_batch_notify ON batches_batch;
CREATE TRIGGER recalliq_batch_notify
    AFTER INSERT OR UPDATE ON batches_batch
    FOR EACH ROW EXECUTE FUNCTION recalliq_notify_batch();
