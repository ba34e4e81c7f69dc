import factory
from django.utils import timezone

from tokens import codec
from tokens.models import AccessToken, Run
from workspaces.models import CustomRole, Group, Membership, Plan, Role, User, Workspace

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    name = factory.Sequence(lambda n: f"User {n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @classmethod
    def _after_postgeneration(cls, instance, create, results=None):
        if create:
            instance.save()


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"ws{n}")
    plan = Plan.ENTERPRISE
    allow_codex_local = True
    allow_access_tokens = False


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MEMBER


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Group {n}")


class CustomRoleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomRole

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Role {n}")


def make_token(membership, *, name=None, expires_at="default", revoked_at=None, **extra):
    """An access token row for `membership`'s user; returns (token, plaintext)."""
    plaintext = codec.generate()
    if expires_at == "default":
        expires_at = timezone.now() + timezone.timedelta(days=30)
    token = AccessToken.objects.create(
        workspace=membership.workspace,
        created_by=membership.user,
        name=name or f"token {AccessToken.objects.count() + 1}",
        digest=codec.digest(plaintext),
        last_characters=plaintext[-4:],
        expires_at=expires_at,
        revoked_at=revoked_at,
        **extra,
    )
    return token, plaintext


def make_run(token, **extra):
    """A run row, counted in the roll-ups as the run start's statement counts it."""
    from datetime import UTC

    from tokens.services.runs import rollups_add

    run = Run.objects.create(workspace=token.workspace, token=token, user=token.created_by, **extra)
    rollups_add(workspace_id=token.workspace_id, day=run.started_at.astimezone(UTC).date(),
                user_id=token.created_by_id, token_id=token.pk, runs=1)
    return run


def table_of(response) -> str:
    """The rows of the page's main table, its last (a chart's table or pending invitations
    come before it), as text (the sidebar names the signed-in user)."""
    html = response.content.decode()
    if "<tbody>" not in html:
        return ""
    return html.rsplit("<tbody>", 1)[1].split("</tbody>", 1)[0]


def row_of(response, token) -> str:
    """The list's row of one token, as text."""
    html = response.content.decode()
    start = html.index(f'<tr data-token-id="{token.pk}"')
    return html[start:html.index("</tr>", start)]


def make_service_account(by, *, name="release-ci", description=""):
    """A service account of `by`'s workspace, created through the service as `by` (an owner or
    admin) would; returns (the ServiceAccount, its membership)."""
    from console.audit import Actor
    from workspaces.services.service_accounts import service_account_create

    account = service_account_create(workspace=by.workspace, acting=by, actor=Actor(by.user),
                                     name=name, description=description)
    return account, Membership.objects.get(workspace=by.workspace, user=account.user)
