"""`make bench`: how fast the API and the long admin pages are, at a large workspace's size.

1. PostgreSQL database `bench` (created if missing), migrated, static files collected.
2. Seeded once (bench/seed.py): one workspace, 100,000 access tokens, 1,000,000 runs.
3. Server time of the governance, audit log and access tokens pages (Django's test client in
   this process, against the same database).
4. gunicorn (2 sync workers) on a free loopback port, with bench/settings.py: the site plus a
   floor view, /bench/floor, the cheapest JSON answer through the same middleware.
5. wrk (bench/wrk.lua) against the floor, GET /api/v1/whoami and POST /api/v1/runs in turn,
   each warmed up first; besides req/s and latency, the CPU each request cost the workers,
   their PostgreSQL backends and wrk, which other programs on the machine barely disturb.
6. The time of the requests whose work must not depend on what they name (mail is queued, not
   sent, in the request): a password reset for an account's email against one for an unknown
   email, and a leak report of a live token against one of an unknown token, through gunicorn;
   their medians and the difference (printed, not a target).
7. A table, the targets (PASS/FAIL) and the machine; the figures also go to
   bench/out/results.json. Exits non-zero only when a request failed: a missed target is
   reported, not fatal.

8. Keyless runs (--only federation alone): the exchange of a GitHub-shaped OpenID Connect token
   (from a stand-in issuer on loopback) with the issuer's keys cached, p50 and p99 of its server
   time (target p50 < 20 ms), and the run start with an exchanged token beside an ordinary one
   (Django's test client in this process, on a small workspace of its own).

Options: --duration and --warmup (seconds per endpoint), --samples (requests per page),
--only mail-timing (step 6 alone, on a small workspace of its own), --only federation (step 8
alone), --database (default bench).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make `bench`, `config`, ... importable

BENCH = ROOT / "bench"
OUT = BENCH / "out"  # git-ignored
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
DB_NAME = "bench"

# The server's environment: production settings, on loopback without TLS.
SERVER_ENV = {
    "DJANGO_SETTINGS_MODULE": "bench.settings",
    "DATABASE_URL": f"{PG_SERVER}/{DB_NAME}",
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(45),  # 60 characters, new for every run
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "false",
    "CONN_MAX_AGE": "600",
    "LOG_LEVEL": "WARNING",
    # Nothing is sent: no mail worker runs, so mail stays queued (the request only queues).
    "EMAIL_URL": "smtp://127.0.0.1:1",
}

WORKERS = 2
WRK_THREADS = 2
WRK_CONNECTIONS = 8
RUN_BODY = json.dumps({"client": "bench", "command": "codex exec test"})

# Targets: API throughput as a fraction of the bare Django floor's, page server time in ms
# (median).
WHOAMI_MIN_RATIO = 0.6
RUNS_MIN_RATIO = 0.4
PAGE_TARGETS = {
    "governance": 150, "governance, a year": 150, "audit log": 150, "tokens, idle": 150,
    "token page": 150, "tokens, name search": 50, "tokens, by last used": 50,
}


@dataclass
class Load:
    """One wrk run, as reported by bench/wrk.lua's done(), plus the CPU the server spent."""

    requests: int
    duration_us: int
    p50_us: int
    p90_us: int
    p99_us: int
    max_us: int
    non2xx: int
    connect: int
    read: int
    write: int
    timeout: int
    # CPU time per request of the gunicorn workers, their PostgreSQL backends and wrk itself:
    # unlike req/s, barely moved by other programs competing for the machine's CPUs.
    app_cpu_ms: float = 0.0
    db_cpu_ms: float = 0.0
    wrk_cpu_ms: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / (self.duration_us / 1e6)

    @property
    def cpu_ms(self) -> float:
        return self.app_cpu_ms + self.db_cpu_ms + self.wrk_cpu_ms

    @property
    def errors(self) -> int:
        return self.non2xx + self.connect + self.read + self.write + self.timeout


