"""The Access tokens page: create (show once), list, filter, revoke, as each person."""

import re
from datetime import UTC, datetime, time, timedelta
from io import StringIO

import pytest
from django.utils import timezone

from tokens import codec
from tokens.models import AccessToken
from workspaces.models import AuditEvent

from .factories import MembershipFactory, UserFactory, make_token, table_of

LIST = "/w/acme/admin/access-tokens/"
NEW = LIST + "new/"
TOKEN_RE = codec.FIND_RE


def create(client, **data):
    form = {"name": "CI runner", "expiration": "30", "request_key": f"k{datetime.now().timestamp()}"}
    form.update(data)
    return client.post(NEW, form)


# Create ----------------------------------------------------------------------------------


@pytest.mark.parametrize("person", ["owner", "admin", "member_with_token_permission"])
def test_it_creates_a_token_for_your_own_identity_and_shows_it_once(request, client, person):
    membership = request.getfixturevalue(person)
    client.force_login(membership.user)
    response = create(client)
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    plaintext = TOKEN_RE.search(html).group(0)
    assert codec.is_valid(plaintext)
    assert '<label for="new-token">Access token</label>' in html
    assert "You cannot view it again after you close the modal" in html
    token = AccessToken.objects.get()
    assert token.created_by == membership.user
    assert token.digest == codec.digest(plaintext)
    assert token.last_characters == plaintext[-4:]
    # Never again: not in the list, not in the session.
    later = client.get(LIST)
    assert plaintext not in later.content.decode()
    assert "no-store" in later["Cache-Control"]
    assert plaintext not in str(dict(client.session))


def test_the_member_without_permission_cannot_create(client, member):
    client.force_login(member.user)
    assert create(client).status_code == 403
    assert not AccessToken.objects.exists()


def test_outsiders_cannot_create(client, outsider):
    client.force_login(outsider.user)
    assert create(client).status_code == 404
    assert not AccessToken.objects.exists()


def test_creation_is_audited_by_name_never_by_secret(client, owner):
    client.force_login(owner.user)
    plaintext = TOKEN_RE.search(create(client, name="Nightly").content.decode()).group(0)
    event = AuditEvent.objects.get(action="token.created")
    assert event.target == "Nightly"
    assert plaintext not in str(event.details)
    assert AccessToken.objects.get().digest not in str(event.details)


@pytest.mark.parametrize("choice,days", [("7", 7), ("30", 30), ("60", 60), ("90", 90)])
def test_preset_expirations(client, owner, choice, days):
    client.force_login(owner.user)
    create(client, expiration=choice)
    expires = AccessToken.objects.get().expires_at
    assert abs(expires - (timezone.now() + timedelta(days=days))) < timedelta(minutes=1)


def test_custom_expiration_ends_that_day_utc(client, owner):
    day = timezone.now().astimezone(UTC).date() + timedelta(days=3)
    client.force_login(owner.user)
    create(client, expiration="custom", custom_date=day.isoformat())
    assert AccessToken.objects.get().expires_at == datetime.combine(day, time.max, tzinfo=UTC)


def test_no_expiration(client, owner):
    client.force_login(owner.user)
    create(client, expiration="never")
    assert AccessToken.objects.get().expires_at is None


def test_the_form_offers_the_contracts_expirations(client, owner):
    client.force_login(owner.user)
    html = client.get(NEW).content.decode()
    labels = re.findall(r'<option value="(?:7|30|60|90|custom|never)"[^>]*>([^<]+)<', html)
    for start, label in zip(["7 days", "30 days", "60 days", "90 days", "Custom", "No expiration"],
                            labels, strict=True):
        assert label.startswith(start)
    assert '<option value="30" selected>' in html
    tomorrow = (timezone.now().astimezone(UTC).date() + timedelta(days=1)).isoformat()
    assert 'type="date" name="custom_date"' in html and f'min="{tomorrow}"' in html
    assert "Rotate it on a schedule" in html


def _today():
    return timezone.now().astimezone(UTC).date()


