"""A Codex CLI turn (`POST /codex/api/responses`), served on an event loop: a turn streams for as
long as the model writes, often minutes, and holds no thread meanwhile, so one process holds
thousands of them (config/asgi.py serves them; docs/architecture.md, "Serving").

The steps, each the gateway's (tokens/gateway.py):

1. the check (`turn_check`: method, throttle, token, announced size), in a small pool of
   threads, **before any of the body is read**: a refused token costs no body;
2. the body, read within its bound, decompressed and its model read (`turn_body`);
3. the turn goes to the provider through the process's pooled HTTP client (connections kept
   and reused: `Relay`);
4. only when the provider accepts it (2xx) is it recorded (`turn_record`, in the pool: the
   token is checked again as the run is written), while its events stream back as they come.
   A refusal is relayed only in shapes the CLI understands (`upstream_refusal`), and a stream
   that breaks midway ends with the Responses API's `error` event.

The same steps serve a turn under Django (the development server, the test client):
`responses` runs them on an event loop of the request's own, the synchronous steps in the
request's thread.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from . import demo_model, gateway
from .authn import Refusal
from .handlers import refused

logger = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
UPSTREAM_CONNECT_TIMEOUT = 10
# The CLI waits up to 300 s for the next event of a stream; so do we.
UPSTREAM_IDLE_TIMEOUT = 300

Call = Callable[..., Awaitable]


@dataclass
class Answer:
    """What the client hears: a status, headers, and a body (bytes, or chunks as they come)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    on_close: list = field(default_factory=list)


def _of(response: HttpResponse) -> Answer:
    """A response of the gateway's steps, with the header SecurityMiddleware would add."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    headers = [(k, v) for k, v in response.items()]
    return Answer(response.status_code, headers, response.content)


STREAM_HEADERS = [("Cache-Control", "no-store"),
                  ("X-Accel-Buffering", "no"),  # a proxy in front must not hold the events back
                  ("X-Content-Type-Options", "nosniff")]


def error_event(message: str) -> bytes:
    """The Responses API's `error` event: what the CLI reports when a stream breaks off."""
    data = {"type": "error", "code": "upstream_unavailable", "message": message, "param": None}
    return f"event: error\ndata: {json.dumps(data)}\n\n".encode()


class Relay:
    """The HTTP client to the model provider: one per event loop (one per worker process),
    its connections kept and reused."""

    def __init__(self):
        self.sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}

    def session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self.sessions.get(loop)
        if session is None or session.closed:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60,
                                               ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=UPSTREAM_CONNECT_TIMEOUT,
                                              sock_read=UPSTREAM_IDLE_TIMEOUT),
                auto_decompress=False, skip_auto_headers=("User-Agent",))
            self.sessions[loop] = session
        return session

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        session = self.sessions.pop(loop, None)
        if session is not None:
            await session.close()


RELAY = Relay()


async def turn(request, read_body: Callable[[int], Awaitable[bytes]], call: Call,
               relay: Relay) -> Answer:
    """Serve one turn (the steps above). `call(fn, *args)` runs a synchronous step off the event
    loop; `read_body(n)` reads up to n bytes of the body."""
    checked = await call(gateway.turn_check, request)
    if isinstance(checked, HttpResponse):
        return _of(checked)
    raw = await read_body(settings.CODEX_GATEWAY_MAX_BODY + 1)
    try:
        # A body of the usual size is decoded on the loop (well under a millisecond); a large
        # one in the pool.
        if len(raw) <= INLINE_BODY:
            body, model = gateway.turn_body(request, raw)
        else:
            body, model = await call(gateway.turn_body, request, raw)
    except Refusal as refusal:
        return _of(await call(refused, refusal, checked.ip or "unknown"))
    if not checked.upstream:  # the development demo model (DEBUG on, no provider)
        grant = await call(gateway.turn_record, request, checked, model)
        if isinstance(grant, HttpResponse):
            return _of(grant)
        return Answer(200, DEMO_HEADERS, stream=_demo(demo_model.events(body, grant), call))
    answer = await forward(relay, checked.upstream, body)
    if isinstance(answer, Answer):
        return answer
    # The provider took the turn: it is recorded while its first events already go out (the
    # record's durable commit is not added to the time to first byte); a refusal there (the
    # token revoked meanwhile, no database) ends the stream with the error event.
    record = asyncio.ensure_future(call(gateway.turn_record, request, checked, model))
    content_type = answer.headers.get("Content-Type", "text/event-stream")
    return Answer(answer.status, [("Content-Type", content_type), *STREAM_HEADERS],
                  stream=_events(answer, record), on_close=[answer.close])


INLINE_BODY = 256 * 1024
DEMO_HEADERS = [("Content-Type", "text/event-stream"), *STREAM_HEADERS]


