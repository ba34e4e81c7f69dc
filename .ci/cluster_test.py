"""`make cluster-test`: the console as it runs on several servers, on one machine.

Set-up, in a temporary directory: a fresh PostgreSQL database `cluster` (migrated and seeded
directly), PgBouncer 1.18 in transaction mode in front of it, Redis database 14 as the shared
cache, two app servers A and B running `make serve`'s gunicorn (config/gunicorn.py: uvicorn
workers, config.asgi) with one production-like environment, a stand-in model provider as their
CODEX_UPSTREAM_URL, and haproxy balancing over both with health checks on /healthz.

What it proves, each with its figures and PASS/FAIL:

1. Failed API attempts spread over A and B are throttled as one (the count lives in Redis).
2. Failed sign-ins spread over A and B lock the email out on both.
3. A browser session made on A works on B.
4. SIGKILL of A under a load of run starts: no run answered 201 is lost, B keeps answering.
5. A PostgreSQL restart under load: no 500, every 201 stored, 503 while the database is away,
   service back within 10 s of the restart.
6. DB_PREPARED_STATEMENTS=true behind PgBouncer 1.18 in transaction mode (instance C): reported;
   it fails the test only with a 500 or a success that is wrong or not stored.
7. Both CSV exports (10,000 audit events, 10,000 runs) stream through haproxy and PgBouncer
   while other clients query: every row arrives, in the page's order.
8. Mail leaves the request: password resets asked on A and on B are queued, and one mail worker
   (`manage.py send_queued_mail`, through PgBouncer) sends each once to a real SMTP server.
9. Codex CLI turns through haproxy reach the stand-in provider from A and from B, stream back
   whole, and each records its run once (through PgBouncer).

Exits 1 when a claim fails; the temporary directory (every program's log and configuration) is
then kept and named, as it is with CLUSTER_TEST_KEEP=1. Run it through `bash .ci/cluster-test`,
which makes sure haproxy, PgBouncer, PostgreSQL and Redis are there.
"""

from __future__ import annotations

import csv
import http.client
import http.cookies
import io
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import psycopg
import redis
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tokens import codec  # noqa: E402  (plain Python: imports nothing of Django)

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_DIRECT = f"postgres://postgres@{PG_HOST}:{PG_PORT}"
DB_NAME = "cluster"
REDIS_DB = 14
CACHE_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
SBIN = "/usr/sbin:/sbin"

WORKERS = 2  # per gunicorn instance; each with config/asgi.py's pools (API_THREADS, PAGE_THREADS)
POOL_SIZE = 20  # PgBouncer's default_pool_size
QUERY_WAIT_TIMEOUT = 5  # seconds a client waits in PgBouncer for a server connection

# The limits the claims count on, set explicitly (the README's defaults) so that a .env file
# in the clone cannot change them.
API_FAILURE_LIMIT = 30
SIGN_IN_EMAIL_LIMIT = 10

TOKEN_OWNER, TOKEN_WORKSPACE, TOKEN_NAME = "owner@globex.test", "globex", "cluster"
PASSWORD = "codex-demo-pass"
RUN_BODY = json.dumps({"client": "cluster-test"}).encode()

LOAD_THREADS = 6
LOAD_TIMEOUT = 10.0  # the load clients' HTTP timeout (s): longer than PgBouncer's wait
KILL_AFTER, KILL_LOAD_SECONDS = 4.0, 12.0
RESTART_AFTER, BACK_WITHIN, AFTER_RESTART_SECONDS = 3.0, 10.0, 10.5
PREPARED_SECONDS = 3.0


# Output and claims ---------------------------------------------------------------------------

@dataclass
class Claim:
    step: str
    label: str
    passed: bool
    figure: str


CLAIMS: list[Claim] = []
FIGURES: list[str] = []  # one line per step for the summary
T0 = time.monotonic()


def header(title: str) -> None:
    print(f"\n== {title} (+{time.monotonic() - T0:.1f} s)", flush=True)


def say(text: str = "") -> None:
    print(f"  {text}".rstrip(), flush=True)


def claim(step: str, label: str, passed: bool, figure: str = "") -> bool:
    CLAIMS.append(Claim(step, label, bool(passed), figure))
    say(f"{'PASS' if passed else 'FAIL'}  {label}" + (f": {figure}" if figure else ""))
    return bool(passed)


def figure(step: str, text: str) -> None:
    FIGURES.append(f"{step}: {text}")


def counts(counter: Counter) -> str:
    return ", ".join(f"{label} x{n}" for label, n in counter.most_common()) or "none"


# HTTP ------------------------------------------------------------------------------------------

@dataclass
class Answer:
    """One HTTP call: its status (None when no answer came) and when it started and ended."""

    status: int | None
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""  # "timeout", or the exception's name when no answer came
    started: float = 0.0
    ended: float = 0.0

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def json(self) -> dict:
        try:
            data = json.loads(self.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def code(self) -> str:
        """The API's error code, when the body is the contract's error shape."""
        error = self.json().get("error")
        return error.get("code", "") if isinstance(error, dict) else ""

    @property
    def outcome(self) -> str:
        """What the answer was, in a word or three: how the load tallies it."""
        if self.status is None:
            return self.error
        if self.status == 503:
            if self.code == "unavailable":
                return "503 unavailable (app)"
            if b"No server is available" in self.body:
                return "503 (haproxy: no server up)"
            return "503 (other)"
        if self.status in (502, 504) and b"<html>" in self.body:
            return f"{self.status} (haproxy)"
        return f"{self.status} {self.code}".rstrip()


def call(port: int, method: str, path: str, *, body: bytes | None = None,
         headers: dict | None = None, timeout: float = 5.0) -> Answer:
    """One request on a new connection (so every call is balanced and counted on its own)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.monotonic()
    response = None
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return Answer(response.status, data, response.getheaders(), "", started, time.monotonic())
    except TimeoutError:
        return Answer(None, error="timeout", started=started, ended=time.monotonic())
    except (OSError, http.client.HTTPException) as error:
        # A server that dies while it writes its answer: the status line may have come.
        cut = f", cut off after a {response.status}" if response is not None else ""
        return Answer(None, error=f"no answer ({type(error).__name__}{cut})", started=started,
                      ended=time.monotonic())
    finally:
        connection.close()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def whoami(port: int, token: str, timeout: float = 5.0) -> Answer:
    return call(port, "GET", "/api/v1/whoami", headers=bearer(token), timeout=timeout)


def start_run(port: int, token: str, timeout: float = LOAD_TIMEOUT) -> Answer:
    return call(port, "POST", "/api/v1/runs", body=RUN_BODY, timeout=timeout,
                headers={**bearer(token), "Content-Type": "application/json"})


def cookies_of(answer: Answer) -> dict[str, str]:
    """Cookies set by an answer. Parsed by hand: they carry Secure (DEBUG is off), so a
    standard cookie jar would never send them back over plain HTTP."""
    jar = {}
    for name, value in answer.headers:
        if name.lower() == "set-cookie":
            parsed = http.cookies.SimpleCookie()
            parsed.load(value)
            jar.update({key: morsel.value for key, morsel in parsed.items()})
    return jar


def cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{key}={value}" for key, value in jar.items())


def sign_in(port: int, email: str, password: str) -> tuple[Answer, dict[str, str]]:
    """The login page as a browser uses it: GET for the CSRF cookie and the form's token, then
    POST the form with both. Returns the POST's answer and the cookies after it."""
    page = call(port, "GET", "/accounts/login/")
    jar = cookies_of(page)
    found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)
    if page.status != 200 or "csrftoken" not in jar or not found:
        raise RuntimeError(f"login page on :{port}: {page.outcome}, no CSRF cookie or token")
    form = urlencode({"username": email, "password": password,
                      "csrfmiddlewaretoken": found.group(1).decode()}).encode()
    answer = call(port, "POST", "/accounts/login/", body=form, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie_header(jar)})
    jar.update(cookies_of(answer))
    return answer, jar


