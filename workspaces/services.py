"""Every write to workspaces, members, groups and custom roles.

Each function is atomic and writes its own audit event in the same transaction. Bad input
raises `ServiceError` with a message fit for the user, and changes nothing.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from .audit import Actor, record
from .models import CustomRole, Group, Membership, Role, User, Workspace


class ServiceError(Exception):
    """A write refused for a reason the user can act on."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def _owner_count(workspace_id: int) -> int:
    # Locks the owners' rows, always in id order and before any other row, so two concurrent
    # demotions can neither both see a second owner nor deadlock.
    return len(
        Membership.objects.select_for_update()
        .filter(workspace_id=workspace_id, role=Role.OWNER)
        .order_by("id")
        .values_list("id", flat=True)
    )


@transaction.atomic
def workspace_update_settings(
    *, workspace: Workspace, actor: Actor, allow_codex_local: bool, allow_access_tokens: bool
) -> Workspace:
    """Switch the Codex Local toggles; records before and after of whatever changed."""
    before = {
        "allow_codex_local": workspace.allow_codex_local,
        "allow_access_tokens": workspace.allow_access_tokens,
    }
    after = {"allow_codex_local": allow_codex_local, "allow_access_tokens": allow_access_tokens}
    changed = {k: {"before": before[k], "after": after[k]} for k in after if before[k] != after[k]}
    if not changed:
        return workspace
    Workspace.objects.filter(pk=workspace.pk).update(**after)
    workspace.allow_codex_local = allow_codex_local
    workspace.allow_access_tokens = allow_access_tokens
    record(
        workspace=workspace, actor=actor, action="settings.updated", target=workspace.name,
        details=changed,
    )
    return workspace


@transaction.atomic
def member_add(*, workspace: Workspace, actor: Actor, email: str, role: str) -> Membership:
    """Add an existing user, found by email, to the workspace."""
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise ServiceError(
            f"No user has the email address {email.strip()}. They need an account first.", "email"
        )
    if role not in Role.values:
        raise ServiceError("Choose a valid role.", "role")
    try:
        with transaction.atomic():
            membership = Membership.objects.create(workspace=workspace, user=user, role=role)
    except IntegrityError:
        raise ServiceError(
            f"{user.email} is already a member of {workspace.name}.", "email"
        ) from None
    record(
        workspace=workspace, actor=actor, action="member.added", target=user.email,
        details={"role": role},
    )
    return membership


@transaction.atomic
def member_change_role(*, membership: Membership, actor: Actor, role: str) -> Membership:
    """Change a member's built-in role; a workspace always keeps at least one owner."""
    if role not in Role.values:
        raise ServiceError("Choose a valid role.", "role")
    owners = _owner_count(membership.workspace_id)
    membership = Membership.objects.select_for_update().select_related("user", "workspace").get(
        pk=membership.pk
    )
    before = membership.role
    if before == role:
        return membership
    if before == Role.OWNER and owners <= 1:
        raise ServiceError(
            f"{membership.user.email} is the only owner. Make someone else an owner first.", "role"
        )
    membership.role = role
    membership.save(update_fields=["role"])
    record(
        workspace=membership.workspace, actor=actor, action="member.role_changed",
        target=membership.user.email, details={"before": before, "after": role},
    )
    return membership


@transaction.atomic
def member_remove(*, membership: Membership, actor: Actor) -> None:
    """Remove a member: their group places go, and their access tokens are revoked."""
    from tokens.services import tokens_revoke_for_member

    owners = _owner_count(membership.workspace_id)
    membership = Membership.objects.select_for_update().select_related("user", "workspace").get(
        pk=membership.pk
    )
    workspace = membership.workspace
    if membership.role == Role.OWNER and owners <= 1:
        raise ServiceError(
            f"{membership.user.email} is the only owner and cannot be removed. "
            "Make someone else an owner first."
        )
    revoked = tokens_revoke_for_member(membership=membership, actor=actor)
    email, role = membership.user.email, membership.role
    membership.delete()
    record(
        workspace=workspace, actor=actor, action="member.removed", target=email,
        details={"role": role, "tokens_revoked": revoked},
    )


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


