"""Row locks every service takes the same way, so two writes at once wait for each other
instead of deadlocking: the workspace row, then its owners' memberships, then other
memberships, each set in id order, then the object changed."""

from __future__ import annotations

from .errors import Forbidden
from .models import Membership, Role


def lock_owners(workspace_id: int) -> int:
    """How many owners the workspace has, with their rows locked (in id order, before any
    other membership), so two demotions at once can neither both see a second owner nor
    deadlock."""
    return len(
        Membership.objects.select_for_update()
        .filter(workspace_id=workspace_id, role=Role.OWNER)
        .order_by("id")
        .values_list("id", flat=True)
    )


def lock_members(*memberships: Membership) -> list[Membership]:
    """The given memberships re-read under lock, in id order; `Forbidden` if one has gone."""
    ids = {m.pk for m in memberships}
    locked = {
        m.pk: m
        for m in Membership.objects.select_for_update(of=("self",))
        .select_related("user", "workspace")
        .filter(pk__in=ids)
        .order_by("id")
    }
    if len(locked) != len(ids):
        raise Forbidden("That person is no longer a member of this workspace.")
    return [locked[m.pk] for m in memberships]
