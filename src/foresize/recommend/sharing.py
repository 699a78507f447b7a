"""GPU sharing: which workloads can share one GPU without their peaks colliding.

GPU duty cycle is too spiky to size a request from, but it says when each workload
uses the GPU. Sharing decisions need exactly that: two workloads whose bursts never
coincide fit on one GPU even if each one's peak is high.

Per workload the demand is its duty cycle in milli-GPU (``gpu_util_pct x 10``); its
request is the ``demand_quantile`` (P95) of that. Workloads are packed first-fit
decreasing by request, on timestamps aligned across workloads (absent = 0): a workload
joins the first GPU where the combined demand exceeds ``capacity_milli`` on at most
``max_collision`` of the steps (a combined P99 under 1000 milli for 1 %). The result
compares GPUs needed dedicated (one each), packed by requests alone (sum of P95
<= 1000, the Kubernetes-style fractional request) and packed on aligned time series,
with the collision rate of each GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from foresize.core.errors import InputError, InsufficientDataError

FloatArray = npt.NDArray[np.float64]
MILLI_PER_PCT = 10.0
CAPACITY_MILLI = 1000.0


@dataclass(frozen=True, slots=True)
class SharingResult:
    """Per-workload demand and GPU assignment, per-GPU load, and the totals."""

    workloads: pl.DataFrame  # workload, request_milli, peak_milli, gpu
    gpus: pl.DataFrame  # gpu, n_workloads, request_milli, p99_milli, collision_rate
    n_dedicated: int
    n_request_packed: int
    n_time_packed: int
    collision_rate: float  # steps over capacity / (steps x GPUs), time-packed
    request_collision_rate: float  # the same for the request-packed baseline


def demand_matrix(
    frame: pl.DataFrame, metric: str = "gpu_util_pct"
) -> tuple[list[str], FloatArray]:
    """Workloads and their milli-GPU demand on the union of timestamps (absent = 0)."""
    rows = frame.filter(pl.col("metric") == metric)
    if rows.is_empty():
        raise InputError(f"metric {metric!r} never appears; GPU sharing needs gpu_util_pct")
    wide = (
        rows.group_by("ts", "workload")
        .agg(pl.col("value").max())
        .pivot(on="workload", index="ts", values="value")
        .sort("ts")
        .fill_null(0.0)
    )
    # sorted: the pivot's columns come in group_by's order, which polars does not fix, and
    # first-fit breaks ties between equal requests by this order
    names = sorted(c for c in wide.columns if c != "ts")
    return names, wide.select(names).to_numpy().astype(np.float64).T * MILLI_PER_PCT


def _pack_requests(requests: FloatArray, capacity: float) -> list[list[int]]:
    """First-fit decreasing on the requests alone: the fractional-request baseline."""
    loads: list[float] = []
    groups: list[list[int]] = []
    for i in np.argsort(-requests, kind="stable").tolist():
        for g, load in enumerate(loads):
            if load + requests[i] <= capacity:
                loads[g] += float(requests[i])
                groups[g].append(i)
                break
        else:
            loads.append(float(requests[i]))
            groups.append([i])
    return groups


def analyze_sharing(
    frame: pl.DataFrame,
    *,
    metric: str = "gpu_util_pct",
    demand_quantile: float = 0.95,
    max_collision: float = 0.01,
    capacity_milli: float = CAPACITY_MILLI,
    min_points: int = 100,
) -> SharingResult:
    """Pack workloads onto shared GPUs (see the module docstring)."""
    if not (0.0 <= max_collision < 1.0):
        raise InputError(f"max_collision must be in [0, 1), got {max_collision}")
    names, demand = demand_matrix(frame, metric)
    counts = frame.filter(pl.col("metric") == metric).group_by("workload").len()
    enough = set(counts.filter(pl.col("len") >= min_points)["workload"].to_list())
    keep = [i for i, n in enumerate(names) if n in enough]
    if not keep:
        raise InsufficientDataError(
            f"no workload has {min_points} samples of {metric}; "
            f"sharing analysis needs at least {min_points} each"
        )
    names = [names[i] for i in keep]
    demand = demand[keep]
    requests = np.quantile(demand, demand_quantile, axis=1)
    order = np.argsort(-requests, kind="stable")
    loads: list[FloatArray] = []
    members: list[list[int]] = []
    assignment = np.zeros(len(names), dtype=np.int64)
    allowed = int(np.floor(max_collision * demand.shape[1]))
    for i in order:
        for g, load in enumerate(loads):
            combined = load + demand[i]
            if int((combined > capacity_milli).sum()) <= allowed:
                loads[g] = combined
                members[g].append(int(i))
                assignment[i] = g
                break
        else:
            loads.append(demand[i].copy())
            members.append([int(i)])
            assignment[i] = len(loads) - 1
    over = np.array([(load > capacity_milli).mean() for load in loads])
    workloads = pl.DataFrame(
        {
            "workload": names,
            "request_milli": requests,
            "peak_milli": demand.max(axis=1),
            "gpu": assignment,
        }
    ).sort("gpu", "request_milli", descending=[False, True])
    gpus = pl.DataFrame(
        {
            "gpu": np.arange(len(loads)),
            "n_workloads": [len(m) for m in members],
            "request_milli": [float(requests[m].sum()) for m in members],
            "p99_milli": [float(np.quantile(load, 0.99)) for load in loads],
            "collision_rate": over,
        }
    )
    by_request = _pack_requests(requests, capacity_milli)
    request_over = np.mean([(demand[g].sum(axis=0) > capacity_milli).mean() for g in by_request])
    return SharingResult(
        workloads,
        gpus,
        len(names),
        len(by_request),
        len(loads),
        float(over.mean()),
        float(request_over),
    )
