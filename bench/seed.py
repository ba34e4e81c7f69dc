"""The benchmark's data: one large workspace in the `bench` PostgreSQL database.

One enterprise workspace with both Codex Local toggles on, a handful of members, 100,000 access
tokens created over the past year (some revoked, many expired), their audit events, and
1,000,000 runs spread over the same year. The bulk rows are made inside PostgreSQL with
INSERT ... SELECT generate_series, so seeding takes seconds rather than hours.

Call after django.setup() with the bench settings. Only `ensure()` and `issue_load_tokens()`
are meant to be used from outside.
"""

from __future__ import annotations

import secrets
import time

from django.db import connection, transaction

from tokens import codec
from tokens.models import AccessToken, Run, RunDay, TokenRuns
from workspaces.models import AuditEvent, Membership, Plan, Role, User, Workspace

SLUG = "bench"
TOKENS = 100_000
RUNS = 1_000_000
DAYS = 365
# Reserved tokens the load test uses: they get fresh secrets on every bench run (the plaintext
# lives only in the bench process's memory), so their count never changes.
LOAD_TOKENS = 8
LOAD_TOKEN_PREFIX = "Load test "
# The load-test tokens' allowed IP ranges: loopback (where wrk calls from) among others.
LOAD_TOKEN_RANGES = "10.0.0.0/8\n127.0.0.0/8\n192.168.0.0/16\n::1/128\nfd00::/8"
# The client name the load test sends; its runs are deleted before the next bench run so the
# data stays at the seeded size.
LOAD_CLIENT = "bench"

OWNER = "owner@bench.test"
ADMIN = "admin@bench.test"
MEMBER = "dev@bench.test"  # a member: holds the access token permission through the toggles
MEMBERS = [
    (OWNER, Role.OWNER),
    (ADMIN, Role.ADMIN),
    (MEMBER, Role.MEMBER),
    ("ci@bench.test", Role.MEMBER),
    ("ops@bench.test", Role.MEMBER),
]
# Who created the load-test tokens, in turn: mostly the plain member, whose check is the
# most expensive (it looks for custom roles held through groups).
LOAD_TOKEN_CREATORS = [MEMBER, MEMBER, MEMBER, MEMBER, ADMIN, ADMIN, OWNER, OWNER]


def _t(model) -> str:
    return model._meta.db_table


def ensure() -> tuple[Workspace, bool]:
    """The bench workspace at the seeded size: (workspace, whether it was seeded just now).

    Leftover runs of an earlier load test are deleted first; anything else that does not match
    the expected size (an interrupted seed, changed constants) is wiped and seeded afresh.
    """
    workspace = Workspace.objects.filter(slug=SLUG).first()
    if workspace is not None:
        deleted, _ = Run.objects.filter(workspace=workspace, client=LOAD_CLIENT).delete()
        if deleted:
            _count_rollups(workspace.pk)
        if _size(workspace) == (TOKENS, RUNS):
            if deleted:
                # Every run starts from the same state: the dead rows gone, the newest pages
                # all-visible again (index-only scans), the planner's counts right.
                _vacuum(Run, RunDay, TokenRuns)
            return workspace, False
        _wipe()
    _seed()
    _vacuum()
    return Workspace.objects.get(slug=SLUG), True


def issue_load_tokens() -> list[str]:
    """Give the reserved load-test tokens fresh real secrets; returns the plaintexts."""
    workspace = Workspace.objects.get(slug=SLUG)
    reserved = list(
        AccessToken.objects.filter(workspace=workspace, name__startswith=LOAD_TOKEN_PREFIX)
        .order_by("id")
    )
    assert len(reserved) == LOAD_TOKENS, f"expected {LOAD_TOKENS} load-test tokens"
    plaintexts = []
    with transaction.atomic():
        for token in reserved:
            plaintext = codec.generate()
            AccessToken.objects.filter(pk=token.pk).update(
                digest=codec.digest(plaintext), last_characters=plaintext[-4:],
                last_used_at=None, last_used_ip=None, revoked_at=None, expires_at=None,
                # The check then also tests the address, as a careful admin would set it up.
                allowed_ips=LOAD_TOKEN_RANGES,
            )
            plaintexts.append(plaintext)
    return plaintexts


def _size(workspace) -> tuple[int, int]:
    return (
        AccessToken.objects.filter(workspace=workspace).count(),
        Run.objects.filter(workspace=workspace).count(),
    )


def _wipe() -> None:
    # The `bench` database belongs to the benchmark alone: clear every workspace and user, and
    # with them (CASCADE) memberships, tokens, runs, audit events and sessions' owners.
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {_t(Workspace)}, {_t(User)} CASCADE")


