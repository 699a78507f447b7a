"""Planned vs used on the Alibaba PAI 2020 trace, and what foresize would have reserved.

The trace's sensor table holds one row per instance (worker): its lifetime average CPU and
GPU use and its average and peak memory, not a time series. So the question it answers is
the fleet one: how far below its plan does an instance of a given kind run, and how much
could a plan derived from that have saved without starving instances?

Method, in two streaming passes (polars lazy scans, ``collect(engine="streaming")``):

1. **Per instance** (``join_pai_instances``): instances (one row per ``worker_name``, the
   repeat kept as upstream's analysis keeps it: the last by status, start, end) joined to
   their sensor row on ``worker_name`` and to their task's plan on (job, task). Each CSV
   is streamed once into a compact parquet in a scratch folder of the cache, with the
   60-character names hashed to 64-bit keys; the workers are then deduplicated and joined
   in hash partitions of bounded size, so peak memory depends on the partition size, not
   on the trace's (a single 10M-row hash aggregation or join holds several GB in polars).
2. **Evaluation** (``evaluate_pai``), over instances with a plan, a sensor row and a
   finished run (start and end known, end >= start), for each resource: CPU (cores),
   GPU (fractions of a GPU) and memory (GiB; the *peak* ``max_mem``, since memory above a
   reservation is an OOM, whereas the trace's CPU and GPU numbers are lifetime averages).

   - *What the trace shows*: planned and used totals weighted by the instance's run time
     (core-hours, GPU-hours, GiB-hours), their ratio, and quantiles of the per-instance
     utilisation used/planned (the over-provisioning planned/used is its reciprocal, so
     its P50 is 1/util P50 and its P90 is 1/util P10; infinite when that share used
     nothing).
   - *What foresize would have recommended*: instances are split by start time, the first
     ``train_frac`` (70 %) to learn from and the rest to score on. For a group of similar
     instances, the recommendation for a new one is ``planned x q`` where ``q`` is the
     ``1 - risk`` quantile (the observed value at or above it) of used/planned over the
     group's training instances: a fleet-calibrated fraction of what its owner asked for.
     Groups go from fine to coarse: (task name, GPU type, planned CPU/GPU/memory), then
     (task name, GPU type), then the whole fleet; an instance takes the first group with at
     least ``min_group`` training instances (default ``ceil(1/risk)``, so the quantile is
     an observed value rather than the maximum of a handful), the fleet whatever its size.
   - *Score* on the held-out instances: planned, used and recommended unit-hours, the
     over-provisioning factors planned/used and recommended/used, and the violation share
     (instances whose use exceeded the recommendation; for CPU and GPU this compares an
     average, so peaks inside a run are invisible to it) next to the share that exceeded
     its own plan.

Resources an instance did not plan (a parameter server's zero GPUs) are left out of that
resource's numbers; every exclusion is counted in ``PaiReport.counts``.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from foresize import __version__
from foresize.core.errors import InputError, InsufficientDataError
from foresize.core.paths import cache_dir
from foresize.evaluate.report import Section
from foresize.ingest.alibaba.pai2020 import PAI_TABLES, scan_pai_table
from foresize.ingest.datasets import table_path

DATASET = "alibaba-pai-2020"
FETCH_COMMAND = f"foresize datasets fetch {DATASET}"
TABLES = ("task", "instance", "sensor")
_SUFFIXES = (".tar.gz", ".tgz", ".csv")
_HASH_SEED = 20_200_701
_HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource: its planned and used columns and the unit of its totals."""

    name: str
    plan: str
    used: str
    unit: str


RESOURCES = (
    Resource("cpu", "plan_cpu_cores", "used_cpu_cores", "core-hours"),
    Resource("gpu", "plan_gpu", "used_gpu", "GPU-hours"),
    Resource("mem", "plan_mem_gib", "max_mem_gib", "GiB-hours"),
)
_PLAN_COLUMNS = [r.plan for r in RESOURCES]
LEVELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("group", ("task_name", "gpu_type", *_PLAN_COLUMNS)),
    ("role", ("task_name", "gpu_type")),
    ("fleet", ()),
)

