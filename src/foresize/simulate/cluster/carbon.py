"""Cost, energy and carbon of a replay, and carbon- or price-aware admission.

Three inputs, each a small documented default that a study should replace with its own:

* ``GPU_PRICE_USD_PER_H``: what one allocated GPU-hour costs, per GPU model. Defaults
  are AWS us-east-1 Linux on-demand list prices divided by the GPUs per instance
  (aws.amazon.com/ec2/pricing/on-demand, instance pages for p5, p4d, p3, g5, g4dn;
  p2 for K80-era P100 class), rounded. openb's anonymised ``G2``/``G3`` and any model not
  listed cost ``DEFAULT_GPU_PRICE_USD_PER_H`` (a labelled assumption, V100-class).
* ``GPU_POWER_W``: (idle, full) watts per GPU. Full is the board power from NVIDIA's
  datasheets (H100 SXM 700, A100 SXM 400, V100 SXM2 300, P100 PCIe 250, A10 150,
  T4 70); idle is an assumption of ~15-20% of it, in line with the idle draw reported
  for data-centre GPUs (e.g. nvidia-smi on idle V100/A100 shows 25-60 W). A GPU draws
  idle power whenever the cluster is up, and the rest in proportion to allocation,
  which stands in for utilisation (a request trace cannot show utilisation).
* A carbon-intensity series (gCO2/kWh, hourly, from trace time 0, repeated when the
  trace is longer): ``diurnal()`` is synthetic, a cosine around 400 g/kWh with +-30%
  and its minimum at 13:00 (a solar-heavy grid's midday dip), not a measurement; or a
  CSV ``ts,value`` from e.g. Electricity Maps or WattTime, read by ``read_series``.
  The same :class:`Series` type holds an electricity price series for price-aware runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from foresize.core.errors import InputError
from foresize.simulate.cluster.state import Cluster, IntArray
from foresize.simulate.cluster.workload import FloatArray, Workload

HOUR_S = 3600.0
J_PER_KWH = 3.6e6

GPU_PRICE_USD_PER_H: dict[str, float] = {
    "H100": 12.29,  # p5.48xlarge 98.32 / 8
    "A100": 4.10,  # p4d.24xlarge 32.77 / 8
    "A10": 1.42,  # g5.12xlarge 5.672 / 4
    "V100": 3.06,  # p3.16xlarge 24.48 / 8
    "V100M16": 3.06,  # p3.16xlarge 24.48 / 8
    "V100M32": 3.90,  # p3dn.24xlarge 31.212 / 8
    "P100": 1.50,  # assumption: between T4 and V100 (AWS has no P100 instance)
    "T4": 0.98,  # g4dn.12xlarge 3.912 / 4
}
DEFAULT_GPU_PRICE_USD_PER_H = 3.06  # assumption: V100-class for unnamed models

GPU_POWER_W: dict[str, tuple[float, float]] = {
    "H100": (100.0, 700.0),
    "A100": (60.0, 400.0),
    "A10": (30.0, 150.0),
    "V100": (50.0, 300.0),
    "V100M16": (50.0, 300.0),
    "V100M32": (50.0, 300.0),
    "P100": (40.0, 250.0),
    "T4": (12.0, 70.0),
}
DEFAULT_GPU_POWER_W = (50.0, 300.0)  # assumption: V100-class for unnamed models


@dataclass(frozen=True, slots=True)
class Series:
    """A step-wise time series from trace time 0 (one value per ``step_s``), cyclic.

    Cyclic because a one-day or one-week profile is what one usually has for a trace
    of weeks; a series as long as the trace simply never wraps.
    """

    values: FloatArray
    unit: str
    source: str
    step_s: float = HOUR_S

    def __post_init__(self) -> None:
        if self.values.ndim != 1 or self.values.size == 0:
            raise InputError(f"{self.source}: the series has no values")
        if not np.isfinite(self.values).all() or (self.values < 0).any():
            raise InputError(f"{self.source}: the series holds NaN, infinite or negative "
                             "values")
        if not self.step_s > 0:
            raise InputError(f"{self.source}: the step must be positive, got {self.step_s}")

    def at(self, t_s: npt.ArrayLike) -> FloatArray:
        """Value in force at ``t_s``."""
        index = np.floor(np.asarray(t_s, dtype=np.float64) / self.step_s).astype(np.int64)
        result: FloatArray = self.values[index % self.values.size]
        return result

    def cumulative(self, t_s: npt.ArrayLike) -> FloatArray:
        """Integral of the series from 0 to ``t_s`` (value x seconds), vectorised."""
        t = np.asarray(t_s, dtype=np.float64)
        n, step = self.values.size, self.step_s
        prefix = np.concatenate([[0.0], np.cumsum(self.values)]) * step
        cycles = np.floor(t / (n * step))
        rest = t - cycles * n * step
        index = np.minimum((rest // step).astype(np.int64), n - 1)
        result: FloatArray = (cycles * prefix[-1] + prefix[index]
                              + self.values[index] * (rest - index * step))
        return result

    def integral(self, start_s: npt.ArrayLike, end_s: npt.ArrayLike) -> FloatArray:
        """Integral over [start, end] (value x seconds)."""
        result: FloatArray = self.cumulative(end_s) - self.cumulative(start_s)
        return result

    def describe(self) -> dict[str, Any]:
        """Provenance for a result document."""
        return {"source": self.source, "unit": self.unit, "step_s": self.step_s,
                "n_steps": int(self.values.size), "mean": float(self.values.mean())}


def diurnal(*, mean: float = 400.0, amplitude: float = 0.3, low_hour: float = 13.0
            ) -> Series:
    """Synthetic hourly carbon intensity (gCO2/kWh): a daily cosine, lowest at ``low_hour``.

    Trace time 0 is taken as midnight. Illustrative only (see the module docstring).
    """
    hours = np.arange(24) + 0.5
    values = mean * (1.0 - amplitude * np.cos(2 * np.pi * (hours - low_hour) / 24.0))
    return Series(values, "gCO2/kWh", f"diurnal(mean={mean:g}, amplitude={amplitude:g}, "
                  f"low_hour={low_hour:g})")


def read_series(path: str | os.PathLike[str], *, unit: str = "gCO2/kWh") -> Series:
    """A ``ts,value`` CSV as a :class:`Series` starting at trace time 0.

    ``ts`` is seconds or an ISO date-time; rows are sorted and must be evenly spaced
    (the step is their spacing), since an uneven series is almost always a gap.
    """
    source = str(path)
    if not Path(path).is_file():
        raise InputError(f"{source}: no such file", hint="pass a ts,value CSV or 'diurnal'")
    frame = pl.read_csv(Path(path), infer_schema_length=1000)
    if not {"ts", "value"} <= set(frame.columns):
        raise InputError(f"{source}: expected columns ts,value, got {', '.join(frame.columns)}")
    ts = frame["ts"]
    if ts.dtype == pl.String:
        ts = ts.str.to_datetime(time_zone="UTC", strict=False)
        if ts.null_count():
            raise InputError(f"{source}: 'ts' holds values that are neither seconds nor "
                             "ISO date-times")
    if ts.dtype.is_temporal():
        seconds = ts.dt.epoch("ms").to_numpy().astype(np.float64) / 1000.0
    else:
        seconds = ts.cast(pl.Float64).to_numpy()
    order = np.argsort(seconds, kind="stable")
    seconds = seconds[order]
    values = frame["value"].cast(pl.Float64).to_numpy()[order]
    if values.size < 1:
        raise InputError(f"{source}: the series has no rows")
    steps = np.diff(seconds)
    step = float(steps[0]) if steps.size else HOUR_S
    if steps.size and not np.allclose(steps, step):
        raise InputError(f"{source}: rows are not evenly spaced (steps from {steps.min():g} "
                         f"to {steps.max():g} s)", hint="resample to an hourly series")
    return Series(values, unit, source, step)


def _per_type(cluster: Cluster, table: dict[str, Any], default: Any) -> list[Any]:
    return [table.get(name, default) for name in cluster.gpu_types]


Powered = tuple[IntArray, FloatArray, FloatArray]  # node, from, to: when a node is up


def account(cluster: Cluster, intensity: Series, *, node: IntArray, start_s: FloatArray,
            end_s: FloatArray, gpus: FloatArray, span_s: tuple[float, float],
            powered: Powered | None = None) -> dict[str, float]:
    """Cost, energy and carbon of GPU allocations.

    Each row is one run of a job (a preempted job has several): on ``node`` from
    ``start_s`` to ``end_s`` holding ``gpus`` GPUs (fractional when shared). A node's GPUs
    draw idle power while it is up: over ``span_s`` (first arrival to last departure) for
    every node, or over the ``powered`` intervals when nodes come and go (autoscaled
    pools); allocated GPUs add the rest of their power; carbon integrates power against
    the intensity series, so moving work to greener hours shows up as less carbon.
    """
    types = cluster.gpu_type
    price = np.array([*_per_type(cluster, GPU_PRICE_USD_PER_H, DEFAULT_GPU_PRICE_USD_PER_H),
                      0.0])
    power = np.array([*_per_type(cluster, GPU_POWER_W, DEFAULT_GPU_POWER_W),
                      (0.0, 0.0)]).reshape(-1, 2)
    run_type = types[node]  # -1 (no GPU) picks the zero row appended above
    gpu_s = gpus * (end_s - start_s)
    dynamic_w = (power[run_type, 1] - power[run_type, 0]) * gpus
    if powered is None:
        every = np.arange(cluster.n_nodes)
        powered = (every, np.full(every.size, span_s[0]), np.full(every.size, span_s[1]))
    up_node, up_from, up_to = powered
    up_to = np.maximum(up_to, up_from)
    node_idle_w = power[types[up_node], 0] * cluster.n_gpu[up_node]
    idle_j = float((node_idle_w * (up_to - up_from)).sum())
    dynamic_j = float((dynamic_w * (end_s - start_s)).sum())
    idle_g = float((node_idle_w * intensity.integral(up_from, up_to)).sum()) / J_PER_KWH
    dynamic_g = float((dynamic_w * intensity.integral(start_s, end_s)).sum()) / J_PER_KWH
    return {
        "gpu_hours": float(gpu_s.sum()) / HOUR_S,
        "cost_usd": float((gpu_s * price[run_type]).sum()) / HOUR_S,
        "energy_kwh": (idle_j + dynamic_j) / J_PER_KWH,
        "dynamic_energy_kwh": dynamic_j / J_PER_KWH,
        "carbon_kg": (idle_g + dynamic_g) / 1000.0,
        "dynamic_carbon_kg": dynamic_g / 1000.0,
    }


@dataclass(frozen=True, slots=True)
class CarbonAware:
    """Hold deadline-flexible jobs until a lower-carbon (or cheaper) window, if slack allows.

    On arrival, a job with a deadline may start at any hour boundary up to
    ``horizon_h`` ahead and no later than ``deadline - duration - reserve``, where the
    reserve is ``reserve_frac`` of its slack (room for queueing once released). The
    start with the lowest mean signal over the job's run wins, if it beats starting now
    by ``min_saving_frac``; otherwise the job is admitted at once. Jobs without a
    deadline have no known slack and are never held. The forecast is the series itself
    (perfect foresight): an upper bound on what a real forecast would save.
    """

    signal: Series
    horizon_h: float = 24.0
    reserve_frac: float = 0.25
    min_saving_frac: float = 0.05

    def __post_init__(self) -> None:
        if not (self.horizon_h > 0 and 0 <= self.reserve_frac < 1
                and 0 <= self.min_saving_frac < 1):
            raise InputError("CarbonAware needs horizon_h > 0, 0 <= reserve_frac < 1 and "
                             "0 <= min_saving_frac < 1")

    def release_at(self, job: int, now_s: float, workload: Workload, /) -> float:
        """When to let ``job`` into the queue: ``now_s`` or a later, greener hour."""
        deadline = float(workload.deadline_s[job])
        duration = float(workload.duration_s[job])
        slack = deadline - now_s - duration
        if not slack > 0:  # NaN deadline or no slack
            return now_s
        latest = min(now_s + (1.0 - self.reserve_frac) * slack,
                     now_s + self.horizon_h * HOUR_S)
        step = self.signal.step_s
        first = np.floor(now_s / step) * step + step
        starts = np.concatenate([[now_s], np.arange(first, latest + 1e-9, step)])
        if duration > 0:
            cost = self.signal.integral(starts, starts + duration) / duration
        else:
            cost = self.signal.at(starts)
        best = int(np.argmin(cost))
        if cost[best] < (1.0 - self.min_saving_frac) * cost[0]:
            return float(starts[best])
        return now_s
