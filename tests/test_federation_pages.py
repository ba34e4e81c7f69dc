"""The Federation page, a rule's page and its tester, and where the tokens a rule issued show:
the Access tokens page, a token's page, governance and its CSV."""

from __future__ import annotations

import csv
import io
from urllib.parse import urlencode

import pytest
from django.test import Client

from tokens.models import AccessToken, FederationRule, Run, UsedAssertion
from workspaces.models import AuditEvent, Role

from .factories import CustomRoleFactory, GroupFactory, MembershipFactory, UserFactory, make_token
from .federation import StandinIssuer, github_claims, make_rule

GITHUB = "https://token.actions.githubusercontent.com"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture
def codex_admin(workspace):
    membership = MembershipFactory(workspace=workspace, role=Role.MEMBER,
                                   user=UserFactory(email="cora@acme.test"))
    group = GroupFactory(workspace=workspace, name="Platform")
    group.members.add(membership)
    CustomRoleFactory(workspace=workspace, name="Codex admins",
                      grants_codex_admin=True).groups.add(group)
    return membership


@pytest.fixture
def issuer(settings):
    settings.DEBUG = True
    with StandinIssuer() as standin:
        yield standin


def form(**fields):
    data = {"name": "release", "issuer": GITHUB, "audience": "", "subject":
            "repo:acme/release:ref:refs/heads/main", "claims": "", "lifetime": "900",
            "allowed_ips": "", "enabled": "on"}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def exchange(assertion, rule_id):
    return Client().post("/api/v1/oauth/token", urlencode({
        "grant_type": GRANT, "assertion": assertion, "federation_rule_id": rule_id}),
        content_type="application/x-www-form-urlencoded")


# Who may open it --------------------------------------------------------------------------


@pytest.mark.parametrize("who,status", [("owner", 200), ("admin", 200), ("codex_admin", 200),
                                        ("member_with_token_permission", 403), ("member", 403),
                                        ("outsider", 404)])
def test_who_opens_the_federation_page(request, login, workspace, who, status):
    membership = request.getfixturevalue(who)
    response = login(membership).get("/w/acme/admin/federation/")
    assert response.status_code == status
    if status == 200:
        assert 'href="/w/acme/admin/federation/"' in response.content.decode()  # in the nav
        assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    if status == 403:
        assert "/w/acme/admin/federation/" not in login(membership).get("/w/acme/") \
            .content.decode()


