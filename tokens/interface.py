"""The one door from workspaces into tokens (docs/architecture.md: the arrows).

Tokens build on workspaces; the workspace pages and services need a few things back: a
member's tokens revoked when they leave, and the token figures their pages show. They take them
from here and nowhere else in this app, so the apps' dependency stays one arrow and this list
says all it carries.
"""

from __future__ import annotations

from django.db.models import Count, OuterRef, Subquery

from console.audit import Actor
from workspaces.models import Membership, Workspace

from . import selectors
from .models import AccessToken, latest_expiry
from .services import lifecycle


def revoke_member_tokens(*, membership: Membership, actor: Actor, reason: str) -> int:
    """Revoke every active token the member created in the workspace, inside the caller's
    transaction (which has locked the membership): a member removed or a user deactivated.
    Returns how many."""
    return lifecycle.tokens_revoke_for_member(membership=membership, actor=actor, reason=reason)


def active_token_counts(workspace: Workspace, now) -> Subquery:
    """An annotation for memberships of `workspace`: how many active tokens each created."""
    return Subquery(
        AccessToken.objects.filter(workspace=workspace, created_by=OuterRef("user_id"))
        .active(now).values("created_by").annotate(n=Count("id")).values("n"))


def created_tokens_here(membership: Membership) -> bool:
    return selectors.created_tokens_here(membership)


def overview_figures(membership: Membership, now) -> dict:
    return selectors.overview_figures(membership, now)


def settings_figures(workspace: Workspace, now) -> dict:
    """What the Settings page says about tokens: how many outlive the maximum lifetime (and
    the latest expiry it allows), how many are suspended now, and how many would be if the
    access token toggle went off."""
    suspended_now = selectors.suspended_creators(workspace)
    if_turned_off = (selectors.suspended_creators(workspace, allow_access_tokens=False)
                     if workspace.allow_access_tokens else suspended_now)
    limit = latest_expiry(workspace, now)
    outliving = selectors.outliving_counts(workspace, limit, now)
    return {
        "outliving": outliving["n"], "outliving_never": outliving["never"], "latest": limit,
        "suspended": {"tokens": sum(suspended_now.values()), "members": len(suspended_now)},
        "suspended_if_turned_off": {"tokens": sum(if_turned_off.values()),
                                    "members": len(if_turned_off)},
    }
