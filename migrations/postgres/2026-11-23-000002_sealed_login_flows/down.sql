DROP TABLE used_login_flows;

CREATE TABLE login_flows (
    id_hash BYTEA PRIMARY KEY NOT NULL,
    state_hash BYTEA NOT NULL,
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
);
CREATE INDEX login_flows_expires ON login_flows(expires_at);
