import pytest

from workspaces.models import AuditEvent, CustomRole

from .factories import CustomRoleFactory, GroupFactory, table_of

URL = "/w/acme/admin/roles/"


def test_it_creates_a_custom_role_held_by_groups(client, owner, workspace):
    group = GroupFactory(workspace=workspace, name="Ops")
    client.force_login(owner.user)
    response = client.post(URL + "new/", {
        "name": "Runners", "description": "CI", "permissions": ["codex_local", "access_tokens"],
        "groups": [group.pk],
    })
    assert response.status_code == 302
    role = CustomRole.objects.get(name="Runners")
    assert role.grants_codex_local and role.grants_access_tokens
    assert list(role.groups.all()) == [group]
    event = AuditEvent.objects.get(action="custom_role.created")
    assert event.details["permissions"] == ["Codex Local", "Codex access tokens"]
    assert event.details["groups"] == ["Ops"]


def test_it_edits_and_audits_what_changed(client, owner, workspace):
    role = CustomRoleFactory(workspace=workspace, name="R", grants_codex_local=True)
    client.force_login(owner.user)
    page = client.get(f"{URL}{role.pk}/")
    assert b'value="codex_local"' in page.content and b"checked" in page.content
    client.post(f"{URL}{role.pk}/", {"name": "R", "permissions": ["access_tokens"]})
    role.refresh_from_db()
    assert (role.grants_codex_local, role.grants_access_tokens) == (False, True)
    event = AuditEvent.objects.get(action="custom_role.updated")
    assert event.details == {"permissions": {"before": ["Codex Local"],
                                             "after": ["Codex access tokens"]}}


@pytest.mark.parametrize("data,error", [
    ({"name": ""}, "Enter a custom role name."),
    ({"name": "x" * 101}, "at most 100 characters"),
    ({"name": "automation"}, "There is already a custom role name called"),
    ({"name": "Fine", "permissions": ["root"]}, "Select a valid choice"),
    ({"name": "Fine", "description": "d" * 501}, "at most 500 characters"),
])
def test_it_refuses_bad_input(client, owner, member_with_token_permission, data, error):
    client.force_login(owner.user)
    response = client.post(URL + "new/", data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert list(CustomRole.objects.values_list("name", flat=True)) == ["Automation"]
    assert not AuditEvent.objects.exists()


def test_it_refuses_another_workspaces_group(client, owner, other_workspace):
    foreign = GroupFactory(workspace=other_workspace)
    client.force_login(owner.user)
    response = client.post(URL + "new/", {"name": "Sneaky", "groups": [foreign.pk]})
    assert response.status_code == 400
    assert not CustomRole.objects.exists()


def test_deleting_asks_then_deletes(client, owner, workspace):
    role = CustomRoleFactory(workspace=workspace, name="Gone")
    client.force_login(owner.user)
    assert client.get(f"{URL}{role.pk}/delete/").status_code == 200
    assert CustomRole.objects.filter(pk=role.pk).exists()
    client.post(f"{URL}{role.pk}/delete/")
    assert not CustomRole.objects.filter(pk=role.pk).exists()
    assert AuditEvent.objects.get(action="custom_role.deleted").target == "Gone"


def test_members_cannot_write(client, member_with_token_permission):
    client.force_login(member_with_token_permission.user)
    role = CustomRole.objects.get()
    assert client.post(URL + "new/", {"name": "Mine"}).status_code == 403
    assert client.post(f"{URL}{role.pk}/", {"name": "Hijack"}).status_code == 403
    assert client.post(f"{URL}{role.pk}/delete/").status_code == 403
    assert list(CustomRole.objects.values_list("name", flat=True)) == ["Automation"]


def test_another_workspaces_role_is_a_404(client, owner, other_workspace):
    foreign = CustomRoleFactory(workspace=other_workspace)
    client.force_login(owner.user)
    assert client.get(f"{URL}{foreign.pk}/").status_code == 404
    assert client.post(f"{URL}{foreign.pk}/delete/").status_code == 404


def test_the_list_shows_permissions_and_groups(client, owner, member_with_token_permission):
    client.force_login(owner.user)
    rows = table_of(client.get(URL))
    assert "Automation" in rows and "Codex access tokens" in rows
    assert "Release engineering" in rows


@pytest.mark.parametrize("rows", [3, 30])
def test_the_list_costs_the_same_queries(client, owner, workspace, django_assert_num_queries, rows):
    for _ in range(rows):
        CustomRoleFactory(workspace=workspace).groups.add(GroupFactory(workspace=workspace))
    client.force_login(owner.user)
    client.get(URL)
    # session, user, membership, count, page, groups prefetch, sidebar
    with django_assert_num_queries(7):
        assert client.get(URL).status_code == 200
