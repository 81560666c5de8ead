//! Materialization: starting a batch turns its groups into one `pending` row of
//! `logs_emaillog` per unique active recipient, with a single `INSERT ... SELECT`.
//!
//! - only active groups of the batch's tenant and their active contacts;
//! - addresses compared case-insensitively across groups: the contact with the lowest id
//!   wins (its name, variables and id are used);
//! - addresses on the tenant's suppression list (case-insensitive) are skipped;
//! - idempotent: an address already queued for the batch is never queued twice, so running
//!   it again (a second `start`, a crash between steps) adds nothing.
//!
//! The store runs it in the same transaction as the draft/scheduled -> running transition
//! (`Store::start_batch`), so a batch is never running without its queue.

/// `$1` batch id, `$2` now, `$3` tenant id. Same text for SQLite and Postgres.
pub const MATERIALIZE_SQL: &str =
    "INSERT INTO logs_emaillog (batch_id, recipient_email, recipient_name, status,
        created_at, updated_at, attempts, next_attempt_at, contact_id)
    SELECT $1, r.email, r.name, 'pending', $2, $2, 0, $2, r.id FROM (
        SELECT ge.id, ge.email, ge.name,
            ROW_NUMBER() OVER (PARTITION BY LOWER(ge.email) ORDER BY ge.id) AS rn
        FROM batches_batchgroup bg
        JOIN tenants_group g ON g.id = bg.group_id AND g.tenant_id = $3
            AND COALESCE(g.is_active, TRUE)
        JOIN tenants_groupemail ge ON ge.group_id = bg.group_id AND COALESCE(ge.is_active, TRUE)
        WHERE bg.batch_id = $1
    ) r
    WHERE r.rn = 1
      AND NOT EXISTS (SELECT 1 FROM recalliq_suppression s
                      WHERE s.tenant_id = $3 AND LOWER(s.email) = LOWER(r.email))
      AND NOT EXISTS (SELECT 1 FROM logs_emaillog l
                      WHERE l.batch_id = $1 AND LOWER(l.recipient_email) = LOWER(r.email))
    ORDER BY r.id";
