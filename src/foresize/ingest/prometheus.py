"""Live telemetry from Prometheus: page ``query_range`` and map series labels to columns.

Most clusters already keep usage history in Prometheus, so foresize reads it where it
lives, as KRR and VPA's history provider do. ``read_prometheus`` asks the HTTP API
(``/api/v1/query_range``) for one query over a window:

* **Paging.** Prometheus refuses a query that would return more than 11,000 points per
  series, so the window's evaluation grid (``start``, ``start + step``, ... ``<= end``)
  is cut into consecutive runs of at most ``max_points`` points, one request each. Every
  page starts one step after the previous page's last point, so the pages together
  evaluate exactly the grid one unlimited request would: nothing duplicated, nothing
  missing at a boundary.
* **Labels to columns.** ``mapping`` names, per canonical column (``workload``,
  ``metric``, ``tenant``, ``node``, ``phase``), the label that fills it; ``pod+container``
  joins several labels with ``/``. By default the workload is the first of ``pod``,
  ``container``, ``job+instance`` that every series carries, else the series' whole label
  set rendered ``{k=v,...}``; the metric is ``metric`` if given, else ``__name__``. Two
  series that would share a workload and metric are an ``InputError`` naming the label
  that tells them apart, never a silent merge.
* **Values.** Samples go through ``validate.canonicalize``, so ``NaN`` and ``±Inf``
  are dropped and counted like in any file.

* **Caps.** One read sends at most ``max_requests`` requests (planned before the first
  is sent), takes at most ``max_bytes`` of answers in all, and ends by an overall
  deadline (``deadline_s``, the CLI's ``--timeout``) however slowly a server answers; a
  watchdog closes the connection when the deadline passes, so a server that sends one
  byte every few seconds cannot hold the command forever. An answer that is not a
  Prometheus matrix (absurd timestamps, nesting thousands deep) is an ``InputError``.

Credentials come only from the environment (``FORESIZE_PROMETHEUS_TOKEN`` or the file
named by ``FORESIZE_PROMETHEUS_TOKEN_FILE``), never from a flag that lands in shell
history, and they are sent as a bearer token that is not forwarded on redirects.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from foresize import __version__
from foresize.core import secrets
from foresize.core.errors import InputError, InsufficientDataError, UsageError
from foresize.core.limits import Deadline, available_memory, env_count, env_size
from foresize.core.schemas import TELEMETRY_OPTIONAL, TS_DTYPE
from foresize.ingest.report import IngestReport
from foresize.ingest.validate import canonicalize
from foresize.ingest.watchdog import Watchdog, watched_opener

SCHEME = "prometheus://"
DEFAULT_PORT = 9090
TOKEN_ENV = "FORESIZE_PROMETHEUS_TOKEN"
TOKEN_FILE_ENV = "FORESIZE_PROMETHEUS_TOKEN_FILE"
MAX_POINTS = 11_000  # Prometheus' limit of points per series in one query_range answer
WORKLOAD_LABELS: tuple[tuple[str, ...], ...] = (("pod",), ("container",), ("job", "instance"))
LABEL_SEP = "+"  # --map workload=pod+container
VALUE_SEP = "/"  # ... gives workload "web-0/app"
NAME_LABEL = "__name__"
MAPPABLE = ("workload", "metric", *TELEMETRY_OPTIONAL)
_API_PATH = "/api/v1/query_range"
_SERIES = "__series"
_MAX_ERROR_CHARS = 300
_MAX_ERROR_BODY = 1 << 16  # an error answer is a sentence; more is not read
MAX_REQUESTS_ENV = "FORESIZE_PROMETHEUS_MAX_REQUESTS"
MAX_BYTES_ENV = "FORESIZE_PROMETHEUS_MAX_BYTES"
DEFAULT_MAX_REQUESTS = 1000  # 11 M points per series: a year every 3 s
DEFAULT_DEADLINE_S = 600.0
# answers parse into Python objects ~18 times their size: cap them at a share of free
# memory so the parsed samples take at most about a third of it
MEMORY_SHARE = 1 / 48
MIN_MAX_BYTES = 64 * 2**20
_READ_CHUNK = 1 << 16
# |epoch seconds| of a sample beyond this is no time Prometheus stores (year ~5000)
_MAX_EPOCH_S = 1e11


def default_max_bytes() -> int:
    """Cap on all answers of one read: ``$FORESIZE_PROMETHEUS_MAX_BYTES`` or a share of the
    memory free now.
    """
    return env_size(MAX_BYTES_ENV, max(MIN_MAX_BYTES, int(available_memory() * MEMORY_SHARE)))


@dataclass(slots=True)
class _Budget:
    """What one read may still take: bytes of answers and time."""

    max_bytes: int
    deadline: Deadline
    used: int = 0


def parse_prometheus_source(text: str) -> str | None:
    """The base ``http(s)://`` URL if ``text`` names a Prometheus server, else None.

    ``prometheus://HOST[:PORT][/prefix]`` means plain http (port 9090 when omitted);
    ``http://`` and ``https://`` URLs are taken as they are, because no other SOURCE is
    a URL. Credentials inside the URL are refused so they never reach a message or a
    shell history; the token belongs in the environment.
    """
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme not in ("prometheus", "http", "https"):
        return None
    parts = urllib.parse.urlsplit(text)
    if not parts.hostname:
        raise InputError(f"{text}: no host; expected {SCHEME}HOST:PORT")
    if parts.username is not None or parts.password is not None:
        raise InputError(
            f"{_without_userinfo(parts)}: credentials in the URL are not supported; "
            f"set {TOKEN_ENV} or {TOKEN_FILE_ENV} instead"
        )
    if parts.query or parts.fragment:
        raise InputError(f"{text}: a Prometheus URL takes no '?query' or '#fragment'")
    try:
        port = parts.port
    except ValueError as exc:
        raise InputError(f"{text}: bad port ({exc})") from exc
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if scheme == "prometheus":
        scheme, port = "http", port or DEFAULT_PORT
    netloc = host if port is None else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def _without_userinfo(parts: urllib.parse.SplitResult) -> str:
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def token_from_env() -> str | None:
    """The bearer token from ``FORESIZE_PROMETHEUS_TOKEN`` or the file its ``_FILE`` twin
    names (the form Kubernetes mounts service-account tokens in), else None.
    """
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return check_token(token, origin=TOKEN_ENV)
    path = os.environ.get(TOKEN_FILE_ENV, "").strip()
    if not path:
        return None
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise InputError(
            f"{TOKEN_FILE_ENV}={path}: cannot read the token file ({reason})"
        ) from None
    if not token:
        raise InputError(f"{TOKEN_FILE_ENV}={path}: the token file is empty")
    return check_token(token, origin=f"{TOKEN_FILE_ENV}={path}")


def check_token(token: str, *, origin: str) -> str:
    """``token`` if it can be sent as a header; else an error that never quotes it.

    The token is registered with ``core.secrets`` first, so no later message (a server
    echoing the header, a library exception) can print it either.
    """
    secrets.register(token)
    bad = secrets.first_bad_char(token)
    if bad is not None:
        kind = "a line break" if token[bad] in "\r\n" else (
            "a space" if token[bad] == " " else "a control or non-ASCII character")
        raise InputError(
            f"{origin}: the bearer token holds {kind} (character {bad + 1} of "
            f"{len(token)}); a token is one line of printable ASCII",
            hint="write the token alone on one line, without quotes or a trailing header",
        )
    return token


def plan_pages(start_ms: int, end_ms: int, step_ms: int, max_points: int) -> list[tuple[int, int]]:
    """Split the grid ``start, start + step, ... <= end`` into ``(first, last)`` runs of at
    most ``max_points`` points; each run starts one step after the previous one's last.
    """
    last = start_ms + (end_ms - start_ms) // step_ms * step_ms
    span = step_ms * max_points
    return [(first, min(first + span - step_ms, last)) for first in range(start_ms, last + 1, span)]


@dataclass(slots=True)
class _Samples:
    """Samples gathered over all pages, each series numbered by its first appearance."""

    labels: list[dict[str, str]] = field(default_factory=list)
    index: dict[tuple[tuple[str, str], ...], int] = field(default_factory=dict)
    series: list[int] = field(default_factory=list)
    ts_ms: list[int] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, result: Sequence[Any], *, name: str) -> None:
        """Append one page's ``matrix`` result."""
        for item in result:
            try:
                labels, pairs = item["metric"], item["values"]
                key = tuple(sorted(labels.items()))
                number = self.index.setdefault(key, len(self.labels))
                if number == len(self.labels):
                    self.labels.append(dict(labels))
                self.series.extend([number] * len(pairs))
                self.ts_ms.extend(_sample_ms(ts) for ts, _ in pairs)
                self.values.extend(str(value) for _, value in pairs)
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
                raise InputError(
                    f"{name}: the answer's result is not a Prometheus matrix "
                    f"({_one_line(str(exc)) or type(exc).__name__})"
                ) from None


