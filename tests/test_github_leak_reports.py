"""GitHub's secret scanning partner program reports leaks to the leak report endpoint: a JSON
array of matches, signed (ECDSA P-256 / SHA-256 over the raw body, base64 DER) by a key GitHub
publishes. Here the test is GitHub: it signs with its own P-256 key and serves the keys document
from an HTTP server on loopback."""

import base64
import json
import logging
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.core.cache import cache
from django.utils import timezone

from tokens import codec, secret_scanning
from tokens.models import AccessToken
from tokens.openapi import DOCUMENT
from workspaces.models import AuditEvent

from .factories import make_token
from .mailbox import delivered
from .test_openapi import check

URL = "/api/v1/tokens/revoke"
TYPE = "codex_access_token"


class Key:
    """A P-256 signing key, as GitHub holds one, under an identifier."""

    def __init__(self, identifier):
        self.identifier = identifier
        self.private = ec.generate_private_key(ec.SECP256R1())

    def entry(self, current=True):
        pem = self.private.public_key().public_bytes(Encoding.PEM,
                                                     PublicFormat.SubjectPublicKeyInfo)
        return {"key_identifier": self.identifier, "key": pem.decode(), "is_current": current}

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self.private.sign(body, ec.ECDSA(hashes.SHA256()))).decode()


class KeysServer:
    """The published keys document, served on loopback; counts the fetches."""

    def __init__(self):
        self.document = b"{}"
        self.status = 200
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.fetches += 1
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(server.document)))
                self.end_headers()
                self.wfile.write(server.document)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/meta/public_keys/secret_scanning"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def publish(self, *keys: Key):
        self.document = json.dumps({"public_keys": [k.entry() for k in keys]}).encode()


@pytest.fixture
def keys_server(settings, db):
    server = KeysServer()
    server.thread.start()
    settings.SECRET_SCANNING_KEYS_URL = server.url
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def github(keys_server):
    """GitHub's current key, published."""
    key = Key("bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c")
    keys_server.publish(key)
    return key


def matches(*tokens, type=TYPE):
    return [{"token": t, "type": type, "url": "https://github.com/octo/repo/blob/abc/ci.yml",
             "source": "content"} for t in tokens]


def report_body(*tokens) -> bytes:
    # GitHub's own spacing: no spaces, as its documentation's sample shows.
    return json.dumps(matches(*tokens), separators=(",", ":")).encode()


def post(client, body: bytes, key: Key | None = None, *, key_id=None, signature=None, **extra):
    headers = {}
    if key is not None or key_id is not None:
        headers["HTTP_GITHUB_PUBLIC_KEY_IDENTIFIER"] = key_id or key.identifier
    if key is not None or signature is not None:
        headers["HTTP_GITHUB_PUBLIC_KEY_SIGNATURE"] = signature or key.sign(body)
    return client.post(URL, body, content_type="application/json", **headers, **extra)


@pytest.fixture
def tokens(owner, member_with_token_permission, outsider):
    active, active_plain = make_token(member_with_token_permission, name="leaked-ci")
    elsewhere, elsewhere_plain = make_token(outsider, name="leaked-elsewhere")
    _, revoked_plain = make_token(owner, name="old", revoked_at=timezone.now())
    _, expired_plain = make_token(owner, name="gone",
                                  expires_at=timezone.now() - timedelta(days=1))
    kept, _ = make_token(owner, name="not reported")
    return {"active": [active, elsewhere], "plain": [active_plain, elsewhere_plain],
            "revoked": revoked_plain, "expired": expired_plain, "kept": kept}


def revoked_count():
    return AccessToken.objects.filter(revoked_at__isnull=False).count()