@transaction.atomic
def group_create(*, workspace: Workspace, actor: Actor, name: str) -> Group:
    name = _check_name(Group, workspace, name, noun="group name")
    group = Group(workspace=workspace, name=name)
    _save_unique(group, "group")
    record(workspace=workspace, actor=actor, action="group.created", target=name)
    return group


@transaction.atomic
def group_rename(*, group: Group, actor: Actor, name: str) -> Group:
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
def group_delete(*, group: Group, actor: Actor) -> None:
    workspace, name = group.workspace, group.name
    members = group.members.count()
    group.delete()
    record(
        workspace=workspace, actor=actor, action="group.deleted", target=name,
        details={"members": members},
    )


@transaction.atomic
def group_add_member(*, group: Group, actor: Actor, membership: Membership) -> None:
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
def group_remove_member(*, group: Group, actor: Actor, membership: Membership) -> None:
    if not group.members.filter(pk=membership.pk).exists():
        raise ServiceError(f"{membership.user.email} is not in {group.name}.", "member")
    group.members.remove(membership)
    record(
        workspace=group.workspace, actor=actor, action="group.member_removed", target=group.name,
        details={"member": membership.user.email},
    )


def _role_snapshot(role: CustomRole, group_names: list[str]) -> dict:
    return {
        "name": role.name,
        "description": role.description,
        "permissions": [
            label
            for label, on in (
                ("Codex Local", role.grants_codex_local),
                ("Codex access tokens", role.grants_access_tokens),
            )
            if on
        ],
        "groups": sorted(group_names),
    }


def _groups_of(workspace: Workspace, groups) -> list[Group]:
    groups = list(groups)
    if any(g.workspace_id != workspace.pk for g in groups):
        raise ServiceError("Choose groups of this workspace.", "groups")
    return groups


@transaction.atomic
def custom_role_create(
    *,
    workspace: Workspace,
    actor: Actor,
    name: str,
    description: str = "",
    grants_codex_local: bool = False,
    grants_access_tokens: bool = False,
    groups=(),
) -> CustomRole:
    name = _check_name(CustomRole, workspace, name, noun="custom role name")
    groups = _groups_of(workspace, groups)
    role = CustomRole(
        workspace=workspace, name=name, description=(description or "").strip()[:500],
        grants_codex_local=grants_codex_local, grants_access_tokens=grants_access_tokens,
    )
    _save_unique(role, "custom role")
    role.groups.set(groups)
    record(
        workspace=workspace, actor=actor, action="custom_role.created", target=name,
        details=_role_snapshot(role, [g.name for g in groups]),
    )
    return role


@transaction.atomic
def custom_role_update(
    *,
    role: CustomRole,
    actor: Actor,
    name: str,
    description: str = "",
    grants_codex_local: bool = False,
    grants_access_tokens: bool = False,
    groups=(),
) -> CustomRole:
    workspace = role.workspace
    name = _check_name(CustomRole, workspace, name, exclude_pk=role.pk, noun="custom role name")
    groups = _groups_of(workspace, groups)
    before = _role_snapshot(role, list(role.groups.values_list("name", flat=True)))
    role.name = name
    role.description = (description or "").strip()[:500]
    role.grants_codex_local = grants_codex_local
    role.grants_access_tokens = grants_access_tokens
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
def custom_role_delete(*, role: CustomRole, actor: Actor) -> None:
    workspace = role.workspace
    snapshot = _role_snapshot(role, list(role.groups.values_list("name", flat=True)))
    role.delete()
    record(
        workspace=workspace, actor=actor, action="custom_role.deleted", target=snapshot["name"],
        details=snapshot,
    )

