-- Postgres only (LISTEN/NOTIFY on batch changes); SQLite engines poll. Kept so both
-- backends share version numbers.
SELECT 1;