def password_reset(port: int, email: str) -> Answer:
    """The password reset page as a browser uses it (the CSRF cookie and token, then POST)."""
    page = call(port, "GET", "/accounts/password_reset/")
    jar = cookies_of(page)
    found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)
    if page.status != 200 or "csrftoken" not in jar or not found:
        raise RuntimeError(f"reset page on :{port}: {page.outcome}, no CSRF cookie or token")
    form = urlencode({"email": email, "csrfmiddlewaretoken": found.group(1).decode()}).encode()
    return call(port, "POST", "/accounts/password_reset/", body=form, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie_header(jar)})


class MailServer:
    """A real SMTP server (aiosmtpd) in this process: what the console's mail worker sends."""

    def __init__(self, port: int):
        self.received: list[tuple[float, list[str]]] = []  # (when, recipients)
        self.controller = Controller(self, hostname="127.0.0.1", port=port)

    async def handle_DATA(self, server, session, envelope):
        self.received.append((time.monotonic(), list(envelope.rcpt_tos)))
        return "250 Message accepted"

    def recipients(self) -> list[str]:
        return sorted(address for _, to in self.received for address in to)


def drive(stop: threading.Event, threads: int,
          make_call) -> tuple[list[Answer], list[threading.Thread]]:
    """`threads` clients calling `make_call()` back to back until `stop` is set."""
    answers: list[Answer] = []

    def client() -> None:
        while not stop.is_set():
            answers.append(make_call())

    pool = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    return answers, pool


def finish(stop: threading.Event, pool: list[threading.Thread]) -> None:
    stop.set()
    for thread in pool:
        thread.join(LOAD_TIMEOUT + 5)


# Processes --------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tool(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":" + SBIN)
    if not found:
        raise RuntimeError(f"{name} is not installed (bash .ci/cluster-test installs it)")
    return found


@dataclass
class Process:
    """A child in its own process group (gunicorn's master and workers die together)."""

    name: str
    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole group: a server that dies without a word."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait()

    def stop(self, sig: int = signal.SIGTERM, wait: float = 10.0) -> None:
        if self.alive():
            try:
                os.killpg(self.popen.pid, sig)
                self.popen.wait(timeout=wait)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (a worker that outlived its master) goes too.
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait()

    def tail(self, lines: int = 15, grep: str | None = None) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        if grep:
            text = [line for line in text if re.search(grep, line)]
        return "\n".join(text[-lines:])


def spawn(name: str, argv: list[str], env: dict, log: Path) -> Process:
    with open(log, "ab") as out:
        popen = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
    return Process(name, popen, log)


