-- Braid schema (DESIGN §3). Ids are UUIDv7 text, times are unix milliseconds (BIGINT),
-- JSON is TEXT, one-time secrets are stored only as SHA-256 hashes (BLOB).

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    display_name TEXT,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    is_admin BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE user_emails (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    verified_at BIGINT,
    is_primary BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    UNIQUE (user_id, email)
);
CREATE INDEX user_emails_email ON user_emails(email);
-- A verified address belongs to at most one user (SECURITY-CASES I10).
CREATE UNIQUE INDEX user_emails_verified_unique ON user_emails(email) WHERE verified_at IS NOT NULL;

CREATE TABLE user_phones (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    phone TEXT NOT NULL,
    verified_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (user_id, phone)
);
CREATE INDEX user_phones_phone ON user_phones(phone);
CREATE UNIQUE INDEX user_phones_verified_unique ON user_phones(phone) WHERE verified_at IS NOT NULL;

CREATE TABLE identities (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    claims TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_login_at BIGINT NOT NULL,
    UNIQUE (provider, subject)
);
CREATE INDEX identities_user ON identities(user_id);

CREATE TABLE credentials (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Tables of rows found by a random key (hashes, UUIDv7) are WITHOUT ROWID: stored in their
-- primary-key B-tree, so an insert writes one tree, not a table plus its key index.

-- An upstream login in flight: bound to one browser by the hash of a random cookie value.
CREATE TABLE login_flows (
    id_hash BLOB PRIMARY KEY NOT NULL,
    state_hash BLOB NOT NULL,
    provider TEXT NOT NULL,
    issuer TEXT NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    app_state TEXT,
    code_challenge TEXT,
    code_challenge_method TEXT,
    connect_user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
) WITHOUT ROWID;
CREATE INDEX login_flows_expires ON login_flows(expires_at);

-- A manual link in progress (select page, then verify page).
CREATE TABLE link_flows (
    id_hash BLOB PRIMARY KEY NOT NULL,
    provider TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    identity TEXT NOT NULL,
    candidates TEXT NOT NULL,
    selected_user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    stage TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    app_state TEXT,
    code_challenge TEXT,
    code_challenge_method TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX link_flows_expires ON link_flows(expires_at);

CREATE TABLE verification_codes (
    id TEXT PRIMARY KEY NOT NULL,
    flow_id_hash BLOB NOT NULL REFERENCES link_flows(id_hash) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    destination TEXT NOT NULL,
    code_hash BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX verification_codes_flow ON verification_codes(flow_id_hash);
CREATE INDEX verification_codes_user ON verification_codes(user_id, created_at);

CREATE TABLE exchange_codes (
    code_hash BLOB PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT,
    code_challenge_method TEXT,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    auth_context TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT,
    -- What the first redemption issued, so a replay can revoke it (RFC 6749 §4.1.2).
    issued_family_id TEXT,
    issued_access_jti TEXT
) WITHOUT ROWID;
CREATE INDEX exchange_codes_expires ON exchange_codes(expires_at);

CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    id TEXT NOT NULL,
    family_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    family_expires_at BIGINT NOT NULL,
    rotated_at BIGINT,
    revoked_at BIGINT
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);

-- Access-token ids revoked before their expiry (code replay, logout).
CREATE TABLE revoked_access_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
) WITHOUT ROWID;

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    alg TEXT NOT NULL,
    private_key BLOB NOT NULL,
    public_jwk TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
-- Exactly one key signs at a time; concurrent first starts settle on this index.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys(status) WHERE status = 'active';

-- Generated secrets shared by every instance (the session cookie key).
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id_hash BLOB PRIMARY KEY NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions(expires_at);

CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    result TEXT,
    reason TEXT,
    user_id TEXT,
    provider TEXT,
    subject TEXT,
    client_id TEXT,
    ip TEXT,
    detail TEXT
) WITHOUT ROWID;
CREATE INDEX audit_events_at ON audit_events(at);
CREATE INDEX audit_events_user ON audit_events(user_id);

-- Mail and SMS written in the same transaction as the change that caused them.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    sent_at BIGINT,
    last_error TEXT
);
CREATE INDEX outbox_pending ON outbox(sent_at, next_attempt_at);

CREATE TABLE rate_limits (
    bucket TEXT PRIMARY KEY NOT NULL,
    window_start BIGINT NOT NULL,
    hits INTEGER NOT NULL
);
