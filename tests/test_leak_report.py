"""The leak report: anyone may report leaked tokens, without a credential; every active token
among them is revoked at once, audited in its workspace, its creator mailed; the answer is the
same whatever was sent, so it tells nobody anything."""

import logging
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from console.models import OutboundMail
from tokens import codec
from tokens.models import AccessToken
from workspaces.models import AuditEvent

from .factories import MembershipFactory, WorkspaceFactory, make_token
from .mailbox import delivered

URL = "/api/v1/tokens/revoke"


def report(client, tokens, **extra):
    return client.post(URL, {"tokens": tokens}, content_type="application/json", **extra)


@pytest.fixture
def mixed(owner, member_with_token_permission, outsider):
    """Active tokens in two workspaces, a revoked one, an expired one."""
    active, active_plain = make_token(member_with_token_permission, name="leaked-ci")
    elsewhere, elsewhere_plain = make_token(outsider, name="leaked-elsewhere")
    revoked, revoked_plain = make_token(owner, name="old", revoked_at=timezone.now())
    expired, expired_plain = make_token(owner, name="gone",
                                        expires_at=timezone.now() - timezone.timedelta(days=1))
    kept, _ = make_token(owner, name="not reported")
    return {"active": [active, elsewhere], "plain": [active_plain, elsewhere_plain],
            "revoked": revoked_plain, "expired": expired_plain, "kept": kept,
            "revoked_token": revoked, "expired_token": expired}


def test_a_report_revokes_exactly_the_active_tokens_and_mails_each_creator(
        client, mixed):
    strings = [*mixed["plain"], mixed["revoked"], mixed["expired"], codec.generate(), "at-nope",
               "cxat_" + "A" * 36, "hello", mixed["plain"][0]]  # unknown, malformed, duplicate
    response = report(client, strings)
    assert response.status_code == 202
    assert response.json() == {"received": len(strings)}
    for token in mixed["active"]:
        token.refresh_from_db()
        assert token.revoked_at is not None and token.revoked_by is None
    mixed["kept"].refresh_from_db()
    assert mixed["kept"].revoked_at is None
    assert AccessToken.objects.filter(revoked_at__isnull=False).count() == 3  # the 2 + "old"
    events = AuditEvent.objects.filter(action="token.revoked").order_by("id")
    assert sorted((e.workspace.slug, e.actor_email, e.details["reason"]) for e in events) == [
        ("acme", "leak report", "leak report"), ("globex", "leak report", "leak report")]
    sent = delivered()
    assert sorted(m.to[0] for m in sent) == ["charlie@globex.test", "dora@acme.test"]
    for message in sent:
        assert "leak report" in message.body and "was revoked" in message.subject
        for plaintext in mixed["plain"]:
            assert plaintext not in message.body
        for token in mixed["active"]:
            assert token.digest not in message.body


@pytest.mark.parametrize("strings", [
    "active", "unknown", "revoked", "malformed",
])
def test_the_answer_is_the_same_whatever_was_sent(client, mixed, strings):
    sent = {"active": mixed["plain"][0], "unknown": codec.generate(), "revoked": mixed["revoked"],
            "malformed": "at-short"}[strings]
    response = report(client, [sent, "x"])
    assert (response.status_code, response.json()) == (202, {"received": 2})
    assert set(response.headers) - {"Content-Length"} == set(
        report(client, ["y", "z"]).headers) - {"Content-Length"}


