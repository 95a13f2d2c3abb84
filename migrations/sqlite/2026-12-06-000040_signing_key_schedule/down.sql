-- Keys that have not signed yet are dropped; the newest key that has becomes the active one.
CREATE TABLE signing_keys_by_status (
    kid TEXT PRIMARY KEY NOT NULL,
    alg TEXT NOT NULL,
    private_key BLOB NOT NULL,
    public_jwk TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

INSERT INTO signing_keys_by_status (kid, alg, private_key, public_jwk, status, created_at, retired_at)
SELECT
    k.kid, k.alg, k.private_key, k.public_jwk,
    CASE WHEN k.generation = m.newest THEN 'active' ELSE 'retired' END,
    k.created_at,
    CASE WHEN k.generation = m.newest THEN NULL ELSE COALESCE(k.retire_at, k.activate_at) END
FROM signing_keys k,
     (SELECT MAX(generation) AS newest FROM signing_keys
       WHERE activate_at <= CAST(strftime('%s', 'now') AS INTEGER) * 1000) m
WHERE k.activate_at <= CAST(strftime('%s', 'now') AS INTEGER) * 1000;

DROP TABLE signing_keys;
ALTER TABLE signing_keys_by_status RENAME TO signing_keys;
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys(status) WHERE status = 'active';
