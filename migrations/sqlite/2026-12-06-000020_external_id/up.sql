-- The id of the user in the application Braid was put beside (`braid users import`), handed
-- back to the app in /auth/me and the access token so it can find its own row.
ALTER TABLE users ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX users_external_id ON users(external_id) WHERE external_id IS NOT NULL;
