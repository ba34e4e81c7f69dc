"""Rotating an access token through its URLs: the replacement (same name, lifetime and allowed
ranges, shown once), the overlap during which the old token keeps working, the audit event, the
notes on the list and the token pages, and who may rotate what."""

import re
import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from tokens import codec
from tokens.models import AccessToken, Run
from workspaces.models import AuditEvent, CustomRole, Plan, Workspace

from .factories import make_token, row_of

LIST = "/w/acme/admin/access-tokens/"
WHOAMI = "/api/v1/whoami"
RUNS = "/api/v1/runs"
OVERLAPS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
ONE_SECOND = timedelta(seconds=1)


def rotate_url(token):
    return f"{LIST}{token.pk}/rotate/"


def detail_url(token):
    return f"{LIST}{token.pk}/"


def rotate(client, token, overlap="24h", request_key=None):
    return client.post(rotate_url(token), {"overlap": overlap,
                                           "request_key": request_key or uuid.uuid4().hex})


def whoami(plaintext, **extra):
    """A whoami call from a client with no browser session, as automation makes it."""
    return Client().get(WHOAMI, HTTP_AUTHORIZATION=f"Bearer {plaintext}", **extra)


def start_run(plaintext):
    return Client().post(RUNS, {"client": "github-actions"}, content_type="application/json",
                         HTTP_AUTHORIZATION=f"Bearer {plaintext}")


def error_code(response):
    return response.json()["error"]["code"]


def shown_tokens(response) -> list[str]:
    return codec.FIND_RE.findall(response.content.decode())


def replacement_of(token) -> AccessToken:
    return AccessToken.objects.get(replaces=token)


def lose_the_permission():
    CustomRole.objects.update(grants_access_tokens=False)


@pytest.fixture
def creator(member_with_token_permission):
    """A member who holds the access token permission through a custom role, signed in."""
    return member_with_token_permission


@pytest.fixture
def signed_in(client, creator):
    client.force_login(creator.user)
    return client


# The overlap --------------------------------------------------------------------------------


@pytest.mark.parametrize("overlap", ["1h", "24h", "7d"])
def test_the_old_token_works_until_the_overlap_ends_then_expires(signed_in, creator, overlap):
    old, old_plaintext = make_token(creator, name="release-ci")
    response = rotate(signed_in, old, overlap)
    assert response.status_code == 201
    new_plaintext = shown_tokens(response)[0]
    new = replacement_of(old)

    assert whoami(old_plaintext).status_code == 200
    assert whoami(new_plaintext).status_code == 200
    ends = timezone.now() + OVERLAPS[overlap]

    with time_machine.travel(ends - timedelta(minutes=1), tick=True):
        assert whoami(old_plaintext).status_code == 200

    with time_machine.travel(ends + timedelta(minutes=1), tick=True):
        refused = whoami(old_plaintext)
        assert refused.status_code == 401
        assert error_code(refused) == "token_expired"
        works = whoami(new_plaintext)
        assert works.status_code == 200
        assert works.json()["token"]["id"] == new.pk


def test_without_an_overlap_the_old_token_is_revoked_at_once(signed_in, creator):
    old, old_plaintext = make_token(creator, name="release-ci")
    response = rotate(signed_in, old, "0")
    assert response.status_code == 201
    new_plaintext = shown_tokens(response)[0]

    refused = whoami(old_plaintext)
    assert refused.status_code == 401
    assert error_code(refused) == "token_revoked"
    assert whoami(new_plaintext).status_code == 200
    old.refresh_from_db()
    assert old.revoked_by == creator.user
    assert "Revoked" in row_of(signed_in.get(LIST), old)


def test_an_overlap_never_lengthens_the_old_tokens_life(signed_in, creator):
    soon = timezone.now() + timedelta(minutes=30)
    old, _ = make_token(creator, expires_at=soon)
    assert rotate(signed_in, old, "24h").status_code == 201
    old.refresh_from_db()
    assert old.expires_at == soon


@pytest.mark.parametrize("overlap", ["2h", "", "never"])
def test_an_overlap_outside_the_four_choices_is_refused(signed_in, creator, overlap):
    old, old_plaintext = make_token(creator)
    expires_at = old.expires_at
    response = rotate(signed_in, old, overlap)
    assert response.status_code == 400
    assert "Choose how long the old token keeps working." in response.content.decode()
    assert not shown_tokens(response)
    assert AccessToken.objects.count() == 1
    assert not AuditEvent.objects.exists()
    old.refresh_from_db()
    assert (old.expires_at, old.revoked_at) == (expires_at, None)
    assert whoami(old_plaintext).status_code == 200


