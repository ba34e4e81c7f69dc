"""Security headers on every page: the Content-Security-Policy (nothing inline, no frames, no
plugins) on every HTML page, `Cache-Control: private, no-store` on everything a signed-in user
gets, and pages whose HTML keeps to that policy. The API answers in JSON even when it refuses."""

import hashlib
import json
import re
import secrets
from datetime import timedelta

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.urls import path, reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from config import urls as config_urls
from tokens import urls as token_urls
from tokens.models import Run
from workspaces import urls as workspace_urls
from workspaces.models import Invitation, Membership, Role

from .factories import (
    CustomRoleFactory,
    GroupFactory,
    UserFactory,
    make_service_account,
    make_token,
)
from .federation import make_rule

CSP_DIRECTIVES = ["default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'",
                  "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"]

STYLE_ATTRIBUTE = re.compile(r"<[a-z][^>]*\sstyle\s*=", re.IGNORECASE)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc\s*=)[^>]*>", re.IGNORECASE)
STYLE_ELEMENT = re.compile(r"<style[\s>]", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.IGNORECASE)

# Every HTML page: name -> who opens it (None: nobody signed in). The workspace pages are named
# by their route, so that the test below can tell when a new route has no entry here.
PAGES = {
    "workspaces:overview": "owner",
    "workspaces:settings": "owner",
    "workspaces:members": "owner",
    "workspaces:member_remove": "owner",
    "workspaces:service_account_remove": "owner",
    "workspaces:invitation_cancel": "owner",
    "workspaces:groups": "owner",
    "workspaces:group": "owner",
    "workspaces:group_delete": "owner",
    "workspaces:roles": "owner",
    "workspaces:role_create": "owner",
    "workspaces:role": "owner",
    "workspaces:role_delete": "owner",
    "workspaces:audit_log": "owner",
    "tokens:list": "owner",
    "tokens:create": "owner",
    "tokens:revoke": "owner",
    "tokens:detail": "owner",
    "tokens:rotate": "owner",
    "tokens:governance": "owner",
    "tokens:service_account": "owner",
    "tokens:service_account_token_create": "owner",
    "tokens:federation": "owner",
    "tokens:federation_create": "owner",
    "tokens:federation_rule": "owner",
    "tokens:federation_edit": "owner",
    "tokens:federation_delete": "owner",
    "picker": "owner",
    "password_change": "owner",
    "password_change_done": "owner",
    "signed-in 404": "owner",
    "403 for a member": "member",
    "invitation, signed in": "owner",
    "django admin": "staff",
    "django admin list": "staff",
    "django admin change form": "staff",
    "login": None,
    "password_reset": None,
    "password_reset_done": None,
    "password_reset_confirm": None,
    "password_reset_confirm, bad link": None,
    "password_reset_complete": None,
    "invitation": None,
    "invitation, bad link": None,
    "404": None,
}
# Pages that answer something else than 200.
STATUS = {"signed-in 404": 404, "403 for a member": 403, "invitation, bad link": 404, "404": 404}
# Responses to a signed-in user that are not HTML pages.
DOWNLOADS = ["workspaces:audit_log_csv", "tokens:governance_csv"]


@pytest.fixture
def cast(workspace, owner, member, other_workspace):
    """Everything the pages show: a group, a custom role, an invitation, a token; the owner is
    also in a second workspace (so `/` shows the picker), and a staff user."""
    Membership.objects.create(workspace=other_workspace, user=owner.user, role=Role.MEMBER)
    group = GroupFactory(workspace=workspace, name="Platform")
    group.members.add(member)
    role = CustomRoleFactory(workspace=workspace, name="Reviewers", grants_access_tokens=True)
    role.groups.add(group)
    key = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        workspace=workspace, email="eve@example.test", role=Role.MEMBER, invited_by=owner.user,
        key_digest=hashlib.sha256(key.encode()).hexdigest(),
        expires_at=timezone.now() + timedelta(days=7),
    )
    token, _ = make_token(owner, name="CI")
    robot, robot_membership = make_service_account(owner)
    make_token(robot_membership, name="nightly")
    rule = make_rule(owner)
    return {
        "owner": owner.user, "member": member.user,
        "staff": UserFactory(email="root@example.test", is_staff=True, is_superuser=True),
        # Route arguments, by the names the URL patterns give them.
        "ids": {"member_id": member.pk, "invitation_id": invitation.pk, "group_id": group.pk,
                "role_id": role.pk, "token_id": token.pk, "service_account_id": robot.pk,
                "rule_id": rule.pk},
        "key": key,
    }


def route(name, cast):
    pattern = next(p for p in all_routes() if route_name(p) == name)
    kwargs = {arg: cast["ids"][arg] for arg in pattern.pattern.converters}
    return reverse(name, kwargs={"slug": "acme", **kwargs})


def route_name(pattern):
    namespace = "workspaces" if pattern in workspace_urls.urlpatterns else "tokens"
    return f"{namespace}:{pattern.name}"


def all_routes():
    return workspace_urls.urlpatterns + token_urls.urlpatterns


