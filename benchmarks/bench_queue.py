"""Time to order 10,000 pending jobs with every queue policy (and to check the view).

A seeded random view: 50 tenants, mixed priorities, a fifth of durations unknown, half
the jobs with deadlines, a fifth with attained service. Best of 7 runs per policy.
Run: ``python benchmarks/bench_queue.py [--jobs 10000] [--seed 42]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from foresize.simulate.cluster.queue import QUEUE, QueueView, check_view


def random_view(k: int, *, n_tenants: int, seed: int) -> QueueView:
    rng = np.random.default_rng(seed)
    nan = float("nan")
    return QueueView(
        now_s=7200.0,
        job_ids=rng.permutation(k).astype(np.int64),
        arrival_s=np.sort(rng.integers(0, 3600, k)).astype(np.float64),
        priority=rng.integers(0, 5, k).astype(np.int64),
        tenant=rng.integers(0, n_tenants, k).astype(np.int64),
        est_duration_s=np.where(rng.random(k) < 0.2, nan, rng.lognormal(7, 2, k)),
        deadline_s=np.where(rng.random(k) < 0.5, nan, rng.uniform(3600, 7200, k)),
        attained_s=np.where(rng.random(k) < 0.8, 0.0, rng.uniform(0, 10_000, k)),
        demand=(rng.integers(1, 9, (k, 3)) * [4000, 16384, 1000]).astype(np.float64),
        capacity=np.array([4_000_000.0, 16_000_000.0, 1_000_000.0]),
        tenant_usage=(rng.integers(0, 1000, (n_tenants, 3)) * 1000).astype(np.float64),
    )


def best_ms(run: Callable[[], object], repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    view = random_view(args.jobs, n_tenants=50, seed=args.seed)
    check_view(view)
    print(f"{'step':12} {'ms (best of 7)':>15}   ({args.jobs:,} pending jobs, seed {args.seed})")
    print(f"{'check_view':12} {best_ms(lambda: check_view(view)):>15.2f}")
    for name in QUEUE:
        policy = QUEUE.get(name)()
        order = policy.order(view)
        assert sorted(order.tolist()) == list(range(args.jobs)), name  # a permutation
        print(f"{name:12} {best_ms(lambda policy=policy: policy.order(view)):>15.2f}")


if __name__ == "__main__":
    main()
