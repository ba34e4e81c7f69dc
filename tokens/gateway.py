"""The Codex CLI against the console: the three base URLs the CLI can be pointed at.

- `/codex/auth/v1/user-auth-credential/whoami`: who an access token acts as, in the CLI's
  words (`codex login --with-access-token`, and the start of every `codex exec`).
- `/codex/backend-api/wham/config/bundle`: the workspace's managed configuration (the console
  as the CLI's model provider, over HTTPS; apps and plugins off).
- `/codex/api/models`: the model list the CLI refreshes, empty (it keeps its own catalog).
- `/codex/api/responses`: one POST per turn. The run-start check decides (as `POST /api/v1/runs`
  does), the first turn of a thread records a run and later turns count on it, then the request
  goes on to the model provider and its server-sent events stream back as they arrive.

Refusals are the API's (same statuses, codes and challenges, same throttle). Anything else under
`/codex/` is a JSON 404, which the CLI goes on without.
"""

from __future__ import annotations

import json
import logging
import re
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path
from django.utils import timezone

from console.errors import error_response, json_response

from . import demo_model, provider
from .api import not_found
from .authn import Grant, Refusal, digest_of_bearer, grant_for
from .handlers import authorize, guarded
from .services import runs

logger = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
UPSTREAM_CONNECT_TIMEOUT = 10
# The CLI waits up to 300 s for the next event of a stream; so do we.
UPSTREAM_IDLE_TIMEOUT = 300
_USER_AGENT_PRODUCT = re.compile(r"^([A-Za-z0-9_.-]+)/([0-9A-Za-z_.+-]+)")


def chatgpt_ids(grant: Grant) -> dict:
    """The stable ids the CLI knows a user and a workspace by."""
    return {"chatgpt_user_id": f"user-{grant.user_id}",
            "chatgpt_account_id": f"workspace-{grant.workspace_id}"}


@authorize("GET")
def whoami(request, grant: Grant, ip: str | None) -> HttpResponse:
    # A service account has no email to show: the field is left out.
    return json_response({
        **({"email": grant.user_email} if grant.service_account is None else {}),
        **chatgpt_ids(grant),
        "chatgpt_plan_type": grant.workspace_plan,
        "chatgpt_account_is_fedramp": False,
    })


# The managed configuration a CLI signed in through the console takes: its turns go straight
# to the console over HTTPS (as a model provider of its own, without the WebSocket attempt the
# built-in one makes first), and ChatGPT's apps and plugins, which the console does not serve,
# stay off. The user's own config.toml and -c options still win over it.
MANAGED_CONFIG = """\
model_provider = "workspace_console"

[model_providers.workspace_console]
name = {name}
base_url = {base_url}
wire_api = "responses"
requires_openai_auth = true
supports_websockets = false

[features]
apps = false
plugins = false
"""


@authorize("GET", touch=False)
def config_bundle(request, grant: Grant, ip: str | None) -> HttpResponse:
    """The workspace's managed configuration, as the CLI takes it: TOML fragments under
    `config_toml.enterprise_managed`. The console's settings (Codex Local, access tokens) are
    enforced by the console at every call; the fragment points the CLI's turns at the console,
    at the address the CLI reached it by."""
    base_url = request.build_absolute_uri(_RESPONSES_PATH).removesuffix("/responses")
    contents = MANAGED_CONFIG.format(
        # JSON strings are TOML basic strings: quotes and backslashes escaped alike.
        name=json.dumps(f"{grant.workspace_name} (workspace console)"),
        base_url=json.dumps(base_url),
    )
    return json_response({"config_toml": {"enterprise_managed": [
        {"id": "workspace-console", "name": "Workspace console", "contents": contents},
    ]}})


@guarded("GET")
def models(request, ip: str | None) -> HttpResponse:
    """The model list the CLI refreshes: empty, so it keeps its own catalog and the model its
    user chose. Nothing here depends on who asks."""
    return json_response({"models": []})


def _client_of(agent: str) -> str:
    """`codex_exec/0.171.0 (Debian 12; x86_64) ...` -> `codex_exec 0.171.0`."""
    found = _USER_AGENT_PRODUCT.match(agent)
    return f"{found.group(1)} {found.group(2)}" if found else agent[:100]


def _turn_metadata(request) -> dict:
    try:
        metadata = json.loads(request.META.get("HTTP_X_CODEX_TURN_METADATA", "") or "{}")
    except ValueError:
        return {}
    return metadata if isinstance(metadata, dict) else {}


def _storable(value, limit: int) -> str:
    """A string from the CLI's metadata as storable text: no NUL, nothing that is not UTF-8
    (a lone surrogate becomes "?"), at most `limit` characters; anything else is ""."""
    if not isinstance(value, str):
        return ""
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")[:limit]


def _turn_body(request) -> bytes:
    """The request body, decompressed (the CLI sends zstd), within the configured bounds."""
    limit = settings.CODEX_GATEWAY_MAX_BODY
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > limit:
        raise Refusal(413, "request_too_large", "The request body is too large.")
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise Refusal(413, "request_too_large", "The request body is too large.")
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "zstd":
        raise Refusal(415, "unsupported_encoding", "Send the body plain or zstd-compressed.")
    import zstandard

    try:
        with zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True) as reader:
            body = reader.read(limit + 1)
    except zstandard.ZstdError:
        raise Refusal(400, "invalid_request", "The body is not valid zstd.") from None
    if len(body) > limit:
        raise Refusal(413, "request_too_large", "The request body is too large.")
    return body


