"""The JSON API for automation: who am I, start a run, and the leak report.

Each handler parses and answers; `handlers` serves them (refusals in the contract's error
shape, the throttle, 503 when the database cannot be reached), `authn` decides whether a token
may act, and `services` record what it did.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from console import throttle
from console.addresses import client_ip
from console.audit import Actor
from console.errors import error_response, json_response

from .authn import Grant, Refusal, digest_of_bearer, iso
from .handlers import TOO_BIG, authorize, guarded, method_not_allowed, rate_limited, unavailable
from .models import Run
from .services import lifecycle, runs

CLIENT_MAX = Run._meta.get_field("client").max_length
COMMAND_MAX = Run._meta.get_field("command").max_length


@authorize("GET")
def whoami(request, grant: Grant, ip: str | None) -> HttpResponse:
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
    grant, run_id = runs.run_start(
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
        return method_not_allowed(("POST",))
    ip = client_ip(request)
    address = ip or "unknown"
    limits = {"scope": "leak-report", "limit": settings.LEAK_REPORT_LIMIT,
              "window": settings.LEAK_REPORT_WINDOW}
    retry_after = throttle.retry_after(address, **limits)
    if retry_after is not None:
        return rate_limited(retry_after,
                            "Too many leak reports from this address. Try again later.")
    throttle.count(address, scope="leak-report", window=settings.LEAK_REPORT_WINDOW)
    try:
        strings = _leak_report_strings(request)
        lifecycle.tokens_revoke_leaked(strings=strings, actor=Actor(
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
