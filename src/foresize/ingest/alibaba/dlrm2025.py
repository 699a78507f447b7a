"""Alibaba cluster-trace-gpu-v2025: instances of GPU-disaggregated DLRM inference services.

``disaggregated_DLRM_trace.csv`` lists one row per inference instance: its role (``CN``
CPU node, ``HN`` heterogeneous GPU node), service (``app_name``), resource requests and
limits, placement density limit and lifetime. It is not in the mirror; the layout here
follows the trace README, whose sample starts with an all-empty row (dropped and
counted as ``empty_row``).

Units become foresize's base units: memory and disk (GiB upstream) become bytes with
2**30 per GiB (the README says GiB), columns ending in ``_bytes``; CPU stays cores and
RDMA stays percent of one RNIC. Times stay seconds from the trace start as Float64;
NaN (or empty) means outside the trace window (created before it, deleted after it)
and becomes null. ``max_instance_per_node`` of -1 (no density limit) becomes null.
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

GIB = 2**30
NO_LIMIT = -1
DLRM_INSTANCES = pl.Schema(
    {
        "instance": pl.String,
        "role": pl.String,
        "app": pl.String,
        "cpu_request_cores": pl.Float64,
        "cpu_limit_cores": pl.Float64,
        "gpu_request": pl.Float64,
        "gpu_limit": pl.Float64,
        "rdma_request_pct": pl.Float64,
        "rdma_limit_pct": pl.Float64,
        "memory_request_bytes": pl.Int64,
        "memory_limit_bytes": pl.Int64,
        "disk_request_bytes": pl.Int64,
        "disk_limit_bytes": pl.Int64,
        "max_instance_per_node": pl.Int64,
        "creation_s": pl.Float64,
        "scheduled_s": pl.Float64,
        "deletion_s": pl.Float64,
    }
)
_COLUMNS = {  # upstream column -> output column
    "instance_sn": "instance", "role": "role", "app_name": "app",
    "cpu_request": "cpu_request_cores", "cpu_limit": "cpu_limit_cores",
    "gpu_request": "gpu_request", "gpu_limit": "gpu_limit",
    "rdma_request": "rdma_request_pct", "rdma_limit": "rdma_limit_pct",
    "memory_request": "memory_request_bytes", "memory_limit": "memory_limit_bytes",
    "disk_request": "disk_request_bytes", "disk_limit": "disk_limit_bytes",
    "max_instance_per_node": "max_instance_per_node",
    "creation_time": "creation_s", "scheduled_time": "scheduled_s",
    "deletion_time": "deletion_s",
}
_RESOURCES = ("cpu_request", "cpu_limit", "gpu_request", "gpu_limit", "rdma_request",
              "rdma_limit", "memory_request", "memory_limit", "disk_request", "disk_limit")
_GIB_COLUMNS = ("memory_request", "memory_limit", "disk_request", "disk_limit")
_TIMES = ("creation_time", "scheduled_time", "deletion_time")
_NUMERIC = (*_RESOURCES, "max_instance_per_node", *_TIMES)
# GiB above this would overflow Int64 bytes: not a real request
_MAX_GIB = 2.0**33 - 1


def _rules() -> list[RowRule]:
    def number(column: str) -> pl.Expr:
        return pl.col(column).cast(pl.Float64)

    def not_amount(column: str) -> pl.Expr:
        if column in _GIB_COLUMNS:
            return ~number(column).is_finite() | (number(column) > _MAX_GIB)
        return ~number(column).is_finite()

    density = number("max_instance_per_node")
    created = number("creation_time")
    return [
        RowRule("empty_row", "instance_sn",
                pl.all_horizontal(pl.col(c).is_null() for c in _COLUMNS),
                "is empty, as is the whole row"),
        RowRule("missing_instance", "instance_sn", pl.col("instance_sn").is_null(), "is empty"),
        *(RowRule("missing_resource", c, pl.col(c).is_null(), "is empty") for c in _RESOURCES),
        *(RowRule("invalid_resource", c, not_amount(c), "is not a finite amount")
          for c in _RESOURCES),
        *(RowRule("negative_resource", c, number(c) < 0, "is negative") for c in _RESOURCES),
        RowRule("invalid_max_instance_per_node", "max_instance_per_node",
                not_whole("max_instance_per_node") | (density < NO_LIMIT),
                "is not -1 (no limit) or a whole number >= 0"),
        *(RowRule("invalid_time", c, number(c).is_infinite(), "is infinite") for c in _TIMES),
        RowRule("deletion_before_creation", "deletion_time", number("deletion_time") < created,
                "is before creation_time"),
        RowRule("scheduled_before_creation", "scheduled_time",
                number("scheduled_time") < created, "is before creation_time"),
    ]


def _output(upstream: str, name: str) -> pl.Expr:
    column = pl.col(upstream)
    if upstream in _GIB_COLUMNS:
        column = (column.cast(pl.Float64) * GIB).round()
    elif upstream == "max_instance_per_node":
        column = pl.when(column != NO_LIMIT).then(column)
    return column.cast(DLRM_INSTANCES[name]).alias(name)


@reader
def read_dlrm_instances(
    path: str | os.PathLike[str], *, strict: bool = False
) -> tuple[pl.DataFrame, IngestReport]:
    """Read ``disaggregated_DLRM_trace.csv`` as ``DLRM_INSTANCES``, one row per instance.

    Dropped with counts: all-empty rows; rows without ``instance_sn``; a missing,
    non-finite or negative request or limit; a density limit that is not -1 or a whole
    number >= 0; infinite times; deletion or scheduling before creation; a repeated
    ``instance_sn``. Under ``strict`` these raise ``InputError`` naming row and field.
    """
    source = str(path)
    lazy = scan_file(path)
    require_columns(lazy.collect_schema(), _COLUMNS, source=source)
    lazy = nan_to_null(as_numeric(lazy, _NUMERIC, source=source), _NUMERIC)
    raw = collect_input(lazy.select(list(_COLUMNS)), source=source)
    unique = RowRule("duplicate_instance", "instance_sn",
                     pl.col("instance_sn").is_first_distinct().not_(),
                     "repeats an earlier row's instance")
    kept, report = apply_rules(raw, _rules(), source=source, strict=strict, unique=unique)
    instances = kept.select(_output(upstream, name) for upstream, name in _COLUMNS.items())
    report.sha256 = sha256_file(path)
    return instances, report
