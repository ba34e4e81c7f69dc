"""Settings and Permissions: the Codex Local toggles and the maximum token lifetime."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from console.audit import Actor
from console.errors import ServiceError
from console.rendering import apply_error
from tokens.interface import settings_figures

from .. import permissions
from ..access import workspace_access
from ..forms import SettingsForm
from ..layout import render_console
from ..permissions import Perm
from ..services import settings as settings_services


def _settings_page(request, workspace, membership, form, status=200):
    return render_console(request, "workspaces/settings.html", membership, "settings", {
        "form": form,
        **settings_figures(workspace, timezone.now()),
        "can_revoke_others": permissions.can_see_all_tokens(membership),
    }, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_SETTINGS)
    if request.method == "POST":
        form = SettingsForm(request.POST)
        if form.is_valid():
            try:
                settings_services.workspace_update_settings(
                    workspace=workspace, acting=membership, actor=Actor.from_request(request),
                    **form.changes(),
                )
            except ServiceError as error:
                apply_error(form, error)
                return _settings_page(request, workspace, membership, form, error.status)
            messages.success(request, "Settings saved.")
            return redirect("workspaces:settings", slug=slug)
        return _settings_page(request, workspace, membership, form, 400)
    form = SettingsForm.for_workspace(workspace)
    return _settings_page(request, workspace, membership, form)


