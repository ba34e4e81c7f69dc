"""The exchange, POST /api/v1/oauth/token: a workload's OpenID Connect token from a stand-in
issuer the tests start on loopback (real discovery and JWKS over HTTP) in, an ordinary access
token out; and every refusal, naming the check that failed."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from console.audit import Actor
from tokens.models import AccessToken, Run, UsedAssertion
from tokens.services import federation as federation_service
from workspaces.models import AuditEvent, Role

from .factories import MembershipFactory, UserFactory, WorkspaceFactory
from .federation import AUDIENCE, StandinIssuer, github_claims, gitlab_claims, make_rule

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture
def issuer(settings):
    settings.DEBUG = True  # the stand-in issuer is http://127.0.0.1:<port>
    with StandinIssuer() as standin:
        yield standin


@pytest.fixture
def rule(issuer, owner):
    return make_rule(owner, issuer=issuer.url)


def exchange(client, rule_id, assertion, **extra):
    data = {"grant_type": GRANT, "assertion": assertion, "federation_rule_id": str(rule_id),
            **extra}
    return client.post("/api/v1/oauth/token", data=_form(data),
                       content_type="application/x-www-form-urlencoded")


def _form(data: dict) -> str:
    from urllib.parse import urlencode

    return urlencode(data)


def refused_check(response) -> str:
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == "invalid_grant"
    return body["error_description"].split(":", 1)[0]


def test_it_exchanges_a_github_shaped_token_for_an_ordinary_access_token(client, issuer, rule,
                                                                         owner, time_machine):
    before = timezone.now()
    time_machine.move_to(before, tick=False)
    response = exchange(client, rule.pk, issuer.sign(github_claims(issuer.url)))
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "issued_token_type",
                         "chatgpt_account_id", "user_id"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["chatgpt_account_id"] == f"workspace-{owner.workspace_id}"
    assert body["user_id"] == f"user-{owner.user_id}"
    token = AccessToken.objects.get()
    assert token.federation_rule == rule and token.created_by == owner.user
    assert token.expires_at - before == timedelta(seconds=900)
    assert token.workload == {"repository": "acme/release", "workflow": "release",
                              "ref": "refs/heads/main", "run_id": "4242"}
    # An ordinary access token: the same format, the same checks, the same answers.
    assert len(body["access_token"]) == 39 and body["access_token"].startswith("at-")
    api = Client()
    whoami = api.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert whoami.status_code == 200
    assert whoami.json()["user"]["email"] == owner.user.email
    started = api.post("/api/v1/runs", data={"client": "github-actions"},
                       content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert started.status_code == 201
    run = Run.objects.get()
    assert run.federation_rule == rule
    assert run.workload["repository"] == "acme/release" and run.workload["run_id"] == "4242"
    event = AuditEvent.objects.get(action="token.exchanged")
    assert event.details["federation_rule_id"] == rule.pk
    assert event.details["repository"] == "acme/release"
    assert body["access_token"] not in str(event.details)


def test_it_exchanges_a_gitlab_shaped_token_signed_with_es256(client, issuer, owner):
    rule = make_rule(owner, issuer=issuer.url, subject="project_path:acme/release:*",
                     lifetime=60, claims={"namespace_path": "acme", "ref_protected": "true"})
    response = exchange(client, rule.pk, issuer.sign(gitlab_claims(issuer.url), kid="ec-1"))
    assert response.status_code == 200, response.content
    assert response.json()["expires_in"] == 60
    assert AccessToken.objects.get().workload == {"project_path": "acme/release", "ref": "main",
                                                  "pipeline_id": "777"}


def test_the_issued_token_expires_after_the_rules_lifetime(client, issuer, rule,
                                                           time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    plaintext = exchange(client, rule.pk, issuer.sign(github_claims(issuer.url))) \
        .json()["access_token"]
    time_machine.shift(timedelta(seconds=901))
    answer = Client().get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "token_expired")


def test_the_ids_sent_must_match_the_answer(client, issuer, rule, owner):
    right = {"workspace_id": f"workspace-{owner.workspace_id}", "principal_id": f"user-{owner.user_id}"}
    assert exchange(client, rule.pk, issuer.sign(github_claims(issuer.url)),
                    **right).status_code == 200
    assert refused_check(exchange(client, rule.pk, issuer.sign(github_claims(issuer.url)),
                                  workspace_id="workspace-999999")) == "workspace_id"
    assert refused_check(exchange(client, rule.pk, issuer.sign(github_claims(issuer.url)),
                                  principal_id="user-999999")) == "principal_id"


def _claims(issuer, **changes):
    claims = github_claims(issuer.url)
    for name, value in changes.items():
        if value is None:
            claims.pop(name)
        else:
            claims[name] = value
    return claims


@pytest.mark.parametrize("changes,check", [
    ({"iss": "https://token.actions.githubusercontent.com"}, "issuer"),
    ({"aud": "https://elsewhere.test"}, "audience"),
    ({"aud": ["https://elsewhere.test", "sigstore"]}, "audience"),
    ({"exp": "tomorrow"}, "expiry"),
    ({"exp": None}, "expiry"),
    ({"iat": None}, "issued at"),
    ({"sub": "repo:acme/release:ref:refs/heads/feature"}, "subject"),
    ({"sub": "repo:evil/release:ref:refs/heads/main"}, "subject"),
    ({"jti": None}, "jti"),
    ({"jti": ""}, "jti"),
])
def test_each_claim_check_refuses_and_says_which(client, issuer, rule, changes, check):
    response = exchange(client, rule.pk, issuer.sign(_claims(issuer, **changes)))
    assert refused_check(response) == check
    assert not AccessToken.objects.exists() and not UsedAssertion.objects.exists()


@pytest.mark.parametrize("offset,check", [("exp", "expiry"), ("nbf", "not before"),
                                          ("iat", "issued at")])
def test_the_times_have_sixty_seconds_of_leeway(client, issuer, rule, offset, check):
    now = time.time()
    # Just within the leeway: accepted.
    inside = {"exp": now - 55} if offset == "exp" else {offset: now + 55}
    assert exchange(client, rule.pk, issuer.sign(_claims(issuer, **inside))).status_code == 200
    outside = {"exp": now - 65} if offset == "exp" else {offset: now + 65}
    assert refused_check(exchange(client, rule.pk, issuer.sign(_claims(issuer, **outside)))) \
        == check


def test_a_token_is_exchanged_once(client, issuer, rule):
    assertion = issuer.sign(github_claims(issuer.url))
    assert exchange(client, rule.pk, assertion).status_code == 200
    assert refused_check(exchange(client, rule.pk, assertion)) == "jti"
    assert AccessToken.objects.count() == 1


def test_the_rules_claims_must_match_exactly(client, issuer, owner):
    rule = make_rule(owner, issuer=issuer.url, subject="repo:acme/*",
                     claims={"repository_owner_id": "1001", "workflow": "release"})
    assert exchange(client, rule.pk, issuer.sign(github_claims(issuer.url))).status_code == 200
    response = exchange(client, rule.pk,
                        issuer.sign(github_claims(issuer.url, repository_owner_id="1002")))
    assert refused_check(response) == "claims"
    assert "repository_owner_id" in response.json()["error_description"]


def test_only_rs256_and_es256_are_accepted(client, issuer, rule):
    import jwt as pyjwt

    hs = pyjwt.encode(github_claims(issuer.url), "a shared secret, not the issuer's key",
                      algorithm="HS256", headers={"kid": "rsa-1"})
    assert refused_check(exchange(client, rule.pk, hs)) == "algorithm"
    unsigned = pyjwt.encode(github_claims(issuer.url), None, algorithm="none",
                            headers={"kid": "rsa-1"})
    assert refused_check(exchange(client, rule.pk, unsigned)) == "algorithm"
    assert refused_check(exchange(client, rule.pk, "not.a.jwt")) == "format"


def test_a_signature_by_another_key_is_refused(client, issuer, rule):
    impostor = StandinIssuer()  # never started: only its keys are used
    claims = github_claims(issuer.url)
    forged = impostor.sign(claims, kid="rsa-1")  # the real key's id, another key
    assert refused_check(exchange(client, rule.pk, forged)) == "signature"
    forged_ec = impostor.sign(github_claims(issuer.url), kid="ec-1")
    assert refused_check(exchange(client, rule.pk, forged_ec)) == "signature"
    # Signed RS256 by the RSA key but naming the EC key: refused too.
    import jwt as pyjwt

    relabelled = pyjwt.encode(github_claims(issuer.url), issuer.keys["rsa-1"], algorithm="RS256",
                              headers={"kid": "ec-1"})
    assert refused_check(exchange(client, rule.pk, relabelled)) == "signature"


def test_an_unknown_rule_a_disabled_one_and_a_deleted_one_refuse_alike(client, issuer, rule,
                                                                       owner):
    assertion = issuer.sign(github_claims(issuer.url))
    assert refused_check(exchange(client, 999999, assertion)) == "federation_rule_id"
    assert refused_check(exchange(client, "abc", assertion)) == "federation_rule_id"
    actor = Actor(owner.user)
    federation_service.federation_rule_enable(acting=owner, actor=actor, rule=rule, enabled=False)
    assert refused_check(exchange(client, rule.pk, assertion)) == "federation_rule_id"
    federation_service.federation_rule_enable(acting=owner, actor=actor, rule=rule, enabled=True)
    federation_service.federation_rule_delete(acting=owner, actor=actor, rule=rule)
    assert refused_check(exchange(client, rule.pk, assertion)) == "federation_rule_id"


def test_a_principal_who_may_not_use_tokens_gets_nothing(client, issuer, workspace, member):
    # bob is a plain member: the toggle keeps access tokens from members.
    rule = make_rule(member, issuer=issuer.url)
    assert refused_check(exchange(client, rule.pk, issuer.sign(github_claims(issuer.url)))) \
        == "principal"
    assert not AccessToken.objects.exists()


def test_the_rules_ip_ranges_hold_for_the_exchange_and_the_token(client, issuer, owner):
    rule = make_rule(owner, issuer=issuer.url, allowed_ips="203.0.113.0/24")
    response = exchange(client, rule.pk, issuer.sign(github_claims(issuer.url)))
    assert refused_check(response) == "address"
    inside = Client(REMOTE_ADDR="203.0.113.7")
    plaintext = exchange(inside, rule.pk, issuer.sign(github_claims(issuer.url))) \
        .json()["access_token"]
    assert AccessToken.objects.get().allowed_ips == "203.0.113.0/24"
    assert Client().get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {plaintext}") \
        .json()["error"]["code"] == "ip_not_allowed"
    assert inside.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {plaintext}") \
        .status_code == 200


@pytest.mark.parametrize("data,error", [
    ({"assertion": "x", "federation_rule_id": "1"}, "invalid_request"),
    ({"grant_type": GRANT, "federation_rule_id": "1"}, "invalid_request"),
    ({"grant_type": GRANT, "assertion": "x"}, "invalid_request"),
    ({"grant_type": "client_credentials", "assertion": "x", "federation_rule_id": "1"},
     "unsupported_grant_type"),
    ({"grant_type": GRANT, "assertion": "x" * 20000, "federation_rule_id": "1"},
     "invalid_request"),
])
def test_a_malformed_form_or_another_grant(client, db, data, error):
    response = client.post("/api/v1/oauth/token", data=_form(data),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response["Cache-Control"] == "no-store"


def test_json_a_repeated_field_and_get_are_refused(client, db):
    as_json = client.post("/api/v1/oauth/token", data={"grant_type": GRANT},
                          content_type="application/json")
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")
    twice = client.post("/api/v1/oauth/token",
                        data=f"grant_type={GRANT}&assertion=a&assertion=b&federation_rule_id=1",
                        content_type="application/x-www-form-urlencoded")
    assert "more than once" in twice.json()["error_description"]
    got = client.get("/api/v1/oauth/token")
    assert got.status_code == 405 and got["Allow"] == "POST"
    assert got["Cache-Control"] == "no-store"


def test_refusals_count_toward_the_failure_limit_but_a_good_exchange_still_passes(
        client, issuer, rule, settings):
    settings.API_FAILURE_LIMIT = 5
    for n in range(5):
        assert exchange(client, rule.pk, f"not.a.jwt{n}").status_code == 400
    throttled = exchange(client, rule.pk, "not.a.jwt-again")
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0
    assert throttled.json()["error"] == "rate_limited"
    assert throttled["Cache-Control"] == "no-store"
    # The same address's API calls are throttled too: one limit.
    assert client.get("/api/v1/whoami").status_code == 429
    # A workload that passes every check is not refused for others' failures.
    assert exchange(client, rule.pk, issuer.sign(github_claims(issuer.url))).status_code == 200


def test_the_same_refused_token_counts_once(client, issuer, rule, settings):
    settings.API_FAILURE_LIMIT = 3
    refused = issuer.sign(github_claims(issuer.url, aud="https://elsewhere.test"))
    for _ in range(10):  # a CI job retrying the same token
        assert exchange(client, rule.pk, refused).status_code == 400
    for n in range(2):  # the limit is 3: the retried token counted once, then these two
        assert exchange(client, rule.pk, f"garbage{n}").status_code == 400
    assert exchange(client, rule.pk, "garbage-more").status_code == 429


# Keys: fetched once, cached by key id, fetched again for an unknown one at most once a minute


def test_keys_are_fetched_once_and_then_served_from_the_cache(client, issuer, rule):
    for _ in range(3):
        assert exchange(client, rule.pk, issuer.sign(github_claims(issuer.url))).status_code == 200
    assert issuer.fetches == {"/.well-known/openid-configuration": 1, "/jwks": 1}


def test_a_rotated_key_is_fetched_and_unknown_ids_at_most_once_a_minute(client, issuer, rule,
                                                                         time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    assert exchange(client, rule.pk, issuer.sign(github_claims(issuer.url))).status_code == 200
    time_machine.shift(timedelta(seconds=61))
    new_kid = issuer.rotate()
    response = exchange(client, rule.pk, issuer.sign(github_claims(issuer.url), kid=new_kid))
    assert response.status_code == 200, response.content
    assert issuer.fetches["/jwks"] == 2
    # The old key id is gone from the issuer but still cached for the hour; a key id nobody
    # publishes, within the minute: refused without asking the issuer again.
    forged = StandinIssuer().sign(github_claims(issuer.url), kid="rsa-1",
                                  kid_override="nobody-publishes-this")
    assert refused_check(exchange(client, rule.pk, forged)) == "signature"
    assert issuer.fetches["/jwks"] == 2
    again = issuer.sign(github_claims(issuer.url), kid=new_kid)
    assert exchange(client, rule.pk, again).status_code == 200  # the cached new key
    # A minute later, another unknown id makes one more fetch.
    time_machine.shift(timedelta(seconds=61))
    assert refused_check(exchange(client, rule.pk, forged)) == "signature"
    assert issuer.fetches["/jwks"] == 3


def test_an_issuer_that_cannot_be_reached_refuses_with_the_reason(client, settings, owner):
    settings.DEBUG = True
    with StandinIssuer() as gone:
        url = gone.url
    rule = make_rule(owner, issuer=url)
    response = exchange(client, rule.pk, gone.sign(github_claims(url)))
    assert refused_check(response) == "signature"
    assert "could not be fetched" in response.json()["error_description"]


# The race: two exchanges of one token at once, exactly one wins ------------------------------


def test_two_exchanges_of_one_token_at_once_issue_one_token(transactional_db, settings):
    settings.DEBUG = True
    workspace = WorkspaceFactory(slug="acme")
    owner = MembershipFactory(workspace=workspace, role=Role.OWNER,
                              user=UserFactory(email="owner@acme.test"))
    with StandinIssuer() as issuer:
        rule = make_rule(owner, issuer=issuer.url)
        # Warm the key cache, so that the threads meet at the database, not at the issuer.
        assert exchange(Client(), rule.pk, issuer.sign(github_claims(issuer.url))) \
            .status_code == 200
        assertion = issuer.sign(github_claims(issuer.url))
        start, results = threading.Barrier(8), []

        def attempt():
            try:
                start.wait(10)
                results.append(exchange(Client(), rule.pk, assertion).status_code)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=attempt) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert sorted(results) == [200] + [400] * 7
    assert AccessToken.objects.filter(federation_rule=rule).count() == 2  # the warm-up's too
    assert UsedAssertion.objects.count() == 2


def test_the_audience_defaults_to_the_site_url(settings):
    settings.SITE_URL = "https://console.example.com/"
    assert federation_service.default_audience() == "https://console.example.com"
    assert AUDIENCE == "https://console.test"


def test_prune_runs_forgets_exchanged_tokens_once_they_have_expired(client, issuer, rule,
                                                                    time_machine):
    from django.core.management import call_command

    time_machine.move_to(timezone.now(), tick=False)
    assertion = issuer.sign(github_claims(issuer.url))
    assert exchange(client, rule.pk, assertion).status_code == 200
    call_command("prune_runs")
    assert UsedAssertion.objects.count() == 1  # still valid: still remembered
    time_machine.shift(timedelta(seconds=300 + 61))
    call_command("prune_runs")
    assert not UsedAssertion.objects.exists()
    # ...and it cannot be exchanged again: it has expired.
    assert refused_check(exchange(client, rule.pk, assertion)) == "expiry"


# The rule changes while an exchange is under way -------------------------------------------


def _in_open_transaction(change):
    """Run `change()` in a thread, in a transaction left open until the returned event is set;
    returns (commit, thread, results)."""
    from django.db import transaction

    done, commit, results = threading.Event(), threading.Event(), []

    def run():
        try:
            with transaction.atomic():
                results.append(change())
                done.set()
                commit.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    assert done.wait(10)
    return commit, thread, results


@pytest.fixture
def racing(transactional_db, settings):
    settings.DEBUG = True
    workspace = WorkspaceFactory(slug="acme")
    owner = MembershipFactory(workspace=workspace, role=Role.OWNER,
                              user=UserFactory(email="owner@acme.test"))
    with StandinIssuer() as issuer:
        rule = make_rule(owner, issuer=issuer.url)
        assert exchange(Client(), rule.pk, issuer.sign(github_claims(issuer.url))) \
            .status_code == 200  # the keys are cached from here on
        yield owner, issuer, rule


def test_an_exchange_waits_for_a_disabling_and_then_issues_nothing(racing):
    owner, issuer, rule = racing
    commit, holder, _ = _in_open_transaction(lambda: federation_service.federation_rule_enable(
        acting=owner, actor=Actor(owner.user), rule=rule, enabled=False))
    results = []

    def attempt():
        try:
            results.append(exchange(Client(), rule.pk, issuer.sign(github_claims(issuer.url))))
        finally:
            connections.close_all()

    sender = threading.Thread(target=attempt)
    sender.start()
    sender.join(0.5)
    assert sender.is_alive(), "the exchange waits for the disabling's lock"
    commit.set()
    holder.join(10)
    sender.join(20)
    assert refused_check(results[0]) == "federation_rule_id"
    assert not AccessToken.objects.filter(federation_rule=rule).active(timezone.now()).exists()


def test_a_disabling_waits_for_an_exchange_under_way_and_revokes_its_token(racing):
    owner, issuer, rule = racing
    assertion = issuer.sign(github_claims(issuer.url))
    commit, holder, exchanged = _in_open_transaction(lambda: federation_service.federation_exchange(
        rule_id=str(rule.pk), assertion=assertion, ip="127.0.0.1", now=timezone.now()))
    done = []

    def disable():
        try:
            done.append(federation_service.federation_rule_enable(
                acting=owner, actor=Actor(owner.user), rule=rule, enabled=False))
        finally:
            connections.close_all()

    disabler = threading.Thread(target=disable)
    disabler.start()
    disabler.join(0.5)
    # PostgreSQL: the exchange's share lock on the rule; SQLite: its write lock.
    assert disabler.is_alive(), "the disabling waits for the exchange under way"
    commit.set()
    holder.join(10)
    disabler.join(20)
    assert done == [True]
    token = AccessToken.objects.get(pk=exchanged[0].token.pk)
    assert token.revoked_at is not None


def test_a_rule_acting_as_a_service_account_issues_its_tokens(client, issuer, owner):
    """A team's automation, keyless and personless: the rule's principal is a service account,
    so the exchanged token acts as svc:<name> (whoami says so) and survives any person leaving."""
    from .factories import make_service_account

    workspace = owner.workspace
    workspace.allow_codex_local = workspace.allow_access_tokens = True
    workspace.save()
    account, _ = make_service_account(owner, name="release-bot")
    rule = make_rule(owner, issuer=issuer.url, principal=account.user)
    response = exchange(client, rule.pk, issuer.sign(github_claims(issuer.url)))
    assert response.status_code == 200, response.content
    assert response.json()["user_id"] == f"user-{account.user_id}"
    token = AccessToken.objects.get()
    assert token.created_by == account.user and token.federation_rule == rule
    whoami = client.get("/api/v1/whoami",
                        headers={"Authorization": f"Bearer {response.json()['access_token']}"})
    assert whoami.status_code == 200, whoami.content
    assert whoami.json()["user"] == {"email": None, "service_account": "release-bot"}
