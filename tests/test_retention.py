"""Retention: `manage.py prune_runs` removes runs older than RUN_RETENTION_DAYS in bounded
batches, keeps the roll-ups equal to what is left, and audits it in each workspace."""

import threading
from datetime import UTC, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from tokens.models import Run, RunDay, TokenRuns
from tokens.services import retention, runs
from workspaces.models import AuditEvent

from .factories import MembershipFactory, WorkspaceFactory, make_run, make_token


def recount():
    days = {(r["workspace_id"], r["day"], r["user_id"]): r["n"] for r in
            Run.objects.annotate(day=TruncDate("started_at", tzinfo=UTC))
            .values("workspace_id", "day", "user_id").annotate(n=Count("id"))}
    tokens = dict(Run.objects.values("token_id").annotate(n=Count("id")).values_list("token_id", "n"))
    return days, tokens


def rollups():
    days = {(r.workspace_id, r.day, r.user_id): r.runs for r in RunDay.objects.all()}
    tokens = {t.token_id: t.runs for t in TokenRuns.objects.filter(runs__gt=0)}
    return days, tokens


@pytest.fixture
def old_and_new(owner, outsider):
    now = timezone.now()
    mine, _ = make_token(owner)
    theirs, _ = make_token(outsider)
    for age in (500, 450, 401, 399, 30, 1):
        make_run(mine, started_at=now - timedelta(days=age))
    for age in (420, 10):
        make_run(theirs, started_at=now - timedelta(days=age))
    return now


def test_runs_older_than_the_retention_go_in_batches(old_and_new, settings):
    settings.RUN_RETENTION_DAYS = 400
    call_command("prune_runs", "--batch", "2")
    now = old_and_new
    ages = sorted((now - r.started_at).days for r in Run.objects.all())
    assert ages == [1, 10, 30, 399]
    assert rollups() == recount()
    events = AuditEvent.objects.filter(action="runs.pruned")
    # Four old runs in batches of two: acme's three and globex's one, per batch and workspace.
    assert sum(e.details["runs"] for e in events) == 4
    assert {e.workspace.slug for e in events} == {"acme", "globex"}
    assert all(e.actor_email == "retention" for e in events)


def test_running_it_again_removes_nothing(old_and_new):
    call_command("prune_runs")
    before = (Run.objects.count(), AuditEvent.objects.count())
    call_command("prune_runs")
    assert (Run.objects.count(), AuditEvent.objects.count()) == before


def test_the_days_can_be_given(old_and_new):
    call_command("prune_runs", "--days", "20")
    assert Run.objects.count() == 2
    assert rollups() == recount()


def test_nonsense_is_refused(db):
    with pytest.raises(CommandError):
        call_command("prune_runs", "--days", "0")
    with pytest.raises(CommandError):
        call_command("prune_runs", "--batch", "0")


def test_the_governance_page_still_adds_up(client, owner, old_and_new):
    call_command("prune_runs")
    client.force_login(owner.user)
    page = client.get("/w/acme/admin/governance/").content.decode()
    assert "1 run over the last 30 days" in page  # the one of yesterday


def test_two_prunes_at_once_share_the_work_and_keep_the_roll_ups(transactional_db):
    """A cron line on every server: the prunes run at the same moment, on their own
    connections, and every old run leaves the roll-ups exactly once."""
    workspace = WorkspaceFactory(slug="acme")
    token, _ = make_token(MembershipFactory(workspace=workspace, role="owner"))
    now = timezone.now()
    Run.objects.bulk_create(
        Run(workspace=workspace, token=token, user=token.created_by,
            started_at=now - timedelta(days=401 + n % 30, minutes=n)) for n in range(300))
    Run.objects.bulk_create(
        Run(workspace=workspace, token=token, user=token.created_by,
            started_at=now - timedelta(days=n % 30, minutes=n)) for n in range(20))
    runs.rollups_rebuild(workspace=workspace)
    barrier = threading.Barrier(2)
    removed, failures = [], []

    def prune():
        try:
            barrier.wait(10)
            removed.append(retention.runs_prune(before=now - timedelta(days=400), batch=10))
        except Exception as error:
            failures.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=prune) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures
    assert sum(removed) == 300
    assert Run.objects.count() == 20
    assert rollups() == recount()
    assert sum(e.details["runs"] for e in AuditEvent.objects.filter(action="runs.pruned")) == 300
