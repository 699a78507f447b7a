"""The Prometheus HTTP client cluster mode needs: a deadline, a size cap and parallel pages.

``ingest.prometheus`` reads one query for one user; cluster mode sends dozens of queries
for a whole cluster, so it needs what a single query does not:

* **One overall deadline** (``--timeout``): every request's socket timeout is the time
  left, and a batch that is not complete when the deadline passes is an ``InputError``
  naming the deadline, never a hang.
* **A size cap per answer**: the body is read in chunks and the read stops as soon as it
  passes ``max_response_bytes``, so a query that matches far more than planned costs at
  most the cap in memory (an error, not gigabytes of RSS).
* **Bounded concurrency**: at most ``concurrency`` requests are in flight; Prometheus
  evaluates them in parallel while this process parses the previous answers, each in the
  thread that fetched it. The default is 4, or this machine's cores if fewer: parsing
  threads beyond the cores only contend, and on a 2-core machine with Prometheus beside
  foresize, 2 in flight read 1,000 containers x 14 days in about 0.6 of the wall time 4
  took (medians of four runs each at load 5-9), for the same CPU (``bench_cluster.py
  --concurrency``).
* **A fast matrix parser**: a ``query_range`` answer is mostly ``[ts,"value"]`` pairs.
  Parsing millions of them with ``json.loads`` builds a Python object per number; here
  each series' label set is parsed as JSON and the pairs of all series are handed to
  polars' CSV reader as one buffer. The structure is checked (series counted twice), and
  anything unexpected falls back to ``json.loads``.

Requests are counted with the bytes they returned and the time spent waiting for them,
and range requests are logged (path and form), for the benchmark and the report.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

import polars as pl

from foresize import __version__
from foresize.core.errors import InputError, UsageError
from foresize.core.limits import Deadline
from foresize.core.units import human_bytes
from foresize.ingest.prometheus import (
    _connection_error,
    _error_text,
    _http_error,
    _json,
)
from foresize.ingest.watchdog import Watchdog, watched_opener

QUERY_PATH = "/api/v1/query"
RANGE_PATH = "/api/v1/query_range"
DEFAULT_MAX_RESPONSE_BYTES = 512 * 2**20
DEFAULT_CONCURRENCY = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                          else os.cpu_count() or 1)
_CHUNK = 1 << 20
_SERIES_HEAD = b'{"metric":'
_VALUES_HEAD = b'"values":['
_SERIES_BREAK = b",NaN,0],"  # becomes the line ``,NaN,0`` between two series' pairs
_PAIRS_TO_LINES = bytes.maketrans(b"]", b"\n")
T = TypeVar("T")


class _BufferedResponse(http.client.HTTPResponse):
    """A response read through a 1 MiB buffer instead of http.client's 8 KiB.

    Prometheus streams a range answer in chunks of a few KiB; through the default buffer
    every 8 KiB is a ``recv`` that releases the GIL, and with several requests in flight
    while answers are parsed, each release waits out a parsing thread's switch interval
    (the convoy effect): reading took 2.5 to 8 times curl's time for the same answers.
    """

    def __init__(self, sock: Any, debuglevel: int = 0, method: str | None = None,
                 url: str | None = None) -> None:
        super().__init__(sock, debuglevel, method, url)
        self.fp.close()
        self.fp = sock.makefile("rb", buffering=_CHUNK)


@dataclass(slots=True)
class Matrix:
    """A parsed range answer: label sets and long samples (``series`` indexes ``labels``)."""

    labels: list[dict[str, str]]
    samples: pl.DataFrame  # series: u32, ts_ms: i64, value: f64 (null where unparsable)
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Client:
    """Requests to one Prometheus under one deadline; counts requests and bytes."""

    base: str  # http(s)://host:port[/prefix]
    name: str  # what messages call the server (the URL as given)
    token: str | None = None
    timeout_s: float = 300.0
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    concurrency: int = DEFAULT_CONCURRENCY
    requests: int = 0
    bytes_read: int = 0
    wait_s: float = 0.0  # summed over requests: sent until the whole body is in
    parse_s: float = 0.0  # summed over range answers: parse_matrix
    log: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # range requests
    _deadline: float = field(default=0.0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise UsageError(f"--timeout must be positive, got {self.timeout_s:g} s")
        if self.max_response_bytes < 1:
            raise InputError(f"the response cap must be positive, got {self.max_response_bytes}")
        self._deadline = time.monotonic() + self.timeout_s

    def _left(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise self._late()
        return left

    def _late(self) -> InputError:
        return InputError(
            f"{self.name}: no complete answer within the --timeout of {self.timeout_s:g} s",
            hint="raise --timeout, narrow --namespace or use a larger --step",
        )

    def instant(self, query: str, *, at_s: float) -> list[tuple[dict[str, str], float]]:
        """An instant query's vector: (labels, value) per series."""
        body = self._post(QUERY_PATH, {"query": query, "time": f"{at_s:.3f}"})
        data = _data(_json(body, name=self.name), name=self.name)
        if not isinstance(data, dict) or data.get("resultType") != "vector":
            kind = data.get("resultType") if isinstance(data, dict) else None
            raise InputError(f"{self.name}: expected an instant vector for {query!r}, got {kind!r}")
        try:
            return [(dict(item["metric"]), float(item["value"][1])) for item in data["result"]]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InputError(f"{self.name}: the answer to {query!r} is not a vector "
                             f"({exc!r})") from exc

    def matrix(self, query: str, *, start_ms: int, end_ms: int, step_ms: int) -> Matrix:
        """A ``query_range`` answer for one page (the caller keeps it within the limit)."""
        form = {"query": query, "start": f"{start_ms / 1000:.3f}", "end": f"{end_ms / 1000:.3f}",
                "step": f"{step_ms / 1000:.3f}"}
        with self._lock:
            self.log.append((RANGE_PATH, form))
        body = self._post(RANGE_PATH, form)
        started = time.perf_counter()
        matrix = parse_matrix(body, name=self.name)
        with self._lock:
            self.parse_s += time.perf_counter() - started
        return matrix

    def run_all(self, calls: Sequence[Callable[[], T]]) -> list[T]:
        """Run ``calls`` with at most ``concurrency`` in flight; results in call order.

        The first failure (or the deadline) ends the batch: pending calls are cancelled
        and the error is raised.
        """
        if not calls:
            return []
        if self.concurrency <= 1 or len(calls) == 1:
            return [call() for call in calls]
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="prom")
        try:
            futures: list[Future[T]] = [pool.submit(call) for call in calls]
            done, pending = wait(futures, timeout=self._left(), return_when=FIRST_EXCEPTION)
            for future in done:
                error = future.exception()
                if error is not None:
                    raise error
            if pending:
                raise self._late()
            return [future.result() for future in futures]
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _post(self, path: str, form: Mapping[str, str]) -> bytes:
        url = self.base + path
        request = urllib.request.Request(
            url, data=urllib.parse.urlencode(form).encode(), method="POST",
            headers={"Accept": "application/json", "User-Agent": f"foresize/{__version__}",
                     "Content-Type": "application/x-www-form-urlencoded"},
        )
        if self.token is not None:
            request.add_unredirected_header("Authorization", f"Bearer {self.token}")
        left = self._left()
        sent = time.perf_counter()
        try:
            with Watchdog(Deadline(left)) as watchdog, \
                    watched_opener(url, watchdog, _BufferedResponse).open(
                        request, timeout=left) as response:
                body = self._read_capped(response)
        except urllib.error.HTTPError as exc:
            raise _http_error(exc, name=self.name, token=self.token is not None) from exc
        except urllib.error.URLError as exc:
            raise self._network(exc.reason) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise self._network(exc) from exc
        with self._lock:
            self.requests += 1
            self.bytes_read += len(body)
            self.wait_s += time.perf_counter() - sent
        return body

    def _network(self, reason: object) -> InputError:
        if isinstance(reason, TimeoutError) or time.monotonic() >= self._deadline:
            return self._late()
        return _connection_error(reason, name=self.name, timeout_s=self.timeout_s)

    def _read_capped(self, response: Any) -> bytes:
        """The body, read in chunks; past the cap the read stops with an error."""
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_response_bytes:
            raise self._too_large(int(declared))
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read(_CHUNK):
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_response_bytes:
                raise self._too_large(None)
        return b"".join(chunks)  # one copy: a growing bytearray copies on each resize

    def _too_large(self, size: int | None) -> InputError:
        what = "an answer" if size is None else f"an answer of {human_bytes(size)}"
        return InputError(
            f"{self.name}: {what} passed the cap of {human_bytes(self.max_response_bytes)}; "
            "narrow --namespace, use a larger --step or raise --max-response"
        )


