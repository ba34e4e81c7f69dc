from datetime import timedelta

import pytest
from django.utils import timezone

from tokens import codec
from workspaces.models import AuditEvent

from .factories import make_token, table_of

URL = "/w/acme/admin/audit-log/"


def _event(workspace, action="group.created", actor_email="alice@acme.test", **extra):
    return AuditEvent.objects.create(workspace=workspace, action=action,
                                     actor_email=actor_email, **extra)


def test_it_lists_events_newest_first(client, owner, workspace):
    now = timezone.now()
    _event(workspace, target="older", created_at=now - timedelta(hours=1))
    _event(workspace, target="newer", created_at=now)
    client.force_login(owner.user)
    rows = table_of(client.get(URL))
    assert rows.index("newer") < rows.index("older")


def test_it_records_the_whole_story_through_the_console(client, owner, member):
    client.force_login(owner.user)
    client.post("/w/acme/admin/settings/", {"allow_codex_local": "on", "allow_access_tokens": "on"})
    client.post("/w/acme/admin/groups/new/", {"name": "Ops"})
    client.post(f"/w/acme/admin/members/{member.pk}/role/", {"role": "admin"})
    response = client.post("/w/acme/admin/access-tokens/new/",
                           {"name": "CI", "expiration": "30", "request_key": "k1"})
    token_id = response.content.decode().split('data-token-id="')[1].split('"')[0]
    client.post(f"/w/acme/admin/access-tokens/{token_id}/revoke/")
    html = client.get(URL).content.decode()
    for label in ["Settings changed", "Group created", "Member role changed",
                  "Access token created", "Access token revoked"]:
        assert label in html
    assert "off → on" in html and "member → admin" in html


def test_it_never_shows_a_token_or_its_digest(client, owner):
    client.force_login(owner.user)
    response = client.post("/w/acme/admin/access-tokens/new/",
                           {"name": "CI", "expiration": "30", "request_key": "k1"})

    plaintext = codec.FIND_RE.search(response.content.decode()).group(0)
    from tokens.models import AccessToken

    digest = AccessToken.objects.get().digest
    for page in (client.get(URL), client.get(URL + "export.csv")):
        body = b"".join(page.streaming_content) if page.streaming else page.content
        assert plaintext.encode() not in body and digest.encode() not in body


@pytest.mark.parametrize("query,targets", [
    ({"action": "token.revoked"}, {"b"}),
    ({"actor": "ADAM@acme.test"}, {"c"}),
    ({"start": "2026-01-02", "end": "2026-01-02"}, {"b"}),
    ({"start": "2026-01-02"}, {"b", "c"}),
    ({"end": "2026-01-01"}, {"a"}),
])
def test_it_filters(client, owner, workspace, query, targets):
    from datetime import UTC, datetime

    _event(workspace, target="a", created_at=datetime(2026, 1, 1, 23, 59, tzinfo=UTC))
    _event(workspace, action="token.revoked", target="b",
           created_at=datetime(2026, 1, 2, 0, 0, tzinfo=UTC))
    _event(workspace, target="c", actor_email="adam@acme.test",
           created_at=datetime(2026, 1, 3, tzinfo=UTC))
    client.force_login(owner.user)
    rows = table_of(client.get(URL, query))
    assert {t for t in "abc" if f"<td>{t}</td>" in rows} == targets


def test_a_bad_filter_explains_itself(client, owner, workspace):
    _event(workspace, target="a")
    client.force_login(owner.user)
    response = client.get(URL, {"start": "2026-02-02", "end": "2026-01-01"})
    assert response.status_code == 400
    assert b"The end date must be on or after the start date." in response.content
    response = client.get(URL, {"start": "nope"})
    assert response.status_code == 400
    assert b"Enter a date as YYYY-MM-DD." in response.content


def test_it_exports_the_filtered_events_as_csv(client, owner, workspace):
    _event(workspace, action="token.revoked", target="=cmd|' /C calc'!A0", details={"k": "v"})
    _event(workspace, target="other")
    client.force_login(owner.user)
    response = client.get(URL + "export.csv", {"action": "token.revoked"})
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    lines = body.strip().splitlines()
    assert lines[0] == "time,actor,action,target,details,ip,user_agent"
    assert len(lines) == 2
    assert "'=cmd" in lines[1]  # a formula is defused


