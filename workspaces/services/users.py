"""Users: as staff change them in Django's admin (name and staff flag, and deactivation, which
revokes the user's access tokens in every workspace), and password reset requests."""

from __future__ import annotations

from django.db import transaction

from console.audit import Actor, changes
from console.locking import for_update
from console.mail import queue_mail
from tokens.interface import revoke_member_tokens

from ..audit import record
from ..models import Membership, User, normal_email
from .members import invitations_cancel_unsendable


@transaction.atomic
def user_update(*, user: User, name: str, is_staff: bool, actor: Actor) -> User:
    """Change a user's name and staff flag, as staff do in Django's admin, recorded in each
    workspace the user belongs to (staff read every workspace in Django's admin)."""
    user = for_update(User.objects.filter(pk=user.pk)).get()
    changed = changes(user, {"name": name, "is_staff": is_staff}, names={"is_staff": "staff"})
    if not changed:
        return user
    user.name, user.is_staff = name, is_staff
    user.save(update_fields=["name", "is_staff"])
    for membership in Membership.objects.select_related("workspace").filter(user=user):
        record(workspace=membership.workspace, actor=actor, action="user.changed",
               target=user.email, details=changed)
    return user


@transaction.atomic
def user_set_active(*, user: User, active: bool, actor: Actor) -> User:
    """Deactivate (or reactivate) a user everywhere, as staff do in Django's admin.

    Deactivating revokes every access token they created, in every workspace, and cancels the
    invitations they sent that are still open, recording both in each workspace they belong
    to.
    """
    user = for_update(User.objects.filter(pk=user.pk)).get()
    if user.is_active == active:
        return user
    user.is_active = active
    user.save(update_fields=["is_active"])
    for membership in Membership.objects.select_related("workspace", "user").filter(user=user):
        revoked = 0
        if not active:
            revoked = revoke_member_tokens(membership=membership, actor=actor,
                                           reason="user deactivated")
        record(
            workspace=membership.workspace, actor=actor,
            action="user.deactivated" if not active else "user.reactivated",
            target=user.email, details={"tokens_revoked": revoked} if not active else {},
        )
        if not active:
            invitations_cancel_unsendable(workspace=membership.workspace, inviter=user,
                                          now_as=None, actor=actor,
                                          reason="its inviter was deactivated")
    return user


@transaction.atomic
def password_reset_request(*, email: str) -> None:
    """Queue a password reset for `email` (in its normal form), whether or not it has an
    account: the mail worker looks the account up when it goes, and sends nothing when there is
    none (workspaces/mail.py). So the request does the same work for every email."""
    email = normal_email(email)
    queue_mail(kind="password_reset", to=email, email=email)
