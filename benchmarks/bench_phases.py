"""Phase labels against a simple threshold labelling on real GenTD26 series (issue 5).

For every GenTD26 GPU duty-cycle container (and memory series), label each sample with
``detect_phases`` (change points, regimes, spikes) and with the plain per-sample
threshold (idle at or below the metric's idle threshold, else busy), and report the
share of samples on which they agree (``spike`` and the active regimes count as busy).
Series with idle/busy regimes are those where both states hold at least 10 % of the
samples. Also the per-phase P95 that ``forecast --by-phase`` reports, and the time to
label the whole panel.

Run: ``FORESIZE_DATA_MIRROR=... python benchmarks/bench_phases.py``.
"""

from __future__ import annotations

import time

import polars as pl

from foresize.evaluate.common import read_table
from foresize.profile.phases import detect_phases, phase_summary


def agreement(address: str) -> None:
    frame = read_table(address)
    began = time.perf_counter()
    labeled = detect_phases(frame)
    seconds = time.perf_counter() - began
    simple = detect_phases(frame, method="threshold")
    both = labeled.select("workload", "ts", busy=pl.col("phase") != "idle").join(
        simple.select("workload", "ts", busy_t=pl.col("phase") != "idle"), on=["workload", "ts"]
    )
    per_series = both.group_by("workload").agg(
        agree=(pl.col("busy") == pl.col("busy_t")).mean(),
        busy_share=pl.col("busy_t").mean(),
    )
    regimes = per_series.filter(pl.col("busy_share").is_between(0.1, 0.9))
    overall = float((both["busy"] == both["busy_t"]).mean())  # type: ignore[arg-type]
    print(
        f"\n{address}: {frame.height:,} samples, {per_series.height} series, "
        f"labelled in {seconds:.2f} s"
    )
    print(f"  agreement with the threshold labelling, all samples: {overall:.1%}")
    print(
        f"  series with idle/busy regimes (10-90% busy): {regimes.height}; mean agreement "
        f"{regimes['agree'].mean():.1%}, min {regimes['agree'].min():.1%}, share of those "
        f"series above 90%: {(regimes['agree'] > 0.9).mean():.1%}"
    )
    summary = phase_summary(labeled)
    print("  per-phase demand (median over series):")
    print(
        summary.group_by("phase")
        .agg(
            series=pl.len(),
            time_share=pl.col("time_share").median(),
            p50=pl.col("p50").median(),
            p95=pl.col("p95").median(),
            mean_dwell_s=pl.col("mean_dwell_s").median(),
        )
        .sort("phase")
    )


def main() -> None:
    for address in ("alibaba-gentd26:gpu_duty_cycle", "alibaba-gentd26:memory_util"):
        agreement(address)


if __name__ == "__main__":
    main()
