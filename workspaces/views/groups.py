"""Groups and who is in them; custom roles, their permissions and the groups that hold them."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.audit import Actor
from console.errors import ServiceError
from console.forms import PageQueryForm
from console.paging import paginate
from console.rendering import apply_error

from .. import selectors
from ..access import workspace_access
from ..forms import CustomRoleForm, GroupForm, GroupMemberForm
from ..layout import render_console
from ..permissions import Perm
from ..services import groups as groups_services
from .members import member_or_404


def _paged(request, rows):
    """The page of `rows` the query string asks for (the first when it cannot be read), and
    the query form."""
    query_form = PageQueryForm(request.GET)
    return paginate(rows, query_form.read("page")), query_form


def _groups_page(request, workspace, membership, form=None, status=200):
    page, query_form = _paged(request, selectors.group_rows(workspace))
    return render_console(request, "workspaces/groups.html", membership, "groups", {
        "page": page, "query_form": query_form, "form": form or GroupForm(),
    }, status=query_form.status(status))


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
            group = groups_services.group_create(workspace=workspace, acting=membership,
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
    group = selectors.group_in(workspace, group_id)
    if group is None:
        raise Http404("No such group.")
    return group


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
            groups_services.group_rename(group=group, acting=membership, actor=Actor.from_request(request),
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
            groups_services.group_delete(group=group, acting=membership, actor=Actor.from_request(request))
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
            groups_services.group_add_member(group=group, acting=membership,
                                             actor=Actor.from_request(request),
                                             membership=form.cleaned_data["member"])
        except ServiceError as error:
            apply_error(form, error)
        else:
            messages.success(request, f"{form.cleaned_data['member'].user.handle} added to {group.name}.")
            return redirect("workspaces:group", slug=slug, group_id=group.pk)
    return _group_page(request, group, membership, member_form=form, status=400)


@login_required
@require_POST
def group_member_remove(request, slug, group_id, member_id):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_GROUPS)
    group = _group_or_404(workspace, group_id)
    target = member_or_404(workspace, member_id)
    try:
        groups_services.group_remove_member(group=group, acting=membership,
                                     actor=Actor.from_request(request), membership=target)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{target.user.handle} removed from {group.name}.")
    return redirect("workspaces:group", slug=slug, group_id=group.pk)



# Custom roles ----------------------------------------------------------------------------


@login_required
@require_GET
def roles(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_CUSTOM_ROLES)
    page, query_form = _paged(request, selectors.custom_role_rows(workspace))
    return render_console(request, "workspaces/roles.html", membership, "roles",
                          {"page": page, "query_form": query_form}, status=query_form.status())


@login_required
@require_http_methods(["GET", "POST"])
def role_create(request, slug):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_CUSTOM_ROLES)
    form = CustomRoleForm(request.POST or None, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        try:
            role = groups_services.custom_role_create(workspace=workspace, acting=membership,
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
    role = selectors.custom_role_in(workspace, role_id)
    if role is None:
        raise Http404("No such custom role.")
    return role


@login_required
@require_http_methods(["GET", "POST"])
def role_edit(request, slug, role_id):
    workspace, membership = workspace_access(request, slug, Perm.MANAGE_CUSTOM_ROLES)
    role = _role_or_404(workspace, role_id)
    if request.method == "POST":
        form = CustomRoleForm(request.POST, workspace=workspace)
        if form.is_valid():
            try:
                groups_services.custom_role_update(role=role, acting=membership,
                                                   actor=Actor.from_request(request),
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
            groups_services.custom_role_delete(role=role, acting=membership,
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


