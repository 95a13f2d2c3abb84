ALTER TABLE audit_events DROP COLUMN user_agent;
