"""A real Prometheus on loopback for the ingest tests, and what stands around it.

* ``start_prometheus`` backfills OpenMetrics text with ``promtool tsdb
  create-blocks-from openmetrics`` and starts ``prometheus`` on a free loopback port,
  scraping the given targets every second;
* ``start_exporter`` serves gauges with prometheus-client for it to scrape;
* ``BearerProxy`` puts the server behind a path prefix and a bearer-token check, as an
  authenticating reverse proxy (kube-rbac-proxy, oauth2-proxy) does in a cluster;
* ``silent_port`` accepts connections and never answers, for the timeout case.

Every starter registers its own shutdown on an ``ExitStack``, so a failure halfway
through setup still stops what was started.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

INSTALL = "apt-get install -y --no-install-recommends prometheus"
LOOPBACK = "127.0.0.1"
# backfilled samples are years old; the default 15d retention would delete their blocks
RETENTION = "30y"
# a sample answers evaluations up to 30 s after it, less than the 57 s GenTD26 step, so a
# query on the trace's own grid returns each sample once and nothing past a series' end
LOOKBACK = "30s"
_READY_TIMEOUT_S = 30.0
SIGN_IN = b"<!doctype html><html><title>Sign in</title><body>Sign in to continue</body></html>"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def binaries() -> tuple[str, str]:
    """Paths of ``prometheus`` and ``promtool``; fail (never skip) when absent."""
    found = shutil.which("prometheus"), shutil.which("promtool")
    if not all(found):
        pytest.fail(f"the Prometheus tests need the prometheus and promtool binaries; "
                    f"install them with: {INSTALL}")
    return found  # type: ignore[return-value]


def free_port() -> int:
    """A loopback port nothing listens on (a closed one: connecting is refused)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Series:
    """One backfilled series: name, labels and (epoch seconds, value) samples."""

    name: str
    labels: Mapping[str, str]
    samples: Sequence[tuple[int, float]]


def _om_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)  # shortest text that reads back to the same double


def openmetrics(series: Iterable[Series]) -> str:
    """OpenMetrics text, one gauge family per name, samples in time order."""
    by_name: dict[str, list[Series]] = {}
    for item in series:
        by_name.setdefault(item.name, []).append(item)
    lines: list[str] = []
    for name, members in by_name.items():
        lines.append(f"# TYPE {name} gauge")
        for member in members:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(member.labels.items()))
            lines.extend(f"{name}{{{labels}}} {_om_value(v)} {ts}"
                         for ts, v in sorted(member.samples))
    return "\n".join([*lines, "# EOF", ""])


def _run(command: Sequence[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode:
        pytest.fail(f"{' '.join(command)} failed ({done.returncode}): "
                    f"{(done.stderr or done.stdout).strip()[-2000:]}")


def _config(targets: Sequence[str]) -> str:
    quoted = ", ".join(f"'{t}'" for t in targets)
    return (
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: exporter\n    static_configs:\n"
        f"      - targets: [{quoted}]\n"
    )


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited ({process.returncode}): "
                        f"{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), _NO_PROXY.open(f"{url}/-/ready", timeout=1) as answer:
            if answer.status == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"prometheus not ready after {_READY_TIMEOUT_S:g} s: {log.read_text()[-2000:]}")


def start_prometheus(
    stack: contextlib.ExitStack, workdir: Path, *, backfill: str, targets: Sequence[str]
) -> str:
    """Backfill ``backfill`` (OpenMetrics), start the server; return its http URL."""
    prometheus, promtool = binaries()
    storage = workdir / "data"
    storage.mkdir()
    source = workdir / "backfill.om"
    source.write_text(backfill)
    _run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(storage)])
    config = workdir / "prometheus.yml"
    config.write_text(_config(targets))
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={storage}",
             f"--web.listen-address={LOOPBACK}:{port}",
             f"--storage.tsdb.retention.time={RETENTION}", f"--query.lookback-delta={LOOKBACK}"],
            stdout=sink, stderr=subprocess.STDOUT,
        )
    stack.callback(_stop, process)
    url = f"http://{LOOPBACK}:{port}"
    _wait_ready(url, process, log)
    return url


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_exporter(stack: contextlib.ExitStack, gauges: Mapping[str, float]) -> str:
    """Serve gauge ``foresize_live_gpu_util_pct{pod=...}``; return ``HOST:PORT``."""
    from prometheus_client import CollectorRegistry, Gauge, start_http_server

    registry = CollectorRegistry()
    gauge = Gauge("foresize_live_gpu_util_pct", "GPU duty cycle of a test pod", ["pod"],
                  registry=registry)
    for pod, value in gauges.items():
        gauge.labels(pod=pod).set(value)
    server, _ = start_http_server(0, addr=LOOPBACK, registry=registry)
    stack.callback(server.server_close)
    stack.callback(server.shutdown)
    return f"{LOOPBACK}:{server.server_port}"


class BearerProxy(ThreadingHTTPServer):
    """Relays ``PREFIX/...`` to the upstream server when ``Authorization`` carries the
    token: no header gives 401, a wrong token 403. Outside the prefix it serves a
    sign-in page, as single-sign-on proxies do.
    """

    def __init__(self, upstream: str, *, prefix: str, token: str) -> None:
        super().__init__((LOOPBACK, 0), _ProxyHandler)
        self.upstream, self.prefix, self.token = upstream, prefix, token

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_port}{self.prefix}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: BearerProxy

    def do_GET(self) -> None:
        self._relay()

    def do_POST(self) -> None:
        self._relay()

    def _relay(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.path.startswith(self.server.prefix + "/"):
            self._reply(200, SIGN_IN, {"Content-Type": "text/html"})
            return
        given = self.headers.get("Authorization")
        if given is None:
            self._reply(401, b"Unauthorized\n", {"WWW-Authenticate": "Bearer"})
            return
        if given != f"Bearer {self.server.token}":
            self._reply(403, b"Forbidden\n")
            return
        request = urllib.request.Request(
            self.server.upstream + self.path.removeprefix(self.server.prefix),
            data=body or None, method=self.command,
            headers={"Content-Type": self.headers.get("Content-Type", "text/plain")},
        )
        try:
            with _NO_PROXY.open(request, timeout=30) as response:
                self._reply(response.status, response.read())
        except urllib.error.HTTPError as exc:
            self._reply(exc.code, exc.read())

    def _reply(self, status: int, data: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Length": str(len(data)), **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test output is not the place for access logs."""


def start_proxy(stack: contextlib.ExitStack, upstream: str, *, prefix: str, token: str) -> str:
    """Start a ``BearerProxy`` in a thread; return its URL (with the prefix)."""
    proxy = BearerProxy(upstream, prefix=prefix, token=token)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    stack.callback(proxy.server_close)
    stack.callback(proxy.shutdown)
    return proxy.url


def silent_port(stack: contextlib.ExitStack) -> int:
    """A loopback port that accepts connections (the kernel does) but never answers."""
    listener = socket.socket()
    stack.callback(listener.close)
    listener.bind((LOOPBACK, 0))
    listener.listen(8)
    return int(listener.getsockname()[1])
