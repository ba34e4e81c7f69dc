from datetime import UTC, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import F, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from workspaces import permissions
from workspaces.access import MissingPermission, token_page_access, workspace_access
from workspaces.audit import ACTIONS, Actor, describe
from workspaces.errors import ServiceError
from workspaces.export import csv_response, day_range
from workspaces.models import AuditEvent, Membership, User
from workspaces.paging import keyset_page
from workspaces.permissions import Perm, can
from workspaces.rendering import apply_error, render_console

from . import services, stats
from .forms import OVERLAP_CHOICES, GovernanceFilterForm, TokenCreateForm, TokenRotateForm
from .models import AccessToken, Run, TokenStatus

PAGE_SIZE = 50
SOON = timedelta(days=7)
IDLE_AFTER = timedelta(days=30)
IDLE = "idle"
STATUS_LABELS = {**dict(TokenStatus.choices), "suspended": "Suspended"}
STATUS_FILTERS = [*TokenStatus.choices, (IDLE, "Idle (not used in 30 days)")]
# Sort keys, with where tokens without the value go: no expiration is the latest expiry there
# is, never used the oldest use. Explicit, so SQLite and PostgreSQL agree.
SORTS = {
    "name": ("name", None),
    "created": ("created_at", None),
    "expires": ("expires_at", "largest"),
    "last_used": ("last_used_at", "smallest"),
}


def _ordering(sort: str):
    key = sort.lstrip("-")
    field, empty = SORTS[key]
    descending = sort.startswith("-")
    expression = F(field)
    if empty is None:
        first = expression.desc() if descending else expression.asc()
    else:
        # Empty values first when they sort as the largest and we go down, or the smallest
        # and we go up.
        empty_first = (empty == "largest") == descending
        nulls = {"nulls_first": True} if empty_first else {"nulls_last": True}
        first = expression.desc(**nulls) if descending else expression.asc(**nulls)
    return [first, F("id").desc() if descending else F("id").asc()]


def _active_q(now) -> Q:
    return Q(revoked_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))


def _idle_q(now) -> Q:
    """Active tokens not used in the last 30 days: never used and older than that, or last used
    before then."""
    cutoff = now - IDLE_AFTER
    return _active_q(now) & (Q(last_used_at__lt=cutoff)
                             | Q(last_used_at__isnull=True, created_at__lt=cutoff))


def _filtered(request, membership, now):
    """The tokens this member may see, filtered and sorted by the query string."""
    manager = permissions.can_see_all_tokens(membership)
    tokens = permissions.visible_tokens(membership, AccessToken.objects.all()).select_related(
        "created_by", "revoked_by", "replaces", "replaced_by"
    )
    status = request.GET.get("status", "")
    if status == TokenStatus.ACTIVE:
        tokens = tokens.filter(_active_q(now))
    elif status == TokenStatus.EXPIRED:
        tokens = tokens.filter(revoked_at__isnull=True, expires_at__lte=now)
    elif status == TokenStatus.REVOKED:
        tokens = tokens.filter(revoked_at__isnull=False)
    elif status == IDLE:
        tokens = tokens.filter(_idle_q(now))
    else:
        status = ""
    creator = request.GET.get("creator", "").strip() if manager else ""
    if creator:
        tokens = tokens.filter(created_by__email__iexact=creator)
    q = request.GET.get("q", "").strip()
    if q:
        tokens = tokens.filter(name__icontains=q)
    sort = request.GET.get("sort", "-created")
    if sort.lstrip("-") not in SORTS:
        sort = "-created"
    tokens = tokens.order_by(*_ordering(sort))
    filters = {"status": status, "creator": creator, "q": q, "sort": sort}
    return tokens, filters, manager


def expires_in_days(expires_at, now) -> int:
    """Whole calendar days (UTC) until the expiry: 0 on the day itself."""
    return (expires_at.date() - now.date()).days