@dataclass
class PageTiming:
    median_ms: float
    p95_ms: float
    max_ms: float
    queries: int
    slowest_query_ms: float
    bad_statuses: int


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per endpoint")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per endpoint")
    parser.add_argument("--samples", type=int, default=20, help="timed requests per page")
    parser.add_argument("--only", choices=["mail-timing", "federation", "turns", "scale", "ttfb"],
                        help="run this step alone (turns: scale and ttfb)")
    parser.add_argument("--turns", type=int, default=0, help="open turns (scale; default 1000)")
    parser.add_argument("--turn-seconds", type=int, default=0,
                        help="how long each turn streams (scale; default 60)")
    parser.add_argument("--database", default=DB_NAME, help="the PostgreSQL database to use")
    args = parser.parse_args()

    SERVER_ENV["DATABASE_URL"] = f"{PG_SERVER}/{args.database}"
    os.environ.update(SERVER_ENV)  # this process runs Django too (seeding, page timings)
    env = dict(os.environ)
    OUT.mkdir(exist_ok=True)

    machine = describe_machine()
    print_machine(machine)

    if not args.only:
        ensure_wrk()
    raise_open_files()
    step("database")
    ensure_database(args.database)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")

    import django

    django.setup()
    if args.only == "mail-timing":
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            timing = mail_timing_phase(env, Path(tmp))
        return 1 if timing.failed else 0
    if args.only == "federation":
        return 1 if federation_phase(FEDERATION_SAMPLES).failed else 0
    if args.only in ("turns", "scale", "ttfb"):
        from bench import scale

        token, owner = small_workspace("turns-bench")
        which = ("scale", "ttfb") if args.only == "turns" else (args.only,)
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            found = turn_phases(env, Path(tmp), token, "turns-bench", owner, which, args.turns,
                                args.turn_seconds)
        step("targets")
        for label, value, passed, note in scale.targets(*found):
            print(f"  {label:<44} {value:>10}  {'PASS' if passed else 'FAIL'}  {note}".rstrip())
        (OUT / f"{args.only}.json").write_text(json.dumps(
            {"machine": machine, **{k: asdict(v) for k, v in zip(("scale", "ttfb"), found, strict=True)
                                    if v is not None}}, indent=2) + "\n")
        return 0
    from bench import scale, seed
    from tokens.models import Run

    step("data")
    started = time.monotonic()
    workspace, fresh = seed.ensure()
    sizes = data_sizes(workspace)
    print(f"  {'seeded' if fresh else 'already seeded'} ({time.monotonic() - started:.1f} s): "
          + ", ".join(f"{count:,} {what}" for what, count in sizes.items()))
    plaintexts = seed.issue_load_tokens()

    step(f"page server time ({args.samples} requests each, Django test client)")
    pages = time_pages(workspace.slug, args.samples)

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        loads, tally = drive(env, Path(tmp), plaintexts, args.warmup, args.duration)
        at_scale, ttfb = turn_phases(env, Path(tmp), plaintexts[0], workspace.slug, seed.OWNER,
                                     turns=args.turns, seconds=args.turn_seconds)
        mail_timing = mail_timing_phase(env, Path(tmp))
    # A few more runs than 201s is fine (requests in flight when wrk stopped); fewer would
    # mean a 201 for a run that was never recorded.
    recorded = Run.objects.filter(workspace=workspace, client=seed.LOAD_CLIENT).count()
    print(f"  runs recorded: {recorded:,}, for {tally.created_runs:,} answers 201 Created")
    tally.failed += max(0, tally.created_runs - recorded)

    federation = federation_phase(FEDERATION_SAMPLES)
    busy = max(tally.load_average, machine["load average"])
    failed = report(loads, pages, tally.failed, busy, machine["nproc"],
                    scale.targets(at_scale, ttfb))
    failed = failed or at_scale.completed < at_scale.turns or federation.failed
    (OUT / "results.json").write_text(json.dumps({
        "machine": machine, "data": sizes,
        "load": {name: {**asdict(load), "rps": load.rps} for name, load in loads.items()},
        "pages": {name: asdict(timing) for name, timing in pages.items()},
        "turns at scale": asdict(at_scale), "first byte": asdict(ttfb),
        "mail timing": asdict(mail_timing),
        "federation": asdict(federation),
    }, indent=2) + "\n")
    return 1 if failed or mail_timing.failed else 0


# Set-up ----------------------------------------------------------------------------------


