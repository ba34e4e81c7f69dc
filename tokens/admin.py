from django.contrib import admin

from console.admin import ReadOnlyAdmin

from .models import AccessToken, Run


@admin.register(AccessToken)
class AccessTokenAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """Tokens are created on the Access tokens page (shown once) and revoked there; here staff
    can look them up."""

    list_display = ["name", "last_characters", "workspace", "created_by", "created_at",
                    "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["workspace", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "created_by__email", "last_characters"]
    list_select_related = ["workspace", "created_by"]
    exclude = ["digest", "request_key"]


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ["started_at", "workspace", "user", "token", "client", "ip"]
    list_filter = ["workspace"]
    search_fields = ["user__email", "token__name", "client", "command"]
    list_select_related = ["workspace", "user", "token"]
    date_hierarchy = "started_at"
