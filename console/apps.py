from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The core every feature builds on (audit context, errors, mail, paging, export, throttle,
    client addresses, log scrubbing, middleware, template tags). It imports no feature app."""

    name = "console"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks  # noqa: F401  (registers the deployment checks)
