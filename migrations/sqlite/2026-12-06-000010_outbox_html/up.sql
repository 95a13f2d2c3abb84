-- The HTML alternative of an email (the text body stays in `body`), and when the outbox gave up
-- on a message: such a row is never claimed again and is purged with the old ones.
ALTER TABLE outbox ADD COLUMN html_body TEXT;
ALTER TABLE outbox ADD COLUMN gave_up_at BIGINT;
