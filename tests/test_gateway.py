"""The Codex CLI's calls, through the console's /codex/ URLs: whoami in the CLI's words, the
config bundle, the WebSocket refusal, and the run gateway (check, one run per thread, relay)."""

import json
import socket
import threading
import tomllib
from datetime import timedelta

import pytest
import zstandard
from django.utils import timezone

from tokens import codec
from tokens.models import AccessToken, Run
from workspaces.models import CustomRole

from .factories import make_token
from .standin_model import ANSWER, StandinModel

WHOAMI = "/codex/auth/v1/user-auth-credential/whoami"
BUNDLE = "/codex/backend-api/wham/config/bundle"
RESPONSES = "/codex/api/responses"
AGENT = "codex_exec/0.171.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.171.0)"


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def turn_body(prompt="say hi"):
    return json.dumps({"model": "gpt-6.2-sol", "stream": True, "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]},
    ]}).encode()


def metadata(thread="thread-1", turn="turn-1", **extra):
    return json.dumps({"session_id": thread, "thread_id": thread, "turn_id": turn,
                       "model": "gpt-6.2-sol", "sandbox_mode": "read-only",
                       "request_kind": "turn", **extra})


def post_turn(client, token, thread="thread-1", body=None, compress=True, turn="turn-1", **extra):
    body = body if body is not None else turn_body()
    headers = {"HTTP_USER_AGENT": AGENT, "HTTP_X_CODEX_TURN_METADATA": metadata(thread, turn),
               "HTTP_ACCEPT": "text/event-stream"}
    if compress:
        body = zstandard.ZstdCompressor().compress(body)
        headers["HTTP_CONTENT_ENCODING"] = "zstd"
    if token is not None:
        headers.update(bearer(token))
    headers.update(extra)
    return client.post(RESPONSES, body, content_type="application/json", **headers)


def streamed(response) -> bytes:
    return b"".join(response.streaming_content)


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code


@pytest.fixture
def turns(asgi_server):
    """Turns go to the production ASGI application, served by uvicorn (tokens/turns.py)."""
    return asgi_server.client


@pytest.fixture
def demo(settings):
    settings.DEBUG = True
    settings.CODEX_UPSTREAM_URL = ""


# whoami and the bundle -------------------------------------------------------------------


def test_whoami_answers_in_the_clis_words(client, member_with_token_permission):
    token, plaintext = make_token(member_with_token_permission)
    response = client.get(WHOAMI, **bearer(plaintext))
    assert response.status_code == 200
    workspace = member_with_token_permission.workspace
    assert response.json() == {
        "email": "dora@acme.test",
        "chatgpt_user_id": f"user-{member_with_token_permission.user_id}",
        "chatgpt_account_id": f"workspace-{workspace.pk}",
        "chatgpt_plan_type": "enterprise",
        "chatgpt_account_is_fedramp": False,
    }
    assert client.get(WHOAMI, **bearer(plaintext)).json() == response.json()  # stable ids
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.parametrize("url", [WHOAMI, BUNDLE])
def test_refusals_are_the_apis(client, owner, member_with_token_permission, url):
    revoked, revoked_plain = make_token(owner, revoked_at=timezone.now())
    _, expired = make_token(owner, expires_at=timezone.now() - timedelta(days=1))
    _, denied = make_token(member_with_token_permission)
    CustomRole.objects.update(grants_access_tokens=False)
    assert_error(client.get(url), 401, "missing_token")
    assert_error(client.get(url, **bearer("at-nope")), 401, "malformed_token")
    assert_error(client.get(url, **bearer("sk-proj-123")), 401, "wrong_credential_type")
    assert_error(client.get(url, **bearer(revoked_plain)), 401, "token_revoked")
    assert_error(client.get(url, **bearer(expired)), 401, "token_expired")
    response = client.get(url, **bearer(denied))
    assert_error(response, 403, "access_denied")
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]