def test_signed_out_goes_to_sign_in(client, workspace):
    response = client.get("/w/acme/admin/federation/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_empty_state_offers_a_first_rule(login, owner):
    page = login(owner).get("/w/acme/admin/federation/").content.decode()
    assert "No federation rules yet" in page
    assert "/w/acme/admin/federation/new/" in page


@pytest.mark.parametrize("rows", [3, 30])
def test_the_list_takes_the_same_queries_for_3_and_30_rules(login, owner, rows,
                                                           django_assert_num_queries):
    for n in range(rows):
        rule = make_rule(owner, name=f"rule {n:02}", subject=f"repo:acme/r{n}:*")
        make_token(owner, federation_rule=rule)
    client = login(owner)
    client.get("/w/acme/admin/federation/")  # the session's first touches
    with django_assert_num_queries(6):
        page = client.get("/w/acme/admin/federation/").content.decode()
    assert page.count("<tr>") == rows + 1


# Creating, changing, enabling, disabling, deleting ---------------------------------------


def test_a_preset_fills_the_issuer_and_the_claims_to_adapt(login, owner):
    page = login(owner).get("/w/acme/admin/federation/new/?preset=github").content.decode()
    assert f'value="{GITHUB}"' in page
    assert "repo:&lt;owner&gt;/&lt;repository&gt;:ref:refs/heads/main" in page
    assert "repository_owner_id" in page
    gitlab = login(owner).get("/w/acme/admin/federation/new/?preset=gitlab").content.decode()
    assert 'value="https://gitlab.com"' in gitlab and "project_path" in gitlab


def test_the_presets_placeholders_must_be_replaced(login, owner):
    response = login(owner).post("/w/acme/admin/federation/new/", form(
        subject="repo:<owner>/<repository>:ref:refs/heads/main", principal=owner.user_id))
    assert response.status_code == 400
    assert "placeholders" in response.content.decode()
    assert not FederationRule.objects.exists()


@pytest.mark.parametrize("subject,claims", [
    ("repo:*", ""),
    ("repo:acme*", ""),
])
def test_a_shared_issuer_with_nothing_pinned_warns_and_needs_a_second_yes(login, owner, subject,
                                                                          claims):
    client = login(owner)
    response = client.post("/w/acme/admin/federation/new/",
                           form(subject=subject, claims=claims, principal=owner.user_id))
    assert response.status_code == 400
    page = response.content.decode()
    assert "pins no repository or owner" in page and 'id="pin-warning"' in page
    assert not FederationRule.objects.exists()
    response = client.post("/w/acme/admin/federation/new/",
                           form(subject=subject, claims=claims, principal=owner.user_id,
                                accept_warnings="on"))
    assert response.status_code == 302
    assert FederationRule.objects.get().subject == subject


@pytest.mark.parametrize("subject,claims", [
    ("repo:acme/release:ref:refs/heads/main", ""),
    ("repo:acme/*", ""),
    ("repo:*", "repository_owner_id=1001"),
])
def test_a_pinned_rule_saves_without_a_warning(login, owner, subject, claims):
    response = login(owner).post("/w/acme/admin/federation/new/",
                                 form(subject=subject, claims=claims, principal=owner.user_id))
    assert response.status_code == 302, response.content.decode()


def test_creating_a_rule_is_audited_and_its_page_shows_the_id_and_the_curl_line(login, owner,
                                                                                settings):
    settings.SITE_URL = "https://console.test"
    client = login(owner)
    response = client.post("/w/acme/admin/federation/new/", form(
        claims="repository_owner_id=1001\nworkflow = release", principal=owner.user_id,
        allowed_ips="203.0.113.0/24", lifetime="600"))
    rule = FederationRule.objects.get()
    assert response["Location"] == f"/w/acme/admin/federation/{rule.pk}/"
    assert rule.audience == "https://console.test"  # the default: SITE_URL, no slash
    assert rule.claims == {"repository_owner_id": "1001", "workflow": "release"}
    assert (rule.lifetime, rule.allowed_ips, rule.principal) == (600, "203.0.113.0/24", owner.user)
    event = AuditEvent.objects.get(action="federation_rule.created")
    assert event.details["federation_rule_id"] == rule.pk
    assert event.details["subject"] == rule.subject and event.details["principal"] == owner.user.email
    page = client.get(f"/w/acme/admin/federation/{rule.pk}/").content.decode()
    assert f'id="federation-rule-id">{rule.pk}<' in page
    assert "http://testserver/api/v1/oauth/token" in page
    assert f"federation_rule_id={rule.pk}" in page and GRANT in page


@pytest.mark.parametrize("field,value,message", [
    ("issuer", "http://token.actions.githubusercontent.com", "https://"),
    ("issuer", "http://127.0.0.1:9999", "https://"),
    ("subject", "*", "every workload"),
    ("subject", "repo:*:ref:*", "ends in one *"),
    ("lifetime", "59", "60 to 3,600"),
    ("lifetime", "3601", "60 to 3,600"),
    ("claims", "no equals sign", "name=value"),
    ("claims", "\n".join(f"c{n}=v" for n in range(33)), "At most 32"),
    ("allowed_ips", "not-an-address", "not an IP address"),
    ("name", "", "Enter a name"),
])
def test_bad_input_is_refused_with_a_clear_error_and_nothing_saved(login, owner, field, value,
                                                                   message):
    response = login(owner).post("/w/acme/admin/federation/new/",
                                 form(**{field: value}, principal=owner.user_id))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not FederationRule.objects.exists()


def test_loopback_http_is_allowed_with_debug_on(login, owner, settings):
    settings.DEBUG = True
    response = login(owner).post("/w/acme/admin/federation/new/",
                                 form(issuer="http://127.0.0.1:9999", principal=owner.user_id))
    assert response.status_code == 302


def test_a_codex_admin_names_only_themselves_or_a_service_account(login, owner, codex_admin):
    client = login(codex_admin)
    response = client.post("/w/acme/admin/federation/new/", form(principal=owner.user_id))
    assert response.status_code == 403
    assert "Only owners and admins can name another member" in response.content.decode()
    assert client.post("/w/acme/admin/federation/new/",
                       form(principal=codex_admin.user_id)).status_code == 302


def test_a_principal_from_another_workspace_is_not_offered(login, owner, outsider):
    response = login(owner).post("/w/acme/admin/federation/new/", form(principal=outsider.user_id))
    assert response.status_code == 400
    assert "Choose a member of this workspace" in response.content.decode()


def test_changing_a_rule_is_audited_before_and_after(login, owner, admin):
    rule = make_rule(owner)
    response = login(owner).post(f"/w/acme/admin/federation/{rule.pk}/edit/", form(
        subject="repo:acme/release:environment:production", principal=admin.user_id,
        lifetime="300"))
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.subject, rule.principal, rule.lifetime) == (
        "repo:acme/release:environment:production", admin.user, 300)
    details = AuditEvent.objects.get(action="federation_rule.changed").details
    assert details["subject"] == {"before": "repo:acme/release:ref:refs/heads/main",
                                  "after": "repo:acme/release:environment:production"}
    assert details["principal"] == {"before": owner.user.email, "after": admin.user.email}
    assert details["lifetime"] == {"before": 900, "after": 300}


