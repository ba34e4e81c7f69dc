"""Sign-in is guarded (django-axes with the contract's limits), password resets are limited and
tell nobody which emails have accounts, and reset mail goes out through a real SMTP server."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from console.models import OutboundMail

from .factories import UserFactory
from .mailbox import delivered

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/django-admin/login/"
RESET = "/accounts/password_reset/"


def sign_in(client, email, password, url=LOGIN, **extra):
    return client.post(url, {"username": email, "password": password}, **extra)


def fail(client, email, times, url=LOGIN, **extra):
    for _ in range(times):
        response = sign_in(client, email, "wrong-password", url, **extra)
        assert response.status_code == 200, response.status_code


def test_ten_failures_refuse_the_eleventh_attempt_even_with_the_right_password(
        client, owner, password):
    fail(client, "alice@acme.test", 10)
    response = sign_in(client, "alice@acme.test", password)
    assert response.status_code == 429
    assert b"Try again later" in response.content
    assert "_auth_user_id" not in client.session


def test_nine_failures_still_let_the_right_password_in(client, owner, password):
    fail(client, "alice@acme.test", 9)
    assert sign_in(client, "alice@acme.test", password).status_code == 302


def test_the_email_is_counted_whatever_its_case(client, owner, password):
    fail(client, "ALICE@acme.test", 5)
    fail(client, "alice@ACME.test", 5)
    assert sign_in(client, "alice@acme.test", password).status_code == 429


def test_a_success_clears_the_emails_count(client, owner, password):
    fail(client, "alice@acme.test", 9)
    assert sign_in(client, "alice@acme.test", password).status_code == 302
    client.post("/accounts/logout/")
    fail(client, "alice@acme.test", 9)
    assert sign_in(client, "alice@acme.test", password).status_code == 302


def test_the_lockout_ends_when_the_window_passes(client, owner, password):
    with time_machine.travel(timezone.now()) as clock:
        fail(client, "alice@acme.test", 10)
        clock.shift(timedelta(minutes=14))
        assert sign_in(client, "alice@acme.test", password).status_code == 429
        clock.shift(timedelta(minutes=1, seconds=1))
        assert sign_in(client, "alice@acme.test", password).status_code == 302


def test_one_email_locked_leaves_others_alone(client, owner, admin, password):
    fail(client, "alice@acme.test", 10)
    assert sign_in(client, "adam@acme.test", password).status_code == 302


def test_fifty_failures_from_one_address_refuse_that_address(client, owner, password):
    for n in range(50):  # five failures each for ten emails: no email reaches its limit
        fail(client, f"nobody{n // 5}@acme.test", 1)
    response = sign_in(client, "alice@acme.test", password)
    assert response.status_code == 429
    other_address = sign_in(client, "alice@acme.test", password, REMOTE_ADDR="10.9.9.9")
    assert other_address.status_code == 302


def test_ipv6_addresses_are_counted_by_their_64(client, owner, password):
    for n in range(50):
        fail(client, f"nobody{n // 5}@acme.test", 1, REMOTE_ADDR=f"2001:db8:7:7::{n + 1:x}")
    assert sign_in(client, "alice@acme.test", password,
                   REMOTE_ADDR="2001:db8:7:7::ffff").status_code == 429
    assert sign_in(client, "alice@acme.test", password,
                   REMOTE_ADDR="2001:db8:7:8::1").status_code == 302


def test_ipv4_mapped_addresses_are_their_ipv4_address(client, owner, password):
    for n in range(50):
        fail(client, f"nobody{n // 5}@acme.test", 1, REMOTE_ADDR="::ffff:198.51.100.7")
    assert sign_in(client, "alice@acme.test", password,
                   REMOTE_ADDR="198.51.100.7").status_code == 429
    assert sign_in(client, "alice@acme.test", password,
                   REMOTE_ADDR="::ffff:198.51.100.8").status_code == 302


def test_a_success_does_not_clear_the_addresss_count(client, owner, admin, password):
    for n in range(49):
        fail(client, f"nobody{n // 5}@acme.test", 1)
    assert sign_in(client, "adam@acme.test", password).status_code == 302
    client.post("/accounts/logout/")
    fail(client, "nobody-else@acme.test", 1)
    assert sign_in(client, "alice@acme.test", password).status_code == 429


def test_the_address_comes_from_the_trusted_proxy_header(client, owner, password, settings):
    settings.TRUSTED_PROXY_HEADER = "HTTP_X_FORWARDED_FOR"
    for n in range(50):
        fail(client, f"nobody{n // 5}@acme.test", 1, HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert sign_in(client, "alice@acme.test", password,
                   HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    assert sign_in(client, "alice@acme.test", password,
                   HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 302


def test_django_admins_login_counts_the_same(client, db, password):
    staff = UserFactory(email="staff@acme.test", is_staff=True, is_superuser=True)
    fail(client, "staff@acme.test", 5, url=ADMIN_LOGIN)
    fail(client, "staff@acme.test", 5)
    assert sign_in(client, staff.email, password, url=ADMIN_LOGIN).status_code == 429
    assert sign_in(client, staff.email, password).status_code == 429


def test_the_refusal_page_is_the_consoles(client, owner):
    fail(client, "alice@acme.test", 10)
    response = sign_in(client, "alice@acme.test", "wrong-password")
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many sign-in attempts" in page and "console.css" in page


@pytest.fixture
def cache_down(settings):
    """Django's cache is a Redis server that cannot be reached (nothing listens there)."""
    from axes.handlers.proxy import AxesProxyHandler

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}
    AxesProxyHandler.get_implementation(force=True)  # axes keeps its cache from its start
    yield
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    AxesProxyHandler.get_implementation(force=True)


