-- Audit events clustered by time: the primary key starts with `at`, so an event is appended
-- to the end of one B-tree and time ranges (newest first, retention) read the key itself. The
-- separate index on `at` was a second tree written on every login.
CREATE TABLE audit_events_by_time (
    id TEXT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    result TEXT,
    reason TEXT,
    user_id TEXT,
    provider TEXT,
    subject TEXT,
    client_id TEXT,
    ip TEXT,
    detail TEXT,
    PRIMARY KEY (at, id)
) WITHOUT ROWID;
INSERT INTO audit_events_by_time (id, at, kind, result, reason, user_id, provider, subject, client_id, ip, detail)
    SELECT id, at, kind, result, reason, user_id, provider, subject, client_id, ip, detail FROM audit_events;
DROP TABLE audit_events;
ALTER TABLE audit_events_by_time RENAME TO audit_events;
CREATE INDEX audit_events_user ON audit_events(user_id);
