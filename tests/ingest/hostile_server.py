"""A malicious "Prometheus" on loopback that answers what a test scripts, then stops by itself.

The server socket listens before ``start`` returns (the kernel queues connections), so a
test needs no readiness wait. One thread serves requests one at a time, at most
``max_requests`` of them and for at most ``lifetime_s``: a test that fails half-way
cannot leave it running. A dripping answer stops too, at its own byte count or when the
client hangs up.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer

LOOPBACK = "127.0.0.1"
Reply = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    """Reads the request, then hands itself to the scripted reply."""

    server: HostileServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen_headers.append(dict(self.headers))
        with contextlib.suppress(OSError):  # the client hung up: that is its right
            self.server.reply(self)

    def do_GET(self) -> None:
        self.do_POST()

    def send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        """A whole answer."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class HostileServer(HTTPServer):
    """Serves ``reply`` to each request on a thread that ends by itself."""

    def __init__(self, reply: Reply, *, max_requests: int = 20, lifetime_s: float = 60) -> None:
        super().__init__((LOOPBACK, 0), Handler)
        self.reply = reply
        self.seen_headers: list[dict[str, str]] = []
        self.timeout = 0.05  # handle_request returns this often to look at the clock
        self.ends_at = time.monotonic() + lifetime_s
        self.max_requests = max_requests
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_port}"

    def _serve(self) -> None:
        served = 0
        try:
            while served < self.max_requests and not self.stopped.is_set() \
                    and time.monotonic() < self.ends_at:
                before = len(self.seen_headers)
                self.handle_request()
                served += len(self.seen_headers) - before
        finally:
            self.server_close()

    def __enter__(self) -> HostileServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)


def json_body(document: object) -> Reply:
    """Answer 200 with ``document`` as JSON."""
    data = json.dumps(document).encode()
    return lambda handler: handler.send(200, data)


def raw_body(data: bytes, status: int = 200, content_type: str = "application/json") -> Reply:
    """Answer ``status`` with these exact bytes."""
    return lambda handler: handler.send(status, data, content_type)


def echo_authorization(status: int) -> Reply:
    """Answer with the request's Authorization header quoted, as a careless server does."""

    def reply(handler: Handler) -> None:
        given = handler.headers.get("Authorization", "")
        if status == 200:
            handler.send(200, f"<html>you sent {given}</html>".encode(), "text/html")
        else:
            error = {"status": "error", "errorType": "bad_data",
                     "error": f"invalid header Authorization: {given}"}
            handler.send(status, json.dumps(error).encode())

    return reply


def drip(interval_s: float, n_bytes: int = 10_000) -> Reply:
    """Headers at once, then one byte of a long body every ``interval_s``."""

    def reply(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(n_bytes))
        handler.end_headers()
        for _ in range(n_bytes):
            if handler.server.stopped.wait(interval_s):
                return
            handler.wfile.write(b" ")
            handler.wfile.flush()

    return reply


def matrix(values: list[list[object]]) -> dict[str, object]:
    """A successful range-query answer of one series with these ``[ts, value]`` pairs."""
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "m", "pod": "p"}, "values": values}]}}
