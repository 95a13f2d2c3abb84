-- Which key signs is decided from stored times, so every instance reading the rows agrees
-- without talking to the others: a key is published from created_at, signs from activate_at
-- until retire_at, and stays published until expire_at. generation orders the keys; its
-- unique index settles concurrent rotations and concurrent first starts.
CREATE TABLE signing_keys_scheduled (
    kid TEXT PRIMARY KEY NOT NULL,
    alg TEXT NOT NULL,
    private_key BLOB NOT NULL,
    public_jwk TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    activate_at BIGINT NOT NULL,
    retire_at BIGINT,
    expire_at BIGINT
);

-- Existing keys keep their meaning. The active key signs from its creation (or from the last
-- retirement, if later) and is the newest generation; a retired key signed from its creation
-- until its retirement and stays published for the longest access token life plus a minute
-- (960 s), as it was.
INSERT INTO signing_keys_scheduled
    (kid, alg, private_key, public_jwk, generation, created_at, activate_at, retire_at, expire_at)
SELECT
    k.kid, k.alg, k.private_key, k.public_jwk,
    (SELECT COUNT(*) FROM signing_keys o
      WHERE (o.status = 'active') < (k.status = 'active')
         OR ((o.status = 'active') = (k.status = 'active')
             AND (o.created_at < k.created_at OR (o.created_at = k.created_at AND o.kid <= k.kid)))),
    k.created_at,
    CASE WHEN k.status = 'active'
         THEN MAX(k.created_at, COALESCE((SELECT MAX(r.retired_at) FROM signing_keys r WHERE r.status <> 'active'), k.created_at))
         ELSE k.created_at END,
    CASE WHEN k.status = 'active' THEN NULL ELSE COALESCE(k.retired_at, k.created_at) END,
    CASE WHEN k.status = 'active' THEN NULL ELSE COALESCE(k.retired_at, k.created_at) + 960000 END
FROM signing_keys k;

DROP TABLE signing_keys;
ALTER TABLE signing_keys_scheduled RENAME TO signing_keys;
CREATE UNIQUE INDEX signing_keys_generation ON signing_keys(generation);
