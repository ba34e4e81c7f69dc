"""Django's admin changes nothing the console audits: a superuser walks every registered model
(pages, forms, deletions) through the URLs; only a user's name, staff flag and active flag
change there, and deactivating goes through the service that revokes and audits."""

import secrets
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group as AuthGroup
from django.db.models import ProtectedError
from django.forms import modelform_factory
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from console.mail import queue_mail
from tokens.models import AccessToken, Run
from workspaces.models import AuditEvent, Invitation, Membership, Role, User, Workspace

from .factories import (
    CustomRoleFactory,
    GroupFactory,
    UserFactory,
    make_run,
    make_service_account,
    make_token,
)

OUR_APPS = {"console", "workspaces", "tokens"}
REGISTERED = list(admin.site._registry.items())
# django-axes registers its own models; for them only the list is checked.
FORMS = [(model, model_admin) for model, model_admin in REGISTERED
         if model._meta.app_label != "axes"]
OURS = [(model, model_admin) for model, model_admin in REGISTERED
        if model._meta.app_label in OUR_APPS]


def label(value):
    return value._meta.label if hasattr(value, "_meta") else ""


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def rows(owner, member):
    """A row for every model registered in the admin (besides axes'): a workspace with an owner
    and a member, a group, a custom role, an invitation, an audit event, a token and a run,
    a queued mail, a service account, and one of Django's own permission groups."""
    workspace = owner.workspace
    group = GroupFactory(workspace=workspace, name="Platform")
    group.members.add(member)
    role = CustomRoleFactory(workspace=workspace, name="Reviewers", description="Reviews code",
                             grants_codex_local=True, grants_access_tokens=True)
    role.groups.add(group)
    Invitation.objects.create(
        workspace=workspace, email="eve@example.test", role=Role.MEMBER, invited_by=owner.user,
        key_digest=secrets.token_hex(32), expires_at=timezone.now() + timedelta(days=7),
    )
    AuditEvent.objects.create(
        workspace=workspace, actor=owner.user, actor_email=owner.user.email,
        action="group.created", target="Platform", details={"name": "Platform"},
        ip="192.0.2.1", user_agent="pytest",
    )
    token, _ = make_token(owner, name="CI")
    make_run(token, client="ci", command="codex exec test", ip="192.0.2.1")
    queue_mail(kind="password_reset", to="eve@example.test", email="eve@example.test")
    AuthGroup.objects.create(name="Auditors")
    make_service_account(owner)
    return workspace


@pytest.fixture
def superuser(db):
    return UserFactory(email="root@example.test", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, superuser):
    client.force_login(superuser)
    return client


def admin_request(user):
    request = RequestFactory().get("/django-admin/")
    request.user = user
    return request


def a_row(model, superuser):
    """The row the test opens: the oldest one, never the superuser themself."""
    rows = model._default_manager.order_by("pk")
    if model is User:
        rows = rows.exclude(pk=superuser.pk)
    return rows.first()


def snapshot(obj):
    """The row as the database has it: every column and every many-to-many link."""
    fresh = type(obj)._default_manager.get(pk=obj.pk)
    values = {field.attname: getattr(fresh, field.attname) for field in fresh._meta.concrete_fields}
    for field in fresh._meta.many_to_many:
        values[field.name] = sorted(getattr(fresh, field.name).values_list("pk", flat=True))
    return values


def post_data(form, *, tamper):
    """What a browser would post for `form`; with `tamper`, every text changed and every
    checkbox flipped."""
    data = {}
    for name, bound in form.fields.items():
        value = form[name].value()
        if isinstance(value, bool):
            if value != tamper:
                data[name] = "on"
            continue
        if isinstance(value, (list, tuple, set)) or hasattr(value, "all"):
            data[name] = [str(getattr(item, "pk", item)) for item in value]
            continue
        value = bound.prepare_value(value)
        value = "" if value is None else str(value)
        if tamper and isinstance(value, str) and not hasattr(bound, "queryset"):
            value = f"{value} (changed)"
        data[name] = value
    data["_save"] = "Save"
    return data


# Every model ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model,model_admin", REGISTERED, ids=[label(m) for m, _ in REGISTERED])
def test_it_lists_every_registered_model(staff_client, rows, model, model_admin):
    assert staff_client.get(url(model, "changelist")).status_code == 200


def test_none_of_our_models_can_be_added_in_the_admin(superuser):
    request = admin_request(superuser)
    assert OURS, "the console's models are registered in the admin"
    addable = [label(model) for model, model_admin in OURS if model_admin.has_add_permission(request)]
    assert addable == []


@pytest.mark.parametrize("model,model_admin", FORMS, ids=[label(m) for m, _ in FORMS])
def test_the_add_page_is_refused_unless_the_admin_allows_adding(staff_client, superuser, rows,
                                                                model, model_admin):
    before = model._default_manager.count()
    response = staff_client.get(url(model, "add"))
    if model_admin.has_add_permission(admin_request(superuser)):
        assert model._meta.app_label not in OUR_APPS
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert staff_client.post(url(model, "add"), {"_save": "Save"}).status_code == 403
    assert model._default_manager.count() == before