def wait_until(what: str, ready, timeout: float, process: Process | None = None) -> float:
    """Poll `ready()` until true; the seconds it took. Fails early when `process` exits."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process is not None and not process.alive():
            raise RuntimeError(f"{what}: {process.name} exited ({process.popen.returncode}):\n"
                               f"{process.tail(30)}")
        try:
            if ready():
                return time.monotonic() - started
        except Exception:  # not listening yet, booting, ...
            pass
        time.sleep(0.1)
    tail = f":\n{process.tail(30)}" if process else ""
    raise RuntimeError(f"{what}: not ready within {timeout:.0f} s{tail}")


def postgres_version() -> str:
    return sorted(os.listdir("/etc/postgresql"))[0]


def postgres_ready() -> bool:
    return subprocess.run(["pg_isready", "-q", "-h", PG_HOST, "-p", str(PG_PORT)]).returncode == 0


def ensure_postgres_running() -> None:
    """Whatever happened, PostgreSQL answers again when this script ends."""
    if postgres_ready():
        return
    print("  PostgreSQL is down: starting it", flush=True)
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", postgres_version(), "main",
                    "start"], check=False)
    for _ in range(60):
        if postgres_ready():
            return
        time.sleep(0.5)
    print("  PostgreSQL did not come back: start it by hand", flush=True)


def direct(dbname: str = DB_NAME) -> psycopg.Connection:
    return psycopg.connect(f"{PG_DIRECT}/{dbname}", autocommit=True, connect_timeout=5)


def runs_stored(ids: list[int]) -> int:
    """How many of these runs are in the database: one query on the direct connection."""
    if not ids:
        return 0
    with direct() as conn:
        return conn.execute("SELECT count(*) FROM tokens_run WHERE id = ANY(%s)",
                            [ids]).fetchone()[0]


def last_run_id() -> int:
    with direct() as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM tokens_run").fetchone()[0]


def runs_after(run_id: int) -> int:
    """Runs recorded by the test's load since `run_id`: with the 201s, how many were stored
    for calls whose answer never came (a server died, a connection was cut)."""
    with direct() as conn:
        return conn.execute("SELECT count(*) FROM tokens_run WHERE id > %s AND client = %s",
                            [run_id, "cluster-test"]).fetchone()[0]


def flush_cache() -> None:
    redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()


class HaproxyWatch(threading.Thread):
    """haproxy's view of its servers (the stats socket, every 100 ms): when it marked each
    one up or down, so the figures can say what the load balancer did."""

    def __init__(self, sock: Path):
        super().__init__(daemon=True)
        self.sock, self.stopped = sock, threading.Event()
        self.state: dict[str, str] = {}
        self.changes: list[tuple[float, str, str]] = []

    def read(self) -> dict[str, str]:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(2)
            client.connect(str(self.sock))
            client.sendall(b"show stat\n")
            data = b""
            while chunk := client.recv(65536):
                data += chunk
        rows = csv.reader(io.StringIO(data.decode().lstrip("# ")))
        names = next(rows)
        return {row[names.index("svname")]: row[names.index("status")].split()[0]
                for row in rows if len(row) == len(names) and row[0] == "console"
                and row[1] not in ("FRONTEND", "BACKEND")}

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                now = self.read()
            except OSError:
                now = {}
            for server, status in now.items():
                if self.state.get(server) != status:
                    self.changes.append((time.monotonic(), server, status))
            self.state.update(now)
            self.stopped.wait(0.1)

    def since(self, moment: float) -> str:
        events = [f"{server} {status} at +{at - moment:.1f} s" for at, server, status in
                  self.changes if at >= moment]
        return ", ".join(events) or "no change"


# The cluster ------------------------------------------------------------------------------------

class Cluster:
    """Everything the steps talk to, set up in a temporary directory, torn down whole."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.processes: list[Process] = []
        self.ports = {name: free_port() for name in ("pgbouncer", "a", "b", "c", "haproxy", "smtp")}
        self.mail = MailServer(self.ports["smtp"])
        from tests.standin_model import StandinModel

        self.model = StandinModel()  # the model provider of every server
        self.secret_key = secrets.token_urlsafe(50)  # 67 characters, the same for A, B and C
        self.token = ""
        self.watch: HaproxyWatch | None = None
        self.servers: dict[str, Process] = {}

    # Environment ----------------------------------------------------------------------------

    def env(self, database_url: str, **extra: str) -> dict:
        """The production-like environment of every server and every manage.py call. Starts
        from a bare environment so that nothing of the caller's (a DATABASE_URL) leaks in."""
        base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
                if key in os.environ}
        return {
            **base,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONUNBUFFERED": "1",
            "DEBUG": "false",
            "SECRET_KEY": self.secret_key,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "EMAIL_URL": f"smtp://127.0.0.1:{self.ports['smtp']}",
            "CACHE_URL": CACHE_URL,
            "DATABASE_URL": database_url,
            "DB_PREPARED_STATEMENTS": "false",
            "TRUSTED_PROXY_HEADER": "HTTP_X_FORWARDED_FOR",
            "LOG_LEVEL": "WARNING",
            "CONN_MAX_AGE": "600",
            "API_FAILURE_LIMIT": str(API_FAILURE_LIMIT),
            "API_FAILURE_WINDOW": "300",
            "SIGN_IN_EMAIL_LIMIT": str(SIGN_IN_EMAIL_LIMIT),
            "SIGN_IN_ADDRESS_LIMIT": "50",
            "SIGN_IN_WINDOW": "900",
            "CODEX_UPSTREAM_URL": self.model.url,
            "CODEX_UPSTREAM_API_KEY": "sk-cluster-test",
            "GATEWAY_DRAIN_SECONDS": "10",
            **extra,
        }

    @property
    def pooled_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.ports['pgbouncer']}/{DB_NAME}"

    def server_env(self, **extra: str) -> dict:
        return self.env(self.pooled_url, **extra)

    def manage(self, *command: str) -> str:
        """manage.py with the servers' environment, but straight to PostgreSQL (migrations do
        not belong behind a transaction pooler)."""
        result = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT,
                                env=self.env(f"{PG_DIRECT}/{DB_NAME}"),
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(command)} failed:\n"
                               f"{result.stdout}{result.stderr}")
        return result.stdout

    # Set-up ---------------------------------------------------------------------------------

    def set_up(self) -> None:
        header("Set-up")
        with direct("postgres") as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {DB_NAME}")
        started = time.monotonic()
        self.manage("migrate", "--noinput")
        migrated = time.monotonic() - started
        self.manage("collectstatic", "--noinput")  # DEBUG off: whitenoise's manifest
        self.manage("seed_demo", "--force")
        self.token = self.manage("create_access_token", TOKEN_OWNER, TOKEN_WORKSPACE,
                                 "--name", TOKEN_NAME).strip()
        if not codec.is_valid(self.token):
            raise RuntimeError("create_access_token printed no token")
        say(f"PostgreSQL {version} on {PG_HOST}:{PG_PORT}: database {DB_NAME} dropped, created, "
            f"migrated directly ({migrated:.1f} s), seeded, token '{TOKEN_NAME}' for {TOKEN_OWNER}")
        flush_cache()
        say(f"Redis database {REDIS_DB} flushed ({CACHE_URL})")
        self.mail.controller.start()
        say(f"SMTP server (aiosmtpd) on 127.0.0.1:{self.ports['smtp']}: EMAIL_URL of every "
            "server and the mail worker")
        self.model.__enter__()
        say(f"stand-in model provider on {self.model.url}: CODEX_UPSTREAM_URL of every server")
        self.start_pgbouncer()
        self.start_app("a")
        self.start_app("b")
        self.start_haproxy()

    def start_pgbouncer(self) -> None:
        """PgBouncer in transaction mode. It refuses to run as root: it runs as postgres, so
        its directory belongs to postgres. A short query_wait_timeout makes a request that
        waits for a dead server fail fast (503) instead of hanging; server_login_retry 1 s
        lets it reconnect soon after PostgreSQL comes back (its default waits 15 s)."""
        home = self.tmp / "pgbouncer"
        home.mkdir()
        (home / "userlist.txt").write_text('"postgres" ""\n')
        config = home / "pgbouncer.ini"
        config.write_text(f"""\
[databases]
{DB_NAME} = host={PG_HOST} port={PG_PORT} dbname={DB_NAME} user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.ports['pgbouncer']}
unix_socket_dir =
auth_type = trust
auth_file = {home / 'userlist.txt'}
pool_mode = transaction
server_reset_query =
default_pool_size = {POOL_SIZE}
max_client_conn = 200
query_wait_timeout = {QUERY_WAIT_TIMEOUT}
server_login_retry = 1
server_connect_timeout = 3
ignore_startup_parameters = extra_float_digits
""")
        postgres = pwd.getpwnam("postgres")
        for path in (home, *home.iterdir()):
            os.chown(path, postgres.pw_uid, postgres.pw_gid)
        process = spawn("pgbouncer", [tool("pgbouncer"), "-u", "postgres", str(config)],
                        os.environ.copy(), self.tmp / "pgbouncer.out")
        self.processes.append(process)

        def answers() -> bool:
            with psycopg.connect(self.pooled_url, connect_timeout=2, autocommit=True) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)

        wait_until("PgBouncer", answers, 15, process)
        version = subprocess.run([tool("pgbouncer"), "--version"], capture_output=True,
                                 text=True).stdout.splitlines()[0]
        say(f"{version} on 127.0.0.1:{self.ports['pgbouncer']}: transaction pooling, "
            f"default_pool_size {POOL_SIZE}, max_client_conn 200, query_wait_timeout "
            f"{QUERY_WAIT_TIMEOUT} s")

    def start_app(self, name: str, **extra: str) -> Process:
        """`make serve`'s gunicorn (config/gunicorn.py: uvicorn workers running config/asgi.py),
        in its own process group."""
        port = self.ports[name]
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        process = spawn(name.upper(), [
            gunicorn, "-c", "config/gunicorn.py", "--workers", str(WORKERS),
            "--bind", f"127.0.0.1:{port}", "config.asgi:application",
        ], self.server_env(**extra), self.tmp / f"gunicorn-{name}.log")
        self.processes.append(process)
        self.servers[name] = process
        took = wait_until(f"gunicorn {name.upper()}",
                          lambda: call(port, "GET", "/healthz", timeout=2).status == 200,
                          30, process)
        note = ", ".join(f"{key}={value}" for key, value in extra.items())
        say(f"gunicorn {name.upper()} on 127.0.0.1:{port}: {WORKERS} uvicorn workers"
            f"{', ' + note if note else ''}; /healthz 200 after {took:.1f} s")
        return process

    def start_mail_worker(self) -> Process:
        """`manage.py send_queued_mail`, with the servers' environment (through PgBouncer)."""
        process = spawn("mail worker", [sys.executable, "manage.py", "send_queued_mail"],
                        {**self.server_env(), "LOG_LEVEL": "INFO"}, self.tmp / "mail-worker.log")
        self.processes.append(process)
        return process

    def start_haproxy(self) -> None:
        """haproxy in front of A and B: round robin, health checks on /healthz every 500 ms
        (down after 2 failures, up after 1 success), failed connections retried and sent to
        the other server, the client's address appended to X-Forwarded-For."""
        sock = self.tmp / "haproxy.sock"
        config = self.tmp / "haproxy.cfg"
        config.write_text(f"""\
global
    maxconn 2000
    stats socket {sock} mode 600 level admin

defaults
    mode http
    option forwardfor
    option redispatch
    retries 2
    timeout connect 2s
    timeout client 15s
    timeout server 8s
    timeout check 2s

listen console
    bind 127.0.0.1:{self.ports['haproxy']}
    balance roundrobin
    option httpchk GET /healthz HTTP/1.1
    http-check send hdr Host 127.0.0.1
    default-server inter 500 fall 2 rise 1
    server a 127.0.0.1:{self.ports['a']} check
    server b 127.0.0.1:{self.ports['b']} check
""")
        checked = subprocess.run([tool("haproxy"), "-c", "-q", "-f", str(config)],
                                 capture_output=True, text=True)
        if checked.returncode != 0:
            raise RuntimeError(f"haproxy's configuration:\n{checked.stdout}{checked.stderr}")
        process = spawn("haproxy", [tool("haproxy"), "-db", "-f", str(config)],
                        os.environ.copy(), self.tmp / "haproxy.log")
        self.processes.append(process)
        self.watch = HaproxyWatch(sock)
        wait_until("haproxy's stats socket", lambda: bool(self.watch.read()), 10, process)
        self.watch.start()
        self.wait_haproxy_up("a", "b")
        version = subprocess.run([tool("haproxy"), "-v"], capture_output=True,
                                 text=True).stdout.split()[2]
        say(f"haproxy {version} on 127.0.0.1:{self.ports['haproxy']} in front of A and B "
            "(roundrobin, httpchk GET /healthz inter 500 fall 2 rise 1, retries 2, redispatch)")

    def wait_haproxy_up(self, *servers: str) -> None:
        wait_until(f"haproxy marking {', '.join(servers)} up",
                   lambda: all(self.watch.read().get(s) == "UP" for s in servers), 15)

    def tear_down(self) -> None:
        """haproxy first (no more traffic), then the app servers, PgBouncer last."""
        if self.watch:
            self.watch.stopped.set()
        for process in reversed(self.processes):
            process.stop(signal.SIGINT if process.name == "pgbouncer" else signal.SIGTERM)
        self.mail.controller.stop()
        self.model.__exit__(None, None, None)

    def errors_logged(self) -> str:
        """Tracebacks and errors the app servers logged (shown when a claim fails)."""
        parts = []
        for name, process in self.servers.items():
            found = process.tail(12, grep=r"ERROR|Error|Traceback|CRITICAL")
            if found:
                parts.append(f"gunicorn {name.upper()}:\n    " + found.replace("\n", "\n    "))
        return "\n  ".join(parts)