@pytest.mark.parametrize("data,error", [
    ({"name": ""}, "Enter a name for the token."),
    ({"name": "   "}, "Enter a name for the token."),
    ({"name": "x" * 101}, "at most 100 characters"),
    ({"expiration": "45"}, "Choose one of the expiration options."),
    ({"expiration": "custom", "custom_date": ""}, "Choose the day the token expires."),
    ({"expiration": "custom", "custom_date": "today"}, "Choose a day from tomorrow on."),
    ({"expiration": "custom", "custom_date": "yesterday"}, "Choose a day from tomorrow on."),
    ({"expiration": "custom", "custom_date": "31/12/2030"}, "Enter a date as YYYY-MM-DD."),
])
def test_bad_input_creates_nothing(client, owner, data, error):
    if data.get("custom_date") == "today":
        data["custom_date"] = _today().isoformat()
    if data.get("custom_date") == "yesterday":
        data["custom_date"] = (_today() - timedelta(days=1)).isoformat()
    client.force_login(owner.user)
    response = create(client, **data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not AccessToken.objects.exists()
    assert not AuditEvent.objects.exists()
    assert not TOKEN_RE.search(response.content.decode())


def test_a_duplicate_active_name_is_refused(client, member_with_token_permission):
    make_token(member_with_token_permission, name="CI runner")
    client.force_login(member_with_token_permission.user)
    response = create(client, name="CI runner")
    assert response.status_code == 400
    assert "already have an active token called" in response.content.decode()
    assert AccessToken.objects.count() == 1


def test_a_revoked_or_expired_tokens_name_can_be_reused(client, owner):
    make_token(owner, name="A", revoked_at=timezone.now())
    make_token(owner, name="B", expires_at=timezone.now() - timedelta(days=1))
    client.force_login(owner.user)
    assert create(client, name="A").status_code == 201
    assert create(client, name="B").status_code == 201


def test_another_members_name_is_no_clash(client, owner, admin):
    make_token(admin, name="CI runner")
    client.force_login(owner.user)
    assert create(client, name="CI runner").status_code == 201


def test_the_same_form_posted_twice_creates_one_token(client, owner):
    client.force_login(owner.user)
    first = create(client, request_key="same-form")
    again = create(client, request_key="same-form")
    assert first.status_code == 201
    assert again.status_code == 409
    assert "already submitted" in again.content.decode()
    assert not TOKEN_RE.search(again.content.decode())
    assert AccessToken.objects.count() == 1
    assert AuditEvent.objects.filter(action="token.created").count() == 1


def test_every_form_render_gets_a_fresh_key(client, owner):
    client.force_login(owner.user)
    keys = {re.search(r'name="request_key" value="([^"]+)"', client.get(NEW).content.decode())
            .group(1) for _ in range(3)}
    assert len(keys) == 3


def test_no_one_creates_on_plans_without_tokens(client, db):
    from .factories import WorkspaceFactory

    edu = WorkspaceFactory(slug="school", plan="edu", allow_access_tokens=True)
    owner = MembershipFactory(workspace=edu, role="owner")
    client.force_login(owner.user)
    page = client.get("/w/school/admin/access-tokens/")
    assert page.status_code == 200
    assert b"need a Business or Enterprise plan" in page.content
    assert b'data-dialog-open="create-token-dialog"' not in page.content
    refused = client.post("/w/school/admin/access-tokens/new/", {"name": "x", "expiration": "30"})
    assert refused.status_code == 403
    assert b"Ask a workspace owner or admin" in refused.content
    assert not AccessToken.objects.exists()


def test_creating_is_post_with_csrf(owner):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner.user)
    assert client.post(NEW, {"name": "x", "expiration": "30"}).status_code == 403
    assert not AccessToken.objects.exists()


def test_the_new_page_works_without_javascript(client, owner):
    client.force_login(owner.user)
    html = client.get(NEW).content.decode()
    assert '<dialog id="create-token-dialog"' in html and " open data-autoshow" in html
    assert f'action="{NEW}"' in html


# List ------------------------------------------------------------------------------------


def test_owners_and_admins_see_every_token_with_its_creator(client, admin, owner,
                                                             member_with_token_permission):
    make_token(owner, name="Owner's")
    make_token(member_with_token_permission, name="Dora's")
    client.force_login(admin.user)
    rows = table_of(client.get(LIST))
    assert "Owner&#x27;s" in rows and "Dora&#x27;s" in rows
    assert "alice@acme.test" in rows and "dora@acme.test" in rows