def page_url(name, cast, client):
    """The page's address; for a password reset link, the page the link leads to."""
    if ":" in name:
        return route(name, cast)
    user = cast["owner"]
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return {
        "picker": "/",
        "password_change": "/accounts/password_change/",
        "password_change_done": "/accounts/password_change/done/",
        "signed-in 404": "/w/acme/admin/groups/999999/",
        "403 for a member": "/w/acme/admin/settings/",
        "invitation, signed in": f"/invitations/{cast['key']}/",
        "django admin": "/django-admin/",
        "django admin list": "/django-admin/tokens/accesstoken/",
        "django admin change form": f"/django-admin/workspaces/user/{user.pk}/change/",
        "login": "/accounts/login/",
        "password_reset": "/accounts/password_reset/",
        "password_reset_done": "/accounts/password_reset/done/",
        # The link in the mail stores its token in the session and redirects to the form.
        "password_reset_confirm": client.get(
            f"/accounts/reset/{uid}/{default_token_generator.make_token(user)}/")["Location"],
        "password_reset_confirm, bad link": f"/accounts/reset/{uid}/no-such-token/",
        "password_reset_complete": "/accounts/reset/done/",
        "invitation": f"/invitations/{cast['key']}/",
        "invitation, bad link": "/invitations/no-such-key/",
        "404": "/no-such-page/",
    }[name]


def open_page(client, cast, name):
    who = PAGES[name]
    if who is not None:
        client.force_login(cast[who])
    response = client.get(page_url(name, cast, client))
    assert response.status_code == STATUS.get(name, 200), name
    assert response["Content-Type"].startswith("text/html")
    return response


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_carries_the_content_security_policy(client, cast, name):
    policy = open_page(client, cast, name)["Content-Security-Policy"]
    directives = [d.strip() for d in policy.split(";")]
    for directive in CSP_DIRECTIVES:
        assert directive in directives, policy
    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy


def _boom(request):
    raise RuntimeError("a view that fails")


# This module is also a URL configuration (for the test below): the site's, and a view that fails.
urlpatterns = [path("boom/", _boom), *config_urls.urlpatterns]
handler400, handler403 = config_urls.handler400, config_urls.handler403
handler404, handler500 = config_urls.handler404, config_urls.handler500


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("name", [*PAGES, "500"])
def test_with_debug_on_every_page_carries_the_policy_error_pages_included(client, cast, name,
                                                                          settings):
    """With DEBUG on, Django answers a missing page and a failing view with its technical
    pages, which django-csp leaves without the policy on its own."""
    settings.DEBUG = True
    client.raise_request_exception = False
    if name == "500":
        client.force_login(cast["owner"])
        response = client.get("/boom/")
        assert response.status_code == 500 and b"a view that fails" in response.content
    else:
        response = open_page(client, cast, name)
    if name in ("404", "signed-in 404"):
        assert b"Page not found" in response.content  # Django's technical page
    policy = response["Content-Security-Policy"]
    for directive in CSP_DIRECTIVES:
        assert directive in [d.strip() for d in policy.split(";")], policy
    assert "'unsafe-inline'" not in policy


@pytest.mark.parametrize("name", [name for name, who in PAGES.items() if who is not None])
def test_every_signed_in_page_is_private_and_never_stored(client, cast, name):
    cache_control = open_page(client, cast, name)["Cache-Control"]
    assert "private" in cache_control and "no-store" in cache_control, cache_control


@pytest.mark.parametrize("name", DOWNLOADS)
def test_every_download_for_a_signed_in_user_is_private_and_never_stored(client, cast, name):
    client.force_login(cast["owner"])
    response = client.get(route(name, cast))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "private" in response["Cache-Control"] and "no-store" in response["Cache-Control"]


@pytest.mark.parametrize("path", ["/admin/settings/", "/admin/access-tokens/", "/"])
def test_redirects_for_a_signed_in_user_are_private_and_never_stored(client, owner, path):
    client.force_login(owner.user)
    response = client.get(path)
    assert response.status_code == 302
    assert "private" in response["Cache-Control"] and "no-store" in response["Cache-Control"]


@pytest.mark.parametrize("name", list(PAGES))
def test_no_page_has_inline_styles_or_scripts(client, cast, name):
    html = open_page(client, cast, name).content.decode()
    assert "</html>" in html.lower()
    for pattern in (STYLE_ATTRIBUTE, INLINE_SCRIPT, STYLE_ELEMENT, EVENT_HANDLER):
        assert pattern.findall(html) == [], name


def test_the_list_covers_every_workspace_page(client, cast):
    """A route of workspaces/urls.py or tokens/urls.py that GET opens as a page must be in
    PAGES; the rest answer GET with 405 (forms' targets) or are downloads."""
    client.force_login(cast["owner"])
    for pattern in all_routes():
        name = route_name(pattern)
        if name in PAGES or name in DOWNLOADS:
            continue
        assert client.get(route(name, cast)).status_code == 405, f"{name} is missing from PAGES"


# The API ---------------------------------------------------------------------------------------


def test_an_unknown_api_call_is_a_json_404(client, db):
    response = client.get("/api/v1/no-such-call")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"error"}
    assert set(response.json()["error"]) == {"code", "message"}
    assert response.json()["error"]["code"] == "not_found"


def test_a_wrong_method_is_a_json_405_that_says_what_is_allowed(client, owner):
    _, plaintext = make_token(owner)
    response = client.post("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response["Allow"] == "GET"
    assert set(response.json()["error"]) == {"code", "message"}


def test_a_body_over_the_size_limit_is_a_json_400_and_starts_no_run(client, owner, settings):
    _, plaintext = make_token(owner)
    body = json.dumps({"client": "ci", "command": "x" * 1000})[:1000]
    body = body[:-2] + '"}'
    assert len(body.encode()) == 1000 and json.loads(body)
    # Within the limit the same call starts a run, so the refusal below is the size's doing.
    accepted = client.post("/api/v1/runs", body, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert accepted.status_code == 201
    runs = Run.objects.count()

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = client.post("/api/v1/runs", body, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {plaintext}")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "invalid_request"
    assert Run.objects.count() == runs