# The steps --------------------------------------------------------------------------------------

def step_preflight(cluster: Cluster) -> None:
    """The real token works on A, on B and through haproxy before anything else: a failing claim
    later must not be a misconfiguration."""
    header("0. Preflight")
    answers = {name: whoami(cluster.ports[name], cluster.token) for name in ("a", "b")}
    through = start_run(cluster.ports["haproxy"], cluster.token)
    say(f"whoami on A: {answers['a'].outcome}, on B: {answers['b'].outcome}; "
        f"run start through haproxy: {through.outcome}")
    claim("0", "the token answers on A, B and through haproxy",
          all(a.status == 200 for a in answers.values()) and through.status == 201,
          f"whoami {answers['a'].status}/{answers['b'].status}, run {through.status}")


def step_api_throttle(cluster: Cluster) -> None:
    """Failed API attempts are counted per client address in the shared cache, so 30 failures
    spread over A and B throttle the address's failing calls on both. With a per-process count
    (locmem) each worker would have seen a handful and answered the next failure 401. A token
    that may act is never refused for the address's failures."""
    header("1. Failed API attempts spread over A and B are throttled as one")
    flush_cache()
    wrong = codec.generate()  # well formed, valid checksum, no such token
    tally: Counter = Counter()
    for n in range(API_FAILURE_LIMIT):
        name = "a" if n % 2 == 0 else "b"
        tally[f"{name.upper()}: {whoami(cluster.ports[name], wrong).outcome}"] += 1
    stored = redis.Redis(db=REDIS_DB).get(":1:api-fail:127.0.0.1")
    say(f"{API_FAILURE_LIMIT} calls with a wrong token, alternating A and B: {counts(tally)}")
    say(f"failures counted in Redis db {REDIS_DB} for 127.0.0.1: "
        f"{stored.decode() if stored else 'nothing'}")
    failing = {name: whoami(cluster.ports[name], codec.generate()) for name in ("a", "b")}
    for name, answer in failing.items():
        say(f"another wrong token on {name.upper()}: {answer.outcome}, "
            f"Retry-After {answer.header('Retry-After')}")
    real = {name: whoami(cluster.ports[name], cluster.token) for name in ("a", "b")}
    for name, answer in real.items():
        say(f"the real token on {name.upper()}: {answer.outcome}")
    # Through haproxy the address is the last X-Forwarded-For entry, the one haproxy appended:
    # an entry the client forged comes before it and changes nothing.
    forged = call(cluster.ports["haproxy"], "GET", "/api/v1/whoami", headers={
        **bearer(codec.generate()), "X-Forwarded-For": "203.0.113.9"})
    say(f"a wrong token through haproxy with a forged X-Forwarded-For: 203.0.113.9: "
        f"{forged.outcome}")
    claim("1", f"the {API_FAILURE_LIMIT} wrong-token calls are refused 401 invalid_token, "
          "none throttled early",
          tally == Counter({"A: 401 invalid_token": API_FAILURE_LIMIT // 2,
                            "B: 401 invalid_token": API_FAILURE_LIMIT - API_FAILURE_LIMIT // 2}),
          counts(tally))
    throttled = all(a.status == 429 and a.code == "rate_limited" and a.header("Retry-After")
                    for a in failing.values())
    claim("1", "then another wrong token gets 429 rate_limited on A and on B", throttled,
          f"A {failing['a'].outcome}, B {failing['b'].outcome}")
    claim("1", "and through haproxy, whatever X-Forwarded-For the client sends",
          forged.status == 429 and forged.code == "rate_limited", forged.outcome)
    claim("1", "while the real token from the same address still answers 200 on A and on B",
          all(a.status == 200 for a in real.values()),
          f"A {real['a'].outcome}, B {real['b'].outcome}")
    figure("1 API throttle", f"{API_FAILURE_LIMIT} failures over A+B -> wrong token "
           f"A {failing['a'].status}, B {failing['b'].status}, through haproxy (forged "
           f"X-Forwarded-For) {forged.status}; real token A {real['a'].status}, "
           f"B {real['b'].status}")


def step_sign_in_guard(cluster: Cluster) -> None:
    """django-axes counts failed sign-ins in the shared cache: 10 failures for one email,
    alternating A and B, refuse the next attempt on both, the right password included."""
    header("2. Failed sign-ins spread over A and B lock the email out on both")
    flush_cache()  # step 1's counts must not interfere
    email = "owner@acme.test"
    tally: Counter = Counter()
    for n in range(SIGN_IN_EMAIL_LIMIT):
        name = "a" if n % 2 == 0 else "b"
        answer, jar = sign_in(cluster.ports[name], email, "not-the-password")
        tally[f"{name.upper()}: {answer.status}{' signed in' if 'sessionid' in jar else ''}"] += 1
    say(f"{SIGN_IN_EMAIL_LIMIT} wrong passwords for {email}, alternating A and B: {counts(tally)}"
        " (200: the form again, with its error)")
    right = {name: sign_in(cluster.ports[name], email, PASSWORD) for name in ("a", "b")}
    for name, (answer, jar) in right.items():
        say(f"the right password on {name.upper()}: {answer.status}"
            f"{', signed in' if 'sessionid' in jar else ', not signed in'}")
    claim("2", "the wrong passwords are refused without a lockout (200, the form)",
          sum(tally.values()) == SIGN_IN_EMAIL_LIMIT
          and all(label.endswith(": 200") for label in tally), counts(tally))
    claim("2", "then the right password gets 429 on A and on B",
          all(answer.status == 429 and "sessionid" not in jar for answer, jar in right.values()),
          f"A {right['a'][0].status}, B {right['b'][0].status}")
    figure("2 sign-in guard", f"{SIGN_IN_EMAIL_LIMIT} failures over A+B -> right password "
           f"A {right['a'][0].status}, B {right['b'][0].status}")


def step_session(cluster: Cluster) -> None:
    """Sessions live in the database and are signed with the one SECRET_KEY, so a browser that
    signs in on A is signed in on B (no sticky sessions needed)."""
    header("3. A browser session made on A works on B")
    answer, jar = sign_in(cluster.ports["a"], "admin@acme.test", PASSWORD)
    say(f"sign-in as admin@acme.test on A: {answer.status} to {answer.header('Location')}, "
        f"session cookie {'set' if 'sessionid' in jar else 'missing'}")
    page = call(cluster.ports["b"], "GET", "/w/acme/", headers={"Cookie": cookie_header(jar)})
    anonymous = call(cluster.ports["b"], "GET", "/w/acme/")
    say(f"GET /w/acme/ on B with that cookie: {page.status}"
        f"{', location ' + page.header('Location') if page.header('Location') else ''}; "
        f"without it: {anonymous.status} to {anonymous.header('Location')}")
    claim("3", "signed in on A, the workspace page answers 200 on B",
          answer.status == 302 and "sessionid" in jar and page.status == 200
          and b"Acme" in page.body, f"sign-in {answer.status}, page on B {page.status}")
    figure("3 session", f"sign-in on A {answer.status}, /w/acme/ on B {page.status} "
           f"(without the cookie {anonymous.status})")


def step_kill_instance(cluster: Cluster) -> None:
    """A server that dies mid-load (SIGKILL: no graceful stop) loses no recorded run: a 201 is
    only sent after the run's commit. haproxy's health checks take A out; B carries on."""
    header(f"4. SIGKILL of A under load ({LOAD_THREADS} clients, {KILL_LOAD_SECONDS:.0f} s "
           "of run starts through haproxy)")
    flush_cache()
    first = last_run_id()
    stop = threading.Event()
    answers, pool = drive(stop, LOAD_THREADS,
                          lambda: start_run(cluster.ports["haproxy"], cluster.token))
    started = time.monotonic()
    try:
        time.sleep(KILL_AFTER)
        killed = time.monotonic()
        cluster.servers["a"].kill()
        say(f"A (gunicorn master and workers) killed with SIGKILL at +{killed - started:.1f} s")
        time.sleep(max(0.0, started + KILL_LOAD_SECONDS - time.monotonic()))
    finally:
        finish(stop, pool)
    say(f"haproxy: {cluster.watch.since(killed)}")

    created = [a for a in answers if a.status == 201]
    ids = [a.json().get("id") for a in created]
    stored = runs_stored([i for i in ids if isinstance(i, int)])
    lost = len(created) - stored
    others = Counter(a.outcome for a in answers if a.status != 201)
    after = [a for a in created if a.ended > killed]
    late = [a for a in created if a.ended > killed + 2]
    rate_before = sum(1 for a in created if a.ended <= killed) / KILL_AFTER
    rate_after = len(late) / max(0.1, started + KILL_LOAD_SECONDS - killed - 2)
    say(f"calls: {len(answers)}, 201: {len(created)}, other: {counts(others)}")
    say(f"runs answered 201 and not in the database: {lost}; runs stored without a 201 "
        f"(the call failed, the run was recorded): {runs_after(first) - stored}")
    say(f"201s after the kill: {len(after)} (201/s before the kill {rate_before:.0f}, "
        f"from 2 s after it {rate_after:.0f})")
    claim("4", "every run answered 201 is in the database", lost == 0 and len(created) > 0,
          f"{stored} of {len(created)} stored")
    claim("4", "B keeps answering after the kill (at least 100 201s, and at least a third "
          "of the rate before it)", len(after) >= 100 and rate_after >= rate_before / 3,
          f"{len(after)} 201s after the kill")
    # Calls that A had taken (or that sat in its listen queue) die with it: haproxy answers
    # them 502, having sent the request already, so it may not retry them, or cuts the answer
    # A was writing. Calls after that find A's port closed; haproxy retries them on B.
    failed = [a for a in answers if a.status != 201]
    caught = all(a.ended - killed <= 2.0 and (a.outcome.endswith("(haproxy)")
                                              or a.error.startswith("no answer"))
                 for a in failed)
    say("failed calls answered " + (
        f"from +{min(a.ended for a in failed) - killed:.2f} s to "
        f"+{max(a.ended for a in failed) - killed:.2f} s after the kill" if failed else "none"))
    claim("4", "only calls caught by the kill fail (haproxy's 502 or a cut answer, within "
          "2 s of it), none a 500", caught and len(failed) <= 4 * LOAD_THREADS, counts(others))
    figure("4 SIGKILL A", f"{len(answers)} calls, {len(created)} 201, other {counts(others)}, "
           f"lost {lost}, 201s after the kill {len(after)}")


def step_restart_postgres(cluster: Cluster) -> None:
    """PostgreSQL restarts under load: calls that need it answer 503 unavailable (or haproxy's
    503 while its health checks see both servers' /healthz fail), never a 500 and never a 201
    that was not stored; PgBouncer reconnects and service comes back on its own."""
    header("5. PostgreSQL restarts under load (through haproxy, A started again)")
    cluster.start_app("a")
    cluster.wait_haproxy_up("a", "b")
    version = postgres_version()
    first = last_run_id()
    stop = threading.Event()
    answers, pool = drive(stop, LOAD_THREADS,
                          lambda: start_run(cluster.ports["haproxy"], cluster.token))
    started = time.monotonic()
    try:
        time.sleep(RESTART_AFTER)
        restart_at = time.monotonic()
        # pg_ctlcluster's default shutdown mode is fast: open sessions are cut, as in a failover.
        restart = subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main",
                                  "restart"], capture_output=True, text=True, timeout=60)
        done = time.monotonic()
        say(f"pg_ctlcluster {version} main restart at +{restart_at - started:.1f} s: exit "
            f"{restart.returncode}, took {done - restart_at:.1f} s")
        if restart.returncode != 0:
            say((restart.stdout + restart.stderr).strip())
        time.sleep(max(0.0, done + AFTER_RESTART_SECONDS - time.monotonic()))
    finally:
        finish(stop, pool)
        ensure_postgres_running()
    say(f"haproxy: {cluster.watch.since(restart_at)}")

    created = [a for a in answers if a.status == 201]
    stored = runs_stored([a.json().get("id") for a in created if isinstance(a.json().get("id"),
                                                                              int)])
    lost = len(created) - stored
    others = Counter(a.outcome for a in answers if a.status != 201)
    outage = [a for a in answers if restart_at <= a.ended and a.started <= done]
    back = [a for a in created if a.started >= done]
    back_after = min(a.ended for a in back) - done if back else None
    timeouts = sum(1 for a in answers if a.error == "timeout")
    say(f"calls: {len(answers)}, 201: {len(created)}, other: {counts(others)}, "
        f"timeouts: {timeouts}")
    say(f"calls during the outage (answered after the restart began, started before it "
        f"ended): {counts(Counter(a.outcome for a in outage))}")
    failures = [a for a in answers if a.status != 201]
    if failures:
        say(f"failed calls answered from +{min(a.ended for a in failures) - restart_at:.1f} s "
            f"to +{max(a.ended for a in failures) - restart_at:.1f} s after the restart began "
            "(haproxy's 503s come back at once, so the clients call again at once)")
    say(f"runs answered 201 and not in the database: {lost}; runs stored without a 201: "
        f"{runs_after(first) - stored}")
    say("first 201 for a call started after the restart completed: "
        + (f"{back_after:.2f} s after it" if back_after is not None else "never"))
    unexpected = {o: n for o, n in others.items() if not o.startswith("503 unavailable (app)")
                  and not o.startswith("503 (haproxy")}
    claim("5", "no 500 and no other failure: every answer is a 201 or a 503",
          not unexpected, counts(Counter(unexpected)) if unexpected else counts(others))
    claim("5", "every run answered 201 is in the database", lost == 0 and len(created) > 0,
          f"{stored} of {len(created)} stored")
    refused = [a for a in outage if a.status != 201]
    claim("5", "calls during the outage that did not succeed got 503",
          all(a.status == 503 for a in refused),
          counts(Counter(a.outcome for a in refused)) if refused else "none failed")
    claim("5", f"no call timed out (client timeout {LOAD_TIMEOUT:.0f} s)", timeouts == 0,
          str(timeouts))
    claim("5", f"service back within {BACK_WITHIN:.0f} s of the restart's completion",
          back_after is not None and back_after <= BACK_WITHIN,
          f"{back_after:.2f} s" if back_after is not None else "no 201 after the restart")
    figure("5 PostgreSQL restart", f"{len(answers)} calls, {len(created)} 201, other "
           f"{counts(others)}, timeouts {timeouts}, lost {lost}, restart took "
           f"{done - restart_at:.1f} s, first 201 "
           + (f"{back_after:.2f} s after it" if back_after is not None else "never"))