def test_members_see_only_their_own(client, owner, member_with_token_permission):
    make_token(owner, name="Owner's")
    make_token(member_with_token_permission, name="Dora's")
    client.force_login(member_with_token_permission.user)
    rows = table_of(client.get(LIST))
    assert "Dora&#x27;s" in rows and "Owner&#x27;s" not in rows
    assert "Creator" not in client.get(LIST).content.decode()


def test_the_list_shows_every_column(client, owner, admin):
    now = timezone.now()
    # Noon (UTC) three days from today: three calendar days whatever the time the test runs.
    noon = datetime.combine((now + timedelta(days=3)).astimezone(UTC).date(), time(12), UTC)
    make_token(owner, name="soon", expires_at=noon, created_at=now - timedelta(days=27))
    make_token(owner, name="used", last_used_at=now - timedelta(hours=2))
    make_token(owner, name="old", expires_at=now - timedelta(days=1))
    make_token(owner, name="gone", revoked_at=now, revoked_by=admin.user)
    make_token(owner, name="forever", expires_at=None)
    client.force_login(owner.user)
    rows = table_of(client.get(LIST))
    assert "expires in 3 days" in rows
    assert "Never" in rows and "2\xa0hours ago" in rows
    assert rows.count("badge-active") == 3 and "Expired" in rows and "Revoked" in rows
    assert "by adam@acme.test" in rows
    assert "No expiration" in rows


@pytest.mark.parametrize("query,names", [
    ({"status": "active"}, {"live"}),
    ({"status": "expired"}, {"old"}),
    ({"status": "revoked"}, {"gone", "adams"}),
    ({"status": "revoked", "creator": "alice@acme.test"}, {"gone"}),
    ({"q": "LI"}, {"live"}),
    ({"creator": "adam@acme.test"}, {"adams"}),
    ({"status": "bogus"}, {"live", "old", "gone", "adams"}),
])
def test_it_filters_through_the_query_string(client, owner, admin, query, names):
    now = timezone.now()
    make_token(owner, name="live")
    make_token(owner, name="old", expires_at=now - timedelta(days=1))
    make_token(owner, name="gone", revoked_at=now)
    make_token(admin, name="adams", revoked_at=now)
    client.force_login(owner.user)
    rows = table_of(client.get(LIST, query))
    shown = {n for n in ["live", "old", "gone", "adams"] if f"<strong>{n}</strong>" in rows}
    assert shown == names


def test_members_cannot_filter_their_way_to_others(client, owner, member_with_token_permission):
    make_token(owner, name="secret-ci")
    client.force_login(member_with_token_permission.user)
    assert "secret-ci" not in client.get(LIST, {"creator": "alice@acme.test"}).content.decode()


def test_it_sorts(client, owner):
    for name in ["b", "c", "a"]:
        make_token(owner, name=name)
    client.force_login(owner.user)
    rows = table_of(client.get(LIST, {"sort": "name"}))
    a, b, c = (rows.index(f"<strong>{n}</strong>") for n in "abc")
    assert a < b < c
    rows = table_of(client.get(LIST, {"sort": "-name"}))
    assert rows.index("<strong>c</strong>") < rows.index("<strong>a</strong>")


def test_it_pages_by_fifty(client, owner):
    for n in range(55):
        make_token(owner, name=f"t{n:02}")
    client.force_login(owner.user)
    assert "1–50 of 55" in client.get(LIST).content.decode()
    assert table_of(client.get(LIST, {"page": 2})).count("<tr") == 5


def test_empty_states(client, owner):
    client.force_login(owner.user)
    assert b"No access tokens yet" in client.get(LIST).content
    assert b"No access tokens match these filters" in client.get(LIST, {"q": "x"}).content