def test_it_pages_without_counting(client, owner, workspace, django_assert_max_num_queries):
    now = timezone.now()
    for n in range(120):
        _event(workspace, target=f"e{n:03}", created_at=now - timedelta(minutes=n))
    client.force_login(owner.user)
    client.get(URL)
    first = client.get(URL)
    rows = table_of(first)
    assert "e000" in rows and "e049" in rows and "e050" not in rows
    after = first.content.decode().split("after=")[1].split('"')[0].replace("&amp;", "&")
    from urllib.parse import unquote

    second = table_of(client.get(URL, {"after": unquote(after)}))
    assert "e050" in second and "e099" in second and "e049" not in second
    with django_assert_max_num_queries(6) as queries:
        client.get(URL)
    assert not any("COUNT(" in q["sql"] for q in queries.captured_queries)


def test_a_garbled_cursor_says_so_and_starts_from_the_newest(client, owner, workspace):
    _event(workspace, target="only")
    client.force_login(owner.user)
    response = client.get(URL, {"after": "garbage~x"})
    assert response.status_code == 400
    assert "The link to older entries in this address is not valid" in response.content.decode()
    assert "only" in table_of(response)


@pytest.mark.parametrize("rows", [3, 30])
def test_constant_queries(client, owner, workspace, django_assert_num_queries, rows):
    for n in range(rows):
        _event(workspace, target=f"e{n}")
    client.force_login(owner.user)
    client.get(URL)
    # session, user, membership, page, sidebar
    with django_assert_num_queries(5):
        client.get(URL)


def test_other_workspaces_events_stay_out(client, owner, other_workspace):
    _event(other_workspace, target="foreign")
    client.force_login(owner.user)
    assert "foreign" not in table_of(client.get(URL))
    assert b"foreign" not in b"".join(client.get(URL + "export.csv").streaming_content)


def test_csv_export_is_for_owners_and_admins(client, member, outsider):
    client.force_login(member.user)
    assert client.get(URL + "export.csv").status_code == 403
    client.force_login(outsider.user)
    assert client.get(URL + "export.csv").status_code == 404


def test_tokens_shown_once_are_never_audited(client, owner):
    make_token(owner)
    assert not AuditEvent.objects.filter(details__icontains=codec.PREFIX).exists()


def test_moments_in_details_read_as_the_page_shows_times(client, owner, workspace):
    _event(workspace, action="token.created", target="CI",
           details={"expires_at": "2026-12-29T22:26:25.555923+00:00", "last_characters": "WgiL",
                    "expires": {"before": "2027-01-01T00:00:00+01:00", "after": None}})
    client.force_login(owner.user)
    rows = table_of(client.get(URL))
    assert "expires at:</span> Dec 29, 2026 22:26 UTC" in rows
    assert "Dec 31, 2026 23:00 UTC → —" in rows
    assert "last characters:</span> WgiL" in rows


def _csv_rows(response) -> list[list[str]]:
    import csv
    import io

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_csv_details_are_json(client, owner, workspace):
    _event(workspace, action="token.revoked", target="CI",
           details={"reason": "leak report", "expires_at": None, "ok": True, "n": 2,
                    "name": "café “quoted”", "ranges": ["10.0.0.0/8"]})
    _event(workspace, target="nothing")
    client.force_login(owner.user)
    header, first, second = _csv_rows(client.get(URL + "export.csv"))
    details = header.index("details")
    assert first[details] == "{}"
    assert second[details] == ('{"expires_at": null, "n": 2, "name": "café “quoted”", '
                               '"ok": true, "ranges": ["10.0.0.0/8"], "reason": "leak report"}')


def test_an_export_longer_than_a_batch_has_every_event_in_the_pages_order(client, owner,
                                                                          workspace):
    """The export reads in keyset batches; events that share a time (a bulk revoke) fall across
    a batch's edge and are neither lost nor repeated."""
    from console.paging import EXPORT_BATCH

    now = timezone.now().replace(microsecond=0)
    AuditEvent.objects.bulk_create(
        AuditEvent(workspace=workspace, action="group.created", actor_email="alice@acme.test",
                   target=f"e{n}", created_at=now - timedelta(seconds=n // 7))
        for n in range(2 * EXPORT_BATCH + 11))
    client.force_login(owner.user)
    rows = _csv_rows(client.get(URL + "export.csv"))[1:]
    expected = list(AuditEvent.objects.filter(workspace=workspace)
                    .order_by("-created_at", "-pk").values_list("target", flat=True))
    assert [row[3] for row in rows] == expected
    assert len(expected) == 2 * EXPORT_BATCH + 11
