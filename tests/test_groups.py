import pytest

from workspaces.models import AuditEvent, Group

from .factories import CustomRoleFactory, GroupFactory, MembershipFactory, table_of

URL = "/w/acme/admin/groups/"


def test_it_creates_a_group(client, owner):
    client.force_login(owner.user)
    response = client.post(URL + "new/", {"name": "  Platform  "})
    group = Group.objects.get(name="Platform")
    assert response["Location"] == f"{URL}{group.pk}/"
    assert AuditEvent.objects.get(action="group.created").target == "Platform"


@pytest.mark.parametrize("name,error", [
    ("", "Enter a group name."),
    ("   ", "Enter a group name."),
    ("x" * 101, "at most 100 characters"),
    ("release ENGINEERING", "There is already a group name called"),
])
def test_it_refuses_bad_names(client, owner, member_with_token_permission, name, error):
    client.force_login(owner.user)
    before = Group.objects.count()
    response = client.post(URL + "new/", {"name": name})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert Group.objects.count() == before
    assert not AuditEvent.objects.exists()


def test_it_renames(client, owner, workspace):
    group = GroupFactory(workspace=workspace, name="Old")
    client.force_login(owner.user)
    client.post(f"{URL}{group.pk}/rename/", {"name": "New"})
    group.refresh_from_db()
    assert group.name == "New"
    assert AuditEvent.objects.get(action="group.renamed").details == {"before": "Old", "after": "New"}


def test_renaming_to_a_taken_name_changes_nothing(client, owner, workspace):
    GroupFactory(workspace=workspace, name="Taken")
    group = GroupFactory(workspace=workspace, name="Mine")
    client.force_login(owner.user)
    response = client.post(f"{URL}{group.pk}/rename/", {"name": "taken"})
    assert response.status_code == 400
    group.refresh_from_db()
    assert group.name == "Mine"


def test_the_same_name_in_another_workspace_is_fine(client, owner, other_workspace):
    GroupFactory(workspace=other_workspace, name="Platform")
    client.force_login(owner.user)
    client.post(URL + "new/", {"name": "Platform"})
    assert Group.objects.filter(name="Platform").count() == 2


def test_it_adds_and_removes_members(client, owner, member, workspace):
    group = GroupFactory(workspace=workspace)
    client.force_login(owner.user)
    client.post(f"{URL}{group.pk}/members/add/", {"member": member.pk})
    assert list(group.members.all()) == [member]
    client.post(f"{URL}{group.pk}/members/{member.pk}/remove/")
    assert not group.members.exists()
    assert [e.action for e in AuditEvent.objects.order_by("id")] == [
        "group.member_added", "group.member_removed"]


def test_it_refuses_to_add_someone_from_another_workspace(client, owner, outsider, workspace):
    group = GroupFactory(workspace=workspace)
    client.force_login(owner.user)
    response = client.post(f"{URL}{group.pk}/members/add/", {"member": outsider.pk})
    assert response.status_code == 400
    assert b"Choose a member of this workspace" in response.content
    assert not group.members.exists()


def test_it_refuses_a_blank_member(client, owner, workspace):
    group = GroupFactory(workspace=workspace)
    client.force_login(owner.user)
    response = client.post(f"{URL}{group.pk}/members/add/", {"member": ""})
    assert response.status_code == 400
    assert b"Choose a member to add" in response.content


def test_deleting_asks_then_deletes(client, owner, workspace):
    group = GroupFactory(workspace=workspace, name="Doomed")
    client.force_login(owner.user)
    assert b"Delete the group" in client.get(f"{URL}{group.pk}/delete/").content
    assert Group.objects.filter(pk=group.pk).exists()
    client.post(f"{URL}{group.pk}/delete/")
    assert not Group.objects.filter(pk=group.pk).exists()
    assert AuditEvent.objects.get(action="group.deleted").target == "Doomed"


@pytest.mark.parametrize("path", ["new/", "{pk}/rename/", "{pk}/members/add/",
                                  "{pk}/members/{member}/remove/"])
def test_writes_are_post_only(client, owner, member, workspace, path):
    group = GroupFactory(workspace=workspace)
    client.force_login(owner.user)
    assert client.get(URL + path.format(pk=group.pk, member=member.pk)).status_code == 405


def test_members_cannot_write(client, member, workspace):
    group = GroupFactory(workspace=workspace, name="Keep")
    client.force_login(member.user)
    assert client.post(URL + "new/", {"name": "X"}).status_code == 403
    assert client.post(f"{URL}{group.pk}/delete/").status_code == 403
    assert client.post(f"{URL}{group.pk}/members/add/", {"member": member.pk}).status_code == 403
    assert list(Group.objects.values_list("name", flat=True)) == ["Keep"]
    assert not group.members.exists()


def test_another_workspaces_group_is_a_404(client, owner, other_workspace):
    foreign = GroupFactory(workspace=other_workspace)
    client.force_login(owner.user)
    assert client.get(f"{URL}{foreign.pk}/").status_code == 404
    assert client.post(f"{URL}{foreign.pk}/delete/").status_code == 404
    assert Group.objects.filter(pk=foreign.pk).exists()


def test_the_list_shows_members_and_custom_roles(client, owner, member_with_token_permission):
    client.force_login(owner.user)
    rows = table_of(client.get(URL))
    assert "Release engineering" in rows and "dora@acme.test" in rows and "Automation" in rows


def test_an_empty_list_explains_groups(client, owner):
    client.force_login(owner.user)
    assert b"No groups yet" in client.get(URL).content


@pytest.mark.parametrize("rows", [3, 30])
def test_the_list_costs_the_same_queries(client, owner, workspace, django_assert_num_queries, rows):
    for _ in range(rows):
        group = GroupFactory(workspace=workspace)
        group.members.add(MembershipFactory(workspace=workspace))
        CustomRoleFactory(workspace=workspace).groups.add(group)
    client.force_login(owner.user)
    client.get(URL)
    # session, user, membership, count, page, members prefetch, custom roles prefetch, sidebar
    with django_assert_num_queries(8):
        assert client.get(URL).status_code == 200
