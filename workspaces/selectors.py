"""Every read of workspaces, members, invitations, groups, custom roles and audit events that
a page or a service needs, and the reads under lock that services begin with.

Locks follow one order, so two writes at once wait for each other instead of deadlocking: the
workspace row, then users, then the owners' memberships, then other memberships (each set in
id order), then the object changed. A user's row comes before any membership (a deactivation
locks the user, then revokes the user's tokens; a token's creation locks the workspace, the
user, then the member). How a row is locked is `console.locking.for_update`.
"""

from __future__ import annotations

from django.db.models import Count, Prefetch, Q

from console.errors import Forbidden, ServiceError
from console.locking import for_update

from .models import AuditEvent, CustomRole, Group, Invitation, Membership, Role, ServiceAccount


def lock_owners(workspace_id: int) -> int:
    """How many owners the workspace has, with their rows locked (in id order, before any
    other membership), so two demotions at once can neither both see a second owner nor
    deadlock."""
    return len(for_update(Membership.objects.filter(workspace_id=workspace_id, role=Role.OWNER))
               .values_list("id", flat=True))


def lock_members(*memberships: Membership) -> list[Membership]:
    """The given memberships re-read under lock, in id order; `Forbidden` if one has gone."""
    ids = {m.pk for m in memberships}
    locked = {m.pk: m for m in for_update(
        Membership.objects.select_related("user", "workspace").filter(pk__in=ids))}
    if len(locked) != len(ids):
        raise Forbidden("That person is no longer a member of this workspace.")
    return [locked[m.pk] for m in memberships]


# Members and invitations ------------------------------------------------------------------


def memberships_of(user) -> list[Membership]:
    """The user's workspaces (the picker), by name."""
    return list(Membership.objects.filter(user=user).select_related("workspace")
                .order_by("workspace__name"))


def overview_counts(workspace, membership: Membership) -> dict:
    """The overview's figures about people: members and admins, and the viewer's own groups
    with their custom roles."""
    return {
        "counts": workspace.memberships.filter(user__is_service_account=False).aggregate(
            members=Count("id"), admins=Count("id", filter=~Q(role=Role.MEMBER))),
        "my_groups": list(membership.groups.prefetch_related("custom_roles").order_by("name")),
    }


def member_rows(workspace, q: str = ""):
    """The Members page's rows: each person with their user and groups, by email, filtered by
    a part of their email or name. (Service accounts have their own section.)"""
    rows = (
        Membership.objects.filter(workspace=workspace, user__is_service_account=False)
        .select_related("user")
        .prefetch_related(Prefetch("groups", queryset=Group.objects.order_by("name")))
        .order_by("user__email", "id")
    )
    if q:
        rows = rows.filter(Q(user__email__icontains=q) | Q(user__name__icontains=q))
    return rows


def owner_count(workspace) -> int:
    return workspace.memberships.filter(role=Role.OWNER).count()


def member_in(workspace, member_id: int) -> Membership | None:
    return Membership.objects.select_related("user", "workspace").filter(
        workspace=workspace, pk=member_id).first()


PENDING_SHOWN = 100


def pending_invitations(workspace) -> list[Invitation]:
    """Open invitations (expired ones included, to resend), newest first."""
    return list(
        Invitation.objects.filter(workspace=workspace, accepted_at__isnull=True,
                                  cancelled_at__isnull=True)
        .select_related("invited_by").order_by("-sent_at", "-id")[:PENDING_SHOWN]
    )


def open_invitation_in(workspace, invitation_id: int) -> Invitation | None:
    return Invitation.objects.select_related("workspace").filter(
        workspace=workspace, pk=invitation_id, accepted_at__isnull=True,
        cancelled_at__isnull=True).first()


# Service accounts -------------------------------------------------------------------------


def service_account_rows(workspace):
    """The Members page's service accounts, by name, each with its user and membership (its
    groups prefetched)."""
    return (ServiceAccount.objects.filter(workspace=workspace)
            .select_related("user", "created_by").order_by("name", "id"))


def with_groups(service_accounts) -> None:
    """Each service account's groups here (`.groups`, by name), in one query for them all."""
    by_user = {a.user_id: a for a in service_accounts}
    for account in service_accounts:
        account.groups = []
    if not by_user:
        return
    rows = (Group.members.through.objects.filter(
        membership__workspace_id=service_accounts[0].workspace_id,
        membership__user_id__in=list(by_user))
        .values_list("membership__user_id", "group__id", "group__name")
        .order_by("group__name", "group__id"))
    for user_id, group_id, name in rows:
        by_user[user_id].groups.append({"id": group_id, "name": name})


def groups_with_roles(membership: Membership) -> list[Group]:
    """A member's groups here, by name, with the custom roles each holds."""
    return list(membership.groups.prefetch_related(
        Prefetch("custom_roles", queryset=CustomRole.objects.order_by("name"))).order_by("name"))


def service_account_of(workspace_id: int, user_id: int) -> ServiceAccount | None:
    return ServiceAccount.objects.filter(workspace_id=workspace_id, user_id=user_id).first()


def service_account_in(workspace, service_account_id: int) -> ServiceAccount | None:
    return ServiceAccount.objects.select_related("user", "workspace", "created_by").filter(
        workspace=workspace, pk=service_account_id).first()


def membership_of_service_account(service_account: ServiceAccount) -> Membership | None:
    return Membership.objects.select_related("user", "workspace").filter(
        workspace_id=service_account.workspace_id, user_id=service_account.user_id).first()


def lock_service_account(service_account: ServiceAccount) -> ServiceAccount:
    """The service account re-read under lock; `ServiceError` (404) if it was removed."""
    locked = for_update(ServiceAccount.objects.select_related("user", "workspace").filter(
        pk=service_account.pk)).first()
    if locked is None:
        raise ServiceError("That service account was removed meanwhile.", status=404)
    return locked


# Groups and custom roles ------------------------------------------------------------------


def group_rows(workspace):
    return (
        Group.objects.filter(workspace=workspace)
        .prefetch_related(
            Prefetch("members", queryset=Membership.objects.select_related("user")
                     .order_by("user__email")),
            Prefetch("custom_roles", queryset=CustomRole.objects.order_by("name")),
        )
        .order_by("name", "id")
    )


def group_in(workspace, group_id: int) -> Group | None:
    return Group.objects.select_related("workspace").filter(workspace=workspace,
                                                            pk=group_id).first()


def custom_role_rows(workspace):
    return (
        CustomRole.objects.filter(workspace=workspace)
        .prefetch_related(Prefetch("groups", queryset=Group.objects.order_by("name")))
        .order_by("name", "id")
    )


def custom_role_in(workspace, role_id: int) -> CustomRole | None:
    return CustomRole.objects.select_related("workspace").filter(workspace=workspace,
                                                                 pk=role_id).first()


# Audit events -----------------------------------------------------------------------------


def audit_events(workspace, *, action: str = "", actor: str = "", low=None, high=None):
    """The workspace's audit events, filtered: an action, an actor's email (any case), a time
    range [low, high)."""
    events = AuditEvent.objects.filter(workspace=workspace)
    if action:
        events = events.filter(action=action)
    if actor:
        events = events.filter(actor_email__iexact=actor.strip())
    if low:
        events = events.filter(created_at__gte=low)
    if high:
        events = events.filter(created_at__lt=high)
    return events
