-- Everything the token check needs about the token with the given digest, in one row: the
-- token, its workspace (plan and toggles), its creator (with the service account's name when
-- the creator is one), the creator's membership, and what
-- custom roles held through the creator's groups grant (custom_grants: 1 for Codex Local, 2
-- for access tokens, added). Runs on SQLite and PostgreSQL alike; tokens/authn.py reads its
-- columns by the names of `TokenFacts`.
SELECT t.id AS token_id, t.name AS token_name, t.expires_at, t.revoked_at, t.last_used_at,
       t.allowed_ips,
       w.id AS workspace_id, w.slug AS workspace_slug, w.name AS workspace_name, w.plan,
       w.allow_codex_local, w.allow_access_tokens,
       u.id AS user_id, u.email AS user_email, u.is_active AS user_active,
       CASE WHEN u.is_service_account THEN u.name END AS service_account,
       m.role,
       (SELECT COALESCE(MAX(CASE WHEN cr.grants_codex_local THEN 1 ELSE 0 END), 0)
               + 2 * COALESCE(MAX(CASE WHEN cr.grants_access_tokens THEN 1 ELSE 0 END), 0)
        FROM workspaces_group_members gm
        JOIN workspaces_customrole_groups rg ON rg.group_id = gm.group_id
        JOIN workspaces_customrole cr ON cr.id = rg.customrole_id
        WHERE gm.membership_id = m.id AND cr.workspace_id = m.workspace_id) AS custom_grants
FROM tokens_accesstoken t
JOIN workspaces_workspace w ON w.id = t.workspace_id
JOIN workspaces_user u ON u.id = t.created_by_id
LEFT JOIN workspaces_membership m
       ON m.workspace_id = t.workspace_id AND m.user_id = t.created_by_id
WHERE t.digest = %(digest)s
