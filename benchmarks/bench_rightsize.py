"""Right-sizing benchmark on the real GenTD26 memory telemetry (issue 8).

Protocol (``foresize.evaluate.rightsizing``): per container with at least 100 history
points, recommend from the first 70 % of its samples and judge on the last 30 %; the
recommendation is an enforced limit (usage above it is an OOM). Printed: the headline
table (foresize, VPA-style, KRR-style, history max, oracle), the target check against
VPA, every strategy's trade-off curve, and the GPU sharing analysis on the duty cycles.

Run: ``FORESIZE_DATA_MIRROR=... python benchmarks/bench_rightsize.py [--risk 0.01]``
(deterministic, a few seconds). ``foresize evaluate rightsize`` writes the same as a report.
"""

from __future__ import annotations

import argparse

import polars as pl

from foresize.evaluate.common import read_table
from foresize.evaluate.rightsizing import (
    DEFAULT_RISK,
    sharing_table,
    strategy_scores,
    target_check,
    tradeoff_curves,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--risk", type=float, default=DEFAULT_RISK)
    args = parser.parse_args()
    pl.Config.set_tbl_rows(100).set_tbl_cols(20).set_tbl_width_chars(200)
    memory = read_table("alibaba-gentd26:memory_util")
    scores = strategy_scores(memory, risk=args.risk)
    print(f"pod_memory_util: recommend on the first 70 %, judge on the last 30 %, risk {args.risk}")
    print(pl.DataFrame([s.row() for s in scores]))
    print("target vs vpa:", target_check(scores))
    print("\ntrade-off curves (reserved/oracle vs containers violated)")
    print(tradeoff_curves(memory))
    print("\nGPU sharing on pod_gpu_duty_cycle (milli-GPU)")
    print(sharing_table(read_table("alibaba-gentd26:gpu_duty_cycle")))


if __name__ == "__main__":
    main()