def test_the_bundle_points_the_clis_turns_at_the_console(client, owner):
    _, plaintext = make_token(owner)
    response = client.get(BUNDLE, **bearer(plaintext), HTTP_CHATGPT_ACCOUNT_ID="x")
    assert response.status_code == 200
    (fragment,) = response.json()["config_toml"]["enterprise_managed"]
    assert fragment["id"] == "workspace-console"
    config = tomllib.loads(fragment["contents"])
    assert config["model_provider"] == "workspace_console"
    assert config["model_providers"]["workspace_console"] == {
        "name": "Acme Corp (workspace console)", "base_url": "http://testserver/codex/api",
        "wire_api": "responses", "requires_openai_auth": True, "supports_websockets": False}
    assert config["features"] == {"apps": False, "plugins": False}


def test_the_bundle_is_valid_toml_whatever_the_workspace_is_called(client, owner, settings):
    settings.ALLOWED_HOSTS = ["console.example.com"]
    owner.workspace.name = 'Acme "Quotes" \\ Co\nNext line'
    owner.workspace.save()
    _, plaintext = make_token(owner)
    response = client.get(BUNDLE, **bearer(plaintext), HTTP_HOST="console.example.com",
                          **{"wsgi.url_scheme": "https"})
    (fragment,) = response.json()["config_toml"]["enterprise_managed"]
    provider = tomllib.loads(fragment["contents"])["model_providers"]["workspace_console"]
    assert provider["name"] == 'Acme "Quotes" \\ Co\nNext line (workspace console)'
    assert provider["base_url"] == "https://console.example.com/codex/api"


def test_the_bundle_refuses_as_the_api_does(client):
    assert_error(client.get(BUNDLE), 401, "missing_token")


def test_the_model_list_is_empty(client):
    response = client.get("/codex/api/models?client_version=0.171.0")
    assert (response.status_code, response.json()) == (200, {"models": []})
    assert_error(client.post("/codex/api/models"), 405, "method_not_allowed")


# The run gateway ---------------------------------------------------------------------------


def test_a_websocket_upgrade_is_426(client, owner):
    _, plaintext = make_token(owner)
    response = client.get(RESPONSES, **bearer(plaintext), HTTP_UPGRADE="websocket",
                          HTTP_CONNECTION="Upgrade")
    assert_error(response, 426, "upgrade_required")
    assert_error(client.get(RESPONSES, **bearer(plaintext)), 405, "method_not_allowed")


def test_a_turn_without_a_token_says_why_and_how_to_see_the_reason(client, owner, demo,
                                                                   settings):
    """The CLI sends its turns with no token once the console refused its token: the answer
    says so, with the curl line to see the reason at the console's own address."""
    response = post_turn(client, None)
    assert_error(response, 401, "missing_token")
    assert response["WWW-Authenticate"] == 'Bearer realm="codex"'
    assert response.json()["error"]["message"] == (
        "No access token arrived. The Codex CLI stops sending its token after the console "
        'refused it: check it with curl -H "Authorization: Bearer $CODEX_ACCESS_TOKEN" '
        "http://testserver/api/v1/whoami (revoked, expired, permission withdrawn, or outside "
        "the token's allowed IP ranges).")
    settings.ALLOWED_HOSTS = ["testserver", "console.example.com"]
    behind_proxy = post_turn(client, None, HTTP_HOST="console.example.com", secure=True)
    assert "curl -H \"Authorization: Bearer $CODEX_ACCESS_TOKEN\" " \
        "https://console.example.com/api/v1/whoami (" in behind_proxy.json()["error"]["message"]
    # Elsewhere a missing token is the API's plain refusal.
    assert "Send an access token" in client.get(WHOAMI).json()["error"]["message"]
    assert not Run.objects.exists()


def test_a_turn_without_a_token_says_why_through_the_server(asgi_server, demo):
    """The same answer from the production server, with the address the CLI reached it by."""
    response = post_turn(asgi_server.client, None)
    assert_error(response, 401, "missing_token")
    assert (f'"Authorization: Bearer $CODEX_ACCESS_TOKEN" {asgi_server.url}/api/v1/whoami ('
            in response.json()["error"]["message"])


def test_a_turn_is_checked_recorded_and_answered_by_the_demo_model(turns, owner, demo):
    token, plaintext = make_token(owner, name="laptop")
    response = post_turn(turns, plaintext)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-store"
    events = streamed(response).decode()
    assert events.index("response.created") < events.index("response.output_item.done") \
        < events.index("response.completed")
    assert "say hi" in events and "alice@acme.test" in events
    run = Run.objects.get()
    assert (run.user, run.token, run.client, run.model, run.sandbox_mode, run.thread_id,
            run.turns) == (owner.user, token, "codex_exec 0.171.0", "gpt-6.2-sol", "read-only",
                           "thread-1", 1)


