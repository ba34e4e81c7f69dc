"""Retention: runs older than `RUN_RETENTION_DAYS` are removed (`manage.py prune_runs`, daily),
taken out of the roll-ups in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import transaction
from django.db.models import F

from console.audit import Actor
from workspaces.audit import record
from workspaces.models import Workspace

from ..models import Run, RunDay, TokenRuns

PRUNE_BATCH = 5000


def runs_prune(*, before: datetime, batch: int = PRUNE_BATCH) -> int:
    """Delete the runs started before `before`, in batches of `batch`, each in its own short
    transaction (no lock is held for long, and runs keep being recorded meanwhile). Each batch
    takes its runs out of the roll-ups and is audited in each workspace it touched. Returns how
    many runs were deleted.

    Two prunes at once (a cron line on every server) share the work: a batch locks its runs and
    the other prune skips locked runs, so no run is taken out of the roll-ups twice."""
    deleted = 0
    while True:
        with transaction.atomic():
            rows = list(
                Run.objects.filter(started_at__lt=before).order_by("id")
                .select_for_update(skip_locked=True)
                .values_list("id", "workspace_id", "token_id", "user_id", "started_at")[:batch]
            )
            if not rows:
                return deleted
            Run.objects.filter(pk__in=[row[0] for row in rows]).delete()
            days: dict[tuple, int] = {}
            tokens: dict[tuple, int] = {}
            per_workspace: dict[int, int] = {}
            for _, workspace_id, token_id, user_id, started_at in rows:
                day = (workspace_id, started_at.astimezone(UTC).date(), user_id)
                days[day] = days.get(day, 0) + 1
                tokens[(workspace_id, token_id)] = tokens.get((workspace_id, token_id), 0) + 1
                per_workspace[workspace_id] = per_workspace.get(workspace_id, 0) + 1
            for (workspace_id, day, user_id), n in days.items():
                RunDay.objects.filter(workspace_id=workspace_id, day=day, user_id=user_id).update(
                    runs=F("runs") - n)
            RunDay.objects.filter(runs__lte=0).delete()
            for (_, token_id), n in tokens.items():
                TokenRuns.objects.filter(token_id=token_id).update(runs=F("runs") - n)
            for workspace in Workspace.objects.filter(pk__in=per_workspace):
                record(workspace=workspace, actor=Actor(None, label="retention"),
                       action="runs.pruned", target=f"{per_workspace[workspace.pk]} runs",
                       details={"runs": per_workspace[workspace.pk],
                                "started_before": before.isoformat()})
            deleted += len(rows)


