"""The signed-in user's way in: the workspace picker, the /admin/... shortcuts the product's
docs print, and a workspace's overview."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone

from tokens.interface import overview_figures

from .. import selectors
from ..access import current_membership, workspace_access
from ..layout import render_console


@login_required
def home(request):
    memberships = selectors.memberships_of(request.user)
    if len(memberships) == 1:
        return redirect("workspaces:overview", slug=memberships[0].workspace.slug)
    return render(request, "workspaces/picker.html", {"memberships": memberships})


def _shortcut(name):
    @login_required
    def view(request):
        membership = current_membership(request)
        if membership is None:
            return redirect("home")
        return redirect(name, slug=membership.workspace.slug)

    return view


settings_shortcut = _shortcut("workspaces:settings")
access_tokens_shortcut = _shortcut("tokens:list")


@login_required
def overview(request, slug):
    workspace, membership = workspace_access(request, slug)
    return render_console(request, "workspaces/overview.html", membership, "overview", {
        **selectors.overview_counts(workspace, membership),
        **overview_figures(membership, timezone.now()),
    })


