-- Audit events keyed by time: time ranges (newest first, retention) read the primary key, and
-- the separate index on `at`, a second index written on every login, goes.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey;
ALTER TABLE audit_events ADD PRIMARY KEY (at, id);
DROP INDEX audit_events_at;