# What the replacement keeps -------------------------------------------------------------------


def test_the_replacement_keeps_the_lifetime_counted_from_now(client, creator):
    old, _ = make_token(creator, name="release-ci", expires_at=timezone.now() + timedelta(days=30))
    with time_machine.travel(timezone.now() + timedelta(days=10), tick=True):
        client.force_login(creator.user)
        response = rotate(client, old)
        rotated_at = timezone.now()
    assert response.status_code == 201
    new = replacement_of(old)
    assert new.name == "release-ci"
    assert new.created_by == creator.user
    assert abs(new.created_at - rotated_at) < ONE_SECOND
    assert abs(new.expires_at - (rotated_at + timedelta(days=30))) < ONE_SECOND


def test_a_token_without_expiration_is_replaced_by_one_without_expiration(signed_in, creator):
    old, _ = make_token(creator, expires_at=None)
    response = rotate(signed_in, old)
    assert response.status_code == 201
    assert replacement_of(old).expires_at is None
    assert "It has no expiration" in response.content.decode()


@pytest.mark.parametrize("lifetime", [timedelta(days=30), None], ids=["30 days", "no expiration"])
def test_the_workspace_limit_caps_the_replacements_lifetime(signed_in, creator, lifetime):
    old, _ = make_token(creator, expires_at=lifetime and timezone.now() + lifetime)
    workspace = creator.workspace
    workspace.max_token_lifetime_days = 7
    workspace.save()
    assert rotate(signed_in, old).status_code == 201
    last_day = timezone.now().astimezone(UTC).date() + timedelta(days=7)
    assert replacement_of(old).expires_at == datetime.combine(last_day, time.max, tzinfo=UTC)
    details = AuditEvent.objects.get(action="token.rotated").details
    assert details["shortened_to_the_workspace_limit"] is True


def test_a_lifetime_within_the_workspace_limit_is_kept(signed_in, creator):
    old, _ = make_token(creator, expires_at=timezone.now() + timedelta(days=3))
    workspace = creator.workspace
    workspace.max_token_lifetime_days = 7
    workspace.save()
    assert rotate(signed_in, old).status_code == 201
    expires_at = replacement_of(old).expires_at
    assert abs(expires_at - (timezone.now() + timedelta(days=3))) < ONE_SECOND
    assert "shortened_to_the_workspace_limit" not in AuditEvent.objects.get().details


def test_the_replacement_keeps_the_allowed_ip_ranges(signed_in, creator):
    old, _ = make_token(creator, allowed_ips="10.0.0.0/8\n2001:db8::/48")
    response = rotate(signed_in, old)
    new_plaintext = shown_tokens(response)[0]
    new = replacement_of(old)
    assert new.allowed_ips == "10.0.0.0/8\n2001:db8::/48"

    assert whoami(new_plaintext, REMOTE_ADDR="10.1.2.3").status_code == 200
    assert whoami(new_plaintext, REMOTE_ADDR="2001:db8::7").status_code == 200
    refused = whoami(new_plaintext, REMOTE_ADDR="192.0.2.1")
    assert refused.status_code == 403
    assert error_code(refused) == "ip_not_allowed"
    page = signed_in.get(detail_url(new)).content.decode()
    assert '<span class="chip mono">10.0.0.0/8</span>' in page
    assert '<span class="chip mono">2001:db8::/48</span>' in page


def test_a_token_usable_anywhere_is_replaced_by_one_usable_anywhere(signed_in, creator):
    old, _ = make_token(creator)
    new_plaintext = shown_tokens(rotate(signed_in, old))[0]
    assert replacement_of(old).allowed_ips == ""
    assert whoami(new_plaintext, REMOTE_ADDR="192.0.2.1").status_code == 200


# Shown once -----------------------------------------------------------------------------------


