"""The production serving model (config/gunicorn.py: uvicorn workers running config/asgi.py), in
real gunicorn processes against the test database: a Codex CLI turn streams on the event loop
and holds no thread, so open turns never keep the API or the pages from answering; a restart
drains (open turns finish on the old worker, new ones go to the new)."""

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tokens.models import Run

from .factories import MembershipFactory, WorkspaceFactory, make_token
from .processes import database_url, free_port
from .standin_model import StandinModel

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {"DEBUG": "false", "SECRET_KEY": "serving-test-" + "x" * 50,
              "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "false",
              "EMAIL_URL": "smtp://127.0.0.1:1"}


@pytest.fixture(scope="module")
def static_files():
    """DEBUG off serves the static files whitenoise's manifest names: collected once."""
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT,
                   check=True, env={**os.environ, **PRODUCTION})


@pytest.fixture
def gunicorn(transactional_db, tmp_path, static_files):
    """Start `config/gunicorn.py` (one worker, two threads per pool) on a free port:
    `start(**env)` returns its base URL and the master process."""
    started = []

    def start(**env):
        port = free_port()
        log = open(tmp_path / "gunicorn.log", "w")
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py",
             "config.asgi:application", "--bind", f"127.0.0.1:{port}",
             "--access-logfile", "/dev/null"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **PRODUCTION, "DATABASE_URL": database_url(),
                 "WEB_CONCURRENCY": "1", "GATEWAY_CHECK_THREADS": "2", "API_THREADS": "2",
                 "PAGE_THREADS": "2", **env})
        started.append(server)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):
                    return base, server
            except OSError:
                time.sleep(0.2)
        raise AssertionError("gunicorn did not answer /healthz within 30 s")

    yield start
    for server in started:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


@pytest.fixture
def token():
    workspace = WorkspaceFactory(slug="acme", allow_codex_local=True, allow_access_tokens=True)
    return make_token(MembershipFactory(workspace=workspace, role="owner"))[1]


class Turns:
    """Turns sent from threads of this process; `completed` names those that ended well."""

    def __init__(self, base: str, token: str):
        self.base, self.token = base, token
        self.threads, self.completed, self.failed = [], [], []

    def send(self, name: str) -> None:
        def turn():
            body = json.dumps({"model": "test", "stream": True, "input": []}).encode()
            request = urllib.request.Request(self.base + "/codex/api/responses", data=body, headers={
                "Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
                "X-Codex-Turn-Metadata": json.dumps({"thread_id": name, "turn_id": "1"}),
            })
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:
                    if b"response.completed" in answer.read():
                        self.completed.append(name)
                        return
            except OSError as error:
                self.failed.append((name, repr(error)))
            self.failed.append((name, "no response.completed"))

        thread = threading.Thread(target=turn)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(60)


def wait_for(condition, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.05)


