"""The Members page: members and their roles, removal, and invitations (send, resend,
cancel)."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.audit import Actor
from console.errors import ServiceError
from console.paging import paginate
from console.rendering import apply_error
from tokens.interface import active_token_counts

from .. import permissions, selectors
from ..access import workspace_access
from ..forms import InviteForm, MemberQueryForm, MemberRoleForm, ServiceAccountForm
from ..layout import render_console
from ..models import Role
from ..permissions import Perm
from ..services import members as members_services

# A workspace has a handful of service accounts; past this many the section says it shows the
# first ones, by name.
SERVICE_ACCOUNTS_SHOWN = 200


def members_page(request, workspace, membership, invite_form=None, service_account_form=None,
                 status=200):
    query_form = MemberQueryForm(request.GET)
    q = query_form.cleaned_data.get("q", "").strip() if query_form.filters_read() else ""
    now = timezone.now()
    rows = selectors.member_rows(workspace, q).annotate(
        active_tokens=active_token_counts(workspace, now))
    if not query_form.filters_read():
        rows = rows.none()
    page = paginate(rows, query_form.read("page"))
    owners = selectors.owner_count(workspace)
    for row in page:
        row.is_sole_owner = row.role == Role.OWNER and owners <= 1
        row.role_choices = permissions.role_choices(membership, row, owners)
        row.can_edit_role = len(row.role_choices) > 1
        row.can_remove = permissions.can_remove_member(membership, row, owners)
    service_accounts = list(selectors.service_account_rows(workspace).annotate(
        active_tokens=active_token_counts(workspace, now))[:SERVICE_ACCOUNTS_SHOWN])
    selectors.with_groups(service_accounts)
    invitations = selectors.pending_invitations(workspace)
    for invitation in invitations:
        invitation.expired = invitation.expires_at <= now
        invitation.can_manage = permissions.refuse_invitation(membership, invitation.role) is None
    return render_console(request, "workspaces/members.html", membership, "members", {
        "page": page, "q": q, "query": urlencode({"q": q}) if q else "",
        "query_form": query_form,
        "invite_form": invite_form or InviteForm(roles=permissions.invitable_roles(membership)),
        "invitations": invitations,
        "can_revoke_tokens": permissions.can_see_all_tokens(membership),
        "service_accounts": service_accounts,
        "service_accounts_cut": len(service_accounts) == SERVICE_ACCOUNTS_SHOWN,
        "can_manage_service_accounts": permissions.can(membership, Perm.MANAGE_SERVICE_ACCOUNTS),
        "service_account_form": service_account_form or ServiceAccountForm(),
    }, status=query_form.status(status))


@login_required
@require_GET
def members(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_MEMBERS)
    return members_page(request, workspace, membership)


@login_required
@require_POST
def member_invite(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_MEMBERS)
    form = InviteForm(request.POST, roles=permissions.invitable_roles(membership))
    if form.is_valid():
        try:
            invitation = members_services.member_invite(
                workspace=workspace, acting=membership, actor=Actor.from_request(request),
                email=form.cleaned_data["email"], role=form.cleaned_data["role"],
            )
        except ServiceError as error:
            apply_error(form, error)
        else:
            messages.success(request, f"Invitation sent to {invitation.email}. It works once, "
                                      "for 7 days.")
            return redirect("workspaces:members", slug=slug)
    return members_page(request, workspace, membership, invite_form=form, status=400)


def _invitation_or_404(workspace, invitation_id):
    invitation = selectors.open_invitation_in(workspace, invitation_id)
    if invitation is None:
        raise Http404("No such invitation.")
    return invitation


@login_required
@require_POST
def invitation_resend(request, slug, invitation_id):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_MEMBERS)
    invitation = _invitation_or_404(workspace, invitation_id)
    try:
        members_services.invitation_resend(invitation=invitation, acting=membership,
                                           actor=Actor.from_request(request))
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Invitation sent again to {invitation.email}; the earlier "
                                  "link no longer works.")
    return redirect("workspaces:members", slug=slug)


@login_required
@require_http_methods(["GET", "POST"])
def invitation_cancel(request, slug, invitation_id):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_MEMBERS)
    invitation = _invitation_or_404(workspace, invitation_id)
    error = None
    if request.method == "POST":
        try:
            members_services.invitation_cancel(invitation=invitation, acting=membership,
                                       actor=Actor.from_request(request))
        except ServiceError as e:
            error = e
        else:
            messages.success(request, f"The invitation for {invitation.email} was cancelled.")
            return redirect("workspaces:members", slug=slug)
    return render_console(request, "console/confirm.html", membership, "members", {
        "title": f"Cancel the invitation for {invitation.email}?",
        "body": "Its link stops working at once. You can invite them again later.",
        "action": "Cancel invitation",
        "error": error.message if error else None,
        "cancel_url": reverse("workspaces:members", args=[slug]),
    }, status=error.status if error else 200)


def member_or_404(workspace, member_id):
    membership = selectors.member_in(workspace, member_id)
    if membership is None:
        raise Http404("No such member.")
    return membership


@login_required
@require_POST
def member_role(request, slug, member_id):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_MEMBERS)
    target = member_or_404(workspace, member_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
        return redirect("workspaces:members", slug=slug)
    role = form.cleaned_data["role"]
    try:
        members_services.member_change_role(membership=target, acting=membership,
                                    actor=Actor.from_request(request), role=role)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{target.user.email} is now {Role(role).label.lower()}.")
    return redirect("workspaces:members", slug=slug)


@login_required
@require_http_methods(["GET", "POST"])
def member_remove(request, slug, member_id):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_MEMBERS)
    target = member_or_404(workspace, member_id)
    owners = selectors.owner_count(workspace)
    error = permissions.refuse_member_removal(membership, target, owners)
    status = 403 if error else 200
    if error is None and request.method == "POST":
        try:
            members_services.member_remove(membership=target, acting=membership,
                                   actor=Actor.from_request(request))
        except ServiceError as e:
            error, status = e.message, e.status
        else:
            messages.success(request, f"{target.user.email} was removed from {workspace.name}.")
            if target.pk == membership.pk:
                return redirect("home")
            return redirect("workspaces:members", slug=slug)
    return render_console(request, "console/confirm.html", membership, "members", {
        "title": f"Remove {target.user.email}?",
        "body": f"They lose access to {workspace.name} at once, leave every group here, and "
                "every access token they created in this workspace is revoked.",
        "action": "Remove member",
        "error": error,
        "cancel_url": reverse("workspaces:members", args=[slug]),
    }, status=status)


