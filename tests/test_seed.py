from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from tokens.models import AccessToken, Run
from workspaces.models import AuditEvent, CustomRole, Group, Membership, User, Workspace
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
        sorted(AccessToken.objects.values_list("name", "digest", "revoked_at", "expires_at")),
        Run.objects.count(), AuditEvent.objects.count(),
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
    assert sorted(Membership.objects.filter(user__is_service_account=False)
                  .values_list("user__email", "workspace__slug", "role")) == [
        ("admin@acme.test", "acme", "admin"),
        ("dev@acme.test", "acme", "member"),
        ("member@acme.test", "acme", "member"),
        ("member@acme.test", "globex", "member"),
        ("owner@acme.test", "acme", "owner"),
        ("owner@globex.test", "globex", "owner"),
        ("owner@initech.test", "initech", "owner"),
    ]
    for user in User.objects.filter(is_service_account=False):
        assert user.check_password("codex-demo-pass")
    # And a service account, in Release engineering, which holds access tokens through it.
    bot = Membership.objects.get(user__is_service_account=True)
    assert (bot.workspace.slug, bot.user.handle, bot.role) == ("acme", "svc:docs-bot", "member")
    assert not bot.user.has_usable_password()
    assert can(bot, Perm.USE_ACCESS_TOKENS)


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
    for user in User.objects.filter(is_service_account=False):
        response = client.post("/accounts/login/", {"username": user.email,
                                                    "password": "codex-demo-pass"})
        assert response.status_code == 302, user.email
        client.post("/accounts/logout/")


def test_the_demo_tells_a_story(seeded, client):
    from tokens.models import AccessToken, Run, RunDay
    from workspaces.models import AuditEvent

    tokens = {t.name: t for t in AccessToken.objects.select_related("created_by", "workspace")}
    now = timezone.now()
    assert tokens["release-ci"].created_by.email == "dev@acme.test"
    assert tokens["release-ci"].status_at(now) == "active"
    assert tokens["release-ci"].last_used_at > now - timedelta(days=1)  # used daily
    assert tokens["nightly-docs-check"].expires_at is None
    assert tokens["old-laptop"].status_at(now) == "revoked"
    assert tokens["q3-migration"].status_at(now) == "expired"
    assert tokens["personal-scripts"].workspace.slug == "globex"
    assert tokens["personal-scripts"].created_by.email == "member@acme.test"
    runs = Run.objects.all()
    assert 200 <= runs.count() <= 600
    assert runs.filter(started_at__lt=now - timedelta(days=30)).count() < runs.count() // 10
    assert {"github-actions", "jenkins", "cron"} <= set(runs.values_list("client", flat=True))
    assert AuditEvent.objects.filter(action="token.created").count() == len(tokens)
    assert AuditEvent.objects.filter(action="token.revoked", target="old-laptop").exists()
    assert sum(RunDay.objects.values_list("runs", flat=True)) == runs.count()


def test_the_demo_tokens_cannot_be_used(db, settings, monkeypatch, capsys, caplog):
    """The demo tokens' secrets are made and thrown away: the command prints none, logs none,
    and stores none anywhere, so nobody can present one."""
    import io

    from django.apps import apps

    from tokens import codec

    made = []
    generate = codec.generate
    monkeypatch.setattr(codec, "generate", lambda: made.append(generate()) or made[-1])
    settings.DEBUG = True
    out = io.StringIO()
    call_command("seed_demo", stdout=out, stderr=out)
    digests = set(AccessToken.objects.values_list("digest", flat=True))
    secrets = [s for s in made if codec.digest(s) in digests]
    assert len(secrets) == len(digests) >= 4  # every demo token's secret was seen being made
    printed = out.getvalue() + capsys.readouterr().out + caplog.text
    stored = [str(value) for model in apps.get_models()
              for row in model.objects.values_list() for value in row]
    for secret in secrets:
        assert secret not in printed
        assert not any(secret in value or secret[3:33] in value for value in stored)


def test_the_readmes_demo_story_names_each_token_with_its_creator(seeded):
    """The README tells whose each demo token is ("dev@acme.test's tokens "release-ci" ..."):
    every token it names belongs to the email named before it, and it names every token."""
    import re
    from pathlib import Path

    from tokens.models import AccessToken

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    story = readme.split("with a story to see every page at work:", 1)[1].split("secrets", 1)[0]
    story = " ".join(story.split())
    named = {}
    for part in re.split(r"(?=\b(?:[\w.]+@[\w.]+|svc:[\w.-]+)'s )", story):
        owner = re.match(r"([\w.]+@[\w.]+|svc:[\w.-]+)'s ", part)
        for name in re.findall(r'"([a-z0-9-]+)"', part):
            assert owner, f"{name!r} is named before any creator"
            named[name] = owner.group(1)
    creators = {t.name: t.created_by.handle
                for t in AccessToken.objects.select_related("created_by")}
    assert named == creators


def test_a_newcomer_sees_every_page_at_work(seeded, client):
    client.post("/accounts/login/", {"username": "owner@acme.test", "password": "codex-demo-pass"})
    tokens = client.get("/w/acme/admin/access-tokens/").content.decode()
    assert "release-ci" in tokens and "No access tokens yet" not in tokens
    governance = client.get("/w/acme/admin/governance/").content.decode()
    assert "<svg class=\"chart\"" in governance and "No runs yet" not in governance
    assert "github-actions" in governance
    audit = client.get("/w/acme/admin/audit-log/").content.decode()
    assert "Access token created" in audit and "No audit events" not in audit
    overview = client.get("/w/acme/").content.decode()
    assert "Runs, last 7 days" in overview and "Tokens that expire soon" in overview


def test_it_adds_nothing_to_a_real_workspace_with_a_demo_slug(db, settings):
    from django.core.management import CommandError

    from .factories import MembershipFactory, WorkspaceFactory

    settings.DEBUG = True
    real = WorkspaceFactory(slug="globex", name="Globex (real)")
    MembershipFactory(workspace=real, role="owner")
    with pytest.raises(CommandError, match="slug globex exists and is not the demo's"):
        call_command("seed_demo", "--force")
    assert Workspace.objects.count() == 1 and real.memberships.count() == 1
    assert not User.objects.filter(email__endswith="@acme.test").exists()
