ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey;
ALTER TABLE audit_events ADD PRIMARY KEY (id);
CREATE INDEX audit_events_at ON audit_events(at);
