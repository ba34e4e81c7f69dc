import pytest

from tokens.models import AccessToken
from workspaces.models import AuditEvent, Membership, Role

from .factories import GroupFactory, MembershipFactory, UserFactory, make_token, table_of

URL = "/w/acme/admin/members/"


def test_it_lists_members_with_roles_and_groups(client, owner, member_with_token_permission, member):
    client.force_login(owner.user)
    page = client.get(URL).content.decode()
    for email in ("alice@acme.test", "dora@acme.test", "bob@acme.test"):
        assert email in page
    assert "Release engineering" in page


def test_it_searches(client, owner, member):
    client.force_login(owner.user)
    rows = table_of(client.get(URL, {"q": "bob"}))
    assert "bob@acme.test" in rows and "alice@acme.test" not in rows
    assert b"No members match" in client.get(URL, {"q": "zzz"}).content


def test_it_pages(client, owner, workspace):
    for n in range(30):
        MembershipFactory(workspace=workspace, user=UserFactory(email=f"p{n:02}@acme.test"))
    client.force_login(owner.user)
    first = client.get(URL).content.decode()
    assert "1–25 of 31" in first
    second = table_of(client.get(URL, {"page": 2}))
    assert "p29@acme.test" in second and "p00@acme.test" not in second


@pytest.mark.parametrize("rows", [3, 30])
def test_the_list_costs_the_same_queries_whatever_its_length(
    client, owner, workspace, django_assert_num_queries, rows
):
    group = GroupFactory(workspace=workspace)
    for _ in range(rows):
        group.members.add(MembershipFactory(workspace=workspace))
    client.force_login(owner.user)
    client.get(URL)  # the first visit also saves the current workspace in the session
    # session, user, membership, count, page, groups prefetch, owners, service accounts,
    # pending invitations, sidebar workspaces
    with django_assert_num_queries(10):
        assert client.get(URL).status_code == 200


def test_it_changes_a_role(client, owner, member):
    client.force_login(owner.user)
    response = client.post(f"{URL}{member.pk}/role/", {"role": "admin"})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.role == Role.ADMIN
    event = AuditEvent.objects.get(action="member.role_changed")
    assert event.details == {"before": "member", "after": "admin"}


def test_admins_cannot_make_owners(client, admin, member):
    client.force_login(admin.user)
    response = client.post(f"{URL}{member.pk}/role/", {"role": "owner"}, follow=True)
    assert b"Only owners can make or unmake owners" in response.content
    member.refresh_from_db()
    assert member.role == Role.MEMBER
    assert not AuditEvent.objects.exists()


def test_admins_cannot_unmake_owners(client, admin, owner):
    client.force_login(admin.user)
    client.post(f"{URL}{owner.pk}/role/", {"role": "member"})
    owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_the_last_owner_stays_an_owner(client, owner):
    client.force_login(owner.user)
    page = client.get(URL).content.decode()
    assert "The only owner" in page and f"{URL}{owner.pk}/remove/" not in page
    response = client.post(f"{URL}{owner.pk}/role/", {"role": "admin"}, follow=True)
    assert b"the only owner" in response.content
    owner.refresh_from_db()
    assert owner.role == Role.OWNER
    assert not AuditEvent.objects.exists()


def test_an_owner_can_step_down_when_another_owner_exists(client, owner, workspace):
    MembershipFactory(workspace=workspace, role=Role.OWNER)
    client.force_login(owner.user)
    client.post(f"{URL}{owner.pk}/role/", {"role": "admin"})
    owner.refresh_from_db()
    assert owner.role == Role.ADMIN


def test_role_change_is_post_only(client, owner, member):
    client.force_login(owner.user)
    assert client.get(f"{URL}{member.pk}/role/").status_code == 405


def test_members_cannot_change_roles(client, member, member_with_token_permission):
    client.force_login(member.user)
    assert client.post(f"{URL}{member_with_token_permission.pk}/role/",
                       {"role": "admin"}).status_code == 403
    member_with_token_permission.refresh_from_db()
    assert member_with_token_permission.role == Role.MEMBER


def test_another_workspaces_member_is_a_404(client, owner, outsider):
    client.force_login(owner.user)
    assert client.post(f"{URL}{outsider.pk}/role/", {"role": "member"}).status_code == 404
    assert client.post(f"{URL}{outsider.pk}/remove/").status_code == 404


def test_removing_asks_first(client, owner, member):
    client.force_login(owner.user)
    response = client.get(f"{URL}{member.pk}/remove/")
    assert response.status_code == 200
    assert b"Remove bob@acme.test?" in response.content
    assert Membership.objects.filter(pk=member.pk).exists()


def test_removing_a_member_revokes_their_tokens_in_the_same_change(
    client, owner, member_with_token_permission
):
    token, _ = make_token(member_with_token_permission, name="CI")
    client.force_login(owner.user)
    response = client.post(f"{URL}{member_with_token_permission.pk}/remove/")
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=member_with_token_permission.pk).exists()
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == owner.user
    assert list(AuditEvent.objects.order_by("id").values_list("action", "target")) == [
        ("token.revoked", "CI"), ("member.removed", "dora@acme.test"),
    ]


def test_the_last_owner_cannot_be_removed(client, owner):
    client.force_login(owner.user)
    response = client.post(f"{URL}{owner.pk}/remove/")
    assert response.status_code == 403
    assert b"the only owner" in response.content
    assert Membership.objects.filter(pk=owner.pk).exists()


def test_admins_cannot_remove_owners(client, admin, owner, workspace):
    MembershipFactory(workspace=workspace, role=Role.OWNER)
    client.force_login(admin.user)
    response = client.post(f"{URL}{owner.pk}/remove/")
    assert response.status_code == 403
    assert b"Only owners can remove an owner" in response.content
    assert Membership.objects.filter(pk=owner.pk).exists()


def test_members_cannot_remove(client, member, member_with_token_permission):
    client.force_login(member.user)
    assert client.post(f"{URL}{member_with_token_permission.pk}/remove/").status_code == 403
    assert AccessToken.objects.count() == 0
    assert Membership.objects.filter(pk=member_with_token_permission.pk).exists()
