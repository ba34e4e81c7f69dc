"""What every audit event records besides its action: who acted, from where (`Actor`); what
changed (`changes`, before and after); and how its details read on a page (`describe`).

The events themselves are `workspaces.models.AuditEvent`, written by `workspaces.audit.record`
inside the transaction of the change they describe.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from .addresses import client_ip


@dataclass(frozen=True)
class Actor:
    user: object | None  # the signed-in user (workspaces.User), or None
    ip: str | None = None
    user_agent: str = ""
    # Who acted when nobody signed in did (the audit log's actor): "system", "leak report".
    label: str = "system"

    @classmethod
    def from_request(cls, request) -> Actor:
        return cls(
            user=request.user if request.user.is_authenticated else None,
            ip=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        )


def changes(current, new: Mapping, names: Mapping | None = None) -> dict:
    """What `new`'s values would change of `current` (a row just locked, so "before" is what
    the database holds, or a mapping such as a snapshot): {name: {"before", "after"}} for each
    value that differs. `names` renames fields in the result (`{"is_staff": "staff"}`)."""
    names = names or {}
    read = current.get if isinstance(current, Mapping) else partial(getattr, current)
    return {names.get(field, field): {"before": read(field), "after": value}
            for field, value in new.items() if read(field) != value}


_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _as_text(value) -> str:
    """A detail's value as the audit log shows it."""
    if isinstance(value, str) and _MOMENT.match(value):
        try:  # a moment (an expiry, a deadline): as the page shows times, to the minute, UTC
            return datetime.fromisoformat(value).astimezone(UTC).strftime("%b %-d, %Y %H:%M UTC")
        except ValueError:
            return value
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def describe(details: dict) -> list[tuple[str, str]]:
    """An audit event's details as (what, text) lines: 'before → after' for changes."""
    details = dict(details or {})
    lines = []
    if "before" in details and "after" in details:
        lines.append(("changed", f"{_as_text(details.pop('before'))} → "
                                 f"{_as_text(details.pop('after'))}"))
    for key, value in details.items():
        if isinstance(value, dict) and set(value) == {"before", "after"}:
            text = f"{_as_text(value['before'])} → {_as_text(value['after'])}"
        else:
            text = _as_text(value)
        lines.append((key.replace("_", " "), text))
    return lines