def postgres_log() -> Path | None:
    path = Path(f"/var/log/postgresql/postgresql-{postgres_version()}-main.log")
    return path if path.is_file() else None


def step_prepared_statements(cluster: Cluster) -> None:
    """What DB_PREPARED_STATEMENTS=true does behind PgBouncer 1.18 in transaction mode: the
    statement is prepared on one server connection and executed on whichever the pooler hands
    out next, where it may not exist. A report, not a claim; it fails the test only with a 500
    or a success that is wrong (another token's answer) or not stored."""
    header("6. DB_PREPARED_STATEMENTS=true behind PgBouncer in transaction mode (instance C)")
    log = postgres_log()
    log_from = log.stat().st_size if log else 0
    port = cluster.ports["c"]
    process = cluster.start_app("c", DB_PREPARED_STATEMENTS="true")
    stop = threading.Event()
    whoamis, pool_w = drive(stop, 2, lambda: whoami(port, cluster.token, timeout=LOAD_TIMEOUT))
    runs, pool_r = drive(stop, 2, lambda: start_run(port, cluster.token))
    try:
        time.sleep(PREPARED_SECONDS)
    finally:
        finish(stop, pool_w + pool_r)
        process.stop()
    logged = process.tail(1000, grep=r"ERROR|WARNING|Traceback")
    say(f"lines about it in C's log (LOG_LEVEL=WARNING): {len(logged.splitlines())}")

    def right(answer: Answer) -> bool:
        body = answer.json()
        return (body.get("user", {}).get("email") == TOKEN_OWNER
                and body.get("token", {}).get("name") == TOKEN_NAME)

    created = [a for a in runs if a.status == 201]
    stored = runs_stored([a.json().get("id") for a in created if isinstance(a.json().get("id"),
                                                                              int)])
    wrong = sum(1 for a in whoamis + created if a.status in (200, 201) and not right(a))
    answers = whoamis + runs
    failed = [a for a in answers if a.status not in (200, 201)]
    share = len(failed) / max(1, len(answers))
    say(f"whoami: {len(whoamis)} calls, {counts(Counter(a.outcome for a in whoamis))}")
    say(f"run starts: {len(runs)} calls, {counts(Counter(a.outcome for a in runs))}")
    say(f"failed: {len(failed)} of {len(answers)} ({share:.0%}); successes that name another "
        f"token: {wrong}; runs answered 201 and not stored: {len(created) - stored}")
    if log:
        lines = log.read_bytes()[log_from:].decode(errors="replace").splitlines()
        errors = Counter(re.sub(r'"_pg3_\d+"', '"_pg3_N"', line.split("ERROR:", 1)[1].strip())
                         for line in lines if "ERROR:" in line)
        say(f"PostgreSQL's log meanwhile: {counts(errors)}")
    if failed:
        say("the API answers 503 unavailable: these calls fail; a pooler that keeps prepared "
            "statements (PgBouncer 1.21+ with max_prepared_statements) or "
            "DB_PREPARED_STATEMENTS=false avoids it")
    else:
        say("no failure this time: the pooler happened to hand each client the server "
            "connection its statements were prepared on")
    claim("6", "with prepared statements on, failures are 503 (never a 500), every success "
          "is right and stored",
          all(a.status == 503 and a.code == "unavailable" for a in failed) and wrong == 0
          and stored == len(created), counts(Counter(a.outcome for a in failed)))
    figure("6 prepared statements on", f"{len(answers)} calls, {len(failed)} failed "
           f"({share:.0%}, {counts(Counter(a.outcome for a in failed))}), wrong successes "
           f"{wrong}, unstored 201s {len(created) - stored}")