def _sample_ms(ts: Any) -> int:
    """A sample's epoch seconds as whole milliseconds; absurd or non-numeric is an error."""
    seconds = float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else math.nan
    if not (math.isfinite(seconds) and abs(seconds) < _MAX_EPOCH_S):
        raise ValueError(f"sample timestamp {_one_line(repr(ts))[:40]} is not a time")
    return round(seconds * 1000)


def read_prometheus(
    url: str,
    query: str,
    *,
    start: datetime,
    end: datetime,
    step_s: float,
    mapping: Mapping[str, str] | None = None,
    metric: str | None = None,
    token: str | None = None,
    timeout_s: float = 30,
    max_points: int = MAX_POINTS,
    deadline_s: float = DEFAULT_DEADLINE_S,
    max_requests: int | None = None,
    max_bytes: int | None = None,
) -> tuple[pl.DataFrame, IngestReport]:
    """Read ``query`` from Prometheus at ``url`` over ``[start, end]`` every ``step_s``.

    ``timeout_s`` bounds one silence of the server, ``deadline_s`` the whole read;
    ``max_requests`` (default ``$FORESIZE_PROMETHEUS_MAX_REQUESTS`` or 1000) and
    ``max_bytes`` (default ``default_max_bytes()``) cap what it may cost.

    Returns canonical telemetry and its ``IngestReport`` (samples read, kept, dropped by
    reason; notes say how labels were mapped). Naive datetimes are taken as UTC.
    Raises ``InputError`` (one line naming ``url``) when the server cannot be reached,
    refuses the query or the token, or answers something that is not Prometheus', and
    ``InsufficientDataError`` when no series matched.
    """
    name = url.rstrip("/")
    if token is not None:
        token = check_token(token, origin=f"{name}: token")
    base = parse_prometheus_source(url)
    if base is None:
        raise InputError(f"{url}: not a Prometheus URL; expected {SCHEME}HOST:PORT or http(s)://")
    fields = _check_mapping(mapping or {})
    start_ms, end_ms, step_ms = _window(start, end, step_s, max_points, name=name)
    _check_requests(start_ms, end_ms, step_ms, max_points, max_requests, name=name)
    budget = _Budget(default_max_bytes() if max_bytes is None else max_bytes,
                     Deadline(deadline_s))
    pages = plan_pages(start_ms, end_ms, step_ms, max_points)
    samples = _Samples()
    for first, last in pages:
        form = {"query": query, "start": _seconds(first), "end": _seconds(last),
                "step": _seconds(step_ms)}
        data, warnings = _post(base + _API_PATH, form, token=token, timeout_s=timeout_s,
                               name=name, budget=budget)
        samples.add(_matrix(data, name=name), name=name)
        samples.warnings.extend(warnings)
    if not samples.labels:
        raise InsufficientDataError(
            f"{name}: no series matched {query!r} between {_iso(start_ms)} and {_iso(end_ms)}",
            hint="check the metric name and label matchers in the Prometheus UI, "
                 "or widen --since",
        )
    keys, notes = _series_keys(samples.labels, fields, metric, name=name)
    frame, report = canonicalize(_frame(samples, keys), source=name)
    report.notes.extend([
        f"query {query!r} from {_iso(start_ms)} to {_iso(end_ms)} every {step_ms / 1000:g} s: "
        f"{len(samples.labels):,} series in {len(pages):,} request(s)",
        *notes,
        *(f"Prometheus warning: {w}" for w in dict.fromkeys(samples.warnings)),
    ])
    return frame, report


