"""An email is one account however it is spelled: addresses are stored and compared in one normal
form (Unicode NFKC, then case-folded), never with the database's case-insensitive matching
(PostgreSQL's UPPER() turns `ı` into I and `ſ` into S). Every per-email limit counts on it:
sign-in, password reset, invitations. A migration brings stored emails to the normal form, and
refuses, naming them, when two accounts would become one."""

import pytest
from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from console.models import OutboundMail
from workspaces.models import Invitation, User, normal_email

from .factories import UserFactory
from .mailbox import delivered

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/django-admin/login/"
RESET = "/accounts/password_reset/"


def sign_in(client, email, password, url=LOGIN):
    return client.post(url, {"username": email, "password": password})


@pytest.mark.parametrize("spelling,normal", [
    ("Victim@Acme.test", "victim@acme.test"),
    ("victim@acme.teſt", "victim@acme.test"),  # long s: NFKC makes it s
    ("  VICTIM@ACME.TEST ", "victim@acme.test"),
    ("victim@acme.\u212a\u212a", "victim@acme.kk"),  # Kelvin signs
    ("straße@acme.test", "strasse@acme.test"),
    ("victım@acme.test", "victım@acme.test"),  # dotless i is another letter: another address
    ("ｖｉｃｔｉｍ@acme.test", "victim@acme.test"),  # full-width letters
])
def test_the_normal_form(spelling, normal):
    assert normal_email(spelling) == normal
    assert normal_email(normal) == normal


def test_failures_for_one_spelling_lock_out_every_spelling(client, db, password):
    UserFactory(email="victim1@acme.test")
    for _ in range(10):
        assert sign_in(client, "victim1@acme.test", "wrong-password").status_code == 200
    for spelling in ("victim1@acme.teſt", "Victim1@ACME.test", "victim1@acme.test"):
        response = sign_in(client, spelling, password)
        assert response.status_code == 429, spelling
        assert "_auth_user_id" not in client.session


def test_failures_count_together_whatever_the_spelling(client, db, password):
    UserFactory(email="victim1@acme.test")
    for spelling in ("victim1@acme.teſt", "VICTIM1@acme.test") * 5:
        sign_in(client, spelling, "wrong-password")
    assert sign_in(client, "victim1@acme.test", password).status_code == 429


def test_every_spelling_signs_in_to_the_one_account(client, db, password):
    user = UserFactory(email="tiki@console.test")
    for spelling in ("Tiki@Console.TEST", "tiki@console.teſt"):
        assert sign_in(client, spelling, password).status_code == 302
        assert client.session["_auth_user_id"] == str(user.pk)
        client.post("/accounts/logout/")


def test_a_lookalike_signs_in_to_nothing(client, db, password):
    """The dotless ı is not i: `tıki@console.test` is another address, with no account."""
    UserFactory(email="tiki@console.test", is_staff=True, is_superuser=True)
    for url in (ADMIN_LOGIN, LOGIN):
        response = sign_in(client, "tıki@console.test", password, url)
        assert response.status_code == 200, url
        assert "_auth_user_id" not in client.session


def test_the_reset_limit_counts_every_spelling_as_one(client, owner):
    for spelling in ("alice@acme.test", "Alice@acme.test", "alice@acme.teſt",
                     "ALICE@ACME.TEST", "alice@acme.test"):
        assert client.post(RESET, {"email": spelling}).status_code == 302
    refused = client.post(RESET, {"email": "alice@acme.teſt"})
    assert refused.status_code == 429
    assert [m.to for m in delivered()] == [["alice@acme.test"]] * 5


def test_one_open_invitation_per_address(client, owner, member):
    client.force_login(owner.user)
    client.post("/w/acme/admin/members/invite/", {"email": "new@acme.test", "role": "member"})
    client.post("/w/acme/admin/members/invite/", {"email": "NEW@acme.teſt", "role": "admin"})
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role) == ("new@acme.test", "admin")
    refused = client.post("/w/acme/admin/members/invite/",
                          {"email": "Bob@acme.teſt", "role": "member"})
    assert refused.status_code == 400
    assert "bob@acme.test is already a member of Acme Corp" in refused.content.decode()


def test_the_invitation_is_accepted_by_its_address_only(client, owner, password):
    client.force_login(owner.user)
    client.post("/w/acme/admin/members/invite/", {"email": "New@Acme.teſt", "role": "member"})
    (message,) = delivered()
    link = message.body.split(settings.SITE_URL, 1)[1].split()[0]
    lookalike = UserFactory(email="nеw@acme.test")  # a Cyrillic е
    client.force_login(lookalike)
    assert client.post(link).status_code == 403
    client.force_login(UserFactory(email="new@acme.test"))
    assert client.post(link).status_code == 302


def test_accounts_are_made_in_the_normal_form(db):
    user = User.objects.create_user("Someone@Example.TEſT", "a-long-secret-1")
    assert user.email == "someone@example.test"
    assert User.objects.get_by_natural_key("SOMEONE@example.test") == user
    with pytest.raises(User.DoesNotExist):
        User.objects.get_by_natural_key("someone@examp1e.test")


# The migration ----------------------------------------------------------------------------


BEFORE, AFTER = ("workspaces", "0003_lifecycle"), ("workspaces", "0004_normal_emails")


@pytest.fixture
def migrator(transactional_db):
    """Migrate workspaces to a point; back to the latest state afterwards."""
    executor = MigrationExecutor(connection)

    def migrate(target):
        executor.loader.build_graph()
        executor.migrate([target])
        return executor.loader.project_state([target]).apps

    yield migrate
    OutboundMail.objects.all().delete()
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_migration_brings_stored_emails_to_the_normal_form_and_back(migrator):
    apps = migrator(BEFORE)
    old_user, old_workspace, old_invitation = (apps.get_model("workspaces", name) for name in
                                               ("User", "Workspace", "Invitation"))
    old_user.objects.create(email="Victim@Acme.test")
    old_user.objects.create(email="other@acme.teſt")
    workspace = old_workspace.objects.create(name="Acme", slug="acme")
    old_invitation.objects.create(workspace=workspace, email="New@ACME.test", key_digest="a" * 64,
                                  expires_at=timezone.now())
    apps = migrator(AFTER)
    assert sorted(apps.get_model("workspaces", "User").objects.values_list("email", flat=True)) \
        == ["other@acme.test", "victim@acme.test"]
    assert apps.get_model("workspaces", "Invitation").objects.get().email == "new@acme.test"
    apps = migrator(BEFORE)  # and back: the emails stay in their normal form
    assert apps.get_model("workspaces", "User").objects.count() == 2


def test_the_migration_refuses_when_two_accounts_would_become_one(migrator):
    apps = migrator(BEFORE)
    old_user = apps.get_model("workspaces", "User")
    old_user.objects.create(email="victim@acme.test")
    twin = old_user.objects.create(email="Victim@Acme.teſt")
    old_user.objects.create(email="someone@acme.test")
    with pytest.raises(CommandError) as refused:
        migrator(AFTER)
    message = str(refused.value)
    assert "'victim@acme.test'" in message and "'Victim@Acme.teſt'" in message
    assert "would all be 'victim@acme.test'" in message and "someone" not in message
    assert sorted(old_user.objects.values_list("email", flat=True)) == [
        "Victim@Acme.teſt", "someone@acme.test", "victim@acme.test"]  # nothing changed
    twin.delete()  # as the message says: one of them changes (here: goes), then it migrates
