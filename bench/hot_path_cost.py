"""What one call of the hot path costs in this process: `GET /api/v1/whoami` and
`POST /api/v1/runs` with a token that may act, served by Django's WSGI handler as gunicorn
serves them (the production settings: DEBUG off, the database and cache from DATABASE_URL and
CACHE_URL), against a workspace of its own made in that database.

    .venv/bin/python bench/hot_path_cost.py --calls 2000      # time per call (median, best of 5)
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/hot_path_cost.py --calls 0     # then --calls 300: the
                                                                # instructions per call are the
                                                                # difference / 300

Instruction counts (callgrind) are what this process executes, whatever else the machine runs;
the database's and the cache's own work, and the round trips to them, are not in them, but
are in the times. Prints figures; asserts nothing but that every call succeeded.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULTS = {
    "DEBUG": "false", "SECRET_KEY": "hot-path-cost-" + "x" * 40,
    "ALLOWED_HOSTS": "console.example.com", "EMAIL_URL": "smtp://127.0.0.1:25",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/bench_hot_path",
    "LOG_LEVEL": "WARNING",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per endpoint")
    parser.add_argument("--endpoint", choices=["whoami", "runs", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (the best counts)")
    args = parser.parse_args()
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", "--noinput", verbosity=0)
    from django.core.handlers.wsgi import WSGIHandler

    plaintext = make_token()
    handler = WSGIHandler()
    endpoints = ["whoami", "runs"] if args.endpoint == "both" else [args.endpoint]
    for endpoint in endpoints:
        call = caller(handler, endpoint, plaintext)
        for _ in range(20):  # warm: connections, prepared statements, caches
            call()
        if args.calls == 0:
            continue
        rounds = []
        for _ in range(args.repeat if args.calls >= 100 else 1):
            times = []
            for _ in range(args.calls):
                started = time.perf_counter_ns()
                call()
                times.append(time.perf_counter_ns() - started)
            rounds.append(statistics.median(times) / 1000)
        print(f"{endpoint}: {args.calls} calls, median {min(rounds):.0f} us per call "
              f"(best of {len(rounds)} rounds: {', '.join(f'{r:.0f}' for r in rounds)})")
    return 0


def make_token() -> str:
    """A workspace, an owner and a token that may act, made afresh; returns the token."""
    from django.utils.crypto import get_random_string

    from tokens import codec
    from tokens.models import AccessToken
    from workspaces.models import Membership, Role, User, Workspace

    tag = get_random_string(8).lower()
    workspace = Workspace.objects.create(name=f"Hot path {tag}", slug=f"hot-{tag}",
                                         plan="enterprise", allow_codex_local=True,
                                         allow_access_tokens=True)
    user = User.objects.create(email=f"owner-{tag}@hot.test", name="Owner")
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    plaintext = codec.generate()
    AccessToken.objects.create(workspace=workspace, created_by=user, name="hot path",
                               digest=codec.digest(plaintext), last_characters=plaintext[-4:])
    return plaintext


def caller(handler, endpoint: str, plaintext: str):
    method, path, status = {"whoami": ("GET", "/api/v1/whoami", "200"),
                            "runs": ("POST", "/api/v1/runs", "201")}[endpoint]
    body = b'{"client": "hot-path", "command": "bench"}' if method == "POST" else b""
    base = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "console.example.com", "SERVER_PORT": "443",
        "HTTP_HOST": "console.example.com", "wsgi.url_scheme": "https",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "198.51.100.7",
        "HTTP_AUTHORIZATION": f"Bearer {plaintext}", "HTTP_USER_AGENT": "hot-path-cost",
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "wsgi.version": (1, 0),
    }
    answered = []

    def start_response(line, headers):
        answered.append(line)

    def call():
        environ = dict(base, **{"wsgi.input": io.BytesIO(body)})
        response = handler(environ, start_response)
        b"".join(response)
        response.close()
        line = answered.pop()
        if not line.startswith(status):
            raise SystemExit(f"{endpoint} answered {line}")

    return call


if __name__ == "__main__":
    sys.exit(main())