def open_prometheus(
    source: str,
    *,
    query: str | None,
    since_s: float,
    until: datetime | None = None,
    step_s: float,
    mapping: Mapping[str, str] | None = None,
    metric: str | None = None,
    timeout_s: float = 30,
    deadline_s: float = DEFAULT_DEADLINE_S,
) -> tuple[pl.DataFrame, IngestReport]:
    """The CLI's door: the last ``since_s`` seconds up to ``until`` (default now).

    The window's start is rounded down to a multiple of the step, so two runs a few
    seconds apart evaluate the same grid (``--step 1m`` gives whole minutes) and a
    series sampled every ``step`` is read at its own sample times. The token comes
    from the environment (``token_from_env``).
    """
    if not query:
        raise InputError(f"{source}: a Prometheus source needs --query 'PROMQL'")
    if not (math.isfinite(since_s) and since_s > 0):
        raise UsageError(f"{source}: --since must be a positive duration, e.g. '7d'")
    end = _utc(until) if until is not None else datetime.now(UTC)
    step_ms = _step_ms(step_s, name=source)
    start_ms = (_epoch_ms(end) - round(since_s * 1000)) // step_ms * step_ms
    start = datetime.fromtimestamp(0, UTC) + timedelta(milliseconds=start_ms)
    return read_prometheus(source, query, start=start, end=end, step_s=step_s, mapping=mapping,
                           metric=metric, token=token_from_env(), timeout_s=timeout_s,
                           deadline_s=deadline_s)


