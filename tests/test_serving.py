"""The production serving model (config/gunicorn.py: threaded workers), in real gunicorn
processes against the test database: a Codex CLI turn holds its thread for as long as the model
writes, and a worker whose threads are all busy must not take calls it cannot serve while
another worker has threads free."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .factories import MembershipFactory, WorkspaceFactory, make_token
from .processes import database_url, free_port
from .standin_model import StandinModel

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def gunicorn(transactional_db, tmp_path):
    """Start `config/gunicorn.py` with 4 workers of 1 thread each on a free port: `start(env)`
    returns its base URL."""
    started = []

    def start(**env) -> str:
        port = free_port()
        log = open(tmp_path / "gunicorn.log", "w")
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi",
             "--bind", f"127.0.0.1:{port}", "--access-logfile", "/dev/null"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "DATABASE_URL": database_url(), "DEBUG": "false",
                 "SECRET_KEY": "serving-test-" + "x" * 50, "ALLOWED_HOSTS": "127.0.0.1",
                 "SECURE_SSL_REDIRECT": "false", "EMAIL_URL": "smtp://127.0.0.1:1",
                 "WEB_CONCURRENCY": "4", "GUNICORN_THREADS": "1", **env})
        started.append(server)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):
                    return base
            except OSError:
                time.sleep(0.2)
        raise AssertionError("gunicorn did not answer /healthz within 30 s")

    yield start
    for server in started:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_calls_go_to_a_worker_with_a_free_thread_while_turns_stream(gunicorn):
    workspace = WorkspaceFactory(slug="acme", allow_codex_local=True, allow_access_tokens=True)
    _, plaintext = make_token(MembershipFactory(workspace=workspace, role="owner"))
    auth = {"Authorization": f"Bearer {plaintext}"}
    with StandinModel() as model:
        model.hold = threading.Event()  # each answer waits after its first event
        base = gunicorn(CODEX_UPSTREAM_URL=model.url, CODEX_UPSTREAM_API_KEY="test")
        completed = []

        def turn(n: int) -> None:
            body = json.dumps({"model": "test", "stream": True, "input": []}).encode()
            request = urllib.request.Request(base + "/codex/api/responses", data=body, headers={
                **auth, "Content-Type": "application/json",
                "X-Codex-Turn-Metadata": json.dumps({"thread_id": f"serving-{n}"}),
            })
            with urllib.request.urlopen(request, timeout=30) as answer:
                if b"response.completed" in answer.read():
                    completed.append(n)

        # Three turns on four workers: each must get a worker of its own (a busy worker that
        # took one would queue it behind its held turn), and the fourth worker stays free.
        turns = [threading.Thread(target=turn, args=(n,)) for n in range(3)]
        for t in turns:
            t.start()
        deadline = time.monotonic() + 10
        while len(model.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(model.requests) == 3
        statuses = []

        def whoami() -> None:
            request = urllib.request.Request(base + "/api/v1/whoami", headers=auth)
            try:
                with urllib.request.urlopen(request, timeout=3) as answer:
                    statuses.append(answer.status)
            except (OSError, urllib.error.HTTPError) as error:
                statuses.append(repr(error))

        try:
            # Bursts of calls on new connections, as a client pool opens them: every one must
            # reach the free worker, not wait behind a held turn.
            for _ in range(3):
                burst = [threading.Thread(target=whoami) for _ in range(8)]
                for t in burst:
                    t.start()
                for t in burst:
                    t.join(10)
            assert statuses == [200] * 24
        finally:
            model.hold.set()
            for t in turns:
                t.join(30)
    assert sorted(completed) == [0, 1, 2]
