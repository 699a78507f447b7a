"""Alibaba cluster-trace-v2026-GenAI (GenTD26): serving telemetry and the LoRA request trace.

GenTD26 ships one long CSV per metric (``value``, ``timestamp_anon``, ``container_ip``,
columns in varying order), each inside a tar.gz. ``read_gentd26`` maps one such table
to canonical telemetry:

* ``workload`` is ``container_ip`` (an md5 of the container IP). The gateway tables
  (``qps``, ``queue_size``, ``queue_rt``) report the gateway's own series with an empty
  ``container_ip``; those rows become workload ``"gateway"``. In the pod tables an empty
  ``container_ip`` is an unknown container, so the row is dropped (``missing_key``).
* ``ts`` is ``timestamp_anon``: epoch seconds (anonymised by a constant shift), read as
  UTC. Non-finite or absurd (|s| >= 1e11) timestamps count as empty (``missing_key``).
* ``value`` is scaled to the canonical unit of the table's metric (see ``GENTD26_TABLES``).
  ``pod_memory_util_anon`` holds fractions in [0, 1) although its README says percent
  (measured on the mirror: 214,890 rows, max 0.993, mean 0.486), so it is scaled by 100
  into ``mem_util_pct``; its one negative sample (-1.2e-5) is dropped as
  ``negative_value``. Latencies and queue times are milliseconds, scaled to seconds.
* ``qps`` keeps ``request_type`` as ``tenant`` (``api_requests``/``generative_requests``).
  In the trace API requests come only from the gateway (empty ``container_ip``) and
  generative requests only from containers, so (workload, metric, ts) stays unique.
* Each latency table is its own metric: ``latency_s`` is the end-to-end pipeline,
  ``predict_latency_s`` pure model inference, and ``*_load_s`` the loading of
  pipelines, base models, LoRAs and ControlNets. Distinct metrics keep them distinct
  series when tables are stacked (``phase`` is kept for a workload's own stages).

The LoRA request trace (``lora_request_trace``) is one row per user request, not
telemetry: ``read_gentd26_lora`` types it, and ``lora_arrivals`` counts arrivals per
interval and generation type so it can be profiled and forecast like any telemetry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import polars as pl

from foresize.core.errors import InputError, UnknownNameError
from foresize.core.guard import reader
from foresize.core.io import sha256_file
from foresize.core.schemas import TELEMETRY, TS_DTYPE
from foresize.ingest.alibaba._common import (
    as_numeric,
    epoch_s_to_ts,
    file_stem,
    nan_to_null,
    not_whole,
    require_columns,
)
from foresize.ingest.report import IngestReport
from foresize.ingest.tabular import collect_input, scan_file
from foresize.ingest.validate import RowRule, apply_rules, canonicalize

GATEWAY = "gateway"
LORA_TABLE = "lora"
LORA_FILE = "lora_request_trace"
_MS = 0.001


@dataclass(frozen=True, slots=True)
class Gentd26Table:
    """How one GenTD26 file maps to canonical telemetry.

    ``file`` is the upstream name without extension (``NAME.csv``, mirrored as
    ``NAME.tar.gz``); ``value`` is multiplied by ``scale`` into ``metric``'s unit.
    """

    file: str
    metric: str
    scale: float
    description: str
    gateway_when_empty: bool = False
    tenant_column: str | None = None


GENTD26_TABLES: dict[str, Gentd26Table] = {
    "gpu_duty_cycle": Gentd26Table(
        "pod_gpu_duty_cycle_anon", "gpu_util_pct", 1.0, "GPU duty cycle per pod, percent"
    ),
    "memory_util": Gentd26Table(
        "pod_memory_util_anon", "mem_util_pct", 100.0,
        "container memory utilisation; the trace stores a 0..1 fraction, scaled to percent",
    ),
    "gpu_memory": Gentd26Table(
        "pod_gpu_memory_used_bytes_anon", "gpu_mem_bytes", 1.0, "GPU memory used per pod, bytes"
    ),
    "qps": Gentd26Table(
        "qps", "qps", 1.0, "requests per second; request_type kept as tenant",
        gateway_when_empty=True, tenant_column="request_type",
    ),
    "queue_size": Gentd26Table(
        "queue_size_raw_anon", "queue_len", 1.0, "gateway queue backlog, requests",
        gateway_when_empty=True,
    ),
    "queue_rt": Gentd26Table(
        "queue_rt_raw_anon", "queue_wait_s", _MS, "time queued at the gateway, ms to s",
        gateway_when_empty=True,
    ),
    "model_predict": Gentd26Table(
        "model_predict_data_anon", "predict_latency_s", _MS, "pure inference latency, ms to s"
    ),
    "pipeline_inference": Gentd26Table(
        "pipeline_inference_data_anon", "latency_s", _MS,
        "end-to-end pipeline latency incl. loading, ms to s",
    ),
    "pipeline_update": Gentd26Table(
        "pipeline_update_latency_anon", "pipeline_load_s", _MS,
        "pipeline (base model, LoRA, ControlNet) switch latency, ms to s",
    ),
    "base_model_update": Gentd26Table(
        "base_model_update_latency_anon", "base_model_load_s", _MS,
        "base model load latency, ms to s",
    ),
    "lora_update": Gentd26Table(
        "lora_update_latency_anon", "lora_load_s", _MS, "LoRA adapter load latency, ms to s",
    ),
    "controlnet": Gentd26Table(
        "controlnet_latency_data_anon", "controlnet_load_s", _MS,
        "ControlNet load latency, ms to s",
    ),
}

_TELEMETRY_COLUMNS = ("timestamp_anon", "value", "container_ip")


def table_for(path: str | os.PathLike[str]) -> str:
    """The GenTD26 table a file holds, from its name (``qps.tar.gz`` -> ``"qps"``).

    Both the upstream file name and the table name are accepted, with ``.csv``,
    ``.tar.gz`` or ``.tgz``; the LoRA request trace gives ``"lora"``.
    """
    stem = file_stem(path)
    if stem in (LORA_FILE, LORA_TABLE):
        return LORA_TABLE
    for name, spec in GENTD26_TABLES.items():
        if stem in (spec.file, name):
            return name
    valid = ", ".join([*(s.file for s in GENTD26_TABLES.values()), LORA_FILE])
    raise InputError(
        f"{path}: cannot tell the GenTD26 table from the file name; expected one of: {valid}",
        hint="pass table=NAME (or NAME:TABLE on the command line)",
    )


def _telemetry_table(path: str | os.PathLike[str], table: str | None) -> Gentd26Table:
    name = table_for(path) if table is None else table
    if name == LORA_TABLE:
        raise InputError(
            f"{path}: the LoRA request trace holds requests, not telemetry",
            hint="read it with read_gentd26_lora and count arrivals with lora_arrivals",
        )
    if name not in GENTD26_TABLES:
        raise UnknownNameError("GenTD26 table", name, list(GENTD26_TABLES))
    return GENTD26_TABLES[name]


def _slug(expr: pl.Expr) -> pl.Expr:
    """'API Requests' -> 'api_requests': names in foresize are lowercase snake_case."""
    slug = (
        expr.cast(pl.String).str.to_lowercase().str.replace_all(r"[^a-z0-9]+", "_")
        .str.strip_chars("_")
    )
    return pl.when(slug != "").then(slug)


def _scan(path: str | os.PathLike[str], spec: Gentd26Table) -> pl.LazyFrame:
    source = str(path)
    frame = scan_file(path)
    needed = [*_TELEMETRY_COLUMNS, *([spec.tenant_column] if spec.tenant_column else [])]
    require_columns(frame.collect_schema(), needed, source=source)
    frame = as_numeric(frame, ("timestamp_anon", "value"), source=source)
    workload = pl.col("container_ip").cast(pl.String)
    if spec.gateway_when_empty:
        workload = workload.fill_null(GATEWAY)
    columns = [
        workload.alias("workload"),
        pl.lit(spec.metric).alias("metric"),
        epoch_s_to_ts(pl.col("timestamp_anon")).alias("ts"),
        (pl.col("value").cast(pl.Float64) * spec.scale).alias("value"),
    ]
    if spec.tenant_column is not None:
        columns.append(_slug(pl.col(spec.tenant_column)).alias("tenant"))
    return frame.select(columns)


def scan_gentd26(path: str | os.PathLike[str], *, table: str | None = None) -> pl.LazyFrame:
    """Lazily map one GenTD26 telemetry file to canonical columns (not yet validated).

    ``table`` names the table (a key of ``GENTD26_TABLES``) when the file name does not.
    """
    return _scan(path, _telemetry_table(path, table))


@reader
def read_gentd26(
    path: str | os.PathLike[str], *, table: str | None = None, strict: bool = False
) -> tuple[pl.DataFrame, IngestReport]:
    """Read one GenTD26 telemetry file as canonical telemetry with its ingest report.

    Invalid rows (empty container in a pod table, NaN or negative values, a repeated
    container and timestamp) are dropped and counted; under ``strict`` they raise.
    """
    source = str(path)
    spec = _telemetry_table(path, table)
    lazy = _scan(path, spec)
    frame, report = canonicalize(collect_input(lazy, source=source), source=source, strict=strict)
    report.sha256 = sha256_file(path)
    report.notes.append(f"{spec.file} -> {spec.metric}: {spec.description}")
    return frame, report


# --- the LoRA request trace -------------------------------------------------------------

LORA_COLUMNS: dict[str, str] = {  # upstream column -> column of the typed request frame
    "gmt_create": "ts",
    "predict_type": "predict_type",
    "predict_status": "status",
    "exec_time_seconds": "exec_time_s",
    "groupId": "group",
    "prompt_length": "prompt_length",
    "negative_prompt_length": "negative_prompt_length",
    "num_images_per_prompt": "num_images",
    "num_inference_steps": "num_inference_steps",
    "checkpoint_model_version_id": "model",
    "num_lora": "num_lora",
}
_LORA_COUNTS = (
    "prompt_length", "negative_prompt_length", "num_images_per_prompt",
    "num_inference_steps", "num_lora",
)
_LORA_TS_FORMAT = "%Y-%m-%d %H:%M:%S"
LORA_REQUESTS = pl.Schema(
    {
        "ts": TS_DTYPE,
        "predict_type": pl.String(),
        "status": pl.String(),
        "exec_time_s": pl.Float64(),
        "group": pl.String(),
        "prompt_length": pl.Int64(),
        "negative_prompt_length": pl.Int64(),
        "num_images": pl.Int64(),
        "num_inference_steps": pl.Int64(),
        "model": pl.String(),
        "num_lora": pl.Int64(),
    }
)
_TS = "__ts"


def _lora_rules() -> list[RowRule]:
    exec_time = pl.col("exec_time_seconds").cast(pl.Float64)
    counts = [
        RowRule(
            f"invalid_{column}", column,
            not_whole(column) | (pl.col(column).cast(pl.Float64) < 0),
            "is not a whole number >= 0",
        )
        for column in _LORA_COUNTS
    ]
    return [
        RowRule("invalid_ts", "gmt_create", pl.col(_TS).is_null(),
                "is not a time like '2024-11-15 16:57:50'"),
        RowRule("missing_predict_type", "predict_type", pl.col("predict_type").is_null(),
                "is empty"),
        RowRule("invalid_exec_time", "exec_time_seconds",
                exec_time.is_null() | ~exec_time.is_finite(), "is empty, NaN or infinite"),
        RowRule("negative_exec_time", "exec_time_seconds", exec_time < 0, "is negative"),
        *counts,
    ]


@reader
def read_gentd26_lora(
    path: str | os.PathLike[str], *, strict: bool = False
) -> tuple[pl.DataFrame, IngestReport]:
    """Read the LoRA request trace as a typed request frame (``LORA_REQUESTS``), by arrival.

    ``gmt_create`` (shifted wall-clock time, no zone) is read as UTC. Rows are dropped,
    with counts, for an empty or unparsable time, an empty ``predict_type``, an empty,
    NaN, infinite or negative execution time, or a count field that is not a whole
    number >= 0. Empty (or NaN) optional fields, e.g. ``negative_prompt_length``, are null;
    requests in ``PENDING`` keep their ``exec_time_s`` of 0 and ``status`` says why.
    """
    source = str(path)
    lazy = scan_file(path)
    require_columns(lazy.collect_schema(), LORA_COLUMNS, source=source)
    numbers = ("exec_time_seconds", *_LORA_COUNTS)
    lazy = nan_to_null(as_numeric(lazy, numbers, source=source), numbers)
    parsed = pl.col("gmt_create").cast(pl.String).str.to_datetime(
        _LORA_TS_FORMAT, time_unit="us", strict=False
    ).dt.replace_time_zone("UTC")
    raw = collect_input(lazy.with_columns(parsed.alias(_TS)), source=source)
    kept, report = apply_rules(raw, _lora_rules(), source=source, strict=strict)
    typed = kept.select(
        pl.col(_TS).alias("ts"),
        *(
            pl.col(upstream).cast(LORA_REQUESTS[name], strict=False).alias(name)
            for upstream, name in LORA_COLUMNS.items()
            if name != "ts"
        ),
    )
    backwards = pl.col("ts").diff() < pl.duration(microseconds=0)
    report.reordered = int(typed.select(backwards.sum()).item())
    report.sha256 = sha256_file(path)
    return typed.sort("ts", maintain_order=True), report


def lora_arrivals(requests: pl.DataFrame, *, every: str = "1m") -> pl.DataFrame:
    """Canonical telemetry of request arrivals: one ``arrivals`` series per ``predict_type``.

    Each series counts requests whose ``ts`` falls in each ``every`` interval (a polars
    duration such as ``"1m"``, ``"15m"`` or ``"1h"``) over the span of the whole trace,
    zero-filled, so every series shares one regular grid that forecasters can use as is.
    Rows without a time or type are not counted (``read_gentd26_lora`` yields none).
    """
    require_columns(requests.schema, ("ts", "predict_type"), source="lora requests")
    valid = requests.filter(pl.col("ts").is_not_null() & pl.col("predict_type").is_not_null())
    if valid.is_empty():
        return pl.DataFrame(schema=TELEMETRY)
    try:
        bucketed = valid.select(
            pl.col("predict_type").cast(pl.String).alias("workload"),
            pl.col("ts").dt.truncate(every),
        )
        grid = bucketed.select(
            pl.datetime_range(
                pl.col("ts").min(), pl.col("ts").max(), every, time_unit="us", time_zone="UTC"
            ).alias("ts")
        )
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise InputError(
            "The 'every' parameter of lora_arrivals must be a polars duration such as "
            f"'1m' or '1h'. Got {every!r} instead."
        ) from exc
    counts = bucketed.group_by("workload", "ts").agg(pl.len().cast(pl.Float64).alias("value"))
    workloads = bucketed.select(pl.col("workload").unique().sort())
    return (
        workloads.join(grid, how="cross")
        .join(counts, on=["workload", "ts"], how="left")
        .select(
            "workload",
            pl.lit("arrivals").alias("metric"),
            pl.col("ts").cast(TS_DTYPE),
            pl.col("value").fill_null(0.0),
        )
        .sort("workload", "ts")
    )


@reader
def read_gentd26_lora_arrivals(
    path: str | os.PathLike[str], *, every: str = "1m", strict: bool = False
) -> tuple[pl.DataFrame, IngestReport]:
    """The LoRA request trace as telemetry: ``arrivals`` per ``every`` and request type.

    The report is the request reader's (what was dropped from the trace); its
    ``rows_out`` is the number of requests counted.
    """
    requests, report = read_gentd26_lora(path, strict=strict)
    return lora_arrivals(requests, every=every), report
