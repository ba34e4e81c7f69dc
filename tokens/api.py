"""The JSON API for automation: who am I, and start a run.

One check decides every request (`authenticate`): bearer header only, token shape and checksum,
one query by digest that also fetches everything the policy needs (expiry, revocation, the
creator's membership, the plan, the toggles, custom roles held through groups), then
`workspaces.permissions.holds` decides. Failures are counted per client address and throttled.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote_plus

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.http import HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import path
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from workspaces.audit import client_ip
from workspaces.models import CustomRole, Group, Membership, User, Workspace
from workspaces.permissions import Facts, Perm, holds, token_use_sql

from . import codec
from .models import AccessToken, Run

logger = logging.getLogger(__name__)
REALM = 'Bearer realm="codex"'
LAST_USED_EVERY = timedelta(minutes=1)
_TOKEN_IN_TEXT = re.compile(r"cxat_[0-9A-Za-z]{36}")
_ACCESS_TOKEN_PARAM = re.compile(r'(?:^|[&{,\s])"?access_token"?\s*[=:]')
CLIENT_MAX = Run._meta.get_field("client").max_length
COMMAND_MAX = Run._meta.get_field("command").max_length


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Grant:
    """A token that may act, and what the response needs to say about it."""

    token_id: int
    token_name: str
    expires_at: datetime | None
    last_used_at: datetime | None
    workspace_id: int
    workspace_slug: str
    workspace_name: str
    user_id: int
    user_email: str

    def body(self) -> dict:
        return {
            "user": {"email": self.user_email},
            "workspace": {"slug": self.workspace_slug, "name": self.workspace_name},
            "token": {"id": self.token_id, "name": self.token_name,
                      "expires_at": _iso(self.expires_at)},
        }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _aware(value) -> datetime | None:
    # PostgreSQL hands back aware datetimes; SQLite hands back text in UTC.
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    parsed = parse_datetime(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _error(status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    description = message.replace("\\", "").replace('"', "'")
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
    response["Cache-Control"] = "no-store"
    return response


# Throttling ------------------------------------------------------------------------------


def _throttle_keys(ip: str) -> tuple[str, str]:
    # One IPv6 client usually holds a whole /64: count it as one address.
    if ":" in ip:
        ip = str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return f"api-fail:{ip}", f"api-fail-start:{ip}"


def _throttled(ip: str) -> int | None:
    """Seconds until this address may try again, or None when it is not throttled.

    The throttle is a second line of defence: if the cache is down, calls go on (and say so in
    the log) rather than fail.
    """
    count_key, start_key = _throttle_keys(ip)
    try:
        values = cache.get_many([count_key, start_key])
    except Exception:
        logger.warning("API throttle: the cache is unreachable; not throttling", exc_info=True)
        return None
    if values.get(count_key, 0) < settings.API_FAILURE_LIMIT:
        return None
    started = values.get(start_key, time.time())
    return max(1, int(started + settings.API_FAILURE_WINDOW - time.time()) + 1)


def _count_failure(ip: str) -> None:
    count_key, start_key = _throttle_keys(ip)
    window = settings.API_FAILURE_WINDOW
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
        logger.warning("API throttle: the cache is unreachable; failure not counted",
                       exc_info=True)


# The check -------------------------------------------------------------------------------


def _cursor():
    """A cursor for the hot path's statements.

    On PostgreSQL it binds parameters on the server, so psycopg prepares each statement once
    per connection: planning the lookup's joins costs more than running it. It is still
    Django's cursor wrapper (errors, execute wrappers, query logging all apply).

    It skips Django's per-request health check (a SELECT 1 round trip): a connection that
    died makes the statement fail, the call answers 503, and Django replaces the connection
    at the start of the next request because an error occurred on it.
    """
    if connection.vendor != "postgresql":
        return connection.cursor()
    import psycopg

    connection.ensure_connection()
    return connection._prepare_cursor(psycopg.Cursor(connection.connection))


_FACTS_SQL = None


def _facts_sql() -> str:
    """SELECT everything the check needs about the token with digest %(digest)s, in one row.

    Columns, in order: token id, name, expires at, revoked at, last used at; workspace id,
    slug, name, plan, the two toggles; creator id, email, active; the creator's role (NULL when
    no longer a member); whether a custom role held through a group grants Codex Local, and
    whether one grants access tokens.
    """
    global _FACTS_SQL
    if _FACTS_SQL is None:
        grant = (
            "EXISTS (SELECT 1 FROM {gm} gm JOIN {rg} rg ON rg.group_id = gm.group_id "
            "JOIN {cr} cr ON cr.id = rg.customrole_id WHERE gm.membership_id = m.id "
            "AND cr.workspace_id = m.workspace_id AND cr.{col})"
        )
        tables = {"gm": Group.members.through._meta.db_table,
                  "rg": CustomRole.groups.through._meta.db_table,
                  "cr": CustomRole._meta.db_table}
        local = grant.format(col="grants_codex_local", **tables)
        tokens = grant.format(col="grants_access_tokens", **tables)
        _FACTS_SQL = (
            "SELECT t.id AS token_id, t.name AS token_name, t.expires_at, t.revoked_at, "
            "t.last_used_at, w.id AS workspace_id, w.slug, w.name AS workspace_name, w.plan, "
            "w.allow_codex_local, w.allow_access_tokens, u.id AS user_id, u.email, "
            "u.is_active, m.role, "
            f"CASE WHEN m.id IS NULL THEN FALSE ELSE {local} END AS custom_local, "
            f"CASE WHEN m.id IS NULL THEN FALSE ELSE {tokens} END AS custom_tokens "
            f"FROM {AccessToken._meta.db_table} t "
            f"JOIN {Workspace._meta.db_table} w ON w.id = t.workspace_id "
            f"JOIN {User._meta.db_table} u ON u.id = t.created_by_id "
            f"LEFT JOIN {Membership._meta.db_table} m "
            "ON m.workspace_id = t.workspace_id AND m.user_id = t.created_by_id "
            "WHERE t.digest = %(digest)s"
        )
    return _FACTS_SQL


_RUN_SQL_PG = None


def _run_sql_pg() -> str:
    """Check and record a run in one statement, one round trip (PostgreSQL).

    It returns the token's facts row (for the Python check, which decides the answer) with
    the new run's id at the end, or NULL there when no run was recorded. The conditional
    UPDATE takes the token's row lock and re-checks revocation and expiry under it, so a
    revocation that committed first always wins; only a token that passes the policy (its SQL
    form, `workspaces.permissions.token_use_sql`) yields a row for the INSERT.
    """
    global _RUN_SQL_PG
    if _RUN_SQL_PG is None:
        allowed = token_use_sql(
            role="f.role", plan="f.plan", allow_local="f.allow_codex_local",
            allow_tokens="f.allow_access_tokens", custom_local="f.custom_local",
            custom_tokens="f.custom_tokens",
        )
        _RUN_SQL_PG = (
            f"WITH f AS ({_facts_sql()}), "
            f"used AS (UPDATE {AccessToken._meta.db_table} t SET last_used_at = %(now)s, "
            "last_used_ip = %(ip)s FROM f WHERE t.id = f.token_id AND t.revoked_at IS NULL "
            "AND (t.expires_at IS NULL OR t.expires_at > %(now)s) AND f.is_active "
            f"AND f.role IS NOT NULL AND {allowed} "
            "RETURNING t.id, t.workspace_id, t.created_by_id), "
            f"run AS (INSERT INTO {Run._meta.db_table} "
            "(workspace_id, token_id, user_id, started_at, client, command, ip, user_agent) "
            "SELECT workspace_id, id, created_by_id, %(now)s, %(client)s, %(command)s, %(ip)s, "
            "%(agent)s FROM used RETURNING id) "
            "SELECT f.*, (SELECT id FROM run) FROM f"
        )
    return _RUN_SQL_PG


def _token_outside_header(request) -> bool:
    """Whether a token (or an access_token parameter) came in the query string or the body."""
    query = unquote_plus(request.META.get("QUERY_STRING", ""))
    if "access_token" in query or _TOKEN_IN_TEXT.search(query):
        return True
    body = request.body.decode("utf-8", "replace") if request.body else ""
    return bool(_TOKEN_IN_TEXT.search(body) or _ACCESS_TOKEN_PARAM.search(body))


@sensitive_variables("header", "credential")
def _digest_of_bearer(request) -> str:
    """The digest of the request's bearer token, after every check that needs no database."""
    if _token_outside_header(request):
        raise Refusal(400, "invalid_request",
                      "Send the access token in the Authorization header as a Bearer token, "
                      "never in the query string or the body.")
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise Refusal(401, "missing_token",
                      "Send an access token in the Authorization header: Bearer cxat_...")
    kind = codec.classify(credential)
    if kind in (codec.Kind.API_KEY, codec.Kind.SESSION_KEY):
        what = "a Platform API key" if kind is codec.Kind.API_KEY else "a browser session key"
        raise Refusal(401, "wrong_credential_type",
                      f"This is {what}. Use a Codex access token (cxat_...) from the "
                      "Access tokens page.")
    if kind is codec.Kind.MALFORMED:
        raise Refusal(401, "malformed_token", "This is not a valid Codex access token.")
    return codec.digest(credential)


