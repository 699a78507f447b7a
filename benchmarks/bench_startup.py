"""Start-up time of the CLI: wall and CPU seconds of commands that need no heavy library.

Issues 22 and 18 ask for ``foresize --help``, the light commands and ``profile model``
on a config.json under 0.5 s (run from the repository root: it reads the bundled
``examples/llama-2-7b/config.json``). Each command
runs ``--runs`` times in a fresh process; the table gives the median wall time, the
median CPU time (user + system, which a loaded machine inflates less than the wall
time), the 0.5 s target and wall / target. ``--exe`` measures another install (e.g. the
main branch's ``.venv/bin/foresize``) for a before/after comparison.
Run: ``python benchmarks/bench_startup.py [--runs 7] [--exe PATH]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.5
COMMANDS = (
    ["--help"],
    ["version"],
    ["version", "--help"],
    ["env", "--help"],
    ["datasets", "--help"],
    ["profile", "--help"],
    ["forecast", "--help"],
    ["recommend", "--help"],
    ["recommend", "plan", "--help"],
    ["recommend", "serve", "--help"],
    ["simulate", "--help"],
    ["simulate", "schedule", "--help"],
    ["simulate", "autoscale", "--help"],
    ["simulate", "serve", "--help"],
    ["demo", "--help"],
    ["evaluate", "--help"],
    ["evaluate", "forecast", "--help"],
    ["datasets", "list"],
    ["profile", "model", "examples/llama-2-7b/config.json", "-f", "json"],
)


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   env={**os.environ, "COLUMNS": "80"})
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--exe", type=Path, default=Path(sys.executable).parent / "foresize")
    args = parser.parse_args()
    print(f"{args.exe}, median of {args.runs} runs")
    print(f"{'command':34} {'wall s':>7} {'CPU s':>7} {'target s':>8} {'wall/target':>11}")
    for command in COMMANDS:
        runs = [timed([str(args.exe), *command]) for _ in range(args.runs)]
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{' '.join(['foresize', *command]):34} {wall:7.2f} {cpu:7.2f} {TARGET_S:8.1f} "
              f"{wall / TARGET_S:11.2f}")


if __name__ == "__main__":
    main()
