-- When a message stops being worth sending (a one-time code that has expired): the outbox gives
-- it up instead of delivering it late. NULL: no such time.
ALTER TABLE outbox ADD COLUMN expires_at BIGINT;
