"""Client addresses: who is calling, as the audit log, the limits and allowed IP ranges see it."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=4096)
def normal_form(value: str) -> str | None:
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
            found = normal_form(forwarded.split(",")[-1])
            if found:
                return found
    return normal_form(request.META.get("REMOTE_ADDR", ""))