PAI_INSTANCES = pl.Schema(
    {
        "task_name": pl.String(),
        "gpu_type": pl.String(),
        "status": pl.String(),
        "start_s": pl.Float64(),
        "hours": pl.Float64(),
        "plan_cpu_cores": pl.Float64(),
        "used_cpu_cores": pl.Float64(),
        "plan_gpu": pl.Float64(),
        "used_gpu": pl.Float64(),
        "plan_mem_gib": pl.Float64(),
        "avg_mem_gib": pl.Float64(),
        "max_mem_gib": pl.Float64(),
        "has_plan": pl.Boolean(),
        "has_sensor": pl.Boolean(),
    }
)
"""Columns of ``join_pai_instances``: one row per worker, plan next to use."""


# --- locating the tables ---------------------------------------------------------------


def _missing(path: Path, table: str) -> InputError:
    return InputError(
        f"{path}: the PAI {table} table is not there; download the trace with `{FETCH_COMMAND}`",
        hint="or pass the folder holding pai_task_table, pai_instance_table and "
        "pai_sensor_table (.tar.gz as shipped, or extracted .csv)",
    )


def _in_folder(folder: Path, table: str) -> Path:
    stem = PAI_TABLES[table].file
    for where in (folder, folder / "cluster-trace-gpu-v2020" / "data"):
        for suffix in _SUFFIXES:
            if (where / f"{stem}{suffix}").is_file():
                return where / f"{stem}{suffix}"
    raise _missing(folder / f"{stem}.tar.gz", table)


def _from_registry(table: str, mirror: str | os.PathLike[str] | None) -> Path:
    try:
        return table_path(f"{DATASET}:{table}", mirror=mirror)
    except InputError as exc:
        raise InputError(
            f"{exc.message}; download the trace with `{FETCH_COMMAND}`", hint=exc.hint
        ) from exc


def locate_pai_tables(
    source: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]] | None = None,
    *,
    mirror: str | os.PathLike[str] | None = None,
) -> dict[str, Path]:
    """Return the task, instance and sensor tables' paths.

    ``source`` is a folder (holding ``pai_<table>.tar.gz`` or ``.csv``, directly or in the
    upstream ``cluster-trace-gpu-v2020/data`` layout: a mirror or the registry's cache),
    a mapping ``{"task": path, "instance": path, "sensor": path}``, or None for the
    registry (``mirror``, else ``$FORESIZE_DATA_MIRROR``, else the download cache; files
    sha256-verified). A missing table is an ``InputError`` naming the file and the fetch
    command.
    """
    if source is None:
        return {table: _from_registry(table, mirror) for table in TABLES}
    if isinstance(source, Mapping):
        paths = {}
        for table in TABLES:
            if table not in source:
                raise InputError(
                    f"PAI tables: no path for the {table} table "
                    f"(given: {', '.join(source) or 'none'})"
                )
            path = Path(source[table])
            if not path.is_file():
                raise _missing(path, table)
            paths[table] = path
        return paths
    folder = Path(source)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder; download the trace with `{FETCH_COMMAND}`")
    return {table: _in_folder(folder, table) for table in TABLES}


# --- pass 1: one row per instance ------------------------------------------------------


def _hash(*columns: str) -> pl.Expr:
    if len(columns) == 1:
        return pl.col(columns[0]).hash(_HASH_SEED)
    return pl.struct(columns).hash(_HASH_SEED)


def _seconds(column: str) -> pl.Expr:
    """0 means 'never started/ended' in the trace, as in ``pai2020.pai_usage``."""
    return pl.when(pl.col(column) != 0).then(pl.col(column))


