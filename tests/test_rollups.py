"""The governance numbers: the roll-ups are kept by the statement that records a run, and the
counts they give equal the runs counted one by one, whichever way the page counts them."""

import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from tokens import stats
from tokens.models import Run, RunDay, TokenRuns

from .factories import MembershipFactory, WorkspaceFactory, make_run, make_token

WHOAMI, RUNS = "/api/v1/whoami", "/api/v1/runs"


def bearer(plaintext):
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}


def totals(workspace):
    return (dict(RunDay.objects.filter(workspace=workspace).values_list("user_id", "runs")),
            dict(TokenRuns.objects.filter(workspace=workspace).values_list("token_id", "runs")))


def test_each_run_is_counted_once(client, owner, settings):
    token, plaintext = make_token(owner)
    for _ in range(3):
        assert client.post(RUNS, **bearer(plaintext)).status_code == 201
    client.get(WHOAMI, **bearer(plaintext))  # not a run
    assert totals(owner.workspace) == ({owner.user_id: 3}, {token.pk: 3})
    assert RunDay.objects.get().day == timezone.now().astimezone(UTC).date()


def test_later_turns_of_a_cli_thread_are_not_more_runs(client, owner, settings):
    settings.DEBUG, settings.CODEX_UPSTREAM_URL = True, ""
    token, plaintext = make_token(owner)
    for thread in ("a", "a", "a", "b"):
        response = client.post("/codex/api/responses", b"{}", content_type="application/json",
                               HTTP_X_CODEX_TURN_METADATA=f'{{"thread_id": "{thread}"}}',
                               **bearer(plaintext))
        b"".join(response.streaming_content)
    assert totals(owner.workspace) == ({owner.user_id: 2}, {token.pk: 2})


def test_a_refused_run_is_not_counted(client, owner):
    _, plaintext = make_token(owner, revoked_at=timezone.now())
    assert client.post(RUNS, **bearer(plaintext)).status_code == 401
    assert totals(owner.workspace) == ({}, {})


def test_runs_started_at_once_are_all_counted(transactional_db):
    workspace = WorkspaceFactory(allow_access_tokens=True)
    owner = MembershipFactory(workspace=workspace, role="owner")
    token, plaintext = make_token(owner)
    barrier = threading.Barrier(4)
    statuses = []

    def start():
        try:
            barrier.wait(10)
            for _ in range(5):
                statuses.append(Client().post(RUNS, **bearer(plaintext)).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [201] * 20
    assert totals(workspace) == ({owner.user_id: 20}, {token.pk: 20})
    assert Run.objects.count() == 20


@pytest.fixture
def history(owner, admin, member_with_token_permission):
    """Runs over 60 days, some tokens busier than others, some runs older than 30 days."""
    today = timezone.now().astimezone(UTC).date()
    tokens = [make_token(m, name=f"t{n}-{m.pk}")[0] for n in range(3)
              for m in (owner, admin, member_with_token_permission)]
    moments = []
    for n, token in enumerate(tokens):
        for k in range((n * 7) % 11 + 1):
            day = today - timedelta(days=(n * 13 + k * 5) % 60)
            when = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=1 + k % 20)
            make_run(token, started_at=when)
            moments.append((token, when))
    return today, moments


def expected(moments, period):
    inside = [(t, w) for t, w in moments if period.low <= w < period.high]
    by_token = Counter(t.pk for t, _ in inside)
    by_user = Counter(t.created_by_id for t, _ in inside)
    by_day = Counter(w.date() for _, w in inside)
    return by_token, by_user, by_day


def top(counter):
    return sorted(counter.items(), key=lambda row: (-row[1], row[0]))[:stats.TOP]


@pytest.mark.parametrize("days", [1, 7, 30, 45, 59, 365])
def test_counts_equal_the_runs_counted_one_by_one(owner, history, days):
    today, moments = history
    period = stats.period(today - timedelta(days=days - 1), today, today)
    by_token, by_user, by_day = expected(moments, period)
    workspace, filters = owner.workspace, stats.Filters()
    assert stats.top_tokens(workspace, period, filters) == top(by_token)
    assert stats.top_members(workspace, period, filters) == top(by_user)
    assert stats.per_day(workspace, period, filters) == [(d, by_day.get(d, 0)) for d in period.days]


def test_filtered_counts_come_from_the_runs(owner, history):
    today, moments = history
    period = stats.period(None, None, today)
    mine = [(t, w) for t, w in moments if t.created_by_id == owner.user_id]
    by_token, _, by_day = expected(mine, period)
    filters = stats.Filters(user_id=owner.user_id)
    assert stats.top_tokens(owner.workspace, period, filters) == top(by_token)
    assert stats.per_day(owner.workspace, period, filters) == [
        (d, by_day.get(d, 0)) for d in period.days]


def test_the_default_period_is_the_last_30_days(db):
    today = date(2026, 11, 29)
    assert stats.period(None, None, today) == stats.Period(date(2026, 10, 31), today)
    assert stats.period(date(2026, 11, 1), None, today) == stats.Period(date(2026, 11, 1), today)
    assert stats.period(None, date(2026, 6, 30), today) == stats.Period(date(2026, 6, 1),
                                                                         date(2026, 6, 30))
    long = stats.period(date(2020, 1, 1), date(2026, 1, 1), today)
    assert (long.last - long.first).days == 399  # at most 400 days, the retention


def test_the_chart_has_a_bar_per_day_and_words_for_screen_readers(client, owner, history):
    client.force_login(owner.user)
    html = client.get("/w/acme/admin/governance/").content.decode()
    svg = html.split('<svg class="chart"')[1].split("</svg>")[0]
    assert 'role="img"' in html.split('<svg class="chart"')[1][:200]
    assert "<title" in svg and "<desc" in svg and "The table below lists every day" in svg
    table = html.split('class="chart-table"')[1].split("</details>")[0]
    assert table.count("<tr>") == 31  # the header and 30 days
    assert "Show runs per day as a table" in html