def test_the_replacement_is_shown_once_like_a_new_token(signed_in, creator):
    old, old_plaintext = make_token(creator, name="release-ci")
    response = rotate(signed_in, old)
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert '<label for="new-token">Access token</label>' in html
    shown = shown_tokens(response)
    assert len(shown) == 1
    plaintext = shown[0]
    assert re.search(rf'<input type="text" id="new-token"[^>]* value="{plaintext}"', html)
    assert codec.is_valid(plaintext)
    assert plaintext != old_plaintext
    new = replacement_of(old)
    assert new.digest == codec.digest(plaintext)
    assert new.last_characters == plaintext[-4:]
    assert "You cannot view it again after you close the modal" in html

    for path in [LIST, detail_url(new), detail_url(old), rotate_url(new)]:
        again = signed_in.get(path)
        assert again.status_code == 200, path
        assert plaintext not in again.content.decode(), path
    assert plaintext not in str(dict(signed_in.session))


def test_rotated_from_the_tokens_page_the_answer_is_the_new_tokens_page(signed_in, creator):
    old, _ = make_token(creator, name="release-ci")
    response = signed_in.post(rotate_url(old), {"overlap": "1h", "request_key": uuid.uuid4().hex,
                                                "next": "detail"})
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    new = replacement_of(old)
    html = response.content.decode()
    assert len(shown_tokens(response)) == 1
    assert f'data-replace-url="{detail_url(new)}"' in html
    assert f"release-ci <span class=\"mono faint token-tail\">…{new.last_characters}" in html
    assert f'<dt>Replaces</dt><dd><a href="{detail_url(old)}">' in html
    # Without JavaScript, the rotation page reached from the token's page says where it goes back.
    form = signed_in.get(rotate_url(new) + "?next=detail").content.decode()
    assert '<input type="hidden" name="next" value="detail">' in form


def test_a_replaced_token_still_working_shows_when_its_overlap_ends(signed_in, creator):
    old, _ = make_token(creator, name="release-ci")
    rotate(signed_in, old, overlap="1h")
    old.refresh_from_db()
    ends = old.expires_at.astimezone(UTC)
    row = row_of(signed_in.get(LIST), old)
    assert f"overlap ends <time datetime=\"{ends.isoformat()}\">{ends:%b} {ends.day}, {ends:%H:%M} UTC" in row
    assert "expires today" not in row and "expires in" not in row
    assert "the overlap after its rotation ends then" in signed_in.get(detail_url(old)).content.decode()


def test_the_replacements_plaintext_is_not_in_the_database(signed_in, creator):
    old, _ = make_token(creator, allowed_ips="10.0.0.0/8")
    plaintext = shown_tokens(rotate(signed_in, old))[0]
    for row in AccessToken.objects.values():
        assert plaintext not in str(row)
    for details in AuditEvent.objects.values_list("details", flat=True):
        assert plaintext not in str(details)
        assert codec.digest(plaintext) not in str(details)


# The audit event ------------------------------------------------------------------------------


def test_one_audit_event_names_both_tokens(signed_in, creator):
    old, _ = make_token(creator, name="release-ci")
    rotate(signed_in, old, "1h")
    new = replacement_of(old)
    event = AuditEvent.objects.get()
    assert event.action == "token.rotated"
    assert (event.actor, event.target) == (creator.user, "release-ci")
    assert event.details["token_id"] == old.pk
    assert event.details["replacement_id"] == new.pk
    assert event.details["overlap"] == "1h"
    assert event.details["last_characters"] == old.last_characters
    assert event.details["replacement_last_characters"] == new.last_characters

    for token in (old, new):
        page = signed_in.get(detail_url(token)).content.decode()
        events = page.split('id="events-heading"', 1)[1]
        assert "replacement last characters" in events and new.last_characters in events, token


# Posting twice --------------------------------------------------------------------------------


@pytest.mark.parametrize("overlap", ["0", "24h"])
def test_the_same_rotation_posted_twice_makes_one_replacement(signed_in, creator, overlap):
    old, _ = make_token(creator, name="release-ci")
    first = rotate(signed_in, old, overlap, request_key="the-same-form")
    again = rotate(signed_in, old, overlap, request_key="the-same-form")
    assert first.status_code == 201
    assert again.status_code == 409
    assert "already submitted" in again.content.decode()
    assert not shown_tokens(again)
    assert AccessToken.objects.filter(replaces=old).count() == 1
    assert AccessToken.objects.count() == 2
    assert AuditEvent.objects.filter(action="token.rotated").count() == 1


