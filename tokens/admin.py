from django.contrib import admin

from .models import AccessToken, Run


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "last_characters", "workspace", "created_by", "created_at",
                    "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["workspace", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "created_by__email", "last_characters"]
    list_select_related = ["workspace", "created_by"]
    readonly_fields = ["digest", "last_characters", "created_at", "last_used_at", "last_used_ip",
                       "revoked_at", "revoked_by"]
    exclude = ["request_key"]

    def has_add_permission(self, request):
        return False  # tokens are created on the Access tokens page, which shows them once


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "workspace", "user", "token", "client", "ip"]
    list_filter = ["workspace"]
    search_fields = ["user__email", "token__name", "client", "command"]
    list_select_related = ["workspace", "user", "token"]
    date_hierarchy = "started_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
