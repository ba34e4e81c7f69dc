"""How a bearer-token call is served (the API's and the Codex CLI gateway's handlers).

`@guarded(*methods)` wraps a handler `handler(request, ip)`: the method check, refusals as the
contract's JSON errors, a body too large as a JSON 400, and 503 (never a success) when the
database cannot be reached. The throttle comes after the check, on the failing path only: a
refusal (401, 403, and a body refused as too large, badly encoded or malformed) is counted
against the caller's address, and once the address has used up its failed attempts the
refusal is answered 429 instead. A call whose token may act never meets the throttle.

`@authorize(*methods)` does that and the token check too: the handler receives the `Grant`
(`handler(request, grant, ip)`), and the token's last use is recorded (at most once a minute),
so neither is written twice.
"""

from __future__ import annotations

import functools
import logging

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables

from console import throttle
from console.addresses import client_ip
from console.errors import error_response

from .authn import OutsideRanges, Refusal, authenticate
from .services import runs

logger = logging.getLogger(__name__)

UNAVAILABLE = (503, "unavailable", "The console cannot reach its database. Try again shortly.")
TOO_BIG = (400, "invalid_request", "The request body is too large.")


def unavailable(request):
    """503, with the database's error in the log (the client hears only that it may retry)."""
    logger.warning("%s %s answered 503: the database failed", request.method, request.path,
                   exc_info=True)
    return error_response(*UNAVAILABLE)


def method_not_allowed(methods):
    response = error_response(405, "method_not_allowed", f"Use {' or '.join(methods)} here.")
    response["Allow"] = ", ".join(methods)
    return response


def rate_limited(retry_after: int, message: str):
    response = error_response(429, "rate_limited", message)
    response["Retry-After"] = str(retry_after)
    return response


# Refusals that count as failed attempts: any 401 or 403, and a body refused as too large,
# badly encoded or malformed (400, 413, 415). Not a wrong method, a missing model provider, or
# the provider's own failure.
FAILED_ATTEMPTS = frozenset({400, 401, 403, 413, 415})
THROTTLED = "Too many failed attempts from this address. Try again later."


def refused(refusal: Refusal, ip: str):
    """The answer to a refused call: counted against its address (a known token once per
    window), and 429 once the address has used up its failed attempts."""
    if isinstance(refusal, OutsideRanges):
        try:
            runs.token_refused_from(token_id=refusal.token_id,
                                    ip=None if ip == "unknown" else ip, now=timezone.now())
        except DatabaseError:  # the refusal stands; only its note is lost
            logger.warning("Could not note the refused address", exc_info=True)
    if refusal.status in FAILED_ATTEMPTS:
        key = None if refusal.token_id is None else f"token-{refusal.token_id}"
        wait = throttle.count_failure(ip, key)
        if wait is not None:
            # A call without a token learns nothing from hearing so (the Codex CLI's turns
            # after a refusal: they still say how to see why).
            return rate_limited(wait, THROTTLED if refusal.code != "missing_token"
                                else f"{THROTTLED} {refusal.message}")
    return error_response(refusal.status, refusal.code, refusal.message)


def guarded(*methods: str):
    """Serve `handler(request, ip)` for these methods behind the throttle, the error shape
    and the 503 guard."""

    def wrap(handler):
        @csrf_exempt  # bearer-token API: browser sessions are not credentials here, so no CSRF
        @sensitive_variables()
        @functools.wraps(handler)
        def view(request, *args, **kwargs):
            if request.method not in methods:
                return method_not_allowed(methods)
            ip = client_ip(request)
            try:
                return handler(request, ip, *args, **kwargs)
            except Refusal as refusal:
                return refused(refusal, ip or "unknown")
            except RequestDataTooBig:
                return refused(Refusal(*TOO_BIG), ip or "unknown")
            except DatabaseError:
                return unavailable(request)

        return view

    return wrap


def authorize(*methods: str, touch: bool = True):
    """`guarded`, and the handler is called as `handler(request, grant, ip)` for a token that
    may act now; with `touch`, its last use is recorded."""

    def wrap(handler):
        @guarded(*methods)
        @functools.wraps(handler)
        def checked(request, ip, *args, **kwargs):
            now = timezone.now()
            grant = authenticate(request, now, ip)
            if touch:
                runs.token_touch(grant=grant, ip=ip, now=now)
            return handler(request, grant, ip, *args, **kwargs)

        return checked

    return wrap
