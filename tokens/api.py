"""The JSON API for automation: who am I, and start a run.

`authn` decides whether a token may act; `services` records what it did. This module turns
both into responses: the error shape and challenges of the contract, the throttle on failed
attempts, and 503 (never a success) when the database cannot be reached.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from workspaces.audit import Actor, client_ip

from . import services, throttle
from .authn import OutsideRanges, Refusal, authenticate, digest_of_bearer, iso
from .models import Run

REALM = 'Bearer realm="codex"'
# Where bearer-token calls live: every answer there is JSON (config/wsgi.py serves them leanly).
API_PREFIXES = ("/api/", "/codex/")
CLIENT_MAX = Run._meta.get_field("client").max_length
COMMAND_MAX = Run._meta.get_field("command").max_length


def _json(body: dict, status: int) -> HttpResponse:
    # json.dumps straight: DjangoJSONEncoder's extra types are not needed here, and the API
    # answers on every Codex run.
    response = HttpResponse(json.dumps(body), content_type="application/json", status=status)
    response["Cache-Control"] = "no-store"
    return response


_CHALLENGE_TEXT = str.maketrans({"\\": None, '"': "'", "“": "'", "”": "'", "’": "'", "…": "..."})


def error_response(status: int, code: str, message: str) -> HttpResponse:
    """The contract's error shape, with the WWW-Authenticate challenge its status calls for."""
    response = _json({"error": {"code": code, "message": message}}, status)
    # A header is Latin-1 at most, and this one a quoted string: plain ASCII, straight quotes.
    description = message.translate(_CHALLENGE_TEXT).encode("ascii", "replace").decode()
    if code == "missing_token":
        response["WWW-Authenticate"] = REALM
    elif code == "invalid_request":
        response["WWW-Authenticate"] = (
            f'{REALM}, error="invalid_request", error_description="{description}"'
        )
    elif status == 401:
        response["WWW-Authenticate"] = (
            f'{REALM}, error="invalid_token", error_description="{description}"'
        )
    elif status == 403:
        response["WWW-Authenticate"] = (
            f'{REALM}, error="insufficient_scope", error_description="{description}"'
        )
    return response


def json_response(body: dict, status: int = 200) -> HttpResponse:
    return _json(body, status)


logger = logging.getLogger(__name__)

UNAVAILABLE = (503, "unavailable", "The console cannot reach its database. Try again shortly.")
TOO_BIG = (400, "invalid_request", "The request body is too large.")


def unavailable(request) -> HttpResponse:
    """503, with the database's error in the log (the client hears only that it may retry)."""
    logger.warning("%s %s answered 503: the database failed", request.method, request.path,
                   exc_info=True)
    return error_response(*UNAVAILABLE)


def guarded(*methods: str):
    """Serve `handler(request, ip)` for these methods behind the throttle, the error shape
    and the 503 guard."""

    def wrap(handler):
        @csrf_exempt  # bearer-token API: browser sessions are not credentials here, so no CSRF
        @sensitive_variables()
        def view(request, *args, **kwargs):
            if request.method not in methods:
                response = error_response(405, "method_not_allowed",
                                          f"Use {' or '.join(methods)} here.")
                response["Allow"] = ", ".join(methods)
                return response
            ip = client_ip(request) or "unknown"
            retry_after = throttle.retry_after(ip)
            if retry_after is not None:
                response = error_response(429, "rate_limited",
                                          "Too many failed attempts from this address. "
                                          "Try again later.")
                response["Retry-After"] = str(retry_after)
                return response
            try:
                return handler(request, ip if ip != "unknown" else None, *args, **kwargs)
            except Refusal as refusal:
                if refusal.status in (401, 403):
                    throttle.count(ip)
                if isinstance(refusal, OutsideRanges):
                    try:
                        services.token_refused_from(token_id=refusal.token_id,
                                                    ip=None if ip == "unknown" else ip,
                                                    now=timezone.now())
                    except DatabaseError:  # the refusal stands; only its note is lost
                        logger.warning("Could not note the refused address", exc_info=True)
                return error_response(refusal.status, refusal.code, refusal.message)
            except RequestDataTooBig:
                return error_response(*TOO_BIG)
            except DatabaseError:
                return unavailable(request)

        view.__name__ = handler.__name__
        return view

    return wrap


@guarded("GET")
def whoami(request, ip: str | None) -> HttpResponse:
    now = timezone.now()
    grant = authenticate(request, now, ip)
    services.token_touch(grant=grant, ip=ip, now=now)
    return json_response(grant.body())


