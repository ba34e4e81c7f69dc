"""Row locks every service takes the same way, so two writes at once wait for each other
instead of deadlocking: the workspace row, then its owners' memberships, then other
memberships, each set in id order, then the object changed. A user's row comes before any
membership (a deactivation locks the user, then revokes the user's tokens; a token's creation
locks the workspace, the user, then the member).

Every lock is PostgreSQL's FOR NO KEY UPDATE (what an UPDATE that keeps the key takes), not FOR
UPDATE: a transaction that inserts a row pointing at a locked row (an audit event, a run, an
invitation, all pointing at the workspace) checks that foreign key at commit with a key-share
lock, which FOR UPDATE would block. It would then wait for the lock holder, while the holder
waits for a member or token that transaction holds: a deadlock. FOR NO KEY UPDATE still
excludes every other lock taken here."""

from __future__ import annotations

from .errors import Forbidden
from .models import Membership, Role


def lock_owners(workspace_id: int) -> int:
    """How many owners the workspace has, with their rows locked (in id order, before any
    other membership), so two demotions at once can neither both see a second owner nor
    deadlock."""
    return len(
        Membership.objects.select_for_update(no_key=True)
        .filter(workspace_id=workspace_id, role=Role.OWNER)
        .order_by("id")
        .values_list("id", flat=True)
    )


def lock_members(*memberships: Membership) -> list[Membership]:
    """The given memberships re-read under lock, in id order; `Forbidden` if one has gone."""
    ids = {m.pk for m in memberships}
    locked = {
        m.pk: m
        for m in Membership.objects.select_for_update(of=("self",), no_key=True)
        .select_related("user", "workspace")
        .filter(pk__in=ids)
        .order_by("id")
    }
    if len(locked) != len(ids):
        raise Forbidden("That person is no longer a member of this workspace.")
    return [locked[m.pk] for m in memberships]