def test_later_turns_of_a_thread_count_on_its_run(turns, owner, demo):
    _, plaintext = make_token(owner)
    for n in range(3):
        streamed(post_turn(turns, plaintext, thread="thread-1", turn=f"turn-{n}"))
    streamed(post_turn(turns, plaintext, thread="thread-2"))
    assert sorted(Run.objects.values_list("thread_id", "turns")) == [("thread-1", 3),
                                                                     ("thread-2", 1)]


def test_a_retried_turn_counts_once(turns, owner, demo):
    _, plaintext = make_token(owner)
    for turn in ("turn-1", "turn-1", "turn-2", "turn-2", "turn-2", "turn-3"):
        streamed(post_turn(turns, plaintext, turn=turn))
    assert list(Run.objects.values_list("turns", "last_turn_id")) == [(3, "turn-3")]


def test_an_uncompressed_body_works_too(turns, owner, demo):
    _, plaintext = make_token(owner)
    assert b"response.completed" in streamed(post_turn(turns, plaintext, compress=False))


def test_a_conversation_that_quotes_a_token_is_no_refusal(turns, owner, demo):
    _, plaintext = make_token(owner)
    _, other = make_token(owner)
    response = post_turn(turns, plaintext, body=turn_body(f"why does {other} fail?"))
    assert response.status_code == 200


@pytest.mark.parametrize("who", ["nobody", "revoked", "denied"])
def test_a_refused_turn_records_and_forwards_nothing(turns, settings, owner,
                                                     member_with_token_permission, who):
    _, revoked = make_token(owner, revoked_at=timezone.now())
    _, denied = make_token(member_with_token_permission)
    CustomRole.objects.update(grants_access_tokens=False)
    with StandinModel() as model:
        settings.CODEX_UPSTREAM_URL = model.url
        response = post_turn(turns, {"nobody": None, "revoked": revoked, "denied": denied}[who])
        assert model.requests == []
    status, code = {"nobody": (401, "missing_token"), "revoked": (401, "token_revoked"),
                    "denied": (403, "access_denied")}[who]
    assert_error(response, status, code)
    assert not Run.objects.exists()


def test_the_turn_goes_to_the_provider_with_its_key_and_streams_back(turns, settings, owner):
    _, plaintext = make_token(owner)
    settings.CODEX_UPSTREAM_API_KEY = "sk-provider-key"
    with StandinModel() as model:
        settings.CODEX_UPSTREAM_URL = model.url
        model.hold = threading.Event()
        response = post_turn(turns, plaintext)
        assert response.status_code == 200
        chunks = iter(response.streaming_content)
        first = next(chunks)  # arrives while the provider still holds the rest back
        assert b"response.created" in first and b"response.completed" not in first
        model.hold.set()
        rest = b"".join(chunks)
    assert ANSWER.encode() in rest and b"response.completed" in rest
    (sent,) = model.requests
    assert sent["headers"]["Authorization"] == "Bearer sk-provider-key"
    assert plaintext not in json.dumps(sent["headers"]) and plaintext.encode() not in sent["body"]
    assert json.loads(sent["body"])["input"][0]["content"][0]["text"] == "say hi"
    assert Run.objects.count() == 1


@pytest.mark.parametrize("form,path", [
    ("{root}/v1/responses", "/v1/responses"),  # the full address
    ("{root}/v1", "/v1/responses"),  # a base URL, as the OpenAI SDK takes it
    ("{root}/v1/", "/v1/responses"),
    ("{root}", "/responses"),
    ("{root}/openai/v1?api-version=preview", "/openai/v1/responses?api-version=preview"),
])
def test_the_provider_url_in_either_form(turns, settings, owner, form, path):
    _, plaintext = make_token(owner)
    with StandinModel() as model:
        settings.CODEX_UPSTREAM_URL = form.format(root=model.url.removesuffix("/v1/responses"))
        response = post_turn(turns, plaintext)
        assert response.status_code == 200
        assert ANSWER.encode() in streamed(response)
    assert [sent["path"] for sent in model.requests] == [path]


