"""The policy decides inside the lock: writes that race each other, with real threads and real
connections. One write holds its transaction open; the other, sent from a page loaded before,
waits for the lock and then decides on what the first one committed."""

import threading
import time
from functools import partial

import pytest
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone

from console.audit import Actor
from tokens.models import AccessToken
from tokens.services.lifecycle import token_create_for_service_account
from workspaces.models import AuditEvent, Membership, Role, Workspace
from workspaces.services import groups as ws_groups
from workspaces.services import members as ws_members
from workspaces.services import settings as ws_settings
from workspaces.services import users as ws_users
from workspaces.services.service_accounts import service_account_create, service_account_remove

from .factories import MembershipFactory, UserFactory, WorkspaceFactory


@pytest.fixture
def cast(transactional_db):
    workspace = WorkspaceFactory(slug="acme", allow_codex_local=True, allow_access_tokens=True)
    return {
        "workspace": workspace,
        "owner": MembershipFactory(workspace=workspace, role=Role.OWNER,
                                   user=UserFactory(email="owner@acme.test")),
        "admin": MembershipFactory(workspace=workspace, role=Role.ADMIN,
                                   user=UserFactory(email="admin@acme.test")),
        "target": MembershipFactory(workspace=workspace, role=Role.ADMIN,
                                    user=UserFactory(email="target@acme.test")),
    }


def hold(change):
    """Run `change()` in a transaction that stays open until the returned `commit` is set."""
    done, commit = threading.Event(), threading.Event()

    def run():
        try:
            with transaction.atomic():
                change()
                done.set()
                commit.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    assert done.wait(10)
    return commit, thread


def send(browser, url, data):
    """A POST from `browser`, in a thread; returns (thread, results)."""
    results = []

    def run():
        try:
            results.append(browser.post(url, data, follow=True))
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, results


def race(cast, change, request_from, url, data):
    """`change` holds its transaction open while `request_from`, signed in before it began,
    posts `data` to `url` (a page loaded before); returns the response to that post."""
    browser = Client()
    browser.force_login(request_from.user)
    commit, holder = hold(change)
    sender, results = send(browser, url, data)
    time.sleep(0.5)
    assert sender.is_alive(), "the second write waits for the first one's lock"
    commit.set()
    holder.join(10)
    sender.join(20)
    (response,) = results
    return response


def promote(cast):
    return partial(ws_members.member_change_role, membership=cast["target"], acting=cast["owner"],
                   actor=Actor(cast["owner"].user), role=Role.OWNER)


def test_an_admin_cannot_demote_whom_an_owner_just_promoted(cast):
    target = cast["target"]
    response = race(cast, promote(cast), cast["admin"], f"/w/acme/admin/members/{target.pk}/role/",
                    {"role": "member"})
    assert b"Only owners can make or unmake owners" in response.content
    assert Membership.objects.get(pk=target.pk).role == Role.OWNER
    assert list(AuditEvent.objects.values_list("action", "details")) == [
        ("member.role_changed", {"before": "admin", "after": "owner"})]


def test_an_admin_cannot_remove_whom_an_owner_just_promoted(cast):
    target = cast["target"]
    response = race(cast, promote(cast), cast["admin"],
                    f"/w/acme/admin/members/{target.pk}/remove/", {})
    assert b"Only owners can remove an owner" in response.content
    assert Membership.objects.get(pk=target.pk).role == Role.OWNER
    assert AuditEvent.objects.filter(action="member.removed").count() == 0


def test_an_admin_demoted_meanwhile_can_no_longer_manage_members(cast):
    demote_admin = partial(
        ws_members.member_change_role, membership=cast["admin"], acting=cast["owner"],
        actor=Actor(cast["owner"].user), role=Role.MEMBER)
    target = cast["target"]
    race(cast, demote_admin, cast["admin"], f"/w/acme/admin/members/{target.pk}/role/",
         {"role": "member"})
    assert Membership.objects.get(pk=target.pk).role == Role.ADMIN


def test_two_stale_settings_saves_both_prevail_and_both_are_audited(cast):
    workspace = cast["workspace"]
    tokens_off = partial(
        ws_settings.workspace_update_settings, workspace=workspace, acting=cast["owner"],
        actor=Actor(cast["owner"].user), allow_access_tokens=False)
    # The admin's page was loaded before: it showed both toggles on.
    response = race(cast, tokens_off, cast["admin"], "/w/acme/admin/settings/", {
        "allow_access_tokens": "on",
        "shown_allow_codex_local": "True", "shown_allow_access_tokens": "True"})
    assert b"Settings saved." in response.content
    workspace = Workspace.objects.get(pk=workspace.pk)
    assert (workspace.allow_codex_local, workspace.allow_access_tokens) == (False, False)
    assert list(AuditEvent.objects.order_by("id").values_list("actor_email", "details")) == [
        ("owner@acme.test", {"allow_access_tokens": {"before": True, "after": False}}),
        ("admin@acme.test", {"allow_codex_local": {"before": True, "after": False}}),
    ]