def _decide(row, now) -> Grant:
    """Whether the token whose facts are `row` may act now, by the policy. Raises `Refusal`."""
    if row is None:
        raise Refusal(401, "invalid_token", "This access token does not exist.")
    (token_id, token_name, expires_at, revoked_at, last_used_at, workspace_id, slug, ws_name,
     plan, allow_local, allow_tokens, user_id, email, user_active, role, custom_local,
     custom_tokens) = row[:17]
    if revoked_at is not None:
        raise Refusal(401, "token_revoked", "This access token has been revoked.")
    expires_at = _aware(expires_at)
    if expires_at is not None and expires_at <= now:
        raise Refusal(401, "token_expired", "This access token has expired.")
    if role is None or not user_active:
        raise Refusal(403, "access_denied",
                      "The member who created this token is no longer in the workspace.")
    perms = holds(Facts(role=role, plan=plan, allow_codex_local=bool(allow_local),
                        allow_access_tokens=bool(allow_tokens),
                        custom_codex_local=bool(custom_local),
                        custom_access_tokens=bool(custom_tokens)))
    if Perm.USE_CODEX_LOCAL not in perms or Perm.USE_ACCESS_TOKENS not in perms:
        raise Refusal(403, "access_denied",
                      "The token's creator no longer has Codex Local access and the access "
                      "token permission in this workspace. Ask a workspace owner or admin to "
                      "confirm that access tokens are enabled and that the role includes the "
                      "access token permission.")
    return Grant(token_id=token_id, token_name=token_name, expires_at=expires_at,
                 last_used_at=_aware(last_used_at), workspace_id=workspace_id,
                 workspace_slug=slug, workspace_name=ws_name, user_id=user_id, user_email=email)