def test_a_provider_error_is_passed_on(turns, settings, owner):
    _, plaintext = make_token(owner)
    with StandinModel(status=429, error_headers={"Retry-After": "7"}) as model:
        settings.CODEX_UPSTREAM_URL = model.url
        response = post_turn(turns, plaintext)
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json" and response["Retry-After"] == "7"
    assert response.json()["error"]["code"] == "upstream"
    assert not Run.objects.exists()  # the provider did not take the turn


@pytest.mark.parametrize("status,body,kind", [
    (400, b"<html><script>alert(1)</script></html>", "text/html"),
    (422, b"not json", "application/json"),
    (302, b"", "text/plain"),
])
def test_a_provider_answer_the_cli_would_not_understand_is_502(turns, settings, owner, status,
                                                                body, kind):
    _, plaintext = make_token(owner)
    with StandinModel(status=status, error_body=body, error_type=kind,
                      error_headers={"Location": "http://elsewhere.test/"}) as model:
        settings.CODEX_UPSTREAM_URL = model.url
        response = post_turn(turns, plaintext)
    assert_error(response, 502, "upstream_unavailable")
    assert b"script" not in response.content and "Location" not in response.answer.headers
    assert not Run.objects.exists()


def test_a_stream_that_breaks_midway_ends_with_the_error_event(turns, settings, owner):
    _, plaintext = make_token(owner)
    with StandinModel(break_after=1) as model:
        settings.CODEX_UPSTREAM_URL = model.url
        model.hold = threading.Event()  # the stream breaks once the first event came through
        response = post_turn(turns, plaintext)
        assert response.status_code == 200
        chunks = iter(response.streaming_content)
        first = next(chunks)
        model.hold.set()
        events = (first + b"".join(chunks)).decode()
    assert events.index("response.created") < events.index("event: error")
    assert "response.completed" not in events
    last = events.rstrip("\n").rsplit("\n\n", 1)[-1]  # the last event, whole
    assert last.startswith("event: error\ndata: ")
    data = json.loads(last.split("data: ", 1)[1])
    assert data["type"] == "error" and data["code"] == "upstream_unavailable"
    assert Run.objects.count() == 1  # the provider took the turn


def test_a_token_revoked_while_the_provider_answers_records_nothing(turns, settings, owner):
    """Revoked after the check, before the record: the record (which checks again) is
    refused, the stream ends with the error event, and no run is recorded."""
    token, plaintext = make_token(owner)
    with StandinModel() as model:
        settings.CODEX_UPSTREAM_URL = model.url
        model.on_request = lambda: AccessToken.objects.filter(pk=token.pk).update(
            revoked_at=timezone.now())
        response = post_turn(turns, plaintext)
        events = streamed(response).decode()
    last = events.rstrip("\n").rsplit("\n\n", 1)[-1]
    assert last.startswith("event: error\n") and "revoked" in last
    assert len(model.requests) == 1 and not Run.objects.exists()


@pytest.mark.parametrize("who", ["nobody", "revoked"])
def test_a_refused_token_is_refused_before_its_body_is_sent(asgi_server, owner, who):
    """Only the headers are sent, announcing 16 MiB of zstd: the refusal arrives without the
    console waiting for (or reading) a byte of the body."""
    _, revoked = make_token(owner, revoked_at=timezone.now())
    auth = f"Authorization: Bearer {revoked}\r\n" if who == "revoked" else ""
    with socket.create_connection(("127.0.0.1", asgi_server.port), timeout=5) as sock:
        sock.sendall((f"POST {RESPONSES} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
                      "Content-Type: application/json\r\nContent-Encoding: zstd\r\n"
                      f"Content-Length: {16 * 1024 * 1024}\r\n\r\n").encode())
        answer = sock.recv(65536).decode()  # a timeout here: the console waited for the body
    code = "missing_token" if who == "nobody" else "token_revoked"
    assert answer.startswith("HTTP/1.1 401 ") and code in answer
    assert "x-content-type-options: nosniff" in answer.lower()
    assert not Run.objects.exists()


