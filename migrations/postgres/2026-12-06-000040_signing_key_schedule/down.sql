-- Keys that have not signed yet are dropped; the newest key that has becomes the active one.
DELETE FROM signing_keys WHERE activate_at > (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT;
DROP INDEX signing_keys_generation;
ALTER TABLE signing_keys ADD COLUMN status TEXT, ADD COLUMN retired_at BIGINT;
UPDATE signing_keys k SET
    status = CASE WHEN k.generation = (SELECT MAX(generation) FROM signing_keys) THEN 'active' ELSE 'retired' END,
    retired_at = CASE WHEN k.generation = (SELECT MAX(generation) FROM signing_keys) THEN NULL ELSE COALESCE(k.retire_at, k.activate_at) END;
ALTER TABLE signing_keys ALTER COLUMN status SET NOT NULL;
ALTER TABLE signing_keys DROP COLUMN generation, DROP COLUMN activate_at, DROP COLUMN retire_at, DROP COLUMN expire_at;
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys(status) WHERE status = 'active';