EXPORT_ROWS = 10_000  # audit events and runs added for the export step
EXPORT_LOAD_THREADS = 4


def _seed_export_rows(cluster: Cluster) -> tuple[int, float]:
    """10,000 audit events and 10,000 runs in Acme, straight into PostgreSQL, three to a
    timestamp (so rows that share a time fall across the export's batch edges). Returns the
    workspace's id and the seconds it took."""
    started = time.monotonic()
    with direct() as conn:
        workspace = conn.execute("SELECT id FROM workspaces_workspace WHERE slug = 'acme'"
                                 ).fetchone()[0]
        token, user = conn.execute(
            "SELECT id, created_by_id FROM tokens_accesstoken WHERE workspace_id = %s "
            "ORDER BY id LIMIT 1", [workspace]).fetchone()
        conn.execute(
            "INSERT INTO workspaces_auditevent (workspace_id, actor_email, action, target, "
            "details, user_agent, created_at) "
            "SELECT %s, 'cluster@acme.test', 'group.created', 'cluster-export-' || n, "
            "jsonb_build_object('n', n), '', now() - (n / 3) * interval '1 second' "
            "FROM generate_series(1, %s) AS n", [workspace, EXPORT_ROWS])
        conn.execute(
            "INSERT INTO tokens_run (workspace_id, token_id, user_id, started_at, client, "
            "command, user_agent) "
            "SELECT %s, %s, %s, now() - (n / 3) * interval '1 second', 'cluster-export-' || n, "
            "'', '' FROM generate_series(1, %s) AS n", [workspace, token, user, EXPORT_ROWS])
    # The governance page counts from roll-ups: count them again for the runs added.
    cluster.manage("shell", "-c", "from tokens.services.runs import rollups_rebuild; "
                                  "from workspaces.models import Workspace; "
                                  "rollups_rebuild(workspace=Workspace.objects.get(slug='acme'))")
    return workspace, time.monotonic() - started


