from datetime import UTC, timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.db.models import Count, OuterRef, Prefetch, Q, Subquery, Sum
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tokens.models import AccessToken, RunDay
from tokens.services import latest_expiry, suspended_creators, tokens_outliving

from . import permissions, services
from .access import current_membership, workspace_access
from .audit import ACTIONS, Actor, describe
from .errors import ServiceError
from .export import csv_response, day_range
from .forms import (
    AuditFilterForm,
    CustomRoleForm,
    GroupForm,
    GroupMemberForm,
    InviteForm,
    MemberRoleForm,
    SettingsForm,
)
from .models import AuditEvent, CustomRole, Group, Invitation, Membership, Role
from .paging import keyset_page
from .permissions import Perm
from .rendering import apply_error, paginate, render_console


@login_required
def home(request):
    memberships = list(
        Membership.objects.filter(user=request.user).select_related("workspace").order_by(
            "workspace__name"
        )
    )
    if len(memberships) == 1:
        return redirect("workspaces:overview", slug=memberships[0].workspace.slug)
    return render(request, "workspaces/picker.html", {"memberships": memberships})


def _shortcut(name):
    @login_required
    def view(request):
        membership = current_membership(request)
        if membership is None:
            return redirect("home")
        return redirect(name, slug=membership.workspace.slug)

    return view


settings_shortcut = _shortcut("workspaces:settings")
access_tokens_shortcut = _shortcut("tokens:list")