# --- the window ------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _epoch_ms(moment: datetime) -> int:
    delta = _utc(moment) - datetime.fromtimestamp(0, UTC)
    return delta // timedelta(milliseconds=1)


def _seconds(ms: int) -> str:
    """Exact decimal seconds, as the API takes them (Prometheus keeps milliseconds)."""
    return str(Decimal(ms).scaleb(-3))


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(0, UTC) + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="seconds" if ms % 1000 == 0 else "milliseconds").replace(
        "+00:00", "Z"
    )


def _step_ms(step_s: float, *, name: str) -> int:
    """The step in whole milliseconds, the resolution Prometheus evaluates at."""
    if not (math.isfinite(step_s) and round(step_s * 1000) >= 1):
        raise InputError(f"{name}: the step must be at least 1 ms (got {step_s!r} s)")
    return round(step_s * 1000)


def _window(
    start: datetime, end: datetime, step_s: float, max_points: int, *, name: str
) -> tuple[int, int, int]:
    step_ms = _step_ms(step_s, name=name)
    if max_points < 1:
        raise InputError(f"{name}: max_points must be at least 1 (got {max_points})")
    start_ms, end_ms = _epoch_ms(start), _epoch_ms(end)
    if end_ms < start_ms:
        raise InputError(f"{name}: the window ends ({_iso(end_ms)}) before it starts "
                         f"({_iso(start_ms)})")
    return start_ms, end_ms, step_ms


