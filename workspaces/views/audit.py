"""The audit log and its CSV export."""

from django.contrib.auth.decorators import login_required
from django.views.decorators.http import require_GET

from console.audit import describe
from console.export import csv_response, day_range
from console.paging import keyset_page

from .. import selectors
from ..access import workspace_access
from ..audit import ACTIONS
from ..forms import AuditFilterForm
from ..layout import render_console
from ..permissions import Perm

AUDIT_PAGE_SIZE = 50


def _filtered_events(request, workspace):
    """The audit log's filter form and the events it selects (none for a form in error)."""
    form = AuditFilterForm(request.GET or None, actions=ACTIONS)
    if not form.is_bound:
        return form, selectors.audit_events(workspace)
    if not form.is_valid():
        return form, selectors.audit_events(workspace).none()
    data = form.cleaned_data
    low, high = day_range(data["start"], data["end"])
    return form, selectors.audit_events(workspace, action=data["action"], actor=data["actor"],
                                        low=low, high=high)


@login_required
@require_GET
def audit_log(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.VIEW_AUDIT_LOG)
    form, events = _filtered_events(request, workspace)
    page = keyset_page(events, request.GET.get("after"), time_field="created_at",
                       size=AUDIT_PAGE_SIZE)
    for event in page.rows:
        event.label = ACTIONS.get(event.action, event.action)
        event.lines = describe(event.details)
    query = request.GET.copy()
    query.pop("after", None)
    return render_console(request, "workspaces/audit_log.html", membership, "audit_log", {
        "form": form, "page": page, "query": query.urlencode(),
        "filtered": any(query.get(k) for k in ("action", "actor", "start", "end")),
    })


@login_required
@require_GET
def audit_log_csv(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.VIEW_AUDIT_LOG)
    _, events = _filtered_events(request, workspace)
    rows = (
        (e.created_at.isoformat(), e.actor_email, e.action, e.target, e.details, e.ip,
         e.user_agent)
        for e in events.order_by("-created_at", "-pk").iterator(chunk_size=2000)
    )
    return csv_response(f"{slug}-audit-log.csv",
                        ["time", "actor", "action", "target", "details", "ip", "user_agent"], rows)


