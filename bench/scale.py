"""The gateway at scale (bench/run.py's turn phases; the contract's "At scale"):

- `scale`: 1,000 Codex CLI turns opened over ~10 s through /codex/api/responses, each streaming
  for 60 s from a stand-in provider (a process of its own); meanwhile `GET /api/v1/whoami`
  every 100 ms and the Access tokens page every second (each on a kept connection), their
  latencies; how many turns completed; the workers' memory before and with every turn open
  (per open turn); the database connections the server held.
- `ttfb`: the time to the first byte of a turn, through the console and straight to the same
  stand-in provider, interleaved, one at a time on kept connections: the console's added time.

The client is one asyncio loop (aiohttp) in this process. Figures are printed, not asserted.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TURNS = 1000
TURN_SECONDS = 60
OPEN_OVER = 10
# The probes' own load stays small beside the turns': a page costs tens of milliseconds of CPU.
WHOAMI_EVERY = 0.1
PAGE_EVERY = 1.0
TTFB_SAMPLES = 300

WHOAMI_TARGET_P99_MS = 50
PAGE_TARGET_P99_MS = 300
ADDED_TARGET_P50_MS = 3
ADDED_TARGET_P99_MS = 10


@dataclass
class Latencies:
    ms: list[float] = field(default_factory=list)
    errors: int = 0
    at: list[float] = field(default_factory=list)  # when each answer came (monotonic)

    def since(self, moment: float) -> Latencies:
        return Latencies([ms for ms, at in zip(self.ms, self.at, strict=True) if at >= moment])

    def percentile(self, p: float) -> float:
        if not self.ms:
            return float("nan")
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def summary(self) -> str:
        return (f"{len(self.ms)} answers, p50 {self.percentile(50):.1f} ms, p99 "
                f"{self.percentile(99):.1f} ms, max {max(self.ms, default=float('nan')):.1f} ms,"
                f" {self.errors} errors")


@dataclass
class ScaleResult:
    turns: int
    completed: int
    whoami_p50_ms: float
    whoami_p99_ms: float
    whoami_answers: int
    whoami_errors: int
    page_p50_ms: float
    page_p99_ms: float
    page_answers: int
    page_errors: int
    turn_ttfb_p50_ms: float
    turn_ttfb_p99_ms: float
    rss_before_mb: float
    rss_open_mb: float
    rss_per_turn_kb: float
    db_connections_max: int
    switch_interval: str


@dataclass
class TtfbResult:
    samples: int
    direct_p50_ms: float
    direct_p99_ms: float
    console_p50_ms: float
    console_p99_ms: float
    added_p50_ms: float
    added_p99_ms: float
    errors: int


@contextmanager
def standin(seconds: float):
    """The stand-in provider (bench/provider.py) in a process of its own: its URL."""
    process = subprocess.Popen([sys.executable, "-m", "bench.provider", "--seconds",
                                str(seconds)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(10)


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def db_connections() -> int:
    """Connections to this database other than this process's own."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                       " AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


