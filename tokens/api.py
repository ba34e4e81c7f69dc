"""The JSON API for automation: who am I, start a run, and the leak report.

Each handler parses and answers; `handlers` serves them (refusals in the contract's error
shape, the throttle, 503 when the database cannot be reached), `authn` decides whether a token
may act, and `services` record what it did.
"""

from __future__ import annotations

import hashlib
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

from . import secret_scanning, selectors
from .authn import Grant, Refusal, digest_of_bearer, iso
from .handlers import TOO_BIG, authorize, guarded, method_not_allowed, rate_limited, unavailable
from .models import Run
from .services import federation, lifecycle, runs

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
GITHUB_REPORT_MAX = 1000  # matches in one signed report
LEAK_REPORT_SHAPE = ('Send {"tokens": ["at-...", ...]}: a JSON object with 1 to '
                     f'{LEAK_REPORT_MAX} strings (or GitHub\'s signed array of matches).')
BAD_SIGNATURE = (401, "invalid_signature",
                 "The Github-Public-Key-Signature header is missing or is not a signature of "
                 "this body by the published key named in Github-Public-Key-Identifier.")
NO_KEYS = (503, "unavailable", "The console cannot fetch the published secret scanning keys "
                               "to check this report. Send it again shortly.")


def _json_body(request):
    try:
        return json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError):
        raise Refusal(400, "invalid_request", LEAK_REPORT_SHAPE) from None


def _leak_report_strings(request) -> list[str]:
    data = _json_body(request)
    strings = data.get("tokens") if isinstance(data, dict) and set(data) == {"tokens"} else None
    if (not isinstance(strings, list) or not 1 <= len(strings) <= LEAK_REPORT_MAX
            or not all(isinstance(s, str) and len(s) <= LEAK_REPORT_STRING_MAX for s in strings)):
        raise Refusal(400, "invalid_request", LEAK_REPORT_SHAPE)
    return strings


def _github_matches(request) -> list[dict]:
    """GitHub's matches: a JSON array of {"token", "type", "url", "source"} (url and source
    may be missing; keys GitHub adds later are ignored)."""
    matches = _json_body(request)
    if (not isinstance(matches, list) or not 1 <= len(matches) <= GITHUB_REPORT_MAX
            or not all(isinstance(m, dict) and isinstance(m.get("token"), str)
                       and len(m["token"]) <= LEAK_REPORT_STRING_MAX
                       and isinstance(m.get("type"), str)
                       and all(isinstance(m.get(k, ""), str) for k in ("url", "source"))
                       for m in matches)):
        raise Refusal(400, "invalid_request",
                      "A signed report is a JSON array of 1 to "
                      f'{GITHUB_REPORT_MAX} {{"token", "type", "url", "source"}} objects.')
    return matches


@sensitive_variables("matches", "strings", "known")
def _github_report(request, actor: Actor) -> HttpResponse:
    """GitHub's secret scanning partner program: the signature first (nothing is read from an
    unsigned body), then every active token among the matches is revoked, and each match is
    labelled: true_positive when it is a token issued here, whatever its state."""
    try:
        valid = secret_scanning.signature_valid(
            request.body, request.headers.get(secret_scanning.KEY_ID_HEADER, ""),
            request.headers.get(secret_scanning.SIGNATURE_HEADER, ""))
    except secret_scanning.KeysUnavailable:
        return error_response(*NO_KEYS)
    if not valid:
        raise Refusal(*BAD_SIGNATURE)
    matches = _github_matches(request)
    strings = [match["token"] for match in matches]
    known = selectors.issued_here(strings)
    lifecycle.tokens_revoke_leaked(strings=strings, actor=actor)
    return json_response([{"token_raw": match["token"], "token_type": match["type"],
                           "label": "true_positive" if match["token"] in known
                           else "false_positive"} for match in matches])


def _signed_report(request) -> bool:
    """A report in GitHub's form: its signature headers, or a JSON array for a body (which
    then must be signed)."""
    return secret_scanning.signed(request) or request.body.lstrip()[:1] == b"["


@csrf_exempt  # no credential, by design: secret scanners report what they found
@sensitive_variables("strings")
@sensitive_post_parameters()
def leak_report(request) -> HttpResponse:
    """Revoke leaked tokens reported by anyone (a secret scanner). The plain report's answer
    says how many strings came, never whether any was a token: always 202, so it is no oracle.
    GitHub's signed report is answered as its partner program asks: each match labelled."""
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
    actor = Actor(None, ip, request.META.get("HTTP_USER_AGENT", "")[:300], label="leak report")
    try:
        if _signed_report(request):
            return _github_report(request, actor)
        strings = _leak_report_strings(request)
        lifecycle.tokens_revoke_leaked(strings=strings, actor=actor)
    except Refusal as refusal:
        return error_response(refusal.status, refusal.code, refusal.message)
    except RequestDataTooBig:
        return error_response(*TOO_BIG)
    except DatabaseError:
        return unavailable(request)
    return json_response({"received": len(strings)}, status=202)


