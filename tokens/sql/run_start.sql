-- Check a token and record a run in one statement, one round trip (PostgreSQL only; other
-- databases take tokens/services/runs.py's portable path). Raw SQL because it runs on every
-- Codex turn: the ORM's query building costs more than the statement.
--
-- `f` is tokens/sql/token_facts.sql, whole (a test keeps the two the same). The statement
-- returns the facts row, for the Python check that decides the answer, with the run's id at
-- the end: NULL when no run was recorded. The conditional UPDATE takes the token's row lock and
-- asks again, under it, whether the token is active (not revoked, not expired), inside its
-- allowed ranges, and may be used by the policy (`workspaces.permissions.holds`, written in SQL:
-- the plans and roles are parameters from the same constants): a revocation that committed
-- first always wins. Only then does the INSERT get a row.
--
-- The last-used time moves at most once a minute (`fresh`): the token list sorts by it
-- through an index, and an update that keeps indexed columns is done in place (HOT). A later
-- turn of a Codex CLI thread counts on that thread's run instead of recording another (API
-- runs have no thread), once per turn: a turn the CLI sends again (the same `turn_id` as the last
-- one counted, as its retries do) is not counted twice. The daily and per-token roll-ups count
-- new runs. A run started with a token a federation rule issued records the rule and the
-- workload's claims, from the token.
WITH f AS (
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
),
used AS (
    UPDATE tokens_accesstoken t
    SET last_used_at = CASE WHEN t.last_used_at > %(fresh)s THEN t.last_used_at ELSE %(now)s END,
        last_used_ip = %(ip)s, first_used_at = COALESCE(t.first_used_at, %(now)s)
    FROM f
    WHERE t.id = f.token_id AND t.revoked_at IS NULL
      AND (t.expires_at IS NULL OR t.expires_at > %(now)s)
      AND (t.allowed_ips = ''
           OR %(ip)s::inet <<= ANY (string_to_array(t.allowed_ips, E'\n')::cidr[]))
      AND f.user_active AND f.plan = ANY (string_to_array(%(token_plans)s, ','))
      AND (f.role = ANY (string_to_array(%(admin_roles)s, ','))
           OR (f.role = %(member_role)s
               AND (f.allow_codex_local OR f.custom_grants & 1 <> 0)
               AND (f.allow_access_tokens OR f.custom_grants & 2 <> 0)))
    RETURNING t.id, t.workspace_id, t.created_by_id, t.federation_rule_id, t.workload
),
run AS (
    INSERT INTO tokens_run (workspace_id, token_id, user_id, started_at, client, command, ip,
                            user_agent, thread_id, model, sandbox_mode, turns,
                            federation_rule_id, workload, last_turn_id)
    SELECT workspace_id, id, created_by_id, %(now)s, %(client)s, %(command)s, %(ip)s, %(agent)s,
           %(thread_id)s, %(model)s, %(sandbox_mode)s, 1, federation_rule_id, workload,
           %(turn_id)s
    FROM used
    ON CONFLICT (token_id, thread_id) WHERE thread_id <> ''
    DO UPDATE SET turns = tokens_run.turns + CASE WHEN %(turn_id)s <> ''
                                                   AND tokens_run.last_turn_id = %(turn_id)s
                                              THEN 0 ELSE 1 END,
                  last_turn_id = %(turn_id)s
    RETURNING id, workspace_id, token_id, user_id, xmax = 0 AS inserted
),
daily AS (
    INSERT INTO tokens_runday (workspace_id, day, user_id, runs)
    SELECT workspace_id, %(day)s, user_id, 1 FROM run WHERE inserted
    ON CONFLICT (workspace_id, day, user_id) DO UPDATE SET runs = tokens_runday.runs + 1
),
total AS (
    INSERT INTO tokens_tokenruns (token_id, workspace_id, runs)
    SELECT token_id, workspace_id, 1 FROM run WHERE inserted
    ON CONFLICT (token_id) DO UPDATE SET runs = tokens_tokenruns.runs + 1
)
SELECT f.*, (SELECT id FROM run) AS run_id FROM f