@require_GET
def healthz(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


@login_required
def overview(request, slug):
    workspace, membership = workspace_access(request, slug)
    counts = workspace.memberships.aggregate(
        members=Count("id"), admins=Count("id", filter=~Q(role=Role.MEMBER))
    )
    now = timezone.now()
    everyone = permissions.can(membership, Perm.VIEW_GOVERNANCE)
    week = RunDay.objects.filter(workspace=workspace,
                                 day__gt=(now - timedelta(days=7)).astimezone(UTC).date())
    if not everyone:
        week = week.filter(user_id=membership.user_id)
    tokens = permissions.visible_tokens(membership, AccessToken.objects.all()).filter(
        revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    return render_console(request, "workspaces/overview.html", membership, "overview", {
        "counts": counts,
        "group_count": workspace.groups.count(),
        "my_groups": membership.groups.prefetch_related("custom_roles"),
        "runs_this_week": week.aggregate(n=Sum("runs"))["n"] or 0,
        "runs_of_everyone": everyone,
        "active_tokens": tokens.count(),
        "expiring": list(tokens.filter(expires_at__lte=now + timedelta(days=7))
                         .select_related("created_by").order_by("expires_at")[:5]),
        "tokens_of_everyone": permissions.can_see_all_tokens(membership),
    })


def _settings_page(request, workspace, membership, form, status=200):
    now = suspended_creators(workspace)
    if_off = suspended_creators(workspace, allow_access_tokens=False) \
        if workspace.allow_access_tokens else now
    moment = timezone.now()
    outliving = tokens_outliving(workspace, moment).aggregate(
        n=Count("id"), never=Count("id", filter=Q(expires_at__isnull=True)))
    return render_console(request, "workspaces/settings.html", membership, "settings", {
        "form": form,
        "outliving": outliving["n"], "outliving_never": outliving["never"],
        "latest": latest_expiry(workspace, moment),
        "suspended": {"tokens": sum(now.values()), "members": len(now)},
        "if_off": {"tokens": sum(if_off.values()), "members": len(if_off)},
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
                services.workspace_update_settings(
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


# Members ---------------------------------------------------------------------------------


def _members_page(request, workspace, membership, invite_form=None, status=200):
    q = request.GET.get("q", "").strip()
    rows = (
        Membership.objects.filter(workspace=workspace)
        .select_related("user")
        .prefetch_related(Prefetch("groups", queryset=Group.objects.order_by("name")))
        .order_by("user__email", "id")
    )
    if q:
        rows = rows.filter(Q(user__email__icontains=q) | Q(user__name__icontains=q))
    now = timezone.now()
    rows = rows.annotate(active_tokens=Subquery(
        AccessToken.objects.filter(workspace=workspace, created_by=OuterRef("user_id"),
                                   revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .values("created_by").annotate(n=Count("id")).values("n")))
    page = paginate(request, rows)
    owners = workspace.memberships.filter(role=Role.OWNER).count()
    for row in page:
        row.is_sole_owner = row.role == Role.OWNER and owners <= 1
        row.role_choices = permissions.role_choices(membership, row, owners)
        row.can_edit_role = len(row.role_choices) > 1
        row.can_remove = permissions.can_remove_member(membership, row, owners)
    invitations = list(
        Invitation.objects.filter(workspace=workspace, accepted_at__isnull=True,
                                  cancelled_at__isnull=True)
        .select_related("invited_by").order_by("-sent_at", "-id")[:100]
    )
    for invitation in invitations:
        invitation.expired = invitation.expires_at <= now
        invitation.can_manage = permissions.refuse_invitation(membership, invitation.role) is None
    return render_console(request, "workspaces/members.html", membership, "members", {
        "page": page, "q": q, "query": urlencode({"q": q}) if q else "",
        "invite_form": invite_form or InviteForm(roles=permissions.invitable_roles(membership)),
        "invitations": invitations,
        "can_revoke_tokens": permissions.can_see_all_tokens(membership),
    }, status=status)


@login_required
@require_GET
def members(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_MEMBERS)
    return _members_page(request, workspace, membership)


def _base_url(request) -> str:
    return request.build_absolute_uri("/")


@login_required
@require_POST
def member_invite(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_MEMBERS)
    form = InviteForm(request.POST, roles=permissions.invitable_roles(membership))
    if form.is_valid():
        try:
            invitation = services.member_invite(
                workspace=workspace, acting=membership, actor=Actor.from_request(request),
                email=form.cleaned_data["email"], role=form.cleaned_data["role"],
                base_url=_base_url(request),
            )
        except ServiceError as error:
            apply_error(form, error)
        else:
            messages.success(request, f"Invitation sent to {invitation.email}. It works once, "
                                      "for 7 days.")
            return redirect("workspaces:members", slug=slug)
    return _members_page(request, workspace, membership, invite_form=form, status=400)


def _invitation_or_404(workspace, invitation_id):
    return get_object_or_404(Invitation.objects.select_related("workspace"), workspace=workspace,
                             pk=invitation_id, accepted_at__isnull=True, cancelled_at__isnull=True)


@login_required
@require_POST
def invitation_resend(request, slug, invitation_id):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_MEMBERS)
    invitation = _invitation_or_404(workspace, invitation_id)
    try:
        services.invitation_resend(invitation=invitation, acting=membership,
                                   actor=Actor.from_request(request), base_url=_base_url(request))
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
            services.invitation_cancel(invitation=invitation, acting=membership,
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


def _member_or_404(workspace, member_id):
    return get_object_or_404(Membership.objects.select_related("user", "workspace"),
                             workspace=workspace, pk=member_id)


@login_required
@require_POST
def member_role(request, slug, member_id):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_MEMBERS)
    target = _member_or_404(workspace, member_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
        return redirect("workspaces:members", slug=slug)
    role = form.cleaned_data["role"]
    try:
        services.member_change_role(membership=target, acting=membership,
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
    target = _member_or_404(workspace, member_id)
    owners = workspace.memberships.filter(role=Role.OWNER).count()
    error = permissions.refuse_member_removal(membership, target, owners)
    status = 403 if error else 200
    if error is None and request.method == "POST":
        try:
            services.member_remove(membership=target, acting=membership,
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


# Groups ----------------------------------------------------------------------------------


def _groups_page(request, workspace, membership, form=None, status=200):
    rows = (
        Group.objects.filter(workspace=workspace)
        .prefetch_related(
            Prefetch("members", queryset=Membership.objects.select_related("user").order_by("user__email")),
            Prefetch("custom_roles", queryset=CustomRole.objects.order_by("name")),
        )
        .order_by("name", "id")
    )
    return render_console(request, "workspaces/groups.html", membership, "groups", {
        "page": paginate(request, rows), "form": form or GroupForm(),
    }, status=status)


@login_required
@require_GET
def groups(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_GROUPS)
    return _groups_page(request, workspace, membership)


@login_required
@require_POST
def group_create(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_GROUPS)
    form = GroupForm(request.POST)
    if form.is_valid():
        try:
            group = services.group_create(workspace=workspace, acting=membership,
                                          actor=Actor.from_request(request),
                                          name=form.cleaned_data["name"])
        except ServiceError as error:
            apply_error(form, error)
        else:
            messages.success(request, f"Group “{group.name}” created.")
            return redirect("workspaces:group", slug=slug, group_id=group.pk)
    return _groups_page(request, workspace, membership, form=form, status=400)


def _group_page(request, group, membership, rename_form=None, member_form=None, status=200):
    members = group.members.select_related("user").order_by("user__email")
    return render_console(request, "workspaces/group.html", membership, "groups", {
        "group": group,
        "members": members,
        "custom_roles": group.custom_roles.order_by("name"),
        "rename_form": rename_form or GroupForm(initial={"name": group.name}),
        "member_form": member_form or GroupMemberForm(group=group),
    }, status=status)


def _group_or_404(workspace, group_id):
    return get_object_or_404(Group.objects.select_related("workspace"), workspace=workspace, pk=group_id)


@login_required
@require_GET
def group_detail(request, slug, group_id):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_GROUPS)
    return _group_page(request, _group_or_404(workspace, group_id), membership)


@login_required
@require_POST
def group_rename(request, slug, group_id):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_GROUPS)
    group = _group_or_404(workspace, group_id)
    form = GroupForm(request.POST)
    if form.is_valid():
        try:
            services.group_rename(group=group, acting=membership, actor=Actor.from_request(request),
                                  name=form.cleaned_data["name"])
        except ServiceError as error:
            apply_error(form, error)
        else:
            messages.success(request, "Group renamed.")
            return redirect("workspaces:group", slug=slug, group_id=group.pk)
    group.refresh_from_db()
    return _group_page(request, group, membership, rename_form=form, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def group_delete(request, slug, group_id):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_GROUPS)
    group = _group_or_404(workspace, group_id)
    if request.method == "POST":
        try:
            services.group_delete(group=group, acting=membership, actor=Actor.from_request(request))
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Group “{group.name}” deleted.")
        return redirect("workspaces:groups", slug=slug)
    return render_console(request, "console/confirm.html", membership, "groups", {
        "title": f"Delete the group “{group.name}”?",
        "body": "Its members stay in the workspace but lose any custom role held through it.",
        "action": "Delete group",
        "cancel_url": reverse("workspaces:group", args=[slug, group.pk]),
    })


@login_required
@require_POST
def group_member_add(request, slug, group_id):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_GROUPS)
    group = _group_or_404(workspace, group_id)
    form = GroupMemberForm(request.POST, group=group)
    if form.is_valid():
        try:
            services.group_add_member(group=group, acting=membership, actor=Actor.from_request(request),
                                      membership=form.cleaned_data["member"])
        except ServiceError as error:
            apply_error(form, error)
        else:
            messages.success(request, f"{form.cleaned_data['member'].user.email} added to {group.name}.")
            return redirect("workspaces:group", slug=slug, group_id=group.pk)
    return _group_page(request, group, membership, member_form=form, status=400)


@login_required
@require_POST
def group_member_remove(request, slug, group_id, member_id):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_GROUPS)
    group = _group_or_404(workspace, group_id)
    target = _member_or_404(workspace, member_id)
    try:
        services.group_remove_member(group=group, acting=membership,
                                     actor=Actor.from_request(request), membership=target)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{target.user.email} removed from {group.name}.")
    return redirect("workspaces:group", slug=slug, group_id=group.pk)


# Custom roles ----------------------------------------------------------------------------


@login_required
@require_GET
def roles(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_CUSTOM_ROLES)
    rows = (
        CustomRole.objects.filter(workspace=workspace)
        .prefetch_related(Prefetch("groups", queryset=Group.objects.order_by("name")))
        .order_by("name", "id")
    )
    return render_console(request, "workspaces/roles.html", membership, "roles",
                          {"page": paginate(request, rows)})


@login_required
@require_http_methods(["GET", "POST"])
def role_create(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_CUSTOM_ROLES)
    form = CustomRoleForm(request.POST or None, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        try:
            role = services.custom_role_create(workspace=workspace, acting=membership,
                                               actor=Actor.from_request(request),
                                               **form.service_kwargs())
        except ServiceError as error:
            apply_error(form, error)
        else:
            messages.success(request, f"Custom role “{role.name}” created.")
            return redirect("workspaces:roles", slug=slug)
    return render_console(request, "workspaces/role_form.html", membership, "roles",
                          {"form": form, "role": None},
                          status=400 if request.method == "POST" else 200)


def _role_or_404(workspace, role_id):
    return get_object_or_404(CustomRole.objects.select_related("workspace"), workspace=workspace, pk=role_id)


@login_required
@require_http_methods(["GET", "POST"])
def role_edit(request, slug, role_id):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_CUSTOM_ROLES)
    role = _role_or_404(workspace, role_id)
    if request.method == "POST":
        form = CustomRoleForm(request.POST, workspace=workspace)
        if form.is_valid():
            try:
                services.custom_role_update(role=role, acting=membership, actor=Actor.from_request(request),
                                            **form.service_kwargs())
            except ServiceError as error:
                apply_error(form, error)
            else:
                messages.success(request, f"Custom role “{role.name}” saved.")
                return redirect("workspaces:roles", slug=slug)
        role.refresh_from_db()
    else:
        form = CustomRoleForm(initial=CustomRoleForm.initial_for(role), workspace=workspace)
    return render_console(request, "workspaces/role_form.html", membership, "roles",
                          {"form": form, "role": role},
                          status=400 if request.method == "POST" else 200)


@login_required
@require_http_methods(["GET", "POST"])
def role_delete(request, slug, role_id):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_CUSTOM_ROLES)
    role = _role_or_404(workspace, role_id)
    if request.method == "POST":
        try:
            services.custom_role_delete(role=role, acting=membership,
                                        actor=Actor.from_request(request))
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Custom role “{role.name}” deleted.")
        return redirect("workspaces:roles", slug=slug)
    return render_console(request, "console/confirm.html", membership, "roles", {
        "title": f"Delete the custom role “{role.name}”?",
        "body": "Members who held it through a group lose its permissions at once, and their "
                "access tokens stop working if this role was what allowed them.",
        "action": "Delete custom role",
        "cancel_url": reverse("workspaces:role", args=[slug, role.pk]),
    })


# Audit log -------------------------------------------------------------------------------

AUDIT_PAGE_SIZE = 50


def _audit_events(request, workspace):
    form = AuditFilterForm(request.GET or None, actions=ACTIONS)
    events = AuditEvent.objects.filter(workspace=workspace)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        if data["action"]:
            events = events.filter(action=data["action"])
        if data["actor"]:
            events = events.filter(actor_email__iexact=data["actor"].strip())
        low, high = day_range(data["start"], data["end"])
        if low:
            events = events.filter(created_at__gte=low)
        if high:
            events = events.filter(created_at__lt=high)
    elif form.is_bound:
        events = events.none()
    return form, events


@login_required
@require_GET
def audit_log(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.VIEW_AUDIT_LOG)
    form, events = _audit_events(request, workspace)
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
    _, events = _audit_events(request, workspace)
    rows = (
        (e.created_at.isoformat(), e.actor_email, e.action, e.target, e.details, e.ip,
         e.user_agent)
        for e in events.order_by("-created_at", "-pk").iterator(chunk_size=2000)
    )
    return csv_response(f"{slug}-audit-log.csv",
                        ["time", "actor", "action", "target", "details", "ip", "user_agent"], rows)


def _api_error(request, status, code, message):
    """Refusals under the API's paths keep the API's JSON error shape, never an HTML page."""
    from tokens.api import API_PREFIXES, error_response

    if request.path.startswith(API_PREFIXES):
        return error_response(status, code, message)
    return None


def bad_request(request, exception=None):
    return _api_error(request, 400, "invalid_request", "The request could not be understood.") \
        or render(request, "400.html", status=400)


def permission_denied(request, exception=None):
    from .access import MissingPermission

    api = _api_error(request, 403, "forbidden", "This request is not allowed.")
    if api:
        return api
    context = {"advice": None, "workspace": None}
    if isinstance(exception, MissingPermission):
        context["advice"] = str(exception)
        context["workspace"] = exception.membership.workspace
    return render(request, "403.html", context, status=403)


def not_found(request, exception=None):
    return _api_error(request, 404, "not_found", "There is no such API call.") \
        or render(request, "404.html", status=404)


def server_error(request):
    return _api_error(request, 500, "server_error", "Something went wrong on our side.") \
        or render(request, "500.html", status=500)
