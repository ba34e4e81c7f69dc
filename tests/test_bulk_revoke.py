"""Revoke selected (the list's check boxes) and Revoke all tokens (the Members page): each token
revoked as if one by one, audited, its creator mailed when someone else revoked it."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from console.models import OutboundMail
from workspaces.models import AuditEvent, Role

from .factories import GroupFactory, MembershipFactory, make_token, table_of
from .mailbox import delivered

LIST = "/w/acme/admin/access-tokens/"
SELECTED = LIST + "revoke/"
MEMBERS = "/w/acme/admin/members/"
NOW = datetime(2030, 3, 10, 15, 0, tzinfo=UTC)


def revoke_all_url(membership) -> str:
    return f"{MEMBERS}{membership.pk}/revoke-tokens/"


def flashes(response) -> list[str]:
    """The messages shown on the page after the redirect."""
    return re.findall(r'<div class="flash flash-\w+">(.*?)</div>', response.content.decode())


def revoke_selected(client, *ids):
    return client.post(SELECTED, {"ids": [str(i) for i in ids]}, follow=True)


def revoked_events():
    return AuditEvent.objects.filter(action="token.revoked")


def state(token):
    token.refresh_from_db()
    return token.revoked_at, token.revoked_by_id


# Revoke selected ----------------------------------------------------------------------------


def test_it_revokes_each_selected_token_as_if_one_by_one(
    client, owner, admin, member_with_token_permission
):
    mine, _ = make_token(owner, name="a-mine")
    doras, _ = make_token(member_with_token_permission, name="b-doras")
    admins, _ = make_token(admin, name="c-admins")
    kept, _ = make_token(admin, name="d-not-selected")
    client.force_login(owner.user)
    response = revoke_selected(client, admins.pk, mine.pk, doras.pk)
    assert response.redirect_chain == [(LIST, 302)]
    assert flashes(response) == ["3 access tokens revoked: a-mine, b-doras, c-admins."]
    for token in (mine, doras, admins):
        revoked_at, revoked_by = state(token)
        assert revoked_at is not None and revoked_by == owner.user_id
    assert state(kept) == (None, None)
    events = revoked_events()
    assert sorted(e.token_id for e in events) == sorted([mine.pk, doras.pk, admins.pk])
    assert {e.actor_id for e in events} == {owner.user_id}
    assert sorted(e.target for e in events) == ["a-mine", "b-doras", "c-admins"]


def test_a_member_revokes_their_own_and_another_members_token_is_left_alone(
    client, member_with_token_permission, member
):
    doras, _ = make_token(member_with_token_permission, name="doras-ci")
    bobs, _ = make_token(member, name="bobs-ci")
    client.force_login(member_with_token_permission.user)
    response = revoke_selected(client, doras.pk, bobs.pk)
    assert flashes(response) == [
        "1 access token revoked: doras-ci.",
        "1 of the selected tokens was left alone: you can revoke only tokens you can see here.",
    ]
    assert state(doras)[0] is not None
    assert state(bobs) == (None, None)
    assert [e.token_id for e in revoked_events()] == [doras.pk]


def test_an_owner_cannot_revoke_another_workspaces_token_or_an_unknown_one(
    client, owner, outsider
):
    theirs, _ = make_token(outsider, name="globex-ci")
    client.force_login(owner.user)
    response = revoke_selected(client, theirs.pk, theirs.pk + 1000)
    assert flashes(response) == [
        "2 of the selected tokens were left alone: you can revoke only tokens you can see here."
    ]
    assert state(theirs) == (None, None)
    assert not revoked_events().exists()


@pytest.mark.parametrize("bad_id", ["abc", "-3", "1.5"])
def test_ids_that_are_not_numbers_are_left_alone_and_reported(client, owner, bad_id):
    mine, _ = make_token(owner, name="mine")
    client.force_login(owner.user)
    response = revoke_selected(client, mine.pk, bad_id)
    assert flashes(response) == [
        "1 access token revoked: mine.",
        "1 of the selected tokens was left alone: you can revoke only tokens you can see here.",
    ]


# "²" passes str.isdigit() but not int(); the other is beyond any database's integer.
@pytest.mark.parametrize("odd_id", ["²", "99999999999999999999999"])
def test_odd_ids_are_reported_never_a_server_error(client, owner, odd_id):
    mine, _ = make_token(owner, name="mine")
    client.force_login(owner.user)
    response = revoke_selected(client, mine.pk, odd_id)
    assert response.status_code == 200
    assert flashes(response) == [
        "1 access token revoked: mine.",
        "1 of the selected tokens was left alone: you can revoke only tokens you can see here.",
    ]


def test_already_revoked_tokens_are_reported_as_such(client, owner, admin):
    earlier = timezone.now() - timedelta(days=2)
    old, _ = make_token(admin, name="old", revoked_at=earlier, revoked_by=admin.user)
    live, _ = make_token(admin, name="live")
    client.force_login(owner.user)
    response = revoke_selected(client, old.pk, live.pk)
    assert flashes(response) == ["1 access token revoked: live.",
                                 "1 of the selected tokens was already revoked."]
    assert state(old) == (earlier, admin.user_id)  # its history is left as it was
    assert [e.token_id for e in revoked_events()] == [live.pk]


def test_nothing_selected_says_what_to_do(client, owner):
    make_token(owner, name="mine")
    client.force_login(owner.user)
    response = client.post(SELECTED, follow=True)
    assert flashes(response) == ["Select the tokens to revoke first."]
    assert not revoked_events().exists()


def test_get_is_not_allowed(client, owner):
    client.force_login(owner.user)
    assert client.get(SELECTED).status_code == 405


def test_it_needs_the_csrf_token(owner):
    token, _ = make_token(owner, name="mine")
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner.user)
    assert client.post(SELECTED, {"ids": [token.pk]}).status_code == 403
    assert state(token) == (None, None)
    page = client.get(LIST).content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(SELECTED, {"ids": [token.pk], "csrfmiddlewaretoken": csrf})
    assert response.status_code == 302
    assert state(token)[0] is not None


def test_outsiders_get_404_and_members_without_the_permission_403(client, owner, outsider, member):
    token, _ = make_token(owner, name="mine")
    client.force_login(outsider.user)
    assert client.post(SELECTED, {"ids": [token.pk]}).status_code == 404
    client.force_login(member.user)
    response = client.post(SELECTED, {"ids": [token.pk]})
    assert response.status_code == 403
    assert b"ask a workspace owner or admin" in response.content.lower()
    assert state(token) == (None, None)


# Mail to the creator --------------------------------------------------------------------------


def test_the_creator_is_mailed_when_someone_else_revokes_their_token(
    client, time_machine, owner, member_with_token_permission
):
    time_machine.move_to(NOW, tick=False)
    doras, plaintext = make_token(member_with_token_permission, name="doras-ci")
    mine, _ = make_token(owner, name="mine")
    client.force_login(owner.user)
    revoke_selected(client, doras.pk, mine.pk)
    (message,) = delivered()  # not to the owner, who revoked their own
    assert message.to == ["dora@acme.test"]
    assert message.subject == "Your Codex access token “doras-ci” was revoked"
    assert "“doras-ci”" in message.body and "in Acme Corp" in message.body
    assert f"revoked by {owner.user.display_name} (alice@acme.test)" in message.body
    assert "on Mar 10, 2030, 15:00 UTC" in message.body
    for secret in (plaintext, doras.digest):
        assert secret not in message.body and secret not in message.subject


def test_mail_is_plain_text_not_html_escaped(
    client, owner, member_with_token_permission
):
    owner.workspace.name = "R&D <Labs>"
    owner.workspace.save()
    doras, _ = make_token(member_with_token_permission, name="Dora's \"nightly\" & co")
    client.force_login(owner.user)
    revoke_selected(client, doras.pk)
    (message,) = delivered()
    assert message.subject == "Your Codex access token “Dora's \"nightly\" & co” was revoked"
    assert "in R&D <Labs>" in message.body and "&amp;" not in message.body


def test_revoking_your_own_token_mails_nobody(
    client, member_with_token_permission
):
    doras, _ = make_token(member_with_token_permission, name="doras-ci")
    client.force_login(member_with_token_permission.user)
    revoke_selected(client, doras.pk)
    assert state(doras)[0] is not None
    assert not OutboundMail.objects.exists() and not delivered()


# Revoke all tokens (Members page) --------------------------------------------------------------


@pytest.mark.parametrize("person", ["owner", "admin"])
def test_revoke_all_tokens_revokes_every_active_token_the_member_created_here(
    request, client, person, member_with_token_permission, member, other_workspace
):
    acting = request.getfixturevalue(person)
    dora = member_with_token_permission
    first, _ = make_token(dora, name="ci-one")
    second, _ = make_token(dora, name="ci-two", expires_at=None)
    earlier = timezone.now() - timedelta(days=2)
    old, _ = make_token(dora, name="old", revoked_at=earlier, revoked_by=dora.user)
    elsewhere, _ = make_token(MembershipFactory(workspace=other_workspace, user=dora.user),
                              name="globex-ci")
    bobs, _ = make_token(member, name="bobs-ci")
    client.force_login(acting.user)
    response = client.post(revoke_all_url(dora), follow=True)
    assert response.redirect_chain == [(MEMBERS, 302)]
    assert flashes(response) == ["2 access tokens of dora@acme.test revoked."]
    for token in (first, second):
        revoked_at, revoked_by = state(token)
        assert revoked_at is not None and revoked_by == acting.user_id
    assert state(old) == (earlier, dora.user_id)
    assert state(elsewhere) == (None, None)
    assert state(bobs) == (None, None)
    events = revoked_events()
    assert sorted(e.token_id for e in events) == sorted([first.pk, second.pk])
    assert {e.actor_id for e in events} == {acting.user_id}
    assert sorted(m.subject for m in delivered()) == [
        "Your Codex access token “ci-one” was revoked",
        "Your Codex access token “ci-two” was revoked",
    ]


def test_revoke_all_tokens_leaves_expired_tokens_expired(
    client, owner, member_with_token_permission
):
    dora = member_with_token_permission
    active, _ = make_token(dora, name="active")
    expired, _ = make_token(dora, name="expired", created_at=timezone.now() - timedelta(days=60),
                            expires_at=timezone.now() - timedelta(days=1))
    client.force_login(owner.user)
    response = client.post(revoke_all_url(dora), follow=True)
    assert flashes(response) == ["1 access token of dora@acme.test revoked."]
    assert state(active)[0] is not None
    assert state(expired) == (None, None)
    assert [e.token_id for e in revoked_events()] == [active.pk]


@pytest.mark.parametrize("person", ["member", "member_with_token_permission"])
def test_members_cannot_revoke_all_of_someones_tokens(request, client, person, owner, admin):
    token, _ = make_token(admin, name="admins-ci")
    client.force_login(request.getfixturevalue(person).user)
    assert client.post(revoke_all_url(admin)).status_code == 403
    assert state(token) == (None, None)


def test_another_workspaces_member_is_a_404(client, owner, outsider):
    token, _ = make_token(outsider, name="globex-ci")
    client.force_login(owner.user)
    assert client.post(revoke_all_url(outsider)).status_code == 404
    assert state(token) == (None, None)


def test_outsiders_cannot_revoke_all_tokens(client, outsider, member_with_token_permission):
    token, _ = make_token(member_with_token_permission, name="doras-ci")
    client.force_login(outsider.user)
    assert client.post(revoke_all_url(member_with_token_permission)).status_code == 404
    assert state(token) == (None, None)


def test_revoke_all_tokens_is_a_post(client, owner, member_with_token_permission):
    token, _ = make_token(member_with_token_permission, name="doras-ci")
    client.force_login(owner.user)
    assert client.get(revoke_all_url(member_with_token_permission)).status_code == 405
    assert state(token) == (None, None)


def member_row(response, email) -> str:
    (row,) = [r for r in table_of(response).split("<tr>") if email in r]
    return row


def test_the_members_page_offers_revoke_all_only_for_members_with_active_tokens(
    client, owner, admin, member_with_token_permission, member
):
    make_token(member_with_token_permission, name="one")
    make_token(member_with_token_permission, name="two")
    make_token(member, name="revoked", revoked_at=timezone.now())
    make_token(member, name="expired", created_at=timezone.now() - timedelta(days=60),
               expires_at=timezone.now() - timedelta(days=1))
    client.force_login(owner.user)
    response = client.get(MEMBERS)
    doras = member_row(response, "dora@acme.test")
    assert '<td class="num" data-label="Active tokens">2</td>' in doras
    assert "Revoke all tokens" in doras
    assert "Revoke all 2 active tokens of dora@acme.test?" in doras
    assert f'action="{revoke_all_url(member_with_token_permission)}"' in doras
    for email in ("bob@acme.test", "adam@acme.test", "alice@acme.test"):
        row = member_row(response, email)
        assert '<td class="num" data-label="Active tokens">0</td>' in row
        assert "Revoke all tokens" not in row


@pytest.mark.parametrize("rows", [3, 30])
def test_the_members_page_costs_the_same_queries_whatever_its_length(
    client, owner, workspace, django_assert_num_queries, rows
):
    group = GroupFactory(workspace=workspace)
    for _ in range(rows):
        membership = MembershipFactory(workspace=workspace, role=Role.MEMBER)
        group.members.add(membership)
        make_token(membership, name="ci")
        make_token(membership, name="nightly", expires_at=None)
    client.force_login(owner.user)
    client.get(MEMBERS)  # the first visit also saves the current workspace in the session
    # session, user, membership, count, page (with each member's active tokens), groups
    # prefetch, owners, service accounts, pending invitations, sidebar workspaces
    with django_assert_num_queries(10):
        response = client.get(MEMBERS)
    # A page holds 25 members; the owner, without tokens, is the first of them.
    assert response.content.decode().count("Revoke all 2 active tokens") == min(rows, 24)
