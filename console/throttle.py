"""Failed API attempts counted per client address, in Django's cache (Redis in production, so
every worker and every server counts together).

The throttle is a second line of defence: if the cache is down, calls go on (and say so in the
log) rather than fail.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache

from .addresses import limit_key

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4096)
def _keys(scope: str, who: str) -> tuple[str, str]:
    who = limit_key(who)  # an address counts by its limit key; anything else as it is
    return f"{scope}:{who}", f"{scope}-start:{who}"


def retry_after(ip: str, *, scope: str = "api-fail", limit: int | None = None,
                window: int | None = None) -> int | None:
    """Seconds until this address may try again, or None when it is not throttled."""
    limit = settings.API_FAILURE_LIMIT if limit is None else limit
    window = settings.API_FAILURE_WINDOW if window is None else window
    count_key, start_key = _keys(scope, ip)
    try:
        if (cache.get(count_key) or 0) < limit:  # one read on every call; the second only
            return None                           # for an address that is throttled
        started = cache.get(start_key) or time.time()
    except Exception:
        logger.warning("Throttle %s: the cache is unreachable; not throttling", scope,
                       exc_info=True)
        return None
    return max(1, int(started + window - time.time()) + 1)


def count(ip: str, *, scope: str = "api-fail", window: int | None = None) -> None:
    """Count one attempt from this address; the window starts at its first attempt."""
    window = settings.API_FAILURE_WINDOW if window is None else window
    count_key, start_key = _keys(scope, ip)
    try:
        if cache.add(count_key, 1, timeout=window):
            cache.set(start_key, time.time(), timeout=window)
            return
        try:
            cache.incr(count_key)
        except ValueError:  # expired between add and incr: start a new window
            cache.set(count_key, 1, timeout=window)
            cache.set(start_key, time.time(), timeout=window)
    except Exception:
        logger.warning("Throttle %s: the cache is unreachable; attempt not counted", scope,
                       exc_info=True)
