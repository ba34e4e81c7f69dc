"""Who may open which page: every page x every person, through the URLs."""

import pytest
from django.urls import reverse

from .factories import CustomRoleFactory, GroupFactory

PAGES = ["overview", "settings", "members", "groups", "group", "roles", "role", "role_create",
         "access_tokens", "governance", "audit_log"]

# person: pages they may open (everything else is a 403 for members, a 404 for outsiders)
MAY_OPEN = {
    "owner": set(PAGES),
    "admin": set(PAGES),
    "member_with_token_permission": {"overview", "access_tokens"},
    "member": {"overview"},
}


@pytest.fixture
def urls(workspace):
    group = GroupFactory(workspace=workspace, name="Platform")
    role = CustomRoleFactory(workspace=workspace, name="Reviewers")
    return {
        "overview": reverse("workspaces:overview", args=["acme"]),
        "settings": "/w/acme/admin/settings/",
        "members": "/w/acme/admin/members/",
        "groups": "/w/acme/admin/groups/",
        "group": f"/w/acme/admin/groups/{group.pk}/",
        "roles": "/w/acme/admin/roles/",
        "role": f"/w/acme/admin/roles/{role.pk}/",
        "role_create": "/w/acme/admin/roles/new/",
        "access_tokens": "/w/acme/admin/access-tokens/",
        "governance": "/w/acme/admin/governance/",
        "audit_log": "/w/acme/admin/audit-log/",
    }


@pytest.mark.parametrize("person", list(MAY_OPEN))
@pytest.mark.parametrize("page", PAGES)
def test_it_lets_in_exactly_who_may(request, client, urls, person, page):
    membership = request.getfixturevalue(person)
    client.force_login(membership.user)
    response = client.get(urls[page])
    if page in MAY_OPEN[person]:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert b"workspace owner or admin" in response.content


@pytest.mark.parametrize("page", PAGES)
def test_it_hides_every_page_from_outsiders(client, urls, outsider, page):
    client.force_login(outsider.user)
    assert client.get(urls[page]).status_code == 404


@pytest.mark.parametrize("page", PAGES)
def test_it_sends_strangers_to_sign_in(client, urls, page):
    response = client.get(urls[page])
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_the_tokens_403_says_what_to_ask_for(client, member):
    client.force_login(member.user)
    response = client.get("/w/acme/admin/access-tokens/")
    assert response.status_code == 403
    assert (b"Ask a workspace owner or admin to confirm that access tokens are enabled and "
            b"that your role includes the access token permission") in response.content


def test_an_unknown_workspace_is_a_404(client, owner):
    client.force_login(owner.user)
    assert client.get("/w/nowhere/").status_code == 404


def test_the_sidebar_shows_only_what_the_member_may_open(client, member, member_with_token_permission):
    client.force_login(member.user)
    page = client.get("/w/acme/").content.decode()
    assert "/w/acme/admin/members/" not in page
    assert "/w/acme/admin/access-tokens/" not in page
    client.force_login(member_with_token_permission.user)
    page = client.get("/w/acme/").content.decode()
    assert "/w/acme/admin/access-tokens/" in page
    assert "/w/acme/admin/settings/" not in page


def test_the_overview_says_what_you_may_do(client, member_with_token_permission):
    client.force_login(member_with_token_permission.user)
    page = client.get("/w/acme/").content.decode()
    assert "Enterprise" in page
    assert "Member" in page
    assert "Create Codex access tokens" in page


def test_the_overview_says_which_groups_you_are_in_one_way(client, owner,
                                                           member_with_token_permission):
    """Beside "You are in no group", the role card does not count the workspace's groups."""
    client.force_login(owner.user)
    page = client.get("/w/acme/").content.decode()
    assert "you are in no group</div>" in page
    assert "You are in no group of this workspace." in page
    assert "in the workspace</div>" not in page.split("Your role", 1)[1].split("</div></div>", 1)[0]
    client.force_login(member_with_token_permission.user)
    page = client.get("/w/acme/").content.decode()
    assert "you are in 1 group</div>" in page
    assert "<strong>Release engineering</strong>" in page


# Home and the shortcuts the product's docs print ------------------------------------------


def test_home_sends_a_one_workspace_user_to_it(client, owner):
    client.force_login(owner.user)
    assert client.get("/")["Location"] == "/w/acme/"


def test_home_offers_a_picker_for_several(client, owner, other_workspace):
    from workspaces.models import Membership

    Membership.objects.create(workspace=other_workspace, user=owner.user)
    client.force_login(owner.user)
    response = client.get("/")
    assert response.status_code == 200
    assert b"Choose a workspace" in response.content
    assert b"/w/globex/" in response.content and b"/w/acme/" in response.content


def test_home_for_a_user_without_workspace(client, db):
    from .factories import UserFactory

    client.force_login(UserFactory())
    response = client.get("/")
    assert response.status_code == 200
    assert b"not a member of any workspace" in response.content


@pytest.mark.parametrize("shortcut,target", [
    ("/admin/settings/", "/admin/settings/"),
    ("/admin/access-tokens/", "/admin/access-tokens/"),
])
def test_shortcuts_follow_the_current_workspace(client, owner, other_workspace, shortcut, target):
    from workspaces.models import Membership

    Membership.objects.create(workspace=other_workspace, user=owner.user, role="owner")
    client.force_login(owner.user)
    # First joined workspace until one is opened in this session.
    assert client.get(shortcut)["Location"] == f"/w/acme{target}"
    client.get("/w/globex/")
    assert client.get(shortcut)["Location"] == f"/w/globex{target}"


def test_shortcuts_need_sign_in(client, db):
    assert client.get("/admin/settings/")["Location"].startswith("/accounts/login/")


def test_healthz(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_answers_head_as_get_without_a_body(client, db):
    """Load balancers probe with HEAD."""
    got = client.get("/healthz")
    response = client.head("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Length"] == str(len(got.content))
    assert response.content == b""
    assert client.post("/healthz").status_code == 405


def test_404_page_is_styled(client, owner):
    client.force_login(owner.user)
    response = client.get("/w/acme/admin/groups/999999/")
    assert response.status_code == 404
    assert b"This page does not exist" in response.content
