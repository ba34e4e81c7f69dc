"""Groups and custom roles: custom roles grant permissions to the members of the groups that
hold them."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from console.audit import Actor, changes
from console.errors import ServiceError
from console.locking import for_update

from .. import permissions
from ..audit import record
from ..models import CustomRole, Group, Membership, Workspace
from ..permissions import GRANTS, Perm
from ..selectors import lock_members


def _check_name(model, workspace: Workspace, name: str, exclude_pk=None, noun="name") -> str:
    name = (name or "").strip()
    if not name:
        raise ServiceError(f"Enter a {noun}.", "name")
    limit = model._meta.get_field("name").max_length
    if len(name) > limit:
        raise ServiceError(f"The {noun} can be at most {limit} characters.", "name")
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
    permissions.require(acting, Perm.MANAGE_GROUPS)
    locked = for_update(Group.objects.select_related("workspace").filter(
        pk=group.pk, workspace_id=acting.workspace_id)).first()
    if locked is None:
        raise ServiceError("That group was deleted meanwhile.", status=404)
    return locked, acting


@transaction.atomic
def group_create(*, workspace: Workspace, acting: Membership, actor: Actor, name: str) -> Group:
    (acting,) = lock_members(acting)
    permissions.require(acting, Perm.MANAGE_GROUPS)
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
        raise ServiceError(f"{membership.user.handle} is already in {group.name}.", "member")
    group.members.add(membership)
    record(
        workspace=group.workspace, actor=actor, action="group.member_added", target=group.name,
        details={"member": membership.user.handle},
    )


@transaction.atomic
def group_remove_member(*, group: Group, acting: Membership, actor: Actor,
                        membership: Membership) -> None:
    group, acting = _lock_group(group, acting)
    if not group.members.filter(pk=membership.pk).exists():
        raise ServiceError(f"{membership.user.handle} is not in {group.name}.", "member")
    group.members.remove(membership)
    record(
        workspace=group.workspace, actor=actor, action="group.member_removed", target=group.name,
        details={"member": membership.user.handle},
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
    permissions.require(acting, Perm.MANAGE_CUSTOM_ROLES)
    locked = for_update(CustomRole.objects.select_related("workspace").filter(
        pk=role.pk, workspace_id=acting.workspace_id)).first()
    if locked is None:
        raise ServiceError("That custom role was deleted meanwhile.", status=404)
    return locked, acting


@transaction.atomic
def custom_role_create(
    *, workspace: Workspace, acting: Membership, actor: Actor, name: str,
    description: str = "", groups=(), **grants: bool,
) -> CustomRole:
    (acting,) = lock_members(acting)
    permissions.require(acting, Perm.MANAGE_CUSTOM_ROLES)
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
    changed = changes(before, after)
    if changed:
        record(workspace=workspace, actor=actor, action="custom_role.updated", target=name,
               details=changed)
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

