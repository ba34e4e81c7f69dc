"""Joining takes consent: owners and admins invite by email and role; the invitee signs in or
creates an account on the invitation page and accepts. Single use, 7 days, its email only,
owners only for owner invitations, every step audited, and the same answer whatever the email."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from console.audit import Actor
from console.errors import ServiceError
from console.models import OutboundMail
from workspaces.models import AuditEvent, Invitation, Membership, Role, User
from workspaces.services import members, users

from .factories import MembershipFactory, UserFactory
from .mailbox import delivered

MEMBERS = "/w/acme/admin/members/"
INVITE = MEMBERS + "invite/"


def invite(client, email="new@acme.test", role="member"):
    return client.post(INVITE, {"email": email, "role": role})


def link_in(message) -> str:
    return re.search(re.escape(settings.SITE_URL) + r"(/invitations/[^/\s]+/)",
                     message.body).group(1)


def test_an_invitation_mails_a_link_and_is_listed_as_pending(client, owner):
    client.force_login(owner.user)
    response = invite(client, "New@Acme.test", "admin")
    assert response.status_code == 302
    (message,) = delivered()
    assert message.to == ["new@acme.test"]
    assert "Acme Corp" in message.subject and "as admin" in message.body
    page = client.get(MEMBERS).content.decode()
    assert "Pending invitations" in page and "new@acme.test" in page
    event = AuditEvent.objects.get(action="invitation.sent")
    assert (event.target, event.details, event.actor) == ("new@acme.test", {"role": "admin"},
                                                          owner.user)
    assert not Membership.objects.filter(user__email="new@acme.test").exists()


def test_the_key_is_never_stored(client, owner):
    client.force_login(owner.user)
    invite(client)
    queued = OutboundMail.objects.get()
    key = link_in(delivered()[0]).split("/")[2]
    invitation = Invitation.objects.get()
    assert key not in invitation.key_digest and len(invitation.key_digest) == 64
    queued.refresh_from_db()
    assert queued.status == "sent" and key not in str(queued.params)


def test_the_answer_is_the_same_whether_or_not_the_email_has_an_account(client, admin):
    UserFactory(email="known@example.test")
    client.force_login(admin.user)
    answers = []
    for email in ("known@example.test", "unknown@example.test"):
        response = client.post(INVITE, {"email": email, "role": "member"}, follow=True)
        flashes = re.search(r'<div class="flashes".*?</div>\s*</div>', response.content.decode(),
                            re.S).group(0)
        answers.append((response.status_code, response.redirect_chain,
                        flashes.replace(email, "EMAIL")))
    assert answers[0] == answers[1]
    assert len(delivered()) == 2
    pending = client.get(MEMBERS).content.decode().split('id="pending-heading"')[1]
    pending = pending.split("</table>")[0]
    assert pending.count("<tr>") == 3  # a header and one row each, alike


def test_admins_cannot_invite_owners(client, admin):
    client.force_login(admin.user)
    page = client.get(MEMBERS).content.decode()
    assert '<option value="owner"' not in page.split('id="invite-heading"')[1].split("</form>")[0]
    response = invite(client, role="owner")
    assert response.status_code == 400
    assert b"Only owners can invite an owner" in response.content
    assert not Invitation.objects.exists() and not OutboundMail.objects.exists()


def test_owners_invite_owners(client, owner):
    client.force_login(owner.user)
    assert invite(client, role="owner").status_code == 302
    assert Invitation.objects.get().role == Role.OWNER


@pytest.mark.parametrize("data,error", [
    ({"email": "", "role": "member"}, "Enter the email address to invite."),
    ({"email": "not-an-email", "role": "member"}, "Enter a valid email address"),
    ({"email": "bob@acme.test", "role": "member"}, "bob@acme.test is already a member of Acme Corp"),
    ({"email": "x@acme.test", "role": "emperor"}, "Only owners can invite an owner."),
    ({"email": "a" * 250 + "@acme.test", "role": "member"}, "at most 254 characters"),
])
def test_bad_input_invites_nobody(client, owner, member, data, error):
    client.force_login(owner.user)
    response = client.post(INVITE, data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Invitation.objects.exists() and not OutboundMail.objects.exists()
    assert not AuditEvent.objects.exists()


def test_members_cannot_invite_and_outsiders_get_a_404(client, member, outsider):
    client.force_login(member.user)
    assert invite(client).status_code == 403
    client.force_login(outsider.user)
    assert invite(client).status_code == 404
    assert not Invitation.objects.exists()


def test_inviting_again_resends_with_a_new_link(client, owner):
    client.force_login(owner.user)
    invite(client)
    first = link_in(delivered()[0])
    invite(client, role="admin")
    second = link_in(delivered()[1])
    assert Invitation.objects.count() == 1 and Invitation.objects.get().role == Role.ADMIN
    assert client.get(first).status_code == 404
    assert client.get(second).status_code == 200


def test_resend_and_cancel(client, owner):
    client.force_login(owner.user)
    invite(client)
    invitation = Invitation.objects.get()
    old = link_in(delivered()[0])
    assert client.post(f"/w/acme/admin/invitations/{invitation.pk}/resend/").status_code == 302
    new = link_in(delivered()[1])
    assert new != old
    client.logout()
    gone = client.get(old)
    assert gone.status_code == 404 and b"This invitation is no longer valid" in gone.content
    client.force_login(owner.user)
    cancel = f"/w/acme/admin/invitations/{invitation.pk}/cancel/"
    assert b"Cancel the invitation for new@acme.test?" in client.get(cancel).content
    assert client.post(cancel).status_code == 302
    client.logout()
    assert client.get(new).status_code == 404
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "invitation.sent", "invitation.resent", "invitation.cancelled"]
    client.force_login(owner.user)
    assert "Pending invitations" not in client.get(MEMBERS).content.decode()


def test_admins_cannot_resend_or_cancel_owner_invitations(client, owner, admin):
    client.force_login(owner.user)
    invite(client, role="owner")
    invitation = Invitation.objects.get()
    client.force_login(admin.user)
    client.post(f"/w/acme/admin/invitations/{invitation.pk}/resend/")
    assert client.post(f"/w/acme/admin/invitations/{invitation.pk}/cancel/").status_code == 403
    invitation.refresh_from_db()
    assert invitation.cancelled_at is None and len(delivered()) == 1


def test_admins_cannot_turn_an_owner_invitation_into_another_by_inviting_again(
        client, owner, admin):
    client.force_login(owner.user)
    invite(client, role="owner")
    before = Invitation.objects.get()
    client.force_login(admin.user)
    response = invite(client, role="member")
    assert response.status_code == 400
    assert "open invitation as Owner that only an owner can change" in response.content.decode()
    after = Invitation.objects.get()
    assert (after.role, after.key_digest) == (Role.OWNER, before.key_digest)
    assert len(delivered()) == 1
    assert not AuditEvent.objects.filter(action="invitation.resent").exists()


def test_inviting_again_with_another_role_records_the_change(client, owner):
    client.force_login(owner.user)
    invite(client, role="member")
    invite(client, role="admin")
    assert Invitation.objects.get().role == Role.ADMIN
    event = AuditEvent.objects.get(action="invitation.resent")
    assert event.details == {"role": {"before": "member", "after": "admin"}}


def test_a_link_replaced_while_it_was_being_used_no_longer_works(client, invited, owner):
    """The invitation page found the invitation by its key; a resend before the locked write
    gave it a new key: the old link must not accept."""
    found = members.invitation_by_key(invited.strip("/").split("/")[-1])
    members.invitation_resend(invitation=Invitation.objects.get(), acting=owner,
                              actor=Actor(owner.user))
    with pytest.raises(ServiceError):
        members.invitation_create_account(invitation=found, name="New", password="a-long-pass-1",
                                          actor=Actor(None))
    assert not User.objects.filter(email="new@acme.test").exists()


def test_another_workspaces_invitation_is_a_404(client, owner, outsider):
    client.force_login(owner.user)
    invite(client)
    invitation = Invitation.objects.get()
    client.force_login(outsider.user)
    assert client.post(f"/w/globex/admin/invitations/{invitation.pk}/cancel/").status_code == 404


# The invitation page ---------------------------------------------------------------------


@pytest.fixture
def invited(client, owner):
    """The link of an invitation for new@acme.test as admin; the client is signed out."""
    client.force_login(owner.user)
    invite(client, "new@acme.test", "admin")
    client.logout()
    return link_in(delivered()[-1])


def test_a_newcomer_creates_an_account_and_accepts(client, invited):
    page = client.get(invited).content.decode()
    assert "Create your account" in page and "new@acme.test" in page
    response = client.post(invited + "account/", {
        "name": "Nia New", "password1": "a-long-enough-secret", "password2": "a-long-enough-secret"})
    assert response.status_code == 302 and response["Location"] == invited
    user = User.objects.get(email="new@acme.test")
    assert user.name == "Nia New" and user.check_password("a-long-enough-secret")
    assert not Membership.objects.filter(user=user).exists()  # not before Accept
    assert b">Accept</button>" in client.get(invited).content
    accepted = client.post(invited)
    assert accepted.status_code == 302 and accepted["Location"] == "/w/acme/"
    assert Membership.objects.get(user=user).role == Role.ADMIN
    assert list(AuditEvent.objects.order_by("id").values_list("action", "target"))[-2:] == [
        ("invitation.account_created", "new@acme.test"), ("invitation.accepted", "new@acme.test")]
    assert client.get(invited).status_code == 404  # it works once


def test_a_weak_password_or_a_mismatch_creates_nothing(client, invited):
    for p1, p2, error in (("short", "short", "too short"),
                          ("a-long-enough-secret", "another-long-secret", "The two passwords differ")):
        response = client.post(invited + "account/", {"name": "Nia", "password1": p1,
                                                      "password2": p2})
        assert response.status_code == 400 and error in response.content.decode()
    assert not User.objects.filter(email="new@acme.test").exists()


def test_someone_with_an_account_signs_in_and_accepts(client, invited, password):
    UserFactory(email="new@acme.test")
    page = client.get(invited).content.decode()
    assert "Sign in to accept" in page and "Create your account" not in page
    wrong = client.post(invited + "sign-in/", {"password": "nope"})
    assert wrong.status_code == 400 and b"do not match an account" in wrong.content
    assert client.post(invited + "sign-in/", {"password": password}).status_code == 302
    assert client.post(invited).status_code == 302
    assert Membership.objects.get(user__email="new@acme.test").role == Role.ADMIN


def test_the_invitation_page_counts_failed_sign_ins(client, invited, password):
    UserFactory(email="new@acme.test")
    for _ in range(10):
        client.post(invited + "sign-in/", {"password": "nope"})
    assert client.post(invited + "sign-in/", {"password": password}).status_code == 429


def test_it_is_bound_to_its_email(client, invited, member):
    client.force_login(member.user)
    page = client.get(invited).content.decode()
    assert "This invitation is for new@acme.test" in page and ">Accept</button>" not in page
    refused = client.post(invited)
    assert refused.status_code == 403
    assert not Membership.objects.filter(user=member.user, role=Role.ADMIN).exists()
    assert not AuditEvent.objects.filter(action="invitation.accepted").exists()


def test_an_expired_invitation_is_no_longer_valid(client, invited):
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get(invited)
    assert response.status_code == 404
    assert b"This invitation is no longer valid" in response.content
    assert client.post(invited + "account/", {"name": "x", "password1": "a-long-enough-secret",
                                              "password2": "a-long-enough-secret"}).status_code == 404
    assert not User.objects.filter(email="new@acme.test").exists()


def test_it_expires_after_seven_days(client, invited):
    invitation = Invitation.objects.get()
    assert timedelta(days=7) - (invitation.expires_at - invitation.sent_at) < timedelta(seconds=1)


def test_an_unknown_key_is_a_404(client, db):
    assert client.get("/invitations/not-a-key/").status_code == 404


# Invitations die with their inviter's right to send them ---------------------------------------


@pytest.fixture
def mallory(workspace):
    """An admin who invites a friend as admin, and then loses the right to."""
    return MembershipFactory(workspace=workspace, role=Role.ADMIN,
                             user=UserFactory(email="mallory@acme.test"))


def mallorys_invitation(client, mallory, role="admin"):
    client.force_login(mallory.user)
    assert invite(client, "sock@evil.test", role).status_code == 302
    link = link_in(delivered()[-1])
    client.logout()
    assert client.get(link).status_code == 200
    return link


def assert_dead(client, link, reason):
    response = client.get(link)
    assert response.status_code == 404 and b"This invitation is no longer valid" in response.content
    UserFactory(email="sock@evil.test")
    client.force_login(User.objects.get(email="sock@evil.test"))
    assert client.post(link).status_code == 404
    assert not Membership.objects.filter(user__email="sock@evil.test").exists()
    event = AuditEvent.objects.get(action="invitation.cancelled")
    assert event.target == "sock@evil.test"
    assert event.details == {"role": "admin", "reason": reason}


def test_demoting_the_inviter_cancels_what_they_could_no_longer_send(client, owner, mallory):
    link = mallorys_invitation(client, mallory)
    client.force_login(owner.user)
    assert client.post(f"{MEMBERS}{mallory.pk}/role/", {"role": "member"}).status_code == 302
    client.logout()
    assert_dead(client, link, "its inviter is now member")
    assert Invitation.objects.get().cancelled_at is not None


def test_removing_the_inviter_cancels_their_invitations(client, owner, mallory):
    link = mallorys_invitation(client, mallory)
    client.force_login(owner.user)
    assert client.post(f"{MEMBERS}{mallory.pk}/remove/").status_code == 302
    client.logout()
    assert_dead(client, link, "its inviter was removed")


def test_deactivating_the_inviter_cancels_their_invitations(client, owner, mallory):
    link = mallorys_invitation(client, mallory)
    users.user_set_active(user=mallory.user, active=False, actor=Actor(owner.user))
    assert_dead(client, link, "its inviter was deactivated")


def test_an_owner_made_admin_keeps_the_invitations_an_admin_may_send(client, owner, workspace):
    second = MembershipFactory(workspace=workspace, role=Role.OWNER,
                               user=UserFactory(email="olga@acme.test"))
    client.force_login(second.user)
    invite(client, "boss@acme.test", "owner")
    invite(client, "helper@acme.test", "admin")
    client.force_login(owner.user)
    assert client.post(f"{MEMBERS}{second.pk}/role/", {"role": "admin"}).status_code == 302
    open_ones = Invitation.objects.filter(cancelled_at__isnull=True)
    assert list(open_ones.values_list("email", flat=True)) == ["helper@acme.test"]
    event = AuditEvent.objects.get(action="invitation.cancelled")
    assert (event.target, event.details) == ("boss@acme.test",
                                             {"role": "owner", "reason": "its inviter is now admin"})
    assert [m.to for m in delivered()] == [["helper@acme.test"]]  # the cancelled one: no mail


def test_a_demotion_rolled_back_cancels_nothing(owner, mallory, client):
    mallorys_invitation(client, mallory)
    with pytest.raises(RuntimeError), transaction.atomic():
        members.member_change_role(membership=mallory, acting=owner, actor=Actor(owner.user),
                                   role=Role.MEMBER)
        raise RuntimeError("the change failed after the demotion")
    assert Invitation.objects.get().cancelled_at is None
    assert not AuditEvent.objects.filter(action="invitation.cancelled").exists()
