"""The Codex CLI against the console: the three base URLs the CLI can be pointed at.

- `/codex/auth/v1/user-auth-credential/whoami`: who an access token acts as, in the CLI's
  words (`codex login --with-access-token`, and the start of every `codex exec`).
- `/codex/backend-api/wham/config/bundle`: the workspace's managed configuration (the console
  as the CLI's model provider, over HTTPS; apps and plugins off).
- `/codex/api/models`: the model list the CLI refreshes, empty (it keeps its own catalog).
- `/codex/api/responses`: one POST per turn, served by tokens/turns.py with the steps here: the
  check before any of the body is read (`turn_check`), the body (`turn_body`), the record once
  the provider accepted the turn (`turn_record`: the first accepted turn of a thread records a
  run, later ones count on it), and what the CLI hears when the provider does not accept it
  (`upstream_refusal`).

Refusals are the API's (same statuses, codes and challenges, same throttle). Anything else under
`/codex/` is a JSON 404, which the CLI goes on without.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse
from django.urls import path
from django.utils import timezone

from console.errors import error_response, json_response

from . import provider
from .api import not_found
from .authn import Grant, Refusal, digest_of_bearer, grant_for
from .handlers import authorize, guarded, refused, unavailable
from .services import runs

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Checked:
    """A turn whose token may act: what the rest of the turn needs."""

    digest: str
    ip: str | None
    upstream: str
    grant: Grant


@guarded("GET", "POST")
def turn_check(request, ip: str | None):
    """The check of a turn, before any of its body is read: the method, the throttle, the
    token (header only: the conversation may quote anything, a token included), and the
    body's announced size. Returns `Checked`, or the refusal as a response."""
    if request.method == "GET":
        if request.META.get("HTTP_UPGRADE", "").lower() == "websocket":
            # The CLI tries a WebSocket first; 426 makes it use HTTPS at once.
            # (No Upgrade header: WSGI servers refuse hop-by-hop headers from applications.)
            return error_response(426, "upgrade_required",
                                  "This console answers over HTTPS, not WebSockets.")
        raise Refusal(405, "method_not_allowed", "POST a turn here.")
    digest = turn_digest(request)
    grant = grant_for(digest, timezone.now(), ip)
    upstream = upstream_url()
    if not upstream and not settings.DEBUG:
        raise Refusal(503, "no_model_provider",
                      "No model provider is configured for this console (CODEX_UPSTREAM_URL).")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Refusal(400, "invalid_request", "The Content-Length header is not a number.") from None
    if length > settings.CODEX_GATEWAY_MAX_BODY:
        raise Refusal(*TOO_LARGE)
    return Checked(digest=digest, ip=ip, upstream=upstream, grant=grant)


def upstream_url() -> str:
    """Where turns go: the provider's `/responses` address, from `CODEX_UPSTREAM_URL` in
    either form (tokens/provider.py); empty: no provider."""
    configured = settings.CODEX_UPSTREAM_URL
    return provider.responses_url(configured) if configured else ""


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


TOO_LARGE = (413, "request_too_large", "The request body is too large.")


def _decoded(raw: bytes, encoding: str) -> bytes:
    """The request body, decompressed (the CLI sends zstd), within the configured bounds."""
    limit = settings.CODEX_GATEWAY_MAX_BODY
    if len(raw) > limit:
        raise Refusal(*TOO_LARGE)
    encoding = encoding.strip().lower()
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
        raise Refusal(*TOO_LARGE)
    return body


def _model_of(body: bytes) -> str:
    """The model the turn asks for, as the body names it (what the provider is sent)."""
    try:
        model = json.loads(body).get("model")
    except (ValueError, AttributeError):
        return ""
    return _storable(model, 100)


def turn_body(request, raw: bytes) -> tuple[bytes, str]:
    """The turn's body (`raw`, as it came), decompressed, and the model it names: `(body,
    model)`. Raises `Refusal` (too large, an unknown encoding, not zstd)."""
    body = _decoded(raw, request.META.get("HTTP_CONTENT_ENCODING", ""))
    return body, _model_of(body)


def turn_record(request, checked: Checked, model: str):
    """Record the turn the provider accepted: the run of its thread, or one more turn on it (a
    turn sent again, with the same `turn_id`, once). The token is checked again as the run is
    written, so a revocation that came meanwhile wins. Returns the `Grant`, or the refusal as a
    response."""
    metadata = _turn_metadata(request)
    agent = request.META.get("HTTP_USER_AGENT", "")[:300]
    thread_id = _storable(metadata.get("thread_id"), 100) or request.META.get("HTTP_THREAD_ID", "")[:100]
    try:
        grant, _ = runs.run_start(
            digest=checked.digest, now=timezone.now(), client=_client_of(agent)[:200],
            ip=checked.ip, agent=agent, thread_id=thread_id,
            model=model or _storable(metadata.get("model"), 100),
            sandbox_mode=_storable(metadata.get("sandbox_mode"), 50),
            turn_id=_storable(metadata.get("turn_id"), 100),
        )
    except Refusal as refusal:
        return refused(refusal, checked.ip or "unknown")
    except DatabaseError:
        return unavailable(request)
    return grant


UPSTREAM_UNAVAILABLE = "The model provider cannot be reached. Try again shortly."


def upstream_refusal(status: int, content_type: str, retry_after: str | None,
                     detail: bytes) -> HttpResponse:
    """What the CLI hears when the provider does not accept the turn: a 4xx about the turn
    itself (too long, rate limited, ...) whose body is JSON, relayed with its Retry-After;
    anything else (an HTML page, a 401 or 403 about the console's own key, a 5xx) is 502
    `upstream_unavailable`, the provider's words in the log only."""
    if 400 <= status < 500 and status not in (401, 403) and "json" in content_type.lower():
        try:
            json.loads(detail)
        except ValueError:
            pass
        else:
            response = HttpResponse(detail, status=status, content_type="application/json")
            response["Cache-Control"] = "no-store"
            if retry_after and retry_after.strip().isdigit():
                response["Retry-After"] = retry_after.strip()
            return response
    # Not the user's token: a 401 passed on would make the CLI think its access token was
    # refused.
    logger.warning("The model provider answered %s: %s", status,
                   detail[:500].decode("utf-8", "replace"))
    return error_response(502, "upstream_unavailable",
                          f"The model provider answered {status}. Try again shortly; if it "
                          "lasts, the console's operator should check its model provider settings.")


def upstream_unreachable(host: str) -> HttpResponse:
    logger.warning("The model provider at %s cannot be reached", host, exc_info=True)
    return error_response(502, "upstream_unavailable", UPSTREAM_UNAVAILABLE)


_RESPONSES_PATH = "/codex/api/responses"

urlpatterns = [
    path("auth/v1/user-auth-credential/whoami", whoami, name="codex_whoami"),
    path("api/models", models, name="codex_models"),
    path("backend-api/wham/config/bundle", config_bundle, name="codex_config_bundle"),
    path("", not_found),
    path("<path:rest>", not_found),
]
