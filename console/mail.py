"""Mail the console sends: invitations, token notices, reminders.

Each message is two templates, `mail/<name>_subject.txt` and `mail/<name>.txt`, rendered with
the given context. No message ever carries an access token or its digest.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)


def compose(name: str, to: str, context: dict) -> EmailMessage:
    context = {"site_url": settings.SITE_URL, **context}
    subject = " ".join(render_to_string(f"mail/{name}_subject.txt", context).split())
    body = render_to_string(f"mail/{name}.txt", context)
    return EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[to])


def send_now(message: EmailMessage) -> None:
    """Send at once; a failure raises (and rolls back the caller's transaction)."""
    message.send(fail_silently=False)


def send_on_commit(message: EmailMessage) -> None:
    """Send once the caller's transaction commits. A notice that cannot be sent is logged, and
    never undoes the change it tells of."""

    def send():
        try:
            message.send(fail_silently=False)
        except Exception:
            logger.exception("Could not send the mail %r to %s", message.subject, message.to)

    transaction.on_commit(send)