def test_a_rotated_token_cannot_be_rotated_again(signed_in, creator):
    old, _ = make_token(creator)
    assert rotate(signed_in, old).status_code == 201
    again = rotate(signed_in, old)
    assert again.status_code == 400
    assert "rotated already" in again.content.decode()
    assert not shown_tokens(again)
    assert AccessToken.objects.count() == 2
    assert AuditEvent.objects.count() == 1


# Tokens that cannot be rotated ----------------------------------------------------------------


@pytest.mark.parametrize("state", ["revoked", "expired"])
def test_a_token_that_no_longer_works_cannot_be_rotated(signed_in, creator, state):
    now = timezone.now()
    if state == "revoked":
        old, _ = make_token(creator, revoked_at=now, revoked_by=creator.user)
    else:
        old, _ = make_token(creator, expires_at=now - timedelta(days=1))
    response = rotate(signed_in, old)
    assert response.status_code == 400
    assert "Only an active token can be rotated." in response.content.decode()
    assert not shown_tokens(response)
    assert AccessToken.objects.count() == 1
    assert not AuditEvent.objects.exists()
    assert rotate_url(old) not in row_of(signed_in.get(LIST), old)


# The list and the token's page ----------------------------------------------------------------


@pytest.mark.parametrize("use", [whoami, start_run], ids=["whoami", "a run"])
def test_the_list_says_replaced_by_and_not_used_yet_until_the_replacement_is_used(
        signed_in, creator, use):
    old, _ = make_token(creator, name="release-ci")
    new_plaintext = shown_tokens(rotate(signed_in, old))[0]
    new = replacement_of(old)

    page = signed_in.get(LIST)
    old_row, new_row = row_of(page, old), row_of(page, new)
    assert "Replaced by" in old_row and f"…{new.last_characters}</a>" in old_row
    assert "not used yet" in old_row and "first used" not in old_row
    assert "Replaces" in new_row and f"…{old.last_characters}</a>" in new_row
    assert rotate_url(old) not in old_row  # rotated already
    assert rotate_url(new) in new_row

    assert use(new_plaintext).status_code in (200, 201)
    new.refresh_from_db()
    assert new.first_used_at is not None

    old_row = row_of(signed_in.get(LIST), old)
    assert "Replaced by" in old_row and "first used" in old_row
    assert "not used yet" not in old_row


def test_the_token_pages_say_replaced_by_and_replaces(signed_in, creator):
    old, _ = make_token(creator, name="release-ci")
    new_plaintext = shown_tokens(rotate(signed_in, old))[0]
    new = replacement_of(old)

    old_page = signed_in.get(detail_url(old)).content.decode()
    assert (f'<dt>Replaced by</dt><dd><a href="{detail_url(new)}">release-ci …{new.last_characters}</a>'
            in old_page)
    assert "not used yet" in old_page
    new_page = signed_in.get(detail_url(new)).content.decode()
    assert (f'<dt>Replaces</dt><dd><a href="{detail_url(old)}">release-ci …{old.last_characters}</a>'
            in new_page)
    assert "Replaced by" not in new_page

    assert whoami(new_plaintext).status_code == 200
    new.refresh_from_db()
    old_page = signed_in.get(detail_url(old)).content.decode()
    assert "not used yet" not in old_page
    assert f"first used <time datetime=\"{new.first_used_at:%Y-%m-%dT%H:%M:%S}" in old_page


def test_the_first_use_stays_the_first(signed_in, creator):
    old, _ = make_token(creator)
    new_plaintext = shown_tokens(rotate(signed_in, old))[0]
    new = replacement_of(old)
    assert whoami(new_plaintext).status_code == 200
    new.refresh_from_db()
    first = new.first_used_at
    with time_machine.travel(timezone.now() + timedelta(hours=2), tick=True):
        assert whoami(new_plaintext).status_code == 200
        assert start_run(new_plaintext).status_code == 201
    new.refresh_from_db()
    assert new.first_used_at == first
    assert new.last_used_at > first + timedelta(hours=1)
    assert Run.objects.filter(token=new).count() == 1


def test_owners_see_the_rotation_of_a_members_token(client, owner, creator):
    old, _ = make_token(creator, name="release-ci")
    client.force_login(creator.user)
    rotate(client, old)
    new = replacement_of(old)
    client.force_login(owner.user)
    page = client.get(LIST)
    assert "Replaced by" in row_of(page, old) and "not used yet" in row_of(page, old)
    assert "Replaces" in row_of(page, new)
    # Rotate is for the creator only: owners are not offered it.
    assert rotate_url(new) not in row_of(page, new)


