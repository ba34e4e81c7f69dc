"""Members and invitations: inviting by email (and the invitation's own page: creating an
account, accepting), resending and cancelling invitations, changing a member's role and
removing a member (which revokes their access tokens)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from console.audit import Actor
from console.errors import Forbidden, ServiceError
from console.locking import for_update
from console.mail import queue_mail
from tokens.interface import revoke_member_tokens

from .. import permissions
from ..audit import record
from ..models import (
    SERVICE_ACCOUNT_DOMAIN,
    Invitation,
    Membership,
    Role,
    User,
    Workspace,
    normal_email,
    reserved_email,
)
from ..selectors import lock_members, lock_owners

INVITATION_LIFETIME = timedelta(days=7)
RESERVED = (f"Addresses at {SERVICE_ACCOUNT_DOMAIN} belong to service accounts, which never "
            "sign in: invite a person's address.")


@transaction.atomic
def member_change_role(
    *, membership: Membership, acting: Membership, actor: Actor, role: str
) -> Membership:
    """Change a member's built-in role, as the policy allows `acting` for the member's role now.
    A workspace always keeps at least one owner."""
    owners = lock_owners(membership.workspace_id)
    membership, acting = lock_members(membership, acting)
    refusal = permissions.refuse_role_change(acting, membership, role, owners)
    if refusal:
        raise Forbidden(refusal, "role")
    before = membership.role
    if before == role:
        return membership
    membership.role = role
    membership.save(update_fields=["role"])
    record(
        workspace=membership.workspace, actor=actor, action="member.role_changed",
        target=membership.user.email, details={"before": before, "after": role},
    )
    invitations_cancel_unsendable(
        workspace=membership.workspace, inviter=membership.user, now_as=membership, actor=actor,
        reason=f"its inviter is now {Role(role).label.lower()}",
    )
    return membership


@transaction.atomic
def member_remove(*, membership: Membership, acting: Membership, actor: Actor) -> None:
    """Remove a member: their group places go, and their access tokens are revoked."""
    owners = lock_owners(membership.workspace_id)
    membership, acting = lock_members(membership, acting)
    refusal = permissions.refuse_member_removal(acting, membership, owners)
    if refusal:
        raise Forbidden(refusal)
    workspace = membership.workspace
    revoked = revoke_member_tokens(membership=membership, actor=actor, reason="member removed")
    email, role = membership.user.email, membership.role
    membership.delete()
    record(
        workspace=workspace, actor=actor, action="member.removed", target=email,
        details={"role": role, "tokens_revoked": revoked},
    )
    invitations_cancel_unsendable(workspace=workspace, inviter=membership.user, now_as=None,
                                  actor=actor, reason="its inviter was removed")


def invitations_cancel_unsendable(*, workspace: Workspace, inviter: User,
                                  now_as: Membership | None, actor: Actor, reason: str) -> int:
    """Cancel the open invitations `inviter` sent to `workspace` that they could no longer
    send as `now_as` (their membership after a change; None: no longer a member), each audited
    with the reason. Inside the caller's transaction, which has locked the inviter's membership
    (or removed it). An invitation lives on its inviter's right to send it: an admin demoted
    to member must not see a sock puppet join as admin. Returns how many."""
    cancelled = 0
    open_ones = for_update(Invitation.objects.filter(
        workspace=workspace, invited_by=inviter, accepted_at__isnull=True,
        cancelled_at__isnull=True))
    for invitation in open_ones:
        if now_as is not None and not permissions.refuse_invitation(now_as, invitation.role):
            continue
        invitation.cancelled_at = timezone.now()
        invitation.save(update_fields=["cancelled_at"])
        record(workspace=workspace, actor=actor, action="invitation.cancelled",
               target=invitation.email, details={"role": invitation.role, "reason": reason})
        cancelled += 1
    return cancelled


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def queue_invitation_mail(*, invitation: Invitation, inviter: User | None, now) -> None:
    """Save the invitation and queue its mail, its link starting over: the link of any earlier
    mail stops working at once (the digest is now one of a key nobody has), and the expiry
    counts from now. The key that works is made by the mail worker when the mail goes
    (`invitation_issue_key`), so it exists only in the mail."""
    invitation.key_digest = _digest(secrets.token_urlsafe(32))
    invitation.sent_at = now
    invitation.expires_at = now + INVITATION_LIFETIME
    invitation.save()
    queue_mail(kind="invitation", to=invitation.email, invitation=invitation.pk,
               sent_at=now.isoformat(), inviter=inviter.pk if inviter else None)


@transaction.atomic
def invitation_issue_key(*, invitation_id: int, sent_at: str) -> tuple[Invitation, str] | None:
    """The key of the link in the invitation's mail queued at `sent_at`, made as the mail goes
    (the mail worker calls this): only its digest is stored. None when that mail no longer
    makes sense: the invitation was accepted, cancelled, has expired or was sent again since
    (the later mail carries the link)."""
    invitation = for_update(Invitation.objects.select_related("workspace").filter(
        pk=invitation_id)).first()
    if (invitation is None or not invitation.is_open_at(timezone.now())
            or invitation.sent_at != parse_datetime(sent_at)):
        return None
    key = secrets.token_urlsafe(32)
    invitation.key_digest = _digest(key)
    invitation.save(update_fields=["key_digest"])
    return invitation, key


@transaction.atomic
def member_invite(
    *, workspace: Workspace, acting: Membership, actor: Actor, email: str, role: str,
) -> Invitation:
    """Invite `email` (in its normal form) to join with `role`, by mail (queued). The answer
    does not depend on whether the email has an account anywhere. Inviting an email that has
    an open invitation sends it again (with a new key, the new role and a new expiry)."""
    email = normal_email(email)
    if not email:
        raise ServiceError("Enter an email address.", "email")
    if reserved_email(email):
        raise ServiceError(RESERVED, "email")
    (acting,) = lock_members(acting)
    refusal = permissions.refuse_invitation(acting, role)
    if refusal:
        raise Forbidden(refusal, "role")
    if Membership.objects.filter(workspace=workspace, user__email=email).exists():
        raise ServiceError(f"{email} is already a member of {workspace.name}.", "email")
    now = timezone.now()
    invitation = for_update(Invitation.objects.filter(
        workspace=workspace, email=email, accepted_at__isnull=True, cancelled_at__isnull=True,
    )).first()
    action = "invitation.resent" if invitation else "invitation.sent"
    details = {"role": role}
    if invitation is None:
        invitation = Invitation(workspace=workspace, email=email, created_at=now)
    else:
        # Sending it again replaces its role: the acting member must be allowed to touch the
        # open one too (an admin cannot turn an owner's owner invitation into a member's).
        if permissions.refuse_invitation(acting, invitation.role):
            raise Forbidden(f"{email} has an open invitation as {invitation.get_role_display()}"
                            " that only an owner can change or send again.", "email")
        if invitation.role != role:
            details = {"role": {"before": invitation.role, "after": role}}
    invitation.role = role
    invitation.invited_by = actor.user
    try:
        with transaction.atomic():
            queue_invitation_mail(invitation=invitation, inviter=actor.user, now=now)
    except IntegrityError:
        raise ServiceError(f"{email} was invited a moment ago. Reload the page.", "email") from None
    record(workspace=workspace, actor=actor, action=action, target=email, details=details)
    return invitation


def _lock_open_invitation(invitation: Invitation, acting: Membership) -> tuple[Invitation, Membership]:
    (acting,) = lock_members(acting)
    invitation = for_update(Invitation.objects.select_related("workspace").filter(
        pk=invitation.pk, workspace_id=acting.workspace_id)).first()
    if invitation is None or invitation.accepted_at or invitation.cancelled_at:
        raise ServiceError("That invitation was accepted or cancelled meanwhile.")
    refusal = permissions.refuse_invitation(acting, invitation.role)
    if refusal:
        raise Forbidden(refusal)
    return invitation, acting


@transaction.atomic
def invitation_resend(*, invitation: Invitation, acting: Membership, actor: Actor) -> Invitation:
    """Send the invitation again with a new key (the old link stops working) and a new expiry."""
    invitation, acting = _lock_open_invitation(invitation, acting)
    queue_invitation_mail(invitation=invitation, inviter=actor.user, now=timezone.now())
    record(workspace=invitation.workspace, actor=actor, action="invitation.resent",
           target=invitation.email, details={"role": invitation.role})
    return invitation


@transaction.atomic
def invitation_cancel(*, invitation: Invitation, acting: Membership, actor: Actor) -> Invitation:
    invitation, acting = _lock_open_invitation(invitation, acting)
    invitation.cancelled_at = timezone.now()
    invitation.save(update_fields=["cancelled_at"])
    record(workspace=invitation.workspace, actor=actor, action="invitation.cancelled",
           target=invitation.email, details={"role": invitation.role})
    return invitation


def invitation_by_key(key: str) -> Invitation | None:
    """The open invitation with this key, or None (unknown, used, cancelled or expired)."""
    invitation = Invitation.objects.select_related("workspace", "invited_by").filter(
        key_digest=_digest(key or "")).first()
    if invitation is None or not invitation.is_open_at(timezone.now()):
        return None
    return invitation


def _lock_usable(invitation: Invitation) -> Invitation:
    """The invitation, locked, if it is still open under the key it was found by (a resend
    meanwhile gave it a new key: the old link no longer works)."""
    invitation = for_update(Invitation.objects.select_related("workspace").filter(
        pk=invitation.pk, key_digest=invitation.key_digest)).first()
    if invitation is None or not invitation.is_open_at(timezone.now()):
        raise ServiceError("This invitation is no longer valid.", status=404)
    return invitation


@transaction.atomic
def invitation_create_account(
    *, invitation: Invitation, name: str, password: str, actor: Actor
) -> User:
    """Create the account an invitation's email does not have yet (it does not join yet)."""
    invitation = _lock_usable(invitation)
    name = (name or "").strip()
    if not name:
        raise ServiceError("Enter your name.", "name")
    if User.objects.filter(email=invitation.email).exists():
        raise ServiceError("An account with this email exists already: sign in instead.")
    user = User(email=invitation.email, name=name[:150])
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise ServiceError(" ".join(error.messages), "password1") from None
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        raise ServiceError("An account with this email exists already: sign in instead.") from None
    record(workspace=invitation.workspace, actor=Actor(user, actor.ip, actor.user_agent),
           action="invitation.account_created", target=user.email)
    return user


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User, actor: Actor) -> Membership:
    """Join the workspace with the invitation's role. Only the invited email may; once."""
    invitation = _lock_usable(invitation)
    if normal_email(user.email) != invitation.email:
        raise Forbidden(f"This invitation is for {invitation.email}. Sign in with that email.")
    workspace = invitation.workspace
    try:
        with transaction.atomic():
            membership = Membership.objects.create(workspace=workspace, user=user,
                                                   role=invitation.role)
    except IntegrityError:
        raise ServiceError(f"You are already a member of {workspace.name}.") from None
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    record(workspace=workspace, actor=actor, action="invitation.accepted", target=user.email,
           details={"role": invitation.role})
    return membership