def _fetch(sql: str, params: dict):
    with _cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def authenticate(request) -> Grant:
    """Decide whether the bearer token of this request may act now. Raises `Refusal`."""
    digest = _digest_of_bearer(request)
    return _decide(_fetch(_facts_sql(), {"digest": digest}), timezone.now())


def _guarded(handler):
    """Run `handler(request, ip)` behind the throttle, the error shape and the 503 guard."""

    @csrf_exempt  # bearer-token API: browser sessions are not credentials here, so no CSRF
    @sensitive_variables()
    def view(request):
        ip = client_ip(request) or "unknown"
        retry_after = _throttled(ip)
        if retry_after is not None:
            response = _error(429, "rate_limited",
                              "Too many failed attempts from this address. Try again later.")
            response["Retry-After"] = str(retry_after)
            return response
        try:
            return handler(request, ip if ip != "unknown" else None)
        except Refusal as refusal:
            if refusal.status in (401, 403):
                _count_failure(ip)
            return _error(refusal.status, refusal.code, refusal.message)
        except DatabaseError:
            return _error(503, "unavailable",
                          "The console cannot reach its database. Try again shortly.")

    view.__name__ = handler.__name__
    return view


def _json(body: dict, status: int = 200) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _whoami(request, ip: str | None) -> HttpResponse:
    grant = authenticate(request)
    now = timezone.now()
    if grant.last_used_at is None or now - grant.last_used_at >= LAST_USED_EVERY:
        AccessToken.objects.filter(pk=grant.token_id, revoked_at__isnull=True).update(
            last_used_at=now, last_used_ip=ip
        )
    return _json(grant.body())


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


def _record_run_atomically(digest, now, run) -> tuple[Grant, int | None]:
    """Check, then record the run unless the token was revoked meanwhile (not PostgreSQL)."""
    grant = _decide(_fetch(_facts_sql(), {"digest": digest}), now)
    with transaction.atomic():
        used = AccessToken.objects.filter(pk=grant.token_id, revoked_at__isnull=True).exclude(
            expires_at__lte=now
        ).update(last_used_at=now, last_used_ip=run["ip"])
        if not used:
            return grant, None
        return grant, Run.objects.create(
            workspace_id=grant.workspace_id, token_id=grant.token_id, user_id=grant.user_id,
            started_at=now, client=run["client"], command=run["command"], ip=run["ip"],
            user_agent=run["agent"],
        ).pk


def _start_run(request, ip: str | None) -> HttpResponse:
    digest = _digest_of_bearer(request)
    client, command = _run_input(request)
    now = timezone.now()
    run = {"client": client, "command": command, "ip": ip,
           "agent": request.META.get("HTTP_USER_AGENT", "")[:300]}
    if connection.vendor == "postgresql":
        row = _fetch(_run_sql_pg(), {"digest": digest, "now": now, **run})
        grant, run_id = _decide(row, now), (row[-1] if row else None)
    else:
        grant, run_id = _record_run_atomically(digest, now, run)
    if run_id is None:  # revoked (or expired) between the check and the write
        if grant.expires_at is not None and grant.expires_at <= now:
            raise Refusal(401, "token_expired", "This access token has expired.")
        raise Refusal(401, "token_revoked", "This access token has been revoked.")
    return _json({"id": run_id, "started_at": _iso(now), **grant.body()}, status=201)


whoami = require_GET(_guarded(_whoami))
start_run = require_POST(_guarded(_start_run))


def openapi(request):
    from .openapi import DOCUMENT

    return JsonResponse(DOCUMENT)


urlpatterns = [
    path("whoami", whoami, name="api_whoami"),
    path("runs", start_run, name="api_runs"),
    path("openapi.json", openapi, name="api_openapi"),
]