def _annotate_rows(tokens, membership, now, list_url=""):
    """Each row's status as shown (Suspended when its creator lacks the permission), whether it
    is idle, how soon it expires, and what the viewer may do with it; one query for every
    creator on the page."""
    creators = {t.created_by_id for t in tokens} - {membership.user_id}
    perms = {membership.user_id: permissions.perms_of(membership)}
    if creators:
        perms.update(permissions.perms_of_many(Membership.objects.filter(
            workspace_id=membership.workspace_id, user_id__in=creators).select_related("workspace")))
    cutoff = now - IDLE_AFTER
    for token in tokens:
        token.current_status = token.status_at(now)
        active = token.current_status == TokenStatus.ACTIVE
        if active and not permissions.may_use_tokens(perms.get(token.created_by_id, frozenset())):
            token.current_status = "suspended"
        token.idle = active and (token.last_used_at or token.created_at) < cutoff
        token.expires_soon = (active and token.expires_at is not None
                              and token.expires_at - now <= SOON)
        if token.expires_soon:
            token.expires_in_days = expires_in_days(token.expires_at, now)
        token.replacement = getattr(token, "replaced_by", None)
        token.revocable = token.current_status in (TokenStatus.ACTIVE, "suspended")
        token.status_label = STATUS_LABELS[token.current_status]
        token.url = f"{list_url}{token.pk}/"
        token.ranges = [r for r in token.allowed_ips.split("\n") if r]
        if token.last_used_at:
            token.last_used_ago = timesince(token.last_used_at, now, depth=1)
        token.can_rotate = (active and token.replacement is None
                            and permissions.can_rotate_token(membership, token))


def _create_form(workspace, data=None):
    return TokenCreateForm(data, max_days=workspace.max_token_lifetime_days)


def _page(request, workspace, membership, *, form=None, open_create=False, created=None,
          plaintext=None, notice=None, status=200):
    now = timezone.now()
    tokens, filters, manager = _filtered(request, membership, now)
    page = Paginator(tokens, PAGE_SIZE).get_page(request.GET.get("page"))
    _annotate_rows(page.object_list, membership, now,
                   reverse("tokens:list", args=[workspace.slug]))
    creators = []
    if manager:
        creators = list(
            Membership.objects.filter(workspace=workspace)
            .order_by("user__email")
            .values_list("user__email", flat=True)
        )
    can_create = can(membership, Perm.USE_ACCESS_TOKENS)
    expiring = list(
        AccessToken.objects.filter(workspace=workspace, created_by_id=membership.user_id,
                                   replaced_by__isnull=True, revoked_at__isnull=True,
                                   expires_at__gt=now, expires_at__lte=now + SOON)
        .order_by("expires_at")[:10]
    )
    for token in expiring:
        token.expires_in_days = expires_in_days(token.expires_at, now)
    query = request.GET.copy()
    query.pop("page", None)
    sort_query = request.GET.copy()
    sort_query.pop("sort", None)
    sort_query.pop("page", None)
    return render_console(request, "tokens/list.html", membership, "access_tokens", {
        "page": page,
        "filters": filters,
        "filtered": any(filters[k] for k in ("status", "creator", "q")),
        "manager": manager,
        "creators": creators,
        "statuses": STATUS_FILTERS,
        "can_create": can_create,
        "form": form if form is not None else (_create_form(workspace) if can_create else None),
        "open_create": open_create,
        "created": created,
        "plaintext": plaintext,
        "notice": notice,
        "expiring": expiring,
        "rotate_form": TokenRotateForm(),
        "overlap_choices": OVERLAP_CHOICES,
        "query": query.urlencode(),
        "sort_query": sort_query.urlencode(),
        "list_url": reverse("tokens:list", args=[workspace.slug]),
        "console_url": request.build_absolute_uri("/").rstrip("/"),
    }, status=status)


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
            token, plaintext = services.token_create(
                membership=membership,
                actor=Actor.from_request(request),
                name=form.cleaned_data["name"],
                expires_at=form.expires_at,
                allowed_ips=form.cleaned_data["allowed_ips"],
                request_key=form.cleaned_data["request_key"],
            )
        except services.AlreadySubmitted as error:
            return _page(request, workspace, membership, notice=error.message, status=409)
        except ServiceError as error:  # bad input (400), or refused under lock (403)
            apply_error(form, error)
            status = error.status
        else:
            return _page(request, workspace, membership, created=token, plaintext=plaintext,
                         status=201)
    return _page(request, workspace, membership, form=form, open_create=True, status=status)