def test_a_signed_report_revokes_the_active_tokens_and_labels_every_match(
        client, github, tokens):
    unknown = codec.generate()
    reported = [*tokens["plain"], tokens["revoked"], tokens["expired"], unknown, "at-nope",
                "hello", tokens["plain"][0]]
    body = json.dumps(matches(*reported[:-1]) + matches(reported[-1], type="other_type"),
                      separators=(",", ":")).encode()
    response = post(client, body, github)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    labels = ["true_positive"] * 4 + ["false_positive"] * 3 + ["true_positive"]
    assert response.json() == [
        {"token_raw": token, "token_type": TYPE if n < 7 else "other_type", "label": label}
        for n, (token, label) in enumerate(zip(reported, labels, strict=True))]
    for token in tokens["active"]:
        token.refresh_from_db()
        assert token.revoked_at is not None and token.revoked_by is None
    tokens["kept"].refresh_from_db()
    assert tokens["kept"].revoked_at is None
    assert revoked_count() == 3  # the two reported, and the one revoked before
    events = AuditEvent.objects.filter(action="token.revoked")
    assert sorted((e.workspace.slug, e.actor_email, e.details["reason"]) for e in events) == [
        ("acme", "leak report", "leak report"), ("globex", "leak report", "leak report")]
    assert sorted(m.to[0] for m in delivered()) == ["charlie@globex.test", "dora@acme.test"]
    check(DOCUMENT["paths"][URL]["post"]["responses"]["200"]["content"]["application/json"]
          ["schema"], response.json())


def test_the_keys_document_is_cached_not_fetched_per_report(client, github, keys_server,
                                                             tokens):
    for _ in range(5):
        body = report_body(codec.generate())
        assert post(client, body, github).status_code == 200
    assert keys_server.fetches == 1
    assert github.identifier in cache.get(secret_scanning.CACHE_KEY)["keys"]


def test_an_unknown_key_identifier_fetches_the_keys_again_once(client, github, keys_server,
                                                                tokens, time_machine):
    time_machine.move_to(timezone.now())
    assert post(client, report_body(codec.generate()), github).status_code == 200
    rotated = Key("f9525bf080f75b3506ca1ead061add62b8633a346606dc5fe544e29231c6ee0d")
    keys_server.publish(github, rotated)
    time_machine.shift(timedelta(minutes=5))  # GitHub rotates; its next report names the new key
    response = post(client, report_body(tokens["plain"][0]), rotated)
    assert response.status_code == 200 and response.json()[0]["label"] == "true_positive"
    assert keys_server.fetches == 2
    # A key nobody published: no fetch for it within the minute, then one.
    stranger = Key("0" * 64)
    for _ in range(3):
        assert post(client, report_body(codec.generate()), stranger).status_code == 401
    assert keys_server.fetches == 2
    time_machine.shift(timedelta(seconds=61))
    assert post(client, report_body(codec.generate()), stranger).status_code == 401
    assert keys_server.fetches == 3
    assert post(client, report_body(codec.generate()), rotated).status_code == 200
    assert keys_server.fetches == 3


def test_the_keys_are_fetched_again_after_an_hour(client, github, keys_server, time_machine):
    time_machine.move_to(timezone.now())
    assert post(client, report_body("x"), github).status_code == 200
    time_machine.shift(timedelta(minutes=61))
    assert post(client, report_body("x"), github).status_code == 200
    assert keys_server.fetches == 2
    # GitHub's endpoint fails for a while: the document fetched last still serves.
    keys_server.status = 500
    time_machine.shift(timedelta(minutes=61))
    assert post(client, report_body("x"), github).status_code == 200
    assert keys_server.fetches == 3


def _assert_refused(response):
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert revoked_count() == 1  # only the one revoked before
    assert not AuditEvent.objects.filter(action="token.revoked").exists()


def test_a_signature_by_another_key_is_refused(client, github, tokens):
    impostor = Key(github.identifier)  # the same identifier, another key
    _assert_refused(post(client, report_body(*tokens["plain"]), impostor))


def test_a_signature_over_another_body_is_refused(client, github, tokens):
    signature = github.sign(report_body(codec.generate()))
    _assert_refused(post(client, report_body(*tokens["plain"]), key_id=github.identifier,
                         signature=signature))


def test_a_signature_of_the_same_matches_spaced_differently_is_refused(client, github, tokens):
    """The signature covers the raw body, byte for byte: not its parsed JSON."""
    body = report_body(*tokens["plain"])
    spaced = json.dumps(matches(*tokens["plain"])).encode()
    _assert_refused(post(client, spaced, key_id=github.identifier,
                         signature=github.sign(body)))


@pytest.mark.parametrize("headers", ["none", "identifier only", "signature only",
                                     "empty signature", "signature not base64"])
