"""The throttle on failed API attempts (the contract's 429 row): failures counted per client
address (an IPv4-mapped address as its IPv4 address, native IPv6 by /64), the same known token
refused again once per window, body refusals counted, and a token that may act never refused
for other callers' failures: the 429 answers only calls that would fail.

The concurrent tests use real threads and real connections, with the default cache (memory,
one process) and with Redis (as in production)."""

import os
import threading
from collections import Counter
from datetime import timedelta

import pytest
import time_machine
import zstandard
from django.db import connections
from django.test import Client
from django.utils import timezone

from console import throttle
from tokens import codec
from tokens.models import Run

from .factories import MembershipFactory, WorkspaceFactory, make_token

WHOAMI = "/api/v1/whoami"
RUNS = "/api/v1/runs"
CLI_WHOAMI = "/codex/auth/v1/user-auth-credential/whoami"
RESPONSES = "/codex/api/responses"


def bearer(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}


def whoami(client, token, **extra):
    return client.get(WHOAMI, **bearer(token), **extra)


def code_of(response):
    return f"{response.status_code} {response.json()['error']['code']}" \
        if response.status_code >= 400 else str(response.status_code)


@pytest.fixture(params=["default", "redis"])
def any_cache(request, settings):
    """The default cache (memory), then Redis as production runs it (TEST_REDIS_URL)."""
    if request.param == "redis":
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
    from django.core.cache import cache

    cache.clear()
    yield request.param
    cache.clear()


# One address, one client ---------------------------------------------------------------------


def test_the_same_known_token_refused_again_counts_once(client, owner, any_cache):
    """A CI job retrying a revoked token does not use up its address's budget."""
    _, revoked = make_token(owner, revoked_at=timezone.now())
    _, good = make_token(owner)
    for _ in range(60):
        assert code_of(whoami(client, revoked)) == "401 token_revoked"
    for _ in range(29):  # the revoked token counted once: 29 more failures fit in 30
        assert code_of(whoami(client, codec.generate())) == "401 invalid_token"
    assert code_of(whoami(client, codec.generate())) == "429 rate_limited"
    assert code_of(whoami(client, revoked)) == "429 rate_limited"  # the address is over now
    assert code_of(whoami(client, good)) == "200"


def test_each_known_token_counts_once_and_unknown_ones_every_time(client, owner, settings):
    settings.API_FAILURE_LIMIT = 3
    _, expired = make_token(owner, expires_at=timezone.now() - timedelta(days=1))
    _, fenced = make_token(owner, allowed_ips="10.0.0.0/8")
    unknown = codec.generate()
    for _ in range(5):
        assert code_of(whoami(client, expired)) == "401 token_expired"
        assert code_of(whoami(client, fenced)) == "403 ip_not_allowed"
    assert code_of(whoami(client, unknown)) == "401 invalid_token"  # the third failure
    assert code_of(whoami(client, unknown)) == "429 rate_limited"  # no such token: every time


def test_a_known_token_counts_again_in_the_next_window(client, owner, settings):
    settings.API_FAILURE_LIMIT = 2
    _, revoked = make_token(owner, revoked_at=timezone.now())
    with time_machine.travel(timezone.now()) as clock:
        assert code_of(whoami(client, revoked)) == "401 token_revoked"
        assert code_of(whoami(client, revoked)) == "401 token_revoked"
        assert code_of(whoami(client, codec.generate())) == "401 invalid_token"
        response = whoami(client, revoked)
        assert code_of(response) == "429 rate_limited"
        assert 290 <= int(response["Retry-After"]) <= 301
        clock.shift(timedelta(minutes=5, seconds=1))
        assert code_of(whoami(client, revoked)) == "401 token_revoked"  # one
        assert code_of(whoami(client, codec.generate())) == "401 invalid_token"  # two
        assert code_of(whoami(client, revoked)) == "429 rate_limited"


def test_a_token_that_may_act_is_never_refused_for_its_addresss_failures(client, owner):
    _, good = make_token(owner)
    for _ in range(100):
        whoami(client, codec.generate())
    assert code_of(whoami(client, None)) == "429 rate_limited"
    assert code_of(whoami(client, good)) == "200"
    assert client.post(RUNS, content_type="application/json", **bearer(good)).status_code == 201
    assert client.get(CLI_WHOAMI, **bearer(good)).status_code == 200
    assert Run.objects.count() == 1