# Who may rotate -------------------------------------------------------------------------------


def assert_nothing_changed(old):
    expires_at = old.expires_at
    old.refresh_from_db()
    assert (old.expires_at, old.revoked_at) == (expires_at, None)
    assert AccessToken.objects.count() == 1
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("person", ["owner", "admin"])
def test_owners_and_admins_cannot_rotate_a_members_token(request, client, creator, person):
    old, _ = make_token(creator)
    client.force_login(request.getfixturevalue(person).user)
    assert rotate(client, old).status_code == 404
    assert client.get(rotate_url(old)).status_code == 404
    assert_nothing_changed(old)


@pytest.mark.parametrize("person", ["owner", "admin"])
def test_owners_and_admins_rotate_their_own_tokens(request, client, person):
    membership = request.getfixturevalue(person)
    old, old_plaintext = make_token(membership, name="deploy")
    client.force_login(membership.user)
    response = rotate(client, old, "0")
    assert response.status_code == 201
    new = replacement_of(old)
    assert (new.name, new.created_by) == ("deploy", membership.user)
    assert whoami(shown_tokens(response)[0]).status_code == 200
    assert error_code(whoami(old_plaintext)) == "token_revoked"


def test_a_member_cannot_rotate_an_owners_token(signed_in, owner):
    old, _ = make_token(owner)
    assert rotate(signed_in, old).status_code == 404
    assert signed_in.get(rotate_url(old)).status_code == 404
    assert_nothing_changed(old)


def test_a_member_without_the_permission_gets_403(client, owner, member):
    old, _ = make_token(owner)
    client.force_login(member.user)
    response = rotate(client, old)
    assert response.status_code == 403
    assert b"Ask a workspace owner or admin" in response.content
    assert_nothing_changed(old)


def test_outsiders_get_a_404(client, creator, outsider):
    old, _ = make_token(creator)
    client.force_login(outsider.user)
    assert rotate(client, old).status_code == 404
    assert client.get(rotate_url(old)).status_code == 404
    assert_nothing_changed(old)


def test_another_workspaces_token_is_a_404(client, owner, outsider):
    theirs, _ = make_token(outsider)
    client.force_login(owner.user)
    assert rotate(client, theirs).status_code == 404  # under /w/acme/
    assert client.post(f"/w/globex/admin/access-tokens/{theirs.pk}/rotate/",
                       {"overlap": "24h"}).status_code == 404
    assert_nothing_changed(theirs)


def test_an_unknown_token_is_a_404(signed_in):
    assert signed_in.post(f"{LIST}999999/rotate/", {"overlap": "24h"}).status_code == 404
    assert not AuditEvent.objects.exists()


def leave_the_group(membership):
    membership.groups.clear()


def downgrade_the_plan(membership):
    Workspace.objects.filter(pk=membership.workspace_id).update(plan=Plan.EDU)


@pytest.mark.parametrize("lose", [lambda m: lose_the_permission(), leave_the_group, downgrade_the_plan],
                         ids=["the custom role lost it", "left the group", "the plan has no tokens"])
def test_a_creator_who_lost_the_permission_cannot_rotate(signed_in, creator, lose):
    old, old_plaintext = make_token(creator, name="release-ci")
    lose(creator)
    assert rotate_url(old) not in row_of(signed_in.get(LIST), old)
    response = rotate(signed_in, old)
    # The contract: a member without the permission a page needs gets 403 (as the create form
    # answers the same creator), not the form again as if a second try could work.
    assert response.status_code in (403, 404)
    assert not shown_tokens(response)
    assert_nothing_changed(old)


def test_signed_out_visitors_are_sent_to_sign_in(client, creator):
    old, _ = make_token(creator)
    response = rotate(client, old)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert_nothing_changed(old)


def test_rotating_needs_csrf(creator):
    old, _ = make_token(creator)
    client = Client(enforce_csrf_checks=True)
    client.force_login(creator.user)
    assert rotate(client, old).status_code == 403
    assert_nothing_changed(old)


