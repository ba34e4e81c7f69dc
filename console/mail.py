"""Mail the console sends: password resets, invitations, token notices, reminders.

No mail is sent inside a request. A change that causes one calls `queue_mail` inside its own
transaction: one row of the outbox (`OutboundMail`), with the mail's kind and what it is about
(ids and plain words, never a secret), committed or rolled back with the change. The worker
(`manage.py send_queued_mail`, console/outbox.py) renders it when it goes, through the renderer
its feature registered for the kind (`@renderer("invitation")` in the feature's `mail.py`), so
whatever secret a mail carries (a reset link, an invitation key) is made at that moment and
exists only in the mail.

Each message is two templates, `mail/<name>_subject.txt` and `mail/<name>.txt`, rendered with
the given context; links name `SITE_URL`. No message ever carries an access token or its digest.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string

from .models import OutboundMail

# kind -> the function that turns a queued row into the message to send, or None when there is
# nothing to send any more (no such account; the token or the invitation is gone).
Renderer = Callable[[OutboundMail], EmailMessage | None]
RENDERERS: dict[str, Renderer] = {}


def renderer(kind: str) -> Callable[[Renderer], Renderer]:
    """Register the renderer of a kind of mail (in a feature's `mail.py`, which the worker
    imports)."""

    def register(function: Renderer) -> Renderer:
        RENDERERS[kind] = function
        return function

    return register


def queue_mail(*, kind: str, to: str = "", **params) -> OutboundMail:
    """Queue a mail, inside the caller's transaction: it goes if and when that commits.
    `params` are what the renderer needs to find what the mail is about (JSON: ids and words),
    never a secret. `to` says whom it is for, as far as the caller knows (the outbox's own
    record; the renderer decides the recipient)."""
    return OutboundMail.objects.create(kind=kind, to=to, params=params)


def link(path: str) -> str:
    """An absolute link to a page of the console, for mail."""
    return settings.SITE_URL + path


def compose(name: str, to: str, context: dict) -> EmailMessage:
    context = {"site_url": settings.SITE_URL, **context}
    subject = " ".join(render_to_string(f"mail/{name}_subject.txt", context).split())
    body = render_to_string(f"mail/{name}.txt", context)
    return EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[to])