def test_a_missing_or_unreadable_signature_is_refused(client, github, tokens, headers):
    body = report_body(*tokens["plain"])
    extra = {
        "none": {},
        "identifier only": {"HTTP_GITHUB_PUBLIC_KEY_IDENTIFIER": github.identifier},
        "signature only": {"HTTP_GITHUB_PUBLIC_KEY_SIGNATURE": github.sign(body)},
        "empty signature": {"HTTP_GITHUB_PUBLIC_KEY_IDENTIFIER": github.identifier,
                            "HTTP_GITHUB_PUBLIC_KEY_SIGNATURE": ""},
        "signature not base64": {"HTTP_GITHUB_PUBLIC_KEY_IDENTIFIER": github.identifier,
                                 "HTTP_GITHUB_PUBLIC_KEY_SIGNATURE": "%%%not-base64%%%"},
    }[headers]
    response = client.post(URL, body, content_type="application/json", **extra)
    _assert_refused(response)
    check(DOCUMENT["paths"][URL]["post"]["responses"]["401"]["content"]["application/json"]
          ["schema"], response.json())


def test_a_plain_report_with_a_signature_header_must_be_signed(client, github, tokens):
    body = json.dumps({"tokens": tokens["plain"]}).encode()
    _assert_refused(post(client, body, key_id=github.identifier, signature="AAAA"))


@pytest.mark.parametrize("body", [
    [], [{"type": TYPE}], [{"token": 1, "type": TYPE}], [{"token": "x"}],
    [{"token": "x", "type": TYPE, "url": None}], ["at-abc"], [{"token": "x" * 1001, "type": TYPE}],
    {"tokens": ["x"]}, "x",
])
def test_a_signed_body_of_another_shape_is_400(client, github, tokens, body):
    raw = json.dumps(body).encode()
    response = post(client, raw, github)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert revoked_count() == 1


def test_url_and_source_may_be_missing_and_other_keys_are_ignored(client, github, tokens):
    body = json.dumps([{"token": tokens["plain"][0], "type": TYPE, "added_later": {"x": 1}}])
    response = post(client, body.encode(), github)
    assert response.status_code == 200
    assert response.json() == [{"token_raw": tokens["plain"][0], "token_type": TYPE,
                                "label": "true_positive"}]


@pytest.mark.parametrize("trouble", ["down", "not found", "not json", "no usable key",
                                     "too large"])
def test_without_the_keys_a_report_is_503_and_revokes_nothing(client, keys_server, tokens,
                                                             trouble, settings):
    key = Key("k1")
    keys_server.publish(key)
    if trouble == "down":
        settings.SECRET_SCANNING_KEYS_URL = "http://127.0.0.1:9/keys"
    elif trouble == "not found":
        keys_server.status = 404
    elif trouble == "not json":
        keys_server.document = b"<html>rate limited</html>"
    elif trouble == "no usable key":
        keys_server.document = json.dumps({"public_keys": [
            {"key_identifier": "k1", "key": "-----BEGIN PUBLIC KEY-----\nnope\n", "is_current": True}
        ]}).encode()
    else:
        keys_server.document = b" " * (secret_scanning.DOCUMENT_MAX + 1)
    response = post(client, report_body(*tokens["plain"]), key)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert revoked_count() == 1


def test_both_forms_count_against_the_per_address_limit(client, github, settings):
    settings.LEAK_REPORT_LIMIT = 6
    for n in range(6):
        if n % 2:
            response = post(client, report_body("x"), github)
            assert response.status_code == 200
        else:
            response = client.post(URL, {"tokens": ["x"]}, content_type="application/json")
            assert response.status_code == 202
    assert post(client, report_body("x"), github).status_code == 429
    response = client.post(URL, {"tokens": ["x"]}, content_type="application/json")
    assert response.status_code == 429


def test_the_reported_tokens_reach_no_log_line(client, github, tokens, caplog):
    caplog.set_level(logging.DEBUG)
    body = report_body(*tokens["plain"])
    post(client, body, github)
    post(client, body, Key(github.identifier))  # refused: a warning line
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged
    for plaintext in tokens["plain"]:
        assert plaintext not in logged
