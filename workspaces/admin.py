"""Django's admin, for staff to look things up.

It changes nothing the console audits: workspaces, memberships, invitations, groups, custom
roles, audit events, access tokens and runs are read-only here (their changes go through the
console's services, which audit them and keep the rules). Staff may change a user's name and
staff flag (`user_update`, audited in every workspace of the user), and deactivate or
reactivate a user: that goes through `user_set_active`, which revokes the user's tokens in
every workspace and audits it there. Service accounts, and their users, are read-only here:
owners and admins manage them on the Members page.
"""

from django.contrib import admin

from console.admin import ReadOnlyAdmin
from console.audit import Actor

from .models import (
    AuditEvent,
    CustomRole,
    Group,
    Invitation,
    Membership,
    ServiceAccount,
    User,
    Workspace,
)
from .services import users


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "is_active", "is_service_account",
                    "date_joined", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active", "is_service_account"]
    search_fields = ["email", "name"]
    fields = ["email", "name", "is_staff", "is_active", "is_superuser", "last_login",
              "date_joined"]
    readonly_fields = ["email", "is_superuser", "last_login", "date_joined"]

    def has_add_permission(self, request):
        return False  # people join by invitation; staff accounts come from createsuperuser

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: runs and tokens point to users

    def has_change_permission(self, request, obj=None):
        # A service account's user: its workspace's owners and admins manage it, audited.
        if obj is not None and obj.is_service_account:
            return False
        return super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        users.user_update(user=obj, name=obj.name, is_staff=obj.is_staff,
                             actor=Actor.from_request(request))
        if "is_active" in form.changed_data:
            users.user_set_active(user=obj, active=obj.is_active,
                                     actor=Actor.from_request(request))


class MembershipInline(ReadOnlyAdmin, admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Workspace)
class WorkspaceAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ["name", "slug", "plan", "allow_codex_local", "allow_access_tokens", "created_at"]
    list_filter = ["plan", "allow_codex_local", "allow_access_tokens"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ["user", "workspace", "role", "joined_at"]
    list_filter = ["role", "workspace"]
    search_fields = ["user__email", "workspace__name", "workspace__slug"]
    list_select_related = ["user", "workspace"]


@admin.register(ServiceAccount)
class ServiceAccountAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ["name", "workspace", "created_by", "created_at"]
    list_filter = ["workspace"]
    search_fields = ["name", "description", "workspace__name"]
    list_select_related = ["workspace", "created_by"]


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ["email", "workspace", "role", "sent_at", "expires_at", "accepted_at",
                    "cancelled_at"]
    list_filter = ["role", "workspace"]
    search_fields = ["email", "workspace__name"]
    list_select_related = ["workspace"]
    exclude = ["key_digest"]


@admin.register(Group)
class GroupAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ["name", "workspace", "created_at"]
    list_filter = ["workspace"]
    search_fields = ["name", "workspace__name"]
    list_select_related = ["workspace"]


@admin.register(CustomRole)
class CustomRoleAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ["name", "workspace", "grants_codex_local", "grants_access_tokens"]
    list_filter = ["workspace", "grants_codex_local", "grants_access_tokens"]
    search_fields = ["name", "description"]
    list_select_related = ["workspace"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ["created_at", "workspace", "actor_email", "action", "target", "ip"]
    list_filter = ["action", "workspace"]
    search_fields = ["actor_email", "target", "action"]
    date_hierarchy = "created_at"
    list_select_related = ["workspace"]
