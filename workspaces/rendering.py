"""Rendering a page inside the console layout, shared by every app's views."""

from django.core.paginator import Paginator
from django.shortcuts import render

from .models import Membership
from .permissions import Perm, perms_of, plan_supports_tokens

PAGE_SIZE = 25


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


def created_tokens_here(membership) -> bool:
    from tokens.models import AccessToken

    return AccessToken.objects.filter(workspace_id=membership.workspace_id,
                                      created_by_id=membership.user_id).exists()


def paginate(request, queryset, per_page=PAGE_SIZE):
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def apply_error(form, error):
    """Show a service's refusal on the form: on its field when the form has it."""
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)
