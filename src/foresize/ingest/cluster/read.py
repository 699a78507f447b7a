"""Cluster mode's reader: every workload container's usage history, pooled per owner.

``read_cluster`` discovers the pods in scope (``discovery``), then reads four usage
series per container over the window:

============== ===================================================================
metric          PromQL (per namespace batch; ``max by`` server-side)
============== ===================================================================
cpu_cores       ``irate(container_cpu_usage_seconds_total[R])``: the increase between
                the last two samples over their distance, so a counter reset (a
                container restart) costs one sample and never a negative or extrapolated
                rate; ``R`` is twice the step (at least two scrapes), and ``and`` the
                counter itself keeps it to the steps the container exists at
mem_bytes       ``container_memory_working_set_bytes`` (what the OOM killer weighs)
gpu_util_pct    DCGM exporter ``DCGM_FI_DEV_GPU_UTIL`` (max over the container's GPUs)
gpu_mem_bytes   DCGM exporter ``DCGM_FI_DEV_FB_USED`` in MiB, summed over its GPUs
============== ===================================================================

``max by (namespace, pod, container)`` runs in Prometheus, so cAdvisor's duplicate
series per container (one per cgroup path and image) arrive as one. Namespaces are
batched so one answer holds at most ``points_per_request`` points, each batch's window is
cut into pages within Prometheus' 11,000 points per series, and the requests run a few
at a time under one deadline and a size cap per answer (``client``).

**Pooling.** All pods of one owner (every ReplicaSet hash of a Deployment, every run of
a CronJob, every restart) form one history per container and metric: at each step the
*largest* value over the owner's pods, because one request serves every replica and must
hold the busiest. The result is canonical telemetry whose ``workload`` is the identity
``namespace/Kind/name/container`` and ``tenant`` the namespace, plus a table of those
workload containers with their current requests and limits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import polars as pl

from foresize.core.errors import InputError, InsufficientDataError
from foresize.core.schemas import TS_DTYPE
from foresize.ingest.cluster.client import DEFAULT_MAX_RESPONSE_BYTES, Client, Matrix
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
from foresize.ingest.validate import canonicalize

DEFAULT_TIMEOUT_S = 300.0
DEFAULT_POINTS_PER_REQUEST = 2_000_000  # ~55 MB of JSON: parsed in about a second
_EXCLUDE = 'container!="",container!="POD"'
USAGE: dict[str, tuple[str, str]] = {
    # metric: (the series it needs, the PromQL template: {m} matchers, {by} labels, {r} range)
    "cpu_cores": ("container_cpu_usage_seconds_total",
                  "max by ({by}) (irate(container_cpu_usage_seconds_total{{{m}}}[{r}]) "
                  "and container_cpu_usage_seconds_total{{{m}}})"),
    "mem_bytes": ("container_memory_working_set_bytes",
                  "max by ({by}) (container_memory_working_set_bytes{{{m}}})"),
    "gpu_util_pct": ("DCGM_FI_DEV_GPU_UTIL", "max by ({by}) (DCGM_FI_DEV_GPU_UTIL{{{m}}})"),
    "gpu_mem_bytes": ("DCGM_FI_DEV_FB_USED",
                      "sum by ({by}) (DCGM_FI_DEV_FB_USED{{{m}}}) * 1048576"),
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
    concurrency: int = 4
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
    ``modelName``, null without GPU series).
    """

    frame: pl.DataFrame
    containers: pl.DataFrame
    report: IngestReport
    start: datetime
    end: datetime
    step_s: float
    requests: int = 0
    bytes_read: int = 0


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
        raise InputError(f"{request.url}: --since must be a positive duration, e.g. '14d'")
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
    pods = discover(client, scope, start_s=start_ms / 1000, end_s=end_ms / 1000)
    keys = list(scope.keys)
    batches = _batches(pods, keys, scope, n_points=(end_ms - start_ms) // step_ms + 1,
                       budget=request.points_per_request, max_points=request.max_points)
    pages = plan_pages(start_ms, end_ms, step_ms, request.max_points)
    range_s = max(2 * step_ms // 1000, 60)
    calls: list[Callable[[], Matrix]] = []
    tags: list[str] = []
    for metric, (_, template) in USAGE.items():
        for matcher in batches:
            query = template.format(m=f"{matcher},{_EXCLUDE}", by=",".join([*keys, "pod",
                                                                            "container"]),
                                    r=f"{range_s}s")
            for first, last in pages:
                calls.append(_page(client, query, first, last, step_ms))
                tags.append(metric)
    matrices = client.run_all(calls)
    models = _gpu_models(client, batches, keys, window_s=(end_ms - start_ms) // 1000,
                         at_s=end_ms / 1000)
    raw, found = _samples(matrices, tags, keys)
    missing = [m for m in REQUIRED if m not in found]
    if len(missing) == len(REQUIRED):
        raise InsufficientDataError(
            f"{name}: no cAdvisor usage ({', '.join(USAGE[m][0] for m in REQUIRED)}) for the "
            "pods in scope: the kubelet's /metrics/cadvisor is not scraped by this Prometheus",
            hint="scrape cAdvisor, or read one query with --query 'PROMQL'")
    owners = pods.select([*keys, "pod", "container", "owner_kind", "owner_name"]).unique()
    pooled = _pool(raw, owners, keys)
    frame, report = canonicalize(pooled, source=name)
    containers = _containers(pods, keys, models)
    owner_keys = [*keys, "owner_kind", "owner_name"]
    n_owners = containers.select(pl.struct(owner_keys).n_unique()).item()
    report.notes.extend([
        f"cluster mode: {containers.height:,} workload containers of {n_owners:,} "
        f"owners in {pods['pod'].n_unique():,} pods, from {_iso(start_ms)} to {_iso(end_ms)} "
        f"every {step_ms / 1000:g} s: {client.requests:,} requests, "
        f"{client.bytes_read:,} bytes",
        *(f"no {USAGE[m][0]} series: {m} is not sized" for m in USAGE if m not in found),
        *(f"Prometheus warning: {w}" for m in matrices for w in m.warnings),
    ])
    origin = datetime.fromtimestamp(0, UTC)
    return ClusterTelemetry(frame, containers, report,
                            origin + timedelta(milliseconds=start_ms),
                            origin + timedelta(milliseconds=end_ms), step_ms / 1000,
                            client.requests, client.bytes_read)


def _page(client: Client, query: str, first: int, last: int, step_ms: int) -> Callable[[], Matrix]:
    return lambda: client.matrix(query, start_ms=first, end_ms=last, step_ms=step_ms)


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


def _samples(matrices: list[Matrix], tags: list[str], keys: list[str]
             ) -> tuple[pl.DataFrame, set[str]]:
    """All pages as one long frame: namespace keys, pod, container, metric, ts, value."""
    parts = []
    found: set[str] = set()
    for matrix, metric in zip(matrices, tags, strict=True):
        if not matrix.labels:
            continue
        found.add(metric)
        labels = pl.DataFrame(
            [{k: lab.get(k) for k in [*keys, "pod", "container"]} for lab in matrix.labels],
            schema=dict.fromkeys([*keys, "pod", "container"], pl.String), orient="row",
        ).with_row_index("series")
        parts.append(matrix.samples.join(labels, on="series", how="left")
                     .with_columns(pl.lit(metric).alias("metric")).drop("series"))
    schema = {**dict.fromkeys([*keys, "pod", "container"], pl.String), "ts_ms": pl.Int64,
              "value": pl.Float64, "metric": pl.String}
    return (pl.concat(parts) if parts else pl.DataFrame(schema=schema)), found


def _pool(raw: pl.DataFrame, owners: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Per owner, container, metric and step: the largest value over the owner's pods."""
    identity = [*keys[:-1], *IDENTITY]
    joined = raw.join(owners, on=[*keys, "pod", "container"], how="inner")
    return (
        joined.group_by([*identity, "metric", "ts_ms"])
        .agg(pl.col("value").max())
        .select(
            pl.concat_str([pl.col(c).fill_null("") for c in identity], separator="/")
            .alias("workload"),
            "metric",
            (pl.col("ts_ms") * 1000).cast(TS_DTYPE).alias("ts"),
            "value",
            pl.col("namespace").alias("tenant"),
        )
    )


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
