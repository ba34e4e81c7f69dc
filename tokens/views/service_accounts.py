"""A service account's page (owners and admins): its details, what it may do and why, its
access tokens; creating a token for it (shown once, as any token) and revoking its tokens.
Creating, changing and removing the account itself: workspaces/views/service_accounts.py."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods

from console.audit import Actor
from console.errors import ServiceError
from console.forms import PageQueryForm
from console.paging import paginate
from console.rendering import apply_error
from workspaces import permissions
from workspaces import selectors as workspace_selectors
from workspaces.access import workspace_access
from workspaces.forms import ServiceAccountForm
from workspaces.layout import render_console
from workspaces.permissions import Perm

from .. import selectors
from ..forms import TokenCreateForm
from ..services import lifecycle

PAGE_SIZE = 50


def _access(request, slug, service_account_id):
    """(workspace, acting membership, the service account, its membership): owners and
    admins; 404 for outsiders and for another workspace's service account."""
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_SERVICE_ACCOUNTS)
    account = workspace_selectors.service_account_in(workspace, service_account_id)
    target = account and workspace_selectors.membership_of_service_account(account)
    if target is None:
        raise Http404("No such service account.")
    return workspace, membership, account, target


def _create_form(workspace, data=None):
    return TokenCreateForm(data, max_days=workspace.max_token_lifetime_days)


def _page(request, workspace, membership, account, target, *, form=None, open_create=False,
          created=None, plaintext=None, notice=None, status=200):
    now = timezone.now()
    perms = permissions.perms_of(target)
    may_hold_tokens = Perm.USE_ACCESS_TOKENS in perms
    query_form = PageQueryForm(request.GET)
    page = paginate(selectors.tokens_of_creator(workspace, account.user), query_form.read("page"),
                    PAGE_SIZE)
    list_url = reverse("tokens:list", args=[workspace.slug])
    selectors.annotate_rows(page.object_list, membership, now, list_url)
    return render_console(request, "tokens/service_account.html", membership, "members", {
        "account": account,
        "target": target,
        "codex_local": Perm.USE_CODEX_LOCAL in perms,
        "access_tokens": may_hold_tokens,
        "groups": workspace_selectors.groups_with_roles(target),
        "page": page,
        "query_form": query_form,
        # Its own ids: the token form's fields have the same names on this page.
        "edit_form": ServiceAccountForm(auto_id="account-%s",
                                        initial={"name": account.name,
                                                 "description": account.description}),
        "form": form if form is not None else (_create_form(workspace) if may_hold_tokens
                                               else None),
        "create_url": reverse("tokens:service_account_token_create",
                              args=[workspace.slug, account.pk]),
        "for_service_account": account,
        "open_create": open_create,
        "created": created,
        "plaintext": plaintext,
        "notice": notice,
        "page_url": reverse("tokens:service_account", args=[workspace.slug, account.pk]),
        "console_url": request.build_absolute_uri("/").rstrip("/"),
    }, status=query_form.status(status))


@never_cache
@login_required
@require_GET
def service_account(request, slug, service_account_id):
    workspace, membership, account, target = _access(request, slug, service_account_id)
    return _page(request, workspace, membership, account, target)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
@sensitive_variables("plaintext")
def service_account_token_create(request, slug, service_account_id):
    """GET: the create form as a plain page. POST: create a token for the service account,
    then show it once."""
    workspace, membership, account, target = _access(request, slug, service_account_id)
    if request.method == "GET":
        return _page(request, workspace, membership, account, target,
                     form=_create_form(workspace), open_create=True)
    form, status = _create_form(workspace, request.POST), 400
    if form.is_valid():
        try:
            token, plaintext = lifecycle.token_create_for_service_account(
                service_account=target, acting=membership, actor=Actor.from_request(request),
                name=form.cleaned_data["name"], expires_at=form.expires_at,
                allowed_ips=form.cleaned_data["allowed_ips"],
                request_key=form.cleaned_data["request_key"],
            )
        except lifecycle.AlreadySubmitted as error:
            return _page(request, workspace, membership, account, target, notice=error.message,
                         status=409)
        except ServiceError as error:  # bad input (400), or refused under lock (403)
            apply_error(form, error)
            status = error.status
        else:
            return _page(request, workspace, membership, account, target, created=token,
                         plaintext=plaintext, status=201)
    return _page(request, workspace, membership, account, target, form=form, open_create=True,
                 status=status)