def turn_request(token: str, n: int) -> tuple[bytes, dict]:
    body = json.dumps({"model": "bench", "stream": True, "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]})
    return body.encode(), {
        "Authorization": f"Bearer {token}", "Content-Type": "application/json",
        "User-Agent": "codex_exec/0.171.0 (bench)",
        "X-Codex-Turn-Metadata": json.dumps({"thread_id": f"bench-{time.time()}-{n}",
                                             "turn_id": "1", "model": "bench"}),
    }


async def _turn(session, url: str, token: str, n: int, ttfb: list[float]) -> bool:
    import aiohttp

    body, headers = turn_request(token, n)
    started = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=headers) as answer:
            if answer.status != 200:
                print(f"  turn {n}: {answer.status} {(await answer.read())[:200]!r}")
                return False
            seen = await answer.content.readany()
            ttfb.append((time.perf_counter() - started) * 1000)
            tail = seen[-200:]
            async for chunk in answer.content.iter_any():
                tail = (tail + chunk)[-400:]
                seen = tail
            return b"response.completed" in seen
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        print(f"  turn {n} failed: {error!r}")
        return False


async def _probe(session, url: str, headers: dict, every: float, out: Latencies,
                 done: asyncio.Event, expect: int = 200) -> None:
    import aiohttp

    while not done.is_set():
        started = time.perf_counter()
        try:
            async with session.get(url, headers=headers, allow_redirects=False) as answer:
                await answer.read()
                if answer.status == expect:
                    out.ms.append((time.perf_counter() - started) * 1000)
                    out.at.append(time.monotonic())
                else:
                    out.errors += 1
        except (aiohttp.ClientError, TimeoutError, OSError):
            out.errors += 1
        await asyncio.sleep(every)


async def _scale(base: str, token: str, page: str, cookie: str, workers, turns: int,
                 seconds: int) -> tuple[int, Latencies, Latencies, list[float], float, float, int]:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=seconds + 120)
    streams = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout)
    probes = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=2),
                                   timeout=aiohttp.ClientTimeout(total=30))
    whoami, pages, ttfb = Latencies(), Latencies(), []
    done = asyncio.Event()
    rss_before = rss_mb(workers())
    rss_open, connections = rss_before, await asyncio.to_thread(db_connections)
    probing = [
        asyncio.create_task(_probe(probes, base + "/api/v1/whoami",
                                   {"Authorization": f"Bearer {token}"}, WHOAMI_EVERY, whoami,
                                   done)),
        asyncio.create_task(_probe(probes, base + page, {"Cookie": f"sessionid={cookie}"},
                                   PAGE_EVERY, pages, done)),
    ]
    tasks = []
    opening = time.monotonic()
    for n in range(turns):
        tasks.append(asyncio.create_task(_turn(streams, base + "/codex/api/responses", token, n,
                                               ttfb)))
        await asyncio.sleep(OPEN_OVER / turns)
    print(f"  all {turns} turns sent {time.monotonic() - opening:.1f} s after the first", flush=True)
    opened = time.monotonic()
    gathered = asyncio.gather(*tasks)
    while not gathered.done():
        rss_open = max(rss_open, rss_mb(workers()))
        connections = max(connections, await asyncio.to_thread(db_connections))
        await asyncio.sleep(2)
    completed = sum(await gathered)
    done.set()
    await asyncio.gather(*probing)
    await streams.close()
    await probes.close()
    for name, probe in (("whoami", whoami), ("access tokens page", pages)):
        print(f"  {name} once every turn was open: {probe.since(opened + 2).summary()}")
    return completed, whoami, pages, ttfb, rss_before, rss_open, connections


def scale_phase(base: str, token: str, page: str, cookie: str, workers, turns: int = TURNS,
                seconds: int = TURN_SECONDS) -> ScaleResult:
    print(f"  {turns} turns opened over {OPEN_OVER} s, each streaming {seconds} s; whoami every "
          f"{WHOAMI_EVERY * 1000:.0f} ms and {page} every {PAGE_EVERY * 1000:.0f} ms meanwhile",
          flush=True)
    started = time.monotonic()
    completed, whoami, pages, ttfb, before, peak, connections = asyncio.run(
        _scale(base, token, page, cookie, workers, turns, seconds))
    ttfb_l = Latencies(ttfb)
    per_turn = (peak - before) * 1024 / max(turns, 1)
    print(f"  turns completed: {completed} of {turns} ({time.monotonic() - started:.0f} s); "
          f"first byte p50 {ttfb_l.percentile(50):.1f} ms, p99 {ttfb_l.percentile(99):.1f} ms")
    print(f"  whoami meanwhile: {whoami.summary()}")
    print(f"  access tokens page meanwhile: {pages.summary()}")
    print(f"  workers' memory: {before:.0f} MB before, {peak:.0f} MB with the turns open: "
          f"{per_turn:.1f} KB per open turn")
    print(f"  database connections held (at most): {connections}")
    return ScaleResult(
        turns=turns, completed=completed, whoami_p50_ms=whoami.percentile(50),
        whoami_p99_ms=whoami.percentile(99), whoami_answers=len(whoami.ms),
        whoami_errors=whoami.errors, page_p50_ms=pages.percentile(50),
        page_p99_ms=pages.percentile(99), page_answers=len(pages.ms), page_errors=pages.errors,
        turn_ttfb_p50_ms=ttfb_l.percentile(50), turn_ttfb_p99_ms=ttfb_l.percentile(99),
        rss_before_mb=before, rss_open_mb=peak, rss_per_turn_kb=per_turn,
        db_connections_max=connections,
        switch_interval=os.environ.get("SWITCH_INTERVAL", "0.0005"))


