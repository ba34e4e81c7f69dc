"""Fetching an issuer's keys: issuer URLs are typed by admins, so the console fetches only
https:// from public addresses (loopback http:// with DEBUG on), follows no redirect elsewhere,
gives up after a short timeout or a size cap, and checks what the documents say."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from tokens import oidc

from .federation import StandinIssuer


@pytest.fixture
def issuer(settings):
    settings.DEBUG = True
    with StandinIssuer() as standin:
        yield standin


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/", "https://127.0.0.1:8443/jwks", "https://localhost/",
    "https://10.1.2.3/", "https://192.168.0.1/", "https://172.16.0.1/",
    "https://169.254.169.254/latest/meta-data/", "https://[::1]/", "https://[fe80::1]/",
    "https://[fd00::1]/", "https://100.64.0.1/", "https://0.0.0.0/", "https://224.0.0.1/",
    "https://[::ffff:127.0.0.1]/",
])
def test_private_loopback_and_link_local_addresses_are_refused_before_connecting(url):
    with pytest.raises(oidc.FetchError, match="not a public address"):
        oidc.fetch_json(url)


@pytest.mark.parametrize("url,debug", [
    ("http://token.actions.githubusercontent.com/", False),
    ("http://token.actions.githubusercontent.com/", True),
    ("http://127.0.0.1:9/", False),
    ("http://localhost:9/", True),
    ("http://10.0.0.1:80/", True),
    ("ftp://example.com/", True),
    ("https://user:secret@example.com/", False),
    ("https://example.com/?q=1", False),
    ("https:///nohost", False),
])
def test_only_https_and_loopback_http_with_debug_are_fetched(settings, url, debug):
    settings.DEBUG = debug
    assert oidc.url_problem(url) is not None
    with pytest.raises(oidc.FetchError):
        oidc.fetch_json(url)


def test_loopback_http_with_debug_on_is_fetched(issuer):
    assert oidc.fetch_json(f"{issuer.url}/jwks")["keys"]


def test_loopback_http_with_debug_off_is_not(issuer, settings):
    settings.DEBUG = False
    with pytest.raises(oidc.FetchError, match="https://"):
        oidc.fetch_json(f"{issuer.url}/jwks")
    assert issuer.fetches == {}


def test_a_redirect_elsewhere_is_not_followed(issuer):
    issuer.overrides["/jwks"] = (302, {"Location": "http://169.254.169.254/latest/"}, b"")
    with pytest.raises(oidc.FetchError, match="redirects to another address"):
        oidc.fetch_json(f"{issuer.url}/jwks")


def test_a_redirect_within_the_issuer_is_followed(issuer):
    issuer.overrides["/old-jwks"] = (301, {"Location": "/jwks"}, b"")
    assert oidc.fetch_json(f"{issuer.url}/old-jwks")["keys"]


def test_a_document_over_the_size_cap_is_refused(issuer):
    huge = json.dumps({"keys": [], "padding": "x" * (oidc.DOCUMENT_MAX + 10)}).encode()
    issuer.overrides["/jwks"] = (200, {"Content-Type": "application/json"}, huge)
    with pytest.raises(oidc.FetchError, match="larger than"):
        oidc.fetch_json(f"{issuer.url}/jwks")


@pytest.mark.parametrize("status,body,message", [
    (500, b"{}", "answered 500"),
    (200, b"<html>", "not JSON"),
    (200, b"[1, 2]", "not a JSON object"),
])
def test_an_answer_that_is_not_a_document_is_refused(issuer, status, body, message):
    issuer.overrides["/jwks"] = (status, {}, body)
    with pytest.raises(oidc.FetchError, match=message):
        oidc.fetch_json(f"{issuer.url}/jwks")


def test_a_server_that_does_not_answer_is_given_up_on(settings, monkeypatch):
    settings.DEBUG = True
    monkeypatch.setattr(oidc, "FETCH_TIMEOUT", 0.5)  # the real one is 3 s
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True).start()
    try:
        with pytest.raises(oidc.FetchError, match="could not be fetched"):
            oidc.fetch_json(f"http://127.0.0.1:{silent.getsockname()[1]}/jwks")
    finally:
        silent.close()


def test_the_discovery_document_must_name_the_issuer(issuer):
    issuer.overrides["/.well-known/openid-configuration"] = (
        200, {}, json.dumps({"issuer": "https://token.actions.githubusercontent.com",
                             "jwks_uri": f"{issuer.url}/jwks"}).encode())
    with pytest.raises(oidc.FetchError, match="names the issuer"):
        oidc.fetch_keys(issuer.url)


def test_a_jwks_uri_on_a_private_address_is_refused(issuer):
    issuer.overrides["/.well-known/openid-configuration"] = (
        200, {}, json.dumps({"issuer": issuer.url,
                             "jwks_uri": "https://169.254.169.254/keys"}).encode())
    with pytest.raises(oidc.FetchError, match="not a public address"):
        oidc.fetch_keys(issuer.url)


def test_the_keys_are_the_usable_signing_keys_by_id(issuer):
    keys = oidc.fetch_keys(issuer.url)
    assert set(keys) == {"rsa-1", "ec-1"}
    assert keys["rsa-1"]["kty"] == "RSA" and keys["ec-1"]["crv"] == "P-256"


@pytest.mark.parametrize("issuer_url,subject,claims,warned", [
    ("https://token.actions.githubusercontent.com", "repo:*", {}, True),
    ("https://token.actions.githubusercontent.com", "repo:acme*", {}, True),
    ("https://token.actions.githubusercontent.com", "repo:acme/*", {}, False),
    ("https://token.actions.githubusercontent.com", "repo:acme/release:ref:refs/heads/main", {},
     False),
    ("https://token.actions.githubusercontent.com", "repo:*", {"repository_owner_id": "1"}, False),
    ("https://token.actions.githubusercontent.com", "repo:*", {"workflow": "release"}, True),
    ("https://gitlab.com", "project_path:*", {}, True),
    ("https://gitlab.com", "project_path:acme/release:ref_type:branch:ref:main", {}, False),
    ("https://gitlab.com", "project_path:*", {"namespace_id": "66"}, False),
    ("https://ci.example.com", "anything", {}, False),
])
def test_a_rule_on_a_shared_issuer_must_pin_the_repository_or_owner(issuer_url, subject, claims,
                                                                    warned):
    warnings = oidc.pin_warnings(issuer_url, subject, claims)
    assert any("pins no" in w for w in warnings) is warned


def test_a_prefix_that_does_not_end_at_a_separator_is_warned_about():
    assert any("does not end at" in w for w in oidc.pin_warnings(
        "https://ci.example.com", "repo:acme/release*", {}))
    assert not oidc.pin_warnings("https://ci.example.com", "repo:acme/release:*", {})
