"""Alibaba cluster-trace-gpu-v2020 (PAI): seven headerless tables of ML jobs on GPUs.

Upstream ships each table as a headerless CSV inside ``pai_<table>.tar.gz`` with the
column names in a separate ``.header`` file; ``PAI_TABLES`` embeds those names (a test
checks them against the mirror) with the dtypes the trace's values take.

Units, from the trace README: ``plan_cpu`` and ``cpu_usage`` are percent of one core
(600 = 6 cores), ``plan_gpu`` and ``gpu_wrk_util`` percent of one GPU, memory columns
are GB, and times are seconds since an undisclosed origin (shifted by a constant, so
``pai_usage`` reads them as UTC epoch seconds; only time of day in UTC+8 is real).
"GB" is binary: the README's own examples are MiB counts divided by 1024
(``plan_mem`` 29.296875 = 30000/1024, ``max_mem`` 2.3935546875 = 2451/1024), so
``pai_usage`` converts GB with 2**30 bytes.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from foresize.core.errors import InputError, SchemaMismatchError, UnknownNameError
from foresize.core.guard import reader
from foresize.core.io import sha256_file
from foresize.core.schemas import TS_DTYPE
from foresize.ingest.alibaba._common import (
    epoch_s_to_ts,
    file_stem,
    require_columns,
)
from foresize.ingest.archive import extracted_csv, is_archive
from foresize.ingest.report import IngestReport
from foresize.ingest.tabular import check_readable, collect_input
from foresize.ingest.validate import RowRule, apply_rules

GIB = 2**30
_S, _F = pl.String, pl.Float64


@dataclass(frozen=True, slots=True)
class PaiTable:
    """One PAI table: its upstream file stem, columns in file order, and row rules.

    Rows with an empty ``keys`` column or a negative ``nonnegative`` column are dropped.
    """

    file: str
    columns: pl.Schema
    keys: tuple[str, ...]
    nonnegative: tuple[str, ...] = ()


PAI_TABLES: dict[str, PaiTable] = {
    "job": PaiTable(
        "pai_job_table",
        pl.Schema({"job_name": _S, "inst_id": _S, "user": _S, "status": _S,
                   "start_time": _F, "end_time": _F}),
        keys=("job_name",),
    ),
    "task": PaiTable(
        "pai_task_table",
        pl.Schema({"job_name": _S, "task_name": _S, "inst_num": _F, "status": _S,
                   "start_time": _F, "end_time": _F, "plan_cpu": _F, "plan_mem": _F,
                   "plan_gpu": _F, "gpu_type": _S}),
        keys=("job_name", "task_name"),
        nonnegative=("inst_num", "plan_cpu", "plan_mem", "plan_gpu"),
    ),
    "instance": PaiTable(
        "pai_instance_table",
        pl.Schema({"job_name": _S, "task_name": _S, "inst_name": _S, "worker_name": _S,
                   "inst_id": _S, "status": _S, "start_time": _F, "end_time": _F,
                   "machine": _S}),
        keys=("job_name", "task_name"),
    ),
    "sensor": PaiTable(
        "pai_sensor_table",
        pl.Schema({"job_name": _S, "task_name": _S, "worker_name": _S, "inst_id": _S,
                   "machine": _S, "gpu_name": _S, "cpu_usage": _F, "gpu_wrk_util": _F,
                   "avg_mem": _F, "max_mem": _F, "avg_gpu_wrk_mem": _F,
                   "max_gpu_wrk_mem": _F, "read": _F, "write": _F, "read_count": _F,
                   "write_count": _F}),
        keys=("worker_name",),
    ),
    "group_tag": PaiTable(
        "pai_group_tag_table",
        pl.Schema({"inst_id": _S, "user": _S, "gpu_type_spec": _S, "group": _S,
                   "workload": _S}),
        keys=("inst_id",),
    ),
    "machine_spec": PaiTable(
        "pai_machine_spec",
        pl.Schema({"machine": _S, "gpu_type": _S, "cap_cpu": pl.Int64, "cap_mem": pl.Int64,
                   "cap_gpu": pl.Int64}),
        keys=("machine",),
        nonnegative=("cap_cpu", "cap_mem", "cap_gpu"),
    ),
    "machine_metric": PaiTable(
        "pai_machine_metric",
        pl.Schema({"worker_name": _S, "machine": _S, "start_time": _F, "end_time": _F,
                   "machine_cpu_iowait": _F, "machine_cpu_kernel": _F, "machine_cpu_usr": _F,
                   "machine_gpu": _F, "machine_load_1": _F, "machine_net_receive": _F,
                   "machine_num_worker": _F, "machine_cpu": _F}),
        keys=("worker_name",),
    ),
}


def _table_name(path: Path, table: str | None) -> str:
    if table is not None:
        if table not in PAI_TABLES:
            raise UnknownNameError("PAI table", table, list(PAI_TABLES))
        return table
    stem = file_stem(path)
    for name, spec in PAI_TABLES.items():
        if stem in (spec.file, name):
            return name
    raise InputError(
        f"{path}: cannot tell the PAI table from the file name; expected one of: "
        + ", ".join(spec.file for spec in PAI_TABLES.values()),
        hint="pass table=NAME",
    )


def _first_row(path: Path, csv_path: Path) -> list[str]:
    try:
        with csv_path.open(newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: unreadable first line ({exc})") from exc


def _check_header_file(path: Path, name: str) -> None:
    """A ``.header`` file beside the data (as upstream ships them) must match ``PAI_TABLES``."""
    header = path.with_name(f"{file_stem(path)}.header")
    if not header.is_file():
        return
    found = header.read_text(encoding="utf-8").strip()
    expected = ",".join(PAI_TABLES[name].columns)
    if found != expected:
        raise SchemaMismatchError(
            f"{header}: columns {found!r} differ from the PAI {name} table's {expected!r}"
        )


def scan_pai_table(
    path: str | os.PathLike[str], *, table: str | None = None
) -> pl.LazyFrame:
    """Lazily read one PAI table (``.tar.gz`` as shipped, or its extracted ``.csv``).

    An archive is extracted once into the cache (``archive.extracted_csv``) and the CSV is
    scanned, so a multi-GB table streams instead of being loaded. The file name, the first
    row's width and a ``.header`` file beside it are checked now; values are parsed (and
    parse errors raised) when the frame is collected. Rows are not filtered here:
    ``read_pai_table`` applies and counts the row rules.
    """
    path = Path(path)
    check_readable(path)
    name = _table_name(path, table)
    spec = PAI_TABLES[name]
    _check_header_file(path, name)
    csv_path = extracted_csv(path) if is_archive(path) else path
    if csv_path.stat().st_size == 0:
        raise InputError(f"{path}: the CSV inside the archive is empty")
    first = _first_row(path, csv_path)
    if len(first) != len(spec.columns):
        raise SchemaMismatchError(
            f"{path}: {len(first)} columns in the first row, the PAI {name} table has "
            f"{len(spec.columns)} ({', '.join(spec.columns)})"
        )
    return pl.scan_csv(
        csv_path, has_header=False, schema=spec.columns, null_values=[""],
        skip_rows=1 if first == spec.columns.names() else 0,
    ).with_columns(pl.col(pl.Float64).fill_nan(None))


@reader
def read_pai_table(
    path: str | os.PathLike[str], *, table: str | None = None, strict: bool = False
) -> tuple[pl.DataFrame, IngestReport]:
    """Read one PAI table (``.tar.gz`` as shipped, or its extracted ``.csv``).

    The table comes from the file name (``pai_task_table.tar.gz`` -> ``"task"``) unless
    ``table`` is given. A first line equal to the header is skipped, so files that got
    one added still read. Float columns' NaN becomes null (missing, like an empty field).
    Rows with an empty key or a negative planned resource or capacity are dropped and
    counted; under ``strict`` they raise.
    """
    path = Path(path)
    lazy = scan_pai_table(path, table=table)
    name = _table_name(path, table)
    spec = PAI_TABLES[name]
    raw = collect_input(lazy, source=str(path))
    rules = [
        *(RowRule("missing_key", c, pl.col(c).is_null(), "is empty") for c in spec.keys),
        *(RowRule("negative_value", c, pl.col(c) < 0, "is negative") for c in spec.nonnegative),
    ]
    frame, report = apply_rules(raw, rules, source=str(path), strict=strict)
    report.sha256 = sha256_file(path)
    return frame, report


_INSTANCE_COLUMNS = ("job_name", "task_name", "worker_name", "status", "start_time",
                     "end_time", "machine")
_TASK_COLUMNS = ("job_name", "task_name", "plan_cpu", "plan_mem", "plan_gpu", "gpu_type")
_SENSOR_COLUMNS = ("worker_name", "cpu_usage", "gpu_wrk_util", "avg_mem", "max_mem",
                   "avg_gpu_wrk_mem", "max_gpu_wrk_mem")
_USAGE_TEXT = ("job_name", "task_name", "worker_name", "machine", "gpu_type", "status")
_USAGE_NUMBERS = ("plan_cpu_cores", "used_cpu_cores", "plan_gpu", "used_gpu", "plan_mem_bytes",
                  "avg_mem_bytes", "max_mem_bytes", "avg_gpu_mem_bytes", "max_gpu_mem_bytes")
PAI_USAGE = pl.Schema(
    {
        **{column: pl.String() for column in _USAGE_TEXT},
        "start": TS_DTYPE,
        "end": TS_DTYPE,
        **{column: pl.Float64() for column in _USAGE_NUMBERS},
    }
)


def _one_row_per_worker(instances: pl.DataFrame) -> pl.DataFrame:
    """Upstream's ``get_dfiw``: drop unnamed workers, keep a repeat's last row.

    Rows are ordered by (status, start_time, end_time), nulls last as pandas sorts them.
    """
    return (
        instances.filter(pl.col("worker_name").is_not_null())
        .sort("status", "start_time", "end_time", nulls_last=True, maintain_order=True)
        .unique("worker_name", keep="last", maintain_order=True)
    )


def _seconds_to_ts(column: str) -> pl.Expr:
    """0 means 'never started/ended' in the trace (upstream's analysis treats it as NaN)."""
    seconds = pl.col(column)
    return epoch_s_to_ts(pl.when(seconds != 0).then(seconds))


def pai_usage(
    tasks: pl.DataFrame, instances: pl.DataFrame, sensors: pl.DataFrame
) -> pl.DataFrame:
    """Per instance (worker): what its task planned next to what its sensors measured.

    Instances are joined to their task on (job_name, task_name) for the plan and the
    assigned ``gpu_type``, and to the sensor table on ``worker_name`` for usage; both
    are left joins, so an instance without a plan or sensor row keeps nulls there.
    As the trace's analysis does, instances without a ``worker_name`` are left out and a
    repeated worker counts once; repeated task or sensor rows count from their first,
    so no instance is doubled.
    Cores and GPUs are fractions (percent / 100); memory is bytes (GB x 2**30, see the
    module docstring); ``start``/``end`` are UTC, null where the trace has 0.
    """
    for label, frame, columns in (("tasks", tasks, _TASK_COLUMNS),
                                  ("instances", instances, _INSTANCE_COLUMNS),
                                  ("sensors", sensors, _SENSOR_COLUMNS)):
        require_columns(frame.schema, columns, source=f"pai_usage {label}")
    plans = tasks.select(_TASK_COLUMNS).unique(["job_name", "task_name"], keep="first",
                                               maintain_order=True)
    usage = sensors.select(_SENSOR_COLUMNS).unique("worker_name", keep="first",
                                                   maintain_order=True)
    joined = (
        _one_row_per_worker(instances.select(_INSTANCE_COLUMNS))
        .join(plans, on=["job_name", "task_name"], how="left")
        .join(usage, on="worker_name", how="left")
    )
    return joined.select(
        *_USAGE_TEXT,
        _seconds_to_ts("start_time").alias("start"),
        _seconds_to_ts("end_time").alias("end"),
        (pl.col("plan_cpu") / 100).alias("plan_cpu_cores"),
        (pl.col("cpu_usage") / 100).alias("used_cpu_cores"),
        (pl.col("plan_gpu") / 100).alias("plan_gpu"),
        (pl.col("gpu_wrk_util") / 100).alias("used_gpu"),
        (pl.col("plan_mem") * GIB).alias("plan_mem_bytes"),
        (pl.col("avg_mem") * GIB).alias("avg_mem_bytes"),
        (pl.col("max_mem") * GIB).alias("max_mem_bytes"),
        (pl.col("avg_gpu_wrk_mem") * GIB).alias("avg_gpu_mem_bytes"),
        (pl.col("max_gpu_wrk_mem") * GIB).alias("max_gpu_mem_bytes"),
    ).cast(PAI_USAGE)
