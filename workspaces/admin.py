from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import AuditEvent, CustomRole, Group, Membership, User, Workspace


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "is_active", "date_joined", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups",
                                    "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


class ReadOnlyAdmin:
    """Changes to these go through the console's services, which audit them and keep the
    rules (the last owner, revoking a leaving member's tokens); here they are for reading."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MembershipInline(ReadOnlyAdmin, admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "plan", "allow_codex_local", "allow_access_tokens", "created_at"]
    list_filter = ["plan", "allow_codex_local", "allow_access_tokens"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ["user", "workspace", "role", "joined_at"]
    list_filter = ["role", "workspace"]
    search_fields = ["user__email", "workspace__name", "workspace__slug"]
    list_select_related = ["user", "workspace"]


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "created_at"]
    list_filter = ["workspace"]
    search_fields = ["name", "workspace__name"]
    list_select_related = ["workspace"]
    filter_horizontal = ["members"]


@admin.register(CustomRole)
class CustomRoleAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "grants_codex_local", "grants_access_tokens"]
    list_filter = ["workspace", "grants_codex_local", "grants_access_tokens"]
    search_fields = ["name", "description"]
    list_select_related = ["workspace"]
    filter_horizontal = ["groups"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ["created_at", "workspace", "actor_email", "action", "target", "ip"]
    list_filter = ["action", "workspace"]
    search_fields = ["actor_email", "target", "action"]
    date_hierarchy = "created_at"
    list_select_related = ["workspace"]
