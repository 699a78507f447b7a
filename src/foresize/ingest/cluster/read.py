"""Cluster mode's reader: every workload container's usage history, pooled per owner.

``read_cluster`` discovers the pods in scope (``discovery``), then reads four usage
series per container over the window, each as the bare selector (the namespace batch's
matchers, ``container`` neither empty nor ``POD``) and folded here:

============== ===================================================================
metric          series, and how its raw series become one per workload container
============== ===================================================================
cpu_cores       ``container_cpu_usage_seconds_total``: per series, the increase between
                consecutive steps over their distance, as ``irate`` over two steps
                takes it, so a counter reset (a container restart) costs one sample and
                never a negative or extrapolated rate; a step only where the counter
                itself is present (no rate past a container's end)
mem_bytes       ``container_memory_working_set_bytes`` (what the OOM killer weighs)
gpu_util_pct    DCGM exporter ``DCGM_FI_DEV_GPU_UTIL`` (max over the container's GPUs)
gpu_mem_bytes   DCGM exporter ``DCGM_FI_DEV_FB_USED`` in MiB, summed over its GPUs
============== ===================================================================

Why bare selectors and not ``max by (namespace, pod, container)`` or ``irate`` in
Prometheus: on the Prometheus this project tests against (2.42), a range query's
aggregation or ``and`` costs ~30 times the selector itself (12 s against 0.4 s for 2,667
series x 360 steps on the benchmark's machine), while the answer has the same number of
points; cAdvisor's duplicate series per container (one per cgroup path and image) cost
label bytes, not points, and the fold's maximum removes them as the server's would. At
1,000 containers x 14 days the memory series alone cost Prometheus 47 CPU seconds as
``max by`` against 11 as the bare selector (``bench_cluster.py --shapes``). Raw samples
(an instant query of ``metric[window]``) cost it 6, but they are the scrapes, not one
value per step: the same only where the scrape interval is the step, and several times
the bytes where scrapes are more frequent, so the read stays on ``query_range``.
Namespaces are batched so one answer holds at most ``points_per_request`` points, each
batch's window is cut into pages within Prometheus' 11,000 points per series (a counter's
pages start one step early, so no rate is lost at a page edge), and the requests run a
few at a time under one deadline and a size cap per answer (``client``).

**Pooling.** All pods of one owner (every ReplicaSet hash of a Deployment, every run of
a CronJob, every restart) form one history per container and metric: at each step the
*largest* value over the owner's pods, because one request serves every replica and must
hold the busiest. The result is canonical telemetry whose ``workload`` is the identity
``namespace/Kind/name/container`` and ``tenant`` the namespace, plus a table of those
workload containers with their current requests and limits.

**At scale** (1,000 containers x 14 days at 1 minute is ~70 million samples) nothing is
made per sample in Python and no string column exists before the end: each answer is
parsed to numbers (``client``), its series are mapped to their workload container once,
and its samples are folded with ``np.fmax.at`` into one ``workloads x steps`` array per
metric (NaN: no sample; a counter's rates and a GPU sum are formed per series
first), in the worker thread that fetched it, so an answer is gone as
soon as it is pooled. The canonical frame is then built from those arrays already sorted
by workload, metric and time and without duplicates, and the rows canonicalisation would
drop (NaN, infinite, negative usage) are dropped and counted as it counts them, so the
frame is what ``ingest.validate.canonicalize`` would return without its sort and
duplicate search over tens of millions of rows.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from foresize.core.errors import DataDroppedWarning, InputError, InsufficientDataError, UsageError
from foresize.core.metrics import METRICS
from foresize.core.schemas import TS_DTYPE
from foresize.ingest.cluster.client import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RESPONSE_BYTES,
    Client,
    Matrix,
)
from foresize.ingest.cluster.discovery import Scope, discover, promql_string, regex_escape
from foresize.ingest.prometheus import (
    MAX_POINTS,
    _epoch_ms,
    _iso,
    parse_prometheus_source,
    plan_pages,
    token_from_env,
)
from foresize.ingest.report import IngestReport

DEFAULT_TIMEOUT_S = 300.0
Fold = Literal["max", "rate", "sum_mib"]
DEFAULT_POINTS_PER_REQUEST = 2_000_000  # ~55 MB of JSON: parsed in about a second
_EXCLUDE = 'container!="",container!="POD"'
USAGE: dict[str, tuple[str, Fold]] = {
    # metric: (the series it reads, how its series fold into one per workload container)
    "cpu_cores": ("container_cpu_usage_seconds_total", "rate"),
    "mem_bytes": ("container_memory_working_set_bytes", "max"),
    "gpu_util_pct": ("DCGM_FI_DEV_GPU_UTIL", "max"),
    "gpu_mem_bytes": ("DCGM_FI_DEV_FB_USED", "sum_mib"),
}
REQUIRED = ("cpu_cores", "mem_bytes")  # without either there is nothing to size
IDENTITY = ("namespace", "owner_kind", "owner_name", "container")


@dataclass(frozen=True, slots=True)
class ClusterRequest:
    """What to read: the server, the window, the scope and the limits of the read."""

    url: str
    since_s: float = 7 * 86400.0
    until: datetime | None = None
    step_s: float = 60.0
    scope: Scope = field(default_factory=Scope)
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    concurrency: int = DEFAULT_CONCURRENCY
    points_per_request: int = DEFAULT_POINTS_PER_REQUEST
    max_points: int = MAX_POINTS


@dataclass(slots=True)
class ClusterTelemetry:
    """Pooled usage per workload container, the containers themselves and the read's cost.

    ``containers`` has one row per workload container: the identity columns (``cluster``
    null without ``--cluster-label``), ``workload``
    (the identity as one string, the frame's key), ``pods`` (pods seen), ``replicas``
    (pods running at the window's end, at least 1), the current
    ``{cpu,memory,gpu}_{request,limit}`` (null where unset) and ``gpu_model`` (DCGM's
    ``modelName``, null without GPU series). ``timings`` says where the read's time went
    (discovery, the usage queries' wall time and, summed over requests, the time waiting
    for Prometheus, parsing, folding and pooling, then building the frame) and ``log`` holds every
    range request, so a slow read can be replayed with curl.
    """

    frame: pl.DataFrame
    containers: pl.DataFrame
    report: IngestReport
    start: datetime
    end: datetime
    step_s: float
    requests: int = 0
    bytes_read: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per part of the read
    log: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # range requests


def workload_id(parts: Sequence[str | None]) -> str:
    """``namespace/Kind/name/container`` (``cluster/`` first when a cluster label is used)."""
    return "/".join(p or "" for p in parts)


def read_cluster(request: ClusterRequest) -> ClusterTelemetry:
    """Discover the workloads in scope and read their pooled usage; see the module doc.

    Raises ``InputError`` (unreachable server, refused query, an answer over the cap, the
    deadline passed) or ``InsufficientDataError`` (no kube-state-metrics, an empty
    namespace, no cAdvisor usage), each one line naming the server.
    """
    base = parse_prometheus_source(request.url)
    if base is None:
        raise InputError(f"{request.url}: not a Prometheus URL; expected prometheus://HOST:PORT")
    if not (math.isfinite(request.since_s) and request.since_s > 0):
        raise UsageError(f"{request.url}: --since must be a positive duration, e.g. '14d'")
    step_ms = round(request.step_s * 1000)
    if step_ms < 1000:
        raise InputError(f"{request.url}: cluster mode needs a --step of at least 1s")
    name = request.url.rstrip("/")
    client = Client(base, name, token=token_from_env(), timeout_s=request.timeout_s,
                    max_response_bytes=request.max_response_bytes,
                    concurrency=request.concurrency)
    end_ms = _epoch_ms(request.until if request.until is not None else datetime.now(UTC))
    start_ms = (end_ms - round(request.since_s * 1000)) // step_ms * step_ms
    end_ms = start_ms + (end_ms - start_ms) // step_ms * step_ms
    scope = request.scope
    started = time.perf_counter()
    pods = discover(client, scope, start_s=start_ms / 1000, end_s=end_ms / 1000)
    timings = {"discovery": time.perf_counter() - started}
    keys = list(scope.keys)
    n_steps = (end_ms - start_ms) // step_ms + 1
    batches = _batches(pods, keys, scope, n_points=n_steps,
                       budget=request.points_per_request, max_points=request.max_points)
    # one point short of the limit: a counter's page starts a step early (module doc)
    pages = plan_pages(start_ms, end_ms, step_ms, request.max_points - 1)
    owners = pods.select([*keys, "pod", "container", "owner_kind", "owner_name"]).unique()
    pool = _Pool.of(owners, keys, start_ms=start_ms, step_ms=step_ms, n_steps=n_steps,
                    gap_ms=max(2 * step_ms, 60_000))
    calls: list[Callable[[], None]] = []
    for metric, (series, fold) in USAGE.items():
        for matcher in batches:
            query = f"{series}{{{matcher},{_EXCLUDE}}}"
            calls.extend(
                _page(client, pool, metric, query,
                      first - step_ms if fold == "rate" and first > start_ms else first,
                      last, step_ms)
                for first, last in pages)
    started = time.perf_counter()
    client.run_all(calls)
    timings.update({"queries": time.perf_counter() - started, "waiting (summed)": client.wait_s,
                    "parsing (summed)": client.parse_s, "folding (summed)": pool.fold_s,
                    "pooling (summed)": pool.pool_s})
    models = _gpu_models(client, batches, keys, window_s=(end_ms - start_ms) // 1000,
                         at_s=end_ms / 1000)
    missing = [m for m in REQUIRED if m not in pool.arrays]
    if len(missing) == len(REQUIRED):
        raise InsufficientDataError(
            f"{name}: no cAdvisor usage ({', '.join(USAGE[m][0] for m in REQUIRED)}) for the "
            "pods in scope: the kubelet's /metrics/cadvisor is not scraped by this Prometheus",
            hint="scrape cAdvisor, or read one query with --query 'PROMQL'")
    started = time.perf_counter()
    frame, report = pool.frame(source=name)
    timings["frame"] = time.perf_counter() - started
    containers = _containers(pods, keys, models)
    owner_keys = [*keys, "owner_kind", "owner_name"]
    n_owners = containers.select(pl.struct(owner_keys).n_unique()).item()
    report.notes.extend([
        f"cluster mode: {containers.height:,} workload containers of {n_owners:,} "
        f"owners in {pods['pod'].n_unique():,} pods, from {_iso(start_ms)} to {_iso(end_ms)} "
        f"every {step_ms / 1000:g} s: {client.requests:,} requests, "
        f"{client.bytes_read:,} bytes",
        *(f"no {USAGE[m][0]} series: {m} is not sized" for m in USAGE if m not in pool.arrays),
        *(f"Prometheus warning: {w}" for w in pool.warnings),
    ])
    origin = datetime.fromtimestamp(0, UTC)
    return ClusterTelemetry(frame, containers, report,
                            origin + timedelta(milliseconds=start_ms),
                            origin + timedelta(milliseconds=end_ms), step_ms / 1000,
                            client.requests, client.bytes_read, timings, client.log)


def _page(client: Client, pool: _Pool, metric: str, query: str, first: int, last: int,
          step_ms: int) -> Callable[[], None]:
    """One page's request, parsed and pooled in the thread that sent it."""
    def call() -> None:
        matrix = client.matrix(query, start_ms=first, end_ms=last, step_ms=step_ms)
        pool.add(metric, USAGE[metric][1], matrix)
    return call


def _batches(pods: pl.DataFrame, keys: list[str], scope: Scope, *, n_points: int, budget: int,
             max_points: int) -> list[str]:
    """Label matchers, one per request batch: whole namespaces while the scope keeps every
    pod of them, else the pods by name; each batch at most ``budget`` points a page.
    """
    per_page = min(n_points, max_points)
    limit = max(1, budget // max(per_page, 1))
    filtered = bool(scope.owner_kinds or scope.selector)
    groups = (pods.group_by(keys, maintain_order=True)
              .agg(pl.col("pod").unique(maintain_order=True),
                   pl.struct("pod", "container").n_unique().alias("n"))
              .sort(keys))
    matchers: list[str] = []
    names: list[tuple[dict[str, str], int]] = []
    for row in groups.iter_rows(named=True):
        where = {k: row[k] for k in keys}
        if filtered or row["n"] > limit:
            pods_of = list(row["pod"])
            size = max(1, limit * len(pods_of) // max(row["n"], 1))
            for i in range(0, len(pods_of), size):
                chunk = "|".join(regex_escape(p) for p in pods_of[i:i + size])
                matchers.append(",".join([*(f'{k}="{promql_string(v)}"' for k, v in where.items()),
                                          f'pod=~"{promql_string(chunk)}"']))
        else:
            names.append((where, row["n"]))
    batch: list[dict[str, str]] = []
    total = 0
    for where, n in [*names, ({}, 0)]:
        if batch and (not where or total + n > limit):
            matchers.append(_namespaces_matcher(batch, keys))
            batch, total = [], 0
        if where:
            batch.append(where)
            total += n
    return matchers


def _namespaces_matcher(batch: list[dict[str, str]], keys: list[str]) -> str:
    parts = []
    for key in keys:
        values = sorted({regex_escape(w[key]) for w in batch})
        parts.append(f'{key}=~"{promql_string("|".join(values))}"')
    return ",".join(parts)


def _gpu_models(client: Client, batches: list[str], keys: list[str], *, window_s: int,
                at_s: float) -> pl.DataFrame:
    """DCGM's ``modelName`` per pod and container (the GPU type a decision is made on)."""
    by = ",".join([*keys, "pod", "container", "modelName"])
    calls = [
        (lambda m=matcher: client.instant(
            f"count by ({by}) (last_over_time(DCGM_FI_DEV_GPU_UTIL{{{m},{_EXCLUDE}}}"
            f"[{max(window_s, 1)}s]))", at_s=at_s))
        for matcher in batches
    ]
    rows = [{**{k: labels.get(k) for k in [*keys, "pod", "container"]},
             "gpu_model": labels.get("modelName")}
            for answer in client.run_all(calls) for labels, _ in answer]
    schema = dict.fromkeys([*keys, "pod", "container", "gpu_model"], pl.String)
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(
        schema=schema)


@dataclass(slots=True)
class _Pool:
    """Usage folded per workload container onto the step grid (module doc, "At scale").

    ``slots`` maps a series' (namespace keys, pod, container) to its workload container's
    row; ``names`` and ``tenants`` are the rows' identity strings and namespaces.
    """

    labels: tuple[str, ...]  # the series labels a slot is keyed by
    slots: dict[tuple[str | None, ...], int]
    names: list[str]
    tenants: list[str]
    start_ms: int
    step_ms: int
    n_steps: int
    gap_ms: int  # the longest distance a counter's rate is taken over (irate's range)
    arrays: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)
    dropped: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    fold_s: float = 0.0  # series to workload rows, a counter's rates, GPU sums
    pool_s: float = 0.0  # np.fmax.at
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(cls, owners: pl.DataFrame, keys: list[str], *, start_ms: int, step_ms: int,
           n_steps: int, gap_ms: int) -> _Pool:
        """An empty pool for the pods' containers (``owners``: keys, pod, container, owner)."""
        identity = [*keys[:-1], *IDENTITY]
        rows = owners.with_columns(
            pl.concat_str([pl.col(c).fill_null("") for c in identity], separator="/")
            .alias("workload"))
        names = sorted(set(rows["workload"].to_list()))
        row_of = {n: i for i, n in enumerate(names)}
        slots: dict[tuple[str | None, ...], int] = {}
        tenants = [""] * len(names)
        for values in rows.select([*keys, "pod", "container", "workload"]).iter_rows():
            slots[values[:-1]] = row_of[values[-1]]
            tenants[row_of[values[-1]]] = values[len(keys) - 1]
        return cls((*keys, "pod", "container"), slots, names, tenants, start_ms, step_ms,
                   n_steps, gap_ms)

    def add(self, metric: str, fold: Fold, matrix: Matrix) -> None:
        """Fold one answer in: the largest value per workload container and step."""
        started = time.perf_counter()
        keyed = [tuple(labels.get(k) for k in self.labels) for labels in matrix.labels]
        rows = np.fromiter((self.slots.get(key, -1) for key in keyed), dtype=np.int64,
                           count=len(keyed))
        samples = matrix.samples
        series = samples["series"].to_numpy()
        ts = samples["ts_ms"].to_numpy()
        values = samples["value"].to_numpy()
        if fold == "rate":
            series, ts, values = _rates(series, ts, values, gap_ms=self.gap_ms)
        elif fold == "sum_mib":
            series, ts, values = _gpu_sums(keyed, series, ts, values)
        row = rows[series]
        col = (ts - self.start_ms) // self.step_ms
        nan = np.isnan(values)
        finite = np.isfinite(values)
        keep = (row >= 0) & finite & (col >= 0) & (col < self.n_steps)
        # flat cells of the C-ordered array: ufunc.at on one index array is ~5x faster
        # than on a (row, col) pair in numpy 2
        cells = row[keep] * self.n_steps + col[keep]
        parsed = time.perf_counter()
        with self._lock:
            self.fold_s += parsed - started
            if matrix.labels:
                target = self.arrays.get(metric)
                if target is None:
                    target = self.arrays[metric] = np.full((len(self.names), self.n_steps),
                                                           np.nan)
                np.fmax.at(target.reshape(-1), cells, values[keep])
            self.dropped["nan_value"] += int(np.count_nonzero(nan & (row >= 0)))
            self.dropped["infinite_value"] += int(np.count_nonzero(~finite & ~nan & (row >= 0)))
            self.warnings.extend(matrix.warnings)
            self.pool_s += time.perf_counter() - parsed

    def frame(self, *, source: str) -> tuple[pl.DataFrame, IngestReport]:
        """The canonical frame, sorted by workload, metric and ts, and its report."""
        row_parts: list[npt.NDArray[np.int64]] = []
        metric_parts: list[npt.NDArray[np.int64]] = []
        col_parts: list[npt.NDArray[np.int64]] = []
        value_parts: list[npt.NDArray[np.float64]] = []
        metrics = sorted(self.arrays)
        negative = 0
        for row in range(len(self.names)):
            for code, metric in enumerate(metrics):
                line = self.arrays[metric][row]
                cols = np.flatnonzero(~np.isnan(line))
                if METRICS[metric].nonnegative:
                    below = line[cols] < 0
                    negative += int(np.count_nonzero(below))
                    cols = cols[~below]
                if cols.size:
                    row_parts.append(np.full(cols.size, row))
                    metric_parts.append(np.full(cols.size, code))
                    col_parts.append(cols)
                    value_parts.append(line[cols])
        rows, codes = _concat(row_parts), _concat(metric_parts)
        n_series = len(row_parts)
        ts_us = (self.start_ms + _concat(col_parts) * self.step_ms) * 1000
        frame = pl.DataFrame({
            "workload": pl.Series(self.names, dtype=pl.String).gather(rows),
            "metric": pl.Series(metrics, dtype=pl.String).gather(codes),
            "ts": pl.Series(ts_us, dtype=pl.Int64).cast(TS_DTYPE),
            "value": pl.Series(np.concatenate(value_parts) if value_parts else [],
                               dtype=pl.Float64),
            "tenant": pl.Series(self.tenants, dtype=pl.String).gather(rows),
        })
        dropped = {k: v for k, v in {**self.dropped, "negative_value": negative}.items() if v}
        report = IngestReport(source=source, rows_in=frame.height + sum(dropped.values()),
                              rows_out=frame.height, dropped=dropped, n_series=n_series)
        if dropped:
            warnings.warn(report.summary(), DataDroppedWarning, stacklevel=3)
        return frame, report


def _rates(series: npt.NDArray[np.uint32], ts: npt.NDArray[np.int64],
           values: npt.NDArray[np.float64], *, gap_ms: int
           ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """A counter's rate per series at each step that has a previous step within ``gap_ms``:
    Prometheus' ``irate`` (a decrease is a reset: the new value is the increase).
    """
    gap = ts[1:] - ts[:-1]
    pair = (series[1:] == series[:-1]) & (gap <= gap_ms)
    delta = values[1:] - values[:-1]
    delta = np.where(delta < 0, values[1:], delta)
    return series[1:][pair], ts[1:][pair], (delta / (gap / 1000))[pair]


def _gpu_sums(keyed: list[tuple[str | None, ...]], series: npt.NDArray[np.uint32],
              ts: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
              ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """DCGM's framebuffer MiB summed over each pod container's GPUs, in bytes; a pod's GPUs
    are all in one answer (batches split pods, pages split time).
    """
    first: dict[tuple[str | None, ...], int] = {}
    group = np.array([first.setdefault(key, i) for i, key in enumerate(keyed)], dtype=np.uint32)
    summed = (pl.DataFrame({"series": group[series], "ts": ts, "value": values})
              .group_by("series", "ts").agg(pl.col("value").sum()))
    return (summed["series"].to_numpy(), summed["ts"].to_numpy(),
            summed["value"].to_numpy() * 1048576)


def _concat(parts: list[npt.NDArray[np.int64]]) -> npt.NDArray[np.int64]:
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _containers(pods: pl.DataFrame, keys: list[str], models: pl.DataFrame) -> pl.DataFrame:
    """One row per workload container: pods seen, replicas running, current resources.

    The current values are those of the newest pod (``kube_pod_created``), the one the
    owner's template now stamps out.
    """
    identity = [*keys[:-1], *IDENTITY]
    resources = [f"{r}_{w}" for r in ("cpu", "memory", "gpu") for w in ("request", "limit")]
    ranked = pods.join(models.unique([*keys, "pod", "container"]),
                       on=[*keys, "pod", "container"], how="left").sort(
        "created", nulls_last=False)
    return (
        ranked.group_by(identity, maintain_order=True)
        .agg(
            pl.col("pod").n_unique().alias("pods"),
            pl.col("pod").filter(pl.col("running")).n_unique().alias("replicas"),
            *(pl.col(c).last() for c in resources),
            pl.col("gpu_model").drop_nulls().last(),
        )
        .with_columns(
            pl.concat_str([pl.col(c).fill_null("") for c in identity], separator="/")
            .alias("workload"),
            pl.col("replicas").clip(lower_bound=1).cast(pl.Int64),
            pl.col("pods").cast(pl.Int64),
            (pl.col(keys[0]) if len(keys) > 1 else pl.lit(None, pl.String)).alias("cluster"),
        )
        .sort(identity)
    )
