"""Service accounts: workspace principals that are not people (created, changed and removed by
owners and admins, each audited). A service account's user is a member of its workspace with
the member role; removing it revokes its access tokens, as removing a member does."""

from __future__ import annotations

import re
import uuid

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from console.audit import Actor, changes
from console.errors import Forbidden, ServiceError
from console.locking import for_update
from tokens.interface import revoke_member_tokens

from .. import permissions
from ..audit import record
from ..models import (
    SERVICE_ACCOUNT_DOMAIN,
    SERVICE_ACCOUNT_NAME_MAX,
    Membership,
    Role,
    ServiceAccount,
    User,
    Workspace,
)
from ..permissions import Perm
from ..selectors import lock_members, lock_service_account

# What `svc:<name>` may say: one word, so that it reads the same in a list, a CSV and a log.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
DESCRIPTION_MAX = ServiceAccount._meta.get_field("description").max_length


def _check(workspace: Workspace, name: str, description: str, exclude_pk=None) -> tuple[str, str]:
    name = (name or "").strip()
    if not name:
        raise ServiceError("Enter a name for the service account.", "name")
    if len(name) > SERVICE_ACCOUNT_NAME_MAX or not NAME_RE.fullmatch(name):
        raise ServiceError(
            f"A service account's name is letters, digits, dots, hyphens and underscores (at "
            f"most {SERVICE_ACCOUNT_NAME_MAX} characters), such as release-ci.", "name")
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise ServiceError(f"The description can be at most {DESCRIPTION_MAX} characters.",
                           "description")
    clash = ServiceAccount.objects.annotate(lname=Lower("name")).filter(
        workspace=workspace, lname=name.lower())
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise ServiceError(f"There is already a service account called “{name}” here.", "name")
    return name, description


def _taken(name: str) -> ServiceError:
    return ServiceError(f"There is already a service account called “{name}” here.", "name")


@transaction.atomic
def service_account_create(*, workspace: Workspace, acting: Membership, actor: Actor,
                           name: str, description: str = "") -> ServiceAccount:
    """Create a service account: its user (no usable password, an address that receives no
    mail), its membership (member role) and its row, audited."""
    list(for_update(Workspace.objects.filter(pk=workspace.pk)).values("pk"))
    (acting,) = lock_members(acting)
    permissions.require(acting, Perm.MANAGE_SERVICE_ACCOUNTS)
    if acting.workspace_id != workspace.pk:
        raise Forbidden(permissions.ASK_FOR_ADMIN)
    name, description = _check(workspace, name, description)
    user = User(email=f"svc-{uuid.uuid4().hex}@{SERVICE_ACCOUNT_DOMAIN}", name=name,
                is_service_account=True)
    user.set_unusable_password()
    user.save()
    Membership.objects.create(workspace=workspace, user=user, role=Role.MEMBER)
    try:
        with transaction.atomic():
            account = ServiceAccount.objects.create(workspace=workspace, user=user, name=name,
                                                    description=description,
                                                    created_by=actor.user)
    except IntegrityError:  # made by someone else a moment ago
        raise _taken(name) from None
    record(workspace=workspace, actor=actor, action="service_account.created",
           target=user.handle, details={"name": name, "description": description})
    return account


def _lock(service_account: ServiceAccount, acting: Membership,
          ) -> tuple[ServiceAccount, Membership, Membership]:
    """The service account, its membership and the acting one, locked in the house's order
    (workspace, users, memberships, then the object), and the policy asked again."""
    list(for_update(Workspace.objects.filter(pk=service_account.workspace_id)).values("pk"))
    list(for_update(User.objects.filter(pk=service_account.user_id)).values("pk"))
    target = Membership.objects.filter(workspace_id=service_account.workspace_id,
                                       user_id=service_account.user_id).first()
    if target is None:
        raise ServiceError("That service account was removed meanwhile.", status=404)
    target, acting = lock_members(target, acting)
    refusal = permissions.refuse_service_account_change(acting, target)
    if refusal:
        raise Forbidden(refusal)
    return lock_service_account(service_account), target, acting


@transaction.atomic
def service_account_update(*, service_account: ServiceAccount, acting: Membership,
                           actor: Actor, name: str, description: str = "") -> ServiceAccount:
    """Rename a service account or change its description (audited, before and after). Its
    tokens keep working and show the new name."""
    account, target, acting = _lock(service_account, acting)
    name, description = _check(account.workspace, name, description, exclude_pk=account.pk)
    changed = changes(account, {"name": name, "description": description})
    if not changed:
        return account
    before = account.user.handle
    account.name, account.description = name, description
    try:
        with transaction.atomic():
            account.save(update_fields=["name", "description"])
    except IntegrityError:
        raise _taken(name) from None
    User.objects.filter(pk=account.user_id).update(name=name)
    account.user.name = name
    record(workspace=account.workspace, actor=actor, action="service_account.changed",
           target=before, details=changed)
    return account


@transaction.atomic
def service_account_remove(*, service_account: ServiceAccount, acting: Membership,
                           actor: Actor) -> int:
    """Remove a service account: its access tokens are revoked (each audited), it leaves its
    groups, and its user is deactivated (kept, with its name, for the tokens and runs that
    name it). Returns how many tokens were revoked."""
    account, target, acting = _lock(service_account, acting)
    workspace, user = account.workspace, account.user
    revoked = revoke_member_tokens(membership=target, actor=actor,
                                   reason="service account removed")
    target.delete()
    account.delete()
    User.objects.filter(pk=user.pk).update(is_active=False)
    record(workspace=workspace, actor=actor, action="service_account.removed",
           target=user.handle, details={"tokens_revoked": revoked})
    return revoked