def raise_open_files() -> None:
    """A thousand open turns are two thousand sockets: the soft limit on open files goes up to
    the hard one, for this process and the servers it starts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def describe_machine() -> dict:
    cpu = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres") as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
        shared_buffers = conn.execute("SHOW shared_buffers").fetchone()[0]
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory": memory,
        "postgresql": f"{pg} (shared_buffers {shared_buffers})",
        "python": platform.python_version(),
        # Other programs running meanwhile make req/s noisy: said next to the figures.
        "load average": round(os.getloadavg()[0], 2),
    }


def print_machine(machine: dict) -> None:
    step("machine")
    for key, value in machine.items():
        print(f"  {key:<13} {value}")


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        sys.exit("wrk is not installed: install it (Debian: apt-get install -y wrk) and rerun.")
    step("installing wrk")
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL, check=True)
        subprocess.run(install, stdout=subprocess.DEVNULL, check=True)


def ensure_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            print(f"  database {name} exists")
        else:
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"  database {name} created")


def manage(env: dict, *command: str) -> None:
    result = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"manage.py {' '.join(command)} failed")
    print(f"  manage.py {' '.join(command)}: ok")


def data_sizes(workspace) -> dict[str, int]:
    from tokens.models import AccessToken, Run
    from workspaces.models import AuditEvent

    return {
        "access tokens": AccessToken.objects.filter(workspace=workspace).count(),
        "runs": Run.objects.filter(workspace=workspace).count(),
        "audit events": AuditEvent.objects.filter(workspace=workspace).count(),
    }


# Pages -----------------------------------------------------------------------------------


def time_pages(slug: str, samples: int) -> dict[str, PageTiming]:
    """Server time of the long admin pages as the owner, through the whole middleware stack."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench import seed
    from workspaces.models import User

    # Not setup_test_environment(): its instrumented template rendering would slow the pages.
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(User.objects.get(email=seed.OWNER))
    from tokens.models import AccessToken

    # A token page: the token with the most runs of a sample (its latest 50 runs, its events).
    busiest = AccessToken.objects.filter(workspace__slug=slug).order_by("id")[1000].pk
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    year = f"start={today - timedelta(days=364)}&end={today}"
    pages = {
        "governance": f"/w/{slug}/admin/governance/",
        "governance, a year": f"/w/{slug}/admin/governance/?{year}",
        "audit log": f"/w/{slug}/admin/audit-log/",
        "access tokens": f"/w/{slug}/admin/access-tokens/",
        "tokens, idle": f"/w/{slug}/admin/access-tokens/?status=idle",
        "tokens, name search": f"/w/{slug}/admin/access-tokens/?q=refactor+12",
        "tokens, by last used": f"/w/{slug}/admin/access-tokens/?sort=-last_used",
        "token page": f"/w/{slug}/admin/access-tokens/{busiest}/",
    }
    timings = {}
    for name, path in pages.items():
        bad = 0
        for _ in range(2):  # warm: templates compiled, connection open, plans cached
            bad += client.get(path).status_code != 200
        elapsed = []
        for _ in range(samples):
            started = time.perf_counter()
            response = client.get(path)
            elapsed.append((time.perf_counter() - started) * 1000)
            bad += response.status_code != 200
        # One more, untimed, to count the queries (capturing them slows each one a little).
        with CaptureQueriesContext(connection) as captured:
            client.get(path)
        elapsed.sort()
        timings[name] = PageTiming(
            median_ms=statistics.median(elapsed),
            p95_ms=elapsed[max(0, round(0.95 * len(elapsed)) - 1)],
            max_ms=elapsed[-1],
            queries=len(captured.captured_queries),
            slowest_query_ms=max(float(q["time"]) for q in captured.captured_queries) * 1000,
            bad_statuses=bad,
        )
        print(f"  {name:<24} median {timings[name].median_ms:6.1f} ms")
    return timings


# Serving and load ------------------------------------------------------------------------
BARE = "bare Django floor"
APP_FLOOR = "GET /bench/floor"
ENDPOINTS = [
    # name, method, path, body, with a token
    ("GET /bench/floor", "GET", "/bench/floor", None, False),
    ("GET /api/v1/whoami", "GET", "/api/v1/whoami", None, True),
    ("POST /api/v1/runs", "POST", "/api/v1/runs", RUN_BODY, True),
]


@dataclass
class LoadTally:
    failed: int = 0  # failed requests during warm-ups (the measured ones are in each Load)
    created_runs: int = 0  # 201s for POST /api/v1/runs, warm-ups included
    load_average: float = 0.0  # just before the load started