def test_a_body_announced_too_large_is_refused_before_it_is_sent(asgi_server, owner, settings,
                                                                 demo):
    _, plaintext = make_token(owner)
    with socket.create_connection(("127.0.0.1", asgi_server.port), timeout=5) as sock:
        sock.sendall((f"POST {RESPONSES} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Authorization: Bearer {plaintext}\r\n"
                      f"Content-Length: {settings.CODEX_GATEWAY_MAX_BODY + 1}\r\n\r\n").encode())
        answer = sock.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 413 ") and "request_too_large" in answer


def test_the_demo_model_answers_under_django_too(client, owner, demo):
    """`make run` serves turns through Django's development server."""
    token, plaintext = make_token(owner)
    response = post_turn(client, plaintext)
    assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
    assert b"response.completed" in streamed(response)
    assert Run.objects.get().token == token


def test_a_turn_under_django_takes_the_same_steps(client, settings, owner):
    """The development server and the test client serve turns through Django: the same steps."""
    token, plaintext = make_token(owner)
    with StandinModel() as model:
        settings.CODEX_UPSTREAM_URL = model.url
        response = post_turn(client, plaintext)
        assert response.status_code == 200
        assert b"response.completed" in streamed(response)
    with StandinModel(status=500) as model:
        settings.CODEX_UPSTREAM_URL = model.url
        assert_error(post_turn(client, plaintext, thread="thread-2"), 502, "upstream_unavailable")
    assert list(Run.objects.values_list("token", "thread_id")) == [(token.pk, "thread-1")]


@pytest.fixture
def written_log():
    """What the console's log handler writes (its scrubbing filter and formatter), as text."""
    import io
    import logging

    from console.scrubbing import ScrubbingFormatter

    handler = next(h for h in logging.getLogger().handlers
                   if isinstance(h.formatter, ScrubbingFormatter))
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


@pytest.mark.parametrize("key", ["sk-provider-key-0123456789abcdef",
                                 "sk-proj-Ab3_dE-f0123456789abcdefXYZ"])
def test_a_provider_echoing_our_key_logs_no_key(client, settings, owner, written_log, key):
    """A provider that refuses the console's key quotes it back, whole or masked: the line the
    console logs about it (and the answer) carry no piece of it."""
    settings.CODEX_UPSTREAM_API_KEY = key
    _, plaintext = make_token(owner)
    masked = key[:8] + "*" * 20 + key[-4:]
    with StandinModel(status=401, message=f"Incorrect API key provided: {masked}. Also "
                                          f"tried: {key}. See your API keys.") as model:
        settings.CODEX_UPSTREAM_URL = model.url
        response = post_turn(client, plaintext)
    assert_error(response, 502, "upstream_unavailable")
    log = written_log.getvalue()
    assert "The model provider answered 401: " in log  # the line was written
    assert "Incorrect API key provided: sk-[FILTERED]. Also tried: sk-[FILTERED]." in log
    for secret in (key, key[:8], key[-12:], masked):
        assert secret not in log and secret not in response.content.decode()


@pytest.mark.parametrize("status", [401, 403, 500, 503])
def test_a_provider_refusing_the_consoles_key_or_failing_is_502(turns, settings, owner, status,
                                                                 caplog):
    """Not the user's token: a 401 passed on would make the CLI think its token was refused."""
    _, plaintext = make_token(owner)
    with StandinModel(status=status) as model:
        settings.CODEX_UPSTREAM_URL = model.url
        response = post_turn(turns, plaintext)
    assert_error(response, 502, "upstream_unavailable")
    assert f"answered {status}" in response.json()["error"]["message"]
    assert "\"no\"" not in response.content.decode()  # the provider's own words stay out
    assert f"The model provider answered {status}" in caplog.text
    assert not Run.objects.exists()


def test_metadata_that_is_not_storable_text_is_cleaned(turns, owner, demo):
    _, plaintext = make_token(owner)
    body = json.dumps({"model": "gpt\ud800x", "input": []}).encode()
    response = post_turn(turns, plaintext, body=body, HTTP_X_CODEX_TURN_METADATA=json.dumps(
        {"thread_id": "t\u0000one", "model": "other", "sandbox_mode": 7}))
    assert response.status_code == 200
    run = Run.objects.get()
    assert (run.thread_id, run.model, run.sandbox_mode) == ("tone", "gpt?x", "")


