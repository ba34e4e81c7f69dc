"""The cast: one enterprise workspace with an owner, an admin, a member with the access token
permission (through a group's custom role), a plain member, and an outsider from another
workspace. Tokens are off for members by the toggle, on through the custom role."""

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache

from workspaces.models import Role

from .factories import (
    PASSWORD,
    CustomRoleFactory,
    GroupFactory,
    MembershipFactory,
    UserFactory,
    WorkspaceFactory,
)
from .mailbox import SMTPServer


def pytest_configure(config):
    # Hashing with PBKDF2 at full strength makes every sign-in cost ~0.3 s: not in tests.
    django_settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_cache():
    """The API's failure counts live in the cache: every test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def workspace(db):
    return WorkspaceFactory(name="Acme Corp", slug="acme", allow_codex_local=True,
                            allow_access_tokens=False)


@pytest.fixture
def other_workspace(db):
    return WorkspaceFactory(name="Globex", slug="globex", allow_codex_local=True,
                            allow_access_tokens=True)


def _member(workspace, role, email):
    return MembershipFactory(workspace=workspace, role=role, user=UserFactory(email=email))


@pytest.fixture
def owner(workspace):
    return _member(workspace, Role.OWNER, "alice@acme.test")


@pytest.fixture
def admin(workspace):
    return _member(workspace, Role.ADMIN, "adam@acme.test")


@pytest.fixture
def member_with_token_permission(workspace):
    membership = _member(workspace, Role.MEMBER, "dora@acme.test")
    group = GroupFactory(workspace=workspace, name="Release engineering")
    group.members.add(membership)
    role = CustomRoleFactory(workspace=workspace, name="Automation", grants_access_tokens=True)
    role.groups.add(group)
    return membership


@pytest.fixture
def member(workspace):
    return _member(workspace, Role.MEMBER, "bob@acme.test")


@pytest.fixture
def outsider(other_workspace):
    return _member(other_workspace, Role.OWNER, "charlie@globex.test")


@pytest.fixture
def login(client):
    """Sign `membership`'s user in on the test client; returns the client."""

    def sign_in(membership):
        client.force_login(membership.user)
        return client

    return sign_in


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server (aiosmtpd) on loopback; the mail worker sends through it."""
    server = SMTPServer()
    server.start()
    server.use(settings)
    yield server.inbox
    if server.inbox.hold is not None:
        server.inbox.hold.set()
    server.stop()


@pytest.fixture
def asgi_server(transactional_db):
    """The production ASGI application (config/asgi.py) served by uvicorn in this process, on
    a free port, against the test database: `.url`, and `.client` (tests/asgi_client.py)."""
    from .asgi_client import AsgiServer, Client

    with AsgiServer() as server:
        server.client = Client(server.url)
        yield server
