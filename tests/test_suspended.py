"""A creator always sees and can revoke their own tokens; a token whose creator lacks the access
token permission shows as Suspended (and cannot start runs); switching the access token toggle
off warns how many tokens stop working, and offers to revoke them (audited per token)."""

import re

from tokens.models import AccessToken
from workspaces.models import AuditEvent, CustomRole

from .factories import make_token, row_of, table_of

LIST = "/w/acme/admin/access-tokens/"
SETTINGS = "/w/acme/admin/settings/"


def lose_the_permission():
    CustomRole.objects.update(grants_access_tokens=False)


def test_a_creator_who_lost_the_permission_still_sees_and_revokes_their_token(
        client, member_with_token_permission):
    token, plaintext = make_token(member_with_token_permission, name="nightly")
    lose_the_permission()
    client.force_login(member_with_token_permission.user)
    page = client.get(LIST)
    assert page.status_code == 200
    rows = table_of(page)
    assert "nightly" in rows and "Suspended" in rows
    assert b'data-dialog-open="create-token-dialog"' not in page.content  # cannot create
    api = client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert api.status_code == 403 and api.json()["error"]["code"] == "access_denied"
    assert client.post(f"{LIST}{token.pk}/revoke/").status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_a_member_who_never_made_a_token_without_the_permission_gets_the_403_page(client, member):
    client.force_login(member.user)
    response = client.get(LIST)
    assert response.status_code == 403
    assert b"Ask a workspace owner or admin" in response.content


def test_creating_without_the_permission_is_the_403_advice_page(client, member_with_token_permission):
    make_token(member_with_token_permission)
    lose_the_permission()
    client.force_login(member_with_token_permission.user)
    response = client.post(LIST + "new/", {"name": "x", "expiration": "30"})
    assert response.status_code == 403
    assert b"access token permission" in response.content
    assert AccessToken.objects.count() == 1


def test_owners_see_suspended_tokens_as_suspended(client, owner, member_with_token_permission):
    nightly, _ = make_token(member_with_token_permission, name="nightly")
    mine, _ = make_token(owner, name="mine")
    lose_the_permission()
    client.force_login(owner.user)
    page = client.get(LIST)
    assert "Suspended" in row_of(page, nightly) and "Active" in row_of(page, mine)


def test_the_settings_page_warns_before_the_toggle_goes_off(client, owner, member, workspace):
    workspace.allow_access_tokens = True
    workspace.save()
    make_token(member, name="a")
    make_token(member, name="b")
    make_token(owner, name="owners stay")  # owners hold the permission whatever the toggle says
    client.force_login(owner.user)
    page = client.get(SETTINGS).content.decode()
    warning = re.search(r'id="tokens-off-warning"[^>]*>(.*?)</p>', page, re.S).group(1)
    assert "suspends 2 active tokens of 1 member" in warning
    assert "Suspended access tokens" not in page


def test_switching_the_toggle_off_suspends_and_offers_to_revoke(client, owner, member, workspace):
    workspace.allow_access_tokens = True
    workspace.save()
    first, plaintext = make_token(member, name="a")
    second, _ = make_token(member, name="b")
    client.force_login(owner.user)
    client.post(SETTINGS, {"allow_codex_local": "on", "shown_allow_codex_local": "True",
                           "shown_allow_access_tokens": "True"})
    assert client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {plaintext}").status_code == 403
    page = client.get(SETTINGS).content.decode()
    assert "Suspended access tokens" in page and "2 active tokens of 1 member" in page
    response = client.post("/w/acme/admin/settings/revoke-suspended/", follow=True)
    assert b"2 suspended access tokens revoked." in response.content
    assert AccessToken.objects.filter(revoked_at__isnull=False).count() == 2
    assert AuditEvent.objects.filter(action="token.revoked").count() == 2
    assert "Suspended access tokens" not in client.get(SETTINGS).content.decode()


def test_only_owners_and_admins_revoke_suspended_tokens(client, member_with_token_permission, member,
                                                        workspace):
    make_token(member_with_token_permission)
    lose_the_permission()
    client.force_login(member.user)
    assert client.post("/w/acme/admin/settings/revoke-suspended/").status_code == 403
    assert not AccessToken.objects.filter(revoked_at__isnull=False).exists()
