from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, Prefetch, Q
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import services
from .access import current_membership, workspace_access
from .audit import ACTIONS, Actor, describe
from .export import csv_response, day_range
from .forms import (
    AuditFilterForm,
    CustomRoleForm,
    GroupForm,
    GroupMemberForm,
    MemberAddForm,
    MemberRoleForm,
    SettingsForm,
)
from .models import AuditEvent, CustomRole, Group, Membership, Role
from .paging import keyset_page
from .permissions import Perm, can_change_role, can_remove_member, perms_of

PAGE_SIZE = 25


def render_console(request, template, membership, active, context=None, status=200):
    """Render a page in the console layout, with what the sidebar needs."""
    ctx = {
        "workspace": membership.workspace,
        "membership": membership,
        "perms": {p.value for p in perms_of(membership)},
        "active": active,
        "other_workspaces": Membership.objects.filter(user_id=membership.user_id)
        .exclude(pk=membership.pk)
        .select_related("workspace")
        .order_by("workspace__name"),
    }
    ctx.update(context or {})
    return render(request, template, ctx, status=status)


def paginate(request, queryset, per_page=PAGE_SIZE):
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def _apply_errors(form, error: services.ServiceError):
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)


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
    return render_console(request, "workspaces/overview.html", membership, "overview", {
        "counts": counts,
        "group_count": workspace.groups.count(),
        "my_groups": membership.groups.prefetch_related("custom_roles"),
    })


@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_SETTINGS)
    if request.method == "POST":
        form = SettingsForm(request.POST)
        if form.is_valid():
            services.workspace_update_settings(
                workspace=workspace, actor=Actor.from_request(request), **form.cleaned_data
            )
            messages.success(request, "Settings saved.")
            return redirect("workspaces:settings", slug=slug)
    else:
        form = SettingsForm(initial={
            "allow_codex_local": workspace.allow_codex_local,
            "allow_access_tokens": workspace.allow_access_tokens,
        })
    return render_console(request, "workspaces/settings.html", membership, "settings",
                          {"form": form})


# Members ---------------------------------------------------------------------------------


def _members_page(request, workspace, membership, add_form=None, status=200):
    q = request.GET.get("q", "").strip()
    rows = (
        Membership.objects.filter(workspace=workspace)
        .select_related("user")
        .prefetch_related(Prefetch("groups", queryset=Group.objects.order_by("name")))
        .order_by("user__email", "id")
    )
    if q:
        rows = rows.filter(Q(user__email__icontains=q) | Q(user__name__icontains=q))
    page = paginate(request, rows)
    sole_owner = workspace.memberships.filter(role=Role.OWNER).count() == 1
    for row in page:
        # The last owner can be neither demoted nor removed: offer neither.
        row.is_sole_owner = sole_owner and row.role == Role.OWNER
        row.can_edit_role = not row.is_sole_owner and can_change_role(
            membership, row, Role.MEMBER
        ) and (row.role != Role.OWNER or can_change_role(membership, row, Role.OWNER))
        row.role_choices = [
            (value, label) for value, label in Role.choices
            if value == row.role or can_change_role(membership, row, value)
        ]
        row.can_remove = not row.is_sole_owner and can_remove_member(membership, row)
    return render_console(request, "workspaces/members.html", membership, "members", {
        "page": page, "q": q, "query": urlencode({"q": q}) if q else "",
        "add_form": add_form or MemberAddForm(),
        "role_choices": Role.choices,
    }, status=status)


@login_required
@require_GET
def members(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_MEMBERS)
    return _members_page(request, workspace, membership)


@login_required
@require_POST
def member_add(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_MEMBERS)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        role = form.cleaned_data["role"]
        if role == Role.OWNER and Perm.MANAGE_OWNERS not in perms_of(membership):
            form.add_error("role", "Only owners can make someone an owner.")
        else:
            try:
                added = services.member_add(
                    workspace=workspace, actor=Actor.from_request(request),
                    email=form.cleaned_data["email"], role=role,
                )
            except services.ServiceError as error:
                _apply_errors(form, error)
            else:
                role_name = added.get_role_display().lower()
                messages.success(request, f"{added.user.email} was added as {role_name}.")
                return redirect("workspaces:members", slug=slug)
    return _members_page(request, workspace, membership, add_form=form, status=400)


def _member_or_404(workspace, member_id):
    return get_object_or_404(Membership.objects.select_related("user"), workspace=workspace,
                             pk=member_id)


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
    if not can_change_role(membership, target, role):
        messages.error(request, "Only owners can make or unmake owners.")
        return redirect("workspaces:members", slug=slug)
    try:
        services.member_change_role(membership=target, actor=Actor.from_request(request), role=role)
    except services.ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{target.user.email} is now {Role(role).label.lower()}.")
    return redirect("workspaces:members", slug=slug)


@login_required
@require_http_methods(["GET", "POST"])
def member_remove(request, slug, member_id):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_MEMBERS)
    target = _member_or_404(workspace, member_id)
    error = None
    if not can_remove_member(membership, target):
        error = "Only owners can remove an owner."
    elif request.method == "POST":
        try:
            services.member_remove(membership=target, actor=Actor.from_request(request))
        except services.ServiceError as e:
            error = e.message
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
    }, status=400 if error else 200)


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
            group = services.group_create(workspace=workspace, actor=Actor.from_request(request),
                                          name=form.cleaned_data["name"])
        except services.ServiceError as error:
            _apply_errors(form, error)
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
            services.group_rename(group=group, actor=Actor.from_request(request),
                                  name=form.cleaned_data["name"])
        except services.ServiceError as error:
            _apply_errors(form, error)
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
        services.group_delete(group=group, actor=Actor.from_request(request))
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
            services.group_add_member(group=group, actor=Actor.from_request(request),
                                      membership=form.cleaned_data["member"])
        except services.ServiceError as error:
            _apply_errors(form, error)
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
        services.group_remove_member(group=group, actor=Actor.from_request(request), membership=target)
    except services.ServiceError as error:
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
            role = services.custom_role_create(workspace=workspace, actor=Actor.from_request(request),
                                               **form.service_kwargs())
        except services.ServiceError as error:
            _apply_errors(form, error)
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
                services.custom_role_update(role=role, actor=Actor.from_request(request),
                                            **form.service_kwargs())
            except services.ServiceError as error:
                _apply_errors(form, error)
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
        services.custom_role_delete(role=role, actor=Actor.from_request(request))
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


def permission_denied(request, exception=None):
    from .access import MissingPermission

    context = {"advice": None, "workspace": None}
    if isinstance(exception, MissingPermission):
        context["advice"] = str(exception)
        context["workspace"] = exception.membership.workspace
    return render(request, "403.html", context, status=403)


def not_found(request, exception=None):
    return render(request, "404.html", status=404)


def server_error(request):
    return render(request, "500.html", status=500)