@pytest.mark.parametrize("body", [
    {"tokens": []}, {"tokens": ["x"] * 101}, {"tokens": "at-abc"}, {"tokens": [1]},
    {"tokens": [None]}, {"token": ["x"]}, {"tokens": ["x"], "also": 1}, "at-abc", 1, None,
    {"tokens": ["x" * 1001]},
])
def test_another_shape_is_400_and_revokes_nothing(client, mixed, body):
    response = client.post(URL, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert AccessToken.objects.filter(revoked_at__isnull=False).count() == 1


def test_the_challenge_quotes_the_expected_body_as_json(client, db):
    """The WWW-Authenticate challenge of a refused report: ASCII, a valid quoted-string, and
    once unquoted it shows the body to send as JSON (not Python's quotes)."""
    response = client.post(URL, {"tokens": "x"}, content_type="application/json")
    header = response["WWW-Authenticate"]
    assert header.isascii()
    quoted = re.fullmatch(r'Bearer realm="codex", error="invalid_request", '
                          r'error_description="((?:[^"\\]|\\.)*)"', header)
    assert quoted, header
    description = re.sub(r"\\(.)", r"\1", quoted.group(1))
    assert description == response.json()["error"]["message"]
    assert '{"tokens": ["at-...", ...]}' in description


def test_not_json_is_400(client, db):
    response = client.post(URL, "tokens=at-abc", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400


def test_no_credential_is_needed_and_get_is_405(client, mixed):
    assert report(client, [mixed["plain"][0]]).status_code == 202
    response = client.get(URL)
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_sixty_calls_an_hour_per_address_then_429(client, db, settings):
    for _ in range(60):
        assert report(client, ["x"]).status_code == 202
    response = report(client, ["x"])
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert 3500 < int(response["Retry-After"]) <= 3601
    assert report(client, ["x"], REMOTE_ADDR="10.9.8.7").status_code == 202


def test_the_reported_strings_reach_no_log_line(client, mixed, caplog):
    caplog.set_level(logging.DEBUG)
    strings = [*mixed["plain"], mixed["revoked"], codec.generate()]
    report(client, strings)
    report(client, {"bad": strings})  # a bad shape logs a warning line
    client.post(URL, "{" + strings[0], content_type="application/json")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged  # something was logged (the 400s)
    for plaintext in strings:
        assert plaintext not in logged


def test_an_owner_revoking_someone_elses_token_mails_the_creator(
        client, owner, member_with_token_permission):
    token, plaintext = make_token(member_with_token_permission, name="nightly")
    mine, _ = make_token(owner, name="mine")
    client.force_login(owner.user)
    client.post(f"/w/acme/admin/access-tokens/{token.pk}/revoke/")
    client.post(f"/w/acme/admin/access-tokens/{mine.pk}/revoke/")
    (message,) = delivered()
    assert message.to == ["dora@acme.test"]
    assert "“nightly”" in message.subject
    assert "alice@acme.test" in message.body and "nightly" in message.body
    assert f"/w/acme/admin/access-tokens/{token.pk}/" in message.body
    assert plaintext not in message.body and token.digest not in message.body


def test_workspaces_are_kept_apart(client, db):
    first = MembershipFactory(workspace=WorkspaceFactory(slug="one", allow_access_tokens=True),
                              role="owner")
    _, plaintext = make_token(first)
    report(client, [plaintext])
    assert AuditEvent.objects.get(action="token.revoked").workspace.slug == "one"


def test_a_report_writes_and_commits_the_same_whatever_it_held(client, mixed):
    """One mail job per report, live tokens or not: both answers wait for a commit of a write,
    so their time does not tell which was which (the contract: medians within 5 ms)."""
    written = {}
    for what, strings in (("live", mixed["plain"][:1]), ("unknown", [codec.generate()])):
        with CaptureQueriesContext(connection) as captured:
            assert report(client, strings).status_code == 202
        written[what] = [q["sql"].split()[2] for q in captured.captured_queries
                         if q["sql"].startswith("INSERT")]
    assert written == {"live": ['"workspaces_auditevent"', '"console_outboundmail"'],
                       "unknown": ['"console_outboundmail"']}
    assert list(OutboundMail.objects.order_by("id").values_list("kind", "params")) == [
        ("leak_report", {"tokens": [mixed["active"][0].pk]}), ("leak_report", {"tokens": []})]
    (notice,) = delivered()
    assert notice.to == ["dora@acme.test"] and "leak report" in notice.body
