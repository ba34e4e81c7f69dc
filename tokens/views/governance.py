"""The governance page: runs started with access tokens, their counts and chart, and the CSV."""

from django.contrib.auth.decorators import login_required
from django.views.decorators.http import require_GET

from console.export import csv_response
from console.paging import keyset_page
from workspaces.access import workspace_access
from workspaces.layout import render_console
from workspaces.models import User
from workspaces.permissions import Perm

from .. import selectors, stats
from ..forms import GovernanceFilterForm
from ..models import AccessToken

RUNS_PAGE_SIZE = 50


def _filtered_runs(request, workspace):
    """The governance form, the runs it selects, what the counts are about, the period they
    cover, and whether days were chosen."""
    form = GovernanceFilterForm(request.GET or None)
    filters = selectors.RunFilters()
    if form.is_bound:
        filters = selectors.RunFilters(**form.cleaned_data) if form.is_valid() else None
    runs, counted, period = selectors.governance_runs(workspace, filters)
    return form, runs, counted, period, bool(filters and (filters.start or filters.end))


def _with_names(rows, names):
    """(id, runs) rows as the template shows them, each with its name (or token)."""
    return [{"id": key, "runs": n, "name": names.get(key)} for key, n in rows]


@login_required
@require_GET
def governance(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.VIEW_GOVERNANCE)
    form, runs, filters, period, chosen = _filtered_runs(request, workspace)
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
        "by_member": _with_names(by_member, emails), "by_token": _with_names(by_token, tokens),
        "chart": stats.chart(days), "period": period,
        "period_label": "the chosen dates" if chosen else "the last 30 days",
        "filtered": any(query.get(k) for k in ("member", "token", "start", "end")),
    })


@login_required
@require_GET
def governance_csv(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.VIEW_GOVERNANCE)
    _, runs, _, _, _ = _filtered_runs(request, workspace)
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
