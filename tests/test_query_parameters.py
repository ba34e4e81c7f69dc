"""Query parameters a page cannot read: a date past what a day range can end on, a NUL
character, an over-long value, a page or cursor that is not one. Every page that reads its
query string answers them with the field's error and 400 (its CSV export too), never a 500, and
never hands such a value to the database. A readable value of the same kind still answers 200."""

import re
from pathlib import Path

import pytest
from django.utils import timezone

from workspaces.models import AuditEvent

from .factories import GroupFactory, make_run, make_token

ROOT = Path(__file__).resolve().parent.parent
LONG = "x" * 5000

# Fuzz-like values, and which kinds of parameter can read them.
NUL, FAR_DAY, NO_DAY = "\x00", "9999-12-31", "10000-01-01"
TEXT = {NUL: 400, LONG: 400, FAR_DAY: 200, NO_DAY: 200, "a%_\\'\"": 200}
DATE = {NUL: 400, LONG: 400, FAR_DAY: 400, NO_DAY: 400, "2026-13-01": 400, "0001-01-01": 400,
        "9999-12-30": 200, "1970-01-01": 200}
CHOICE = {NUL: 400, LONG: 400, FAR_DAY: 400, "token.revoked": 200}
LENIENT = {NUL: 400, LONG: 400, FAR_DAY: 200}  # an unknown status or sort reads as none
PAGE = {NUL: 400, LONG: 400, FAR_DAY: 400, "abc": 400, "1.5": 400, "0": 400, "-3": 400,
        "9" * 30: 400, "2": 200, "999999": 200}
CURSOR = {NUL: 400, LONG: 400, "garbage": 400, "garbage~x": 400, "2026-01-01T00:00:00~5": 400,
          "0001-01-01T00:00:00+01:00~5": 400, "9999-12-31T23:59:59-01:00~5": 400,
          "2026-01-01T00:00:00+00:00~" + "9" * 30: 400, "2026-01-01T00:00:00+00:00~0": 400,
          "9999-12-31T23:59:59+00:00~5": 200, "2026-01-01T00:00:00+00:00~5": 200}

AUDIT = "/w/acme/admin/audit-log/"
GOVERNANCE = "/w/acme/admin/governance/"
PAGES = {
    AUDIT: {"action": CHOICE, "actor": TEXT, "start": DATE, "end": DATE, "after": CURSOR},
    AUDIT + "export.csv": {"action": CHOICE, "actor": TEXT, "start": DATE, "end": DATE,
                           "after": CURSOR},
    GOVERNANCE: {"member": TEXT, "token": TEXT, "start": DATE, "end": DATE, "after": CURSOR},
    GOVERNANCE + "export.csv": {"member": TEXT, "token": TEXT, "start": DATE, "end": DATE,
                                "after": CURSOR},
    "/w/acme/admin/access-tokens/": {"status": LENIENT, "creator": TEXT, "q": TEXT,
                                     "sort": LENIENT, "page": PAGE},
    "/w/acme/admin/members/": {"q": TEXT, "page": PAGE},
    "/w/acme/admin/groups/": {"page": PAGE},
    "/w/acme/admin/roles/": {"page": PAGE},
}
CASES = [(url, name, value, status) for url, parameters in PAGES.items()
         for name, values in parameters.items() for value, status in values.items()]


@pytest.fixture
def listed(owner, member_with_token_permission):
    """A row on every list, so that a page in error is seen to show none of its filtered rows."""
    token, _ = make_token(member_with_token_permission, name="nightly")
    make_run(token, started_at=timezone.now())
    AuditEvent.objects.create(workspace=owner.workspace, actor_email="alice@acme.test",
                              action="group.created", target="listed", details={})
    GroupFactory(workspace=owner.workspace, name="Release")
    return owner


@pytest.mark.parametrize("url, name, value, status", CASES,
                         ids=[f"{u}?{n}={v[:12]!r}" for u, n, v, _ in CASES])
def test_a_value_that_cannot_be_read_is_the_fields_error_and_400(client, listed, url, name,
                                                                  value, status):
    client.force_login(listed.user)
    response = client.get(url, {name: value})
    assert response.status_code == status
    if status == 400:
        body = response.content.decode()
        assert response["Content-Type"].startswith("text/html")
        assert re.search(r'<ul class="errorlist[^"]*"[^>]*>\s*<li>[^<]+</li>', body), body
        assert "Content-Security-Policy" in response
    elif url.endswith(".csv"):
        assert response["Content-Type"].startswith("text/csv")
        b"".join(response.streaming_content)


@pytest.mark.parametrize("url", [AUDIT, AUDIT + "export.csv", GOVERNANCE,
                                 GOVERNANCE + "export.csv"])
def test_the_last_day_a_range_can_end_on_is_read(client, listed, url):
    client.force_login(listed.user)
    response = client.get(url, {"start": "2000-01-01", "end": "9999-12-30"})
    assert response.status_code == 200


def test_every_read_of_a_query_string_goes_through_a_form():
    """Each view reads `request.GET` only by binding a query form to it (or copying it to
    build its links), so no parameter reaches a query unread."""
    reads = []
    for package in ("console", "workspaces", "tokens", "config"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for line in path.read_text().splitlines():
                for found in re.finditer(r"(\w+\()?request\.GET(\.\w+)?", line):
                    reads.append((path.name, found.group(0)))
    unread = [(name, text) for name, text in reads
              if not (text.endswith("request.GET.copy") or re.match(r"\w+Form\(", text))]
    assert reads and not unread


@pytest.mark.parametrize("url", [
    "/django-admin/tokens/accesstoken/?q=%00", "/django-admin/workspaces/auditevent/?q=%00",
    "/django-admin/workspaces/user/?q=" + LONG, "/django-admin/tokens/run/?p=abc",
    "/django-admin/workspaces/auditevent/?created_at__year=10000",
    "/django-admin/workspaces/auditevent/?created_at__gte=9999-12-31",
    "/django-admin/tokens/accesstoken/?workspace__id__exact=%00",
    "/django-admin/tokens/accesstoken/?workspace__id__exact=" + "9" * 30,
    "/accounts/login/?next=%00", "/accounts/login/?next=" + LONG,
])
def test_djangos_own_pages_read_the_same_values_without_failing(client, db, url):
    """Django's admin and sign-in read their own query strings: they refuse or ignore such
    values (a search, a page, a lookup) without a server error."""
    from .factories import UserFactory

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    client.raise_request_exception = False
    assert client.get(url).status_code < 500