def _collect(frame: pl.LazyFrame, source: str) -> pl.DataFrame:
    try:
        return frame.collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{source}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _sink(frame: pl.LazyFrame, path: Path, source: str) -> Path:
    try:
        frame.sink_parquet(path, engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{source}: {_first_line(exc)}") from exc
    return path


def _compact(paths: Mapping[str, Path], scratch: Path) -> dict[str, Path]:
    """Stream each CSV into a parquet of the columns the join needs, names hashed."""
    instance = (
        scan_pai_table(paths["instance"], table="instance")
        .filter(pl.col("worker_name").is_not_null())
        .select(
            _hash("worker_name").alias("wkey"),
            _hash("job_name", "task_name").alias("tkey"),
            "status",
            "start_time",
            "end_time",
        )
    )
    sensor = (
        scan_pai_table(paths["sensor"], table="sensor")
        .filter(pl.col("worker_name").is_not_null())
        .select(
            _hash("worker_name").alias("wkey"), "cpu_usage", "gpu_wrk_util", "avg_mem", "max_mem"
        )
    )
    task = (
        scan_pai_table(paths["task"], table="task")
        .filter(pl.col("job_name").is_not_null() & pl.col("task_name").is_not_null())
        .select(
            _hash("job_name", "task_name").alias("tkey"),
            "task_name",
            "gpu_type",
            "plan_cpu",
            "plan_gpu",
            "plan_mem",
        )
    )
    return {
        name: _sink(frame, scratch / f"{name}.parquet", str(paths[name]))
        for name, frame in (("instance", instance), ("sensor", sensor), ("task", task))
    }


def _join_partition(
    compact: Mapping[str, Path], tasks: pl.DataFrame, part: pl.Expr, source: str
) -> pl.LazyFrame:
    """One hash partition of the workers, deduplicated as upstream's analysis does it."""
    instances = (
        _collect(pl.scan_parquet(compact["instance"]).filter(part), source)
        .sort("status", "start_time", "end_time", nulls_last=True, maintain_order=True)
        .unique("wkey", keep="last", maintain_order=True)
    )
    sensors = (
        _collect(pl.scan_parquet(compact["sensor"]).filter(part), source)
        .unique("wkey", keep="first", maintain_order=True)
        .with_columns(has_sensor=pl.lit(value=True))
    )
    start, end = _seconds("start_time"), _seconds("end_time")
    return (
        instances.lazy()
        .join(sensors.lazy(), on="wkey", how="left")
        .join(tasks.lazy(), on="tkey", how="left")
        .select(
            "task_name",
            "gpu_type",
            "status",
            start.alias("start_s"),
            pl.when(end >= start).then((end - start) / _HOUR_S).alias("hours"),
            (pl.col("plan_cpu") / 100).alias("plan_cpu_cores"),
            (pl.col("cpu_usage") / 100).alias("used_cpu_cores"),
            (pl.col("plan_gpu") / 100).alias("plan_gpu"),
            (pl.col("gpu_wrk_util") / 100).alias("used_gpu"),
            pl.col("plan_mem").alias("plan_mem_gib"),
            pl.col("avg_mem").alias("avg_mem_gib"),
            pl.col("max_mem").alias("max_mem_gib"),
            pl.col("has_plan").fill_null(value=False),
            pl.col("has_sensor").fill_null(value=False),
        )
        .cast(dict(PAI_INSTANCES))  # type: ignore[arg-type]
    )


def join_pai_instances(
    paths: Mapping[str, Path],
    scratch: str | os.PathLike[str],
    *,
    partition_rows: int = 2_000_000,
) -> pl.LazyFrame:
    """Join the three tables into one row per worker, its plan next to its use.

    Memory stays bounded whatever the trace's size: each CSV is streamed once into a
    compact parquet in ``scratch`` (names hashed to 64 bits), then the workers are joined
    in hash partitions of about ``partition_rows`` instance rows, each written to
    ``scratch``. Returns a lazy scan of those parts (valid while ``scratch`` exists).

    As in ``pai2020.pai_usage``: instances without a ``worker_name`` are left out, a
    repeated worker keeps its last row by (status, start, end), a repeated sensor row or
    task counts from its first; joins are left joins and ``has_plan``/``has_sensor`` say
    what matched. Columns as in ``PAI_INSTANCES``: cores, GPUs (percent / 100), GiB (the
    trace's GB is binary, see ``pai2020``); ``start_s``/``hours`` null where the trace
    has no time (0), ``hours`` also where the end precedes the start.
    """
    scratch = Path(scratch)
    source = f"PAI tables in {paths['sensor'].parent}"
    compact = _compact(paths, scratch)
    tasks = (
        _collect(pl.scan_parquet(compact["task"]), source)
        .unique("tkey", keep="first", maintain_order=True)
        .with_columns(has_plan=pl.lit(value=True))
    )
    n_rows = _collect(pl.scan_parquet(compact["instance"]).select(pl.len()), source).item()
    n_parts = max(1, math.ceil(n_rows / partition_rows))
    parts = []
    for index in range(n_parts):
        part = pl.col("wkey") % n_parts == index
        target = scratch / f"instances-{index:04d}.parquet"
        _join_partition(compact, tasks, part, source).collect().write_parquet(target)
        parts.append(target)
    for path in compact.values():
        path.unlink()
    return pl.scan_parquet(parts)


# --- pass 2: what the trace shows, and what foresize would have reserved ---------------


def _ratio(resource: Resource) -> pl.Expr:
    """used/planned where the instance planned the resource and its use is known."""
    plan, used = pl.col(resource.plan), pl.col(resource.used)
    return pl.when((plan > 0) & used.is_not_null()).then(used / plan)


def _trace_usage(usable: pl.LazyFrame, source: str) -> pl.DataFrame:
    """Per resource over all usable instances: totals and utilisation quantiles."""
    rows = []
    for resource in RESOURCES:
        ratio = _ratio(resource)
        counted = ratio.is_not_null()
        hours = pl.col("hours")
        row = _collect(
            usable.select(
                counted.sum().alias("n_instances"),
                (pl.col(resource.plan) * hours).filter(counted).sum().alias("planned"),
                (pl.col(resource.used) * hours).filter(counted).sum().alias("used"),
                *(
                    ratio.quantile(q, "nearest").alias(f"util_p{round(q * 100)}")
                    for q in (0.1, 0.5, 0.9)
                ),
                (ratio > 1).filter(counted).mean().alias("share_above_plan"),
            ),
            source,
        ).row(0, named=True)
        rows.append({"resource": resource.name, "unit": resource.unit, **row})
    return pl.DataFrame(rows).with_columns(
        (pl.col("planned") / pl.col("used")).alias("planned_over_used"),
        (1 / pl.col("util_p50")).alias("overprov_p50"),
        (1 / pl.col("util_p10")).alias("overprov_p90"),
    )


def _level_key(level: str, keys: tuple[str, ...]) -> pl.Expr:
    """A group's 64-bit key at one level (a constant for the fleet)."""
    key = pl.struct(keys).hash(_HASH_SEED) if keys else pl.lit(0, dtype=pl.UInt64)
    return key.alias(f"key_{level}")


def _group_quantiles(
    train: pl.LazyFrame,
    level: str,
    keys: tuple[str, ...],
    resource: Resource,
    q: float,
    source: str,
) -> pl.DataFrame:
    """Per group: the count of training ratios and the one at sorted index ceil(q (n-1)).

    Sorting (key, ratio) pairs costs 16 bytes a row; polars' grouped ``quantile`` would
    hold every column of the training rows (about 1.7 GB for 7M rows).
    """
    key = f"key_{level}"
    ratios = (
        _collect(
            train.select(_level_key(level, keys), _ratio(resource).alias("ratio")).drop_nulls(
                "ratio"
            ),
            source,
        )
        .sort(key, "ratio")
        .with_row_index("row")
    )
    bounds = ratios.group_by(key).agg(pl.col("row").first().alias("first"), pl.len().alias("n"))
    at = bounds["first"] + ((bounds["n"] - 1) * q).ceil().cast(pl.UInt32)
    return bounds.select(
        key,
        pl.col("n").cast(pl.Int64).alias(f"n_{resource.name}_{level}"),
        ratios["ratio"].gather(at).alias(f"q_{resource.name}_{level}"),
    )


def _level_quantiles(train: pl.LazyFrame, q: float, source: str) -> list[pl.DataFrame]:
    """Per level of ``LEVELS``: each group's training counts and used/planned quantiles."""
    tables = []
    for level, keys in LEVELS:
        table = None
        for resource in RESOURCES:
            one = _group_quantiles(train, level, keys, resource, q, source)
            table = (
                one
                if table is None
                else table.join(one, on=f"key_{level}", how="full", coalesce=True)
            )
        assert table is not None  # RESOURCES is not empty
        tables.append(table)
    return tables


def _rec(resource: Resource) -> str:
    """The recommendation's column: ``rec_cpu_cores``, ``rec_gpu``, ``rec_mem_gib``."""
    return "rec_" + resource.plan.removeprefix("plan_")


def _with_recommendation(
    frame: pl.LazyFrame, levels: list[pl.DataFrame], min_group: int
) -> pl.LazyFrame:
    """Attach, per resource, the quantile of the first level with enough instances, the
    level it came from, and the recommendation planned x quantile.
    """
    for (level, keys), table in zip(LEVELS, levels, strict=True):
        frame = (
            frame.with_columns(_level_key(level, keys))
            .join(table.lazy(), on=f"key_{level}", how="left")
            .drop(f"key_{level}")
        )
    columns = []
    for r in RESOURCES:
        # the fleet is the last resort: any training instance will do
        enough = [
            pl.col(f"n_{r.name}_{level}") >= (min_group if keys else 1) for level, keys in LEVELS
        ]
        q = pl.coalesce(
            [
                pl.when(ok).then(pl.col(f"q_{r.name}_{level}"))
                for ok, (level, _) in zip(enough, LEVELS, strict=True)
            ]
        )
        source_level = pl.coalesce(
            [pl.when(ok).then(pl.lit(level)) for ok, (level, _) in zip(enough, LEVELS, strict=True)]
        )
        columns += [
            q.alias(f"q_{r.name}"),
            source_level.alias(f"level_{r.name}"),
            (pl.col(r.plan) * q).alias(_rec(r)),
        ]
    dropped = [
        c
        for level, _ in LEVELS
        for r in RESOURCES
        for c in (f"n_{r.name}_{level}", f"q_{r.name}_{level}")
    ]
    return frame.with_columns(columns).drop(dropped)


def _score(test: pl.LazyFrame, source: str) -> pl.DataFrame:
    """Per resource on the held-out instances: planned, used, recommended; violations."""
    rows = []
    for r in RESOURCES:
        rec = pl.col(_rec(r))
        counted = _ratio(r).is_not_null() & rec.is_not_null()
        used, hours = pl.col(r.used), pl.col("hours")
        row = _collect(
            test.filter(counted).select(
                pl.len().alias("n_instances"),
                (pl.col(r.plan) * hours).sum().alias("planned"),
                (used * hours).sum().alias("used"),
                (rec * hours).sum().alias("recommended"),
                (used > rec).mean().alias("violation_share"),
                (used > pl.col(r.plan)).mean().alias("plan_violation_share"),
                *(
                    (pl.col(f"level_{r.name}") == level).mean().alias(f"share_{level}_level")
                    for level, _ in LEVELS
                ),
            ),
            source,
        ).row(0, named=True)
        rows.append({"resource": r.name, "unit": r.unit, **row})
    return pl.DataFrame(rows).with_columns(
        (pl.col("planned") / pl.col("used")).alias("planned_over_used"),
        (pl.col("recommended") / pl.col("used")).alias("recommended_over_used"),
        (1 - pl.col("recommended") / pl.col("planned")).alias("saving"),
    )


def _group_table(
    train: pl.LazyFrame, levels: list[pl.DataFrame], min_group: int, source: str
) -> pl.DataFrame:
    """The recommendation foresize would give a new instance of each planned-size group."""
    keys = list(LEVELS[0][1])
    groups = train.group_by(keys).agg(pl.len().alias("n_train"))
    recommended = _with_recommendation(groups, levels, min_group)
    return _collect(recommended, source).sort("n_train", *keys, descending=[True] + [False] * 5)


# --- the report ------------------------------------------------------------------------


def _finite(value: Any) -> Any:
    """JSON has no infinity or NaN: such values become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: _finite(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]


@dataclass(frozen=True, slots=True)
class PaiReport:
    """The outcome of ``evaluate_pai``: what the trace shows and what foresize would do.

    ``usage``: per resource over all usable instances (``_trace_usage``); ``score``: per
    resource on the held-out instances; ``groups``: the recommendation per planned-size
    group (most instances first). Totals are in each resource's ``unit``.
    """

    sources: Mapping[str, str]
    risk: float
    train_frac: float
    min_group: int
    split_start_s: float
    counts: Mapping[str, int]
    usage: pl.DataFrame
    score: pl.DataFrame
    groups: pl.DataFrame
    seconds: float

    def tables(self) -> dict[str, pl.DataFrame]:
        """The report's tables, for a markdown report or a notebook."""
        return {"usage": self.usage, "score": self.score, "groups": self.groups}

    def to_dict(self, *, max_groups: int = 100) -> dict[str, Any]:
        """A JSON-ready dict (infinities as null); the ``max_groups`` largest groups."""
        return {
            "dataset": DATASET,
            "foresize_version": __version__,
            "params": {
                "risk": self.risk,
                "train_frac": self.train_frac,
                "min_group": self.min_group,
            },
            "sources": dict(self.sources),
            "split_start_s": self.split_start_s,
            "counts": dict(self.counts),
            "usage": _records(self.usage),
            "score": _records(self.score),
            "n_groups": self.groups.height,
            "groups": _records(self.groups.head(max_groups)),
            "seconds": self.seconds,
        }


def _counts(instances: pl.LazyFrame, source: str) -> dict[str, int]:
    row = _collect(
        instances.select(
            pl.len().alias("n_workers"),
            pl.col("has_plan").sum().alias("n_with_plan"),
            pl.col("has_sensor").sum().alias("n_with_sensor"),
            (pl.col("has_plan") & pl.col("has_sensor")).sum().alias("n_matched"),
            (pl.col("has_plan") & pl.col("has_sensor") & pl.col("hours").is_not_null())
            .sum()
            .alias("n_usable"),
        ),
        source,
    ).row(0, named=True)
    return {key: int(value) for key, value in row.items()}


def _check_params(risk: float, train_frac: float, min_group: int | None) -> int:
    if not 0 < risk < 1:
        raise InputError(f"risk must be in (0, 1), got {risk}")
    if not 0 < train_frac < 1:
        raise InputError(f"train_frac must be in (0, 1), got {train_frac}")
    if min_group is not None and min_group < 1:
        raise InputError(f"min_group must be at least 1, got {min_group}")
    return math.ceil(1 / risk) if min_group is None else min_group


def evaluate_pai(
    source: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]] | None = None,
    *,
    risk: float = 0.01,
    train_frac: float = 0.7,
    min_group: int | None = None,
    partition_rows: int = 2_000_000,
    mirror: str | os.PathLike[str] | None = None,
) -> PaiReport:
    """Planned vs used on the PAI 2020 trace and the recommendation protocol (module doc).

    ``source`` and ``mirror`` as in ``locate_pai_tables`` (None: the registry). Tables
    stream: archives are extracted once into the cache, the per-instance join
    (``join_pai_instances``, in partitions of ``partition_rows``) goes to a scratch folder
    there, deleted afterwards.
    Raises ``InputError`` for missing or unreadable tables and ``InsufficientDataError``
    when no instance has a plan, a sensor row and a run time.
    """
    started = time.perf_counter()
    min_n = _check_params(risk, train_frac, min_group)
    paths = locate_pai_tables(source, mirror=mirror)
    label = f"PAI tables in {paths['sensor'].parent}"
    scratch_root = cache_dir() / "scratch"
    scratch_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pai-", dir=scratch_root) as scratch:
        instances = join_pai_instances(paths, scratch, partition_rows=partition_rows)
        counts = _counts(instances, label)
        if counts["n_usable"] == 0:
            raise InsufficientDataError(
                f"{label}: no instance has a plan, a sensor row and a finished run "
                f"({counts['n_workers']:,} workers, {counts['n_matched']:,} matched)"
            )
        usable = instances.filter(
            pl.col("has_plan")
            & pl.col("has_sensor")
            & pl.col("hours").is_not_null()
            & pl.col("start_s").is_not_null()
        )
        cut = _collect(
            usable.select(pl.col("start_s").quantile(train_frac, "higher")), label
        ).item()
        train = usable.filter(pl.col("start_s") < cut)
        test = usable.filter(pl.col("start_s") >= cut)
        levels = _level_quantiles(train, 1 - risk, label)
        usage = _trace_usage(usable, label)
        score = _score(_with_recommendation(test, levels, min_n), label)
        groups = _group_table(train, levels, min_n, label)
        split = _collect(
            usable.select(
                (pl.col("start_s") < cut).sum().alias("n_train"),
                (pl.col("start_s") >= cut).sum().alias("n_test"),
            ),
            label,
        ).row(0, named=True)
    counts.update({key: int(value) for key, value in split.items()})
    return PaiReport(
        sources={table: str(path) for table, path in paths.items()},
        risk=risk,
        train_frac=train_frac,
        min_group=min_n,
        split_start_s=float(cut),
        counts=counts,
        usage=usage,
        score=score,
        groups=groups,
        seconds=time.perf_counter() - started,
    )