def test_disabling_revokes_the_tokens_it_issued_and_enabling_brings_the_rule_back(login, owner):
    rule = make_rule(owner)
    issued, plaintext = make_token(owner, federation_rule=rule)
    ordinary, _ = make_token(owner)
    client = login(owner)
    assert client.post(f"/w/acme/admin/federation/{rule.pk}/disable/").status_code == 302
    rule.refresh_from_db()
    issued.refresh_from_db()
    ordinary.refresh_from_db()
    assert not rule.enabled and issued.revoked_at is not None and ordinary.revoked_at is None
    assert AuditEvent.objects.get(action="federation_rule.disabled").details["tokens_revoked"] == 1
    answer = Client().get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert answer.json()["error"]["code"] == "token_revoked"
    assert client.post(f"/w/acme/admin/federation/{rule.pk}/enable/").status_code == 302
    rule.refresh_from_db()
    assert rule.enabled
    assert AuditEvent.objects.filter(action="federation_rule.enabled").count() == 1
    assert client.get(f"/w/acme/admin/federation/{rule.pk}/disable/").status_code == 405


def test_deleting_asks_first_then_revokes_and_keeps_the_record(login, owner):
    rule = make_rule(owner)
    issued, _ = make_token(owner, federation_rule=rule)
    Run.objects.create(workspace=owner.workspace, token=issued, user=owner.user,
                       federation_rule=rule, workload={"repository": "acme/release"})
    client = login(owner)
    confirm = client.get(f"/w/acme/admin/federation/{rule.pk}/delete/")
    assert confirm.status_code == 200 and "Delete the federation rule" in confirm.content.decode()
    assert FederationRule.objects.live().count() == 1
    response = client.post(f"/w/acme/admin/federation/{rule.pk}/delete/")
    assert response["Location"] == "/w/acme/admin/federation/"
    issued.refresh_from_db()
    assert issued.revoked_at is not None
    assert not FederationRule.objects.live().exists() and FederationRule.objects.count() == 1
    assert AuditEvent.objects.get(action="federation_rule.deleted").details["tokens_revoked"] == 1
    assert client.get(f"/w/acme/admin/federation/{rule.pk}/").status_code == 404
    assert "No federation rules yet" in client.get("/w/acme/admin/federation/").content.decode()
    governance = client.get("/w/acme/admin/governance/").content.decode()
    assert "release" in governance and "repository=acme/release" in governance


def test_another_workspaces_rule_is_a_404(login, owner, outsider):
    theirs = make_rule(outsider)
    client = login(owner)
    for path in ("", "edit/"):
        assert client.get(f"/w/acme/admin/federation/{theirs.pk}/{path}").status_code == 404
    for path in ("disable/", "delete/", "test/"):
        assert client.post(f"/w/acme/admin/federation/{theirs.pk}/{path}").status_code == 404
    theirs.refresh_from_db()
    assert theirs.enabled and theirs.deleted_at is None


def test_a_member_cannot_change_a_rule(login, owner, member):
    rule = make_rule(owner)
    assert login(member).post(f"/w/acme/admin/federation/{rule.pk}/disable/").status_code == 403
    rule.refresh_from_db()
    assert rule.enabled


# The tester ---------------------------------------------------------------------------------


def test_the_tester_shows_every_check_and_issues_nothing(login, owner, issuer):
    rule = make_rule(owner, issuer=issuer.url)
    assertion = issuer.sign(github_claims(issuer.url))
    response = login(owner).post(f"/w/acme/admin/federation/{rule.pk}/test/",
                                 {"assertion": assertion})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Every check passed" in page
    for check in ("algorithm", "issuer", "signature", "audience", "expiry", "not before",
                  "issued at", "subject", "claims", "jti", "address"):
        assert f"<strong>{check}</strong>: passed" in page, check
    assert "no-store" in response["Cache-Control"]
    assert not AccessToken.objects.exists() and not UsedAssertion.objects.exists()
    # The jti was not used up: the same token still exchanges.
    assert exchange(assertion, rule.pk).status_code == 200
    again = login(owner).post(f"/w/acme/admin/federation/{rule.pk}/test/",
                              {"assertion": assertion}).content.decode()
    assert "<strong>jti</strong>: failed" in again


