"""The WSGI entry point: bearer-token calls take the lean handler, browsers the full stack."""

import io
from wsgiref.util import setup_testing_defaults

from django.core.signals import request_started
from django.db import close_old_connections

from config.wsgi import application

from .factories import make_token


def call(path, method="GET", headers=None, body=b""):
    environ = {"PATH_INFO": path, "REQUEST_METHOD": method, "wsgi.input": io.BytesIO(body),
               "CONTENT_LENGTH": str(len(body)), "SERVER_NAME": "localhost",
               "HTTP_HOST": "localhost", **(headers or {})}
    setup_testing_defaults(environ)
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(response_headers)

    # As Django's test client does: the test's transaction must survive the request.
    request_started.disconnect(close_old_connections)
    try:
        content = b"".join(application(environ, start_response))
    finally:
        request_started.connect(close_old_connections)
    return int(seen["status"].split()[0]), seen["headers"], content


def test_the_api_answers_through_the_lean_handler(db, owner):
    _, plaintext = make_token(owner)
    status, headers, content = call("/api/v1/whoami",
                                    headers={"HTTP_AUTHORIZATION": f"Bearer {plaintext}"})
    assert status == 200 and b"alice@acme.test" in content
    assert "Content-Security-Policy" not in headers and "Set-Cookie" not in headers
    assert headers["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware still runs


def test_the_api_refuses_through_it_in_json(db):
    status, headers, content = call("/api/v1/nowhere")
    assert status == 404 and headers["Content-Type"] == "application/json"
    status, _, content = call("/codex/api/responses", "POST")
    assert status == 401 and b"missing_token" in content


def test_pages_keep_the_full_stack(db):
    status, headers, _ = call("/accounts/login/")
    assert status == 200
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert "csrftoken" in headers.get("Set-Cookie", "")