def _check_requests(
    start_ms: int, end_ms: int, step_ms: int, max_points: int, cap: int | None, *, name: str
) -> None:
    """Refuse, before the first request, a window that needs more requests than the cap."""
    limit = env_count(MAX_REQUESTS_ENV, DEFAULT_MAX_REQUESTS) if cap is None else cap
    n_points = (end_ms - start_ms) // step_ms + 1
    n_pages = -(-n_points // max_points)
    if n_pages > limit:
        raise InputError(
            f"{name}: the window holds {n_points:,} steps of {step_ms / 1000:g} s per series, "
            f"{n_pages:,} requests of at most {max_points:,} points; the cap is {limit:,}",
            hint=f"use a larger --step or a shorter --since, or raise {MAX_REQUESTS_ENV}",
        )


# --- HTTP ----------------------------------------------------------------------------


def _read_body(response: http.client.HTTPResponse, budget: _Budget, *, name: str) -> bytes:
    """The answer's bytes, counted against the read's budget as they arrive."""
    parts: list[bytes] = []
    while chunk := response.read1(_READ_CHUNK):
        budget.used += len(chunk)
        if budget.used > budget.max_bytes:
            raise InputError(
                f"{name}: the answers exceed the cap of {budget.max_bytes:,} bytes",
                hint=f"narrow the query, use a larger --step or a shorter --since, or raise "
                     f"{MAX_BYTES_ENV} (e.g. 4G) on a machine with the memory for it",
            )
        parts.append(chunk)
    return b"".join(parts)


def _post(
    url: str, form: Mapping[str, str], *, token: str | None, timeout_s: float, name: str,
    budget: _Budget,
) -> tuple[Any, list[str]]:
    """POST a form (a long query would overflow a GET URL); return data and warnings."""
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(form).encode(), method="POST",
        headers={"Accept": "application/json", "User-Agent": f"foresize/{__version__}",
                 "Content-Type": "application/x-www-form-urlencoded"},
    )
    if token is not None:
        request.add_unredirected_header("Authorization", f"Bearer {token}")
    if budget.deadline.expired:
        raise _deadline_error(budget, name=name)
    wait = min(timeout_s, budget.deadline.remaining())
    try:
        with Watchdog(budget.deadline) as watchdog, \
                watched_opener(url, watchdog).open(request, timeout=wait) as response:
            body = _read_body(response, budget, name=name)
    except urllib.error.HTTPError as exc:
        raise _http_error(exc, name=name, token=token is not None) from None
    except urllib.error.URLError as exc:
        if budget.deadline.expired:
            raise _deadline_error(budget, name=name) from None
        raise _connection_error(exc.reason, name=name, timeout_s=wait) from None
    except (OSError, http.client.HTTPException) as exc:
        if budget.deadline.expired:
            raise _deadline_error(budget, name=name) from None
        raise _connection_error(exc, name=name, timeout_s=wait) from None
    if budget.deadline.expired:  # a cut connection can look like a complete short answer
        raise _deadline_error(budget, name=name)
    document = _json(body, name=name)
    del body
    if document.get("status") != "success":
        raise InputError(f"{name}: Prometheus answered an error: {_error_text(document)}")
    warnings = document.get("warnings") or []
    if not isinstance(warnings, list):
        warnings = [warnings]
    return document.get("data"), [_one_line(str(w)) for w in warnings]


def _deadline_error(budget: _Budget, *, name: str) -> InputError:
    return InputError(
        f"{name}: no complete answer within the --timeout of {budget.deadline.seconds:g} s "
        f"({budget.used:,} bytes received)",
        hint="narrow the query, use a larger --step or a shorter --since, or a longer "
             "--timeout",
    )


def _connection_error(reason: object, *, name: str, timeout_s: float) -> InputError:
    if isinstance(reason, TimeoutError):
        return InputError(f"{name}: no answer within {timeout_s:g} s",
                          hint="narrow the query, use a larger --step or a shorter --since")
    if isinstance(reason, ConnectionRefusedError):
        return InputError(f"{name}: connection refused; is Prometheus running and listening "
                          "there?")
    text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return InputError(f"{name}: cannot reach the server ({_one_line(text)})")


def _http_error(exc: urllib.error.HTTPError, *, name: str, token: bool) -> InputError:
    code = exc.code
    try:
        detail = _error_text(json.loads(exc.read(_MAX_ERROR_BODY)))
    except (ValueError, OSError, AttributeError, RecursionError, http.client.HTTPException):
        detail = _one_line(exc.reason) if isinstance(exc.reason, str) else ""
    if code in (401, 403):
        problem = ("the bearer token was refused" if token
                   else "the server wants a bearer token")
        return InputError(f"{name}: authentication failed (HTTP {code}): {problem}; set "
                          f"{TOKEN_ENV} or {TOKEN_FILE_ENV} to a token the server accepts")
    if code in (404, 405):
        return InputError(f"{name}: no Prometheus API at {_API_PATH} (HTTP {code}); check "
                          "the host, port and path prefix")
    if code in (400, 422):
        return InputError(f"{name}: query rejected (HTTP {code}): {detail}")
    return InputError(f"{name}: HTTP {code} from the server: {detail}")


