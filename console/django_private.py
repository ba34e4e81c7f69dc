"""Every use of Django's private APIs, in one place. Each is here because `make bench` showed
its public equivalent costing more than 5% on the hot path (the token check runs on every Codex
CLI call, four times per `codex exec`), and tests/test_django_private.py fails loudly if Django
changes beneath one of them.

- `hot_cursor(connection)`: a psycopg cursor that binds parameters on the server (so
  PostgreSQL keeps the statement prepared: planning the token check costs ~20x running it),
  made once per connection and kept on it, its errors turned into Django's by
  `connection.wrap_database_errors` (which also marks the connection to be replaced).
  Public equivalent: `connection.cursor()`, which binds on the client and wraps every call.
- `LeanHandler`: Django's WSGI handler with its own middleware list instead of
  `settings.MIDDLEWARE` (`load_middleware` reads only the setting), and the hot paths' URL
  resolutions remembered (`resolve_request`). Public equivalent: the full middleware stack on
  every API call (sessions, CSRF, CSP, messages, ... for calls without a browser).
"""

from __future__ import annotations

from contextlib import contextmanager

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

_HOT_CURSOR = "_console_hot_cursor"


@contextmanager
def hot_cursor(connection):
    """The connection's own server-binding psycopg cursor (PostgreSQL only), with database
    errors raised as Django's. Use it only when nothing watches queries (no DEBUG query log,
    no execute wrappers): it bypasses Django's cursor wrapper."""
    import psycopg

    with connection.wrap_database_errors:
        if connection.connection is None:
            connection.ensure_connection()
        raw = connection.connection
        kept = getattr(connection, _HOT_CURSOR, None)
        if kept is None or kept[0] is not raw:
            kept = (raw, psycopg.Cursor(raw))
            setattr(connection, _HOT_CURSOR, kept)
        yield kept[1]


def server_binding_cursor(connection):
    """Django's cursor wrapper around a server-binding psycopg cursor (PostgreSQL only): for
    when queries are watched (tests, DEBUG), so they still see the hot path's statements."""
    import psycopg

    connection.ensure_connection()
    return connection._prepare_cursor(psycopg.Cursor(connection.connection))


class LeanHandler(WSGIHandler):
    """Django's WSGI handler with `middleware` instead of `settings.MIDDLEWARE`, and the URL
    resolutions of `hot_paths` remembered."""

    def __init__(self, middleware: list[str], hot_paths: tuple[str, ...]):
        self.lean_middleware = middleware
        super().__init__()
        from django.urls import resolve

        self.hot = {path: resolve(path) for path in hot_paths}

    def resolve_request(self, request):
        match = self.hot.get(request.path_info)
        if match is None:
            return super().resolve_request(request)
        request.resolver_match = match
        return match

    def load_middleware(self, is_async=False):
        # Django builds the chain from settings.MIDDLEWARE only: swap it for this one build,
        # at start-up, before any request is served.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = self.lean_middleware
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full
