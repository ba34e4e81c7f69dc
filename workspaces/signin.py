"""Sign-in guarding, on django-axes.

django-axes counts failed sign-ins (through Django's `user_login_failed` signal, so the
console's sign-in page, the invitation page and Django admin's login all count, and so do wrong
old passwords on the password change page) and refuses
locked-out attempts in its authentication backend, before the password is checked. Axes has one
failure limit for every lockout parameter; the contract has two (one per email, a larger one
per address), and a successful sign-in clears the email's count only. `SignInGuard` is axes's
cache handler with those two rules; the counts live in Django's cache (Redis in production,
shared by every worker and server). When the cache cannot be reached, sign-in goes on unguarded
and says so in the log, as the console's other limits do: an outage of Redis must not lock
everyone out of the console.
"""

from __future__ import annotations

import logging

from axes.handlers.cache import AxesCacheHandler
from axes.helpers import get_client_cache_keys, get_credentials
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.shortcuts import render
from redis.exceptions import RedisError

from console.addresses import client_ip, limit_key

from .models import normal_email

logger = logging.getLogger(__name__)

CACHE_DOWN = (RedisError, OSError)


def username_of(request, credentials) -> str | None:
    """The email a sign-in attempt names, in its normal form (NFKC, case-folded): one count per
    address however it is spelled, the same address the sign-in looks the account up by."""
    username = (credentials or {}).get(settings.AXES_USERNAME_FORM_FIELD)
    email = normal_email(username) if isinstance(username, str) else ""
    return email or None


def address_of(request) -> str | None:
    """Who the per-address limit counts: the client's address, native IPv6 by its /64."""
    address = client_ip(request)
    return limit_key(address) if address else None


class SignInGuard(AxesCacheHandler):
    """Refuse an email after `SIGN_IN_EMAIL_LIMIT` failures, an address after
    `SIGN_IN_ADDRESS_LIMIT`, each within `SIGN_IN_WINDOW` seconds."""

    def _counts(self, request, credentials) -> tuple[int, int]:
        # AXES_LOCKOUT_PARAMETERS is ["username", "ip_address"]: one key for each, in order.
        email_key, address_key = get_client_cache_keys(request, credentials)
        email_count = self.cache.get(email_key, 0) if username_of(request, credentials) else 0
        return email_count, self.cache.get(address_key, 0)

    def is_locked(self, request, credentials=None) -> bool:
        try:
            email_count, address_count = self._counts(request, credentials)
        except CACHE_DOWN:
            logger.warning("Sign-in guard: the cache is unreachable; not guarding", exc_info=True)
            return False
        return (email_count >= settings.SIGN_IN_EMAIL_LIMIT
                or address_count >= settings.SIGN_IN_ADDRESS_LIMIT)

    def get_failures(self, request, credentials=None) -> int:
        try:
            return max(self._counts(request, credentials))
        except CACHE_DOWN:
            return 0

    def user_login_failed(self, sender, credentials, request=None, **kwargs):
        try:
            super().user_login_failed(sender, credentials, request, **kwargs)
        except CACHE_DOWN:
            logger.warning("Sign-in guard: the cache is unreachable; failure not counted",
                           exc_info=True)

    def user_logged_in(self, sender, request, user, **kwargs):
        """A successful sign-in clears its email's count (not its address's)."""
        email_key, _ = get_client_cache_keys(request, get_credentials(user.get_username()))
        try:
            self.cache.delete(email_key)
        except CACHE_DOWN:
            logger.warning("Sign-in guard: the cache is unreachable; count not cleared",
                           exc_info=True)


def locked_out(request, original_response=None, credentials=None):
    """The answer to a refused sign-in: 429 and a page that says to try again later."""
    minutes = max(1, settings.SIGN_IN_WINDOW // 60)
    return render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)


class PeopleOnlyBackend(ModelBackend):
    """Django's backend by email and password, for people only: a service account never signs
    in (the console's sign-in, the invitation page and Django admin's login all come here),
    even if someone gave its user a password."""

    def user_can_authenticate(self, user):
        return super().user_can_authenticate(user) and not user.is_service_account