def _data(document: dict[str, Any], *, name: str) -> Any:
    if document.get("status") != "success":
        raise InputError(f"{name}: Prometheus answered an error: {_error_text(document)}")
    return document.get("data")


def parse_matrix(body: bytes, *, name: str) -> Matrix:
    """A ``query_range`` answer as labels and samples, parsed fast where it can be."""
    head = body[:400]
    if b'"status":"success"' in head and b'"resultType":"matrix"' in head:
        fast = _fast_matrix(body)
        if fast is not None:
            return fast
    data = _data(_json(body, name=name), name=name)
    kind = data.get("resultType") if isinstance(data, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    if kind != "matrix" or not isinstance(result, list):
        raise InputError(f"{name}: expected a range query result (matrix), got {kind!r}")
    labels: list[dict[str, str]] = []
    series: list[int] = []
    ts_ms: list[int] = []
    values: list[str] = []
    try:
        for number, item in enumerate(result):
            labels.append(dict(item["metric"]))
            pairs = item["values"]
            series.extend([number] * len(pairs))
            ts_ms.extend(round(float(ts) * 1000) for ts, _ in pairs)
            values.extend(str(value) for _, value in pairs)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{name}: the answer's result is not a Prometheus matrix ({exc!r})") \
            from exc
    samples = pl.DataFrame(
        {"series": series, "ts_ms": ts_ms, "value": values},
        schema={"series": pl.UInt32, "ts_ms": pl.Int64, "value": pl.String},
    ).with_columns(pl.col("value").cast(pl.Float64, strict=False))
    warnings = [str(w) for w in (json.loads(body).get("warnings") or [])] if b'"warnings"' in \
        body[-2000:] else []
    return Matrix(labels, samples, warnings)


def _fast_matrix(body: bytes) -> Matrix | None:
    """Labels by ``json.loads``, pairs by polars' CSV reader; None if the shape surprises.

    Inside a JSON string a quote is escaped, so ``{"metric":`` and ``"values":[`` can only
    occur as structure; a values array holds numbers and quoted numbers, so its end is the
    first ``]]`` after it. The pairs of all series are joined into one buffer, a line
    ``,NaN,0`` between two series, and one ``translate`` deletes ``[`` and turns ``]`` into a
    newline: ``[t,"v"],[t,"v"]`` becomes the lines ``,t,"v"``, one copy and one byte-wise
    pass for the whole answer (a ``replace`` of ``],[`` and a count per series cost 40 %
    more). The CSV reader (several threads, no Python object per number) reads the quoted
    values as floats, Prometheus' ``NaN`` and ``+Inf`` included; a timestamp is never NaN,
    so the marker lines number the series (a cumulative count) and are then dropped.
    """
    labels: list[dict[str, str]] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    while (start := body.find(_SERIES_HEAD, pos)) >= 0:
        values_at = body.find(_VALUES_HEAD, start)
        end = body.find(b"]]", values_at)
        if values_at < 0 or end < 0:
            return None
        try:
            labels.append(json.loads(body[start + len(_SERIES_HEAD): values_at].rstrip(b", ")))
        except ValueError:
            return None
        spans.append((values_at + len(_VALUES_HEAD), end + 1))
        pos = end + 2
    if body.count(b'"values":') != len(labels):
        return None
    warnings: list[str] = []
    tail_at = body.rfind(b'"warnings":')
    if tail_at > pos:
        try:
            warnings = [str(w) for w in json.loads(body).get("warnings") or []]
        except ValueError:
            return None
    if not labels:
        return Matrix([], _empty_samples(), warnings)
    view = memoryview(body)
    text = (b"," + _SERIES_BREAK.join(view[first:last] for first, last in spans)).translate(
        _PAIRS_TO_LINES, b"[")
    try:
        frame = pl.read_csv(text, has_header=False, new_columns=["_", "ts_s", "value"],
                            schema_overrides={"_": pl.String, "ts_s": pl.Float64,
                                              "value": pl.Float64})
    except pl.exceptions.PolarsError:
        return None  # a value the CSV reader does not know: the slow path names it
    marker = pl.col("ts_s").is_nan()
    frame = frame.with_columns(marker.cum_sum().cast(pl.UInt32).alias("series"))
    if (frame["_"].null_count() != frame.height or frame["ts_s"].null_count()
            or frame["series"][-1] != len(spans) - 1):
        return None
    samples = frame.filter(~marker).select(
        "series",
        (pl.col("ts_s") * 1000).round().cast(pl.Int64).alias("ts_ms"),
        "value",
    )
    return Matrix(labels, samples, warnings)


def _empty_samples() -> pl.DataFrame:
    return pl.DataFrame(schema={"series": pl.UInt32, "ts_ms": pl.Int64, "value": pl.Float64})
