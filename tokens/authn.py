"""Who a bearer token acts as, and whether it may act now.

The check: bearer header only, token shape and checksum (no database), then one query by digest
(tokens/sql/token_facts.sql) that also fetches everything the policy needs (expiry, revocation,
the creator's membership, the plan, the toggles, custom roles held through groups), then
`decide`: the token's status (`tokens.models.status_of`), its allowed ranges, and the policy
(`workspaces.permissions.holds`). Refusals are `Refusal` exceptions carrying the API's status
and error code.
"""

from __future__ import annotations

import re
from collections import namedtuple
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote_plus

from django.db import DEFAULT_DB_ALIAS, connections
from django.utils.dateparse import parse_datetime
from django.views.decorators.debug import sensitive_variables

from console.django_private import hot_cursor, server_binding_cursor
from console.sql import statement
from workspaces.permissions import Facts, holds, may_use_tokens

from . import codec, ipranges
from .models import TokenStatus, status_of

_ACCESS_TOKEN_PARAM = re.compile(r'(?:^|[&{,\s])"?access_token"?\s*[=:]')


class Refusal(Exception):
    """A call refused, as the API answers it. `token_id`: the token refused, when it exists (the
    throttle counts the same token once per window)."""

    def __init__(self, status: int, code: str, message: str, token_id: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.token_id = token_id


REVOKED = (401, "token_revoked", "This access token has been revoked.")
EXPIRED = (401, "token_expired", "This access token has expired.")


@dataclass(frozen=True)
class Grant:
    """A token that may act, and what the responses need to say about it."""

    token_id: int
    token_name: str
    expires_at: datetime | None
    last_used_at: datetime | None
    workspace_id: int
    workspace_slug: str
    workspace_name: str
    workspace_plan: str
    user_id: int
    user_email: str
    # The service account's name when the token's creator is one (None: a person).
    service_account: str | None = None

    @property
    def handle(self) -> str:
        """How the console names the creator: the email, or `svc:<name>`."""
        return self.user_email if self.service_account is None else f"svc:{self.service_account}"

    def user_body(self) -> dict:
        """whoami's `user`: a person's email, or a service account's name (and no email)."""
        if self.service_account is not None:
            return {"email": None, "service_account": self.service_account}
        return {"email": self.user_email}

    def body(self) -> dict:
        return {
            "user": self.user_body(),
            "workspace": {"slug": self.workspace_slug, "name": self.workspace_name},
            "token": {"id": self.token_id, "name": self.token_name,
                      "expires_at": iso(self.expires_at)},
        }


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def aware(value) -> datetime | None:
    # PostgreSQL hands back aware datetimes; SQLite hands back text in UTC.
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    parsed = parse_datetime(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


FACTS_SQL = statement(Path(__file__).parent / "sql" / "token_facts.sql")

# FACTS_SQL's columns, in order: rows are read by these names (`row.role`). Asking the cursor
# for its description instead builds a dozen objects per call on the hot path; a test checks
# the two agree on every database.
TokenFacts = namedtuple("TokenFacts", (
    "token_id token_name expires_at revoked_at last_used_at allowed_ips workspace_id "
    "workspace_slug workspace_name plan allow_codex_local allow_access_tokens user_id "
    "user_email user_active service_account role custom_grants"))
# custom_grants: what custom roles held through the creator's groups grant, as bits.
CUSTOM_CODEX_LOCAL, CUSTOM_ACCESS_TOKENS = 1, 2


def fetch_one(sql, params: dict, row_type=TokenFacts):
    """One row of `sql` as a `row_type`, its columns readable by name (None when no row).

    On PostgreSQL the statement binds on the server, so psycopg prepares it once per connection
    (unless DB_PREPARED_STATEMENTS=false): planning the lookup's joins costs more than running
    it. It skips Django's per-request health check (a SELECT 1 round trip): a connection that
    died makes the statement fail, the call answers 503, and Django replaces the connection at
    the start of the next request because an error occurred on it.
    """
    conn = connections[DEFAULT_DB_ALIAS]  # once: each `connection.x` goes through a proxy
    if conn.vendor != "postgresql":
        with conn.cursor() as c:
            c.execute(sql, params)
            row = c.fetchone()
    elif not conn.queries_logged and not conn.execute_wrappers:
        with hot_cursor(conn) as c:
            c.execute(sql, params)
            row = c.fetchone()
    else:  # queries are watched (DEBUG's query log, a test counting queries)
        with server_binding_cursor(conn) as c:
            c.execute(sql, params)
            row = c.fetchone()
    return None if row is None else row_type._make(row)


def token_outside_header(request, check_body: bool = True) -> bool:
    """Whether a token (or an access_token parameter) came in the query string or the body."""
    query = request.META.get("QUERY_STRING", "")
    if query:
        query = unquote_plus(query)
        if "access_token" in query or codec.FIND_RE.search(query):
            return True
    if not check_body or request.META.get("CONTENT_LENGTH") in (None, "", "0"):
        return False
    body = request.body.decode("utf-8", "replace") if request.body else ""
    return bool(codec.FIND_RE.search(body) or _ACCESS_TOKEN_PARAM.search(body))


@sensitive_variables("header", "credential")
def digest_of_bearer(request, check_body: bool = True) -> str:
    """The digest of the request's bearer token, after every check that needs no database."""
    if token_outside_header(request, check_body):
        raise Refusal(400, "invalid_request",
                      "Send the access token in the Authorization header as a Bearer token, "
                      "never in the query string or the body.")
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise Refusal(401, "missing_token",
                      f"Send an access token in the Authorization header: Bearer {codec.PREFIX}...")
    kind = codec.classify(credential)
    if kind in (codec.Kind.API_KEY, codec.Kind.SESSION_KEY):
        what = "a Platform API key" if kind is codec.Kind.API_KEY else "a browser session key"
        raise Refusal(401, "wrong_credential_type",
                      f"This is {what}. Use a Codex access token ({codec.PREFIX}...) from the "
                      "Access tokens page.")
    if kind is codec.Kind.MALFORMED:
        raise Refusal(401, "malformed_token", "This is not a valid Codex access token.")
    return codec.digest(credential)


def facts_of(row) -> Facts:
    return Facts(role=row.role, plan=row.plan, allow_codex_local=bool(row.allow_codex_local),
                 allow_access_tokens=bool(row.allow_access_tokens),
                 custom_codex_local=bool(row.custom_grants & CUSTOM_CODEX_LOCAL),
                 custom_access_tokens=bool(row.custom_grants & CUSTOM_ACCESS_TOKENS))


class OutsideRanges(Refusal):
    """The call comes from outside the token's allowed IP ranges."""

    def __init__(self, token_id: int):
        super().__init__(403, "ip_not_allowed",
                         "This access token may not be used from this address: it is outside "
                         "the token's allowed IP ranges.", token_id)


def decide(row, now, ip: str | None) -> Grant:
    """Whether the token whose facts are `row` may act now, from `ip`, by the policy. Raises
    `Refusal`."""
    if row is None:
        raise Refusal(401, "invalid_token", "This access token does not exist.")
    expires_at = aware(row.expires_at)
    status = status_of(row.revoked_at, expires_at, now)
    if status == TokenStatus.REVOKED:
        raise Refusal(*REVOKED, row.token_id)
    if status == TokenStatus.EXPIRED:
        raise Refusal(*EXPIRED, row.token_id)
    if not ipranges.allows(row.allowed_ips, ip):
        raise OutsideRanges(row.token_id)
    if row.role is None or not row.user_active:
        raise Refusal(403, "access_denied",
                      "The member who created this token is no longer in the workspace.",
                      row.token_id)
    if not may_use_tokens(holds(facts_of(row))):
        raise Refusal(403, "access_denied",
                      "The token's creator no longer has Codex Local access and the access "
                      "token permission in this workspace. Ask a workspace owner or admin to "
                      "confirm that access tokens are enabled and that the role includes the "
                      "access token permission.", row.token_id)
    return Grant(token_id=row.token_id, token_name=row.token_name, expires_at=expires_at,
                 last_used_at=aware(row.last_used_at), workspace_id=row.workspace_id,
                 workspace_slug=row.workspace_slug, workspace_name=row.workspace_name,
                 workspace_plan=row.plan, user_id=row.user_id, user_email=row.user_email,
                 service_account=row.service_account)


def grant_for(digest: str, now, ip: str | None) -> Grant:
    """Decide whether the token with this digest may act now, from `ip`. Raises `Refusal`."""
    return decide(fetch_one(FACTS_SQL, {"digest": digest}), now, ip)


def authenticate(request, now, ip: str | None) -> Grant:
    """Decide whether the bearer token of this request may act now. Raises `Refusal`."""
    return grant_for(digest_of_bearer(request), now, ip)
