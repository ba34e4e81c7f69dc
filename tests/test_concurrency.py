"""A revoke that has committed wins over a concurrent run; a broken database never succeeds.

These use real threads and real connections (transactional_db). On PostgreSQL the run blocks on
the token's row lock until the revoke commits, then is refused with token_revoked; SQLite has no
row locks, and refuses the run outright while the revoke's write is open.
"""

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test import Client

from tokens import services
from tokens.models import AccessToken, Run
from workspaces.audit import Actor

from .factories import MembershipFactory, WorkspaceFactory, make_token


@pytest.fixture
def token(transactional_db):
    workspace = WorkspaceFactory(slug="acme", allow_codex_local=True, allow_access_tokens=True)
    owner = MembershipFactory(workspace=workspace, role="owner")
    return make_token(owner)


def _post_run(plaintext, results):
    try:
        response = Client().post("/api/v1/runs", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        results.append((response.status_code, response.json()["error"]["code"]
                        if response.status_code >= 400 else None))
    finally:
        connections.close_all()


def test_a_run_waiting_on_a_revoke_is_refused_once_it_commits(token):
    token, plaintext = token
    revoked = threading.Event()
    commit = threading.Event()

    def revoke():
        try:
            with transaction.atomic():
                services.token_revoke(token=AccessToken.objects.get(pk=token.pk),
                                      actor=Actor.system())
                revoked.set()
                commit.wait(10)
        finally:
            connections.close_all()

    revoker = threading.Thread(target=revoke)
    revoker.start()
    assert revoked.wait(10)
    results = []
    runner = threading.Thread(target=_post_run, args=(plaintext, results))
    runner.start()
    if connection.vendor == "postgresql":
        time.sleep(0.5)
        assert runner.is_alive(), "the run waits for the revoke's row lock"
    commit.set()
    revoker.join(10)
    runner.join(10)
    status, code = results[0]
    assert status != 201
    if connection.vendor == "postgresql":
        assert (status, code) == (401, "token_revoked")
    assert not Run.objects.exists()


def test_no_run_is_recorded_after_the_revoke_commits(token):
    token, plaintext = token
    stop = threading.Event()
    outcomes = []  # (finished after the revoke committed, status)
    committed_at = []

    def hammer():
        try:
            client = Client()
            while not stop.is_set():
                response = client.post("/api/v1/runs", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
                started_after = bool(committed_at) and time.monotonic() > committed_at[0]
                outcomes.append((started_after, response.status_code))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    for _ in range(50):  # SQLite may refuse the write while runs hold the lock: try again
        try:
            services.token_revoke(token=AccessToken.objects.get(pk=token.pk), actor=Actor.system())
            break
        except Exception:
            time.sleep(0.02)
    runs_at_commit = Run.objects.count()
    committed_at.append(time.monotonic())
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(10)
    assert AccessToken.objects.get(pk=token.pk).revoked_at is not None
    assert Run.objects.count() == runs_at_commit
    assert any(status == 201 for _, status in outcomes), "runs went ahead before the revoke"
    assert all(status != 201 for after, status in outcomes if after)


def test_a_broken_database_connection_is_503_never_a_success(token, settings):
    token, plaintext = token
    if connection.vendor != "postgresql":
        # In-memory SQLite cannot lose its connection; refuse every statement instead.
        from django.db import OperationalError

        def refuse(*args):
            raise OperationalError("unable to open database file")

        with connection.execute_wrapper(refuse):
            response = Client().get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        assert response.status_code == 503
        return
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["PORT"] = "1"  # nothing listens there
    try:
        for call in (lambda c: c.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {plaintext}"),
                     lambda c: c.post("/api/v1/runs", HTTP_AUTHORIZATION=f"Bearer {plaintext}"),
                     lambda c: c.get("/healthz")):
            response = call(Client())
            assert response.status_code == 503
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
    assert not Run.objects.exists()
