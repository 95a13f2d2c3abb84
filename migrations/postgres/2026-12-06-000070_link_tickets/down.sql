DROP INDEX refresh_tokens_identity;
ALTER TABLE refresh_tokens DROP COLUMN auth_time;
ALTER TABLE refresh_tokens DROP COLUMN identity_id;
DROP TABLE link_tickets;