def _expected_rows(sql: str, workspace: int) -> list[tuple]:
    with direct() as conn:
        return conn.execute(sql, [workspace]).fetchall()


def step_csv_exports(cluster: Cluster) -> None:
    """Both CSV exports stream through haproxy and PgBouncer in transaction mode while other
    clients keep the pooler's server connections busy: every row arrives, in the page's order.
    Read with a server-side cursor (`.iterator()`), the export lost its cursor when PgBouncer
    handed its server connection to another client between two fetches."""
    header(f"7. CSV exports through PgBouncer (transaction mode), {EXPORT_ROWS:,} audit events "
           f"and {EXPORT_ROWS:,} runs, {EXPORT_LOAD_THREADS} other clients querying")
    flush_cache()
    workspace, seeded = _seed_export_rows(cluster)
    say(f"{EXPORT_ROWS:,} audit events and {EXPORT_ROWS:,} runs added to Acme in {seeded:.1f} s")
    port = cluster.ports["haproxy"]
    answer, jar = sign_in(port, "admin@acme.test", PASSWORD)
    if answer.status != 302 or "sessionid" not in jar:
        claim("7", "signed in as admin@acme.test through haproxy", False, answer.outcome)
        return
    exports = {
        "audit log": ("/w/acme/admin/audit-log/export.csv",
                      "SELECT actor_email, action, target FROM workspaces_auditevent "
                      "WHERE workspace_id = %s ORDER BY created_at DESC, id DESC",
                      lambda row: (row[1], row[2], row[3])),
        "governance": ("/w/acme/admin/governance/export.csv",
                       "SELECT client FROM tokens_run WHERE workspace_id = %s "
                       "ORDER BY started_at DESC, id DESC",
                       lambda row: (row[4],)),
    }
    stop = threading.Event()
    load, pool = drive(stop, EXPORT_LOAD_THREADS, lambda: whoami(port, cluster.token))
    results = {}
    try:
        for name, (path, _, _) in exports.items():
            started = time.monotonic()
            results[name] = (call(port, "GET", path, timeout=60,
                                  headers={"Cookie": cookie_header(jar)}),
                             time.monotonic() - started)
    finally:
        finish(stop, pool)
    say(f"the other clients meanwhile: {len(load)} whoami calls, "
        f"{counts(Counter(a.outcome for a in load))}")
    for name, (_, sql, columns) in exports.items():
        answer, took = results[name]
        expected = _expected_rows(sql, workspace)
        rows = []
        if answer.status == 200:
            rows = [columns(row) for row in
                    list(csv.reader(io.StringIO(answer.body.decode())))[1:]]
        missing = len(expected) - len(rows)
        say(f"{name}: {answer.outcome}, {len(answer.body):,} bytes in {took:.2f} s, "
            f"{len(rows):,} rows of {len(expected):,} in the database")
        claim("7", f"the {name} export streams every row, in the page's order",
              answer.status == 200 and rows == [tuple(row) for row in expected],
              f"{len(rows):,} of {len(expected):,} rows" + (f", {missing:,} missing"
                                                            if missing else ""))
        figure(f"7 {name} CSV", f"{answer.outcome}, {len(rows):,} of {len(expected):,} rows "
               f"in {took:.2f} s while {EXPORT_LOAD_THREADS} clients queried")


