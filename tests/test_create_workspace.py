"""`manage.py create_workspace SLUG NAME --plan PLAN --owner EMAIL`: a workspace with its first
owner (a member at once, or an owner invitation by mail), audited; bad input changes nothing."""

import pytest
from django.core.management import CommandError, call_command

from console.models import OutboundMail
from workspaces.models import AuditEvent, Invitation, Membership, Role, Workspace

from .factories import UserFactory
from .mailbox import delivered


def create(*args):
    call_command("create_workspace", *args)


def test_an_existing_account_becomes_the_owner(db):
    user = UserFactory(email="lee@initech.test")
    create("initech", "Initech", "--plan", "enterprise", "--owner", "LEE@initech.test")
    workspace = Workspace.objects.get(slug="initech")
    assert (workspace.name, workspace.plan) == ("Initech", "enterprise")
    assert Membership.objects.get(workspace=workspace).user == user
    assert list(AuditEvent.objects.filter(workspace=workspace).values_list("action", flat=True)
                .order_by("id")) == ["workspace.created", "member.added"]


def test_a_new_email_gets_an_owner_invitation(db):
    create("initech", "Initech", "--owner", "new@initech.test")
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role) == ("new@initech.test", Role.OWNER)
    assert [m.to for m in delivered()] == [["new@initech.test"]]


@pytest.mark.parametrize("args,message", [
    (("my ws", "Mine"), "lowercase letters, digits, hyphens and underscores"),
    (("acme!", "Acme"), "lowercase letters, digits, hyphens and underscores"),
    (("a" * 51, "Acme"), "at most 50 characters"),
    (("acme", "A" * 101), "at most 100 characters"),
    (("acme", "   "), "needs a name and a slug"),
])
def test_bad_input_creates_nothing(db, args, message):
    with pytest.raises(CommandError, match=message):
        create(*args, "--owner", "lee@initech.test")
    assert not Workspace.objects.exists() and not AuditEvent.objects.exists()


def test_a_bad_owner_email_creates_nothing(db):
    with pytest.raises(CommandError, match="not a valid email address"):
        create("initech", "Initech", "--owner", "not-an-email")
    assert not Workspace.objects.exists() and not OutboundMail.objects.exists()


def test_a_taken_slug_is_refused(db):
    create("initech", "Initech", "--owner", "a@initech.test")
    with pytest.raises(CommandError, match="already a workspace with the slug initech"):
        create("INITECH", "Other", "--owner", "b@initech.test")
    assert Workspace.objects.count() == 1
