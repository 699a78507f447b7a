"""The canonical telemetry frame and the table of metric names it may carry.

Every reader maps its source into this long format, so every later stage
(profile, forecast, recommend, simulate) reads one shape only.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from foresize.core.errors import SchemaMismatchError

TS_DTYPE = pl.Datetime("us", "UTC")

TELEMETRY = pl.Schema(
    [("workload", pl.String()), ("metric", pl.String()), ("ts", TS_DTYPE), ("value", pl.Float64())]
)
TELEMETRY_OPTIONAL = pl.Schema([("phase", pl.String()), ("tenant", pl.String()),
                                ("node", pl.String())])
SERIES_KEYS = ("workload", "metric")
GAP_FACTOR = 2.0  # a step longer than twice a series' median sampling interval is a gap


@dataclass(frozen=True, slots=True)
class Metric:
    """A canonical metric: its unit, what it measures and what counts as idle."""

    name: str
    unit: str
    description: str
    nonnegative: bool = True
    idle_at_or_below: float = 0.0


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("cpu_cores", "cores", "CPU cores in use", idle_at_or_below=0.01),
        Metric("cpu_util_pct", "%", "CPU utilisation of the allocation", idle_at_or_below=1.0),
        Metric("mem_bytes", "bytes", "resident main memory"),
        Metric("mem_uss_bytes", "bytes", "unique main memory (freed if the process exits)"),
        Metric("mem_util_pct", "%", "main memory in use, percent of the limit"),
        Metric("disk_read_bytes_per_s", "bytes/s", "bytes read from storage per second"),
        Metric("disk_write_bytes_per_s", "bytes/s", "bytes written to storage per second"),
        Metric("threads", "threads", "threads of the process tree"),
        Metric("gpu_util_pct", "%", "GPU duty cycle (SM busy time)", idle_at_or_below=1.0),
        Metric("gpu_mem_bytes", "bytes", "GPU memory in use"),
        Metric("gpu_mem_util_pct", "%", "GPU memory in use, percent of the device"),
        Metric("qps", "1/s", "requests per second"),
        Metric("queue_len", "requests", "requests waiting in a queue"),
        Metric("queue_wait_s", "s", "time a request waited in a queue"),
        Metric("latency_s", "s", "end-to-end request latency"),
        Metric("predict_latency_s", "s", "model inference latency, loading excluded"),
        Metric("pipeline_load_s", "s", "time to load or switch an inference pipeline"),
        Metric("base_model_load_s", "s", "time to load a base model"),
        Metric("lora_load_s", "s", "time to load a LoRA adapter"),
        Metric("controlnet_load_s", "s", "time to load a ControlNet"),
        Metric("exec_time_s", "s", "execution time of one request"),
        Metric("arrivals", "requests", "requests that arrived in a sampling interval"),
        Metric("net_rx_bytes_per_s", "bytes/s", "network bytes received per second"),
        Metric("net_tx_bytes_per_s", "bytes/s", "network bytes sent per second"),
        Metric("power_w", "W", "electrical power draw"),
    )
}


def metric_info(name: str) -> Metric:
    """Return the canonical entry for ``name``, or a unitless entry for a custom metric."""
    return METRICS.get(name) or Metric(name, "", "custom metric", nonnegative=False)


def check_telemetry(frame: pl.DataFrame | pl.LazyFrame, *, source: str = "telemetry") -> None:
    """Raise ``SchemaMismatchError`` naming the first column that is missing or mistyped."""
    schema = frame.collect_schema()
    for column, expected in TELEMETRY.items():
        if column not in schema:
            raise SchemaMismatchError(
                f"{source}: missing required column {column!r} "
                f"(found: {', '.join(schema.names()) or 'none'})",
                hint="map your columns with --map ts=COL,workload=COL,metric=COL,value=COL",
            )
        if schema[column] != expected:
            raise SchemaMismatchError(
                f"{source}: column {column!r} is {schema[column]}, expected {expected}"
            )
    for column, expected in TELEMETRY_OPTIONAL.items():
        if column in schema and schema[column] != expected:
            raise SchemaMismatchError(
                f"{source}: column {column!r} is {schema[column]}, expected {expected}"
            )
