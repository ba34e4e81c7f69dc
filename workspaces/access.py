"""The helpers every workspace view calls to find the workspace and check access."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from .models import Membership, Workspace
from .permissions import ASK_FOR, ASK_FOR_ADMIN, Perm, can

SESSION_KEY = "current_workspace"


class MissingPermission(PermissionDenied):
    """A member lacks a permission; the 403 page shows what to ask for."""

    def __init__(self, perm: Perm, membership: Membership):
        self.perm = perm
        self.membership = membership
        super().__init__(ASK_FOR.get(perm, ASK_FOR_ADMIN))


def workspace_access(request, slug: str, perm: Perm | None = None) -> tuple[Workspace, Membership]:
    """(workspace, membership) for the signed-in user: 404 for outsiders, 403 without `perm`.

    Also remembers the workspace as the session's current one (for /admin/... shortcuts).
    """
    membership = (
        Membership.objects.select_related("workspace", "user")
        .filter(workspace__slug=slug, user_id=request.user.pk)
        .first()
    )
    if membership is None:
        raise Http404("No such workspace.")
    if perm is not None and not can(membership, perm):
        raise MissingPermission(perm, membership)
    if request.session.get(SESSION_KEY) != slug:
        request.session[SESSION_KEY] = slug
    return membership.workspace, membership


def current_membership(request) -> Membership | None:
    """The workspace last opened in this session, else the first one the user joined."""
    memberships = Membership.objects.select_related("workspace").filter(user_id=request.user.pk)
    slug = request.session.get(SESSION_KEY)
    if slug:
        found = memberships.filter(workspace__slug=slug).first()
        if found:
            return found
    return memberships.order_by("joined_at", "id").first()