def test_a_replacement_can_be_rotated_in_turn(signed_in, creator):
    first, _ = make_token(creator, name="release-ci")
    second_plaintext = shown_tokens(rotate(signed_in, first, "0"))[0]
    second = replacement_of(first)
    response = rotate(signed_in, second, "0")
    assert response.status_code == 201
    third = replacement_of(second)
    assert error_code(whoami(second_plaintext)) == "token_revoked"
    assert whoami(shown_tokens(response)[0]).json()["token"]["id"] == third.pk
    page = signed_in.get(detail_url(second)).content.decode()
    assert f"release-ci …{first.last_characters}</a>" in page.split("<dt>Replaces</dt>", 1)[1]
    assert f"release-ci …{third.last_characters}</a>" in page.split("<dt>Replaced by</dt>", 1)[1]


def test_the_old_token_in_its_overlap_is_not_announced_as_expiring(signed_in, creator):
    old, _ = make_token(creator, name="release-ci")
    rotate(signed_in, old, "24h")
    assert "Your tokens that expire within 7 days" not in signed_in.get(LIST).content.decode()


AUDIT_LOG = "/w/acme/admin/audit-log/"


def test_the_audit_log_names_the_rotation_in_words(client, owner):
    old, _ = make_token(owner, name="release-ci")
    client.force_login(owner.user)
    rotate(client, old, "1h")
    new = replacement_of(old)
    page = client.get(AUDIT_LOG).content.decode()
    assert "<td>release-ci</td>" in page and new.last_characters in page
    # Every other token event has a label in words ("Access token revoked"), not its code.
    assert '<span class="badge">token.rotated</span>' not in page


def test_the_audit_log_filters_by_rotation(client, owner):
    old, _ = make_token(owner, name="release-ci")
    client.force_login(owner.user)
    rotate(client, old, "1h")
    new = replacement_of(old)
    filtered = client.get(AUDIT_LOG, {"action": "token.rotated"}).content.decode()
    assert '<option value="token.rotated" selected>' in filtered
    assert new.last_characters in filtered


# The page without JavaScript ------------------------------------------------------------------


def test_the_rotation_form_works_as_a_page(signed_in, creator):
    old, _ = make_token(creator, name="release-ci")
    page = signed_in.get(rotate_url(old))
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    html = page.content.decode()
    assert "<h1 class=\"card-title\">Rotate “release-ci”</h1>" in html
    radios = re.findall(r'<input type="radio" name="overlap" value="([^"]+)" id="overlap-\1"( checked)?>'
                        r' <label for="overlap-\1">([^<]+)</label>', html)
    assert radios == [
        ("0", "", "Stop the old token right away"),
        ("1h", "", "Keep the old token working for 1 hour"),
        ("24h", " checked", "Keep the old token working for 24 hours"),
        ("7d", "", "Keep the old token working for 7 days"),
    ]
    form = re.search(r"<form ([^>]*)>", html.split('class="breadcrumb"', 1)[1]).group(1)
    assert 'method="post"' in form and "action=" not in form  # posts to its own address
    key = re.search(r'name="request_key" value="([^"]+)"', html).group(1)
    assert AccessToken.objects.count() == 1 and not AuditEvent.objects.exists()

    response = signed_in.post(rotate_url(old), {"overlap": "1h", "request_key": key})
    assert response.status_code == 201
    assert len(shown_tokens(response)) == 1
    assert AccessToken.objects.filter(replaces=old, request_key=key).exists()


def test_every_rotation_form_gets_a_fresh_key(signed_in, creator):
    old, _ = make_token(creator)
    keys = {re.search(r'name="request_key" value="([^"]+)"', signed_in.get(rotate_url(old))
                      .content.decode()).group(1) for _ in range(3)}
    assert len(keys) == 3


def test_the_list_offers_rotate_only_on_your_own_active_tokens(signed_in, creator, owner):
    now = timezone.now()
    live, _ = make_token(creator, name="live")
    gone, _ = make_token(creator, name="gone", revoked_at=now)
    old, _ = make_token(creator, name="old", expires_at=now - timedelta(days=1))
    page = signed_in.get(LIST)
    assert rotate_url(live) in row_of(page, live)
    assert 'data-rotate="live"' in row_of(page, live)
    assert rotate_url(gone) not in row_of(page, gone)
    assert rotate_url(old) not in row_of(page, old)
    assert '<dialog id="rotate-dialog"' in page.content.decode()
