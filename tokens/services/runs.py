"""The run start, the hot path of every Codex run: check a token and record the run (or count
a later turn of a Codex CLI thread on its run), in one statement on PostgreSQL
(tokens/sql/run_start.sql); a token's last use; the roll-ups the governance page counts from."""

from __future__ import annotations

from collections import namedtuple
from datetime import UTC, timedelta
from pathlib import Path

from django.db import connection, transaction
from django.db.models import Case, Count, F, Value, When
from django.db.models.functions import Coalesce, TruncDate

from console.sql import statement
from workspaces import permissions
from workspaces.models import Workspace

from ..authn import EXPIRED, FACTS_SQL, REVOKED, Grant, Refusal, TokenFacts, decide, fetch_one
from ..models import AccessToken, Run, RunDay, TokenRuns

LAST_USED_EVERY = 60  # seconds: a token's last-used time moves at most this often

RUN_START_SQL = statement(Path(__file__).parent.parent / "sql" / "run_start.sql")
# RUN_START_SQL's columns: the facts, then the run's id.
RunFacts = namedtuple("RunFacts", (*TokenFacts._fields, "run_id"))
# The policy's plans and roles, for the statement's SQL form of the rule.
POLICY = permissions.sql_parameters()


def token_touch(*, grant: Grant, ip: str | None, now) -> None:
    """Record that a token was used (whoami): at most once a minute, never after a revocation."""
    if grant.last_used_at is not None and (now - grant.last_used_at).total_seconds() < LAST_USED_EVERY:
        return
    AccessToken.objects.filter(pk=grant.token_id, revoked_at__isnull=True).update(
        last_used_at=now, last_used_ip=ip, first_used_at=Coalesce("first_used_at", Value(now))
    )


def token_refused_from(*, token_id: int, ip: str | None, now) -> None:
    """Record a call refused for coming from outside the token's allowed ranges (its page shows
    the last one). On the refusal path only: the check itself stays one round trip."""
    AccessToken.objects.filter(pk=token_id).update(last_refused_ip=ip, last_refused_at=now)


def run_start(*, digest: str, now, client: str, ip: str | None, agent: str, command: str = "",
              thread_id: str = "", model: str = "", sandbox_mode: str = "",
              turn_id: str = "") -> tuple[Grant, int]:
    """Decide whether the token with this digest may start a run now, and record the run (or,
    for a later turn of a Codex CLI thread, count the turn on that thread's run; a turn sent
    again with the same `turn_id` as the last one counted, once).

    Raises `Refusal` (nothing recorded) when it may not, including when a revocation or the
    expiry won the race with this call.
    """
    params = {"digest": digest, "now": now, "day": now.astimezone(UTC).date(),
              "fresh": now - timedelta(seconds=LAST_USED_EVERY), "client": client,
              "command": command, "ip": ip, "agent": agent, "thread_id": thread_id,
              "model": model, "sandbox_mode": sandbox_mode, "turn_id": turn_id}
    if connection.vendor == "postgresql":
        params.update(POLICY)
        row = fetch_one(RUN_START_SQL, params, RunFacts)
        grant, run_id = decide(row, now, ip), (row.run_id if row else None)
    else:
        grant, run_id = _run_start_portable(params, now)
    if run_id is None:  # revoked (or expired) between the check and the write
        if grant.expires_at is not None and grant.expires_at <= now:
            raise Refusal(*EXPIRED, grant.token_id)
        raise Refusal(*REVOKED, grant.token_id)
    return grant, run_id


def _run_start_portable(params: dict, now) -> tuple[Grant, int | None]:
    """Check, then record the run unless the token was revoked meanwhile (not PostgreSQL)."""
    grant = decide(fetch_one(FACTS_SQL, params), now, params["ip"])
    with transaction.atomic():
        last_used = Case(When(last_used_at__gt=params["fresh"], then=F("last_used_at")),
                         default=Value(now))
        used = AccessToken.objects.filter(pk=grant.token_id).active(now).update(
            last_used_at=last_used, last_used_ip=params["ip"],
            first_used_at=Coalesce("first_used_at", Value(now)))
        if not used:
            return grant, None
        if params["thread_id"]:
            run = Run.objects.filter(token_id=grant.token_id, thread_id=params["thread_id"]).first()
            if run is not None:
                again = bool(params["turn_id"]) and run.last_turn_id == params["turn_id"]
                Run.objects.filter(pk=run.pk).update(turns=F("turns") + (0 if again else 1),
                                                     last_turn_id=params["turn_id"])
                return grant, run.pk
        issued_by = AccessToken.objects.filter(pk=grant.token_id).values(
            "federation_rule_id", "workload").get()
        run = Run.objects.create(
            **issued_by,
            workspace_id=grant.workspace_id, token_id=grant.token_id, user_id=grant.user_id,
            started_at=now, client=params["client"], command=params["command"],
            ip=params["ip"], user_agent=params["agent"], thread_id=params["thread_id"],
            model=params["model"], sandbox_mode=params["sandbox_mode"],
            last_turn_id=params["turn_id"],
        )
        rollups_add(workspace_id=grant.workspace_id, day=params["day"], user_id=grant.user_id,
                    token_id=grant.token_id, runs=1)
        return grant, run.pk


# Roll-ups -------------------------------------------------------------------------------------


def rollups_add(*, workspace_id: int, day, user_id: int, token_id: int, runs: int) -> None:
    """Add `runs` (negative: take them away) to the roll-ups of a day, a member and a token
    (inside the caller's transaction). The PostgreSQL run start does the same in its
    statement."""
    updated = RunDay.objects.filter(workspace_id=workspace_id, day=day, user_id=user_id).update(
        runs=F("runs") + runs)
    if not updated:
        RunDay.objects.create(workspace_id=workspace_id, day=day, user_id=user_id, runs=runs)
    updated = TokenRuns.objects.filter(token_id=token_id).update(runs=F("runs") + runs)
    if not updated:
        TokenRuns.objects.create(token_id=token_id, workspace_id=workspace_id, runs=runs)


@transaction.atomic
def rollups_rebuild(*, workspace: Workspace) -> None:
    """Count a workspace's roll-ups afresh from its runs (after runs were written in bulk, as
    the demo and the benchmark do)."""
    RunDay.objects.filter(workspace=workspace).delete()
    TokenRuns.objects.filter(workspace=workspace).delete()
    runs = Run.objects.filter(workspace=workspace)
    RunDay.objects.bulk_create(
        RunDay(workspace=workspace, day=row["day"], user_id=row["user_id"], runs=row["n"])
        for row in runs.annotate(day=TruncDate("started_at", tzinfo=UTC))
        .values("day", "user_id").annotate(n=Count("id")))
    TokenRuns.objects.bulk_create(
        TokenRuns(workspace=workspace, token_id=row["token_id"], runs=row["n"])
        for row in runs.values("token_id").annotate(n=Count("id")))