def test_the_model_recorded_is_the_one_the_body_sent(turns, owner, demo):
    _, plaintext = make_token(owner)
    body = json.dumps({"model": "gpt-from-body", "input": []}).encode()
    streamed(post_turn(turns, plaintext, body=body))  # the header says gpt-6.2-sol
    assert Run.objects.get().model == "gpt-from-body"


def test_a_body_of_several_zstd_frames_arrives_whole(turns, owner, settings):
    _, plaintext = make_token(owner)
    body = turn_body("a prompt long enough to split " * 10)
    frames = b"".join(zstandard.ZstdCompressor().compress(part)
                      for part in (body[:len(body) // 2], body[len(body) // 2:]))
    with StandinModel() as model:
        settings.CODEX_UPSTREAM_URL = model.url
        response = post_turn(turns, plaintext, body=frames, compress=False,
                             HTTP_CONTENT_ENCODING="zstd")
        streamed(response)
    assert model.requests[0]["body"] == body


def test_an_unreachable_provider_is_502(turns, settings, owner):
    _, plaintext = make_token(owner)
    settings.CODEX_UPSTREAM_URL = "http://127.0.0.1:1/v1/responses"
    assert_error(post_turn(turns, plaintext), 502, "upstream_unavailable")
    assert not Run.objects.exists()


def test_no_provider_without_debug_is_503(turns, settings, owner):
    settings.DEBUG, settings.CODEX_UPSTREAM_URL = False, ""
    _, plaintext = make_token(owner)
    _, revoked = make_token(owner, revoked_at=timezone.now())
    assert_error(post_turn(turns, plaintext), 503, "no_model_provider")
    assert_error(post_turn(turns, revoked), 401, "token_revoked")
    assert not Run.objects.exists()


def test_bad_bodies(turns, settings, owner, demo):
    _, plaintext = make_token(owner)
    assert_error(post_turn(turns, plaintext, body=b"not zstd", compress=False,
                           HTTP_CONTENT_ENCODING="zstd"), 400, "invalid_request")
    assert_error(post_turn(turns, plaintext, compress=False, HTTP_CONTENT_ENCODING="br"),
                 415, "unsupported_encoding")
    settings.CODEX_GATEWAY_MAX_BODY = 100
    assert_error(post_turn(turns, plaintext, body=b"x" * 50 + turn_body()), 413,
                 "request_too_large")
    assert not Run.objects.exists()


def test_a_token_in_the_query_string_is_refused(turns, owner, demo):
    _, plaintext = make_token(owner)
    response = turns.post(f"{RESPONSES}?access_token={plaintext}", turn_body(),
                           content_type="application/json")
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize("debug", [True, False])
def test_anything_else_under_codex_is_a_json_404(client, settings, db, debug):
    settings.DEBUG = debug
    for method, url in (("get", "/codex/backend-api/ps/plugins/installed?limit=200"),
                        ("post", "/codex/backend-api/ps/mcp"), ("get", "/codex/"),
                        ("get", "/api/v1/nothing")):
        assert_error(getattr(client, method)(url), 404, "not_found")


def test_failures_count_toward_the_apis_throttle(client, owner, settings):
    settings.API_FAILURE_LIMIT = 3
    for _ in range(3):
        client.get(WHOAMI, **bearer("at-nope"))
    _, plaintext = make_token(owner)
    assert_error(client.get(WHOAMI, **bearer("at-nope")), 429, "rate_limited")
    assert_error(client.get("/api/v1/whoami", **bearer("at-nope")), 429, "rate_limited")
    throttled = post_turn(client, None)
    assert_error(throttled, 429, "rate_limited")
    # A turn without a token still hears how to see why (it tells a caller nothing new).
    assert throttled.json()["error"]["message"].startswith(
        "Too many failed attempts from this address. Try again later. No access token arrived.")
    assert "curl -H" in throttled.json()["error"]["message"]
    assert client.get(WHOAMI, **bearer(codec.generate())).json()["error"]["message"] == \
        "Too many failed attempts from this address. Try again later."
    # The address's failures do not stop a token that may act.
    assert client.get(WHOAMI, **bearer(plaintext)).status_code == 200
    assert AccessToken.objects.count() == 1
