"""The error every service raises for a refusal the user can act on."""


class ServiceError(Exception):
    """A write refused for a reason the user can act on; nothing was changed."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


class Forbidden(ServiceError):
    """The policy, asked again under lock, refuses the acting member."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message, field, status=403)
