"""The console's production ASGI application (config/asgi.py) served by uvicorn in a thread of
the test process, on a free loopback port, against the test database; and a small HTTP client
that reads like Django's test client (`post(path, body, content_type, HTTP_X=...)`), its
responses streamed as they arrive."""

from __future__ import annotations

import http.client
import json
import threading
import time

import uvicorn

from .processes import free_port


class AsgiServer:
    def __init__(self):
        from config.asgi import Site

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.site = Site()
        self.server = uvicorn.Server(uvicorn.Config(
            self.site, host="127.0.0.1", port=self.port, lifespan="on", ws="none",
            proxy_headers=False, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)


def _header_name(key: str) -> str:
    if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        return key.replace("_", "-").title()
    return key.removeprefix("HTTP_").replace("_", "-").title()


class Response:
    """An answer as the tests read it: `status_code`, headers by name, `json()`, `content`,
    `streaming_content` (chunks as they come)."""

    def __init__(self, connection: http.client.HTTPConnection, answer: http.client.HTTPResponse):
        self.connection, self.answer = connection, answer
        self.status_code = answer.status
        self._content = None

    def __getitem__(self, name: str) -> str:
        value = self.answer.getheader(name)
        if value is None:
            raise KeyError(name)
        return value

    def get(self, name: str, default=None):
        return self.answer.getheader(name, default)

    @property
    def streaming_content(self):
        try:
            while chunk := self.answer.read1(65536):
                yield chunk
        finally:
            self.connection.close()

    @property
    def content(self) -> bytes:
        if self._content is None:
            self._content = b"".join(self.streaming_content)
        return self._content

    def json(self):
        return json.loads(self.content)


class Client:
    """`post`/`get` like Django's test client, over HTTP to `base`."""

    def __init__(self, base: str):
        self.host, self.port = base.removeprefix("http://").split(":")

    def request(self, method: str, path: str, body: bytes = b"", content_type: str | None = None,
                **meta) -> Response:
        connection = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
        headers = {_header_name(k): v for k, v in meta.items()}
        if content_type:
            headers["Content-Type"] = content_type
        connection.request(method, path, body=body or None, headers=headers)
        return Response(connection, connection.getresponse())

    def post(self, path, data=b"", content_type=None, **meta) -> Response:
        if isinstance(data, str):
            data = data.encode()
        return self.request("POST", path, data, content_type, **meta)

    def get(self, path, **meta) -> Response:
        return self.request("GET", path, **meta)