def drive(env: dict, tmp: Path, plaintexts: list[str], warmup: int,
          duration: int) -> tuple[dict[str, Load], LoadTally]:
    """Serve the site and put each endpoint under load in turn: warm-up, then measure."""
    # The load-test tokens go to wrk in a file only this user can read, deleted with tmp.
    tokens_file = tmp / "tokens.lua"
    tokens_file.touch(mode=0o600)
    tokens_file.write_text("return {" + ", ".join(f'"{t}"' for t in plaintexts) + "}\n")
    loads: dict[str, Load] = {}
    tally = LoadTally()
    floor_env = {**env, "DJANGO_SETTINGS_MODULE": "bench.floor.settings"}
    with serve(floor_env, tmp, what=f"the bare Django floor, {WORKERS} sync workers",
               app="bench.floor.wsgi:application", health="/floor") as floor:
        step(f"load: wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS}, {warmup} s warm-up + {duration} s")
        tally.failed += wrk(floor.base + "/floor", "GET", None, None, warmup).errors
        loads[BARE] = measure(floor, floor.base + "/floor", "GET", None, None, duration,
                              database=False)
        print(f"  {BARE:<22} {loads[BARE].rps:8.1f} req/s")
    with serve(env, tmp) as server:
        check_api(server.base, plaintexts[0])
        tally.created_runs += 1
        step(f"load: wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS}, {warmup} s warm-up + "
             f"{duration} s each, {len(plaintexts)} tokens round-robin")
        tally.load_average = os.getloadavg()[0]
        for name, method, path, body, auth in ENDPOINTS:
            url, tokens = server.base + path, tokens_file if auth else None
            warm = wrk(url, method, tokens, body, warmup)
            loads[name] = measure(server, url, method, tokens, body, duration)
            tally.failed += warm.errors
            if method == "POST":
                tally.created_runs += sum(r.requests - r.non2xx for r in (warm, loads[name]))
            print(f"  {name:<22} {loads[name].rps:8.1f} req/s")
    return loads, tally




