"""A revoke that has committed wins over a concurrent run; a broken database never succeeds.

These use real threads and real connections (transactional_db). The run waits for the token's
row lock (PostgreSQL) or the database's write lock (SQLite) until the revoke commits, then is
refused with token_revoked.
"""

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test import Client

from console.audit import Actor
from tokens.models import AccessToken, Run
from tokens.services import lifecycle
from workspaces.models import Membership

from .factories import MembershipFactory, WorkspaceFactory, make_token


@pytest.fixture
def token(transactional_db):
    workspace = WorkspaceFactory(slug="acme", allow_codex_local=True, allow_access_tokens=True)
    owner = MembershipFactory(workspace=workspace, role="owner")
    return make_token(owner)


def _creator(token):
    return Membership.objects.get(user=token.created_by, workspace=token.workspace)


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
                lifecycle.token_revoke(token=AccessToken.objects.get(pk=token.pk),
                                      acting=_creator(token), actor=Actor(None))
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
    time.sleep(0.5)
    assert runner.is_alive(), "the run waits for the revoke's lock"
    commit.set()
    revoker.join(10)
    runner.join(10)
    assert results == [(401, "token_revoked")]
    assert not Run.objects.exists()


def test_no_run_is_recorded_after_the_revoke_commits(token):
    token, plaintext = token
    stop = threading.Event()
    outcomes = []  # (sent after the revoke committed, status)
    committed = threading.Event()

    def hammer():
        try:
            client = Client()
            while not stop.is_set():
                sent_after = committed.is_set()
                response = client.post("/api/v1/runs", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
                outcomes.append((sent_after, response.status_code))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    lifecycle.token_revoke(token=AccessToken.objects.get(pk=token.pk), acting=_creator(token),
                          actor=Actor(None))
    committed.set()
    runs_at_commit = Run.objects.count()
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(10)
    assert AccessToken.objects.get(pk=token.pk).revoked_at is not None
    assert Run.objects.count() == runs_at_commit
    assert any(status == 201 for _, status in outcomes), "runs went ahead before the revoke"
    assert any(after for after, _ in outcomes), "runs were tried after the revoke"
    assert all(status != 201 for after, status in outcomes if after)


def test_a_broken_database_connection_is_503_never_a_success(token, caplog):
    token, plaintext = token
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "postgresql":
        connection.settings_dict["PORT"] = "1"  # nothing listens there
    else:
        connection.settings_dict["NAME"] = "/nonexistent/directory/console.sqlite3"
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
    # The client hears only that it may retry; the log says why.
    assert "POST /api/v1/runs answered 503: the database failed" in caplog.text
    assert "OperationalError" in caplog.text


def test_the_same_create_form_sent_at_once_makes_one_token(transactional_db):
    """A double click without JavaScript: two POSTs of one form, at the same moment."""
    workspace = WorkspaceFactory(slug="acme")
    owner = MembershipFactory(workspace=workspace, role="owner")
    statuses = []
    barrier = threading.Barrier(3)

    def submit():
        try:
            client = Client()
            client.force_login(owner.user)
            barrier.wait(10)
            response = client.post("/w/acme/admin/access-tokens/new/",
                                   {"name": "CI", "expiration": "30", "request_key": "same"})
            statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(statuses) == [201, 409, 409]
    assert AccessToken.objects.count() == 1
