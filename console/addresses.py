"""Client addresses: who is calling, as the audit log, the limits and allowed IP ranges see it."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=4096)
def normal_form(value: str) -> str | None:
    """The address in its normal form, or None; remembered, as every API call asks. An
    IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as a dual-stack proxy passes IPv4 clients) is
    the IPv4 address it carries, everywhere: limits, allowed IP ranges, the audit log."""
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


@lru_cache(maxsize=4096)
def limit_key(address: str) -> str:
    """Who a per-address limit counts: an IPv4 address itself, a native IPv6 address by its
    /64 (one client usually holds a whole /64)."""
    if ":" in address:
        try:
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        except ValueError:
            pass
    return address


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
