ALTER TABLE outbox DROP COLUMN gave_up_at;
ALTER TABLE outbox DROP COLUMN html_body;
