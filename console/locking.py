"""Row locks, taken one way everywhere so that two writes at once wait for each other instead of
deadlocking.

Every lock is PostgreSQL's FOR NO KEY UPDATE (what an UPDATE that keeps the key takes), not FOR
UPDATE: a transaction that inserts a row pointing at a locked row (an audit event, a run, an
invitation, all pointing at the workspace) checks that foreign key at commit with a key-share
lock, which FOR UPDATE would block. It would then wait for the lock holder, while the holder
waits for a row that transaction holds: a deadlock. FOR NO KEY UPDATE still excludes every
other lock taken here. Only the rows of the queryset's own table are locked (`of=("self",)`),
never the rows `select_related` joins in, and several rows are locked in id order.

The order itself (the workspace, then users, then owners' memberships, then other memberships,
then the object changed) is the features' to keep: see workspaces/selectors.py.
"""

from __future__ import annotations


def for_update(queryset):
    """`queryset`'s rows locked FOR NO KEY UPDATE (their own table only) when it is read; in id
    order unless the queryset orders them otherwise. SQLite locks the whole database instead
    (transactions begin IMMEDIATE)."""
    if not queryset.query.order_by:
        queryset = queryset.order_by("pk")
    return queryset.select_for_update(of=("self",), no_key=True)
