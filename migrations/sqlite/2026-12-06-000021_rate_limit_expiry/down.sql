DROP INDEX rate_limits_expires;
ALTER TABLE rate_limits DROP COLUMN expires_at;