async def forward(relay: Relay, url: str, body: bytes) -> aiohttp.ClientResponse | Answer:
    """Send the turn to the provider: its answer when it accepts the turn (2xx, the events still
    to come), else what the CLI hears instead."""
    try:
        answer = await relay.session().post(url, data=body, headers={
            "Authorization": f"Bearer {settings.CODEX_UPSTREAM_API_KEY}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        })
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
        return _of(gateway.upstream_unreachable(urlsplit(url).hostname or url))
    if 200 <= answer.status < 300:
        return answer
    try:
        detail = await answer.content.read(READ_CHUNK)
    except (aiohttp.ClientError, TimeoutError, OSError):
        detail = b""
    finally:
        answer.release()
    return _of(gateway.upstream_refusal(answer.status, answer.headers.get("Content-Type", ""),
                                        answer.headers.get("Retry-After"), detail))


def accepted(answer: aiohttp.ClientResponse, grant) -> Answer:
    """The provider accepted the turn and `grant` is what recording it gave: its events, or
    (revoked meanwhile, no database) the refusal, nothing recorded."""
    if isinstance(grant, HttpResponse):
        answer.close()
        return _of(grant)
    content_type = answer.headers.get("Content-Type", "text/event-stream")
    return Answer(answer.status, [("Content-Type", content_type), *STREAM_HEADERS],
                  stream=_events(answer), on_close=[answer.close])


def _refusal_of(record: asyncio.Future) -> str | None:
    """The message of a record that was refused (None: recorded)."""
    grant = record.result()
    if isinstance(grant, HttpResponse):
        return json.loads(grant.content)["error"]["message"]
    return None


async def _events(answer: aiohttp.ClientResponse,
                  record: asyncio.Future | None = None) -> AsyncIterator[bytes]:
    """The provider's events as they arrive; a stream that breaks off, or whose record was
    refused, ends with `error`."""
    ended = b"\n\n"  # the last two bytes relayed

    def error(message: str) -> bytes:
        # A partial event is ended first, so the error event is read as one of its own.
        return (b"" if ended.endswith(b"\n\n") else b"\n\n") + error_event(message)

    try:
        async for chunk in answer.content.iter_any():
            if record is not None and record.done():
                refusal, record = _refusal_of(record), None
                if refusal is not None:
                    yield error(refusal)
                    return
            ended = (ended + chunk)[-2:]
            yield chunk
        if record is not None:
            await asyncio.wait([record])
            if (refusal := _refusal_of(record)) is not None:
                yield error(refusal)
    except (aiohttp.ClientError, TimeoutError, OSError):
        logger.warning("The model provider's stream broke off", exc_info=True)
        yield error("The model provider's stream broke off. Try again.")
    finally:
        answer.close()


async def _demo(events, call: Call) -> AsyncIterator[bytes]:
    while (chunk := await call(next, events, None)) is not None:
        yield chunk


# Under the ASGI server ---------------------------------------------------------------------


class Steps:
    """The synchronous steps' threads: a few, each keeping its own database connection (a
    step is short: a check, a record). Sized by GATEWAY_CHECK_THREADS."""

    def __init__(self, threads: int):
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="turn-step")

    async def call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._run, fn, args)

    @staticmethod
    def _run(fn, args):
        try:
            return fn(*args)
        finally:
            # As at the end of a Django request: a connection that failed or aged is replaced.
            close_old_connections()


async def serve(scope, receive, send, steps: Steps, relay: Relay = RELAY) -> None:
    """Serve a turn as an ASGI application."""
    request = ASGIRequest(scope, io.BytesIO())
    disconnected = asyncio.Event()

    async def read_body(limit: int) -> bytes:
        parts, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected.set()
                break
            chunk = message.get("body", b"")
            parts.append(chunk)
            size += len(chunk)
            if size >= limit or not message.get("more_body", False):
                break
        return b"".join(parts)

    answer = await turn(request, read_body, steps.call, relay)
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    if answer.stream is None:
        await send({"type": "http.response.body", "body": answer.body})
        return

    async def watch() -> None:  # the client went away: stop relaying
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected.set()

    watcher = asyncio.create_task(watch())
    try:
        async for chunk in answer.stream:
            if disconnected.is_set():
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        watcher.cancel()
        await answer.stream.aclose()
        for close in answer.on_close:
            close()


# Under Django ------------------------------------------------------------------------------


@csrf_exempt
def responses(request) -> HttpResponse:
    """A turn served by Django (the development server, the test client): the same steps, the
    synchronous ones in this thread (Django keeps a thread's database connection apart from
    an event loop's), the provider's part on an event loop of this request's own."""
    checked = gateway.turn_check(request)
    if isinstance(checked, HttpResponse):
        return checked
    try:
        body, model = gateway.turn_body(request,
                                        request.read(settings.CODEX_GATEWAY_MAX_BODY + 1))
    except Refusal as refusal:
        return refused(refusal, checked.ip or "unknown")
    if not checked.upstream:
        grant = gateway.turn_record(request, checked, model)
        if isinstance(grant, HttpResponse):
            return grant
        return _django(Answer(200, DEMO_HEADERS), iter(demo_model.events(body, grant)))
    loop, relay = asyncio.new_event_loop(), Relay()

    def finish():
        loop.run_until_complete(relay.close())
        loop.close()

    try:
        answer = loop.run_until_complete(forward(relay, checked.upstream, body))
        if not isinstance(answer, Answer):
            answer = accepted(answer, gateway.turn_record(request, checked, model))
    except BaseException:
        finish()
        raise
    if answer.stream is None:
        finish()
        return _django(answer)
    stream = answer.stream

    def chunks():
        try:
            while True:
                try:
                    yield loop.run_until_complete(anext(stream))
                except StopAsyncIteration:
                    return
        finally:
            loop.run_until_complete(stream.aclose())
            finish()

    return _django(answer, chunks())


def _django(answer: Answer, chunks=None) -> HttpResponse:
    if chunks is None:
        response = HttpResponse(answer.body, status=answer.status)
    else:
        response = StreamingHttpResponse(chunks, status=answer.status)
    for name, value in answer.headers:
        response[name] = value
    return response