_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def _run_input(request) -> tuple[str, str]:
    """The optional client and command, from a JSON object (or a plain form)."""
    if request.content_type in _FORM_TYPES:
        try:
            data = request.POST.dict()
        except MultiPartParserError:
            raise Refusal(400, "invalid_request", "The body is not a valid form.") from None
    elif not request.body.strip():
        data = {}
    else:
        try:
            data = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise Refusal(400, "invalid_request", "The body must be a JSON object.") from None
        if not isinstance(data, dict):
            raise Refusal(400, "invalid_request", "The body must be a JSON object.")
    values = []
    for field, limit in (("client", CLIENT_MAX), ("command", COMMAND_MAX)):
        value = data.get(field, "")
        if not isinstance(value, str):
            raise Refusal(400, "invalid_request", f"“{field}” must be a string.")
        if len(value) > limit:
            raise Refusal(400, "invalid_request", f"“{field}” can be at most {limit} characters.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Refusal(400, "invalid_request", f"“{field}” is not valid text.") from None
        values.append(value.replace("\x00", ""))
    return values[0], values[1]


@guarded("POST")
def start_run(request, ip: str | None) -> HttpResponse:
    digest = digest_of_bearer(request)
    client, command = _run_input(request)
    now = timezone.now()
    grant, run_id = services.run_start(
        digest=digest, now=now, client=client, command=command, ip=ip,
        agent=request.META.get("HTTP_USER_AGENT", "")[:300],
    )
    return json_response({"id": run_id, "started_at": iso(now), **grant.body()}, status=201)


LEAK_REPORT_MAX = 100
LEAK_REPORT_STRING_MAX = 1000


def _leak_report_strings(request) -> list[str]:
    shape = ('Send {"tokens": ["at-...", ...]}: a JSON object with 1 to '
             f'{LEAK_REPORT_MAX} strings.')
    try:
        data = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError):
        raise Refusal(400, "invalid_request", shape) from None
    strings = data.get("tokens") if isinstance(data, dict) and set(data) == {"tokens"} else None
    if (not isinstance(strings, list) or not 1 <= len(strings) <= LEAK_REPORT_MAX
            or not all(isinstance(s, str) and len(s) <= LEAK_REPORT_STRING_MAX for s in strings)):
        raise Refusal(400, "invalid_request", shape)
    return strings


@csrf_exempt  # no credential, by design: secret scanners report what they found
@sensitive_variables("strings")
@sensitive_post_parameters()
def leak_report(request) -> HttpResponse:
    """Revoke leaked tokens reported by anyone (a secret scanner). The answer says how many
    strings came, never whether any was a token: always 202, so it is no oracle."""
    if request.method != "POST":
        response = error_response(405, "method_not_allowed", "Use POST here.")
        response["Allow"] = "POST"
        return response
    ip = client_ip(request)
    address = ip or "unknown"
    limits = {"scope": "leak-report", "limit": settings.LEAK_REPORT_LIMIT,
              "window": settings.LEAK_REPORT_WINDOW}
    retry_after = throttle.retry_after(address, **limits)
    if retry_after is not None:
        response = error_response(429, "rate_limited",
                                  "Too many leak reports from this address. Try again later.")
        response["Retry-After"] = str(retry_after)
        return response
    throttle.count(address, scope="leak-report", window=settings.LEAK_REPORT_WINDOW)
    try:
        strings = _leak_report_strings(request)
        services.tokens_revoke_leaked(strings=strings, actor=Actor(
            None, ip, request.META.get("HTTP_USER_AGENT", "")[:300], label="leak report"))
    except Refusal as refusal:
        return error_response(refusal.status, refusal.code, refusal.message)
    except RequestDataTooBig:
        return error_response(*TOO_BIG)
    except DatabaseError:
        return unavailable(request)
    return json_response({"received": len(strings)}, status=202)


def openapi(request):
    from .openapi import DOCUMENT

    return JsonResponse(DOCUMENT)


@csrf_exempt
def not_found(request, *args, **kwargs):
    """Any other path under the API's prefixes: the JSON error, whatever DEBUG says."""
    return error_response(404, "not_found", "There is no such call here.")


urlpatterns = [
    path("whoami", whoami, name="api_whoami"),
    path("runs", start_run, name="api_runs"),
    path("tokens/revoke", leak_report, name="api_leak_report"),
    path("openapi.json", openapi, name="api_openapi"),
    path("", not_found),
    path("<path:rest>", not_found),
]
