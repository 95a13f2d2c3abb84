-- Which key signs is decided from stored times, so every instance reading the rows agrees
-- without talking to the others: a key is published from created_at, signs from activate_at
-- until retire_at, and stays published until expire_at. generation orders the keys; its
-- unique index settles concurrent rotations and concurrent first starts.
ALTER TABLE signing_keys
    ADD COLUMN generation BIGINT,
    ADD COLUMN activate_at BIGINT,
    ADD COLUMN retire_at BIGINT,
    ADD COLUMN expire_at BIGINT;

-- Existing keys keep their meaning. The active key signs from its creation (or from the last
-- retirement, if later) and is the newest generation; a retired key signed from its creation
-- until its retirement and stays published for the longest access token life plus a minute
-- (960 s), as it was.
UPDATE signing_keys k SET
    generation = (SELECT COUNT(*) FROM signing_keys o
                   WHERE (o.status = 'active') < (k.status = 'active')
                      OR ((o.status = 'active') = (k.status = 'active')
                          AND (o.created_at < k.created_at OR (o.created_at = k.created_at AND o.kid <= k.kid)))),
    activate_at = CASE WHEN k.status = 'active'
                       THEN GREATEST(k.created_at, COALESCE((SELECT MAX(r.retired_at) FROM signing_keys r WHERE r.status <> 'active'), k.created_at))
                       ELSE k.created_at END,
    retire_at = CASE WHEN k.status = 'active' THEN NULL ELSE COALESCE(k.retired_at, k.created_at) END,
    expire_at = CASE WHEN k.status = 'active' THEN NULL ELSE COALESCE(k.retired_at, k.created_at) + 960000 END;

ALTER TABLE signing_keys
    ALTER COLUMN generation SET NOT NULL,
    ALTER COLUMN activate_at SET NOT NULL;
DROP INDEX signing_keys_one_active;
ALTER TABLE signing_keys DROP COLUMN status, DROP COLUMN retired_at;
CREATE UNIQUE INDEX signing_keys_generation ON signing_keys(generation);
