"""Service accounts: created by owners and admins on the Members page, holding permissions as
members do, tokens created for them on their page, shown as svc:<name> wherever a creator is
shown, never signing in or receiving mail, and removed with their tokens revoked."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from console.models import OutboundMail
from tokens.models import AccessToken
from tokens.services.reminders import send_token_reminders
from workspaces.models import (
    SERVICE_ACCOUNT_DOMAIN,
    AuditEvent,
    Membership,
    Role,
    ServiceAccount,
    User,
)

from .factories import (
    CustomRoleFactory,
    GroupFactory,
    MembershipFactory,
    WorkspaceFactory,
    make_run,
    make_service_account,
    make_token,
    row_of,
    table_of,
)
from .mailbox import delivered
from .policy_cases import ACTORS, cast

MEMBERS = "/w/acme/admin/members/"
NEW = "/w/acme/admin/service-accounts/new/"
WHOAMI = "/api/v1/whoami"
CLI_WHOAMI = "/codex/auth/v1/user-auth-credential/whoami"


def page_of(account):
    return f"/w/acme/admin/service-accounts/{account.pk}/"


def new_token_url(account):
    return f"{page_of(account)}tokens/new/"


def bearer(plaintext):
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}


def token_form(name="nightly", expiration="30", **extra):
    return {"name": name, "expiration": expiration, "custom_date": "", "allowed_ips": "",
            **extra}


@pytest.fixture
def tokens_on(workspace):
    workspace.allow_access_tokens = True
    workspace.save()
    return workspace


# Creating, listing, changing --------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_owners_and_admins_create_one_on_the_members_page(client, request, who):
    acting = request.getfixturevalue(who)
    client.force_login(acting.user)
    response = client.post(NEW, {"name": "release-ci", "description": "GitHub Actions"})
    account = ServiceAccount.objects.get()
    assert response.status_code == 302 and response["Location"] == page_of(account)
    user = account.user
    assert user.is_service_account and user.name == "release-ci"
    assert not user.has_usable_password()
    assert user.email.endswith(f"@{SERVICE_ACCOUNT_DOMAIN}")
    membership = Membership.objects.get(user=user)
    assert (membership.workspace_id, membership.role) == (acting.workspace_id, Role.MEMBER)
    event = AuditEvent.objects.get(action="service_account.created")
    assert event.target == "svc:release-ci" and event.actor_email == acting.user.email
    assert event.details == {"name": "release-ci", "description": "GitHub Actions"}


def test_the_members_page_lists_them_apart_from_people(client, owner, member):
    client.force_login(owner.user)
    assert b"No service accounts yet" in client.get(MEMBERS).content
    account, _ = make_service_account(owner, description="Nightly docs check")
    page = client.get(MEMBERS).content.decode()
    assert "No service accounts yet" not in page
    assert f'href="{page_of(account)}"' in page and "svc:release-ci" in page
    assert "Nightly docs check" in page
    people = table_of(client.get(MEMBERS))
    assert "bob@acme.test" in people and "svc:release-ci" not in people
    assert account.user.email not in page


@pytest.mark.parametrize("name,error", [
    ("", "Enter a name for the service account."),
    ("release ci", "letters, digits, dots, hyphens and underscores"),
    ("Release-CI", "There is already a service account called"),
    ("x" * 65, "at most 64 characters"),
])
def test_a_bad_name_is_refused_and_nothing_is_made(client, owner, name, error):
    make_service_account(owner)
    client.force_login(owner.user)
    response = client.post(NEW, {"name": name, "description": ""})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert ServiceAccount.objects.count() == 1
    assert User.objects.filter(is_service_account=True).count() == 1


def test_the_same_name_is_fine_in_another_workspace(client, owner, outsider):
    make_service_account(owner)
    client.force_login(outsider.user)
    assert client.post("/w/globex/admin/service-accounts/new/",
                       {"name": "release-ci"}).status_code == 302


@pytest.mark.parametrize("rows", [3, 30])
def test_the_members_page_costs_the_same_queries_whatever_their_number(
    client, owner, workspace, django_assert_num_queries, rows,
):
    group = GroupFactory(workspace=workspace)
    for n in range(rows):
        _, membership = make_service_account(owner, name=f"bot-{n}")
        group.members.add(membership)
        make_token(membership)
    client.force_login(owner.user)
    client.get(MEMBERS)
    # session, user, membership, count, page, groups prefetch, owners, service accounts (with
    # their active tokens), their groups, pending invitations, sidebar workspaces
    with django_assert_num_queries(11):
        page = client.get(MEMBERS)
    assert page.content.decode().count("data-service-account-id") == rows


def test_renaming_is_audited_and_its_tokens_show_the_new_name(client, owner, tokens_on):
    account, membership = make_service_account(owner, description="old")
    token, plaintext = make_token(membership)
    client.force_login(owner.user)
    response = client.post(f"{page_of(account)}edit/",
                           {"name": "deploy-bot", "description": "Deploys main"})
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.name, account.user.name) == ("deploy-bot", "deploy-bot")
    event = AuditEvent.objects.get(action="service_account.changed")
    assert event.target == "svc:release-ci"
    assert event.details == {"name": {"before": "release-ci", "after": "deploy-bot"},
                             "description": {"before": "old", "after": "Deploys main"}}
    assert client.get(WHOAMI, **bearer(plaintext)).json()["user"] == {
        "email": None, "service_account": "deploy-bot"}
    assert "svc:deploy-bot" in row_of(client.get("/w/acme/admin/access-tokens/"), token)


def test_renaming_to_a_taken_name_changes_nothing(client, owner):
    account, _ = make_service_account(owner)
    make_service_account(owner, name="other")
    client.force_login(owner.user)
    response = client.post(f"{page_of(account)}edit/", {"name": "OTHER", "description": ""},
                           follow=True)
    assert "There is already a service account called" in response.content.decode()
    account.refresh_from_db()
    assert account.name == "release-ci"
    assert not AuditEvent.objects.filter(action="service_account.changed").exists()


# Who may ------------------------------------------------------------------------------------


def _urls(account):
    return [("get", page_of(account)), ("get", new_token_url(account)),
            ("post", new_token_url(account)), ("post", f"{page_of(account)}edit/"),
            ("get", f"{page_of(account)}remove/"), ("post", f"{page_of(account)}remove/")]


@pytest.mark.parametrize("who,status", [("member", 403), ("member_with_token_permission", 403),
                                        ("outsider", 404)])
def test_members_get_403_and_outsiders_404_and_nothing_changes(client, request, owner, who,
                                                                status, tokens_on):
    account, _ = make_service_account(owner)
    client.force_login(request.getfixturevalue(who).user)
    slug = "acme" if who != "outsider" else "acme"
    assert client.post(f"/w/{slug}/admin/service-accounts/new/",
                       {"name": "sneaky"}).status_code == status
    for method, url in _urls(account):
        data = token_form() if url.endswith("new/") else {"name": "renamed"}
        response = getattr(client, method)(url, data) if method == "post" else client.get(url)
        assert response.status_code == status, url
    assert list(ServiceAccount.objects.values_list("name", flat=True)) == ["release-ci"]
    assert not AccessToken.objects.exists()


SUCCESS = {"page": 200, "new token": 201, "edit": 302, "remove": 302}


def _act(client, action, account, slug="acme"):
    base = f"/w/{slug}/admin/service-accounts/{account.pk}/"
    if action == "page":
        return client.get(base)
    if action == "new token":
        return client.post(f"{base}tokens/new/", token_form())
    if action == "edit":
        return client.post(f"{base}edit/", {"name": "renamed", "description": ""})
    return client.post(f"{base}remove/")


@pytest.mark.parametrize("action", list(SUCCESS))
@pytest.mark.parametrize("actor", ACTORS)
def test_the_pages_follow_the_policy(db, client, action, actor):
    """Every actor x every action x their own workspace's service account and another's."""
    workspace = WorkspaceFactory(slug="acme", allow_access_tokens=True)
    people = cast(workspace)
    account, _ = make_service_account(people["owner"])
    other = WorkspaceFactory(slug="globex", allow_access_tokens=True)
    theirs, _ = make_service_account(MembershipFactory(workspace=other, role=Role.OWNER))
    client.force_login(people[actor].user)
    allowed = actor in ("owner", "admin")
    # Another workspace's service account: not found through one's own workspace (a member
    # without the permission is refused before anything is looked up), nor through its own.
    assert _act(client, action, theirs).status_code == (404 if allowed else 403)
    assert _act(client, action, theirs, slug="globex").status_code == 404
    assert ServiceAccount.objects.filter(pk=theirs.pk, name="release-ci").exists()
    assert _act(client, action, account).status_code == (SUCCESS[action] if allowed else 403)
    created = client.post(NEW, {"name": f"by-{actor}"})
    assert created.status_code == (302 if allowed else 403)
    assert ServiceAccount.objects.filter(name=f"by-{actor}").exists() is allowed
    assert AccessToken.objects.filter(created_by=theirs.user).count() == 0


def test_another_workspaces_service_account_is_a_404(client, owner, outsider, tokens_on):
    theirs, _ = make_service_account(outsider, name="globex-ci")
    client.force_login(owner.user)
    for method, url in _urls(theirs):
        response = getattr(client, method)(url, token_form()) if method == "post" \
            else client.get(url)
        assert response.status_code == 404, url
    assert ServiceAccount.objects.filter(pk=theirs.pk).exists()
    assert not AccessToken.objects.exists()


def test_its_role_cannot_change_and_it_is_not_removed_as_a_member(client, owner):
    _, membership = make_service_account(owner)
    client.force_login(owner.user)
    client.post(f"{MEMBERS}{membership.pk}/role/", {"role": "admin"})
    membership.refresh_from_db()
    assert membership.role == Role.MEMBER
    assert client.post(f"{MEMBERS}{membership.pk}/remove/").status_code == 403
    assert Membership.objects.filter(pk=membership.pk).exists()


# Its page, its permissions and its tokens ---------------------------------------------------


def test_its_page_says_what_it_may_do_and_why(client, owner, workspace):
    account, membership = make_service_account(owner)
    client.force_login(owner.user)
    page = client.get(page_of(account)).content.decode()
    assert "svc:release-ci" in page
    assert "cannot hold access tokens yet" in page
    assert 'data-dialog-open="create-token-dialog"' not in page
    group = GroupFactory(workspace=workspace, name="Bots")
    CustomRoleFactory(workspace=workspace, name="Automation", grants_codex_local=True,
                      grants_access_tokens=True).groups.add(group)
    # It joins a group as a member does: through the group's page.
    assert client.post(f"/w/acme/admin/groups/{group.pk}/members/add/",
                       {"member": membership.pk}).status_code == 302
    page = client.get(page_of(account)).content.decode()
    assert "cannot hold access tokens yet" not in page
    assert "Bots" in page and "Automation" in page
    assert 'data-dialog-open="create-token-dialog"' in page
    assert AuditEvent.objects.get(action="group.member_added").details == {
        "member": "svc:release-ci"}


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_a_token_is_created_for_it_and_shown_once(client, request, owner, tokens_on, who):
    account, membership = make_service_account(owner)
    acting = request.getfixturevalue(who)
    client.force_login(acting.user)
    response = client.post(new_token_url(account), token_form(request_key="k1"))
    assert response.status_code == 201
    assert response["Cache-Control"].startswith("private") or "no-store" in response["Cache-Control"]
    plaintext = re.search(r'value="(at-[^"]+)"', response.content.decode()).group(1)
    assert "The new token for svc:release-ci" in response.content.decode()
    token = AccessToken.objects.get()
    assert token.created_by == account.user and token.workspace_id == acting.workspace_id
    event = AuditEvent.objects.get(action="token.created")
    assert event.actor_email == acting.user.email
    assert event.details["service_account"] == "svc:release-ci"
    # Shown once: the page, opened again, has the token's row but not its secret.
    again = client.get(page_of(account)).content.decode()
    assert plaintext not in again and f'data-token-id="{token.pk}"' in again
    # The same form posted twice makes one token.
    assert client.post(new_token_url(account), token_form(request_key="k1")).status_code == 409
    assert AccessToken.objects.count() == 1
    # It acts as the service account.
    assert client.get(WHOAMI, **bearer(plaintext)).json()["user"] == {
        "email": None, "service_account": "release-ci"}
    cli = client.get(CLI_WHOAMI, **bearer(plaintext)).json()
    assert "email" not in cli and cli["chatgpt_user_id"] == f"user-{account.user_id}"
    started = client.post("/api/v1/runs", content_type="application/json", **bearer(plaintext))
    assert started.status_code == 201
    assert started.json()["user"] == {"email": None, "service_account": "release-ci"}


def test_a_token_is_refused_while_it_lacks_the_permission(client, owner):
    account, _ = make_service_account(owner)
    client.force_login(owner.user)
    response = client.post(new_token_url(account), token_form())
    assert response.status_code == 403
    assert "svc:release-ci does not hold the access token permission" in \
        response.content.decode()
    assert not AccessToken.objects.exists()


def test_a_bad_token_form_is_a_400_and_nothing_is_made(client, owner, tokens_on):
    account, _ = make_service_account(owner)
    client.force_login(owner.user)
    response = client.post(new_token_url(account), token_form(name=""))
    assert response.status_code == 400 and b"Enter a name for the token." in response.content
    make_token(Membership.objects.get(user=account.user), name="taken")
    response = client.post(new_token_url(account), token_form(name="taken"))
    assert response.status_code == 400
    assert "svc:release-ci already has an active token called" in response.content.decode()
    assert AccessToken.objects.count() == 1


def test_its_tokens_stop_when_its_permission_goes(client, owner, tokens_on):
    _, membership = make_service_account(owner)
    _, plaintext = make_token(membership)
    assert client.get(WHOAMI, **bearer(plaintext)).status_code == 200
    tokens_on.allow_access_tokens = False
    tokens_on.save()
    assert client.get(WHOAMI, **bearer(plaintext)).json()["error"]["code"] == "access_denied"


@pytest.mark.parametrize("rows", [3, 30])
def test_its_page_costs_the_same_queries_whatever_its_tokens(
    client, owner, tokens_on, django_assert_num_queries, rows,
):
    account, membership = make_service_account(owner)
    for n in range(rows):
        make_token(membership, name=f"t{n}", revoked_at=timezone.now() if n % 2 else None,
                   revoked_by=owner.user if n % 2 else None)
    client.force_login(owner.user)
    client.get(page_of(account))
    # session, user, membership, the account, its membership, its custom grants, count, page,
    # the rows' creators' permissions (membership, custom grants), its groups, sidebar
    # workspaces
    with django_assert_num_queries(12):
        page = client.get(page_of(account))
    assert page.content.decode().count("data-token-id=") == rows


def test_revoking_its_token_from_its_page_comes_back_there(client, owner, tokens_on):
    account, membership = make_service_account(owner)
    token, plaintext = make_token(membership)
    client.force_login(owner.user)
    response = client.post(f"/w/acme/admin/access-tokens/{token.pk}/revoke/?next=service-account")
    assert response.status_code == 302 and response["Location"] == page_of(account)
    assert client.get(WHOAMI, **bearer(plaintext)).json()["error"]["code"] == "token_revoked"
    event = AuditEvent.objects.get(action="token.revoked")
    assert event.details["created_by"] == "svc:release-ci"
    assert not OutboundMail.objects.exists()  # it reads no mail


# Shown as svc:<name> ---------------------------------------------------------------------


def test_it_is_named_svc_wherever_a_creator_is_shown(client, owner, tokens_on):
    _, membership = make_service_account(owner)
    token, _ = make_token(membership, name="nightly")
    make_run(token, client="github-actions")
    client.force_login(owner.user)
    tokens = client.get("/w/acme/admin/access-tokens/")
    assert "svc:release-ci" in row_of(tokens, token)
    assert membership.user.email not in tokens.content.decode()
    assert ">svc:release-ci</option>" in tokens.content.decode()  # the creator filter
    filtered = client.get("/w/acme/admin/access-tokens/", {"creator": "svc:release-ci"})
    assert f'data-token-id="{token.pk}"' in filtered.content.decode()
    make_token(owner, name="mine")
    assert table_of(filtered).count("data-token-id") == 1
    detail = client.get(f"/w/acme/admin/access-tokens/{token.pk}/").content.decode()
    assert "<dt>Creator</dt><dd>svc:release-ci</dd>" in detail
    governance = client.get("/w/acme/admin/governance/")
    assert "svc:release-ci" in table_of(governance)
    assert '?member=svc%3Arelease-ci">svc:release-ci</a>' in governance.content.decode()
    make_run(make_token(owner)[0])
    only = client.get("/w/acme/admin/governance/", {"member": "svc:release-ci"})
    assert table_of(only).count("<tr") == 1 and "svc:release-ci" in table_of(only)
    assert membership.user.email not in governance.content.decode()
    exported = client.get("/w/acme/admin/governance/export.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert sorted(r["member"] for r in rows) == ["alice@acme.test", "svc:release-ci"]
    log = client.get("/w/acme/admin/audit-log/").content.decode()
    assert "svc:release-ci" in log


# Removing ---------------------------------------------------------------------------------


def test_removing_it_asks_first_then_revokes_its_tokens(client, owner, tokens_on, workspace):
    account, membership = make_service_account(owner)
    group = GroupFactory(workspace=workspace)
    group.members.add(membership)
    first, first_plain = make_token(membership, name="a")
    second, _ = make_token(membership, name="b")
    make_run(first)
    client.force_login(owner.user)
    confirm = client.get(f"{page_of(account)}remove/")
    assert confirm.status_code == 200
    assert "Every access token it holds is revoked at once" in confirm.content.decode()
    assert AccessToken.objects.active(timezone.now()).count() == 2
    response = client.post(f"{page_of(account)}remove/")
    assert response.status_code == 302 and response["Location"] == MEMBERS
    assert not ServiceAccount.objects.exists()
    assert not Membership.objects.filter(user=account.user).exists()
    assert not group.members.exists()
    user = User.objects.get(pk=account.user_id)
    assert not user.is_active and user.handle == "svc:release-ci"
    assert AccessToken.objects.active(timezone.now()).count() == 0
    assert client.get(WHOAMI, **bearer(first_plain)).json()["error"]["code"] == "token_revoked"
    revoked = AuditEvent.objects.filter(action="token.revoked")
    assert {e.details["reason"] for e in revoked} == {"service account removed"}
    assert revoked.count() == 2
    removed = AuditEvent.objects.get(action="service_account.removed")
    assert removed.target == "svc:release-ci" and removed.details == {"tokens_revoked": 2}
    assert not OutboundMail.objects.exists()
    # Its runs stay, named as it was.
    assert "svc:release-ci" in table_of(client.get("/w/acme/admin/governance/"))
    assert client.get(page_of(account)).status_code == 404
    # The name is free again.
    assert client.post(NEW, {"name": "release-ci"}).status_code == 302


# No sign-in, no mail -------------------------------------------------------------------------


def test_it_cannot_sign_in_anywhere(client, owner, password):
    account, _ = make_service_account(owner)
    user = account.user
    # Even a password set behind the console's back (and a staff flag) lets nobody in.
    user.set_password(password)
    user.is_staff = user.is_superuser = True
    user.save()
    email = user.email
    response = client.post("/accounts/login/", {"username": email, "password": password})
    assert response.status_code == 200
    assert "That email and password do not match an account" in response.content.decode()
    response = client.post("/django-admin/login/", {"username": email, "password": password,
                                                    "next": "/django-admin/"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert client.get(MEMBERS).status_code == 302  # still signed out


def test_a_password_reset_for_it_sends_nothing(client, owner):
    account, _ = make_service_account(owner)
    assert client.post("/accounts/password_reset/", {"email": account.user.email}).status_code \
        == 302
    assert delivered() == []


def test_its_address_cannot_be_invited(client, owner):
    client.force_login(owner.user)
    response = client.post(f"{MEMBERS}invite/", {"email": f"anyone@{SERVICE_ACCOUNT_DOMAIN}",
                                                  "role": "member"})
    assert response.status_code == 400
    assert "belong to service accounts" in response.content.decode()
    assert not OutboundMail.objects.exists()


def test_no_reminder_goes_to_it(owner, tokens_on):
    _, membership = make_service_account(owner)
    soon = timezone.now() + timedelta(days=6, hours=12)
    make_token(membership, expires_at=soon, created_at=timezone.now() - timedelta(days=30))
    make_token(owner, expires_at=soon, created_at=timezone.now() - timedelta(days=30))
    assert send_token_reminders() == 1
    assert [m.to for m in delivered()] == [["alice@acme.test"]]
