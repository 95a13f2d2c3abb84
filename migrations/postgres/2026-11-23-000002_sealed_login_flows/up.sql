-- A login flow's state (state, nonce, PKCE verifier, where the result goes) now travels in a
-- sealed cookie (AES-256-GCM-SIV under a key derived from the shared session key). The server
-- keeps only what makes the cookie single-use: a mark per completed callback, until the
-- cookie's own expiry. Keyed by expiry first, so the purge is a range delete on the key.
DROP TABLE login_flows;

CREATE TABLE used_login_flows (
    expires_at BIGINT NOT NULL,
    jti BYTEA NOT NULL,
    PRIMARY KEY (expires_at, jti)
);