def _error_text(document: Any) -> str:
    """Prometheus' own error sentence, on one line."""
    if isinstance(document, dict) and document.get("error"):
        return _one_line(str(document["error"]))
    return "no error text"


def _one_line(text: str) -> str:
    """Server text on one capped line, with any secret it echoes masked."""
    line = secrets.redact(" ".join(text.split()))
    return line if len(line) <= _MAX_ERROR_CHARS else line[: _MAX_ERROR_CHARS - 1] + "…"


def _json(body: bytes, *, name: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        document = None
    if not isinstance(document, dict) or "status" not in document:
        # mask secrets before cutting, so a cut cannot leave half a token unmasked
        snippet = _one_line(body[:4096].decode("utf-8", "replace"))[:60]
        raise InputError(
            f"{name}: the answer is not a Prometheus API response (got {snippet!r}); "
            "check that the URL points at the Prometheus server and its path prefix"
        )
    return document


def _matrix(data: Any, *, name: str) -> Sequence[Any]:
    kind = data.get("resultType") if isinstance(data, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    if kind != "matrix" or not isinstance(result, list):
        raise InputError(f"{name}: expected a range query result (matrix), got {kind!r}")
    return result


# --- labels to columns -----------------------------------------------------------------


def _check_mapping(mapping: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """{column: labels}; ``ts`` and ``value`` come from the samples, not from labels."""
    fields: dict[str, tuple[str, ...]] = {}
    for column, labels in mapping.items():
        if column not in MAPPABLE:
            raise UsageError(
                f"--map {column}={labels}: a Prometheus sample carries its own ts and value; "
                f"map labels to {', '.join(MAPPABLE)}"
            )
        parts = tuple(p.strip() for p in labels.split(LABEL_SEP))
        if not all(parts):
            raise UsageError(f"--map {column}={labels}: expected LABEL or LABEL+LABEL")
        fields[column] = parts
    return fields


def _series_keys(
    labels: Sequence[dict[str, str]],
    fields: dict[str, tuple[str, ...]],
    metric: str | None,
    *,
    name: str,
) -> tuple[pl.DataFrame, list[str]]:
    """One row per series: its number and its canonical columns, plus report notes."""
    workload = fields.get("workload") or _default_workload(labels)
    for column, wanted in fields.items():
        _require_labels(labels, column, wanted, name=name)
    keys = {
        _SERIES: list(range(len(labels))),
        "workload": [_join(s, workload) if workload else _render(s) for s in labels],
        "metric": _metrics(labels, fields.get("metric"), metric, name=name),
        **{c: [_join(s, fields[c]) for s in labels] for c in TELEMETRY_OPTIONAL if c in fields},
    }
    table = pl.DataFrame(keys, schema_overrides={_SERIES: pl.UInt32})
    _check_collisions(table, labels, workload, name=name)
    return table, _notes(labels, workload, fields, metric, table)


def _default_workload(labels: Sequence[dict[str, str]]) -> tuple[str, ...]:
    """The first preferred label group every series carries; () means the whole set."""
    for group in WORKLOAD_LABELS:
        if all(all(label in s for label in group) for s in labels):
            return group
    return ()


def _require_labels(
    labels: Sequence[dict[str, str]], column: str, wanted: tuple[str, ...], *, name: str
) -> None:
    """A mapped label no series carries is a typo, not missing data."""
    for label in wanted:
        if not any(label in s for s in labels):
            found = sorted({k for s in labels for k in s})
            raise InputError(
                f"{name}: --map {column}={LABEL_SEP.join(wanted)}: no series has label "
                f"{label!r} (labels: {', '.join(found) or 'none'})"
            )


def _join(series: Mapping[str, str], group: Iterable[str]) -> str | None:
    """``pod+container`` -> ``'web-0/app'``; None when a label is missing (dropped later)."""
    try:
        return VALUE_SEP.join(series[label] for label in group)
    except KeyError:
        return None


def _render(series: Mapping[str, str]) -> str:
    return "{" + ",".join(f"{k}={v}" for k, v in sorted(series.items()) if k != NAME_LABEL) + "}"


def _metrics(
    labels: Sequence[dict[str, str]],
    mapped: tuple[str, ...] | None,
    metric: str | None,
    *,
    name: str,
) -> list[str | None]:
    if mapped:
        return [_join(s, mapped) for s in labels]
    if metric is not None:
        return [metric] * len(labels)
    nameless = next((s for s in labels if NAME_LABEL not in s), None)
    if nameless is not None:
        raise InputError(
            f"{name}: series {_render(nameless)} has no metric name (the query applies a "
            "function or an aggregation); name the metric with --as-metric"
        )
    return [s[NAME_LABEL] for s in labels]


def _check_collisions(
    table: pl.DataFrame, labels: Sequence[dict[str, str]], workload: tuple[str, ...], *, name: str
) -> None:
    """Two series under one workload and metric would merge: name the label that splits them."""
    clash = (
        table.filter(pl.col("workload").is_not_null() & pl.col("metric").is_not_null())
        .group_by("workload", "metric", maintain_order=True)
        .agg(pl.col(_SERIES))
        .filter(pl.col(_SERIES).list.len() > 1)
    )
    if clash.is_empty():
        return
    first = clash.row(0, named=True)
    a, b = (labels[i] for i in first[_SERIES][:2])
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    if differ == [NAME_LABEL]:
        remedy = "drop --as-metric so each keeps its own metric name"
    else:
        label = next(k for k in differ if k != NAME_LABEL)
        remedy = f"add it to the key: --map workload={LABEL_SEP.join((*workload, label))}"
    raise InputError(
        f"{name}: {len(first[_SERIES]):,} series map to workload {first['workload']!r} and "
        f"metric {first['metric']!r}; they differ in label {', '.join(map(repr, differ))}; "
        f"{remedy}"
    )


def _notes(
    labels: Sequence[dict[str, str]],
    workload: tuple[str, ...],
    fields: dict[str, tuple[str, ...]],
    metric: str | None,
    table: pl.DataFrame,
) -> list[str]:
    metric_from = (
        f"label {LABEL_SEP.join(fields['metric'])}" if "metric" in fields
        else repr(metric) if metric is not None else NAME_LABEL
    )
    workload_from = f"label {LABEL_SEP.join(workload)}" if workload else "the whole label set"
    used = {NAME_LABEL, *workload, *(label for group in fields.values() for label in group)}
    if not workload:
        used |= {k for s in labels for k in s}
    left_out = sorted({k for s in labels for k in s} - used)
    notes = [f"workload = {workload_from}; metric = {metric_from}"]
    if left_out:
        notes.append(f"labels left out of the series key: {', '.join(left_out)}")
    unkeyed = table.filter(pl.col("workload").is_null() | pl.col("metric").is_null()).height
    if unkeyed:
        notes.append(f"{unkeyed:,} series lack a mapped label; their samples are dropped "
                     "as missing_key")
    return notes


def _frame(samples: _Samples, keys: pl.DataFrame) -> pl.DataFrame:
    """Long samples joined to their series' columns; values parsed ("NaN", "+Inf" too)."""
    frame = pl.DataFrame(
        {_SERIES: samples.series, "ts": samples.ts_ms, "value": samples.values},
        schema={_SERIES: pl.UInt32, "ts": pl.Int64, "value": pl.String},
    ).with_columns(
        (pl.col("ts") * 1000).cast(TS_DTYPE),
        pl.col("value").cast(pl.Float64, strict=False),
    )
    return frame.join(keys, on=_SERIES, how="left").drop(_SERIES)