def _visible_token_or_404(membership, token_id) -> AccessToken:
    token = permissions.visible_tokens(
        membership, AccessToken.objects.select_related("workspace", "created_by")
    ).filter(pk=token_id).first()
    if token is None:
        raise Http404("No such access token.")
    return token


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def token_revoke(request, slug, token_id):
    """GET: ask for confirmation (the page without JavaScript). POST: revoke."""
    workspace, membership = token_page_access(request, slug)
    token = _visible_token_or_404(membership, token_id)
    if request.method == "POST":
        try:
            revoked = services.token_revoke(token=token, acting=membership,
                                            actor=Actor.from_request(request))
        except ServiceError:
            raise Http404("No such access token.") from None
        if revoked:
            messages.success(request, f"The access token “{token.name}” was revoked.")
        else:
            messages.info(request, f"The access token “{token.name}” was already revoked.")
        return redirect(request.POST.get("next") == "detail"
                        and reverse("tokens:detail", args=[slug, token.pk])
                        or reverse("tokens:list", args=[slug]))
    who = "" if token.created_by_id == membership.user_id else f" created by {token.created_by.email}"
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
    result = services.tokens_revoke_selected(ids=ids, acting=membership,
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
    _annotate_rows([token], membership, now)
    runs = list(Run.objects.filter(workspace_id=token.workspace_id, token_id=token.pk)
                .order_by("-started_at", "-id")[:50])
    about = Q(token_id=token.pk)
    if token.replaces_id:
        about |= Q(token_id=token.replaces_id, action="token.rotated")
    events = list(AuditEvent.objects.filter(about, workspace_id=token.workspace_id)
                  .order_by("-created_at", "-id")[:50])
    for event in events:
        event.label = ACTIONS.get(event.action, event.action)
        event.lines = describe(event.details)
    return {"token": token, "runs": runs, "events": events,
            "allowed_ips": [r for r in token.allowed_ips.split("\n") if r]}


@never_cache
@login_required
@require_GET
def token_detail(request, slug, token_id):
    workspace, membership = token_page_access(request, slug)
    token = permissions.visible_tokens(
        membership, AccessToken.objects.select_related(
            "workspace", "created_by", "revoked_by", "replaces", "replaced_by")
    ).filter(pk=token_id).first()
    if token is None:
        raise Http404("No such access token.")
    context = _token_detail_context(membership, token, timezone.now())
    context["rotate_form"] = TokenRotateForm() if token.can_rotate else None
    context["overlap_choices"] = OVERLAP_CHOICES
    return render_console(request, "tokens/detail.html", membership, "access_tokens", context)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
@sensitive_variables("plaintext")
def token_rotate(request, slug, token_id):
    """GET: the rotation form as a page. POST: rotate, then show the replacement once."""
    workspace, membership = token_page_access(request, slug)
    token = _visible_token_or_404(membership, token_id)
    if token.created_by_id != membership.user_id:
        raise Http404("No such access token.")  # only its creator rotates a token
    if not can(membership, Perm.USE_ACCESS_TOKENS):
        raise MissingPermission(Perm.USE_ACCESS_TOKENS, membership)
    form = TokenRotateForm(request.POST or None)
    status = 400 if request.method == "POST" else 200
    if request.method == "POST" and form.is_valid():
        try:
            new, plaintext = services.token_rotate(
                token=token, acting=membership, actor=Actor.from_request(request),
                overlap=form.cleaned_data["overlap"],
                request_key=form.cleaned_data["request_key"])
        except services.AlreadySubmitted as error:
            return _page(request, workspace, membership, notice=error.message, status=409)
        except ServiceError as error:  # bad input (400), or refused under lock (403)
            form.add_error(None, error.message)
            status = error.status
        else:
            return _page(request, workspace, membership, created=new, plaintext=plaintext,
                         status=201)
    return render_console(request, "tokens/rotate.html", membership, "access_tokens", {
        "token": token, "form": form, "overlap_choices": OVERLAP_CHOICES,
        "overlap": form["overlap"].value() or "24h",
    }, status=status)


@login_required
@require_POST
def revoke_suspended(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_ACCESS_TOKENS)
    try:
        count = services.tokens_revoke_suspended(acting=membership,
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
        count = services.tokens_shorten(acting=membership, actor=Actor.from_request(request))
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
        count = services.tokens_revoke_member(membership=target, acting=membership,
                                              actor=Actor.from_request(request))
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{count} access token{'s' if count != 1 else ''} of "
                                  f"{target.user.email} revoked.")
    return redirect("workspaces:members", slug=slug)


# Governance ------------------------------------------------------------------------------

RUNS_PAGE_SIZE = 50


def _runs(request, workspace):
    """The workspace's runs filtered by the query string; what the counts are about; the
    period they cover (the chosen days, else the last 30)."""
    form = GovernanceFilterForm(request.GET or None)
    runs = Run.objects.filter(workspace=workspace)
    filters, start, end = stats.Filters(), None, None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        if data["member"]:
            user = User.objects.filter(email__iexact=data["member"].strip()).first()
            filters = stats.Filters(user_id=user.pk if user else -1)
            runs = runs.filter(user_id=filters.user_id)
        if data["token"]:
            token_ids = AccessToken.objects.filter(
                workspace=workspace, name__icontains=data["token"].strip()).values("id")
            filters = stats.Filters(user_id=filters.user_id, token_ids=token_ids)
            runs = runs.filter(token_id__in=token_ids)
        start, end = data["start"], data["end"]
        low, high = day_range(start, end)
        if low:
            runs = runs.filter(started_at__gte=low)
        if high:
            runs = runs.filter(started_at__lt=high)
    elif form.is_bound:
        runs = runs.none()
        filters = stats.Filters(user_id=-1)
    period = stats.period(start, end, timezone.now().astimezone(UTC).date())
    return form, runs, filters, period, bool(start or end)


def _named(rows, names):
    return [{"id": key, "runs": n, "name": names.get(key)} for key, n in rows]


@login_required
@require_GET
def governance(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.VIEW_GOVERNANCE)
    form, runs, filters, period, chosen = _runs(request, workspace)
    page = keyset_page(runs.select_related("user", "token"), request.GET.get("after"),
                       time_field="started_at", size=RUNS_PAGE_SIZE)
    days = stats.per_day(workspace, period, filters)
    by_member = stats.top_members(workspace, period, filters)
    by_token = stats.top_tokens(workspace, period, filters)
    # The ten names of each, fetched by id.
    emails = dict(User.objects.filter(pk__in=[i for i, _ in by_member]).values_list("pk", "email"))
    tokens = AccessToken.objects.in_bulk([i for i, _ in by_token])
    query = request.GET.copy()
    query.pop("after", None)
    return render_console(request, "tokens/governance.html", membership, "governance", {
        "form": form, "page": page, "query": query.urlencode(),
        "by_member": _named(by_member, emails), "by_token": _named(by_token, tokens),
        "chart": stats.chart(days), "period": period,
        "period_label": "the chosen dates" if chosen else "the last 30 days",
        "filtered": any(query.get(k) for k in ("member", "token", "start", "end")),
    })


@login_required
@require_GET
def governance_csv(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.VIEW_GOVERNANCE)
    _, runs, _, _, _ = _runs(request, workspace)
    rows = (
        (r.started_at.isoformat(), r.user.email, r.token.name, r.token_id, r.client, r.model,
         r.sandbox_mode, r.turns, r.command, r.ip, r.user_agent)
        for r in runs.select_related("user", "token").order_by("-started_at", "-pk")
        .iterator(chunk_size=2000)
    )
    return csv_response(
        f"{slug}-runs.csv",
        ["started_at", "member", "token", "token_id", "client", "model", "sandbox_mode", "turns",
         "command", "ip", "user_agent"],
        rows,
    )