def test_with_the_cache_unreachable_sign_in_goes_on_unguarded(client, owner, password,
                                                               cache_down, caplog):
    response = sign_in(client, "alice@acme.test", "wrong-password")
    assert response.status_code == 200
    assert "That email and password do not match an account" in response.content.decode()
    assert sign_in(client, "alice@acme.test", password).status_code == 302
    assert "Sign-in guard: the cache is unreachable" in caplog.text


# Password reset --------------------------------------------------------------------------


def test_a_reset_answers_the_same_whether_or_not_the_email_has_an_account(client, owner):
    known = client.post(RESET, {"email": "alice@acme.test"}, follow=True)
    unknown = client.post(RESET, {"email": "ghost@acme.test"}, follow=True)
    assert known.redirect_chain == unknown.redirect_chain == [("/accounts/password_reset/done/",
                                                                302)]
    assert known.content == unknown.content
    assert [m.to for m in delivered()] == [["alice@acme.test"]]


def test_five_reset_requests_per_email_and_hour(client, owner):
    for email in ("alice@acme.test", "ghost@acme.test"):
        for _ in range(5):
            assert client.post(RESET, {"email": email}).status_code == 302
        refused = client.post(RESET, {"email": email.upper()})
        assert refused.status_code == 429
        assert b"Too many reset requests" in refused.content
    assert OutboundMail.objects.filter(kind="password_reset").count() == 10
    assert len(delivered()) == 5


def test_the_reset_pages_are_the_consoles(client, db):
    page = client.get(RESET).content.decode()
    assert "Reset your password" in page and "console.css" in page
    assert "Django administration" not in page
    assert "Forgot your password?" in client.get(LOGIN).content.decode()


def test_a_password_reset_through_a_real_smtp_server(client, owner, smtp_server, settings):
    assert client.post(RESET, {"email": "alice@acme.test"}).status_code == 302
    assert smtp_server.messages == []  # queued: the mail worker sends it
    delivered()
    (envelope,) = smtp_server.messages
    assert envelope.rcpt_tos == ["alice@acme.test"]
    body = envelope.content.decode()
    assert "Reset your Codex workspace console password" in body
    link = re.search(re.escape(settings.SITE_URL) + r"(/accounts/reset/\S+/)", body).group(1)
    form = client.get(link, follow=True)
    assert b"Choose a new password" in form.content
    done = client.post(form.redirect_chain[-1][0], {
        "new_password1": "a-brand-new-secret-77", "new_password2": "a-brand-new-secret-77"})
    assert done.status_code == 302
    assert sign_in(client, "alice@acme.test", "a-brand-new-secret-77").status_code == 302
