"""Sampler overhead (% of one core) and accuracy of recorded peaks against known allocations.

Overhead: ``record`` samples a sleeping process tree (1 process, and 1 + 8 children) at
1 s and 100 ms; the sampler's own CPU time (getrusage, the sampling loop only) over the
wall time. Accuracy: a child allocates N MiB (pages touched) after a pause; the recorded
peak RSS minus the pre-allocation level, against N.
Run: ``python benchmarks/bench_sampler.py [--seconds 20]``.
"""

from __future__ import annotations

import argparse
import sys

import polars as pl

from foresize.ingest.sampler import record, start_command

TREE = "sleep {s} & " * 8 + "sleep {s}; wait"
ALLOC = ("import time; time.sleep(1.0); b = bytearray(b'x') * ({mib} * 2**20); "
         "time.sleep(1.0)")


def overhead(seconds: float) -> None:
    print(f"{'workload':22} {'interval':>8} {'samples':>8} {'wall s':>7} {'sampler CPU s':>14} "
          f"{'% of a core':>12}")
    for label, command in (("1 process", ["sleep", str(seconds)]),
                           ("9 processes (tree)", ["sh", "-c", TREE.format(s=seconds)])):
        for interval in (1.0, 0.1):
            run = record(start_command(command), name="bench", interval_s=interval,
                         own_child=True)
            samples = run.telemetry["ts"].n_unique()
            print(f"{label:22} {interval:>7}s {samples:>8} {run.wall_s:>7.1f} "
                  f"{run.sampler_cpu_s:>14.3f} {run.sampler_cpu_pct:>11.2f}%")


def accuracy() -> None:
    print(f"\n{'known allocation MiB':>21} {'recorded peak - base MiB':>25} {'error':>8}")
    for mib in (100, 300, 1000):
        run = record(start_command([sys.executable, "-c", ALLOC.format(mib=mib)]), name="alloc",
                     interval_s=0.1, own_child=True)
        rss = run.telemetry.filter(pl.col("metric") == "mem_bytes").sort("ts")["value"]
        base = rss.head(5).max()  # the interpreter, before the allocation
        grown = (rss.max() - base) / 2**20
        print(f"{mib:>21} {grown:>25.1f} {100 * (grown - mib) / mib:>7.2f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    overhead(args.seconds)
    accuracy()


if __name__ == "__main__":
    main()
