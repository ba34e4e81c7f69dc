"""A stand-in model provider on loopback: answers POSTs with the Responses API's server-sent
events, and records what it was sent. Used by the gateway tests, the real-CLI tests and the
streaming benchmark."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = "Hello from the stand-in model."


class _Forgetful(list):
    """Requests not kept (a benchmark sends thousands)."""

    def append(self, item):
        pass


def sse(kind: str, **fields) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()


def answer_events(text: str = ANSWER) -> list[bytes]:
    item = {"type": "message", "id": "msg_standin", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}
    return [
        sse("response.created", response={"id": "resp_standin", "status": "in_progress",
                                          "output": []}),
        sse("response.output_item.done", output_index=0, item=item),
        sse("response.completed", response={"id": "resp_standin", "status": "completed",
                                            "output": [item]}),
    ]


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # the benchmark opens a thousand turns within seconds


class StandinModel:
    """`with StandinModel() as model:` serves on `model.url`; `model.requests` holds what came.

    A `status` other than 200 answers every turn with it and a JSON error saying `message`.
    `hold` (an Event) makes it send its first event, then wait for it before the rest; `seconds`
    spreads the events of each answer over that long (for the streaming benchmark).
    """

    def __init__(self, text: str = ANSWER, seconds: float = 0.0, status: int = 200,
                 message: str = "no", error_body: bytes | None = None,
                 error_type: str = "application/json", error_headers: dict | None = None,
                 break_after: int | None = None):
        """A non-200 `status` answers `error_body` (by default a JSON error whose message is
        `message`) as `error_type` with `error_headers`; `break_after` events, the stream
        breaks off (the connection is closed without the stream's end)."""
        self.text, self.seconds, self.status, self.message = text, seconds, status, message
        self.error_body, self.error_type = error_body, error_type
        self.error_headers, self.break_after = error_headers or {}, break_after
        self.requests: list[dict] = []
        self.hold: threading.Event | None = None
        self.on_request = None  # called as each request arrives, before the answer
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # each event goes out as it is written

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                model.requests.append({"path": self.path, "headers": dict(self.headers),
                                       "body": body})
                if model.on_request is not None:
                    model.on_request()
                if model.status != 200:
                    payload = model.error_body
                    if payload is None:
                        payload = json.dumps({"error": {"code": "upstream",
                                                        "message": model.message}}).encode()
                    self.send_response(model.status)
                    self.send_header("Content-Type", model.error_type)
                    for name, value in model.error_headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                events = answer_events(model.text)
                if model.seconds:
                    ticks = max(1, int(model.seconds))
                    events = events[:1] + [sse("response.output_text.delta", delta=".")
                                           for _ in range(ticks)] + events[1:]
                for n, event in enumerate(events):
                    if n == model.break_after:
                        half = event[: len(event) // 2]  # half an event, then nothing
                        self.wfile.write(f"{len(half):x}\r\n".encode() + half + b"\r\n")
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                    self.wfile.flush()
                    if n == 0 and model.hold is not None:
                        model.hold.wait(10)
                    if model.seconds and 0 < n < len(events) - 2:
                        time.sleep(model.seconds / max(1, int(model.seconds)))
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/responses"

    def __enter__(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":  # for the benchmark: a provider in a process of its own
    import argparse

    parser = argparse.ArgumentParser(description="A stand-in model provider on loopback.")
    parser.add_argument("--seconds", type=float, default=0.0, help="how long each answer lasts")
    args = parser.parse_args()
    with StandinModel(seconds=args.seconds) as model:
        model.requests = _Forgetful()
        print(model.url, flush=True)
        model.thread.join()  # until SIGTERM
