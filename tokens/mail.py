"""The mail about access tokens, rendered by the mail worker when it goes (console/outbox.py):
a token revoked by someone else (an owner, an admin, a leak report), and expiry reminders.
Queued by tokens/services."""

from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from console.mail import compose, link, renderer

from .models import AccessToken
from .selectors import remindable_tokens
from .services.lifecycle import leak_report_notices_queue


def _page(token: AccessToken) -> str:
    return link(reverse("tokens:detail", args=[token.workspace.slug, token.pk]))


@renderer("token_revoked")
def token_revoked(mail):
    """To the creator of a token someone else revoked; `by` says who, in words."""
    token = (AccessToken.objects.select_related("workspace", "created_by")
             .filter(pk=mail.params["token"]).first())
    if token is None:
        return None
    return compose("token_revoked", token.created_by.email,
                   {"token": token, "by": mail.params["by"], "url": _page(token)})


@renderer("leak_report")
def leak_report(mail):
    """A leak report's job: a notice to the creator of each token it revoked, queued now (each
    its own mail); nothing to send itself."""
    leak_report_notices_queue(token_ids=mail.params["tokens"])
    return None


@renderer("token_expiry")
def token_expiry(mail):
    """A week before a token expires, or on the day (`today`): nothing if meanwhile it was
    revoked, replaced or has expired, or its creator was deactivated."""
    now = timezone.now()
    token = (remindable_tokens(now).select_related("workspace", "created_by")
             .filter(pk=mail.params["token"]).first())
    if token is None:
        return None
    return compose("token_expiry", token.created_by.email, {
        "token": token, "today": mail.params["today"],
        # Days left, to the nearest day: a week's reminder queued by an hourly run says 7 days
        # whatever the hour.
        "days": max(1, round((token.expires_at - now) / timedelta(days=1))),
        "url": _page(token),
    })
