"""Alibaba cluster-trace-gpu-v2023 ("openb"): node and pod lists of a GPU-sharing cluster.

These are the inputs of the FGD paper's Kubernetes scheduler simulator: a node list
(``sn, cpu_milli, memory_mib, gpu, model``) and a pod list (``name, cpu_milli,
memory_mib, num_gpu, gpu_milli, gpu_spec, qos, pod_phase, creation_time,
deletion_time, scheduled_time``). Times are integer seconds from the trace start.

Not every published pod list has every column: the ``multigpu*`` lists have only the
five requests (``name, cpu_milli, memory_mib, num_gpu, gpu_milli``). Those five are
required; a list without the others reads them as their documented default, as the FGD
authors' converter does (``data/pod_csv_to_yaml.py`` writes an annotation only for a
column the file has): no ``gpu_spec`` is no GPU-model constraint, no ``qos`` or
``pod_phase`` is null, and no times are null (the simulator then lets every pod arrive
at the start, which is all the inflation protocol needs).

Rows a simulator cannot replay are dropped and counted. The rules come from the README
and the data: in all three mirrored pod lists (8,152 pods each) ``gpu_milli`` is 0 when
``num_gpu`` is 0, 50..1000 when ``num_gpu`` is 1 (GPU sharing), and exactly 1000 when
``num_gpu`` > 1; no resource is negative; no pod is deleted or scheduled before it is
created; names are unique. The default trace therefore loses no row. 897 pods (all
``Pending``) have no ``scheduled_time``; it stays null, as do absent times in general.
"""

from __future__ import annotations

import os

import polars as pl

from foresize.core.guard import reader
from foresize.core.io import sha256_file
from foresize.ingest.alibaba._common import (
    as_numeric,
    nan_to_null,
    not_whole,
    require_columns,
)
from foresize.ingest.report import IngestReport
from foresize.ingest.tabular import collect_input, scan_file
from foresize.ingest.validate import RowRule, apply_rules

OPENB_NODES = pl.Schema(
    {
        "node": pl.String,
        "cpu_milli": pl.Int64,
        "memory_mib": pl.Int64,
        "gpu": pl.Int64,
        "gpu_model": pl.String,
    }
)
OPENB_PODS = pl.Schema(
    {
        "pod": pl.String(),
        "cpu_milli": pl.Int64(),
        "memory_mib": pl.Int64(),
        "num_gpu": pl.Int64(),
        "gpu_milli": pl.Int64(),
        "gpu_spec": pl.List(pl.String()),
        "qos": pl.String(),
        "pod_phase": pl.String(),
        "creation_s": pl.Int64(),
        "deletion_s": pl.Int64(),
        "scheduled_s": pl.Int64(),
    }
)
_NODE_COLUMNS = {"sn": "node", "cpu_milli": "cpu_milli", "memory_mib": "memory_mib",
                 "gpu": "gpu", "model": "gpu_model"}
_POD_COLUMNS = {"name": "pod", "cpu_milli": "cpu_milli", "memory_mib": "memory_mib",
                "num_gpu": "num_gpu", "gpu_milli": "gpu_milli", "gpu_spec": "gpu_spec",
                "qos": "qos", "pod_phase": "pod_phase", "creation_time": "creation_s",
                "deletion_time": "deletion_s", "scheduled_time": "scheduled_s"}
