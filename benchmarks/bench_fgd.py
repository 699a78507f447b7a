"""Fidelity and speed of the inflation protocol on openb (FGD paper, ATC'23, Fig. 7/9),
and our fgd_reserve beside FGD.

Run: FORESIZE_DATA_MIRROR=... .venv/bin/python benchmarks/bench_fgd.py [--seeds 10]
         [--baseline-src DIR]
For each pod list and placement policy of the paper it prints our allocated GPU share at
100 % arrived (mean over seeds 42..42+N-1, as the authors' seeds), the FGD authors'
published median of their 10 seeds (datasets/fgd-paper-reference.md; n/a for a pod list
without one), the difference in pp and the mean seconds per run (runs share the cores, so
this is longer than a run alone); then fgd_reserve's share in the same seeds and its
difference to FGD, with the range of the per-seed differences; per pod list, the time of
the paper's policies x seeds. Pod lists that are not in the mirror are named and skipped.

The upstream gpushare lists (default resampled so that GPU-sharing pods hold a larger
share of the GPU request) are not in the mirror, so ``--sharing-mixes`` builds mixes of
that kind from default (``sharing_mix``, constructed and named so): the CPU-only pods
kept, the GPU pods redrawn with replacement (seeded) so that shared-GPU pods hold the
given share of the GPU request. best_fit, FGD and fgd_reserve run on each, paired by seed.

Speed is a ratio to the simulator before the speed work, timed in the same run on the same
machine: ``--baseline-src`` names the ``src`` folder of that code (e.g. ``git archive main
src | tar -x -C /tmp/before``). Both versions run in child processes: one FGD run on openb
default (seed 42) ``--repeats`` times, alternating, and the paper's policies x seeds on
default. The load average is printed beside the times, since shared cores stretch them.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from foresize.core.errors import InputError
from foresize.core.parallel import run_tasks
from foresize.evaluate.scheduling import PAPER_AT_100
from foresize.simulate.cluster.inflation import compare_inflation, run_inflation
from foresize.simulate.cluster.placement import PLACEMENT
from foresize.simulate.cluster.state import Cluster
from foresize.simulate.cluster.traces import load_cluster, load_workload
from foresize.simulate.cluster.workload import Workload

POLICIES = ("random", "dot_product", "gpu_clustering", "gpu_packing", "best_fit", "fgd")
OURS = "fgd_reserve"
TRACES = ("openb:default,openb:gpuspec10,openb:gpuspec33,openb:gpushare20,openb:gpushare40,"
          "openb:gpushare60,openb:gpushare80,openb:gpushare100")
# allocated GPU % at 100 % arrived per pod list, median over the authors' seeds 42..51:
# hkust-adsl/kubernetes-scheduler-simulator
# experiments/analysis/expected_results/analysis_allo_discrete.csv @ 1853fc0e (default from
# datasets/fgd-paper-reference.md, gpuspec10/33 from datasets/fgd-paper-gpuspec.csv)
AUTHORS = PAPER_AT_100

# what a child process runs with one version's code on PYTHONPATH: one FGD run on openb
# default (seed 42, the policy built inside the timing) or the paper's policies x seeds
_TIMING = """
import json, sys, time
from foresize.simulate.cluster.inflation import compare_inflation, run_inflation
from foresize.simulate.cluster.placement import PLACEMENT
from foresize.simulate.cluster.traces import load_cluster, load_workload
cluster, _ = load_cluster("openb:nodes_gpu")
workload, _ = load_workload("openb:default")
names, seeds, engine = json.loads(sys.argv[1])
began = time.perf_counter()
if names == ["fgd"] and len(seeds) == 1:
    run_inflation(workload, cluster, PLACEMENT.get("fgd")(workload, cluster), seed=seeds[0])
else:
    compare_inflation(workload, cluster, names, seeds, engine=engine)
print(time.perf_counter() - began)
"""


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f}/{five:.1f}/{fifteen:.1f}"


def _timed(src: str, names: list[str], seeds: list[int], engine: str) -> float:
    """Seconds of one timing (see ``_TIMING``) with the code under ``src``."""
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run([sys.executable, "-c", _TIMING, json.dumps([names, seeds, engine])],
                         env=env, check=True, capture_output=True, text=True).stdout
    return float(out.splitlines()[-1])


def timings(seeds: list[int], engine: str, baseline_src: str | None, repeats: int) -> None:
    """One FGD run alone (``repeats`` times, alternating versions; the fastest and the
    median, since other work on shared cores only ever adds time) and the paper's policies
    x seeds on default, with this code and the baseline's, each in a child process.
    """
    here = str(Path(__file__).resolve().parents[1] / "src")
    versions = {"this code": here} | ({} if baseline_src is None else {"baseline": baseline_src})
    runs: dict[str, list[float]] = {label: [] for label in versions}
    for _ in range(repeats):
        for label, src in versions.items():
            runs[label].append(_timed(src, ["fgd"], [42], engine))
    total = {label: _timed(src, list(POLICIES), seeds, engine)
             for label, src in versions.items()}
    for label, src in versions.items():
        print(f"{label} ({src}): FGD run min {min(runs[label]):.2f} s, median "
              f"{statistics.median(runs[label]):.2f} s of {repeats}; {len(POLICIES)} policies "
              f"x {len(seeds)} seeds {total[label]:.1f} s ({_load()})")
    if baseline_src is not None:
        base, this = runs["baseline"], runs["this code"]
        fastest = min(base) / min(this)
        typical = statistics.median(base) / statistics.median(this)
        print(f"speed-up over the baseline: FGD run {fastest:.2f}x (min), {typical:.2f}x "
              f"(median); policies x seeds {total['baseline'] / total['this code']:.2f}x")


@functools.cache
def _inputs(trace: str) -> tuple[Workload, Cluster]:
    return load_workload(trace)[0], load_cluster("openb:nodes_gpu")[0]


def _share_at_100(trace: str, name: str, seed: int) -> float:
    """One run's allocated GPU % at 100 % arrived: FGD and ours paired by seed."""
    workload, cluster = _inputs(trace)
    curve = run_inflation(workload, cluster, PLACEMENT.get(name)(workload, cluster), seed=seed)
    return curve.at(1.0)["allocated_frac"] * 100


