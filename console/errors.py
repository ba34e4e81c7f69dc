"""Errors: the one services raise for a refusal the user can act on, and the JSON error shape
every call under the API's paths answers with (`{"error": {"code", "message"}}`, with the
WWW-Authenticate challenge its status calls for)."""

from __future__ import annotations

import json

from django.http import HttpResponse


class ServiceError(Exception):
    """A write refused for a reason the user can act on; nothing was changed."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


class Forbidden(ServiceError):
    """The policy, asked again under lock, refuses the acting member."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message, field, status=403)


# Where bearer-token calls live: every answer there is JSON, never an HTML page.
API_PREFIXES = ("/api/", "/codex/")
REALM = 'Bearer realm="codex"'


def json_response(body, status: int = 200) -> HttpResponse:
    """JSON, never cached. `json.dumps` straight: DjangoJSONEncoder's extra types are not
    needed, and the API answers on every Codex run."""
    response = HttpResponse(json.dumps(body), content_type="application/json", status=status)
    response["Cache-Control"] = "no-store"
    return response


_CHALLENGE_TEXT = str.maketrans({"\\": "\\\\", '"': '\\"', "“": "'", "”": "'", "’": "'",
                                 "…": "..."})


def error_response(status: int, code: str, message: str) -> HttpResponse:
    """The contract's error shape, with the WWW-Authenticate challenge its status calls for."""
    response = json_response({"error": {"code": code, "message": message}}, status)
    # A header is Latin-1 at most, and this one a quoted string: plain ASCII, its straight
    # quotes and backslashes escaped (so a JSON example reads as JSON once unquoted).
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


def api_error(request, status: int, code: str, message: str) -> HttpResponse | None:
    """For the site's error handlers: under the API's paths, the JSON error instead of a page."""
    if request.path.startswith(API_PREFIXES):
        return error_response(status, code, message)
    return None
