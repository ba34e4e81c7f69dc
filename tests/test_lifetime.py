"""The workspace's maximum token lifetime: set on Settings and Permissions, reflected in the
create form (modal and plain page), enforced by the server however the form is bypassed, with
the count of tokens that outlive it and a Shorten them action (audited per token)."""

import re
from datetime import UTC, datetime, time, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tokens.models import AccessToken
from workspaces.models import AuditEvent, Workspace

from .factories import make_token

LIST = "/w/acme/admin/access-tokens/"
SETTINGS = "/w/acme/admin/settings/"


@pytest.fixture
def limited(workspace):
    workspace.max_token_lifetime_days = 30
    workspace.save()
    return workspace


def options(html):
    select = re.search(r'<select name="expiration".*?</select>', html, re.S).group(0)
    return re.findall(r'<option value="([^"]+)"', select)


def end_of_day_in(days):
    day = timezone.now().astimezone(UTC).date() + timedelta(days=days)
    return datetime.combine(day, time.max, tzinfo=UTC)


def test_setting_the_limit_is_audited(client, owner, workspace):
    client.force_login(owner.user)
    page = client.get(SETTINGS).content.decode()
    assert "Maximum token lifetime" in page and "No limit" in page
    client.post(SETTINGS, {"allow_codex_local": "on", "max_token_lifetime_days": "60",
                           "shown_allow_codex_local": "True", "shown_allow_access_tokens": "False",
                           "shown_max_token_lifetime_days": ""})
    assert Workspace.objects.get(pk=workspace.pk).max_token_lifetime_days == 60
    assert AuditEvent.objects.get().details == {
        "max_token_lifetime_days": {"before": None, "after": 60}}


def test_an_odd_limit_is_refused(client, owner, workspace):
    client.force_login(owner.user)
    response = client.post(SETTINGS, {"max_token_lifetime_days": "45"})
    assert response.status_code == 400
    assert "Choose no limit, or 7, 30, 60, 90 or 365 days." in response.content.decode()
    assert Workspace.objects.get(pk=workspace.pk).max_token_lifetime_days is None


def test_the_create_form_offers_only_what_fits(client, owner, limited):
    client.force_login(owner.user)
    for url in (LIST, LIST + "new/"):
        html = client.get(url).content.decode()
        assert options(html) == ["7", "30", "custom"]
        latest = (timezone.now().astimezone(UTC).date() + timedelta(days=30)).isoformat()
        assert f'max="{latest}"' in html
        assert "expire within 30 days" in html


def test_without_a_limit_every_option_is_there(client, owner):
    client.force_login(owner.user)
    assert options(client.get(LIST).content.decode()) == ["7", "30", "60", "90", "custom", "never"]


@pytest.mark.parametrize("data", [
    {"expiration": "90"},
    {"expiration": "never"},
    {"expiration": "custom", "custom_date": (timezone.now().date() + timedelta(days=45)).isoformat()},
])
def test_the_server_refuses_a_longer_lifetime_however_it_is_asked(client, owner, limited, data):
    client.force_login(owner.user)
    response = client.post(LIST + "new/", {"name": "too long", "request_key": "k", **data})
    assert response.status_code == 400
    assert not AccessToken.objects.exists()


def test_the_last_allowed_day_is_accepted(client, owner, limited):
    client.force_login(owner.user)
    last = (timezone.now().astimezone(UTC).date() + timedelta(days=30)).isoformat()
    response = client.post(LIST + "new/", {"name": "edge", "expiration": "custom",
                                           "custom_date": last, "request_key": "k"})
    assert response.status_code == 201
    assert AccessToken.objects.get().expires_at == end_of_day_in(30)


def test_the_command_line_is_held_to_the_limit_too(owner, limited):
    with pytest.raises(CommandError, match="at most 30 days"):
        call_command("create_access_token", "alice@acme.test", "acme", "--name", "cli",
                     "--days", "90")
    with pytest.raises(CommandError, match="must expire within 30 days"):
        call_command("create_access_token", "alice@acme.test", "acme", "--name", "cli",
                     "--days", "0")
    assert not AccessToken.objects.exists()


def test_tokens_that_outlive_the_limit_are_counted_and_shortened(client, owner, admin, limited,
                                                                 member_with_token_permission):
    now = timezone.now()
    forever, _ = make_token(owner, name="forever", expires_at=None)
    long_one, _ = make_token(member_with_token_permission, name="long", expires_at=now + timedelta(days=200))
    short, _ = make_token(admin, name="short", expires_at=now + timedelta(days=3))
    make_token(admin, name="revoked", expires_at=None, revoked_at=now)
    client.force_login(owner.user)
    page = client.get(SETTINGS).content.decode()
    assert "2 active tokens expire later than 30 days from today, 1 of them never" in page
    response = client.post("/w/acme/admin/settings/shorten-tokens/", follow=True)
    assert b"2 access tokens shortened to the maximum lifetime." in response.content
    for token in (forever, long_one):
        token.refresh_from_db()
        assert token.expires_at == end_of_day_in(30)
    short.refresh_from_db()
    assert short.expires_at < now + timedelta(days=4)
    events = AuditEvent.objects.filter(action="token.shortened").order_by("target")
    assert [(e.target, e.details["expires_at"]["before"] is None) for e in events] == [
        ("forever", True), ("long", False)]
    assert "Tokens that outlive the limit" not in client.get(SETTINGS).content.decode()


def test_shortening_is_post_and_for_owners_and_admins(client, member, limited):
    client.force_login(member.user)
    assert client.post("/w/acme/admin/settings/shorten-tokens/").status_code == 403
    assert client.get("/w/acme/admin/settings/shorten-tokens/").status_code == 405
