-- Local accounts (email + password). One row per address signed up with: the primary key
-- settles two sign-ups racing for one address (one account, the other answered as "exists").
-- created_at starts the window in which the address was unverified: identities linked to the
-- user in it are removed when the address is verified (SECURITY-CASES D10).
CREATE TABLE local_accounts (
    email TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    verified_at BIGINT
);

-- One-time codes of local accounts (email verification, password reset): only a keyed hash,
-- bound to the account and the purpose; attempts counted by one atomic update.
CREATE TABLE account_codes (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    email TEXT NOT NULL,
    code_hash BYTEA NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX account_codes_user ON account_codes(user_id, purpose, created_at);
CREATE INDEX account_codes_expires ON account_codes(expires_at);
