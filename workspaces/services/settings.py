"""Workspaces and their settings: creating a workspace with its first owner, and the Codex
Local toggles and maximum token lifetime (Settings and Permissions)."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from console.audit import Actor, changes
from console.errors import ServiceError
from console.locking import for_update

from .. import permissions
from ..audit import record
from ..models import (
    CHOOSE_A_LIFETIME,
    TOKEN_LIFETIME_DAYS,
    Invitation,
    Membership,
    Plan,
    Role,
    User,
    Workspace,
    normal_email,
    reserved_email,
)
from ..permissions import Perm
from ..selectors import lock_members
from .members import queue_invitation_mail

SETTINGS_FIELDS = ("allow_codex_local", "allow_access_tokens", "max_token_lifetime_days")
LIFETIMES = (None, *TOKEN_LIFETIME_DAYS)


@transaction.atomic
def workspace_update_settings(
    *, workspace: Workspace, acting: Membership, actor: Actor, **wanted
) -> Workspace:
    """Apply `wanted` (a subset of the Codex Local toggles) and record before and after of
    each value that changed, as read under the workspace's lock. Fields left out keep whatever
    the workspace has now, so two people saving different toggles at once both prevail."""
    unknown = set(wanted) - set(SETTINGS_FIELDS)
    if unknown:
        raise ServiceError(f"Unknown settings: {', '.join(sorted(unknown))}.")
    if wanted.get("max_token_lifetime_days", None) not in LIFETIMES:
        raise ServiceError(CHOOSE_A_LIFETIME, "max_token_lifetime_days")
    workspace = for_update(Workspace.objects.filter(pk=workspace.pk)).get()
    (acting,) = lock_members(acting)
    permissions.require(acting, Perm.MANAGE_SETTINGS)
    changed = changes(workspace, wanted)
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
                     ) -> tuple[Workspace, Membership | Invitation]:
    """Create a workspace with its first owner: a member at once when the email has an
    account, otherwise an owner invitation mailed to it (queued)."""
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
    if reserved_email(owner_email):
        raise ServiceError(f"{owner_email} belongs to a service account, which cannot be an "
                           "owner.")
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
    email = normal_email(owner_email)
    user = User.objects.filter(email=email).first()
    if user is not None:
        membership = Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
        record(workspace=workspace, actor=actor, action="member.added", target=user.email,
               details={"role": Role.OWNER})
        return workspace, membership
    invitation = Invitation(workspace=workspace, email=email, role=Role.OWNER,
                            invited_by=actor.user)
    queue_invitation_mail(invitation=invitation, inviter=actor.user, now=timezone.now())
    record(workspace=workspace, actor=actor, action="invitation.sent", target=email,
           details={"role": Role.OWNER})
    return workspace, invitation