@transaction.atomic
def _seed() -> None:
    started = time.monotonic()
    workspace = Workspace.objects.create(
        slug=SLUG, name="Bench Corp", plan=Plan.ENTERPRISE,
        allow_codex_local=True, allow_access_tokens=True,
    )
    users = {}
    for email, role in MEMBERS:
        # Nobody signs in with a password: the page timings use force_login.
        users[email] = User.objects.create_user(email, secrets.token_urlsafe(24))
        Membership.objects.create(workspace=workspace, user=users[email], role=role)
    user_ids = [users[email].pk for email, _ in MEMBERS]

    with connection.cursor() as cursor:
        # Every id written below comes from rows made in this transaction, so the foreign key
        # triggers can be skipped: checking 3 million deferred references one by one would
        # take longer than writing the rows (the role needs a superuser, which `postgres` is).
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SET LOCAL work_mem = '256MB'")
        _seed_tokens(cursor, workspace.pk, user_ids)
        _seed_load_tokens(cursor, workspace.pk, [users[e].pk for e in LOAD_TOKEN_CREATORS])
        _seed_audit_events(cursor, workspace.pk, users[OWNER])
        _seed_runs(cursor, workspace.pk)
    _count_rollups(workspace.pk)
    print(f"  seeded {TOKENS:,} tokens and {RUNS:,} runs in {time.monotonic() - started:.1f} s")


def _seed_tokens(cursor, workspace_id: int, user_ids: list[int]) -> None:
    """The bulk tokens: created over the year, in creation order (as a real table fills up).

    About 10% are revoked; the rest expire 30, 60, 90 or 365 days after creation or never,
    so the list holds a realistic mix of active and expired tokens. Their digests are of
    random strings: nobody uses them.
    """
    bulk = TOKENS - LOAD_TOKENS
    cursor.execute(
        f"""
        INSERT INTO {_t(AccessToken)} (workspace_id, created_by_id, name, digest,
            last_characters, created_at, expires_at, last_used_at, revoked_at, revoked_by_id)
        SELECT %(ws)s, creator, name, digest, right(digest, 4), created_at,
            CASE WHEN lifetime IS NULL THEN NULL ELSE created_at + lifetime END,
            CASE WHEN used THEN created_at + random() * (now() - created_at) END,
            CASE WHEN revoked THEN created_at + random() * (now() - created_at) END,
            CASE WHEN revoked THEN %(owner)s END
        FROM (
            SELECT (%(users)s::bigint[])[1 + g %% cardinality(%(users)s::bigint[])] AS creator,
                (ARRAY['Nightly CI', 'Release pipeline', 'PR review bot', 'Docs builder',
                       'Scheduled refactor', 'Migration checker'])[1 + g %% 6] || ' ' || g
                    AS name,
                encode(sha256(('bench-token:' || g || ':' || random())::bytea), 'hex')
                    AS digest,
                now() - random() * interval '{DAYS} days' AS created_at,
                (ARRAY[NULL, interval '30 days', interval '60 days', interval '90 days',
                       interval '365 days'])[1 + floor(random() * 5)::int] AS lifetime,
                random() < 0.8 AS used,
                random() < 0.1 AS revoked
            FROM generate_series(1, %(n)s) AS g
        ) AS t
        ORDER BY created_at
        """,
        {"ws": workspace_id, "users": user_ids, "owner": user_ids[0], "n": bulk},
    )


def _seed_load_tokens(cursor, workspace_id: int, creator_ids: list[int]) -> None:
    # Placeholder digests: issue_load_tokens() gives them real secrets on every run.
    cursor.execute(
        f"""
        INSERT INTO {_t(AccessToken)} (workspace_id, created_by_id, name, digest,
            last_characters, created_at)
        SELECT %(ws)s, (%(users)s::bigint[])[g], %(prefix)s || g,
            encode(sha256(('bench-load:' || g || ':' || random())::bytea), 'hex'), '0000',
            now() - interval '1 day'
        FROM generate_series(1, %(n)s) AS g
        """,
        {"ws": workspace_id, "users": creator_ids, "prefix": LOAD_TOKEN_PREFIX,
         "n": LOAD_TOKENS},
    )


