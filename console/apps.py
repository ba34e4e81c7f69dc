from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The core every feature builds on (audit context, errors, the mail outbox and its worker,
    paging, export, throttle, client addresses, log scrubbing, middleware, template tags). It
    imports no feature app: features register the renderers of their mail in their own
    `mail.py`, which the worker discovers."""

    name = "console"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks  # noqa: F401  (registers the deployment checks)
