-- The enabled rule an exchange names, its row share-locked until the exchange commits: exchanges
-- of one rule run side by side, while disabling or deleting it (which takes FOR NO KEY UPDATE,
-- then revokes what the rule issued) waits for them, and so revokes their tokens too; an
-- exchange that comes after sees the rule disabled. Raw SQL because the ORM has no FOR SHARE
-- (FOR NO KEY UPDATE would make a burst of CI jobs on one rule wait for each other). SQLite
-- takes tokens/services/federation.py's statement without the lock clause (it locks the whole
-- database for a write instead).
SELECT r.*
FROM tokens_federationrule r
WHERE r.id = %s AND r.enabled AND r.deleted_at IS NULL
FOR SHARE OF r
