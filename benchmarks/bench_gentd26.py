"""Ingest every GenTD26 telemetry table from the mirror and profile it: wall time, peak RSS.

The anchor is pandas reading the same tar.gz files (``compression="tar"``) and computing
per-container count/mean/std/max/quantiles, each contender in a fresh subprocess.
Run: ``FORESIZE_DATA_MIRROR=../shared/datasets/alibaba-clusterdata python
benchmarks/bench_gentd26.py [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

FORESIZE = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
from foresize.ingest.sources import ReadOptions, open_telemetry
from foresize.profile.telemetry import profile_telemetry
opened = open_telemetry(["gentd26"], ReadOptions())
profile, report = profile_telemetry(opened.frame, source="gentd26")
wall = time.perf_counter() - t0
rows = sum(r.rows_in for r in opened.reports)
print(json.dumps({"wall_s": wall, "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "rows": rows, "series": profile.height,
                  "tables": len(opened.reports)}))
"""

PANDAS = """
import json, resource, sys, time
t0 = time.perf_counter()
import pandas as pd
rows = series = 0
for path in sys.argv[1:]:
    df = pd.read_csv(path, compression="tar")
    key = "container_ip"
    g = df.groupby(df[key].fillna("gateway"))["value"]
    out = g.agg(["count", "mean", "std", "min", "max"])
    for q in (0.5, 0.9, 0.95, 0.99):
        out[f"p{int(q * 100)}"] = g.quantile(q)
    rows += len(df)
    series += len(out)
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "rows": rows, "series": series, "tables": len(sys.argv) - 1}))
"""

TELEMETRY_FILES = ("pod_gpu_duty_cycle_anon", "pod_memory_util_anon", "qps",
                   "queue_size_raw_anon", "queue_rt_raw_anon")


def run(code: str, *args: str, cache: str) -> dict[str, float]:
    env = {**os.environ, "FORESIZE_CACHE_DIR": cache}
    done = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                          text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    mirror = Path(os.environ.get("FORESIZE_DATA_MIRROR",
                                 "../shared/datasets/alibaba-clusterdata"))
    os.environ["FORESIZE_DATA_MIRROR"] = str(mirror.resolve())
    folder = mirror / "cluster-trace-v2026-GenAI"
    files = [str(folder / f"{name}.tar.gz") for name in TELEMETRY_FILES]
    pandas_name = "pandas read_csv + groupby (stats only)"
    results: dict[str, list[dict[str, float]]] = {
        pandas_name: [], "foresize ingest + profile, cold cache": [],
        "foresize ingest + profile, warm cache": [],
    }
    with tempfile.TemporaryDirectory() as warm:
        for _ in range(args.repeat):
            results[pandas_name].append(run(PANDAS, *files, cache=warm))
            with tempfile.TemporaryDirectory() as cold:  # extraction and hashing from scratch
                results["foresize ingest + profile, cold cache"].append(run(FORESIZE, cache=cold))
            results["foresize ingest + profile, warm cache"].append(run(FORESIZE, cache=warm))
    anchor = statistics.median(r["wall_s"] for r in results[pandas_name])
    print(f"{'contender':42} {'tables':>6} {'rows':>9} {'series':>7} {'wall s (median)':>16} "
          f"{'peak RSS MiB':>13} {'time vs pandas':>15}")
    for name, runs in results.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        rss = max(r["rss_kib"] for r in runs) / 1024
        first = runs[0]
        print(f"{name:42} {first['tables']:>6.0f} {first['rows']:>9,.0f} {first['series']:>7,.0f} "
              f"{wall:>16.2f} {rss:>13.0f} {wall / anchor:>14.2f}x")
    print("\nwall time includes imports; foresize also validates every row, verifies sha256 and "
          "computes gaps, idle share, periods and trend; pandas keeps 49 rows with no container "
          "(one more series) that foresize drops as missing_key.")


if __name__ == "__main__":
    main()