@pytest.mark.parametrize("person", ["admin", "member_with_token_permission"])
@pytest.mark.parametrize("rows", [3, 30])
def test_the_list_costs_the_same_queries(request, client, django_assert_num_queries, person, rows):
    membership = request.getfixturevalue(person)
    other = MembershipFactory(workspace=membership.workspace, user=UserFactory())
    for n in range(rows):
        make_token(membership, name=f"mine {n}", revoked_at=timezone.now() if n % 3 else None,
                   revoked_by=membership.user)
        make_token(other, name=f"theirs {n}")
    client.force_login(membership.user)
    client.get(LIST)
    # session, user, membership, policy (members only), count, page, other creators'
    # memberships and custom roles (admins only), the creator filter (admins only), the viewer's
    # tokens that expire soon, sidebar
    with django_assert_num_queries(8 if person == "member_with_token_permission" else 10):
        assert client.get(LIST).status_code == 200


# Revoke ----------------------------------------------------------------------------------


def revoke_url(token):
    return f"{LIST}{token.pk}/revoke/"


@pytest.mark.parametrize("person", ["owner", "admin"])
def test_owners_and_admins_revoke_any_token(request, client, member_with_token_permission, person):
    actor = request.getfixturevalue(person)
    token, _ = make_token(member_with_token_permission)
    client.force_login(actor.user)
    assert client.post(revoke_url(token)).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == actor.user
    event = AuditEvent.objects.get(action="token.revoked")
    assert (event.actor, event.target) == (actor.user, token.name)


def test_members_revoke_their_own(client, member_with_token_permission):
    token, _ = make_token(member_with_token_permission)
    client.force_login(member_with_token_permission.user)
    client.post(revoke_url(token))
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_a_member_revoking_someone_elses_token_gets_404(client, owner, member_with_token_permission):
    token, _ = make_token(owner)
    client.force_login(member_with_token_permission.user)
    assert client.post(revoke_url(token)).status_code == 404
    assert client.get(revoke_url(token)).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_member_without_permission_cannot_revoke(client, member, owner):
    token, _ = make_token(owner)
    client.force_login(member.user)
    assert client.post(revoke_url(token)).status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None


def test_another_workspaces_token_is_a_404(client, owner, outsider):
    token, _ = make_token(outsider)
    client.force_login(owner.user)
    assert client.post(revoke_url(token)).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_an_unknown_token_is_a_404(client, owner):
    client.force_login(owner.user)
    assert client.post(f"{LIST}999999/revoke/").status_code == 404
    assert not AuditEvent.objects.exists()


def test_revoking_twice_leaves_one_revocation(client, owner):
    token, _ = make_token(owner)
    client.force_login(owner.user)
    client.post(revoke_url(token))
    token.refresh_from_db()
    first = token.revoked_at
    response = client.post(revoke_url(token), follow=True)
    assert b"already revoked" in response.content
    token.refresh_from_db()
    assert token.revoked_at == first
    assert AuditEvent.objects.filter(action="token.revoked").count() == 1


def test_revoking_asks_first_and_get_changes_nothing(client, owner):
    token, _ = make_token(owner, name="CI")
    client.force_login(owner.user)
    page = client.get(revoke_url(token))
    assert b"Revoke the access token" in page.content
    token.refresh_from_db()
    assert token.revoked_at is None


def test_revoking_needs_csrf(owner):
    from django.test import Client

    token, _ = make_token(owner)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner.user)
    assert client.post(revoke_url(token)).status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None


def test_only_active_tokens_offer_revoke_and_revoked_ones_stay_listed(client, owner):
    done, _ = make_token(owner, name="done", revoked_at=timezone.now(), revoked_by=owner.user)
    old, _ = make_token(owner, name="old", expires_at=timezone.now() - timedelta(days=1))
    live, _ = make_token(owner, name="live")
    client.force_login(owner.user)
    rows = table_of(client.get(LIST))
    assert "done" in rows and "Revoked" in rows
    assert revoke_url(done) not in rows and revoke_url(old) not in rows
    assert revoke_url(live) in rows


# Found in review: each failed before its fix ----------------------------------------------


