"""Attempts counted per client address, in Django's cache (Redis in production, so every worker
and every server counts together).

Two uses:

- **Failed attempts** (the API, the Codex CLI's gateway, the token exchange): `count_failure`
  is called only once a call has failed, and answers whether the address is over its limit.
  A call that succeeds never reads or writes the cache, so a token that may act is never
  refused for other callers' failures, and the check's fast path costs nothing more. The same
  refused token (`key`) counts once per window from one address: a CI job retrying a revoked
  token does not use up its neighbours' budget.
- **Every attempt** (password resets, leak reports): `retry_after` before the attempt, `count`
  after it.

The throttle is a second line of defence: if the cache is down, calls go on (and say so in the
log) rather than fail.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache

from .addresses import limit_key, normal_form

logger = logging.getLogger(__name__)

FAILURES = "api-fail"  # the scope of failed API attempts (API_FAILURE_LIMIT, API_FAILURE_WINDOW)


@lru_cache(maxsize=4096)
def _keys(scope: str, who: str) -> tuple[str, str]:
    # An address counts by its limit key (IPv4-mapped as IPv4, IPv6 by /64); anything else as
    # it is.
    who = limit_key(normal_form(who) or who)
    return f"{scope}:{who}", f"{scope}-start:{who}"


def _seconds_left(start_key: str, window: int) -> int:
    started = cache.get(start_key) or time.time()
    return max(1, int(started + window - time.time()) + 1)


def retry_after(ip: str, *, scope: str = FAILURES, limit: int | None = None,
                window: int | None = None) -> int | None:
    """Seconds until this address may try again, or None when it is not throttled."""
    limit = settings.API_FAILURE_LIMIT if limit is None else limit
    window = settings.API_FAILURE_WINDOW if window is None else window
    count_key, start_key = _keys(scope, ip)
    try:
        if (cache.get(count_key) or 0) < limit:  # one read; the second only for an address
            return None                           # that is throttled
        return _seconds_left(start_key, window)
    except Exception:
        logger.warning("Throttle %s: the cache is unreachable; not throttling", scope,
                       exc_info=True)
        return None


def is_limited(address: str, *, scope: str = FAILURES) -> bool:
    """Whether this address has used up its failed attempts for now."""
    return retry_after(address, scope=scope) is not None


def _add_one(count_key: str, start_key: str, window: int) -> int:
    """Count one attempt (atomically, in Redis as in memory); the count after it. The window
    starts at the first attempt."""
    if cache.add(count_key, 1, timeout=window):
        cache.set(start_key, time.time(), timeout=window)
        return 1
    try:
        return cache.incr(count_key)
    except ValueError:  # expired between add and incr: start a new window
        cache.set(count_key, 1, timeout=window)
        cache.set(start_key, time.time(), timeout=window)
        return 1


def count(ip: str, *, scope: str = FAILURES, window: int | None = None) -> None:
    """Count one attempt from this address; the window starts at its first attempt."""
    window = settings.API_FAILURE_WINDOW if window is None else window
    try:
        _add_one(*_keys(scope, ip), window)
    except Exception:
        logger.warning("Throttle %s: the cache is unreachable; attempt not counted", scope,
                       exc_info=True)


def count_failure(address: str, key: str | None = None, *, scope: str = FAILURES,
                  limit: int | None = None, window: int | None = None) -> int | None:
    """Count a call from `address` that failed, and say whether to answer it 429 instead: the
    seconds until the address may try again when it had already used up its failed attempts
    (more than `limit` within `window`), else None (answer the failure itself).

    `key` names what was refused when it is known (a token's id, an OIDC token's `jti`): the
    same key from the same address counts once per window, however often it comes back. A
    caller consults this only on the failing path: a call that succeeds never reaches it.
    """
    limit = settings.API_FAILURE_LIMIT if limit is None else limit
    window = settings.API_FAILURE_WINDOW if window is None else window
    count_key, start_key = _keys(scope, address)
    try:
        if key is None or cache.add(f"{count_key}:{key}", 1, timeout=window):
            over = _add_one(count_key, start_key, window) > limit
        else:  # counted already in this window; refused all the same if the address is over
            over = (cache.get(count_key) or 0) >= limit
        return _seconds_left(start_key, window) if over else None
    except Exception:
        logger.warning("Throttle %s: the cache is unreachable; failure not counted", scope,
                       exc_info=True)
        return None
