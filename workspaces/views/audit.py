"""The audit log and its CSV export."""

import json

from django.contrib.auth.decorators import login_required
from django.views.decorators.http import require_GET

from console.audit import describe
from console.export import csv_response, day_range
from console.paging import keyset_page, keyset_rows

from .. import selectors
from ..access import workspace_access
from ..audit import ACTIONS
from ..forms import AuditFilterForm
from ..layout import render_console
from ..permissions import Perm

AUDIT_PAGE_SIZE = 50
FILTERS = ("action", "actor", "start", "end")


def _filtered_events(request, workspace):
    """The audit log's query form and the events it selects (none for a form in error)."""
    form = AuditFilterForm(request.GET, actions=ACTIONS)
    if not form.filters_read():
        return form, selectors.audit_events(workspace).none()
    data = form.cleaned_data
    low, high = day_range(data["start"], data["end"])
    return form, selectors.audit_events(workspace, action=data["action"], actor=data["actor"],
                                        low=low, high=high)


def _page(request, membership, form, events):
    page = keyset_page(events, form.read("after"), time_field="created_at",
                       size=AUDIT_PAGE_SIZE)
    for event in page.rows:
        event.label = ACTIONS.get(event.action, event.action)
        event.lines = describe(event.details)
    query = request.GET.copy()
    query.pop("after", None)
    return render_console(request, "workspaces/audit_log.html", membership, "audit_log", {
        "form": form, "query_form": form, "page": page, "query": query.urlencode(),
        "filtered": any(query.get(k) for k in FILTERS),
    }, status=form.status())


@login_required
@require_GET
def audit_log(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.VIEW_AUDIT_LOG)
    form, events = _filtered_events(request, workspace)
    return _page(request, membership, form, events)


def _details(details) -> str:
    return json.dumps(details, sort_keys=True, ensure_ascii=False)


@login_required
@require_GET
def audit_log_csv(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.VIEW_AUDIT_LOG)
    form, events = _filtered_events(request, workspace)
    if not form.is_valid():  # the page, with the filter's error
        return _page(request, membership, form, events)
    events = events.values_list("pk", "created_at", "actor_email", "action", "target", "details",
                                "ip", "user_agent", named=True)
    rows = (
        (e.created_at.isoformat(), e.actor_email, e.action, e.target, _details(e.details), e.ip,
         e.user_agent)
        for e in keyset_rows(events, time_field="created_at")
    )
    return csv_response(f"{slug}-audit-log.csv",
                        ["time", "actor", "action", "target", "details", "ip", "user_agent"], rows)
