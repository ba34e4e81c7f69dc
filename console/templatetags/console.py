"""Template filters for long lists: the same words as Django's `date` filter, for a fraction of
its cost (a list of 50 tokens formats 300 dates)."""

from datetime import UTC, timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def iso(value):
    """A machine-readable time, for `<time datetime=...>` (as `date:'c'`)."""
    return value.astimezone(UTC).isoformat() if value else ""


@register.filter
def day(value):
    """`Nov 29, 2026` (as `date:"M j, Y"`), in UTC like every time in the console."""
    if not value:
        return ""
    value = value.astimezone(UTC)
    return f"{value:%b} {value.day}, {value.year}"


@register.filter
def ago(value, now=None):
    """`2 hours ago` (the largest unit only), and `just now` within the last minute rather
    than `0 minutes ago`."""
    if not value:
        return ""
    now = now or timezone.now()
    if now - value < timedelta(minutes=1):
        return "just now"
    return f"{timesince(value, now, depth=1)} ago"