def sharing_mix(workload: Workload, share: float, seed: int = 0) -> Workload:
    """``workload`` with its GPU pods redrawn so that pods on a shared GPU (one GPU, under
    1000 milli) hold ``share`` of the GPU request; CPU-only pods and the pod count kept.
    """
    shared = (workload.num_gpu == 1) & (workload.gpu_milli > 0) & (workload.gpu_milli < 1000)
    request = workload.num_gpu * np.minimum(workload.gpu_milli, 1000)
    sharing = np.flatnonzero(shared)
    whole = np.flatnonzero((workload.num_gpu > 0) & ~shared)
    gpu_pods = sharing.size + whole.size
    a, b = float(request[sharing].mean()), float(request[whole].mean())
    # k shared pods of mean request a among gpu_pods: k a / (k a + (gpu_pods - k) b) = share
    k = round(share * gpu_pods * b / (a * (1 - share) + share * b))
    rng = np.random.default_rng(seed)
    index = np.concatenate([
        np.flatnonzero(workload.num_gpu == 0),
        rng.choice(sharing, k, replace=True),
        rng.choice(whole, gpu_pods - k, replace=True),
    ])
    return workload.take(np.sort(index))


def sharing_mixes(shares: list[float], seeds: list[int], engine: str) -> None:
    """best_fit, FGD and fgd_reserve on mixes built from default (``sharing_mix``)."""
    default, _ = load_workload("openb:default")
    cluster, _ = load_cluster("openb:nodes_gpu")
    names = ["best_fit", "fgd", OURS]
    for share in shares:
        mix = sharing_mix(default, share)
        rows, _ = compare_inflation(mix, cluster, names, seeds, engine=engine)
        got = {str(r["policy"]): float(r["allocated_at_100_frac"]) * 100 for r in rows}
        print(f"default, shared-GPU pods {share:.0%} of the GPU request (constructed): "
              + ", ".join(f"{n} {got[n]:.2f}" for n in names)
              + f"; {OURS} {got[OURS] - got['fgd']:+.2f} pp over fgd")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--traces", default=TRACES)
    parser.add_argument("--engine", default="local")
    parser.add_argument("--baseline-src", default=None,
                        help="src folder of the simulator before the speed work")
    parser.add_argument("--repeats", type=int, default=5,
                        help="FGD runs alone per version")
    parser.add_argument("--no-timings", action="store_true",
                        help="skip the FGD run alone and the baseline")
    parser.add_argument("--sharing-mixes", default="0.6,1.0",
                        help="shares of the GPU request on shared GPUs to build from default "
                             "('' for none)")
    args = parser.parse_args()
    cluster, _ = load_cluster("openb:nodes_gpu")
    seeds = list(range(args.seed, args.seed + args.seeds))
    print(f"openb:nodes_gpu ({cluster.n_nodes} nodes, {int(cluster.n_gpu.sum())} GPUs), "
          f"seeds {seeds[0]}..{seeds[-1]}, engine {args.engine}")
    if not args.no_timings:
        timings(seeds, args.engine, args.baseline_src, args.repeats)
    print(f"{'trace':<16} {'policy':<15} {'ours@100%':>9} {'paper@100%':>10} {'diff pp':>8} "
          f"{'s/run':>6}")
    for trace in args.traces.split(","):
        try:
            workload, _ = load_workload(trace)
        except InputError as err:
            print(f"{trace}: skipped ({err.message.rsplit(': ', 1)[-1].split(';')[0]})")
            continue
        began = time.perf_counter()
        rows, _ = compare_inflation(workload, cluster, list(POLICIES), seeds,
                                    engine=args.engine)
        wall = time.perf_counter() - began
        ours, _ = compare_inflation(workload, cluster, [OURS], seeds, engine=args.engine)
        paired = run_tasks(_share_at_100, [(trace, name, seed) for name in ("fgd", OURS)
                                           for seed in seeds], engine=args.engine)
        gains = [b - a for a, b in zip(paired[:len(seeds)], paired[len(seeds):], strict=True)]
        published = AUTHORS.get(trace, {})
        share = {}
        for row in [*rows, *ours]:
            name = str(row["policy"])
            share[name] = float(row["allocated_at_100_frac"]) * 100
            paper = published.get(name)
            theirs = f"{paper:>10.3f}" if paper is not None else f"{'n/a':>10}"
            diff = f"{share[name] - paper:>+8.2f}" if paper is not None else f"{'':>8}"
            print(f"{trace:<16} {name:<15} {share[name]:>9.2f} {theirs} {diff} "
                  f"{float(row['run_s']):>6.2f}")
        print(f"{trace}: {OURS} {share[OURS] - share['fgd']:+.2f} pp over fgd (per seed "
              f"{min(gains):+.2f}..{max(gains):+.2f}, more in {sum(g > 0 for g in gains)} of "
              f"{len(seeds)}); "
              f"{len(POLICIES)} policies x {len(seeds)} seeds in {wall:.1f} s ({_load()})")
    if args.sharing_mixes:
        sharing_mixes([float(v) for v in args.sharing_mixes.split(",")], seeds, args.engine)


if __name__ == "__main__":
    main()
