"""Expiry reminders: mail to a token's creator a week before it expires and on the day
(`manage.py send_token_reminders`, hourly; each reminder goes once)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.db.models import Exists, F, OuterRef
from django.urls import reverse
from django.utils import timezone

from console.mail import compose, send_now

from ..models import SOON, AccessToken

logger = logging.getLogger(__name__)


def _reminder_candidates(now: datetime):
    """Active, not replaced tokens of active creators that have a reminder due: a week before
    the expiry (for tokens that live longer than a week) and on the day itself (UTC)."""
    today_ends = datetime.combine(now.astimezone(UTC).date(), time.max, tzinfo=UTC)
    base = AccessToken.objects.active(now).filter(expires_at__isnull=False,
                                                  replaced_by__isnull=True,
                                                  created_by__is_active=True)
    # A token that expires today gets the day's reminder only, even if the week's never went.
    week = base.filter(reminded_week_at__isnull=True, reminded_day_at__isnull=True,
                       expires_at__lte=now + SOON,
                       expires_at__gt=F("created_at") + SOON).filter(
                           expires_at__gt=today_ends)
    day = base.filter(reminded_day_at__isnull=True, expires_at__lte=today_ends,
                      expires_at__gt=F("created_at") + timedelta(days=1))
    return [("week", pk) for pk in week.order_by("pk").values_list("pk", flat=True)] + \
        [("day", pk) for pk in day.order_by("pk").values_list("pk", flat=True)]


def send_token_reminders(*, now: datetime | None = None) -> int:
    """Mail creators about tokens that expire in a week or today. Each reminder goes once,
    however often this runs and however many run at once: a reminder is claimed by a
    conditional UPDATE that commits before its mail is sent (a slow mail server must not hold
    the token's row, which the token's API calls update), and a mail that cannot go out gives
    its claim back, to be tried again on the next run. Returns how many were sent."""
    now = now or timezone.now()
    sent = 0
    for which, pk in _reminder_candidates(now):
        field = "reminded_week_at" if which == "week" else "reminded_day_at"
        # The claim asks again what made the token a candidate: it may have been revoked,
        # replaced or have expired while earlier reminders went out.
        # Every condition is on the row itself (the replacement as NOT EXISTS, not a join that
        # would turn the UPDATE into `pk IN (subquery)`): PostgreSQL re-checks them on the row
        # a concurrent run has just claimed, so only one of the two claims it.
        claim = AccessToken.objects.filter(
            ~Exists(AccessToken.objects.filter(replaces=OuterRef("pk"))),
            pk=pk, expires_at__isnull=False, **{f"{field}__isnull": True}).active(now)
        if not claim.update(**{field: now}):
            continue  # another run sent it
        try:
            token = AccessToken.objects.select_related("workspace", "created_by").get(pk=pk)
            send_now(compose("token_expiry", token.created_by.email, {
                "token": token, "today": which == "day",
                # Days left, to the nearest day: a week's reminder sent by an hourly run says
                # 7 days whatever the hour.
                "days": max(1, round((token.expires_at - now) / timedelta(days=1))),
                "url": settings.SITE_URL + reverse("tokens:detail",
                                                   args=[token.workspace.slug, token.pk]),
            }))
        except Exception:
            logger.exception("Could not send the %s reminder for access token %s", which, pk)
            AccessToken.objects.filter(pk=pk, **{field: now}).update(**{field: None})
            continue
        sent += 1
    return sent


