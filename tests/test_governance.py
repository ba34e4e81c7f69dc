from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from .factories import MembershipFactory, make_run, make_token, table_of

URL = "/w/acme/admin/governance/"


def test_it_lists_runs_newest_first_with_member_token_client_and_address(
    client, owner, member_with_token_permission
):
    token, _ = make_token(member_with_token_permission, name="Nightly")
    now = timezone.now()
    make_run(token, client="old-client", started_at=now - timedelta(hours=2))
    make_run(token, client="new-client", command="codex exec tests", ip="192.0.2.7",
             started_at=now)
    client.force_login(owner.user)
    rows = table_of(client.get(URL))
    assert rows.index("new-client") < rows.index("old-client")
    assert "dora@acme.test" in rows and "Nightly" in rows and "192.0.2.7" in rows
    assert "codex exec tests" in rows


@pytest.fixture
def runs(owner, admin):
    mine, _ = make_token(owner, name="mine")
    theirs, _ = make_token(admin, name="theirs")
    make_run(mine, client="a", started_at=datetime(2026, 1, 1, 12, tzinfo=UTC))
    make_run(mine, client="b", started_at=datetime(2026, 1, 2, 12, tzinfo=UTC))
    make_run(theirs, client="c", started_at=datetime(2026, 1, 3, 12, tzinfo=UTC))
    return mine, theirs


@pytest.mark.parametrize("query,clients", [
    ({"member": "adam@acme.test"}, {"c"}),
    ({"token": "mine"}, {"a", "b"}),
    ({"start": "2026-01-02"}, {"b", "c"}),
    ({"start": "2026-01-01", "end": "2026-01-01"}, {"a"}),
])
def test_it_filters(client, owner, runs, query, clients):
    client.force_login(owner.user)
    rows = table_of(client.get(URL, query))
    assert {c for c in "abc" if f">{c}</td>" in rows} == clients


def test_it_counts_per_token_and_member_for_the_period(client, owner, runs):
    client.force_login(owner.user)
    html = client.get(URL, {"start": "2026-01-01", "end": "2026-01-31"}).content.decode()
    assert "Runs per member" in html and "Runs per token" in html
    per_member = html.split("Runs per member")[1].split("Runs per token")[0]
    assert "alice@acme.test</a><strong>2</strong>" in per_member
    assert "adam@acme.test</a><strong>1</strong>" in per_member


def test_it_exports_the_filtered_runs(client, owner, runs):
    client.force_login(owner.user)
    response = client.get(URL + "export.csv", {"member": "alice@acme.test"})
    lines = b"".join(response.streaming_content).decode().strip().splitlines()
    assert lines[0].startswith("started_at,member,token")
    assert len(lines) == 3 and all("alice@acme.test" in line for line in lines[1:])


def test_it_pages_by_keyset_without_counting(client, owner, django_assert_max_num_queries):
    token, _ = make_token(owner)
    now = timezone.now()
    for n in range(60):
        make_run(token, client=f"r{n:02}", started_at=now - timedelta(minutes=n))
    client.force_login(owner.user)
    client.get(URL)
    first = client.get(URL)
    assert "r49" in table_of(first) and "r50" not in table_of(first)
    assert "Older" in first.content.decode()
    with django_assert_max_num_queries(11) as queries:
        client.get(URL)
    assert not any("COUNT(*)" in q["sql"] and "GROUP BY" not in q["sql"]
                   for q in queries.captured_queries)


@pytest.mark.parametrize("rows", [3, 30])
def test_constant_queries(client, owner, workspace, django_assert_num_queries, rows):
    for n in range(rows):
        token, _ = make_token(MembershipFactory(workspace=workspace), name=f"t{n}")
        make_run(token)
    client.force_login(owner.user)
    client.get(URL)
    # session, user, membership, page, runs per day, per member, which side of the period is
    # smaller, per token, the members' emails and the tokens' names, sidebar
    with django_assert_num_queries(11):
        client.get(URL)


def test_the_empty_state(client, owner):
    client.force_login(owner.user)
    assert b"No runs yet" in client.get(URL).content


def test_other_workspaces_runs_stay_out(client, owner, outsider):
    token, _ = make_token(outsider, name="foreign-token")
    make_run(token, client="foreign")
    client.force_login(owner.user)
    assert "foreign" not in table_of(client.get(URL))


def test_an_export_longer_than_a_batch_has_every_run_in_the_pages_order(client, owner):
    """The export reads in keyset batches: runs that share a start time fall across a batch's
    edge and are neither lost nor repeated."""
    import csv
    import io

    from console.paging import EXPORT_BATCH
    from tokens.models import Run

    token, _ = make_token(owner, name="bulk")
    now = timezone.now().replace(microsecond=0)
    Run.objects.bulk_create(
        Run(workspace=token.workspace, token=token, user=token.created_by, client=f"c{n}",
            started_at=now - timedelta(seconds=n // 5))
        for n in range(2 * EXPORT_BATCH + 3))
    client.force_login(owner.user)
    response = client.get(URL + "export.csv")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))[1:]
    expected = list(Run.objects.order_by("-started_at", "-pk").values_list("client", flat=True))
    assert [row[4] for row in rows] == expected
    assert len(expected) == 2 * EXPORT_BATCH + 3