def test_a_shared_ci_address_is_not_locked_out_by_failing_jobs(client, owner, settings):
    """What a failing `codex exec` costs: its token refused at whoami four times, then six turns
    sent with no token (the CLI stops sending a refused token). Jobs with revoked tokens fail
    on their own; the address's valid tokens go on working however many there are."""
    settings.DEBUG, settings.CODEX_UPSTREAM_URL = True, ""  # the demo model answers turns
    _, good = make_token(owner)
    for _ in range(10):
        _, revoked = make_token(owner, revoked_at=timezone.now())
        for _ in range(4):
            assert client.get(CLI_WHOAMI, **bearer(revoked)).status_code in (401, 429)
        for _ in range(6):
            assert client.post(RESPONSES, b"{}", content_type="application/json").status_code \
                in (401, 429)
        assert client.get(CLI_WHOAMI, **bearer(good)).status_code == 200
        turn = client.post(RESPONSES, b'{"input": []}', content_type="application/json",
                           **bearer(good))
        assert turn.status_code == 200 and turn["Content-Type"] == "text/event-stream"


# Body refusals -------------------------------------------------------------------------------


def test_bodies_refused_on_the_gateway_count_as_failures(client, owner, settings):
    settings.DEBUG, settings.CODEX_UPSTREAM_URL = True, ""
    settings.API_FAILURE_LIMIT = 3
    settings.CODEX_GATEWAY_MAX_BODY = 1000
    _, good = make_token(owner)
    post = {"content_type": "application/json", **bearer(good)}
    assert code_of(client.post(RESPONSES, b"x" * 2000, **post)) == "413 request_too_large"
    assert code_of(client.post(RESPONSES, b"{}", HTTP_CONTENT_ENCODING="br", **post)) \
        == "415 unsupported_encoding"
    assert code_of(client.post(RESPONSES, b"not zstd", HTTP_CONTENT_ENCODING="zstd", **post)) \
        == "400 invalid_request"
    bomb = zstandard.ZstdCompressor().compress(b"\0" * 5000)  # small, and too large unpacked
    assert code_of(client.post(RESPONSES, bomb, HTTP_CONTENT_ENCODING="zstd", **post)) \
        == "429 rate_limited"
    assert client.post(RESPONSES, b'{"input": []}', **post).status_code == 200


def test_bodies_refused_by_the_api_count_as_failures(client, owner, settings):
    settings.API_FAILURE_LIMIT = 2
    _, good = make_token(owner)
    for body in (b"[1, 2]", b"{not json"):
        response = client.post(RUNS, body, content_type="application/json", **bearer(good))
        assert code_of(response) == "400 invalid_request"
    response = client.post(RUNS, b'{"client": 7}', content_type="application/json",
                           **bearer(good))
    assert code_of(response) == "429 rate_limited"
    assert client.post(RUNS, b"{}", content_type="application/json",
                       **bearer(good)).status_code == 201


def test_a_body_over_djangos_limit_counts(client, owner, settings):
    settings.API_FAILURE_LIMIT = 1
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    _, good = make_token(owner)
    form = {"client": "c" * 200}
    assert code_of(client.post(RUNS, form, **bearer(good))) == "400 invalid_request"
    assert code_of(client.post(RUNS, form, **bearer(good))) == "429 rate_limited"


def test_what_is_not_a_failed_attempt_is_not_counted(client, owner, settings):
    """A wrong method, the WebSocket refusal, a missing model provider: not failed attempts."""
    settings.API_FAILURE_LIMIT = 1
    settings.DEBUG, settings.CODEX_UPSTREAM_URL = False, ""
    _, good = make_token(owner)
    for _ in range(3):
        assert client.delete(WHOAMI, **bearer(good)).status_code == 405
        assert client.get(RESPONSES, HTTP_UPGRADE="websocket", **bearer(good)).status_code == 426
        assert code_of(client.post(RESPONSES, b"{}", content_type="application/json",
                                   **bearer(good))) == "503 no_model_provider"
    assert code_of(whoami(client, codec.generate())) == "401 invalid_token"


# The counter other refusals use (the token exchange) ------------------------------------------


def test_the_failure_counter_for_other_callers(db, settings):
    settings.API_FAILURE_LIMIT = 2
    assert not throttle.is_limited("::ffff:192.0.2.1")
    assert throttle.count_failure("192.0.2.1", key="jti-1") is None
    assert throttle.count_failure("::ffff:192.0.2.1", key="jti-1") is None  # the same, once
    assert throttle.count_failure("192.0.2.1") is None
    assert throttle.is_limited("192.0.2.1") and throttle.is_limited("::ffff:192.0.2.1")
    assert 0 < throttle.count_failure("192.0.2.1", key="jti-2") <= 301
    assert not throttle.is_limited("192.0.2.2")


# Real threads, many source addresses ----------------------------------------------------------


@pytest.fixture
def cast(transactional_db):
    workspace = WorkspaceFactory(slug="acme", allow_codex_local=True, allow_access_tokens=True)
    owner = MembershipFactory(workspace=workspace, role="owner")
    _, good = make_token(owner, expires_at=None)
    _, revoked = make_token(owner, revoked_at=timezone.now())
    return good, revoked