@dataclass
class Server:
    base: str
    pid: int

    def workers(self) -> list[int]:
        with open(f"/proc/{self.pid}/task/{self.pid}/children") as children:
            return [int(pid) for pid in children.read().split()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SYNC = ["--workers", str(WORKERS), "--worker-class", "sync"]
# The production serving model (config/gunicorn.py: uvicorn workers, config/asgi.py).
PRODUCTION = ["-c", "config/gunicorn.py", "--workers", str(WORKERS), "--access-logfile", "/dev/null"]
PRODUCTION_APP = "config.asgi:application"


@contextmanager
def serve(env: dict, tmp: Path, options: list[str] = SYNC, what: str = f"{WORKERS} sync workers",
          app: str = "config.wsgi:application", health: str = "/healthz"):
    """gunicorn on a free loopback port until the block ends, however it ends."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp / "gunicorn.log"
    step(f"gunicorn: {what} on 127.0.0.1:{port}")
    with open(log_path, "w") as log:
        # No access log: gunicorn writes none without --access-logfile (PRODUCTION sends the
        # one config/gunicorn.py asks for to /dev/null).
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", app, *options,
             "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_healthy(base + health, server, log_path)
        yield Server(base, server.pid)
    finally:
        server.terminate()  # the master stops its workers
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # its own session: master and workers
            server.wait()
        errors = log_path.read_text().strip()
        if errors:
            print("  gunicorn's log:\n    " + errors.replace("\n", "\n    "))


def wait_healthy(url: str, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited ({server.returncode}):\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    print(f"  {url.split('/', 3)[-1]}: 200")
                    return
        except OSError:  # not listening yet, or the workers still booting
            pass
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer /healthz within 30 s:\n{log_path.read_text()}")


def check_api(base: str, token: str) -> None:
    """One call of each kind by hand, so a misconfiguration fails loudly before the load."""
    headers = {"Authorization": f"Bearer {token}"}
    calls = [
        ("GET", "/bench/floor", None, {}, 200),
        ("GET", "/api/v1/whoami", None, headers, 200),
        ("POST", "/api/v1/runs", RUN_BODY.encode(),
         {**headers, "Content-Type": "application/json"}, 201),
    ]
    for method, path, body, call_headers, expected in calls:
        request = urllib.request.Request(base + path, data=body, headers=call_headers,
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        if status != expected:
            raise SystemExit(f"{method} {path}: expected {expected}, got {status}: {text[:500]}")


def measure(server: Server, url: str, method: str, tokens_file: Path | None, body: str | None,
            seconds: int, database: bool = True) -> Load:
    """wrk against url, and the CPU the workers and their database backends spent meanwhile."""
    workers, backends = server.workers(), database_backends() if database else []
    app_before, db_before = cpu_ms(workers), cpu_ms(backends)
    load = wrk(url, method, tokens_file, body, seconds)
    load.app_cpu_ms = (cpu_ms(workers) - app_before) / max(load.requests, 1)
    load.db_cpu_ms = (cpu_ms(backends) - db_before) / max(load.requests, 1)
    return load


def database_backends() -> list[int]:
    """The PostgreSQL processes serving the workers (persistent: CONN_MAX_AGE)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


CLOCK_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def cpu_ms(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far, in ms."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                # Fields after the command name (which may hold spaces): utime, stime are 14, 15.
                fields = stat.read().rpartition(")")[2].split()
        except FileNotFoundError:  # exited meanwhile
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks * CLOCK_TICK_MS


def wrk(url: str, method: str, tokens_file: Path | None, body: str | None,
        seconds: int) -> Load:
    command = [
        "wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--timeout", "5s",
        "-s", str(BENCH / "wrk.lua"), url, "--", method, str(tokens_file or "-"),
    ]
    if body is not None:
        command.append(body)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(command, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = re.search(r"^BENCH_RESULT (\{.*\})$", result.stdout, re.MULTILINE)
    if result.returncode != 0 or not found:
        raise SystemExit(f"wrk failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    load = Load(**json.loads(found.group(1)))
    spent = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    load.wrk_cpu_ms = spent * 1000 / max(load.requests, 1)
    return load


# Turns at scale (bench/scale.py) -----------------------------------------------------------

TURN_ENV = {"GATEWAY_DRAIN_SECONDS": "10"}


def turn_phases(env: dict, tmp: Path, token: str, slug: str, owner_email: str,
                which: tuple[str, ...] = ("scale", "ttfb"), turns: int = 0,
                seconds: int = 0) -> tuple:
    """bench/scale.py's phases through the production server (`make serve`'s gunicorn with
    config/gunicorn.py: uvicorn workers), each against a stand-in provider of its own."""
    from django.conf import settings
    from django.test import Client

    from bench import scale
    from workspaces.models import User

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(User.objects.get(email=owner_email))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    page = f"/w/{slug}/admin/access-tokens/"
    result_scale = result_ttfb = None
    if "scale" in which:
        turns, seconds = turns or scale.TURNS, seconds or scale.TURN_SECONDS
        with scale.standin(seconds) as provider, serve(
                {**env, **TURN_ENV, "CODEX_UPSTREAM_URL": provider,
                 "CODEX_UPSTREAM_API_KEY": "bench"}, tmp, PRODUCTION,
                f"{WORKERS} uvicorn workers (config/gunicorn.py)", app=PRODUCTION_APP) as server:
            step(f"turns at scale: {turns} open turns through /codex/api/responses")
            result_scale = scale.scale_phase(server.base, token, page, cookie, server.workers,
                                             turns, seconds)
    if "ttfb" in which:
        with scale.standin(0) as provider, serve(
                {**env, **TURN_ENV, "CODEX_UPSTREAM_URL": provider,
                 "CODEX_UPSTREAM_API_KEY": "bench"}, tmp, PRODUCTION,
                f"{WORKERS} uvicorn workers (config/gunicorn.py)", app=PRODUCTION_APP) as server:
            step("a turn's added time to first byte")
            result_ttfb = scale.ttfb_phase(server.base, provider, token)
    return result_scale, result_ttfb


def small_workspace(slug: str) -> tuple[str, str]:
    """A workspace of its own for `--only` turn phases: (a token's plaintext, the owner)."""
    from tokens import codec
    from tokens.models import AccessToken
    from workspaces.models import Membership, User, Workspace

    email = f"owner@{slug}.test"
    workspace, _ = Workspace.objects.get_or_create(slug=slug, defaults={
        "name": slug.title(), "allow_codex_local": True, "allow_access_tokens": True})
    user = User.objects.filter(email=email).first() or User.objects.create_user(
        email, secrets.token_urlsafe(16), name="Owner")
    Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": "owner"})
    plaintext = codec.generate()
    AccessToken.objects.create(workspace=workspace, created_by=user, name=f"bench {time.time()}",
                               digest=codec.digest(plaintext), last_characters=plaintext[-4:])
    return plaintext, email


# Requests that must take the same time whatever they name ------------------------------

MAIL_TIMING_SAMPLES = 60
MAIL_TIMING_SLUG = "mail-timing"
KNOWN_EMAIL = "known@mail-timing.test"


@dataclass
class MailTiming:
    """Median server answers (ms, through gunicorn) of each pair that must not tell apart what
    it names, and how many requests did not get the expected answer."""

    reset_known_ms: float
    reset_unknown_ms: float
    leak_live_ms: float
    leak_unknown_ms: float
    failed: int


def mail_timing_phase(env: dict, tmp: Path) -> MailTiming:
    """Password resets for an account's email and for an unknown one, and leak reports of a
    live token and of an unknown one, interleaved, through gunicorn (2 sync workers): each
    request only queues its mail, so each pair should take the same time (the contract: medians
    within 5 ms). The limits are raised for the phase; the mail stays queued (no worker runs)
    and is removed afterwards."""
    from console.models import OutboundMail
    from tokens import codec
    from tokens.models import AccessToken
    from workspaces.models import Membership, Plan, User, Workspace

    samples = MAIL_TIMING_SAMPLES
    workspace, _ = Workspace.objects.get_or_create(slug=MAIL_TIMING_SLUG, defaults={
        "name": "Mail timing", "plan": Plan.ENTERPRISE, "allow_codex_local": True,
        "allow_access_tokens": True})
    user = User.objects.filter(email=KNOWN_EMAIL).first() or User.objects.create_user(
        KNOWN_EMAIL, secrets.token_urlsafe(16), name="Known")
    Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": "owner"})
    live = []
    for n in range(samples + 5):
        plaintext = codec.generate()
        AccessToken.objects.create(workspace=workspace, created_by=user, name=f"leak {n}",
                                   digest=codec.digest(plaintext), last_characters=plaintext[-4:])
        live.append(plaintext)
    first_mail = (OutboundMail.objects.order_by("-id").values_list("id", flat=True).first() or 0)
    phase_env = {**env, "PASSWORD_RESET_EMAIL_LIMIT": "1000000",
                 "PASSWORD_RESET_ADDRESS_LIMIT": "1000000", "LEAK_REPORT_LIMIT": "1000000"}
    failed = 0
    times: dict[str, list[float]] = {"reset known": [], "reset unknown": [], "leak live": [],
                                     "leak unknown": []}
    try:
        with serve(phase_env, tmp) as server:
            host, port = server.base.removeprefix("http://").split(":")
            cookie, form_token = _reset_form(host, int(port))

            def reset(email: str) -> tuple[float, int]:
                body = urlencode({"csrfmiddlewaretoken": form_token, "email": email})
                return _timed(host, int(port), "POST", "/accounts/password_reset/", body, {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Cookie": f"csrftoken={cookie}"})

            def leak(token: str) -> tuple[float, int]:
                return _timed(host, int(port), "POST", "/api/v1/tokens/revoke",
                              json.dumps({"tokens": [token]}),
                              {"Content-Type": "application/json"})

            step(f"same work whatever they name: {samples} of each, interleaved, through "
                 f"{WORKERS} sync workers")
            for n in range(samples + 5):  # the first 5 of each warm up, untimed
                for name, (elapsed, status), expected in (
                    ("reset known", reset(KNOWN_EMAIL), 302),
                    ("reset unknown", reset(f"nobody-{n}@mail-timing.test"), 302),
                    ("leak live", leak(live[n]), 202),
                    ("leak unknown", leak(codec.generate()), 202),
                ):
                    failed += status != expected
                    if n >= 5:
                        times[name].append(elapsed)
    finally:
        OutboundMail.objects.filter(id__gt=first_mail).delete()
    medians = {name: statistics.median(values) for name, values in times.items()}
    for what, first, second in (("password reset", "reset known", "reset unknown"),
                                ("leak report", "leak live", "leak unknown")):
        print(f"  {what:<15} {first.split()[-1]:>8} {medians[first]:6.1f} ms   "
              f"{second.split()[-1]:>8} {medians[second]:6.1f} ms   "
              f"difference {medians[first] - medians[second]:+5.1f} ms (median)")
    if failed:
        print(f"  {failed} requests did not get the expected answer")
    return MailTiming(medians["reset known"], medians["reset unknown"], medians["leak live"],
                      medians["leak unknown"], failed)


FEDERATION_SAMPLES = 300
FEDERATION_SLUG = "bench-federation"
EXCHANGE_P50_TARGET_MS = 20


@dataclass
class FederationTiming:
    exchange_p50_ms: float
    exchange_p99_ms: float
    # The CPU one exchange cost this process (the client and the server: Python's share, the
    # database's not included), which other programs on the machine barely move; and the load
    # average then, as wall times grow with it.
    exchange_cpu_ms: float
    load_average: float
    run_exchanged_p50_ms: float
    run_exchanged_p99_ms: float
    run_ordinary_p50_ms: float
    run_ordinary_p99_ms: float
    failed: int


def _percentile(values: list[float], fraction: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(fraction * len(values)) - 1))]


def federation_phase(samples: int) -> FederationTiming:
    """The exchange with the issuer's keys cached, and the run start with an exchanged token
    beside an ordinary one, as server time (Django's test client in this process, DEBUG off).
    The stand-in issuer (tests/federation.py) is on loopback, which only DEBUG allows: DEBUG is
    on for the one request that fetches its keys, off for every timed one."""
    from django.conf import settings
    from django.test import Client
    from django.utils.timezone import now as django_now

    from tests.federation import StandinIssuer, github_claims, make_rule
    from tokens import codec
    from tokens.models import AccessToken, FederationRule, Run
    from workspaces.models import Membership, Plan, User, Workspace

    workspace, _ = Workspace.objects.get_or_create(slug=FEDERATION_SLUG, defaults={
        "name": "Keyless runs", "plan": Plan.ENTERPRISE, "allow_codex_local": True,
        "allow_access_tokens": True})
    user = User.objects.filter(email="ci@bench-federation.test").first() or \
        User.objects.create_user("ci@bench-federation.test", secrets.token_urlsafe(16), name="CI")
    membership, _ = Membership.objects.get_or_create(workspace=workspace, user=user,
                                                     defaults={"role": "owner"})
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    failed = 0
    times: dict[str, list[float]] = {"exchange": [], "run exchanged": [], "run ordinary": []}
    client = Client(HTTP_HOST="127.0.0.1", REMOTE_ADDR="198.51.100.7")
    with StandinIssuer() as issuer:
        # An earlier run's rule named another issuer (its port): set it aside.
        FederationRule.objects.live().filter(workspace=workspace).update(
            deleted_at=django_now(), enabled=False)
        rule = make_rule(membership, issuer=issuer.url, audience="https://bench.test",
                         name="release", subject="repo:acme/release:ref:refs/heads/main")
        assertions = [issuer.sign(github_claims(issuer.url, audience="https://bench.test"))
                      for _ in range(samples + 6)]

        def exchange(assertion: str) -> tuple[float, int, str]:
            started = time.perf_counter()
            response = client.post("/api/v1/oauth/token", urlencode({
                "grant_type": grant, "federation_rule_id": rule.pk, "assertion": assertion}),
                content_type="application/x-www-form-urlencoded")
            elapsed = (time.perf_counter() - started) * 1000
            token = response.json().get("access_token", "") if response.status_code == 200 else ""
            return elapsed, response.status_code, token

        debug = settings.DEBUG
        settings.DEBUG = True  # the first exchange fetches the loopback issuer's keys
        try:
            _, status, exchanged = exchange(assertions[0])
        finally:
            settings.DEBUG = debug
        failed += status != 200
        step(f"keyless runs: {samples} exchanges with the issuer's keys cached, then {samples} "
             "run starts with an exchanged token and with an ordinary one, interleaved")
        cpu = 0.0
        for n, assertion in enumerate(assertions[1:]):
            cpu_before = time.process_time()
            elapsed, status, _ = exchange(assertion)
            failed += status != 200
            if n >= 5:
                times["exchange"].append(elapsed)
                cpu += time.process_time() - cpu_before
        ordinary = codec.generate()
        AccessToken.objects.create(workspace=workspace, created_by=user, name="ordinary",
                                   digest=codec.digest(ordinary), last_characters=ordinary[-4:])
        for n in range(samples + 5):
            for name, token in (("run exchanged", exchanged), ("run ordinary", ordinary)):
                started = time.perf_counter()
                response = client.post("/api/v1/runs", RUN_BODY, content_type="application/json",
                                       HTTP_AUTHORIZATION=f"Bearer {token}")
                elapsed = (time.perf_counter() - started) * 1000
                failed += response.status_code != 201
                if n >= 5:
                    times[name].append(elapsed)
    recorded = Run.objects.filter(workspace=workspace, federation_rule=rule).count()
    failed += recorded < samples
    result = FederationTiming(
        _percentile(times["exchange"], .5), _percentile(times["exchange"], .99),
        cpu * 1000 / samples, os.getloadavg()[0],
        _percentile(times["run exchanged"], .5), _percentile(times["run exchanged"], .99),
        _percentile(times["run ordinary"], .5), _percentile(times["run ordinary"], .99), failed)
    verdict = "PASS" if result.exchange_p50_ms < EXCHANGE_P50_TARGET_MS else "FAIL"
    print(f"  exchange, keys cached   p50 {result.exchange_p50_ms:6.1f} ms   "
          f"p99 {result.exchange_p99_ms:6.1f} ms   (target p50 < {EXCHANGE_P50_TARGET_MS} ms: "
          f"{verdict})")
    print(f"  exchange, CPU of this process {result.exchange_cpu_ms:5.1f} ms each; load average "
          f"{result.load_average:.2f} on {len(os.sched_getaffinity(0))} CPUs")
    print(f"  run start, exchanged    p50 {result.run_exchanged_p50_ms:6.1f} ms   "
          f"p99 {result.run_exchanged_p99_ms:6.1f} ms")
    print(f"  run start, ordinary     p50 {result.run_ordinary_p50_ms:6.1f} ms   "
          f"p99 {result.run_ordinary_p99_ms:6.1f} ms")
    if failed:
        print(f"  {failed} requests did not get the expected answer")
    return result


def _timed(host: str, port: int, method: str, path: str, body: str,
           headers: dict) -> tuple[float, int]:
    """One request on a new connection: (ms until the whole answer was read, status)."""
    import http.client

    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        started = time.perf_counter()
        connection.request(method, path, body=body.encode(), headers=headers)
        response = connection.getresponse()
        response.read()
        return (time.perf_counter() - started) * 1000, response.status
    finally:
        connection.close()


def _reset_form(host: str, port: int) -> tuple[str, str]:
    """The CSRF cookie and the form's token of the password reset page."""
    with urllib.request.urlopen(f"http://{host}:{port}/accounts/password_reset/",
                                timeout=10) as response:
        cookie = re.search(r"csrftoken=([^;]+)", response.headers["Set-Cookie"]).group(1)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"',
                          response.read().decode()).group(1)
    return cookie, token


# Report ----------------------------------------------------------------------------------


def report(loads: dict[str, Load], pages: dict[str, PageTiming], other_errors: int,
           busy: float, nproc: int, scale_targets: list[tuple]) -> bool:
    """Print the tables and targets; True when a request failed."""
    bare, bare_cpu = loads[BARE].rps, loads[BARE].cpu_ms
    app = loads[APP_FLOOR].rps
    step("API under load (loopback, wrk)")
    print(f"  {'endpoint':<22} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
          f"{'x bare':>7} {'x app':>6}   {'CPU ms/request: app':>19} {'db':>5} {'wrk':>5}  "
          f"{'x bare':>7}")
    for name, load in loads.items():
        print(f"  {name:<22} {load.rps:8.1f} {load.p50_us / 1000:7.2f} {load.p99_us / 1000:7.2f} "
              f"{load.errors:6d} {load.rps / bare:7.2f} {load.rps / app:6.2f}   "
              f"{load.app_cpu_ms:19.2f} {load.db_cpu_ms:5.2f} {load.wrk_cpu_ms:5.2f}  "
              f"{bare_cpu / load.cpu_ms:7.2f}")
    # x bare: against the bare Django floor (a separate minimal project: SecurityMiddleware,
    # CommonMiddleware, one JSON view). x app: against the same trivial view served by the
    # console itself, through its whole middleware stack. The last column is what the first
    # would be on a machine doing nothing else: with every process CPU-bound, requests per
    # second go as 1 / CPU per request.
    print("  (x bare: vs the bare Django floor; x app: vs the console's own trivial view; right: "
          "the bare floor's CPU per request / this endpoint's)")
    if busy > nproc / 2:
        print(f"  note: load average {busy:.1f} on {nproc} CPUs: other programs were busy, so "
              "req/s vary from run to run; CPU per request varies much less.")
    step("pages (server time as owner)")
    print(f"  {'page':<24} {'median ms':>10} {'p95 ms':>8} {'max ms':>8} {'queries':>8} "
          f"{'slowest query ms':>17}")
    for name, timing in pages.items():
        print(f"  {name:<24} {timing.median_ms:10.1f} {timing.p95_ms:8.1f} "
              f"{timing.max_ms:8.1f} {timing.queries:8d} {timing.slowest_query_ms:17.1f}")

    def ratio(name: str) -> float:
        return loads[name].rps / bare

    def cpu_ratio(name: str) -> str:
        return f"(idle machine: {bare_cpu / loads[name].cpu_ms:.2f}x)"

    targets = [
        (f"whoami >= {WHOAMI_MIN_RATIO}x bare floor", f"{ratio('GET /api/v1/whoami'):.2f}x",
         ratio("GET /api/v1/whoami") >= WHOAMI_MIN_RATIO, cpu_ratio("GET /api/v1/whoami")),
        (f"runs >= {RUNS_MIN_RATIO}x bare floor", f"{ratio('POST /api/v1/runs'):.2f}x",
         ratio("POST /api/v1/runs") >= RUNS_MIN_RATIO, cpu_ratio("POST /api/v1/runs")),
        *(
            (f"{name} < {limit} ms (median)", f"{pages[name].median_ms:.1f} ms",
             pages[name].median_ms < limit, "")
            for name, limit in PAGE_TARGETS.items()
        ),
        *scale_targets,
    ]
    step("targets")
    for label, value, passed, note in targets:
        print(f"  {label:<44} {value:>10}  {'PASS' if passed else 'FAIL'}  {note}".rstrip())

    errors = sum(load.errors for load in loads.values()) + other_errors
    errors += sum(1 for load in loads.values() if load.requests == 0)
    bad_pages = sum(timing.bad_statuses for timing in pages.values())
    step("errors")
    print(f"  failed requests: {errors} under load (warm-up and lost runs included), "
          f"{bad_pages} page responses other than 200")
    return bool(errors or bad_pages)


if __name__ == "__main__":
    sys.exit(main())
