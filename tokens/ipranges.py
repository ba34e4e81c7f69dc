"""Allowed IP ranges of an access token: parse what a person typed, and test an address.

Stored as text, one normalised network per line (`10.0.0.0/8`, `2001:db8::/48`, a lone address as
`/32` or `/128`); empty means anywhere.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

MAX_RANGES = 20


class RangeError(ValueError):
    """What is wrong with the ranges, in words fit for the form."""


def parse(text: str) -> list[str]:
    """The normalised networks of comma- or newline-separated addresses and CIDR ranges."""
    text = (text or "").strip()
    if not text:
        return []
    has_comma, has_newline = "," in text, bool(re.search(r"[\r\n]", text))
    if has_comma and has_newline:
        raise RangeError("Separate the ranges with commas or with new lines, not both.")
    parts = [p.strip() for p in re.split(r"[,\r\n]+", text)]
    parts = [p for p in parts if p]
    networks = []
    for part in parts:
        try:
            network = ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise RangeError(f"“{part[:60]}” is not an IP address or a CIDR range "
                             "(such as 203.0.113.0/24 or 2001:db8::/48).") from None
        if str(network) not in networks:
            networks.append(str(network))
    if len(networks) > MAX_RANGES:
        raise RangeError(f"At most {MAX_RANGES} ranges: you gave {len(networks)}.")
    return networks


def to_text(networks: list[str]) -> str:
    return "\n".join(networks)


@lru_cache(maxsize=4096)
def _networks(text: str) -> tuple:
    return tuple(ipaddress.ip_network(line) for line in text.split("\n") if line)


@lru_cache(maxsize=4096)
def allows(text: str, address: str | None) -> bool:
    """Whether `address` may use a token with these stored ranges (remembered: the API asks
    on every call, mostly the same few questions)."""
    if not text:
        return True
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(text) if network.version == ip.version)
