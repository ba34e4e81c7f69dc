"""Who is acting, from where: the context every write records in its audit event."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from django.conf import settings

from .models import AuditEvent, User, Workspace


@lru_cache(maxsize=4096)
def _valid_ip(value: str) -> str | None:
    """The address in its normal form, or None; remembered, as every API call asks."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, unless settings name a trusted proxy header.

    From that header only the last entry counts: the one our proxy wrote. Entries before it
    come from the client and can say anything.
    """
    header = settings.TRUSTED_PROXY_HEADER
    if header:
        forwarded = request.META.get(header, "")
        if forwarded:
            found = _valid_ip(forwarded.split(",")[-1])
            if found:
                return found
    return _valid_ip(request.META.get("REMOTE_ADDR", ""))


@dataclass(frozen=True)
class Actor:
    user: User | None
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

    @classmethod
    def system(cls) -> Actor:
        return cls(user=None)


def record(
    *, workspace: Workspace, actor: Actor, action: str, target: str = "", details=None,
    token_id: int | None = None,
) -> AuditEvent:
    """Write one audit event. Call it inside the transaction of the change it describes.
    `token_id` names the access token it is about (its page lists it)."""
    return AuditEvent.objects.create(
        token_id=token_id,
        workspace=workspace,
        actor=actor.user,
        actor_email=actor.user.email if actor.user else actor.label,
        action=action,
        target=target[:300],
        details=details or {},
        ip=actor.ip,
        user_agent=actor.user_agent,
    )


ACTIONS = {
    "workspace.created": "Workspace created",
    "settings.updated": "Settings changed",
    "member.added": "Member added",
    "invitation.sent": "Invitation sent",
    "invitation.resent": "Invitation sent again",
    "invitation.cancelled": "Invitation cancelled",
    "invitation.account_created": "Account created from an invitation",
    "invitation.accepted": "Invitation accepted",
    "user.changed": "User changed (Django admin)",
    "user.deactivated": "User deactivated",
    "user.reactivated": "User reactivated",
    "member.removed": "Member removed",
    "member.role_changed": "Member role changed",
    "group.created": "Group created",
    "group.renamed": "Group renamed",
    "group.deleted": "Group deleted",
    "group.member_added": "Added to group",
    "group.member_removed": "Removed from group",
    "custom_role.created": "Custom role created",
    "custom_role.updated": "Custom role changed",
    "custom_role.deleted": "Custom role deleted",
    "token.created": "Access token created",
    "token.revoked": "Access token revoked",
    "token.rotated": "Access token rotated",
    "token.shortened": "Access token shortened",
    "runs.pruned": "Old runs removed (retention)",
}


_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _word(value) -> str:
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
        lines.append(("changed", f"{_word(details.pop('before'))} → {_word(details.pop('after'))}"))
    for key, value in details.items():
        if isinstance(value, dict) and set(value) == {"before", "after"}:
            text = f"{_word(value['before'])} → {_word(value['after'])}"
        else:
            text = _word(value)
        lines.append((key.replace("_", " "), text))
    return lines