def test_the_tester_says_which_checks_fail(login, owner, issuer):
    rule = make_rule(owner, issuer=issuer.url, claims={"repository_owner_id": "1001"})
    claims = github_claims(issuer.url, repository="evil/release", repository_owner_id="666",
                           aud="https://elsewhere.test")
    page = login(owner).post(f"/w/acme/admin/federation/{rule.pk}/test/",
                             {"assertion": issuer.sign(claims)}).content.decode()
    assert "The exchange would refuse this token" in page
    assert "<strong>signature</strong>: passed" in page
    for check in ("audience", "subject", "claims"):
        assert f"<strong>{check}</strong>: failed" in page, check
    assert "repository_owner_id is &#x27;666&#x27;" in page
    garbage = login(owner).post(f"/w/acme/admin/federation/{rule.pk}/test/",
                                {"assertion": "hello"}).content.decode()
    assert "<strong>format</strong>: failed" in garbage
    empty = login(owner).post(f"/w/acme/admin/federation/{rule.pk}/test/", {"assertion": ""})
    assert empty.status_code == 400


# Where issued tokens show ---------------------------------------------------------------------


def test_issued_tokens_show_badged_on_the_lists_and_their_workload_on_their_page(
        login, owner, issuer, settings):
    rule = make_rule(owner, issuer=issuer.url, name="release workflow")
    response = exchange(issuer.sign(github_claims(issuer.url)), rule.pk)
    plaintext = response.json()["access_token"]
    token = AccessToken.objects.get()
    client = login(owner)
    listing = client.get("/w/acme/admin/access-tokens/").content.decode()
    assert "Federated" in listing and token.name in listing
    assert plaintext not in listing
    rule_page = client.get(f"/w/acme/admin/federation/{rule.pk}/").content.decode()
    assert token.name in rule_page and "Federated" in rule_page and plaintext not in rule_page
    detail = client.get(f"/w/acme/admin/access-tokens/{token.pk}/").content.decode()
    assert "release workflow" in detail and "repository=acme/release" in detail
    assert "workflow=release" in detail and "run_id=4242" in detail
    assert "Rotate" not in detail.split("<section")[0]
    # Never an expiry banner or reminder for a token that lives minutes.
    assert 'aria-labelledby="expiring-heading"' not in listing
    assert not AccessToken.objects.expiring_soon(token.created_at).exists()


def test_governance_and_its_csv_show_the_rule_and_the_workload(login, owner, issuer):
    rule = make_rule(owner, issuer=issuer.url, name="release workflow")
    plaintext = exchange(issuer.sign(github_claims(issuer.url)), rule.pk).json()["access_token"]
    assert Client().post("/api/v1/runs", {"client": "github-actions"},
                         content_type="application/json",
                         HTTP_AUTHORIZATION=f"Bearer {plaintext}").status_code == 201
    ordinary, secret = make_token(owner, name="laptop")
    Client().post("/api/v1/runs", HTTP_AUTHORIZATION=f"Bearer {secret}")
    client = login(owner)
    page = client.get("/w/acme/admin/governance/").content.decode()
    assert "release workflow" in page and "repository=acme/release" in page
    assert "workflow=release" in page
    exported = b"".join(client.get("/w/acme/admin/governance/export.csv").streaming_content)
    rows = list(csv.DictReader(io.StringIO(exported.decode())))
    federated = next(r for r in rows if r["rule"])
    assert federated["rule"] == "release workflow"
    assert (federated["repository"], federated["workflow"], federated["ref"],
            federated["run_id"]) == ("acme/release", "release", "refs/heads/main", "4242")
    assert federated["project_path"] == federated["pipeline_id"] == ""
    plain = next(r for r in rows if r["token"] == "laptop")
    assert plain["rule"] == "" and plain["repository"] == ""


def test_a_rule_whose_principal_may_not_use_tokens_says_so(login, owner, member):
    rule = make_rule(owner, principal=member.user)
    page = login(owner).get(f"/w/acme/admin/federation/{rule.pk}/").content.decode()
    assert 'id="principal-warning"' in page
    fine = make_rule(owner, name="fine")
    page = login(owner).get(f"/w/acme/admin/federation/{fine.pk}/").content.decode()
    assert 'id="principal-warning"' not in page
