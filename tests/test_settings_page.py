from workspaces.models import AuditEvent, Workspace

URL = "/w/acme/admin/settings/"


def test_it_shows_both_toggles_with_the_products_words(client, owner):
    client.force_login(owner.user)
    page = client.get(URL).content.decode()
    assert '<label for="id_allow_codex_local">Allow members to use Codex Local</label>' in page
    assert ('<label for="id_allow_access_tokens">Allow members to use Codex access tokens</label>'
            in page)
    assert "needs the first setting" in page
    # Both toggles say that a custom role grants what they govern whatever they say.
    assert ("When off, members can still use Codex Local through a custom role that grants it"
            in page)
    assert ("When off, members can still use access tokens through a custom role that grants "
            "them to one of their groups: to stop those, change the custom role." in page)
    assert ">Save<" in page


def test_it_saves_the_toggles_and_audits_before_and_after(client, admin, workspace):
    client.force_login(admin.user)
    response = client.post(URL, {"allow_access_tokens": "on"})
    assert response.status_code == 302
    workspace.refresh_from_db()
    assert (workspace.allow_codex_local, workspace.allow_access_tokens) == (False, True)
    event = AuditEvent.objects.get(action="settings.updated")
    assert event.actor == admin.user
    assert event.details == {
        "allow_codex_local": {"before": True, "after": False},
        "allow_access_tokens": {"before": False, "after": True},
    }
    assert event.ip == "127.0.0.1"


def test_saving_without_a_change_records_nothing(client, owner):
    client.force_login(owner.user)
    client.post(URL, {"allow_codex_local": "on"})
    assert not AuditEvent.objects.exists()


def test_it_is_for_owners_and_admins_only(client, member, workspace):
    client.force_login(member.user)
    assert client.post(URL, {"allow_access_tokens": "on"}).status_code == 403
    assert not Workspace.objects.get(pk=workspace.pk).allow_access_tokens


def test_outsiders_get_404_on_post(client, outsider, workspace):
    client.force_login(outsider.user)
    assert client.post(URL, {"allow_access_tokens": "on"}).status_code == 404
    assert not Workspace.objects.get(pk=workspace.pk).allow_access_tokens


def test_it_needs_csrf(owner, workspace):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner.user)
    assert client.post(URL, {"allow_access_tokens": "on"}).status_code == 403
    assert not Workspace.objects.get(pk=workspace.pk).allow_access_tokens


def test_edu_plan_explains_tokens_have_no_effect(client, db):
    from .factories import MembershipFactory, WorkspaceFactory

    edu = WorkspaceFactory(slug="school", plan="edu")
    owner = MembershipFactory(workspace=edu, role="owner")
    client.force_login(owner.user)
    assert b"need a Business or Enterprise plan" in client.get("/w/school/admin/settings/").content