# Each bucket: the addresses one client is counted as (the trusted proxy header names them).
BUCKETS = {
    "198.51.100.7": ["198.51.100.7", "::ffff:198.51.100.7"],
    "198.51.100.8": ["198.51.100.8", "::ffff:c633:6408"],  # the same, in hex
    "2001:db8:1:2::/64": ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9"],
    "2001:db8:1:3::/64": ["2001:db8:1:3::1"],
}


def _in_threads(jobs):
    """Run each job in its own thread (each with its own connection); their results."""
    results = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def run(n, job):
        try:
            start.wait(30)
            results[n] = job()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n, job)) for n, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(result is not None for result in results)
    return results


def test_concurrent_failures_from_many_addresses(cast, settings, any_cache):
    """Threads fail at once from four clients (each through several addresses), while others
    call with a token that may act from the same addresses: per client exactly 30 failures
    are answered as themselves and the rest 429; every call with the good token succeeds; the
    revoked token, sent by every thread of a client, counts once."""
    good, revoked = cast
    settings.TRUSTED_PROXY_HEADER = "HTTP_X_FORWARDED_FOR"

    def failing(addresses, n):
        def job():
            client, tally = Client(), Counter()
            for i in range(12):
                address = addresses[(n + i) % len(addresses)]
                # The client may write anything before the address the proxy appended.
                forwarded = f"10.{n}.{i}.1, {address}"
                token = revoked if i % 4 == 0 else codec.generate()
                if i % 4 == 1:
                    response = client.post(RUNS, content_type="application/json",
                                           HTTP_X_FORWARDED_FOR=forwarded, **bearer(token))
                else:
                    response = client.get(WHOAMI, HTTP_X_FORWARDED_FOR=forwarded,
                                          **bearer(token))
                tally[code_of(response)] += 1
            return tally
        return job

    def succeeding(addresses, n):
        def job():
            client, tally = Client(), Counter()
            for i in range(6):
                forwarded = addresses[(n + i) % len(addresses)]
                if i % 2:
                    response = client.post(RUNS, content_type="application/json",
                                           HTTP_X_FORWARDED_FOR=forwarded, **bearer(good))
                else:
                    response = client.get(WHOAMI, HTTP_X_FORWARDED_FOR=forwarded, **bearer(good))
                tally[code_of(response)] += 1
            return tally
        return job

    jobs, owners = [], []
    for bucket, addresses in BUCKETS.items():
        for n in range(4):  # 4 x 12 = 48 failing calls per client, 12 with the revoked token
            jobs.append(failing(addresses, n))
            owners.append((bucket, "failing"))
        jobs.append(succeeding(addresses, 0))
        owners.append((bucket, "succeeding"))
    results = _in_threads(jobs)

    for bucket in BUCKETS:
        failed = sum((r for r, o in zip(results, owners, strict=True)
                      if o == (bucket, "failing")), Counter())
        succeeded = sum((r for r, o in zip(results, owners, strict=True)
                         if o == (bucket, "succeeding")), Counter())
        assert sum(failed.values()) == 48
        # 36 unknown tokens and the revoked one, counted once: 37 failures, of which the first
        # 30 (whichever they were) are answered as themselves.
        answered = failed["401 invalid_token"] + failed["401 token_revoked"]
        assert answered + failed["429 rate_limited"] == 48, (bucket, failed)
        assert 30 <= answered, (bucket, failed)
        assert failed["429 rate_limited"] >= 48 - 30 - 11, (bucket, failed)
        assert failed["401 invalid_token"] in (29, 30), (bucket, failed)
        assert succeeded == Counter({"200": 3, "201": 3}), (bucket, succeeded)
    assert Run.objects.count() == 3 * len(BUCKETS)


def test_concurrent_unknown_tokens_are_answered_exactly_thirty_times(cast, settings, any_cache):
    """Every failure distinct: the count is atomic, so exactly 30 are answered as themselves,
    whatever the interleaving, and the address's good token still works."""
    good, _ = cast
    addresses = ["203.0.113.5", "::ffff:203.0.113.5"]

    def failing(n):
        def job():
            client, tally = Client(), Counter()
            for i in range(10):
                tally[code_of(whoami(client, codec.generate(),
                                     REMOTE_ADDR=addresses[(n + i) % 2]))] += 1
            return tally
        return job

    def succeeding():
        client = Client()
        return Counter(code_of(whoami(client, good, REMOTE_ADDR=addresses[i % 2]))
                       for i in range(10))

    results = _in_threads([failing(n) for n in range(6)] + [succeeding])
    failed = sum(results[:6], Counter())
    assert failed == Counter({"401 invalid_token": 30, "429 rate_limited": 30})
    assert results[6] == Counter({"200": 10})
