"""The automation API through its URLs: every row of the contract's error table, headers
included, and the permission model applied at the moment of each call."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from tokens.models import AccessToken, Run
from workspaces.models import CustomRole, Workspace
from workspaces.permissions import Perm

from .factories import (
    CustomRoleFactory,
    GroupFactory,
    MembershipFactory,
    WorkspaceFactory,
    make_token,
)
from .policy_cases import CASES, expected, member_in_case

WHOAMI = "/api/v1/whoami"
RUNS = "/api/v1/runs"


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def call(client, endpoint, token=None, **kwargs):
    headers = bearer(token) if token is not None else {}
    if endpoint == RUNS:
        return client.post(RUNS, content_type="application/json", **headers, **kwargs)
    return client.get(WHOAMI, **headers, **kwargs)


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


ENDPOINTS = [WHOAMI, RUNS]


# Success ---------------------------------------------------------------------------------


def test_whoami_says_who_the_token_acts_as(client, member_with_token_permission):
    token, plaintext = make_token(member_with_token_permission, name="CI")
    response = call(client, WHOAMI, plaintext)
    assert response.status_code == 200
    assert response.json() == {
        "user": {"email": "dora@acme.test"},
        "workspace": {"slug": "acme", "name": "Acme Corp"},
        "token": {"id": token.pk, "name": "CI",
                  "expires_at": token.expires_at.isoformat().replace("+00:00", "Z")},
    }
    token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_ip == "127.0.0.1"


def test_whoami_updates_last_used_at_most_once_a_minute(client, owner):
    token, plaintext = make_token(owner)
    call(client, WHOAMI, plaintext)
    token.refresh_from_db()
    first = token.last_used_at
    call(client, WHOAMI, plaintext)
    token.refresh_from_db()
    assert token.last_used_at == first
    AccessToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    call(client, WHOAMI, plaintext)
    token.refresh_from_db()
    assert token.last_used_at > first


def test_starting_a_run_records_it(client, member_with_token_permission):
    token, plaintext = make_token(member_with_token_permission, name="CI", expires_at=None)
    response = call(client, RUNS, plaintext, data={"client": "codex-cli 1.0", "command": "codex exec fix"},
                    HTTP_USER_AGENT="runner/2")
    assert response.status_code == 201
    body = response.json()
    run = Run.objects.get()
    assert body["id"] == run.pk
    assert body["started_at"].endswith("Z")
    assert body["user"] == {"email": "dora@acme.test"}
    assert body["workspace"] == {"slug": "acme", "name": "Acme Corp"}
    assert body["token"] == {"id": token.pk, "name": "CI", "expires_at": None}
    assert (run.user, run.token, run.workspace_id) == (member_with_token_permission.user, token,
                                                       token.workspace_id)
    assert (run.client, run.command, run.ip, run.user_agent) == (
        "codex-cli 1.0", "codex exec fix", "127.0.0.1", "runner/2")
    token.refresh_from_db()
    assert token.last_used_at == run.started_at


def test_a_broken_multipart_body_is_invalid_request(client, owner):
    _, plaintext = make_token(owner)
    response = client.post(RUNS, data="x", content_type="multipart/form-data", **bearer(plaintext))
    assert_error(response, 400, "invalid_request")
    assert not Run.objects.exists()


def test_a_run_without_a_body(client, owner):
    _, plaintext = make_token(owner)
    assert client.post(RUNS, **bearer(plaintext)).status_code == 201
    assert Run.objects.get().client == ""


@pytest.mark.parametrize("body", ['[1, 2]', '{"client": 5}', '{"command": null}', "not json",
                                  '{"client": "\\ud800"}',
                                  '{"command": "' + "x" * 2001 + '"}'])
def test_a_bad_run_body_is_invalid_request(client, owner, body):
    _, plaintext = make_token(owner)
    response = client.post(RUNS, data=body, content_type="application/json", **bearer(plaintext))
    assert_error(response, 400, "invalid_request")
    assert not Run.objects.exists()
    # The challenge is a plain ASCII header, never MIME-encoded for its curly quotes.
    challenge = response["WWW-Authenticate"]
    assert challenge.isascii() and "=?utf-8?" not in challenge
    assert response.json()["error"]["message"].replace("“", "'").replace("”", "'") in challenge


def test_runs_appear_on_the_governance_page(client, owner, member_with_token_permission):
    _, plaintext = make_token(member_with_token_permission, name="Nightly")
    call(client, RUNS, plaintext, data={"client": "nightly-job", "command": "codex exec"})
    client.force_login(owner.user)
    page = client.get("/w/acme/admin/governance/").content.decode()
    assert "dora@acme.test" in page and "Nightly" in page and "nightly-job" in page


# The error table -------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_missing_token(client, db, endpoint):
    response = call(client, endpoint)
    assert_error(response, 401, "missing_token")
    assert response["WWW-Authenticate"] == 'Bearer realm="codex"'


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   "])
def test_other_schemes_are_missing_token(client, db, endpoint, header):
    response = (client.post(RUNS, HTTP_AUTHORIZATION=header) if endpoint == RUNS
                else client.get(WHOAMI, HTTP_AUTHORIZATION=header))
    assert_error(response, 401, "missing_token")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_session_cookie_is_not_a_credential(client, owner, endpoint):
    make_token(owner)
    client.force_login(owner.user)
    assert_error(call(client, endpoint), 401, "missing_token")


def _challenge(response, error):
    header = response["WWW-Authenticate"]
    assert header.startswith('Bearer realm="codex", ')
    assert f'error="{error}"' in header
    assert 'error_description="' in header


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("credential", ["at-short", "at-" + "A" * 36, "garbage", "at-ab!",
                                        "cxat_" + "A" * 30 + "0uCPlr"])
def test_malformed_token(client, db, endpoint, credential):
    response = call(client, endpoint, credential)
    assert_error(response, 401, "malformed_token")
    _challenge(response, "invalid_token")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("credential", ["sk-proj-abcdefghijklmnop", "sk-abc123",
                                        "q8x1v6z0k3m5n7p9r2t4w6y8a0c2e4g6"])
def test_wrong_credential_type(client, db, endpoint, credential):
    response = call(client, endpoint, credential)
    assert_error(response, 401, "wrong_credential_type")
    _challenge(response, "invalid_token")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_real_session_key_is_the_wrong_credential(client, owner, endpoint):
    client.force_login(owner.user)
    response = call(client, endpoint, client.session.session_key)
    assert_error(response, 401, "wrong_credential_type")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_invalid_token(client, db, endpoint):
    from tokens import codec

    response = call(client, endpoint, codec.generate())
    assert_error(response, 401, "invalid_token")
    _challenge(response, "invalid_token")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_token_expired(client, owner, endpoint):
    _, plaintext = make_token(owner, expires_at=timezone.now() - timedelta(seconds=1))
    response = call(client, endpoint, plaintext)
    assert_error(response, 401, "token_expired")
    _challenge(response, "invalid_token")
    assert not Run.objects.exists()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_token_revoked(client, owner, endpoint):
    _, plaintext = make_token(owner, revoked_at=timezone.now())
    response = call(client, endpoint, plaintext)
    assert_error(response, 401, "token_revoked")
    _challenge(response, "invalid_token")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_revoked_wins_over_expired(client, owner, endpoint):
    _, plaintext = make_token(owner, revoked_at=timezone.now(),
                              expires_at=timezone.now() - timedelta(days=1))
    assert_error(call(client, endpoint, plaintext), 401, "token_revoked")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_token_in_the_query_string_is_refused(client, owner, endpoint):
    _, plaintext = make_token(owner)
    url = f"{endpoint}?access_token={plaintext}"
    response = client.post(url) if endpoint == RUNS else client.get(url)
    assert_error(response, 400, "invalid_request")
    assert 'error="invalid_request"' in response["WWW-Authenticate"]
    assert plaintext not in response.content.decode()


@pytest.mark.parametrize("body", [lambda t: {"access_token": t}, lambda t: {"command": t}])
def test_a_token_in_the_body_is_refused(client, owner, body):
    _, plaintext = make_token(owner)
    response = client.post(RUNS, data=body(plaintext), content_type="application/json",
                           **bearer(plaintext))
    assert_error(response, 400, "invalid_request")
    assert 'error="invalid_request"' in response["WWW-Authenticate"]
    assert not Run.objects.exists()


def test_a_token_in_a_form_body_is_refused(client, owner):
    _, plaintext = make_token(owner)
    response = client.post(RUNS, {"access_token": plaintext})
    assert_error(response, 400, "invalid_request")


def test_a_token_as_a_query_key_is_refused(client, owner):
    _, plaintext = make_token(owner)
    assert_error(client.get(f"{WHOAMI}?{plaintext}", **bearer(plaintext)), 400, "invalid_request")


def test_a_token_in_a_get_body_is_refused(client, owner):
    _, plaintext = make_token(owner)
    response = client.generic("GET", WHOAMI, data=f'{{"token": "{plaintext}"}}',
                              content_type="application/json", **bearer(plaintext))
    assert_error(response, 400, "invalid_request")


def test_a_command_that_mentions_access_tokens_is_fine(client, owner):
    _, plaintext = make_token(owner)
    response = call(client, RUNS, plaintext, data={"command": "rotate the access_token docs"})
    assert response.status_code == 201


# access_denied: the permission, now --------------------------------------------------------


def _denied(response):
    assert_error(response, 403, "access_denied")
    _challenge(response, "insufficient_scope")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_switching_the_toggle_off_stops_tokens_at_once(client, db, endpoint):
    workspace = WorkspaceFactory(slug="globex", allow_codex_local=True, allow_access_tokens=True)
    membership = MembershipFactory(workspace=workspace)
    _, plaintext = make_token(membership)
    assert call(client, endpoint, plaintext).status_code in (200, 201)
    Workspace.objects.filter(pk=workspace.pk).update(allow_access_tokens=False)
    _denied(call(client, endpoint, plaintext))
    Workspace.objects.filter(pk=workspace.pk).update(allow_access_tokens=True)
    assert call(client, endpoint, plaintext).status_code in (200, 201)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_codex_local_off_stops_tokens_even_with_the_token_toggle_on(client, db, endpoint):
    workspace = WorkspaceFactory(allow_codex_local=False, allow_access_tokens=True)
    _, plaintext = make_token(MembershipFactory(workspace=workspace))
    _denied(call(client, endpoint, plaintext))


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_group_losing_the_custom_role_stops_tokens(client, member_with_token_permission, endpoint):
    _, plaintext = make_token(member_with_token_permission)
    role = CustomRole.objects.get(name="Automation")
    group = role.groups.get()
    assert call(client, endpoint, plaintext).status_code in (200, 201)
    role.groups.remove(group)
    _denied(call(client, endpoint, plaintext))
    role.groups.add(group)
    assert call(client, endpoint, plaintext).status_code in (200, 201)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_leaving_the_group_stops_tokens(client, member_with_token_permission, endpoint):
    _, plaintext = make_token(member_with_token_permission)
    group = member_with_token_permission.groups.get()
    group.members.remove(member_with_token_permission)
    _denied(call(client, endpoint, plaintext))
    group.members.add(member_with_token_permission)
    assert call(client, endpoint, plaintext).status_code in (200, 201)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_custom_role_losing_the_permission_stops_tokens(client, member_with_token_permission,
                                                            endpoint):
    _, plaintext = make_token(member_with_token_permission)
    CustomRole.objects.update(grants_access_tokens=False)
    _denied(call(client, endpoint, plaintext))


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_plan_without_tokens_stops_them(client, owner, workspace, endpoint):
    _, plaintext = make_token(owner)
    Workspace.objects.filter(pk=workspace.pk).update(plan="edu")
    _denied(call(client, endpoint, plaintext))


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_member_who_left_without_revocation_is_denied(client, member_with_token_permission,
                                                        endpoint):
    _, plaintext = make_token(member_with_token_permission)
    member_with_token_permission.delete()  # bypassing the service: the check still holds
    _denied(call(client, endpoint, plaintext))


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_removed_members_tokens_are_revoked(client, owner, member_with_token_permission,
                                              endpoint):
    _, plaintext = make_token(member_with_token_permission)
    client.force_login(owner.user)
    client.post(f"/w/acme/admin/members/{member_with_token_permission.pk}/remove/")
    client.logout()
    assert_error(call(client, endpoint, plaintext), 401, "token_revoked")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_deactivated_user_is_denied(client, owner, endpoint):
    _, plaintext = make_token(owner)
    owner.user.is_active = False
    owner.user.save()
    _denied(call(client, endpoint, plaintext))


# Throttling ------------------------------------------------------------------------------


def test_thirty_failures_then_429_for_failing_calls_until_the_window_passes(client, owner):
    from tokens import codec

    _, good = make_token(owner)
    for _ in range(30):
        assert call(client, WHOAMI, codec.generate()).status_code == 401
    response = call(client, WHOAMI, codec.generate())
    assert_error(response, 429, "rate_limited")
    assert 0 < int(response["Retry-After"]) <= 301
    assert_error(call(client, RUNS, codec.generate()), 429, "rate_limited")
    assert_error(call(client, RUNS), 429, "rate_limited")  # no token at all
    # A token that may act is never refused for the address's failures.
    assert call(client, WHOAMI, good).status_code == 200
    assert call(client, RUNS, good).status_code == 201
    # Another address is not affected.
    assert_error(call(client, WHOAMI, codec.generate(), REMOTE_ADDR="10.0.0.2"), 401,
                 "invalid_token")
    # When the window has passed, the address may try again.
    cache.delete_many(["api-fail:127.0.0.1", "api-fail-start:127.0.0.1"])
    assert_error(call(client, WHOAMI, codec.generate()), 401, "invalid_token")


def test_403s_count_as_failures(client, db):
    workspace = WorkspaceFactory(allow_codex_local=False)
    member = MembershipFactory(workspace=workspace)
    for _ in range(30):
        assert call(client, WHOAMI, make_token(member)[1]).status_code == 403
    assert_error(call(client, WHOAMI, make_token(member)[1]), 429, "rate_limited")


def test_successes_are_not_counted(client, owner):
    _, plaintext = make_token(owner)
    for _ in range(40):
        assert call(client, WHOAMI, plaintext).status_code == 200


def test_the_window_is_five_minutes_from_the_first_failure(client, db):
    import time_machine

    from tokens import codec

    with time_machine.travel(timezone.now()) as clock:
        for _ in range(30):
            call(client, WHOAMI, codec.generate())
        clock.shift(timedelta(minutes=4, seconds=50))
        assert call(client, WHOAMI, "x").status_code == 429
        clock.shift(timedelta(seconds=11))
        assert call(client, WHOAMI, "x").status_code == 401


def test_a_trusted_proxy_header_names_the_client(client, db, settings):
    from tokens import codec

    settings.TRUSTED_PROXY_HEADER = "HTTP_X_FORWARDED_FOR"
    # The proxy appends the address it saw; what the client wrote before it cannot help it.
    for n in range(30):
        call(client, WHOAMI, codec.generate(), HTTP_X_FORWARDED_FOR=f"10.9.9.{n}, 203.0.113.9")
    assert call(client, WHOAMI, "x", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9").status_code == 429
    assert call(client, WHOAMI, "x", HTTP_X_FORWARDED_FOR="203.0.113.10").status_code == 401


def test_a_garbled_forwarded_header_falls_back_to_the_peer(client, owner, settings):
    settings.TRUSTED_PROXY_HEADER = "HTTP_X_FORWARDED_FOR"
    _, plaintext = make_token(owner)
    response = call(client, RUNS, plaintext, HTTP_X_FORWARDED_FOR="not-an-address")
    assert response.status_code == 201
    assert Run.objects.get().ip == "127.0.0.1"


def test_an_ipv6_client_is_counted_by_its_64(client, db):
    from tokens import codec

    for n in range(30):
        call(client, WHOAMI, codec.generate(), REMOTE_ADDR=f"2001:db8:1:2::{n + 1:x}")
    assert call(client, WHOAMI, "x", REMOTE_ADDR="2001:db8:1:2::ffff").status_code == 429
    assert call(client, WHOAMI, "x", REMOTE_ADDR="2001:db8:1:3::1").status_code == 401


def test_ipv4_mapped_addresses_are_counted_as_the_ipv4_address_they_carry(client, db):
    """A dual-stack proxy passes IPv4 clients as ::ffff:a.b.c.d: each is its own IPv4 address,
    not one shared IPv6 /64."""
    from tokens import codec

    for _ in range(30):
        call(client, WHOAMI, codec.generate(), REMOTE_ADDR="::ffff:198.51.100.7")
    assert call(client, WHOAMI, "x", REMOTE_ADDR="198.51.100.7").status_code == 429
    assert call(client, WHOAMI, "x", REMOTE_ADDR="::ffff:198.51.100.8").status_code == 401
    assert call(client, WHOAMI, "x", REMOTE_ADDR="::ffff:203.0.113.1").status_code == 401


def test_an_ipv4_mapped_address_is_recorded_as_ipv4(client, owner):
    _, plaintext = make_token(owner)
    assert call(client, RUNS, plaintext, REMOTE_ADDR="::ffff:198.51.100.7").status_code == 201
    assert Run.objects.get().ip == "198.51.100.7"


def test_without_a_trusted_header_forwarded_for_is_ignored(client, db):
    from tokens import codec

    for _ in range(30):
        call(client, WHOAMI, codec.generate(), HTTP_X_FORWARDED_FOR=f"198.51.100.{_}")
    assert call(client, WHOAMI, "x", HTTP_X_FORWARDED_FOR="198.51.100.200").status_code == 429


# Database down ----------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_unreachable_database_is_503_never_a_success(client, owner, endpoint):
    from django.db import OperationalError, connection

    _, plaintext = make_token(owner)

    def refuse(execute, sql, params, many, context):
        raise OperationalError("could not connect to server")

    with connection.execute_wrapper(refuse):
        response = call(client, endpoint, plaintext)
    assert_error(response, 503, "unavailable")


def test_healthz_is_503_when_the_database_is_down(client, db):
    from django.db import OperationalError, connection

    def refuse(execute, sql, params, many, context):
        raise OperationalError("could not connect to server")

    with connection.execute_wrapper(refuse):
        response = client.get("/healthz")
    assert response.status_code == 503


def test_the_api_sends_no_store(client, owner):
    _, plaintext = make_token(owner)
    assert "no-store" in call(client, WHOAMI, plaintext)["Cache-Control"]
    assert "no-store" in call(client, WHOAMI, "x")["Cache-Control"]


def test_the_api_does_not_start_sessions(client, owner):
    _, plaintext = make_token(owner)
    response = call(client, RUNS, plaintext)
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies


# The policy matrix, through the API: the API's one query must agree with `can()` -------------


@pytest.mark.parametrize("role,plan,allow_local,allow_tokens,custom", CASES)
def test_the_api_agrees_with_the_policy(client, db, role, plan, allow_local, allow_tokens, custom):
    _, plaintext = make_token(member_in_case(role, plan, allow_local, allow_tokens, custom))
    allowed = expected(Perm.USE_ACCESS_TOKENS, role, plan, allow_local, allow_tokens, custom)
    assert call(client, WHOAMI, plaintext).status_code == (200 if allowed else 403)
    # Run start decides in one statement on PostgreSQL (the policy's SQL form): same answer,
    # and a run recorded exactly when it is allowed.
    assert call(client, RUNS, plaintext).status_code == (201 if allowed else 403)
    assert Run.objects.count() == (1 if allowed else 0)


def test_a_custom_role_of_another_workspace_grants_nothing_through_the_api(client, db):
    workspace = WorkspaceFactory(allow_codex_local=False, allow_access_tokens=False)
    elsewhere = WorkspaceFactory()
    membership = MembershipFactory(workspace=workspace)
    group = GroupFactory(workspace=elsewhere)
    group.members.add(membership)  # only possible by going around the console
    CustomRoleFactory(workspace=elsewhere, grants_codex_local=True,
                      grants_access_tokens=True).groups.add(group)
    _, plaintext = make_token(membership)
    assert_error(call(client, WHOAMI, plaintext), 403, "access_denied")


def test_an_unreachable_cache_does_not_stop_the_api(client, owner, settings):
    import redis
    from django.core.cache import cache as current

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}  # nothing listens
    with pytest.raises(redis.exceptions.ConnectionError):
        current.get("probe")
    _, plaintext = make_token(owner)
    assert call(client, WHOAMI, plaintext).status_code == 200
    assert_error(call(client, WHOAMI, "at-nope"), 401, "malformed_token")


def test_the_throttle_holds_across_workers_with_redis(client, owner, settings):
    """With CACHE_URL pointing at Redis (as in production) the failure count is shared."""
    import os

    import redis

    location = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(location, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Redis at {location} (CI=true makes this a failure)")
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": location}}
    cache.clear()
    try:
        from tokens import codec

        _, good = make_token(owner)
        for _ in range(30):
            assert call(client, WHOAMI, codec.generate()).status_code == 401
        assert_error(call(client, WHOAMI, codec.generate()), 429, "rate_limited")
        assert call(client, WHOAMI, good).status_code == 200
        # The count lives in Redis, where every worker reads it.
        assert redis.Redis.from_url(location).keys("*api-fail:127.0.0.1")
    finally:
        cache.clear()


def test_the_hot_paths_column_names_are_the_statements(owner):
    """The check reads its rows by fixed names instead of asking the cursor each time: the
    names must be what the statements select, on this database."""
    from django.db import connection

    from tokens.authn import FACTS_SQL, TokenFacts
    from tokens.services.runs import POLICY, RUN_START_SQL, RunFacts

    token, _ = make_token(owner)
    with connection.cursor() as c:
        c.execute(FACTS_SQL, {"digest": token.digest})
        assert tuple(col[0] for col in c.description) == TokenFacts._fields
    if connection.vendor == "postgresql":
        now = timezone.now()
        params = {"digest": "none", "now": now, "day": now.date(), "fresh": now, "client": "",
                  "command": "", "ip": None, "agent": "", "thread_id": "", "model": "",
                  "sandbox_mode": "", "turn_id": "", **POLICY}
        with connection.cursor() as c:
            c.execute(RUN_START_SQL, params)
            assert tuple(col[0] for col in c.description) == RunFacts._fields
