"""The plaintext token lives only in the one response that shows it: never in the database,
the session, a log line or an error report."""

import logging

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.core.cache import cache

from tokens import codec

TOKEN_RE = codec.FIND_RE


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())
        if record.exc_info:
            self.lines.append(logging.Formatter().formatException(record.exc_info))


@pytest.fixture
def collected():
    handler = Collect()
    names = ["", "django", "django.request", "django.server", "django.db.backends", "tokens",
             "workspaces"]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield handler
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)


def _create(client, name):
    response = client.post("/w/acme/admin/access-tokens/new/",
                           {"name": name, "expiration": "30", "request_key": name})
    return TOKEN_RE.search(response.content.decode()).group(0)


def everything_stored():
    """Every value of every row of every table, as text."""
    for model in apps.get_models(include_auto_created=True):
        for row in model.objects.all().values_list():
            yield model.__name__, " ".join(str(v) for v in row)
    for session in Session.objects.all():
        yield "session", str(session.get_decoded())


def test_no_plaintext_token_is_stored_or_logged(client, owner, member_with_token_permission,
                                                collected, capfd, settings):
    settings.DEBUG = False
    cache.clear()
    client.force_login(owner.user)
    owners = _create(client, "owner-ci")
    revoked = _create(client, "to-revoke")
    client.force_login(member_with_token_permission.user)
    members = _create(client, "member-ci")
    client.logout()
    from tokens.models import AccessToken

    token = AccessToken.objects.get(name="to-revoke")
    client.force_login(owner.user)
    client.post(f"/w/acme/admin/access-tokens/{token.pk}/revoke/")
    client.logout()
    malformed = owners[:-1] + ("x" if owners[-1] != "x" else "y")
    for plaintext in (owners, members, revoked, malformed):
        auth = {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}
        client.get("/api/v1/whoami", **auth)
        client.post("/api/v1/runs", data={"client": "ci"}, content_type="application/json", **auth)
        client.get(f"/api/v1/whoami?access_token={plaintext}")
        client.post("/api/v1/runs", data={"access_token": plaintext},
                    content_type="application/json")
    assert collected.lines, "the requests above log something (4xx warnings at least)"
    secrets = [owners, members, revoked, malformed]
    for table, text in everything_stored():
        for secret in secrets:
            assert secret not in text, table
    for line in collected.lines:
        assert not TOKEN_RE.search(line), line
    out, err = capfd.readouterr()
    for secret in secrets:
        assert secret not in out and secret not in err


def test_error_reports_hide_the_authorization_header_and_tokens(rf):
    from console.reporting import SecretSafeExceptionReporterFilter
    from tokens import codec

    plaintext = codec.generate()
    request = rf.get(f"/api/v1/whoami?t={plaintext}", HTTP_AUTHORIZATION=f"Bearer {plaintext}",
                     HTTP_X_OTHER=plaintext)
    meta = SecretSafeExceptionReporterFilter().get_safe_request_meta(request)
    assert plaintext not in str(meta)


def test_error_reports_hide_api_keys(rf):
    """A Platform API key (the provider's, or one a client sent by mistake) stays out of error
    reports as access tokens do."""
    from console.reporting import SecretSafeExceptionReporterFilter

    key = "sk-proj-" + "Q7_x-" * 10
    request = rf.post(f"/codex/api/responses?k={key}", {"note": f"my key is {key}"},
                      HTTP_X_NOTE=f"{key}.")
    reporter = SecretSafeExceptionReporterFilter()
    meta = reporter.get_safe_request_meta(request)
    assert key not in str(meta) and key[:12] not in str(meta)
    assert meta["HTTP_X_NOTE"] == "sk-[FILTERED]."
    assert key not in str(reporter.get_post_parameters(request))


def test_the_stdout_formatter_scrubs_tokens():
    from console.scrubbing import ScrubbingFormatter
    from tokens import codec

    plaintext = codec.generate()
    record = logging.LogRecord("django.server", logging.INFO, __file__, 1,
                               '"GET /api/v1/whoami?access_token=%s HTTP/1.1" 400', (plaintext,),
                               None)
    assert plaintext not in ScrubbingFormatter("{message}", style="{").format(record)


def test_the_production_logs_never_write_secrets_from_urls(tmp_path):
    """gunicorn with config/gunicorn.py: a token put in a URL by mistake, an invitation's key
    and a password reset token stay out of the access log and Django's request log."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request
    from pathlib import Path

    from tokens import codec

    root = Path(__file__).resolve().parent.parent
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DEBUG": "true", "GUNICORN_BIND": f"127.0.0.1:{port}",
           "WEB_CONCURRENCY": "1", "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=root, env=env,
                   check=True)
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "-c", "config/gunicorn.py",
             "config.asgi:application"], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            plaintext = codec.generate()
            url = f"http://127.0.0.1:{port}/api/v1/whoami?access_token={plaintext}"
            for _ in range(100):
                try:
                    urllib.request.urlopen(url, timeout=2)
                except urllib.error.HTTPError as error:
                    assert error.code == 400
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                raise AssertionError("gunicorn did not answer")
            key, reset = "k3y-" + "x" * 40, "c9v1ab-" + "y" * 32
            for path in (f"/invitations/{key}/", f"/invitations/{key}/sign-in/",
                         f"/accounts/reset/MQ/{reset}/"):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)
                except urllib.error.HTTPError:
                    pass  # an unknown key is a 404; the line is logged all the same
        finally:
            server.terminate()
            server.wait(10)
    text = log.read_text()
    assert '"GET /api/v1/whoami" 400' in text
    assert plaintext not in text and "access_token" not in text
    assert key not in text and reset not in text
    assert '"GET /invitations/[FILTERED]/" 404' in text
    assert "Not Found: /invitations/[FILTERED]/" in text
    assert '"GET /accounts/reset/MQ/[FILTERED]/" 200' in text
