"""The benchmark's stand-in model provider: tests/standin_model.py's answers (the Responses
API's server-sent events, one delta a second for `--seconds`), served on an event loop
(aiohttp) so that a thousand open answers cost it little CPU beside the server measured.
`python -m bench.provider --seconds 60` prints its URL and serves until SIGTERM."""

import argparse
import asyncio
import sys
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.standin_model import answer_events, sse  # noqa: E402


def app(seconds: float) -> web.Application:
    async def responses(request: web.Request) -> web.StreamResponse:
        await request.read()
        answer = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        answer.enable_chunked_encoding()
        await answer.prepare(request)
        events = answer_events()
        ticks = max(1, int(seconds)) if seconds else 0
        await answer.write(events[0])
        for _ in range(ticks):
            await asyncio.sleep(seconds / ticks)
            await answer.write(sse("response.output_text.delta", delta="."))
        for event in events[1:]:
            await answer.write(event)
        await answer.write_eof()
        return answer

    application = web.Application()
    application.router.add_post("/v1/responses", responses)
    return application


async def main(seconds: float) -> None:
    runner = web.AppRunner(app(seconds), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}/v1/responses", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.0)
    asyncio.run(main(parser.parse_args().seconds))
