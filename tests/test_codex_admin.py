"""Codex admin, a permission custom roles grant: Settings and Permissions (and changing it) and
Governance, as owners and admins have them; nothing else."""

import pytest

from tokens.models import AccessToken
from workspaces.models import AuditEvent, CustomRole, Workspace

from .factories import CustomRoleFactory, GroupFactory, MembershipFactory, UserFactory, make_token


@pytest.fixture
def codex_admin(workspace):
    membership = MembershipFactory(workspace=workspace, user=UserFactory(email="cora@acme.test"))
    group = GroupFactory(workspace=workspace, name="Platform")
    group.members.add(membership)
    CustomRoleFactory(workspace=workspace, name="Codex admins",
                      grants_codex_admin=True).groups.add(group)
    return membership


OPENS = ["/w/acme/admin/settings/", "/w/acme/admin/governance/",
         "/w/acme/admin/governance/export.csv"]
REFUSED = ["/w/acme/admin/members/", "/w/acme/admin/groups/", "/w/acme/admin/roles/",
           "/w/acme/admin/audit-log/", "/w/acme/admin/access-tokens/"]


def test_a_codex_admin_opens_settings_and_governance_only(client, codex_admin):
    client.force_login(codex_admin.user)
    for url in OPENS:
        assert client.get(url).status_code == 200, url
    for url in REFUSED:
        assert client.get(url).status_code == 403, url
    nav = client.get("/w/acme/").content.decode().split('aria-label="Workspace"')[1].split("</nav>")[0]
    assert "Settings and Permissions" in nav and "Governance" in nav
    assert "Members" not in nav and "Audit log" not in nav and "Access tokens" not in nav


def test_a_codex_admin_changes_settings_and_it_is_audited(client, codex_admin, workspace):
    client.force_login(codex_admin.user)
    response = client.post("/w/acme/admin/settings/", {
        "allow_codex_local": "on", "allow_access_tokens": "on", "max_token_lifetime_days": "90",
        "shown_allow_codex_local": "True", "shown_allow_access_tokens": "False",
        "shown_max_token_lifetime_days": ""})
    assert response.status_code == 302
    workspace = Workspace.objects.get(pk=workspace.pk)
    assert workspace.allow_access_tokens and workspace.max_token_lifetime_days == 90
    event = AuditEvent.objects.get(action="settings.updated")
    assert event.actor_email == "cora@acme.test"
    assert event.details == {"allow_access_tokens": {"before": False, "after": True},
                             "max_token_lifetime_days": {"before": None, "after": 90}}


def test_a_codex_admin_cannot_touch_other_members_tokens(client, codex_admin,
                                                         member_with_token_permission):
    token, _ = make_token(member_with_token_permission)
    CustomRole.objects.filter(name="Automation").update(grants_access_tokens=False)
    client.force_login(codex_admin.user)
    page = client.get("/w/acme/admin/settings/").content.decode()
    assert "Suspended access tokens" in page and "An owner or admin can revoke them" in page
    assert client.post("/w/acme/admin/settings/revoke-suspended/").status_code == 403
    assert client.post("/w/acme/admin/settings/shorten-tokens/").status_code == 403
    assert client.post("/w/acme/admin/access-tokens/revoke/", {"ids": [token.pk]}).status_code == 403
    assert client.post(f"/w/acme/admin/members/{member_with_token_permission.pk}/revoke-tokens/"
                       ).status_code == 403
    assert not AccessToken.objects.filter(revoked_at__isnull=False).exists()


def test_codex_admin_grants_no_codex_use(client, codex_admin):
    _, plaintext = make_token(codex_admin)  # made around the console: the policy still refuses
    response = client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert response.status_code == 403


def test_the_custom_role_form_offers_codex_admin(client, owner, workspace):
    client.force_login(owner.user)
    form = client.get("/w/acme/admin/roles/new/").content.decode()
    assert "Codex admin" in form
    client.post("/w/acme/admin/roles/new/", {"name": "Admins of Codex", "permissions": ["codex_admin"]})
    role = CustomRole.objects.get(name="Admins of Codex")
    assert role.grants_codex_admin and not role.grants_codex_local
    event = AuditEvent.objects.get(action="custom_role.created")
    assert event.details["permissions"] == ["Codex admin"]
    assert "Codex admin" in client.get("/w/acme/admin/roles/").content.decode()
