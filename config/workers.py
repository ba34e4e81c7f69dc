"""The gunicorn worker of config/gunicorn.py: uvicorn's, set for the console.

- Turns drain: on SIGTERM (a stop, or a reload's old workers) the worker stops accepting, and
  the open turns go on to their end for up to `graceful_timeout` (GATEWAY_DRAIN_SECONDS); it
  tells the master it is alive meanwhile, so the master does not take a draining worker for a
  stuck one.
- `X-Forwarded-For` is the console's to read (TRUSTED_PROXY_HEADER, console/addresses.py), not
  the server's: uvicorn's own proxy-header rewriting is off, so REMOTE_ADDR is the peer.
- No WebSockets: the CLI's upgrade attempt reaches the gateway as plain HTTP, which answers 426.
- The access log names the path only, never the query string, secrets blanked out
  (console/accesslog.py).
"""

import asyncio
import logging

from uvicorn_worker import UvicornWorker

from console.accesslog import ScrubbingUvicornFilter


class ConsoleWorker(UvicornWorker):
    CONFIG_KWARGS = {"loop": "auto", "http": "auto", "ws": "none", "proxy_headers": False,
                     "server_header": False, "lifespan": "on"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.config.timeout_graceful_shutdown = self.cfg.graceful_timeout
        logging.getLogger("uvicorn.access").addFilter(ScrubbingUvicornFilter())

    async def _serve(self) -> None:
        alive = asyncio.create_task(self._heartbeat())
        try:
            await super()._serve()
        finally:
            alive.cancel()

    async def _heartbeat(self) -> None:
        while True:
            self.notify()
            await asyncio.sleep(1)