ASSERTION_MAX = 16 * 1024  # characters; GitHub's and GitLab's tokens are about 1 to 2 KiB
FORM = "application/x-www-form-urlencoded"


def oauth_error(status: int, error: str, description: str) -> HttpResponse:
    """The OAuth error shape (RFC 6749 5.2), never cached."""
    response = json_response({"error": error, "error_description": description}, status)
    response["Pragma"] = "no-cache"
    return response


def _exchange_form(request) -> dict[str, str]:
    """The exchange's form fields, or ExchangeRefused (invalid_request, unsupported_grant_type)."""
    if request.content_type != FORM:
        raise federation.ExchangeRefused("invalid_request", f"Send a form-encoded body ({FORM}).")
    try:
        form = request.POST
    except MultiPartParserError:
        raise federation.ExchangeRefused("invalid_request", "The body is not a valid form.") from None
    fields = {}
    for name in ("grant_type", "assertion", "federation_rule_id", "workspace_id", "principal_id"):
        values = form.getlist(name)
        if len(values) > 1:
            raise federation.ExchangeRefused("invalid_request", f"{name} is sent more than once.")
        if values:
            fields[name] = values[0]
    if "grant_type" not in fields:
        raise federation.ExchangeRefused("invalid_request", "grant_type is missing.")
    if fields["grant_type"] != federation.GRANT_TYPE:
        raise federation.ExchangeRefused("unsupported_grant_type",
                                         f"Only grant_type={federation.GRANT_TYPE} is accepted.")
    for name in ("assertion", "federation_rule_id"):
        if not fields.get(name):
            raise federation.ExchangeRefused("invalid_request", f"{name} is missing.")
    if len(fields["assertion"]) > ASSERTION_MAX:
        raise federation.ExchangeRefused("invalid_request", "The assertion is too long.")
    return fields


@csrf_exempt  # no session: the workload's token is the credential
@sensitive_variables("fields", "exchanged")
@sensitive_post_parameters("assertion")
def oauth_token(request) -> HttpResponse:
    """The exchange (RFC 7523 jwt-bearer): a workload's OpenID Connect token and a federation
    rule's id in, a short-lived access token of the rule's principal out.

    A refusal counts toward the per-address failure limit the API shares; once over it, refused
    calls are answered 429, but a call that passes every check still gets its token (workloads
    on shared runners share addresses with strangers)."""
    if request.method != "POST":
        response = oauth_error(405, "invalid_request", "Use POST here.")
        response["Allow"] = "POST"
        return response
    ip = client_ip(request)
    address = ip or "unknown"
    try:
        fields = _exchange_form(request)
        exchanged = federation.federation_exchange(
            rule_id=fields["federation_rule_id"], assertion=fields["assertion"], ip=ip,
            now=timezone.now(), user_agent=request.META.get("HTTP_USER_AGENT", ""),
            workspace_id=fields.get("workspace_id"), principal_id=fields.get("principal_id"))
    except (federation.ExchangeRefused, RequestDataTooBig) as refusal:
        # The same refused OIDC token counts once per window (a CI job retrying it does not
        # use up its neighbours' budget); known by its digest, never kept.
        assertion = ""
        if not isinstance(refusal, RequestDataTooBig) and request.content_type == FORM:
            assertion = request.POST.get("assertion", "")
        key = f"oidc-{hashlib.sha256(assertion.encode()).hexdigest()[:32]}" if assertion else None
        wait = throttle.count_failure(address, key)
        if wait is not None:
            response = oauth_error(429, "rate_limited", "Too many failed attempts from this "
                                                        "address. Try again later.")
            response["Retry-After"] = str(wait)
            return response
        if isinstance(refusal, RequestDataTooBig):
            return oauth_error(400, "invalid_request", "The request body is too large.")
        return oauth_error(400, refusal.error, refusal.description)
    except DatabaseError:
        unavailable(request)  # logs the database's error
        return oauth_error(503, "temporarily_unavailable",
                           "The console cannot reach its database. Try again shortly.")
    token = exchanged.token
    response = json_response({
        "access_token": exchanged.plaintext,
        "token_type": "Bearer",
        "expires_in": exchanged.rule.lifetime,
        "issued_token_type": federation.ISSUED_TOKEN_TYPE,
        "chatgpt_account_id": federation.account_id(token.workspace_id),
        "user_id": federation.user_id(token.created_by_id),
    })
    response["Pragma"] = "no-cache"
    return response


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
    path("oauth/token", oauth_token, name="api_oauth_token"),
    path("openapi.json", openapi, name="api_openapi"),
    path("", not_found),
    path("<path:rest>", not_found),
]
