"""Autoscaling policies on real GenTD26 demand: replica-hours vs the oracle, unserved demand.

Run: ``FORESIZE_DATA_MIRROR=... python benchmarks/bench_autoscale.py [--quick]``.

Series: (a) LoRA request concurrency per minute (capacity 1 request per replica);
(b) system QPS summed over containers per 57 s step, capacity = peak / 20. Start-up
delay 2 and 5 steps. Every policy in one run, the HPA at targets 60/80/100 %, and the
LoRA series with a 3x spike for 10 minutes at 12 h (hybrid vs HPA). Deterministic
(no randomness in the simulator or the naive forecaster).
"""

from __future__ import annotations

import sys
import warnings

from foresize.ingest.sources import ReadOptions
from foresize.simulate.autoscale.demand import DemandSeries, open_demand
from foresize.simulate.autoscale.run import ServiceConfig, compare
from foresize.simulate.autoscale.stress import apply_injections, parse_injection

POLICIES = ["static", "hpa", "predictive", "hybrid", "oracle"]


def table(title: str, rows: list[dict[str, object]]) -> None:
    """Print one fixed-width table."""
    print(f"\n{title}")
    print(
        f"{'policy':<16}{'rep-h':>10}{'/oracle':>9}{'/oracle0':>10}{'unserved%':>11}"
        f"{'viol.min':>10}{'P95 s':>9}{'P99 s':>9}{'actions':>9}"
    )
    for r in rows:
        print(
            f"{r['policy']!s:<16}{r['replica_hours']:>10.1f}{r['vs_oracle']:>9.3f}"
            f"{r['vs_oracle_nodelay']:>10.3f}{100 * float(r['unserved_frac']):>11.2f}"  # type: ignore[arg-type]
            f"{r['violation_min']:>10.0f}{r['latency_p95_s']:>9.1f}{r['latency_p99_s']:>9.1f}"
            f"{r['actions']:>9}"
        )


def config(series: DemandSeries, capacity: float, startup: int) -> ServiceConfig:
    """The service for one series."""
    return ServiceConfig(
        capacity=capacity,
        startup=startup,
        step_s=series.step_s,
        service_time_s=series.service_time_s or 1.0 / capacity,
    )


def main() -> None:
    """Print every table."""
    quick = "--quick" in sys.argv
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lora = open_demand("alibaba-gentd26:lora", ReadOptions())
        qps = open_demand("alibaba-gentd26:qps", ReadOptions(), metric="qps")
    print(
        f"LoRA: {lora.values.size} steps of {lora.step_s:g} s, peak {lora.values.max():g}, "
        f"mean {lora.values.mean():.3f}; QPS: {qps.values.size} steps of {qps.step_s:g} s, "
        f"peak {qps.values.max():.2f}, filled {qps.filled}"
    )
    for name, series, capacity in (("LoRA", lora, 1.0), ("QPS", qps, float(qps.values.max()) / 20)):
        for startup in (2,) if quick else (2, 5):
            cfg = config(series, capacity, startup)
            result = compare(series.values, POLICIES, cfg, offered=series.offered)
            table(f"{name}, start-up {startup} steps, capacity {capacity:.3f}", result.rows)
            hpa = [
                dict(r, policy=f"hpa@{round(100 * t)}%")
                for t in (0.6, 0.8, 1.0)
                for r in compare(
                    series.values,
                    ["hpa"],
                    cfg,
                    settings={"hpa": {"target": t}},
                    offered=series.offered,
                ).rows
                if r["policy"] == "hpa"
            ]
            table(f"{name}, start-up {startup}: HPA targets", hpa)
    busiest_h = int(lora.values.argmax()) * lora.step_s / 3600
    for text in (
        "spike:3x:10m@12h",
        f"spike:3x:30m@{busiest_h - 0.25:.2f}h",
        "blackout:24h@200h",
        "shift:+50%@276h",
    ):
        stressed, visible, factor = apply_injections(
            lora.values, lora.step_s, [parse_injection(text)]
        )
        offered = None if lora.offered is None else lora.offered * factor
        result = compare(
            stressed,
            ["hpa", "predictive", "hybrid", "oracle"],
            config(lora, 1.0, 2),
            visible=visible,
            offered=offered,
        )
        table(f"LoRA with {text}, start-up 2", result.rows)


if __name__ == "__main__":
    main()
