-- The client's user agent (at most 256 characters) beside its address in `ip`.
ALTER TABLE audit_events ADD COLUMN user_agent TEXT;
