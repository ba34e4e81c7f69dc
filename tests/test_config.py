"""Settings from the environment: refusing to start without secrets, clean deploy checks."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def manage(*args, **env):
    base = {k: v for k, v in os.environ.items()
            if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "EMAIL_URL",
                         "CACHE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE", "PORT", "SITE_URL")}
    base.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=base,
                          capture_output=True, text=True, timeout=120)


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off():
    result = manage("check", DEBUG="false", ALLOWED_HOSTS="console.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_it_refuses_a_weak_secret_key():
    result = manage("check", DEBUG="false", ALLOWED_HOSTS="console.example.com",
                    SECRET_KEY="django-insecure-short")
    assert result.returncode != 0
    assert "too weak" in result.stderr


def test_it_refuses_to_start_without_allowed_hosts_when_debug_is_off():
    result = manage("check", DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode != 0
    assert "ALLOWED_HOSTS is not set" in result.stderr


def production(**extra):
    return {"DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "console.example.com", "EMAIL_URL": "smtp://127.0.0.1:25",
            **extra}


def test_it_refuses_to_start_without_email_url_when_debug_is_off():
    env = production()
    del env["EMAIL_URL"]
    result = manage("check", **env)
    assert result.returncode != 0
    assert "EMAIL_URL is not set" in result.stderr


@pytest.mark.parametrize("url,words", [
    ("consolemail://", "prints mail on the console"),
    ("filemail:///tmp/mail", "writes mail to files"),
    ("memorymail://", "keeps mail in memory"),
    ("dummymail://", "throws mail away"),
])
def test_it_refuses_a_mail_backend_that_does_not_deliver_when_debug_is_off(url, words):
    result = manage("check", **production(EMAIL_URL=url))
    assert result.returncode != 0
    assert f"names a mail backend that {words} instead of delivering it" in result.stderr
    assert "set EMAIL_URL to your mail server" in result.stderr


def test_with_debug_on_mail_prints_on_the_console():
    code = "from django.conf import settings as s; print(s.EMAIL_BACKEND)"
    result = manage("shell", "-v", "0", "-c", code, DEBUG="true")
    assert result.stdout.strip() == "django.core.mail.backends.console.EmailBackend"


def test_links_in_mail_follow_the_port_in_development():
    code = "from django.conf import settings as s; print(s.SITE_URL)"
    assert manage("shell", "-v", "0", "-c", code, DEBUG="true",
                  PORT="8123").stdout.strip() == "http://127.0.0.1:8123"
    assert manage("shell", "-v", "0", "-c", code, DEBUG="true").stdout.strip() == \
        "http://127.0.0.1:8000"
    assert manage("shell", "-v", "0", "-c", code, DEBUG="true", PORT="8123",
                  SITE_URL="https://console.example.com/").stdout.strip() == \
        "https://console.example.com"


def test_the_deploy_checks_are_clean_under_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING",
                    **production(CACHE_URL="redis://127.0.0.1:6379/0"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_deploy_checks_warn_of_a_cache_per_process():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **production())
    assert result.returncode != 0
    assert "console.W001" in result.stderr and "CACHE_URL is not set" in result.stderr


def test_seed_demo_refuses_with_debug_off():
    result = manage("seed_demo", **production(DATABASE_URL="sqlite://:memory:"))
    assert result.returncode != 0
    assert "refuses to run with DEBUG off" in result.stderr


def test_production_settings_are_secure():
    code = ("from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, "
            "s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0, "
            "'Manifest' in s.STORAGES['staticfiles']['BACKEND'], "
            "getattr(s, 'SECURE_PROXY_SSL_HEADER', None))")
    env = production(ALLOWED_HOSTS="x.example")
    assert manage("shell", "-v", "0", "-c", code, **env).stdout.split() == ["True"] * 5 + ["None"]
    behind_proxy = manage("shell", "-v", "0", "-c", code, SECURE_SSL_REDIRECT="false",
                          SECURE_PROXY_SSL_HEADER="true", **env).stdout
    assert "False True True ('HTTP_X_FORWARDED_PROTO', 'https')" in behind_proxy


def test_postgres_connections_persist():
    code = ("from django.conf import settings as s; d = s.DATABASES['default']; "
            "print(d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'])")
    result = manage("shell", "-v", "0", "-c", code, DEBUG="true",
                    DATABASE_URL="postgres://postgres@127.0.0.1:5432/test")
    assert result.stdout.split() == ["600", "True"]


def test_healthz_answers_plain_http_in_production():
    code = ("from django.test import Client; "
            "r = Client().get('/healthz', HTTP_HOST='x.example'); print(r.status_code); "
            "r = Client().get('/w/acme/', HTTP_HOST='x.example'); print(r.status_code)")
    result = manage("shell", "-v", "0", "-c", code,
                    **production(ALLOWED_HOSTS="x.example", DATABASE_URL="sqlite://:memory:"))
    # /healthz needs a database that answers: an empty in-memory one does ("SELECT 1").
    assert result.stdout.split() == ["200", "301"], result.stderr
