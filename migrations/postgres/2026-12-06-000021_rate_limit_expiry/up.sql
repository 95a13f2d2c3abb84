-- When a rate-limit window ends: a hit after it starts a new window, and housekeeping deletes
-- rows past it, whatever window length the caller used.
ALTER TABLE rate_limits ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX rate_limits_expires ON rate_limits(expires_at);
