"""Django's admin, for staff to look things up: what the console audits is read-only there."""


class ReadOnlyAdmin:
    """For reading only: no add, no change, no delete."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
