"""Expiry reminders: mail to a token's creator a week before it expires and on the day
(`manage.py send_token_reminders`, hourly; each reminder goes once)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from console.mail import queue_mail

from ..models import AccessToken, end_of_day
from ..selectors import remindable_tokens


def _reminder_candidates(now: datetime):
    """The reminders due about tokens that expire soon (`TokenQuerySet.expiring_soon`, the
    banner's rule): the week's before their last day, the day's on it (UTC).
    [(which, token id, creator's email)]"""
    today_ends = end_of_day(now)
    base = remindable_tokens(now).expiring_soon(now)
    # A token that expires today gets the day's reminder only, even if the week's never went.
    week = base.filter(reminded_week_at__isnull=True, reminded_day_at__isnull=True,
                       expires_at__gt=today_ends)
    day = base.filter(reminded_day_at__isnull=True, expires_at__lte=today_ends)
    return [(which, pk, email) for which, tokens in (("week", week), ("day", day))
            for pk, email in tokens.order_by("pk").values_list("pk", "created_by__email")]


def send_token_reminders(*, now: datetime | None = None) -> int:
    """Queue the mail to creators about tokens that expire in a week or today. Each reminder
    goes once, however often this runs and however many run at once: a reminder is claimed by
    a conditional UPDATE and its mail queued in the same transaction (the worker sends it, and
    tries again until it can), so a reminder is either claimed and on its way, or neither.
    Returns how many were queued."""
    now = now or timezone.now()
    queued = 0
    for which, pk, email in _reminder_candidates(now):
        field = "reminded_week_at" if which == "week" else "reminded_day_at"
        # The claim asks again what made the token a candidate: it may have been revoked,
        # replaced or have expired meanwhile.
        # Every condition is on the row itself (the replacement as NOT EXISTS, not a join that
        # would turn the UPDATE into `pk IN (subquery)`): PostgreSQL re-checks them on the row
        # a concurrent run has just claimed, so only one of the two claims it.
        claim = AccessToken.objects.filter(
            ~Exists(AccessToken.objects.filter(replaces=OuterRef("pk"))),
            pk=pk, expires_at__isnull=False, **{f"{field}__isnull": True}).active(now)
        with transaction.atomic():
            if not claim.update(**{field: now}):
                continue  # another run queued it
            queue_mail(kind="token_expiry", to=email, token=pk, today=which == "day")
        queued += 1
    return queued