def test_a_save_of_every_toggle_audits_against_the_locked_values(cast):
    workspace = cast["workspace"]
    tokens_off = partial(
        ws_settings.workspace_update_settings, workspace=workspace, acting=cast["owner"],
        actor=Actor(cast["owner"].user), allow_access_tokens=False)
    # A script posting both toggles, without the values a page showed: it sets both.
    race(cast, tokens_off, cast["admin"], "/w/acme/admin/settings/",
         {"allow_codex_local": "on", "allow_access_tokens": "on"})
    workspace = Workspace.objects.get(pk=workspace.pk)
    assert (workspace.allow_codex_local, workspace.allow_access_tokens) == (True, True)
    assert list(AuditEvent.objects.order_by("id").values_list("details", flat=True)) == [
        {"allow_access_tokens": {"before": True, "after": False}},
        {"allow_access_tokens": {"before": False, "after": True}},
    ]


def test_a_custom_role_change_audits_against_the_locked_role(cast):
    from workspaces.models import CustomRole

    role = CustomRole.objects.create(workspace=cast["workspace"], name="Automation",
                                     grants_access_tokens=True)
    grant_local = partial(
        ws_groups.custom_role_update, role=role, acting=cast["owner"],
        actor=Actor(cast["owner"].user), name="Automation", grants_codex_local=True,
        grants_access_tokens=True)
    # The admin's stale form also says both; only the name differs.
    race(cast, grant_local, cast["admin"], f"/w/acme/admin/roles/{role.pk}/",
         {"name": "CI automation", "permissions": ["codex_local", "access_tokens"]})
    events = list(AuditEvent.objects.order_by("id").values_list("details", flat=True))
    assert events == [
        {"permissions": {"before": ["Codex access tokens"],
                         "after": ["Codex Local", "Codex access tokens"]}},
        {"name": {"before": "Automation", "after": "CI automation"}},
    ]


# Locks that meet a foreign key check ------------------------------------------------------
# PostgreSQL checks a new row's foreign keys at commit with a key-share lock on the row it
# points at. A write that locks the workspace row must therefore not take the lock a key
# change would need: an ordinary write (an invitation, a run) holding a member or a token and
# committing rows that point at the workspace would wait for it, while the lock holder waits
# for that member or token: a deadlock, one of the two aborted.


def test_a_token_rotated_while_its_run_start_commits_both_succeed(cast):
    from tokens import codec
    from tokens.models import AccessToken, Run
    from tokens.services import runs

    from .factories import make_token

    owner = cast["owner"]
    token, plaintext = make_token(owner, name="ci")
    run_start = partial(runs.run_start, digest=codec.digest(plaintext),
                        now=timezone.now(), client="github-actions", ip="192.0.2.1",
                        agent="curl")
    # The run start holds the token's row; the rotation locks the workspace, then waits for it.
    response = race(cast, run_start, owner, f"/w/acme/admin/access-tokens/{token.pk}/rotate/",
                    {"overlap": "1h", "request_key": "rotate-once"})
    assert response.status_code == 201
    assert Run.objects.filter(token=token).count() == 1
    assert AccessToken.objects.filter(replaces=token).exists()


def test_a_token_created_while_its_creator_invites_someone_both_succeed(cast):
    from workspaces.models import Invitation

    admin = cast["admin"]
    invite = partial(ws_members.member_invite, workspace=cast["workspace"], acting=admin,
                     actor=Actor(admin.user), email="new@acme.test", role=Role.MEMBER)
    # The invitation holds the admin's membership; the token's creation locks the workspace,
    # then waits for it.
    response = race(cast, invite, admin, "/w/acme/admin/access-tokens/new/",
                    {"name": "CI runner", "expiration": "30", "request_key": "create-once"})
    assert response.status_code == 201
    assert Invitation.objects.filter(email="new@acme.test").exists()
    assert AccessToken.objects.filter(name="CI runner", created_by=admin.user).exists()


def test_a_token_created_while_its_creator_is_deactivated_is_refused(cast):

    admin = cast["admin"]
    deactivate = partial(ws_users.user_set_active, user=admin.user, active=False,
                         actor=Actor(cast["owner"].user))
    response = race(cast, deactivate, admin, "/w/acme/admin/access-tokens/new/",
                    {"name": "CI runner", "expiration": "30", "request_key": "create-once"})
    assert response.status_code == 403
    assert b"This account is deactivated." in response.content
    assert not AccessToken.objects.exists()


# Service accounts: a token created for one while it is removed ----------------------------


def _service_account(cast):
    account = service_account_create(workspace=cast["workspace"], acting=cast["owner"],
                                     actor=Actor(cast["owner"].user), name="release-ci")
    return account, Membership.objects.get(user=account.user)


def test_a_token_made_while_its_service_account_is_removed_is_refused(cast):
    account, _ = _service_account(cast)
    remove = partial(service_account_remove, service_account=account, acting=cast["owner"],
                     actor=Actor(cast["owner"].user))
    response = race(cast, remove, cast["admin"],
                    f"/w/acme/admin/service-accounts/{account.pk}/tokens/new/",
                    {"name": "late", "expiration": "30"})
    assert response.status_code == 403
    assert not AccessToken.objects.exists()


def test_removing_a_service_account_revokes_the_token_made_meanwhile(cast):
    account, membership = _service_account(cast)
    create = partial(token_create_for_service_account, service_account=membership,
                     acting=cast["owner"], actor=Actor(cast["owner"].user), name="early",
                     expires_at=None)
    response = race(cast, create, cast["admin"],
                    f"/w/acme/admin/service-accounts/{account.pk}/remove/", {})
    assert b"Service account svc:release-ci removed; 1 access token revoked." in response.content
    assert AccessToken.objects.get().revoked_at is not None
    assert AuditEvent.objects.filter(action="token.revoked").count() == 1
