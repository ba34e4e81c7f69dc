"""The governance page: runs started with access tokens, their counts and chart, and the CSV."""

from typing import NamedTuple

from django.contrib.auth.decorators import login_required
from django.views.decorators.http import require_GET

from console.export import csv_response
from console.paging import keyset_page, keyset_rows
from workspaces.access import workspace_access
from workspaces.layout import render_console
from workspaces.models import User
from workspaces.permissions import Perm

from .. import selectors, stats
from ..forms import GovernanceFilterForm
from ..models import WORKLOAD_CLAIMS, AccessToken

RUNS_PAGE_SIZE = 50


class Selection(NamedTuple):
    """The governance form, the runs it selects, what the counts are about, the period they
    cover, and whether days were chosen."""

    form: GovernanceFilterForm
    runs: object
    counted: object
    period: object
    chosen: bool


def _filtered_runs(request, workspace) -> Selection:
    form = GovernanceFilterForm(request.GET)
    filters = None
    if form.filters_read():
        data = form.cleaned_data
        filters = selectors.RunFilters(member=data["member"], token=data["token"],
                                       start=data["start"], end=data["end"])
    runs, counted, period = selectors.governance_runs(workspace, filters)
    return Selection(form, runs, counted, period, bool(filters and (filters.start or filters.end)))


def _with_names(rows, names):
    """(id, runs) rows as the template shows them, each with its name (or token)."""
    return [{"id": key, "runs": n, "name": names.get(key)} for key, n in rows]


def _members(user_ids) -> dict:
    """{user id: user}, to name them as the page does (`user.handle`)."""
    return {u.pk: u for u in User.objects.filter(pk__in=user_ids)
            .only("email", "name", "is_service_account")}


@login_required
@require_GET
def governance(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.VIEW_GOVERNANCE)
    return _page(request, membership, _filtered_runs(request, workspace))


def _page(request, membership, found: Selection):
    workspace, form, period = membership.workspace, found.form, found.period
    page = keyset_page(found.runs.select_related("user", "token", "federation_rule"),
                       form.read("after"), time_field="started_at",
                       size=RUNS_PAGE_SIZE)
    days = stats.per_day(workspace, period, found.counted)
    by_member = stats.top_members(workspace, period, found.counted)
    by_token = stats.top_tokens(workspace, period, found.counted)
    # The ten names of each, fetched by id.
    members = _members([i for i, _ in by_member])
    tokens = AccessToken.objects.in_bulk([i for i, _ in by_token])
    query = request.GET.copy()
    query.pop("after", None)
    return render_console(request, "tokens/governance.html", membership, "governance", {
        "form": form, "query_form": form, "page": page, "query": query.urlencode(),
        "by_member": _with_names(by_member, members), "by_token": _with_names(by_token, tokens),
        "chart": stats.chart(days), "period": period,
        "period_label": "the chosen dates" if found.chosen else "the last 30 days",
        "filtered": any(query.get(k) for k in ("member", "token", "start", "end")),
    }, status=form.status())


@login_required
@require_GET
def governance_csv(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.VIEW_GOVERNANCE)
    found = _filtered_runs(request, workspace)
    if not found.form.is_valid():  # the page, with the filter's error
        return _page(request, membership, found)
    runs = found.runs.values_list("pk", "started_at", "user__email", "user__name",
                                  "user__is_service_account", "token__name", "token_id",
                                  "client", "model", "sandbox_mode", "turns", "command", "ip",
                                  "user_agent", "federation_rule__name", "workload", named=True)
    rows = (
        (r.started_at.isoformat(),
         f"svc:{r.user__name}" if r.user__is_service_account else r.user__email,
         r.token__name, r.token_id, r.client, r.model,
         r.sandbox_mode, r.turns, r.command, r.ip, r.user_agent, r.federation_rule__name or "",
         *((r.workload or {}).get(name, "") for name in WORKLOAD_CLAIMS))
        for r in keyset_rows(runs, time_field="started_at")
    )
    return csv_response(
        f"{slug}-runs.csv",
        ["started_at", "member", "token", "token_id", "client", "model", "sandbox_mode", "turns",
         "command", "ip", "user_agent", "rule", *WORKLOAD_CLAIMS],
        rows,
    )