@pytest.mark.parametrize("sort,order", [
    ("expires", ["soon", "later", "never expires"]),
    ("-expires", ["never expires", "later", "soon"]),
    ("last_used", ["never used", "used long ago", "used today"]),
    ("-last_used", ["used today", "used long ago", "never used"]),
])
def test_empty_dates_sort_the_same_on_every_database(client, owner, sort, order):
    now = timezone.now()
    if "expires" in sort:
        make_token(owner, name="later", expires_at=now + timedelta(days=20))
        make_token(owner, name="never expires", expires_at=None)
        make_token(owner, name="soon", expires_at=now + timedelta(days=2))
    else:
        make_token(owner, name="used today", last_used_at=now)
        make_token(owner, name="never used")
        make_token(owner, name="used long ago", last_used_at=now - timedelta(days=40))
    client.force_login(owner.user)
    rows = table_of(client.get(LIST, {"sort": sort}))
    positions = [rows.index(f"<strong>{name}</strong>") for name in order]
    assert positions == sorted(positions)


def test_a_token_used_within_the_minute_was_used_just_now(client, owner):
    now = timezone.now()
    make_token(owner, name="busy", last_used_at=now - timedelta(seconds=20))
    make_token(owner, name="earlier", last_used_at=now - timedelta(minutes=3))
    client.force_login(owner.user)
    rows = table_of(client.get(LIST))
    assert "just now</time>" in rows and "3\xa0minutes ago</time>" in rows
    assert "0\xa0minutes" not in rows


def test_a_seven_day_token_says_so_on_its_last_day_not_when_made(client, owner, time_machine):
    """Its creator chose 7 days a moment ago: it is not "expiring soon" (nor reminded of) until
    its last day."""
    client.force_login(owner.user)
    create(client, expiration="7")
    rows = table_of(client.get(LIST))
    assert "expires in" not in rows and "expires today" not in rows
    token = AccessToken.objects.get()
    last_day = datetime.combine(token.expires_at.astimezone(UTC).date(), time.min, UTC)
    time_machine.move_to(max(token.expires_at - timedelta(hours=1), last_day), tick=False)
    assert "expires today" in table_of(client.get(LIST))


def test_a_token_expiring_later_today_says_today(client, owner):
    end_of_today = datetime.combine(timezone.now().date(), time.max, tzinfo=UTC)
    make_token(owner, name="t", expires_at=end_of_today, created_at=timezone.now() - timedelta(days=2))
    client.force_login(owner.user)
    assert "expires today" in table_of(client.get(LIST))


def test_the_command_refuses_a_negative_lifetime(owner):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="--days"):
        call_command("create_access_token", "alice@acme.test", "acme", "--name", "x",
                     "--days", "-5")
    assert not AccessToken.objects.exists()


def test_the_command_with_zero_days_makes_a_token_that_never_expires_as_the_readme_says(
        owner, workspace):
    from pathlib import Path

    from django.core.management import CommandError, call_command

    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert "`--days 0` means no expiration" in readme
    call_command("create_access_token", "alice@acme.test", "acme", "--name", "forever",
                 "--days", "0", stdout=StringIO())
    assert AccessToken.objects.get(name="forever").expires_at is None
    workspace.max_token_lifetime_days = 30
    workspace.save(update_fields=["max_token_lifetime_days"])
    with pytest.raises(CommandError):
        call_command("create_access_token", "alice@acme.test", "acme", "--name", "limited",
                     "--days", "0", stdout=StringIO())
    assert not AccessToken.objects.filter(name="limited").exists()


# The creator, decided under the lock ----------------------------------------------------------


def _create(membership):
    from console.audit import Actor
    from tokens.services import lifecycle

    return lifecycle.token_create(membership=membership, actor=Actor(membership.user), name="CI",
                                 expires_at=None)


def test_a_member_removed_meanwhile_creates_nothing(owner, member_with_token_permission):
    from console.errors import Forbidden

    stale = member_with_token_permission
    stale.__class__.objects.filter(pk=stale.pk).delete()
    with pytest.raises(Forbidden):
        _create(stale)
    assert not AccessToken.objects.exists()


def test_an_account_deactivated_meanwhile_creates_nothing(owner, member_with_token_permission):
    from console.errors import Forbidden
    from workspaces.models import User

    User.objects.filter(pk=member_with_token_permission.user_id).update(is_active=False)
    with pytest.raises(Forbidden, match="deactivated"):
        _create(member_with_token_permission)
    assert not AccessToken.objects.exists()
