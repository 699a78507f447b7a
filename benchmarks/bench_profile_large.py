"""Profile a large long-format parquet: foresize (chunked, streaming) vs pandas read+groupby.

Generates a seeded 10-million-row canonical telemetry parquet (500 workloads x 4 metrics x
5,000 samples by default), then runs each contender in a fresh subprocess and reports wall
time and peak RSS. Run: ``python benchmarks/bench_profile_large.py [--rows 10000000]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

METRICS = ("gpu_util_pct", "gpu_mem_bytes", "cpu_cores", "qps")
SAMPLES = 5_000


def generate(path: Path, *, rows: int, seed: int) -> None:
    """Write a sorted long-format telemetry parquet, one workload at a time (bounded memory)."""
    rng = np.random.default_rng(seed)
    n_workloads = max(1, rows // (len(METRICS) * SAMPLES))
    start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
    ts = start + np.arange(SAMPLES, dtype=np.int64) * 60_000_000
    day = 2 * np.pi * np.arange(SAMPLES) / 1440
    schema = pa.schema([("workload", pa.string()), ("metric", pa.string()),
                        ("ts", pa.timestamp("us", tz="UTC")), ("value", pa.float64())])
    with pq.ParquetWriter(path, schema) as writer:
        for w in range(n_workloads):
            columns: dict[str, list[np.ndarray]] = {"workload": [], "metric": [], "ts": [],
                                                    "value": []}
            for m, metric in enumerate(METRICS):
                level = rng.uniform(5, 80) * (2**30 if metric == "gpu_mem_bytes" else 1)
                values = level * (1 + 0.3 * np.sin(day + m)) * rng.gamma(20, 0.05, SAMPLES)
                columns["workload"].append(np.full(SAMPLES, f"wl-{w:05d}", dtype=object))
                columns["metric"].append(np.full(SAMPLES, metric, dtype=object))
                columns["ts"].append(ts)
                columns["value"].append(values)
            writer.write_table(pa.table(
                {k: np.concatenate(v) for k, v in columns.items()}, schema=schema))


FORESIZE = """
import json, resource, sys, time
import polars as pl
from foresize.profile.telemetry import profile_telemetry
t0 = time.perf_counter()
profile, report = profile_telemetry(pl.scan_parquet(sys.argv[1]), max_rows=int(sys.argv[2]))
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "series": profile.height, "rows": report.rows_in}))
"""

PANDAS = """
import json, resource, sys, time
import pandas as pd
t0 = time.perf_counter()
df = pd.read_parquet(sys.argv[1])
g = df.groupby(["workload", "metric"])["value"]
out = g.agg(["count", "mean", "std", "min", "max"])
for q in (0.5, 0.9, 0.95, 0.99):
    out[f"p{int(q * 100)}"] = g.quantile(q)
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "series": len(out), "rows": len(df)}))
"""


def run(code: str, *args: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                          text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "telemetry.parquet"
        t0 = time.perf_counter()
        generate(path, rows=args.rows, seed=args.seed)
        size = path.stat().st_size
        print(f"generated {args.rows:,} rows ({size / 2**20:.0f} MiB parquet) "
              f"in {time.perf_counter() - t0:.1f}s, seed {args.seed}", file=sys.stderr)
        results = {
            "pandas read+groupby (stats only)": run(PANDAS, str(path)),
            "foresize profile, 4M-row chunks": run(FORESIZE, str(path), "4000000"),
            "foresize profile, 1M-row chunks": run(FORESIZE, str(path), "1000000"),
        }
    anchor = results["pandas read+groupby (stats only)"]
    print(f"\n{'contender':36} {'rows':>12} {'series':>7} {'wall s':>8} {'peak RSS MiB':>13}"
          f" {'time vs pandas':>15} {'RSS vs pandas':>14}")
    for name, r in results.items():
        print(f"{name:36} {r['rows']:>12,.0f} {r['series']:>7,.0f} {r['wall_s']:>8.2f} "
              f"{r['rss_kib'] / 1024:>13.0f} {r['wall_s'] / anchor['wall_s']:>14.2f}x "
              f"{r['rss_kib'] / anchor['rss_kib']:>13.2f}x")
    print("\nforesize computes more than the anchor: gaps, idle share, burstiness, periods "
          "(FFT per series) and trend.")


if __name__ == "__main__":
    main()
