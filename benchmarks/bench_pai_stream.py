"""Streaming PAI 2020 evaluation at scale: wall time and peak RSS (issue 10, part 5).

Runs ``foresize.evaluate.pai.evaluate_pai`` on a trace in the exact upstream format made by
``make_pai_sample.py`` (three ``pai_*.tar.gz``), each run in a fresh child process whose
peak RSS (interpreter and polars included) is its own: ``VmHWM`` from ``/proc/self/status``,
the peak of the child's own address space (``getrusage``'s ``ru_maxrss`` would inherit the
parent's peak across fork+exec).

- ``cold``: a fresh cache, so the run includes extracting the archives to CSV once;
- ``warm``: the same cache again (what every later run costs);
- ``join only``: pass 1 alone (CSV to compact parquet, then the partitioned dedupe and
  join), to show which pass sets the peak.

Then the report's tables from the warm run. Deterministic for a given trace (seeded
generator); the timings are this machine's (2 cores).

Run: ``python benchmarks/bench_pai_stream.py --data /tmp/pai10m --rows 10000000``
(generates the trace there first if it is absent; keep it out of the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl

from make_pai_sample import TABLES, make_pai_sample

CHILD = r"""
import json, sys, time
from pathlib import Path
started = time.perf_counter()
from foresize.evaluate.pai import evaluate_pai, join_pai_instances, locate_pai_tables
data, mode, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
if mode == "join":
    join_pai_instances(locate_pai_tables(data), out)
    result = {}
else:
    report = evaluate_pai(data, risk=0.01)
    result = report.to_dict(max_groups=10)
    result["eval_seconds"] = report.seconds
result["wall_s"] = time.perf_counter() - started
status = Path("/proc/self/status").read_text().split("VmHWM:")[1]
result["max_rss_mib"] = int(status.split()[0]) / 1024
(out / "result.json").write_text(json.dumps(result))
"""


def run_child(data: Path, mode: str, cache: Path) -> dict[str, object]:
    """One evaluation in a fresh interpreter with ``cache`` as its foresize cache."""
    with tempfile.TemporaryDirectory(prefix="bench-pai-") as out:
        env = {**os.environ, "FORESIZE_CACHE_DIR": str(cache)}
        subprocess.run([sys.executable, "-c", CHILD, str(data), mode, out], env=env, check=True)
        result: dict[str, object] = json.loads((Path(out) / "result.json").read_text())
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/pai-bench"))
    parser.add_argument("--rows", type=int, default=1_000_000, help="sensor rows if generating")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="cache folder for the runs (default: a temporary one)",
    )
    args = parser.parse_args()
    if not all((args.data / f"{name}.tar.gz").is_file() for name in TABLES):
        make_pai_sample(args.data, rows=args.rows)
    cache = args.cache or Path(tempfile.mkdtemp(prefix="foresize-cache-"))
    shutil.rmtree(cache / "extracted", ignore_errors=True)
    sizes = {name: (args.data / f"{name}.tar.gz").stat().st_size for name in TABLES}
    runs = {
        mode: run_child(args.data, key, cache)
        for mode, key in (("cold", "full"), ("warm", "full"), ("join only", "join"))
    }
    csv_bytes = sum(p.stat().st_size for p in (cache / "extracted").rglob("*.csv"))
    counts = runs["warm"]["counts"]
    assert isinstance(counts, dict)
    print(
        f"trace: {args.data}  tar.gz {sum(sizes.values()) / 2**30:.2f} GiB, "
        f"extracted CSV {csv_bytes / 2**30:.2f} GiB; {counts}"
    )
    print(f"{'run':<10} {'wall s':>8} {'peak RSS MiB':>13}")
    for mode, result in runs.items():
        print(f"{mode:<10} {result['wall_s']:>8.1f} {result['max_rss_mib']:>13.0f}")
    pl.Config.set_tbl_cols(20)
    pl.Config.set_tbl_width_chars(200)
    pl.Config.set_float_precision(3)
    for table in ("usage", "score", "groups"):
        print(f"\n{table}")
        print(pl.DataFrame(runs["warm"][table]))
    if args.cache is None:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
