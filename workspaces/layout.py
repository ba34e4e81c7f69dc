"""Every workspace page is rendered inside the console layout: the sidebar needs the workspace,
what the viewer may open, and the viewer's other workspaces."""

from django.shortcuts import render

from tokens.interface import created_tokens_here

from .models import Membership
from .permissions import Perm, perms_of, plan_supports_tokens


def render_console(request, template, membership, active, context=None, status=200):
    """Render a page in the console layout, with what the sidebar needs."""
    perms = perms_of(membership)
    ctx = {
        "workspace": membership.workspace,
        "membership": membership,
        "perms": {p.value for p in perms},
        "show_tokens_nav": Perm.VIEW_ACCESS_TOKENS in perms or created_tokens_here(membership),
        "tokens_plan": plan_supports_tokens(membership.workspace.plan),
        "active": active,
        "other_workspaces": Membership.objects.filter(user_id=membership.user_id)
        .exclude(pk=membership.pk)
        .select_related("workspace")
        .order_by("workspace__name"),
    }
    ctx.update(context or {})
    return render(request, template, ctx, status=status)