def get(url: str, token: str | None = None) -> int:
    """The status of a GET (redirects not followed), within 5 s."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    host, _, path = url.removeprefix("http://").partition("/")
    connection = http.client.HTTPConnection(host, timeout=5)
    try:
        connection.request("GET", "/" + path, headers=headers)
        answer = connection.getresponse()
        answer.read()
        return answer.status
    finally:
        connection.close()


def test_open_turns_keep_neither_the_api_nor_the_pages_waiting(gunicorn, token):
    """Sixty turns held open on one worker whose pools have two threads each: the turns hold
    none of them, so whoami and a page answer at once, and every turn completes."""
    with StandinModel() as model:
        model.hold = threading.Event()  # each answer waits after its first event
        base, _ = gunicorn(CODEX_UPSTREAM_URL=model.url, CODEX_UPSTREAM_API_KEY="test")
        turns = Turns(base, token)
        try:
            for n in range(60):
                turns.send(f"thread-{n}")
            wait_for(lambda: len(model.requests) == 60, "the provider to have 60 turns")
            for _ in range(5):
                assert get(base + "/api/v1/whoami", token) == 200
                assert get(base + "/codex/auth/v1/user-auth-credential/whoami", token) == 200
                assert get(base + "/accounts/login/") == 200  # a page, through the full stack
        finally:
            model.hold.set()
            turns.join()
    assert turns.failed == [] and len(turns.completed) == 60
    assert Run.objects.count() == 60


def children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(child) for child in text.split()}


def test_a_restart_drains_open_turns_while_new_turns_reach_the_new_worker(gunicorn, token):
    with StandinModel() as model:
        model.hold = threading.Event()
        base, master = gunicorn(CODEX_UPSTREAM_URL=model.url, CODEX_UPSTREAM_API_KEY="test",
                                GATEWAY_DRAIN_SECONDS="60")
        (old,) = children(master.pid)
        turns = Turns(base, token)
        try:
            for n in range(5):
                turns.send(f"before-{n}")
            wait_for(lambda: len(model.requests) == 5, "five open turns")
            master.send_signal(signal.SIGHUP)  # a reload: new workers, the old ones drain
            wait_for(lambda: children(master.pid) - {old}, "a new worker")
            (new,) = children(master.pid) - {old}
            # The old worker stops accepting (it closes the listening socket): whoever takes
            # a connection now is the new one.
            port = int(base.rsplit(":", 1)[1])
            wait_for(lambda: not listens(old, port), "the old worker to stop accepting")
            for n in range(3):
                turns.send(f"after-{n}")
            wait_for(lambda: len(model.requests) == 8, "the new turns to reach the provider")
            assert get(base + "/api/v1/whoami", token) == 200
            assert old in children(master.pid)  # still draining: its five turns are open
            assert turns.completed == []
        finally:
            model.hold.set()
            turns.join()
        wait_for(lambda: old not in children(master.pid), "the old worker to end", 30)
    assert turns.failed == []
    assert sorted(turns.completed) == [*(f"after-{n}" for n in range(3)),
                                       *(f"before-{n}" for n in range(5))]
    assert children(master.pid) == {new}
    assert Run.objects.count() == 8


def listens(pid: int, port: int) -> bool:
    """Whether the process holds the listening socket of `port`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            held.add(os.readlink(fd))
        except OSError:
            pass
    return bool(inodes & held)


def test_make_serve_runs_the_production_set_up(transactional_db, token, tmp_path):
    """`make serve`: migrate, collectstatic, gunicorn with config/gunicorn.py on PORT (turns
    streamed through it) and the mail worker beside it; SIGTERM stops them all."""
    port = free_port()
    with StandinModel() as model:
        log = open(tmp_path / "serve.log", "w")
        serve = subprocess.Popen(
            ["make", "--no-print-directory", "serve", f"PORT={port}"], cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **PRODUCTION, "DEBUG": "true",  # make serve turns it off
                 "DATABASE_URL": database_url(), "WEB_CONCURRENCY": "1",
                 "CODEX_UPSTREAM_URL": model.url, "CODEX_UPSTREAM_API_KEY": "test"})
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(lambda: _answers(base + "/healthz"), "make serve to answer", 90)
            turns = Turns(base, token)
            turns.send("through-make-serve")
            turns.join()
            assert turns.completed == ["through-make-serve"], turns.failed
            assert get(base + "/accounts/login/") == 200
            group = [p for p in Path("/proc").iterdir() if p.name.isdigit()
                     and _group_of(p) == serve.pid]
            commands = [(p / "cmdline").read_bytes().replace(b"\0", b" ") for p in group]
            assert any(b"send_queued_mail" in c for c in commands), commands
            assert any(b"config.asgi:application" in c for c in commands), commands
        finally:
            os.killpg(serve.pid, signal.SIGTERM)
            try:
                serve.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
                raise
    assert Run.objects.get().thread_id == "through-make-serve"


def _answers(url: str) -> bool:
    try:
        return get(url) == 200
    except OSError:
        return False


def _group_of(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, ValueError, IndexError):
        return None