def missing_token_on_turns(console_url: str) -> Refusal:
    """The refusal of a turn that came with no token. The CLI stops sending its token once the
    console has refused it (at whoami), so this is what a revoked token, a withdrawn permission
    or a wrong address ends in: say so, and how to see the reason."""
    return Refusal(401, "missing_token",
                   "No access token arrived. The Codex CLI stops sending its token after the "
                   "console refused it: check it with curl -H \"Authorization: Bearer "
                   f"$CODEX_ACCESS_TOKEN\" {console_url}/api/v1/whoami (revoked, expired, "
                   "permission withdrawn, or outside the token's allowed IP ranges).")


def turn_digest(request) -> str:
    """The digest of a turn's bearer token, after every check that needs no database. The
    conversation may quote anything, a token included: only the header is looked at."""
    try:
        return digest_of_bearer(request, check_body=False)
    except Refusal as refusal:
        if refusal.code != "missing_token":
            raise
        raise missing_token_on_turns(request.build_absolute_uri("/").rstrip("/")) from None


@guarded("GET", "POST")
def responses(request, ip: str | None) -> HttpResponse:
    if request.method == "GET":
        if request.META.get("HTTP_UPGRADE", "").lower() == "websocket":
            # The CLI tries a WebSocket first; 426 makes it use HTTPS at once.
            # (No Upgrade header: WSGI servers refuse hop-by-hop headers from applications.)
            return error_response(426, "upgrade_required",
                                  "This console answers over HTTPS, not WebSockets.")
        raise Refusal(405, "method_not_allowed", "POST a turn here.")
    digest = turn_digest(request)
    body = _turn_body(request)
    upstream = settings.CODEX_UPSTREAM_URL
    if not upstream and not settings.DEBUG:
        grant_for(digest, timezone.now(), ip)  # a refused token hears why, not that there is no model
        raise Refusal(503, "no_model_provider",
                      "No model provider is configured for this console (CODEX_UPSTREAM_URL).")
    metadata = _turn_metadata(request)
    agent = request.META.get("HTTP_USER_AGENT", "")[:300]
    thread_id = _storable(metadata.get("thread_id"), 100) or request.META.get("HTTP_THREAD_ID", "")[:100]
    grant, run_id = runs.run_start(
        digest=digest, now=timezone.now(), client=_client_of(agent)[:200], ip=ip, agent=agent,
        thread_id=thread_id, model=_storable(metadata.get("model"), 100),
        sandbox_mode=_storable(metadata.get("sandbox_mode"), 50),
    )
    if not upstream:
        return _stream(demo_model.events(body, grant))
    return _relay(provider.responses_url(upstream), body)


def _stream(chunks) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="text/event-stream")
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"  # a proxy in front must not hold the events back
    return response


def _relay(url: str, body: bytes) -> HttpResponse:
    """POST the turn to the model provider and stream its answer back as it arrives."""
    parts = urlsplit(url)
    kind = HTTPSConnection if parts.scheme == "https" else HTTPConnection
    upstream = kind(parts.hostname, parts.port, timeout=UPSTREAM_CONNECT_TIMEOUT)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        upstream.request("POST", target, body=body, headers={
            "Authorization": f"Bearer {settings.CODEX_UPSTREAM_API_KEY}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        })
        upstream.sock.settimeout(UPSTREAM_IDLE_TIMEOUT)
        answer = upstream.getresponse()
    except (OSError, HTTPException):
        upstream.close()
        logger.warning("The model provider at %s cannot be reached", parts.hostname, exc_info=True)
        raise Refusal(502, "upstream_unavailable",
                      "The model provider cannot be reached. Try again shortly.") from None
    # The run is recorded; a stream can last minutes, so give the database connection back
    # rather than hold it idle meanwhile (not inside a transaction a caller still needs).
    if not connection.in_atomic_block:
        connection.close()

    def chunks():
        try:
            while True:
                chunk = answer.read1(READ_CHUNK)
                if not chunk:
                    return
                yield chunk
        except (OSError, HTTPException):
            logger.warning("The model provider's stream broke off", exc_info=True)
        finally:
            upstream.close()

    if answer.status in (401, 403) or answer.status >= 500:
        # The provider refused the console's own key, or failed: not the user's token (a 401
        # would make the CLI think its access token was refused), and the provider's words
        # (which may quote part of the key) stay in the log.
        detail = answer.read(READ_CHUNK)
        upstream.close()
        logger.warning("The model provider answered %s: %s", answer.status,
                       detail[:500].decode("utf-8", "replace"))
        raise Refusal(502, "upstream_unavailable",
                      f"The model provider answered {answer.status}. Try again shortly; if it "
                      "lasts, the console's operator should check its model provider settings.")
    if answer.status >= 400:  # about the turn itself (too long, rate limited, ...): the CLI's
        detail = answer.read(READ_CHUNK)
        upstream.close()
        response = HttpResponse(detail, status=answer.status,
                                content_type=answer.getheader("Content-Type", "application/json"))
        response["Cache-Control"] = "no-store"
        return response
    response = _stream(chunks())
    response["Content-Type"] = answer.getheader("Content-Type", "text/event-stream")
    return response


_RESPONSES_PATH = "/codex/api/responses"

urlpatterns = [
    path("auth/v1/user-auth-credential/whoami", whoami, name="codex_whoami"),
    path("api/models", models, name="codex_models"),
    path("backend-api/wham/config/bundle", config_bundle, name="codex_config_bundle"),
    path("api/responses", responses, name="codex_responses"),
    path("", not_found),
    path("<path:rest>", not_found),
]
