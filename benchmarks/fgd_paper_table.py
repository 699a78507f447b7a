"""The FGD authors' published allocation on openb gpuspec10/gpuspec33, summarised.

Run: .venv/bin/python benchmarks/fgd_paper_table.py [datasets/fgd-paper-gpuspec.csv]
Reads the extract ``datasets/fgd-paper-gpuspec.csv`` (columns 90, 100, 110 and 130 of the
authors' ``analysis_allo_discrete.csv``, 10 seeds per variant and policy) and prints, per
variant, the markdown table of ``datasets/fgd-paper-reference.md``: the median over the
seeds at each point and the min-max at 100 %. ``evaluate.scheduling.PAPER_AT_100`` holds
the 100 % medians; ``tests/evaluate/test_scheduling.py`` checks both against this file.
"""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path

CSV = Path(__file__).resolve().parents[1] / "datasets" / "fgd-paper-gpuspec.csv"
POINTS = ("at90", "at100", "at110", "at130")
# the authors' policy directories and ours
POLICIES = {"01-Random": "random", "02-DotProd": "dot_product",
            "03-GpuClustering": "gpu_clustering", "04-GpuPacking": "gpu_packing",
            "05-BestFit": "best_fit", "06-FGD": "fgd"}


def read(path: Path = CSV) -> dict[tuple[str, str], list[dict[str, float]]]:
    """Rows by (trace address, our policy name), e.g. ("openb:gpuspec10", "fgd")."""
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            trace = "openb:" + row["workload"].removeprefix("openb_pod_list_")
            runs.setdefault((trace, POLICIES[row["policy"]]), []).append(
                {p: float(row[p]) for p in POINTS})
    return runs


def medians(path: Path = CSV) -> dict[str, dict[str, float]]:
    """Median allocated GPU % at 100 % arrived, per trace and policy."""
    out: dict[str, dict[str, float]] = {}
    for (trace, policy), rows in read(path).items():
        out.setdefault(trace, {})[policy] = statistics.median(r["at100"] for r in rows)
    return out


def _num(value: float) -> str:
    """Two decimals, three where a median of an even count falls between two values."""
    return f"{value:.3f}".rstrip("0") if round(value, 2) != round(value, 3) else f"{value:.2f}"


def markdown(path: Path = CSV) -> str:
    """One table per trace, in the layout of the default trace's table."""
    runs = read(path)
    names = {ours: theirs for theirs, ours in POLICIES.items()}
    parts: list[str] = []
    for trace in sorted({t for t, _ in runs}):
        parts += [f"### {trace.removeprefix('openb:')} (`openb_pod_list_"
                  f"{trace.removeprefix('openb:')}`)", "",
                  "| policy (theirs)   | ours             | @90%   | @100%  | @100% min-max  "
                  "| @110%  | @130%  |",
                  "|-------------------|------------------|--------|--------|----------------"
                  "|--------|--------|"]
        for policy in POLICIES.values():
            rows = runs[(trace, policy)]
            med = {p: statistics.median(r[p] for r in rows) for p in POINTS}
            lo, hi = min(r["at100"] for r in rows), max(r["at100"] for r in rows)
            parts.append(
                f"| {names[policy]:<17} | {'`' + policy + '`':<16} | {_num(med['at90']):<6} "
                f"| {_num(med['at100']):<6} | {_num(lo) + '-' + _num(hi):<14} "
                f"| {_num(med['at110']):<6} | {_num(med['at130']):<6} |")
        parts.append("")
    return "\n".join(parts)


if __name__ == "__main__":
    print(markdown(Path(sys.argv[1]) if len(sys.argv) > 1 else CSV), end="")