@pytest.mark.parametrize("model,model_admin", FORMS, ids=[label(m) for m, _ in FORMS])
def test_posting_a_change_form_changes_nothing(staff_client, superuser, rows, model, model_admin):
    obj = a_row(model, superuser)
    assert obj is not None, f"give {label(model)} a row in the `rows` fixture"
    change_url = url(model, "change", obj.pk)
    assert staff_client.get(change_url).status_code == 200
    before, events = snapshot(obj), AuditEvent.objects.count()
    request = admin_request(superuser)
    if model_admin.has_change_permission(request, obj):
        assert model is User or model._meta.app_label not in OUR_APPS
        form = model_admin.get_form(request, obj, change=True)(instance=obj)
        response = staff_client.post(change_url, post_data(form, tamper=False))
        assert response.status_code == 302, response.content.decode()[:2000]
    else:
        # Everything the model has, changed: refused as a whole.
        form = modelform_factory(model, fields="__all__")(instance=obj)
        response = staff_client.post(change_url, post_data(form, tamper=True))
        assert response.status_code == 403
    assert snapshot(obj) == before
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("model,model_admin", OURS, ids=[label(m) for m, _ in OURS])
def test_nothing_of_ours_can_be_deleted_in_the_admin(staff_client, superuser, rows, model,
                                                     model_admin):
    obj = a_row(model, superuser)
    assert obj is not None, f"give {label(model)} a row in the `rows` fixture"
    assert staff_client.get(url(model, "delete", obj.pk)).status_code == 403
    assert staff_client.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    # Nor from the list, with the bulk action.
    staff_client.post(url(model, "changelist"),
                      {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"})
    assert model._default_manager.filter(pk=obj.pk).exists()


# Users ---------------------------------------------------------------------------------------


def test_a_superuser_changes_a_users_name_and_staff_flag_on_the_record(
        staff_client, superuser, rows, owner, other_workspace):
    Membership.objects.create(workspace=other_workspace, user=owner.user, role=Role.MEMBER)
    token = AccessToken.objects.get(created_by=owner.user)
    before = owner.user.name
    events = AuditEvent.objects.count()
    response = staff_client.post(url(User, "change", owner.user.pk),
                                 {"name": "Alice Liddell", "is_staff": "on", "is_active": "on",
                                  "_save": "Save"})
    assert response.status_code == 302
    user = User.objects.get(pk=owner.user.pk)
    assert (user.name, user.is_staff, user.is_active) == ("Alice Liddell", True, True)
    changed = AuditEvent.objects.filter(action="user.changed").order_by("workspace_id")
    assert [(e.workspace_id, e.actor, e.target) for e in changed] == [
        (owner.workspace_id, superuser, user.email), (other_workspace.pk, superuser, user.email)]
    assert changed[0].details == {"name": {"before": before, "after": "Alice Liddell"},
                                  "staff": {"before": False, "after": True}}
    assert AuditEvent.objects.count() == events + 2
    token.refresh_from_db()
    assert token.revoked_at is None

    # Saved again unchanged: nothing new on the record.
    staff_client.post(url(User, "change", owner.user.pk),
                      {"name": "Alice Liddell", "is_staff": "on", "is_active": "on",
                       "_save": "Save"})
    assert AuditEvent.objects.count() == events + 2


def test_deactivating_a_user_revokes_their_tokens_everywhere(client, staff_client, superuser,
                                                             owner, member, other_workspace):
    user = owner.user
    Membership.objects.create(workspace=other_workspace, user=user, role=Role.MEMBER)
    acme_token, acme_plaintext = make_token(owner, name="CI")
    globex_token, globex_plaintext = make_token(
        Membership.objects.get(workspace=other_workspace, user=user), name="Nightly")
    others_token, _ = make_token(member, name="Someone else's")
    for plaintext in (acme_plaintext, globex_plaintext):
        assert client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {plaintext}").status_code == 200

    response = staff_client.post(url(User, "change", user.pk),
                                 {"name": user.name, "_save": "Save"})  # is_active unticked

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.is_active is False and user.is_staff is False
    for token, workspace in ((acme_token, owner.workspace), (globex_token, other_workspace)):
        token.refresh_from_db()
        assert token.revoked_at is not None and token.revoked_by == superuser
        revoked = AuditEvent.objects.get(workspace=workspace, action="token.revoked")
        assert revoked.details["token_id"] == token.pk
        assert revoked.actor == superuser
        deactivated = AuditEvent.objects.get(workspace=workspace, action="user.deactivated")
        assert deactivated.target == user.email and deactivated.actor == superuser
        assert deactivated.details == {"tokens_revoked": 1}
    assert AuditEvent.objects.filter(action="token.revoked").count() == 2
    others_token.refresh_from_db()
    assert others_token.revoked_at is None
    for plaintext in (acme_plaintext, globex_plaintext):
        answer = client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "token_revoked"


# The governance record cannot be deleted -----------------------------------------------------


def test_a_user_with_runs_cannot_be_deleted(owner):
    make_run(make_token(owner)[0])
    with pytest.raises(ProtectedError):
        owner.user.delete()
    assert User.objects.filter(pk=owner.user.pk).exists()


def test_a_workspace_with_runs_cannot_be_deleted(owner):
    make_run(make_token(owner)[0])
    with pytest.raises(ProtectedError):
        owner.workspace.delete()
    assert Workspace.objects.filter(pk=owner.workspace.pk).exists()


def test_a_token_with_runs_cannot_be_deleted(owner):
    token, _ = make_token(owner)
    run = make_run(token)
    with pytest.raises(ProtectedError):
        token.delete()
    assert AccessToken.objects.filter(pk=token.pk).exists()
    assert Run.objects.filter(pk=run.pk).exists()


def test_a_service_accounts_user_is_read_only_here(staff_client, owner):
    account, _ = make_service_account(owner)
    user = account.user
    change_url = url(User, "change", user.pk)
    assert staff_client.get(change_url).status_code == 200
    response = staff_client.post(change_url, {"name": "renamed", "is_staff": "on",
                                              "is_active": ""})
    assert response.status_code == 403
    user.refresh_from_db()
    assert (user.name, user.is_staff, user.is_active) == ("release-ci", False, True)