# the columns every published pod list has; the rest are optional (see the module doc)
_POD_REQUIRED = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
_NODE_RESOURCES = ("cpu_milli", "memory_mib", "gpu")
_POD_RESOURCES = ("cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
_POD_TIMES = ("creation_time", "deletion_time", "scheduled_time")
FULL_GPU_MILLI = 1000


def _resource_rules(columns: tuple[str, ...]) -> list[RowRule]:
    """Present, whole and non-negative: what a scheduler needs of every request."""
    return [
        *(RowRule("missing_resource", c, pl.col(c).is_null(), "is empty") for c in columns),
        *(RowRule("invalid_resource", c, not_whole(c), "is not a whole number")
          for c in columns),
        *(RowRule("negative_resource", c, pl.col(c).cast(pl.Float64) < 0, "is negative")
          for c in columns),
    ]


def _unique(column: str, reason: str) -> RowRule:
    return RowRule(reason, column, pl.col(column).is_first_distinct().not_(),
                   "repeats an earlier row's name")


def _open(path: str | os.PathLike[str], columns: dict[str, str], numeric: tuple[str, ...],
          *, required: tuple[str, ...] | None = None) -> pl.DataFrame:
    """The file's ``columns``; those outside ``required`` (default: all) may be absent and
    are then read as nulls.
    """
    source = str(path)
    lazy = scan_file(path)
    schema = lazy.collect_schema()
    require_columns(schema, columns if required is None else required, source=source)
    absent = [c for c in columns if c not in schema]
    lazy = lazy.with_columns(
        pl.lit(None, dtype=pl.Float64 if c in numeric else pl.String).alias(c) for c in absent)
    lazy = nan_to_null(as_numeric(lazy, numeric, source=source), numeric)
    return collect_input(lazy.select(list(columns)), source=source)


def _text(column: str) -> pl.Expr:
    """Text with the README's ``nan`` (pandas' spelling of 'none') read as null."""
    text = pl.col(column).cast(pl.String)
    return pl.when(text.str.to_lowercase() != "nan").then(text)


@reader
def read_openb_nodes(
    path: str | os.PathLike[str], *, strict: bool = False
) -> tuple[pl.DataFrame, IngestReport]:
    """Read an openb node list (``OPENB_NODES``); ``gpu_model`` is null for CPU-only nodes.

    Rows without a name, with a missing, fractional or negative resource, or repeating
    an earlier node's name are dropped with counts; under ``strict`` they raise.
    """
    raw = _open(path, _NODE_COLUMNS, _NODE_RESOURCES)
    rules = [RowRule("missing_name", "sn", pl.col("sn").is_null(), "is empty"),
             *_resource_rules(_NODE_RESOURCES)]
    kept, report = apply_rules(raw, rules, source=str(path), strict=strict,
                               unique=_unique("sn", "duplicate_node"))
    nodes = kept.select(
        _text(upstream).alias(name) if name == "gpu_model"
        else pl.col(upstream).cast(OPENB_NODES[name]).alias(name)
        for upstream, name in _NODE_COLUMNS.items()
    )
    report.sha256 = sha256_file(path)
    return nodes, report


def _pod_rules() -> list[RowRule]:
    num_gpu, gpu_milli = pl.col("num_gpu"), pl.col("gpu_milli")
    # gpu_milli is the share of each GPU: none without GPUs, a share of one shared GPU,
    # or whole GPUs when a pod takes several (as in every mirrored pod list)
    inconsistent = (
        ((num_gpu == 0) & (gpu_milli != 0))
        | ((num_gpu == 1) & (gpu_milli == 0))
        | ((num_gpu > 1) & (gpu_milli != FULL_GPU_MILLI))
    )
    created, deleted = pl.col("creation_time"), pl.col("deletion_time")
    return [
        RowRule("missing_name", "name", pl.col("name").is_null(), "is empty"),
        *_resource_rules(_POD_RESOURCES),
        RowRule("gpu_milli_out_of_range", "gpu_milli", gpu_milli > FULL_GPU_MILLI,
                f"is above {FULL_GPU_MILLI} (one whole GPU)"),
        RowRule("inconsistent_gpu_milli", "gpu_milli", inconsistent,
                "must be 0 without GPUs, 1..1000 with one GPU and 1000 with several"),
        *(RowRule("invalid_time", c, not_whole(c), "is not whole seconds") for c in _POD_TIMES),
        RowRule("deletion_before_creation", "deletion_time", deleted < created,
                "is before creation_time"),
        RowRule("scheduled_before_creation", "scheduled_time",
                pl.col("scheduled_time") < created, "is before creation_time"),
    ]


def _gpu_spec(column: str) -> pl.Expr:
    """'V100M16|V100M32' -> ['V100M16', 'V100M32']; empty or nan (no constraint) -> []."""
    alternatives = (
        _text(column).str.split("|")
        .list.eval(pl.element().str.strip_chars().filter(pl.element().str.strip_chars() != ""))
    )
    return alternatives.fill_null(pl.lit([], dtype=pl.List(pl.String)))


@reader
def read_openb_pods(
    path: str | os.PathLike[str], *, strict: bool = False
) -> tuple[pl.DataFrame, IngestReport]:
    """Read an openb pod list (``OPENB_PODS``), one row per pod in file order.

    Any published variant reads as it is: only the five request columns are required,
    the others default to null (``gpu_spec`` to no constraint) when the file lacks them.
    ``gpu_spec`` becomes the list of acceptable GPU models (empty: any model). Dropped
    with counts: no name; a missing, fractional or negative resource; ``gpu_milli``
    above 1000 or inconsistent with ``num_gpu``; fractional times; deletion or
    scheduling before creation; a repeated name. Under ``strict`` these raise.
    """
    raw = _open(path, _POD_COLUMNS, (*_POD_RESOURCES, *_POD_TIMES), required=_POD_REQUIRED)
    kept, report = apply_rules(raw, _pod_rules(), source=str(path), strict=strict,
                               unique=_unique("name", "duplicate_pod"))
    pods = kept.select(
        _gpu_spec(upstream).alias(name) if name == "gpu_spec"
        else pl.col(upstream).cast(OPENB_PODS[name]).alias(name)
        for upstream, name in _POD_COLUMNS.items()
    )
    report.sha256 = sha256_file(path)
    return pods, report
