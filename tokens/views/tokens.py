"""The Access tokens pages: the list (with the create modal and the shown-once token), a
token's own page, create, revoke (one, the selected, a member's all), rotate, and the Settings
page's token actions (shorten, revoke the suspended)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.audit import Actor, describe
from console.errors import ServiceError
from console.paging import paginate
from console.rendering import apply_error
from workspaces import permissions
from workspaces import selectors as workspace_selectors
from workspaces.access import MissingPermission, workspace_access
from workspaces.audit import ACTIONS
from workspaces.layout import render_console
from workspaces.models import Membership
from workspaces.permissions import Perm, can

from .. import selectors
from ..access import token_page_access
from ..forms import (
    OVERLAP_CHOICES,
    RevokeReturnForm,
    RotateQueryForm,
    TokenCreateForm,
    TokenListQueryForm,
    TokenRotateForm,
)
from ..models import AccessToken
from ..services import lifecycle

PAGE_SIZE = 50


def _create_form(workspace, data=None):
    return TokenCreateForm(data, max_days=workspace.max_token_lifetime_days)


def _page(request, workspace, membership, *, form=None, open_create=False, created=None,
          plaintext=None, notice=None, status=200):
    now = timezone.now()
    manager = permissions.can_see_all_tokens(membership)
    query_form = TokenListQueryForm(request.GET)
    if query_form.filters_read():
        filters = selectors.TokenFilters.from_query(query_form.cleaned_data,
                                                    may_filter_by_creator=manager)
        tokens = selectors.token_list(membership, filters, now)
    else:
        filters, tokens = selectors.TokenFilters(), AccessToken.objects.none()
    page = paginate(tokens, query_form.read("page"), PAGE_SIZE)
    list_url = reverse("tokens:list", args=[workspace.slug])
    selectors.annotate_rows(page.object_list, membership, now, list_url)
    can_create = can(membership, Perm.USE_ACCESS_TOKENS)
    query = request.GET.copy()
    query.pop("page", None)
    sort_query = request.GET.copy()
    sort_query.pop("sort", None)
    sort_query.pop("page", None)
    return render_console(request, "tokens/list.html", membership, "access_tokens", {
        "page": page,
        "filters": filters,
        "query_form": query_form,
        "filtered": filters.any or not query_form.filters_read(),
        "manager": manager,
        "creators": selectors.creator_emails(workspace) if manager else [],
        "statuses": selectors.STATUS_FILTERS,
        "can_create": can_create,
        "form": form if form is not None else (_create_form(workspace) if can_create else None),
        "open_create": open_create,
        "created": created,
        "plaintext": plaintext,
        "notice": notice,
        "expiring": selectors.expiring_banner(membership, now),
        "rotate_form": TokenRotateForm(),
        "overlap_choices": OVERLAP_CHOICES,
        "query": query.urlencode(),
        "sort_query": sort_query.urlencode(),
        "list_url": list_url,
        "console_url": request.build_absolute_uri("/").rstrip("/"),
        "for_service_account": None,
    }, status=query_form.status(status))


@never_cache
@login_required
@require_GET
def token_list(request, slug):
    workspace, membership = token_page_access(request, slug)
    return _page(request, workspace, membership)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
@sensitive_variables("plaintext")
def token_create(request, slug):
    """GET: the create form as a plain page. POST: create, then show the token once."""
    workspace, membership = token_page_access(request, slug)
    if not can(membership, Perm.USE_ACCESS_TOKENS):
        raise MissingPermission(Perm.USE_ACCESS_TOKENS, membership)
    if request.method == "GET":
        return _page(request, workspace, membership, form=_create_form(workspace),
                     open_create=True)
    form, status = _create_form(workspace, request.POST), 400
    if form.is_valid():
        try:
            token, plaintext = lifecycle.token_create(
                membership=membership,
                actor=Actor.from_request(request),
                name=form.cleaned_data["name"],
                expires_at=form.expires_at,
                allowed_ips=form.cleaned_data["allowed_ips"],
                request_key=form.cleaned_data["request_key"],
            )
        except lifecycle.AlreadySubmitted as error:
            return _page(request, workspace, membership, notice=error.message, status=409)
        except ServiceError as error:  # bad input (400), or refused under lock (403)
            apply_error(form, error)
            status = error.status
        else:
            return _page(request, workspace, membership, created=token, plaintext=plaintext,
                         status=201)
    return _page(request, workspace, membership, form=form, open_create=True, status=status)


def _visible_token_or_404(membership, token_id, *related) -> AccessToken:
    token = selectors.visible_token(membership, token_id, *related)
    if token is None:
        raise Http404("No such access token.")
    return token


def _after_revoke(slug, token, to) -> str:
    """Where a revocation leads back to: the token's page, its service account's page, or the
    list."""
    if to == "detail":
        return reverse("tokens:detail", args=[slug, token.pk])
    if to == "service-account":
        account = workspace_selectors.service_account_of(token.workspace_id, token.created_by_id)
        if account is not None:
            return reverse("tokens:service_account", args=[slug, account.pk])
    return reverse("tokens:list", args=[slug])


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def token_revoke(request, slug, token_id):
    """GET: ask for confirmation (the page without JavaScript). POST: revoke."""
    workspace, membership = token_page_access(request, slug)
    token = _visible_token_or_404(membership, token_id)
    if request.method == "POST":
        try:
            revoked = lifecycle.token_revoke(token=token, acting=membership,
                                            actor=Actor.from_request(request))
        except ServiceError:
            raise Http404("No such access token.") from None
        if revoked:
            messages.success(request, f"The access token “{token.name}” was revoked.")
        else:
            messages.info(request, f"The access token “{token.name}” was already revoked.")
        back = RevokeReturnForm(request.GET).read("next")
        return redirect(_after_revoke(slug, token, request.POST.get("next") or back))
    who = "" if token.created_by_id == membership.user_id else f" created by {token.created_by.handle}"
    return render_console(request, "console/confirm.html", membership, "access_tokens", {
        "title": f"Revoke the access token “{token.name}”?",
        "body": f"Automation using this token{who} stops working at once. This cannot be undone.",
        "action": "Revoke token",
        "error": "This token is already revoked." if token.revoked_at else None,
        "cancel_url": reverse("tokens:list", args=[slug]),
    })


@never_cache
@login_required
@require_POST
def tokens_revoke_selected(request, slug):
    """Revoke the checked rows; what could not be revoked is reported on the next page."""
    workspace, membership = token_page_access(request, slug)
    ids = request.POST.getlist("ids")
    if not ids:
        messages.info(request, "Select the tokens to revoke first.")
        return redirect("tokens:list", slug=slug)
    result = lifecycle.tokens_revoke_selected(ids=ids, acting=membership,
                                             actor=Actor.from_request(request))
    revoked = result["revoked"]
    if revoked:
        messages.success(request, f"{len(revoked)} access token{'s' if len(revoked) != 1 else ''}"
                                  f" revoked: {', '.join(revoked)}.")
    if result["already"]:
        messages.info(request, f"{result['already']} of the selected tokens "
                               f"{'was' if result['already'] == 1 else 'were'} already revoked.")
    if result["refused"]:
        messages.warning(request, f"{result['refused']} of the selected tokens "
                                  f"{'was' if result['refused'] == 1 else 'were'} left alone: you "
                                  "can revoke only tokens you can see here.")
    return redirect("tokens:list", slug=slug)


def _token_detail_context(membership, token, now):
    selectors.annotate_rows([token], membership, now)
    runs, events = selectors.token_history(token)
    for event in events:
        event.label = ACTIONS.get(event.action, event.action)
        event.lines = describe(event.details)
    return {"token": token, "runs": runs, "events": events,
            "allowed_ips": [r for r in token.allowed_ips.split("\n") if r],
            "may_manage_federation": can(membership, Perm.MANAGE_FEDERATION)}


@never_cache
@login_required
@require_GET
def token_detail(request, slug, token_id):
    workspace, membership = token_page_access(request, slug)
    return _detail_page(request, membership, token_id)


def _detail_page(request, membership, token_id, *, created=None, plaintext=None, status=200):
    """A token's page; after a rotation from it, the new token's page showing it once."""
    token = _visible_token_or_404(membership, token_id, "revoked_by", "replaces", "replaced_by",
                                  "federation_rule")
    context = _token_detail_context(membership, token, timezone.now())
    context["rotate_form"] = TokenRotateForm() if token.can_rotate else None
    context["overlap_choices"] = OVERLAP_CHOICES
    context["created"], context["plaintext"] = created, plaintext
    context["detail_url"] = reverse("tokens:detail", args=[membership.workspace.slug, token.pk])
    context["console_url"] = request.build_absolute_uri("/").rstrip("/")
    return render_console(request, "tokens/detail.html", membership, "access_tokens", context,
                          status=status)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
@sensitive_variables("plaintext")
def token_rotate(request, slug, token_id):
    """GET: the rotation form as a page. POST: rotate, then show the replacement once."""
    workspace, membership = token_page_access(request, slug)
    token = _visible_token_or_404(membership, token_id)
    if not permissions.owns_token(membership, token):
        raise Http404("No such access token.")  # only its creator rotates a token
    if not permissions.can_rotate_token(membership, token):
        raise MissingPermission(Perm.USE_ACCESS_TOKENS, membership)
    form = TokenRotateForm(request.POST or None)
    query_form = RotateQueryForm(request.GET)
    status = 400 if request.method == "POST" else query_form.status()
    if request.method == "POST" and form.is_valid():
        try:
            new, plaintext = lifecycle.token_rotate(
                token=token, acting=membership, actor=Actor.from_request(request),
                overlap=form.cleaned_data["overlap"],
                request_key=form.cleaned_data["request_key"])
        except lifecycle.AlreadySubmitted as error:
            return _page(request, workspace, membership, notice=error.message, status=409)
        except ServiceError as error:  # bad input (400), or refused under lock (403)
            form.add_error(None, error.message)
            status = error.status
        else:
            if form.cleaned_data["next"] == "detail":
                return _detail_page(request, membership, new.pk, created=new,
                                    plaintext=plaintext, status=201)
            return _page(request, workspace, membership, created=new, plaintext=plaintext,
                         status=201)
    return render_console(request, "tokens/rotate.html", membership, "access_tokens", {
        "token": token, "form": form, "overlap_choices": OVERLAP_CHOICES,
        "overlap": form["overlap"].value() or "24h",
        "next": "detail" if (form["next"].value() or query_form.read("next")) == "detail" else "",
        "query_form": query_form,
    }, status=status)


@login_required
@require_POST
def revoke_suspended(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_ACCESS_TOKENS)
    try:
        count = lifecycle.tokens_revoke_suspended(acting=membership,
                                                 actor=Actor.from_request(request))
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{count} suspended access token{'s' if count != 1 else ''} "
                                  "revoked.")
    return redirect("workspaces:settings", slug=slug)


@login_required
@require_POST
def shorten_tokens(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_ACCESS_TOKENS)
    try:
        count = lifecycle.tokens_shorten(acting=membership, actor=Actor.from_request(request))
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{count} access token{'s' if count != 1 else ''} shortened to "
                                  f"the maximum lifetime.")
    return redirect("workspaces:settings", slug=slug)


@login_required
@require_POST
def member_revoke_tokens(request, slug, member_id):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_ACCESS_TOKENS)
    target = get_object_or_404(Membership.objects.select_related("user"), workspace=workspace,
                               pk=member_id)
    try:
        count = lifecycle.tokens_revoke_member(membership=target, acting=membership,
                                              actor=Actor.from_request(request))
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{count} access token{'s' if count != 1 else ''} of "
                                  f"{target.user.handle} revoked.")
    return redirect("workspaces:members", slug=slug)