def pai_sections(
    *, mirror: str | os.PathLike[str] | None = None, risk: float = 0.01
) -> list[Section]:
    """The report section of ``foresize evaluate rightsize --dataset alibaba-pai-2020``."""
    report = evaluate_pai(mirror=mirror, risk=risk)
    score = {row["resource"]: row for row in report.score.iter_rows(named=True)}
    headline = "; ".join(
        f"{name}: planned/used {row['planned_over_used']:.2f}, recommended/used "
        f"{row['recommended_over_used']:.2f}, violations {row['violation_share']:.2%}"
        for name, row in score.items()
    )
    text = (
        "Planned (task table) vs used (sensor table) per instance, weighted by run time. "
        f"foresize recommends planned x the {1 - risk:.0%} quantile of used/planned of the "
        "instance's group (task, GPU type, planned size; coarser when fewer than "
        f"{report.min_group} training instances), learned on the first "
        f"{report.train_frac:.0%} of instances by start time and scored on the rest. "
        f"Held-out: {headline}. Memory is judged on the peak (max_mem), CPU and GPU on the "
        "lifetime averages the trace records."
    )
    return [
        Section(
            "Right-sizing on Alibaba PAI 2020: planned vs used",
            text=text,
            tables={
                "What the trace shows (all usable instances)": report.usage,
                "Planned vs recommended on the held-out instances": report.score,
                "Recommendation per task group (20 largest)": report.groups.head(20),
            },
            data=report.to_dict(max_groups=20),
        )
    ]
