-- One-time tickets that start a "connect another provider" sign-in for a signed-in user
-- (POST /auth/link-tickets): stored hashed, consumed once, bound to the user and to the app
-- target the token's client asked for.
CREATE TABLE link_tickets (
    ticket_hash BLOB PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    app_state TEXT,
    code_challenge TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
) WITHOUT ROWID;
CREATE INDEX link_tickets_expires ON link_tickets(expires_at);

-- Which identity a refresh token family was obtained through (NULL: none, e.g. a password),
-- so unlinking the identity revokes it; and when that sign-in happened (auth_time), kept
-- through rotations.
ALTER TABLE refresh_tokens ADD COLUMN identity_id TEXT;
ALTER TABLE refresh_tokens ADD COLUMN auth_time BIGINT;
CREATE INDEX refresh_tokens_identity ON refresh_tokens(identity_id);
