"""Template filters for long lists: the same words as Django's `date` filter, for a fraction of
its cost (a list of 50 tokens formats 300 dates)."""

from datetime import UTC

from django import template

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
