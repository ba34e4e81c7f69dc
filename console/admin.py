"""Django's admin, for staff to look things up: what the console audits is read-only there, and
so is the mail queue."""

from django.contrib import admin

from .models import OutboundMail


class ReadOnlyAdmin:
    """For reading only: no add, no change, no delete."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OutboundMail)
class OutboundMailAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """The mail queue: what is pending, what went, what failed and why."""

    list_display = ["created_at", "kind", "to", "status", "attempts", "next_attempt_at",
                    "finished_at"]
    list_filter = ["status", "kind"]
    search_fields = ["to"]
