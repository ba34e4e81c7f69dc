import pytest
from django.core.management import call_command

from workspaces.models import CustomRole, Group, Membership, User, Workspace
from workspaces.permissions import Perm, can


@pytest.fixture
def seeded(db, settings):
    settings.DEBUG = True
    call_command("seed_demo")


def snapshot():
    return (
        sorted(Workspace.objects.values_list("slug", "name", "plan", "allow_codex_local",
                                             "allow_access_tokens")),
        sorted(Membership.objects.values_list("workspace__slug", "user__email", "role")),
        sorted(Group.objects.values_list("workspace__slug", "name", "members__user__email")),
        sorted(CustomRole.objects.values_list("name", "grants_codex_local",
                                              "grants_access_tokens", "groups__name")),
        User.objects.count(),
    )


def test_it_is_idempotent(seeded):
    before = snapshot()
    call_command("seed_demo")
    assert snapshot() == before


def test_it_seeds_the_contract(seeded):
    assert sorted(Workspace.objects.values_list("slug", "name", "plan", "allow_codex_local",
                                                "allow_access_tokens")) == [
        ("acme", "Acme Corp", "enterprise", True, False),
        ("globex", "Globex", "business", True, True),
        ("initech", "Initech", "edu", True, True),
    ]
    assert sorted(Membership.objects.values_list("user__email", "workspace__slug", "role")) == [
        ("admin@acme.test", "acme", "admin"),
        ("dev@acme.test", "acme", "member"),
        ("member@acme.test", "acme", "member"),
        ("member@acme.test", "globex", "member"),
        ("owner@acme.test", "acme", "owner"),
        ("owner@globex.test", "globex", "owner"),
        ("owner@initech.test", "initech", "owner"),
    ]
    for user in User.objects.all():
        assert user.check_password("codex-demo-pass")


@pytest.mark.parametrize("email,slug,has_tokens", [
    ("owner@acme.test", "acme", True),
    ("admin@acme.test", "acme", True),
    ("dev@acme.test", "acme", True),
    ("member@acme.test", "acme", False),
    ("member@acme.test", "globex", True),
    ("owner@globex.test", "globex", True),
    ("owner@initech.test", "initech", False),
])
def test_who_holds_the_access_token_permission(seeded, email, slug, has_tokens):
    membership = Membership.objects.get(user__email=email, workspace__slug=slug)
    assert can(membership, Perm.USE_ACCESS_TOKENS) is has_tokens
    assert can(membership, Perm.USE_CODEX_LOCAL)


def test_every_demo_user_signs_in(seeded, client):
    for user in User.objects.all():
        response = client.post("/accounts/login/", {"username": user.email,
                                                    "password": "codex-demo-pass"})
        assert response.status_code == 302, user.email
        client.post("/accounts/logout/")
