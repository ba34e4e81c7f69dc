"""Every write to workspaces, members, invitations, groups and custom roles.

Each function is atomic and writes its own audit event in the same transaction. Each takes the
acting membership (`acting`), locks what it changes, and asks `permissions.py` again after the
locked read, so a decision is never taken on a stale copy; audit "before" values come from the
locked rows. Bad input raises `ServiceError` (a refusal by the policy, `Forbidden`) with a
message fit for the user, and changes nothing.

Locks are always taken in one order (`locking.py`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from tokens.services import tokens_revoke_for_member

from . import permissions
from .audit import Actor, record
from .errors import Forbidden, ServiceError
from .locking import lock_members, lock_owners
from .mail import compose, send_now
from .models import CustomRole, Group, Invitation, Membership, Role, User, Workspace
from .permissions import GRANTS, Perm

INVITATION_LIFETIME = timedelta(days=7)

__all__ = ["ServiceError", "Forbidden"]


def _require(acting: Membership, perm: Perm) -> None:
    if not permissions.can(acting, perm):
        raise Forbidden(permissions.ASK_FOR.get(perm, permissions.ASK_FOR_ADMIN))


# Settings ----------------------------------------------------------------------------------

SETTINGS_FIELDS = ("allow_codex_local", "allow_access_tokens", "max_token_lifetime_days")
LIFETIMES = (None, 7, 30, 60, 90, 365)


@transaction.atomic
def workspace_update_settings(
    *, workspace: Workspace, acting: Membership, actor: Actor, **changes
) -> Workspace:
    """Apply `changes` (a subset of the Codex Local toggles) and record before and after of
    each value that changed, as read under the workspace's lock. Fields left out keep whatever
    the workspace has now, so two people saving different toggles at once both prevail."""
    unknown = set(changes) - set(SETTINGS_FIELDS)
    if unknown:
        raise ServiceError(f"Unknown settings: {', '.join(sorted(unknown))}.")
    if changes.get("max_token_lifetime_days", None) not in LIFETIMES:
        raise ServiceError("Choose no limit, or 7, 30, 60, 90 or 365 days.",
                           "max_token_lifetime_days")
    workspace = Workspace.objects.select_for_update(no_key=True).get(pk=workspace.pk)
    (acting,) = lock_members(acting)
    _require(acting, Perm.MANAGE_SETTINGS)
    changed = {
        key: {"before": getattr(workspace, key), "after": value}
        for key, value in changes.items()
        if getattr(workspace, key) != value
    }
    if not changed:
        return workspace
    for key, change in changed.items():
        setattr(workspace, key, change["after"])
    workspace.save(update_fields=list(changed))
    record(workspace=workspace, actor=actor, action="settings.updated", target=workspace.name,
           details=changed)
    return workspace


@transaction.atomic
def workspace_create(*, name: str, slug: str, plan: str, owner_email: str, actor: Actor,
                     base_url: str) -> tuple[Workspace, Membership | Invitation]:
    """Create a workspace with its first owner: a member at once when the email has an
    account, otherwise an owner invitation mailed to it."""
    from .models import Plan

    name, slug = (name or "").strip(), (slug or "").strip().lower()
    if not name or not slug:
        raise ServiceError("A workspace needs a name and a slug.")
    name_max = Workspace._meta.get_field("name").max_length
    slug_max = Workspace._meta.get_field("slug").max_length
    if len(name) > name_max:
        raise ServiceError(f"A workspace name can be at most {name_max} characters.")
    if len(slug) > slug_max or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", slug):
        raise ServiceError(f"A slug is lowercase letters, digits, hyphens and underscores (at "
                           f"most {slug_max} characters), such as acme-labs: it is part of every "
                           "URL.")
    if plan not in Plan.values:
        raise ServiceError(f"Choose a plan: {', '.join(Plan.values)}.")
    try:
        validate_email(owner_email.strip())
    except ValidationError:
        raise ServiceError(f"{owner_email} is not a valid email address.") from None
    taken = ServiceError(f"There is already a workspace with the slug {slug}.")
    if Workspace.objects.filter(slug=slug).exists():
        raise taken
    try:
        with transaction.atomic():
            workspace = Workspace.objects.create(name=name, slug=slug, plan=plan)
    except IntegrityError:  # made by someone else a moment ago
        raise taken from None
    record(workspace=workspace, actor=actor, action="workspace.created", target=name,
           details={"plan": plan})
    user = User.objects.filter(email__iexact=owner_email.strip()).first()
    if user is not None:
        membership = Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
        record(workspace=workspace, actor=actor, action="member.added", target=user.email,
               details={"role": Role.OWNER})
        return workspace, membership
    email = User.objects.normalize_email(owner_email.strip()).lower()
    invitation = Invitation(workspace=workspace, email=email, role=Role.OWNER,
                            invited_by=actor.user)
    key = _new_key(invitation, timezone.now())
    invitation.save()
    record(workspace=workspace, actor=actor, action="invitation.sent", target=email,
           details={"role": Role.OWNER})
    _send_invitation(invitation, key, base_url, actor.user)
    return workspace, invitation


# Members -----------------------------------------------------------------------------------


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
    revoked = tokens_revoke_for_member(membership=membership, actor=actor, reason="member removed")
    email, role = membership.user.email, membership.role
    membership.delete()
    record(
        workspace=workspace, actor=actor, action="member.removed", target=email,
        details={"role": role, "tokens_revoked": revoked},
    )


@transaction.atomic
def user_update(*, user: User, name: str, is_staff: bool, actor: Actor) -> User:
    """Change a user's name and staff flag, as staff do in Django's admin, recorded in each
    workspace the user belongs to (staff read every workspace in Django's admin)."""
    user = User.objects.select_for_update(no_key=True).get(pk=user.pk)
    changes = {field: {"before": getattr(user, attr), "after": value}
               for field, attr, value in (("name", "name", name), ("staff", "is_staff", is_staff))
               if getattr(user, attr) != value}
    if not changes:
        return user
    user.name, user.is_staff = name, is_staff
    user.save(update_fields=["name", "is_staff"])
    for membership in Membership.objects.select_related("workspace").filter(user=user):
        record(workspace=membership.workspace, actor=actor, action="user.changed",
               target=user.email, details=changes)
    return user


@transaction.atomic
def user_set_active(*, user: User, active: bool, actor: Actor) -> User:
    """Deactivate (or reactivate) a user everywhere, as staff do in Django's admin.

    Deactivating revokes every access token they created, in every workspace, and records it
    in each workspace they belong to.
    """
    user = User.objects.select_for_update(no_key=True).get(pk=user.pk)
    if user.is_active == active:
        return user
    user.is_active = active
    user.save(update_fields=["is_active"])
    for membership in Membership.objects.select_related("workspace", "user").filter(user=user):
        revoked = 0
        if not active:
            revoked = tokens_revoke_for_member(membership=membership, actor=actor,
                                               reason="user deactivated")
        record(
            workspace=membership.workspace, actor=actor,
            action="user.deactivated" if not active else "user.reactivated",
            target=user.email, details={"tokens_revoked": revoked} if not active else {},
        )
    return user


# Invitations -------------------------------------------------------------------------------


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def invitation_url(base_url: str, key: str) -> str:
    return base_url.rstrip("/") + reverse("invitation", args=[key])


def _send_invitation(invitation: Invitation, key: str, base_url: str, inviter: User | None):
    try:
        send_now(compose("invitation", invitation.email, {
            "invitation": invitation,
            "inviter": inviter,
            "url": invitation_url(base_url, key),
        }))
    except Exception as error:
        raise ServiceError(
            "The invitation mail could not be sent, so nothing was saved. Try again shortly."
        ) from error


def _new_key(invitation: Invitation, now) -> str:
    key = secrets.token_urlsafe(32)
    invitation.key_digest = _digest(key)
    invitation.sent_at = now
    invitation.expires_at = now + INVITATION_LIFETIME
    return key


@transaction.atomic
def member_invite(
    *, workspace: Workspace, acting: Membership, actor: Actor, email: str, role: str,
    base_url: str,
) -> Invitation:
    """Invite `email` to join with `role`, by mail. The answer does not depend on whether the
    email has an account anywhere. Inviting an email that has an open invitation sends it again
    (with a new key, the new role and a new expiry)."""
    email = User.objects.normalize_email((email or "").strip()).lower()
    if not email:
        raise ServiceError("Enter an email address.", "email")
    (acting,) = lock_members(acting)
    refusal = permissions.refuse_invitation(acting, role)
    if refusal:
        raise Forbidden(refusal, "role")
    if Membership.objects.filter(workspace=workspace, user__email__iexact=email).exists():
        raise ServiceError(f"{email} is already a member of {workspace.name}.", "email")
    now = timezone.now()
    invitation = (
        Invitation.objects.select_for_update(no_key=True)
        .annotate(lemail=Lower("email"))
        .filter(workspace=workspace, lemail=email, accepted_at__isnull=True,
                cancelled_at__isnull=True)
        .first()
    )
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
    key = _new_key(invitation, now)
    try:
        with transaction.atomic():
            invitation.save()
    except IntegrityError:
        raise ServiceError(f"{email} was invited a moment ago. Reload the page.", "email") from None
    record(workspace=workspace, actor=actor, action=action, target=email, details=details)
    _send_invitation(invitation, key, base_url, actor.user)
    return invitation


def _lock_open_invitation(invitation: Invitation, acting: Membership) -> tuple[Invitation, Membership]:
    (acting,) = lock_members(acting)
    invitation = Invitation.objects.select_for_update(no_key=True).select_related("workspace").filter(
        pk=invitation.pk, workspace_id=acting.workspace_id).first()
    if invitation is None or invitation.accepted_at or invitation.cancelled_at:
        raise ServiceError("That invitation was accepted or cancelled meanwhile.")
    refusal = permissions.refuse_invitation(acting, invitation.role)
    if refusal:
        raise Forbidden(refusal)
    return invitation, acting


@transaction.atomic
def invitation_resend(*, invitation: Invitation, acting: Membership, actor: Actor,
                      base_url: str) -> Invitation:
    """Send the invitation again with a new key (the old link stops working) and a new expiry."""
    invitation, acting = _lock_open_invitation(invitation, acting)
    key = _new_key(invitation, timezone.now())
    invitation.save(update_fields=["key_digest", "sent_at", "expires_at"])
    record(workspace=invitation.workspace, actor=actor, action="invitation.resent",
           target=invitation.email, details={"role": invitation.role})
    _send_invitation(invitation, key, base_url, actor.user)
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
    invitation = Invitation.objects.select_for_update(no_key=True).select_related("workspace").filter(
        pk=invitation.pk, key_digest=invitation.key_digest).first()
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
    if User.objects.filter(email__iexact=invitation.email).exists():
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
    if user.email.lower() != invitation.email.lower():
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


# Groups ------------------------------------------------------------------------------------


def _check_name(model, workspace: Workspace, name: str, exclude_pk=None, noun="name") -> str:
    name = (name or "").strip()
    if not name:
        raise ServiceError(f"Enter a {noun}.", "name")
    if len(name) > 100:
        raise ServiceError(f"The {noun} can be at most 100 characters.", "name")
    clash = model.objects.annotate(lname=Lower("name")).filter(
        workspace=workspace, lname=name.lower()
    )
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise ServiceError(f"There is already a {noun} called “{name}” here.", "name")
    return name


def _save_unique(obj, noun: str):
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        raise ServiceError(f"There is already a {noun} called “{obj.name}” here.", "name") from None


def _lock_group(group: Group, acting: Membership) -> tuple[Group, Membership]:
    (acting,) = lock_members(acting)
    _require(acting, Perm.MANAGE_GROUPS)
    locked = Group.objects.select_for_update(no_key=True).select_related("workspace").filter(
        pk=group.pk, workspace_id=acting.workspace_id).first()
    if locked is None:
        raise ServiceError("That group was deleted meanwhile.", status=404)
    return locked, acting


@transaction.atomic
def group_create(*, workspace: Workspace, acting: Membership, actor: Actor, name: str) -> Group:
    (acting,) = lock_members(acting)
    _require(acting, Perm.MANAGE_GROUPS)
    name = _check_name(Group, workspace, name, noun="group name")
    group = Group(workspace=workspace, name=name)
    _save_unique(group, "group")
    record(workspace=workspace, actor=actor, action="group.created", target=name)
    return group


@transaction.atomic
def group_rename(*, group: Group, acting: Membership, actor: Actor, name: str) -> Group:
    group, acting = _lock_group(group, acting)
    name = _check_name(Group, group.workspace, name, exclude_pk=group.pk, noun="group name")
    before = group.name
    if before == name:
        return group
    group.name = name
    _save_unique(group, "group")
    record(
        workspace=group.workspace, actor=actor, action="group.renamed", target=name,
        details={"before": before, "after": name},
    )
    return group


@transaction.atomic
def group_delete(*, group: Group, acting: Membership, actor: Actor) -> None:
    group, acting = _lock_group(group, acting)
    workspace, name = group.workspace, group.name
    members = group.members.count()
    group.delete()
    record(
        workspace=workspace, actor=actor, action="group.deleted", target=name,
        details={"members": members},
    )


@transaction.atomic
def group_add_member(*, group: Group, acting: Membership, actor: Actor,
                     membership: Membership) -> None:
    group, acting = _lock_group(group, acting)
    if membership.workspace_id != group.workspace_id:
        raise ServiceError("That person is not a member of this workspace.", "member")
    if group.members.filter(pk=membership.pk).exists():
        raise ServiceError(f"{membership.user.email} is already in {group.name}.", "member")
    group.members.add(membership)
    record(
        workspace=group.workspace, actor=actor, action="group.member_added", target=group.name,
        details={"member": membership.user.email},
    )


@transaction.atomic
def group_remove_member(*, group: Group, acting: Membership, actor: Actor,
                        membership: Membership) -> None:
    group, acting = _lock_group(group, acting)
    if not group.members.filter(pk=membership.pk).exists():
        raise ServiceError(f"{membership.user.email} is not in {group.name}.", "member")
    group.members.remove(membership)
    record(
        workspace=group.workspace, actor=actor, action="group.member_removed", target=group.name,
        details={"member": membership.user.email},
    )


# Custom roles ------------------------------------------------------------------------------

def _role_snapshot(role: CustomRole, group_names) -> dict:
    return {
        "name": role.name,
        "description": role.description,
        "permissions": [label for field, label in GRANTS if getattr(role, field)],
        "groups": sorted(group_names),
    }


def _groups_of(workspace: Workspace, groups) -> list[Group]:
    groups = list(groups)
    if any(g.workspace_id != workspace.pk for g in groups):
        raise ServiceError("Choose groups of this workspace.", "groups")
    return groups


def _lock_role(role: CustomRole, acting: Membership) -> tuple[CustomRole, Membership]:
    (acting,) = lock_members(acting)
    _require(acting, Perm.MANAGE_CUSTOM_ROLES)
    locked = CustomRole.objects.select_for_update(no_key=True).select_related("workspace").filter(
        pk=role.pk, workspace_id=acting.workspace_id).first()
    if locked is None:
        raise ServiceError("That custom role was deleted meanwhile.", status=404)
    return locked, acting


@transaction.atomic
def custom_role_create(
    *, workspace: Workspace, acting: Membership, actor: Actor, name: str,
    description: str = "", groups=(), **grants: bool,
) -> CustomRole:
    (acting,) = lock_members(acting)
    _require(acting, Perm.MANAGE_CUSTOM_ROLES)
    name = _check_name(CustomRole, workspace, name, noun="custom role name")
    groups = _groups_of(workspace, groups)
    role = CustomRole(workspace=workspace, name=name,
                      description=(description or "").strip()[:500])
    for field, _ in GRANTS:
        setattr(role, field, bool(grants.get(field, False)))
    _save_unique(role, "custom role")
    role.groups.set(groups)
    record(
        workspace=workspace, actor=actor, action="custom_role.created", target=name,
        details=_role_snapshot(role, [g.name for g in groups]),
    )
    return role


@transaction.atomic
def custom_role_update(
    *, role: CustomRole, acting: Membership, actor: Actor, name: str, description: str = "",
    groups=(), **grants: bool,
) -> CustomRole:
    """Change a custom role; the audit event shows before → after of what changed, as read
    under the role's lock."""
    role, acting = _lock_role(role, acting)
    workspace = role.workspace
    name = _check_name(CustomRole, workspace, name, exclude_pk=role.pk, noun="custom role name")
    groups = _groups_of(workspace, groups)
    before = _role_snapshot(role, role.groups.values_list("name", flat=True))
    role.name = name
    role.description = (description or "").strip()[:500]
    for field, _ in GRANTS:
        setattr(role, field, bool(grants.get(field, False)))
    _save_unique(role, "custom role")
    role.groups.set(groups)
    after = _role_snapshot(role, [g.name for g in groups])
    if before != after:
        record(
            workspace=workspace, actor=actor, action="custom_role.updated", target=name,
            details={k: {"before": before[k], "after": after[k]} for k in after
                     if before[k] != after[k]},
        )
    return role


@transaction.atomic
def custom_role_delete(*, role: CustomRole, acting: Membership, actor: Actor) -> None:
    role, acting = _lock_role(role, acting)
    workspace = role.workspace
    snapshot = _role_snapshot(role, role.groups.values_list("name", flat=True))
    role.delete()
    record(
        workspace=workspace, actor=actor, action="custom_role.deleted", target=snapshot["name"],
        details=snapshot,
    )
