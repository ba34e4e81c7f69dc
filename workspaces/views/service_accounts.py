"""Service accounts on the Members page: create one, change its name or description, remove it
(which revokes its access tokens). Its own page, with its tokens, is tokens/views/
service_accounts.py."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from console.audit import Actor
from console.errors import ServiceError
from console.rendering import apply_error

from .. import selectors
from ..access import workspace_access
from ..forms import ServiceAccountForm
from ..layout import render_console
from ..permissions import Perm
from ..services import service_accounts as services
from .members import members_page


def service_account_or_404(workspace, service_account_id):
    account = selectors.service_account_in(workspace, service_account_id)
    if account is None:
        raise Http404("No such service account.")
    return account


def _page_url(slug, account) -> str:
    return reverse("tokens:service_account", args=[slug, account.pk])


@login_required
@require_POST
def service_account_create(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_SERVICE_ACCOUNTS)
    form = ServiceAccountForm(request.POST)
    if form.is_valid():
        try:
            account = services.service_account_create(
                workspace=workspace, acting=membership, actor=Actor.from_request(request),
                name=form.cleaned_data["name"], description=form.cleaned_data["description"])
        except ServiceError as error:
            apply_error(form, error)
        else:
            messages.success(request, f"Service account svc:{account.name} created. Create "
                                      "access tokens for it here.")
            return redirect(_page_url(slug, account))
    return members_page(request, workspace, membership, service_account_form=form, status=400)


@login_required
@require_POST
def service_account_update(request, slug, service_account_id):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_SERVICE_ACCOUNTS)
    account = service_account_or_404(workspace, service_account_id)
    form = ServiceAccountForm(request.POST)
    if form.is_valid():
        try:
            account = services.service_account_update(
                service_account=account, acting=membership, actor=Actor.from_request(request),
                name=form.cleaned_data["name"], description=form.cleaned_data["description"])
        except ServiceError as error:
            apply_error(form, error)
        else:
            messages.success(request, f"Service account svc:{account.name} saved.")
            return redirect(_page_url(slug, account))
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)
    return redirect(_page_url(slug, account))


@login_required
@require_http_methods(["GET", "POST"])
def service_account_remove(request, slug, service_account_id):
    """GET: ask for confirmation (the page without JavaScript). POST: remove."""
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_SERVICE_ACCOUNTS)
    account = service_account_or_404(workspace, service_account_id)
    error, status = None, 200
    if request.method == "POST":
        try:
            revoked = services.service_account_remove(service_account=account, acting=membership,
                                                      actor=Actor.from_request(request))
        except ServiceError as e:
            error, status = e.message, e.status
        else:
            messages.success(request, f"Service account svc:{account.name} removed; "
                                      f"{revoked} access token{'s' if revoked != 1 else ''} "
                                      "revoked.")
            return redirect("workspaces:members", slug=slug)
    return render_console(request, "console/confirm.html", membership, "members", {
        "title": f"Remove the service account svc:{account.name}?",
        "body": REMOVE_BODY,
        "action": "Remove service account",
        "error": error,
        "cancel_url": _page_url(slug, account),
    }, status=status)


REMOVE_BODY = ("Every access token it holds is revoked at once, so automation using them stops "
               "working, and it leaves every group here. Its runs stay on the governance page. "
               "This cannot be undone.")
