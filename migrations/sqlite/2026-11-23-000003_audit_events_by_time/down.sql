CREATE TABLE audit_events_by_id (
    id TEXT PRIMARY KEY NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    result TEXT,
    reason TEXT,
    user_id TEXT,
    provider TEXT,
    subject TEXT,
    client_id TEXT,
    ip TEXT,
    detail TEXT
) WITHOUT ROWID;
INSERT INTO audit_events_by_id (id, at, kind, result, reason, user_id, provider, subject, client_id, ip, detail)
    SELECT id, at, kind, result, reason, user_id, provider, subject, client_id, ip, detail FROM audit_events;
DROP TABLE audit_events;
ALTER TABLE audit_events_by_id RENAME TO audit_events;
CREATE INDEX audit_events_at ON audit_events(at);
CREATE INDEX audit_events_user ON audit_events(user_id);
