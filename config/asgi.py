"""The ASGI entry point, as production serves it (config/gunicorn.py: uvicorn workers): one event
loop per process, routing by path.

- `POST /codex/api/responses` (Codex CLI turns): on the event loop (tokens/turns.py). A turn
  streams for minutes and holds no thread; its short synchronous steps (the check, the record)
  run in a small pool of threads (GATEWAY_CHECK_THREADS, default 4).
- The API (`/api/`, the rest of `/codex/`): config/wsgi.py's lean handler, in a pool of its own
  (API_THREADS, default 8).
- Pages (everything else): the full Django stack, in another pool (PAGE_THREADS, default 8),
  so a page never waits behind API calls and neither waits behind turns.

Each pool thread keeps its own database connection (CONN_MAX_AGE): at most GATEWAY_CHECK_THREADS
+ API_THREADS + PAGE_THREADS connections per process (docs/deploy.md sizes them).
"""

import asyncio
import os
import sys
import threading

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Threads give the event loop the interpreter back sooner (the default is 5 ms): a turn's
# chunk waits less behind a page being rendered. `make bench` measured it (docs/deploy.md).
sys.setswitchinterval(float(os.environ.get("SWITCH_INTERVAL", "0.0005")))

from a2wsgi import WSGIMiddleware  # noqa: E402
from django.db import connections  # noqa: E402

from config import wsgi  # noqa: E402  (sets Django up)
from console.errors import API_PREFIXES  # noqa: E402
from tokens import turns  # noqa: E402

TURNS_PATH = "/codex/api/responses"


class Site:
    """The ASGI application: turns on the loop, the API and the pages in pools of their own."""

    def __init__(self):
        self.steps = turns.Steps(int(os.environ.get("GATEWAY_CHECK_THREADS", "4")))
        self.api = WSGIMiddleware(wsgi.api, workers=int(os.environ.get("API_THREADS", "8")))
        self.pages = WSGIMiddleware(wsgi.site, workers=int(os.environ.get("PAGE_THREADS", "8")))

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path == TURNS_PATH and scope["method"] == "POST":
                return await turns.serve(scope, receive, send, self.steps)
            if path.startswith(API_PREFIXES):
                return await self.api(scope, receive, send)
            return await self.pages(scope, receive, send)
        if kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    # After the open turns ended (the drain): the provider's connections and
                    # the threads' database connections are closed.
                    await turns.RELAY.close()
                    await asyncio.get_running_loop().run_in_executor(None, self.close)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if kind == "websocket":  # not served: config/workers.py turns WebSockets off
            await send({"type": "websocket.close", "code": 1000})

    def close(self) -> None:
        """Close every pool thread's database connection, and the pools."""
        for pool in (self.steps.pool, self.api.executor, self.pages.executor):
            threads = pool._max_workers
            everyone = threading.Barrier(threads)

            def close_here(everyone=everyone):
                connections.close_all()
                everyone.wait(10)  # so that each thread of the pool runs one

            for done in [pool.submit(close_here) for _ in range(threads)]:
                done.result()
            pool.shutdown()


application = Site()