def _seed_audit_events(cursor, workspace_id: int, owner: User) -> None:
    """What creating and revoking those tokens would have written to the audit log."""
    users = _t(User)
    cursor.execute(
        f"""
        INSERT INTO {_t(AuditEvent)} (workspace_id, actor_id, actor_email, action, target,
            details, ip, user_agent, created_at)
        SELECT %(ws)s, e.actor_id, u.email, e.action, e.target, e.details, '10.0.0.1',
            'Mozilla/5.0 (bench)', e.created_at
        FROM (
            SELECT created_by_id AS actor_id, 'token.created' AS action, name AS target,
                jsonb_build_object('token_id', id, 'last_characters', last_characters,
                                   'expires_at', expires_at) AS details,
                created_at
            FROM {_t(AccessToken)} WHERE workspace_id = %(ws)s
            UNION ALL
            SELECT revoked_by_id, 'token.revoked', name,
                jsonb_build_object('token_id', id, 'last_characters', last_characters,
                                   'created_by', (SELECT email FROM {users}
                                                  WHERE id = created_by_id)),
                revoked_at
            FROM {_t(AccessToken)} WHERE workspace_id = %(ws)s AND revoked_at IS NOT NULL
        ) AS e
        JOIN {users} u ON u.id = e.actor_id
        ORDER BY e.created_at
        """,
        {"ws": workspace_id},
    )
    cursor.execute(
        f"""
        INSERT INTO {_t(AuditEvent)} (workspace_id, actor_id, actor_email, action, target,
            details, user_agent, created_at)
        VALUES (%s, %s, %s, 'settings.updated', 'Bench Corp',
            '{{"allow_access_tokens": {{"before": false, "after": true}}}}', '', now())
        """,
        [workspace_id, owner.pk, owner.email],
    )


def _seed_runs(cursor, workspace_id: int) -> None:
    """A year of runs in time order, a few busy tokens and a long tail (random()^3 skews the
    pick towards the first tokens), each by its token's creator."""
    cursor.execute(
        f"""
        CREATE TEMPORARY TABLE bench_token ON COMMIT DROP AS
        SELECT row_number() OVER (ORDER BY id) AS n, id, created_by_id
        FROM {_t(AccessToken)}
        WHERE workspace_id = %(ws)s AND name NOT LIKE %(load)s
        """,
        {"ws": workspace_id, "load": LOAD_TOKEN_PREFIX + "%"},
    )
    cursor.execute("CREATE UNIQUE INDEX ON bench_token (n)")
    cursor.execute(
        f"""
        INSERT INTO {_t(Run)} (workspace_id, token_id, user_id, started_at, client, command,
            ip, user_agent)
        SELECT %(ws)s, t.id, t.created_by_id, r.started_at, r.client, r.command, r.ip,
            'codex-cli/0.46.0'
        FROM (
            -- random() keeps PostgreSQL from flattening this subquery into the join.
            SELECT 1 + floor(power(random(), 3) * %(tokens)s)::bigint AS n,
                now() - random() * interval '{DAYS} days' AS started_at,
                (ARRAY['codex-cli', 'github-actions', 'gitlab-ci', 'buildkite'])
                    [1 + floor(random() * 4)::int] AS client,
                (ARRAY['codex exec "fix the failing tests"', 'codex exec "review this PR"',
                       'codex exec "update the changelog"', 'codex exec "bump dependencies"'])
                    [1 + floor(random() * 4)::int] AS command,
                ('10.0.' || floor(random() * 256) || '.' || floor(random() * 256))::inet AS ip
            FROM generate_series(1, %(runs)s)
        ) AS r
        JOIN bench_token t ON t.n = r.n
        ORDER BY r.started_at
        """,
        {"ws": workspace_id, "tokens": TOKENS - LOAD_TOKENS, "runs": RUNS},
    )


def _count_rollups(workspace_id: int) -> None:
    """The governance roll-ups, counted afresh from the runs (as `rollups_rebuild` does, in one
    statement each)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {_t(RunDay)} WHERE workspace_id = %s", [workspace_id])
        cursor.execute(f"DELETE FROM {_t(TokenRuns)} WHERE workspace_id = %s", [workspace_id])
        cursor.execute(
            f"""
            INSERT INTO {_t(RunDay)} (workspace_id, day, user_id, runs)
            SELECT workspace_id, (started_at AT TIME ZONE 'UTC')::date, user_id, count(*)
            FROM {_t(Run)} WHERE workspace_id = %s GROUP BY 1, 2, 3
            """, [workspace_id])
        cursor.execute(
            f"""
            INSERT INTO {_t(TokenRuns)} (token_id, workspace_id, runs)
            SELECT token_id, workspace_id, count(*) FROM {_t(Run)} WHERE workspace_id = %s
            GROUP BY 1, 2
            """, [workspace_id])


def _vacuum(*models) -> None:
    # VACUUM (outside any transaction) also sets the visibility map, as autovacuum would have
    # long since done on a table that grew over a year; ANALYZE gives the planner real counts.
    models = models or (AccessToken, Run, RunDay, TokenRuns, AuditEvent, Membership, Workspace, User)
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"VACUUM (ANALYZE) {_t(model)}")
