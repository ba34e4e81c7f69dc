"""Who may open the Access tokens pages: `workspaces.access`'s rule, and any member who created a
token in the workspace (to see and revoke their own, even after losing the permission)."""

from __future__ import annotations

from workspaces import permissions
from workspaces.access import MissingPermission, workspace_access
from workspaces.models import Membership, Workspace
from workspaces.permissions import Perm

from .selectors import created_tokens_here


def token_page_access(request, slug: str) -> tuple[Workspace, Membership]:
    """`workspace_access` for the Access tokens pages: whoever may use or manage tokens, and
    any member who created a token in the workspace."""
    workspace, membership = workspace_access(request, slug)
    if not permissions.can(membership, Perm.VIEW_ACCESS_TOKENS):
        if not permissions.can_open_token_page(membership, created_tokens_here(membership)):
            raise MissingPermission(Perm.VIEW_ACCESS_TOKENS, membership)
    return workspace, membership
