"""One overall deadline over HTTP reads, however slowly the server sends.

A socket timeout bounds each silence, not the whole: a server that drips one byte every
few seconds keeps every read alive forever. The :class:`Watchdog` shuts down every socket
a request opens when the :class:`~foresize.core.limits.Deadline` passes, from a timer
thread, so the blocked read returns wherever urllib is (headers, body, a proxy's
CONNECT). Prometheus reads, cluster reads and dataset downloads share it. Standard
library only: ``datasets fetch`` loads no dataframe library to get a deadline.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import threading
import urllib.parse
import urllib.request

from foresize.core.limits import Deadline

_LOOPBACK_NAMES = ("localhost",)


def is_loopback(url: str) -> bool:
    """True for a URL on this machine (never sent through ``http_proxy``)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Watchdog:
    """Shuts down every socket a request opens when the deadline passes."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.sockets: list[socket.socket] = []
        self.fired = False
        self.lock = threading.Lock()
        self.timer = threading.Timer(max(deadline.remaining(), 0.001), self.fire)
        self.timer.daemon = True

    def __enter__(self) -> Watchdog:
        self.timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down at the deadline (now, if it has passed)."""
        with self.lock:
            self.sockets.append(sock)
            fired = self.fired
        if fired:
            self._shut(sock)

    def fire(self) -> None:
        """The timer's call: shut every socket down, and any opened from now on."""
        with self.lock:
            self.fired = True
            sockets = list(self.sockets)
        for sock in sockets:
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            return  # already closed


def watched_opener(
    url: str, watchdog: Watchdog,
    response_class: type[http.client.HTTPResponse] = http.client.HTTPResponse,
) -> urllib.request.OpenerDirector:
    """An opener whose connections ``watchdog`` can cut, reading through
    ``response_class``; ``http_proxy`` is honoured, except for a loopback server.
    """

    class Connection(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            watchdog.watch(self.sock)

    class SecureConnection(http.client.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            watchdog.watch(self.sock)

    Connection.response_class = response_class
    SecureConnection.response_class = response_class

    class Handler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(Connection, req)

    class SecureHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(SecureConnection, req, context=getattr(self, "_context", None))

    handlers: list[urllib.request.BaseHandler] = [Handler(), SecureHandler()]
    if is_loopback(url):
        handlers.append(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener(*handlers)