async def _first_byte(session, url: str, body: bytes, headers: dict) -> float | None:
    started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as answer:
        if answer.status != 200:
            return None
        await answer.content.readany()
        elapsed = (time.perf_counter() - started) * 1000
        await answer.read()
        return elapsed


async def _ttfb(base: str, provider: str, token: str, samples: int):
    import aiohttp

    direct, console, errors = [], [], 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as one, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as other:
        for n in range(samples + 20):  # the first 20 of each warm up, untimed
            body, headers = turn_request(token, n)
            through = await _first_byte(one, base + "/codex/api/responses", body, headers)
            straight = await _first_byte(other, provider, body,
                                         {"Content-Type": "application/json"})
            if through is None or straight is None:
                errors += 1
            elif n >= 20:
                console.append(through)
                direct.append(straight)
    return Latencies(direct), Latencies(console), errors


def ttfb_phase(base: str, provider: str, token: str, samples: int = TTFB_SAMPLES) -> TtfbResult:
    direct, console, errors = asyncio.run(_ttfb(base, provider, token, samples))
    result = TtfbResult(
        samples=len(console.ms), direct_p50_ms=direct.percentile(50),
        direct_p99_ms=direct.percentile(99), console_p50_ms=console.percentile(50),
        console_p99_ms=console.percentile(99),
        added_p50_ms=console.percentile(50) - direct.percentile(50),
        added_p99_ms=console.percentile(99) - direct.percentile(99), errors=errors)
    print(f"  first byte, one turn at a time on kept connections ({result.samples} each):")
    print(f"    straight to the provider  p50 {result.direct_p50_ms:6.2f} ms  p99 "
          f"{result.direct_p99_ms:6.2f} ms")
    print(f"    through the console       p50 {result.console_p50_ms:6.2f} ms  p99 "
          f"{result.console_p99_ms:6.2f} ms")
    print(f"    added by the console      p50 {result.added_p50_ms:6.2f} ms  p99 "
          f"{result.added_p99_ms:6.2f} ms  ({errors} errors)")
    return result


def targets(scale: ScaleResult | None, ttfb: TtfbResult | None) -> list[tuple]:
    found = []
    if scale is not None:
        found += [
            (f"{scale.turns} turns open: all complete", f"{scale.completed}",
             scale.completed == scale.turns, ""),
            (f"whoami p99 < {WHOAMI_TARGET_P99_MS} ms meanwhile", f"{scale.whoami_p99_ms:.1f} ms",
             scale.whoami_answers > 0 and scale.whoami_p99_ms < WHOAMI_TARGET_P99_MS
             and not scale.whoami_errors, f"({scale.whoami_answers} answers)"),
            (f"tokens page p99 < {PAGE_TARGET_P99_MS} ms meanwhile",
             f"{scale.page_p99_ms:.1f} ms",
             scale.page_answers > 0 and scale.page_p99_ms < PAGE_TARGET_P99_MS
             and not scale.page_errors, f"({scale.page_answers} answers)"),
        ]
    if ttfb is not None:
        found += [
            (f"added first byte p50 < {ADDED_TARGET_P50_MS} ms", f"{ttfb.added_p50_ms:.2f} ms",
             ttfb.added_p50_ms < ADDED_TARGET_P50_MS, ""),
            (f"added first byte p99 < {ADDED_TARGET_P99_MS} ms", f"{ttfb.added_p99_ms:.2f} ms",
             ttfb.added_p99_ms < ADDED_TARGET_P99_MS, ""),
        ]
    return found
