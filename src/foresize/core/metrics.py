"""The canonical metric names: each one's unit, what it measures and what counts as idle.

Kept apart from ``core.schemas`` (the polars frame schema) so that the units, the CLI's
help and start-up can look a metric up without importing polars.
"""

from __future__ import annotations

from dataclasses import dataclass


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


#: Percent metrics never need more than all of it: a device cannot be more than fully busy.
PERCENT_CAP = 100.0


def percent_cap(metric: str) -> float | None:
    """100 for percentage metrics, else none: the most a reading of ``metric`` can be."""
    return PERCENT_CAP if metric_info(metric).unit == "%" else None
