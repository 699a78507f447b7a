"""Speed of a full time-based replay of the openb default trace (8152 pods).

Run: FORESIZE_DATA_MIRROR=... .venv/bin/python benchmarks/bench_replay.py
"""

from __future__ import annotations

import argparse

from foresize.simulate.cluster.engine import replay
from foresize.simulate.cluster.placement import PLACEMENT
from foresize.simulate.cluster.queue import QUEUE
from foresize.simulate.cluster.traces import load_cluster, load_workload


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--queue", default="fifo")
    args = parser.parse_args()
    workload, _ = load_workload("openb:default")
    cluster, _ = load_cluster("openb:nodes_gpu")
    print(f"replay of openb:default ({len(workload)} pods) on {cluster.n_nodes} nodes, "
          f"queue {args.queue}, seed {args.seed}")
    print(f"{'policy':<12} {'wall_s':>7} {'events':>7} {'events/s':>9} {'wait_mean_s':>11} "
          f"{'wait_p99_s':>10} {'jct_mean_s':>10} {'gpu_util%':>9} {'never_fit':>9} "
          f"{'unsched':>7}")
    for name in PLACEMENT.names():
        result = replay(workload, cluster, PLACEMENT.get(name)(workload, cluster),
                        QUEUE.get(args.queue)(), seed=args.seed)
        s = result.summary(workload, cluster)
        print(f"{name:<12} {result.wall_s:>7.2f} {s['n_events']:>7} {s['events_per_second']:>9.0f} "
              f"{s['queueing_delay']['mean_s']:>11.1f} {s['queueing_delay']['p99_s']:>10.1f} "
              f"{s['jct']['mean_s']:>10.0f} {s['mean_util']['gpu'] * 100:>9.1f} "
              f"{s['n_never_fit']:>9} {s['n_unscheduled']:>7}")


if __name__ == "__main__":
    main()
