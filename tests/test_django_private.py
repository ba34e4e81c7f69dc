"""Django's private APIs the hot path leans on (console/django_private.py). Each test states
what we rely on; if a Django upgrade changes it, these fail loudly, before the API does."""

import inspect

import pytest
from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.core.handlers.wsgi import WSGIHandler
from django.db import DatabaseError, connection
from django.db.backends.base.base import BaseDatabaseWrapper

from console.django_private import LeanHandler, hot_cursor, server_binding_cursor
from tokens.authn import FACTS_SQL, fetch_one

from .factories import make_token


def test_the_handler_methods_we_override_are_djangos():
    """`resolve_request(request)` returns the match and `load_middleware(is_async=False)` reads
    settings.MIDDLEWARE: the two LeanHandler overrides."""
    assert list(inspect.signature(BaseHandler.resolve_request).parameters) == ["self", "request"]
    assert list(inspect.signature(BaseHandler.load_middleware).parameters) == ["self", "is_async"]
    assert "settings.MIDDLEWARE" in inspect.getsource(BaseHandler.load_middleware)
    assert issubclass(LeanHandler, WSGIHandler)


def test_the_lean_handler_builds_its_own_chain_and_leaves_the_settings_alone(db):
    before = list(settings.MIDDLEWARE)
    handler = LeanHandler(["django.middleware.common.CommonMiddleware"], ("/api/v1/whoami",))
    assert list(settings.MIDDLEWARE) == before
    # Django keeps the middleware it loaded as a list of bound methods (its private view
    # middleware list) and the chain; a chain without SessionMiddleware sets no cookie.
    assert handler._middleware_chain is not None
    assert handler.hot["/api/v1/whoami"].url_name == "api_whoami"


def test_the_connection_offers_what_the_hot_cursor_needs():
    """`wrap_database_errors` (a context manager turning driver errors into Django's and
    marking the connection), `connection` (the driver's) and `ensure_connection()`."""
    from django.db.utils import DatabaseErrorWrapper
    from django.utils.functional import cached_property

    assert isinstance(BaseDatabaseWrapper.wrap_database_errors, cached_property)
    assert "DatabaseErrorWrapper" in inspect.getsource(BaseDatabaseWrapper)
    assert hasattr(DatabaseErrorWrapper, "__exit__")
    assert hasattr(BaseDatabaseWrapper, "_prepare_cursor")
    assert "errors_occurred" in inspect.getsource(BaseDatabaseWrapper.__init__)


@pytest.mark.django_db(transaction=True)
def test_the_hot_cursor_binds_on_the_server_and_raises_djangos_errors(owner):
    token, _ = make_token(owner)
    row = fetch_one(FACTS_SQL, {"digest": token.digest})
    assert row.token_id == token.pk
    if connection.vendor != "postgresql":
        return  # SQLite takes Django's own cursor: nothing private on its path
    import psycopg

    with hot_cursor(connection) as first:
        assert type(first) is psycopg.Cursor  # binds on the server, so PostgreSQL prepares
    with hot_cursor(connection) as second:
        assert second is first  # made once per connection
    connection.errors_occurred = False
    with pytest.raises(DatabaseError), hot_cursor(connection) as cursor:
        cursor.execute("SELECT * FROM no_such_table")
    assert connection.errors_occurred  # Django replaces the connection after the request
    connection.close()
    with hot_cursor(connection) as third:
        assert third is not first  # a new connection, a new cursor
    wrapped = server_binding_cursor(connection)
    assert type(wrapped.cursor) is psycopg.Cursor
    wrapped.close()