def step_mail(cluster: Cluster) -> None:
    """No mail is sent in a request: a password reset asked on A and one asked on B answer at
    once, their mail queued in the database; one mail worker, through PgBouncer, sends both."""
    header("8. Mail queued on A and B is sent by the mail worker")
    emails = {"a": "owner@acme.test", "b": "admin@acme.test"}
    answers = {name: password_reset(cluster.ports[name], email) for name, email in emails.items()}
    asked = time.monotonic()
    say("password resets: " + ", ".join(f"{emails[name]} on {name.upper()} {answer.outcome} in "
                                        f"{(answer.ended - answer.started) * 1000:.0f} ms"
                                        for name, answer in answers.items()))
    quiet = not cluster.mail.received
    worker = cluster.start_mail_worker()
    wanted = sorted(emails.values())
    took = wait_until("the mail worker sending both", lambda: cluster.mail.recipients() == wanted,
                      60, worker)
    time.sleep(1)  # anything sent twice would have arrived by now
    say(f"mail worker started after the answers; {cluster.mail.recipients()} received "
        f"{took:.1f} s after it started")
    claim("8 mail", "the resets on A and B answered 302 with nothing sent meanwhile",
          all(a.status == 302 for a in answers.values()) and quiet,
          f"{', '.join(a.outcome for a in answers.values())}; mail before the worker: "
          f"{'none' if quiet else 'some'}")
    claim("8 mail", "the worker sent each mail once", cluster.mail.recipients() == wanted,
          f"{len(cluster.mail.received)} received")
    figure("8 mail", f"2 resets queued on A and B, both delivered {took:.1f} s after the worker "
           f"started ({time.monotonic() - asked:.1f} s after they were asked)")


def step_turns(cluster: Cluster) -> None:
    """Codex CLI turns on A, on B and through haproxy: each server relays its turns to the
    provider, streams the events back whole, and records one run per turn (through PgBouncer)."""
    header("9. Codex CLI turns on A, on B and through haproxy")
    flush_cache()  # the earlier steps' failure counts must not interfere
    asked = len(cluster.model.requests)
    routes = ["a", "a", "b", "b", "haproxy", "haproxy"]
    threads = [f"cluster-turn-{n}-{secrets.token_hex(4)}" for n in range(len(routes))]
    answers = []
    for route, thread in zip(routes, threads, strict=True):
        body = json.dumps({"model": "cluster", "stream": True, "input": []}).encode()
        answers.append(call(cluster.ports[route], "POST", "/codex/api/responses", body=body,
                            headers={"Authorization": f"Bearer {cluster.token}",
                                     "Content-Type": "application/json",
                                     "User-Agent": "codex_exec/0.171.0 (cluster test)",
                                     "X-Codex-Turn-Metadata": json.dumps(
                                         {"thread_id": thread, "turn_id": "1"})}))
    whole = [a.status == 200 and b"response.completed" in a.body for a in answers]
    sent = len(cluster.model.requests) - asked
    with direct(DB_NAME) as conn:
        runs = conn.execute("SELECT count(*) FROM tokens_run WHERE thread_id = ANY(%s)",
                            (threads,)).fetchone()[0]
    say(", ".join(f"{route.upper() if route != 'haproxy' else 'haproxy'} {a.outcome}"
                  for route, a in zip(routes, answers, strict=True))
        + f"; the provider got {sent}; runs recorded {runs}")
    claim("9 turns", "every turn (A, B, haproxy) streamed whole from the provider",
          all(whole) and sent == len(threads), f"{sum(whole)} of {len(threads)} whole")
    claim("9 turns", "each turn recorded its run once", runs == len(threads), f"{runs} runs")
    figure("9 turns", f"{sum(whole)} of {len(threads)} turns (2 on A, 2 on B, 2 through "
           f"haproxy) streamed whole, {runs} runs recorded")


# Main -------------------------------------------------------------------------------------------

def summary(elapsed: float) -> int:
    header("Summary")
    for line in FIGURES:
        say(line)
    say()
    for item in CLAIMS:
        say(f"{'PASS' if item.passed else 'FAIL'}  [{item.step}] {item.label}")
    failed = [item for item in CLAIMS if not item.passed]
    say()
    say(f"{len(CLAIMS) - len(failed)} of {len(CLAIMS)} claims passed in {elapsed:.0f} s"
        + ("" if not failed else f"; FAILED: {len(failed)}"))
    return 1 if failed or not CLAIMS else 0


def main() -> int:
    # CI cancelling the job sends SIGTERM: leave through the finally blocks (tear-down, and
    # PostgreSQL running again), not by dying where we stand.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="cluster-test-"))
    tmp.chmod(0o755)  # PgBouncer runs as postgres and reads its files under here
    cluster = Cluster(tmp)
    try:
        try:
            cluster.set_up()
        except Exception:
            claim("set-up", "the cluster starts", False, traceback.format_exc().strip())
            return summary(time.monotonic() - T0)
        for step in (step_preflight, step_api_throttle, step_sign_in_guard, step_session,
                     step_kill_instance, step_restart_postgres, step_prepared_statements,
                     step_csv_exports, step_mail, step_turns):
            before = len([c for c in CLAIMS if not c.passed])
            try:
                step(cluster)
            except Exception:
                claim(step.__name__, "the step ran to its end", False,
                      traceback.format_exc().strip())
            if len([c for c in CLAIMS if not c.passed]) > before:
                logged = cluster.errors_logged()
                if logged:
                    say("errors in the servers' logs:\n  " + logged)
        return summary(time.monotonic() - T0)
    except (KeyboardInterrupt, SystemExit):
        claim("main", "the test ran to its end", False, "interrupted")
        raise
    finally:
        cluster.tear_down()
        ensure_postgres_running()
        if os.environ.get("CLUSTER_TEST_KEEP") or not CLAIMS or not all(c.passed for c in CLAIMS):
            print(f"  logs and configuration kept in {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
