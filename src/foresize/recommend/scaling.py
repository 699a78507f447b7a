"""Scaling plans for services: a replica schedule from a demand forecast, and autoscaler settings.

The schedule provisions for the forecast's *upper* quantile, not its mean, so the headroom
is the one the forecast's uncertainty asks for rather than a fixed margin:

    replicas[t] = ceil(demand_hi[t] / (capacity * target_utilisation))

``capacity`` is the demand one replica serves at 100 % of its resource request (given, or
measured with :func:`estimate_capacity`). A replica ordered at ``t`` serves only after its
start-up delay, so the schedule at ``t`` is the maximum need over ``[t, t + startup]``;
a scale-down delay keeps a replica for a while after the need falls (in-flight requests
drain, the count does not flap) -- the same trailing maximum as the HPA's scale-down
stabilisation window.

Two autoscaler translations follow. :func:`hpa_settings` derives HPA bounds and a target
utilisation such that the HPA's rule ``desired = ceil(current * metric / target)``, fed the
*expected* demand, asks for at least the replicas the schedule derives from the upper
quantile. :func:`cron_schedule` compresses the schedule into a few KEDA cron windows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from foresize.core.errors import InputError, InsufficientDataError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Kubernetes' --horizontal-pod-autoscaler-tolerance default: the HPA does not act while
# current/target is within 10 % of 1 (kubernetes.io, "Horizontal Pod Autoscaling",
# algorithm details).
HPA_TOLERANCE = 0.1
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class DemandPath:
    """Demand over the planning horizon: the level to provision for and the expected level.

    ``values`` is what the schedule covers (a forecast's upper quantile, or observed demand);
    ``expected`` is what an autoscaler will actually observe (the forecast mean), used to
    translate the schedule into HPA settings. ``ts`` are the step start times when known.
    """

    values: tuple[float, ...]
    step_s: float
    expected: tuple[float, ...] | None = None
    ts: tuple[datetime, ...] | None = None
    column: str = "demand"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {
            "column": self.column,
            "step_s": self.step_s,
            "values": list(self.values),
            "expected": None if self.expected is None else list(self.expected),
            "ts": None if self.ts is None else [t.isoformat() for t in self.ts],
        }


def _upper_column(columns: Sequence[str]) -> str:
    """The widest upper-bound column of a forecast frame (``hi_95`` before ``hi_80``)."""
    levels = [int(c[3:]) for c in columns if c.startswith("hi_") and c[3:].isdigit()]
    if not levels:
        raise InputError(
            "forecast frame has no upper-quantile column (hi_L); columns: " + ", ".join(columns)
        )
    return f"hi_{max(levels)}"


def demand_from_forecast(forecast: pl.DataFrame, *, column: str | None = None) -> DemandPath:
    """Total demand per forecast step from a Forecaster output frame.

    Series are summed per ``step`` (each series' grid starts at its own first sample, so
    timestamps need not line up; the horizon position does). Summing upper quantiles is
    conservative: the total's quantile is at most the sum of the parts'. ``column`` picks
    the quantile to cover (default: the widest ``hi_L`` present).
    """
    for needed in ("series", "ts", "step", "mean"):
        if needed not in forecast.columns:
            raise InputError(f"forecast frame lacks column {needed!r}; got {forecast.columns}")
    column = column or _upper_column(forecast.columns)
    if column not in forecast.columns:
        raise InputError(f"forecast frame has no column {column!r}; got {forecast.columns}")
    if forecast.is_empty():
        raise InsufficientDataError("forecast frame is empty: nothing to plan replicas for")
    per_step = (
        forecast.group_by("step")
        .agg(pl.col(column).sum().alias("hi"), pl.col("mean").sum(), pl.col("ts").min())
        .sort("step")
    )
    steps = (
        forecast.sort("series", "step")
        .select(pl.col("ts").diff().over("series").dt.total_microseconds())
        .to_series()
        .drop_nulls()
    )
    step_s = float(steps.median()) / 1e6 if steps.len() else 60.0  # type: ignore[arg-type]
    return DemandPath(
        values=tuple(float(v) for v in per_step["hi"]),
        step_s=step_s,
        expected=tuple(float(v) for v in per_step["mean"]),
        ts=tuple(per_step["ts"].to_list()),
        column=column,
    )


def _check_demand(values: FloatArray, what: str) -> FloatArray:
    """Demand must be finite and non-negative; name the first bad step."""
    if values.size == 0:
        raise InsufficientDataError(f"{what}: no demand values to plan for")
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"{what}: demand must be finite and >= 0; step {i} is {float(values[i])!r} "
            f"({bad.size} bad steps)"
        )
    return values


def _as_path(demand: DemandPath | Sequence[float] | FloatArray, step_s: float | None) -> DemandPath:
    if isinstance(demand, DemandPath):
        if step_s is not None and not math.isclose(step_s, demand.step_s):
            raise InputError(
                f"step_s={step_s} contradicts the demand path's own step {demand.step_s}"
            )
        return demand
    values = np.asarray(demand, dtype=np.float64)
    if values.ndim != 1:
        raise InputError(f"demand must be one-dimensional, got shape {values.shape}")
    return DemandPath(values=tuple(float(v) for v in values), step_s=step_s or 60.0)


def _forward_max(values: IntArray, window: int) -> IntArray:
    """``out[t] = max(values[t : t + window + 1])``, truncated at the end."""
    if window <= 0:
        return values.copy()
    padded = np.concatenate([values, np.zeros(window, dtype=values.dtype)])
    view = np.lib.stride_tricks.sliding_window_view(padded, window + 1)
    out: IntArray = view.max(axis=1).astype(np.int64)
    return out


def _trailing_max(values: IntArray, window: int) -> IntArray:
    """``out[t] = max(values[t - window : t + 1])``, truncated at the start."""
    if window <= 0:
        return values.copy()
    return _forward_max(values[::-1], window)[::-1].copy()


@dataclass(frozen=True, slots=True)
class ReplicaSchedule:
    """Replicas per step over the horizon, and what they were derived from.

    ``needed`` is the per-step need from the covered demand alone; ``replicas`` adds the
    start-up lead, the scale-down delay and the floor/cap. ``capped_steps`` counts steps
    where ``max_replicas`` kept the schedule below the need (a shortfall to report).
    """

    demand: DemandPath
    capacity: float
    target_utilisation: float
    startup_s: float
    scale_down_delay_s: float
    min_replicas: int
    max_replicas: int | None
    needed: tuple[int, ...]
    replicas: tuple[int, ...]
    capped_steps: int

    @property
    def step_hours(self) -> float:
        """One step in hours."""
        return self.demand.step_s / 3600.0

    @property
    def peak(self) -> int:
        """The most replicas at any step."""
        return max(self.replicas)

    @property
    def low(self) -> int:
        """The fewest replicas at any step."""
        return min(self.replicas)

    @property
    def replica_hours(self) -> float:
        """Replica-hours the schedule reserves over the horizon."""
        return float(sum(self.replicas)) * self.step_hours

    @property
    def static_peak_replica_hours(self) -> float:
        """Replica-hours of a static deployment sized for the schedule's peak."""
        return float(self.peak * len(self.replicas)) * self.step_hours

    @property
    def saving_vs_static(self) -> float:
        """Fraction of the static peak's replica-hours the schedule does not need."""
        static = self.static_peak_replica_hours
        return 0.0 if static == 0 else 1.0 - self.replica_hours / static

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output: settings, summary and the per-step schedule."""
        return {
            "capacity_per_replica": self.capacity,
            "target_utilisation": self.target_utilisation,
            "startup_s": self.startup_s,
            "scale_down_delay_s": self.scale_down_delay_s,
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "covers": self.demand.column,
            "step_s": self.demand.step_s,
            "steps": len(self.replicas),
            "peak": self.peak,
            "low": self.low,
            "replica_hours": self.replica_hours,
            "static_peak_replica_hours": self.static_peak_replica_hours,
            "saving_vs_static": self.saving_vs_static,
            "capped_steps": self.capped_steps,
            "ts": None if self.demand.ts is None else [t.isoformat() for t in self.demand.ts],
            "demand": list(self.demand.values),
            "needed": list(self.needed),
            "replicas": list(self.replicas),
        }


def replica_schedule(
    demand: DemandPath | Sequence[float] | FloatArray,
    capacity: float,
    *,
    target_utilisation: float = 0.7,
    startup_s: float = 0.0,
    scale_down_delay_s: float = 0.0,
    step_s: float | None = None,
    min_replicas: int = 1,
    max_replicas: int | None = None,
) -> ReplicaSchedule:
    """Replicas per step so each step's covered demand runs at most at ``target_utilisation``.

    ``demand`` is a :class:`DemandPath` (see :func:`demand_from_forecast`) or plain values
    with ``step_s`` (default 60 s). Replicas take ``startup_s`` to become ready, so each
    step's count is the largest need within the next ``startup_s``; with
    ``scale_down_delay_s`` a replica leaves only after the need has stayed lower that long.
    """
    path = _as_path(demand, step_s)
    if not (math.isfinite(capacity) and capacity > 0):
        raise InputError(f"capacity per replica must be a positive number, got {capacity}")
    if not 0 < target_utilisation <= 1:
        raise InputError(f"target_utilisation must be in (0, 1], got {target_utilisation}")
    if not (math.isfinite(path.step_s) and path.step_s > 0):
        raise InputError(f"step_s must be a positive number of seconds, got {path.step_s}")
    for name, value in (("startup_s", startup_s), ("scale_down_delay_s", scale_down_delay_s)):
        if not (math.isfinite(value) and value >= 0):
            raise InputError(f"{name} must be >= 0 seconds, got {value}")
    if min_replicas < 0:
        raise InputError(f"min_replicas must be >= 0, got {min_replicas}")
    if max_replicas is not None and max_replicas < max(min_replicas, 1):
        raise InputError(
            f"max_replicas ({max_replicas}) must be >= min_replicas ({min_replicas}) and >= 1"
        )
    values = _check_demand(np.asarray(path.values, dtype=np.float64), "replica schedule")
    horizon_s = values.size * path.step_s
    if startup_s > horizon_s:
        raise InputError(
            f"startup_s ({startup_s:g} s) is longer than the planning horizon "
            f"({values.size} steps x {path.step_s:g} s = {horizon_s:g} s)"
        )
    raw = np.ceil(values / (capacity * target_utilisation) - _EPS).astype(np.int64)
    needed = np.maximum(raw, min_replicas)
    lead = math.ceil(startup_s / path.step_s - _EPS)
    hold = math.ceil(scale_down_delay_s / path.step_s - _EPS)
    replicas = _trailing_max(_forward_max(needed, lead), hold)
    capped = 0
    if max_replicas is not None:
        capped = int(np.count_nonzero(replicas > max_replicas))
        replicas = np.minimum(replicas, max_replicas)
    return ReplicaSchedule(
        demand=path,
        capacity=float(capacity),
        target_utilisation=float(target_utilisation),
        startup_s=float(startup_s),
        scale_down_delay_s=float(scale_down_delay_s),
        min_replicas=int(min_replicas),
        max_replicas=max_replicas,
        needed=tuple(int(n) for n in needed),
        replicas=tuple(int(r) for r in replicas),
        capped_steps=capped,
    )


@dataclass(frozen=True, slots=True)
class CapacityEstimate:
    """Per-replica capacity measured from (demand, utilisation) pairs by a line fit.

    Utilisation is modelled as ``idle + slope * demand_per_replica``; the capacity is the
    demand per replica at which that line reaches 100 %.
    """

    capacity: float
    idle_utilisation: float
    slope: float
    r2: float
    samples: int

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {
            "capacity_per_replica": self.capacity,
            "idle_utilisation": self.idle_utilisation,
            "slope": self.slope,
            "r2": self.r2,
            "samples": self.samples,
        }


def estimate_capacity(
    demand: Sequence[float] | FloatArray,
    utilisation: Sequence[float] | FloatArray,
    *,
    replicas: float | Sequence[float] | FloatArray = 1.0,
    utilisation_scale: float = 1.0,
) -> CapacityEstimate:
    """The demand one replica serves at full utilisation, from telemetry pairs.

    ``demand`` is the total demand (e.g. QPS) and ``utilisation`` the average utilisation
    of its replicas at the same instants (a fraction; pass ``utilisation_scale=100`` for
    percent). ``replicas`` is the replica count then (scalar or per sample).
    """
    d = np.asarray(demand, dtype=np.float64)
    u = np.asarray(utilisation, dtype=np.float64) / utilisation_scale
    r = np.broadcast_to(np.asarray(replicas, dtype=np.float64), d.shape)
    if d.shape != u.shape:
        raise InputError(f"demand and utilisation differ in length: {d.size} vs {u.size}")
    if np.any(r <= 0):
        raise InputError("replicas must be > 0 at every sample")
    ok = np.isfinite(d) & np.isfinite(u) & np.isfinite(r)
    x, y = d[ok] / r[ok], u[ok]
    if x.size < 3 or np.ptp(x) <= 0:
        raise InsufficientDataError(
            f"capacity estimate needs at least 3 samples at different demand levels, "
            f"got {x.size} finite samples"
        )
    slope, idle = np.polyfit(x, y, 1)
    if slope <= 0 or idle >= 1:
        raise InsufficientDataError(
            f"utilisation does not rise with demand (fit: {idle:.3g} + {slope:.3g} x demand "
            "per replica); give the capacity per replica instead"
        )
    fitted = idle + slope * x
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y - fitted) ** 2)) / ss_tot if ss_tot > 0 else 1.0
    return CapacityEstimate(
        capacity=float((1.0 - idle) / slope),
        idle_utilisation=float(idle),
        slope=float(slope),
        r2=r2,
        samples=int(x.size),
    )


@dataclass(frozen=True, slots=True)
class HpaSettings:
    """HorizontalPodAutoscaler bounds, target and scale-down stabilisation for a schedule."""

    min_replicas: int
    max_replicas: int
    target_utilisation_pct: int
    scale_down_stabilisation_s: int
    capacity: float
    tolerance: float
    rationale: str

    @property
    def target_value_per_replica(self) -> float:
        """The target as demand per replica (for a Pods/External metric such as QPS)."""
        return self.capacity * self.target_utilisation_pct / 100.0

    def desired(self, expected_demand: float, current: int | None = None) -> int:
        """What the HPA asks for at steady state when ``expected_demand`` arrives.

        With utilisation ``demand / (current * capacity)`` the HPA's rule
        ``ceil(current * utilisation / target)`` does not depend on ``current``; the
        argument is kept for readers comparing with the Kubernetes formula.
        """
        del current
        raw = math.ceil(expected_demand / self.target_value_per_replica - _EPS)
        return min(max(raw, self.min_replicas), self.max_replicas)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "target_utilisation_pct": self.target_utilisation_pct,
            "target_value_per_replica": self.target_value_per_replica,
            "scale_down_stabilisation_s": self.scale_down_stabilisation_s,
            "tolerance": self.tolerance,
            "rationale": self.rationale,
        }


def hpa_settings(
    schedule: ReplicaSchedule, *, max_headroom: float = 0.2, tolerance: float = HPA_TOLERANCE
) -> HpaSettings:
    """HPA settings that reproduce the schedule's headroom from the expected demand.

    The HPA sees the demand that arrives (the forecast mean), not the quantile the schedule
    covers, so its target must be lower than the schedule's by the headroom ratio. For a
    step that needs ``n >= 2`` replicas, ``ceil(mean / (capacity * T)) >= n`` holds for
    ``T < mean / (capacity * (n - 1))``; the target is the smallest such bound over the
    horizon, divided by ``1 + tolerance`` (the HPA ignores deviations within it), rounded
    down to a whole percent and never above the schedule's own target. The HPA reacts
    after the fact: the start-up lead is not in it (the cron schedule has it).
    """
    if max_headroom < 0:
        raise InputError(f"max_headroom must be >= 0, got {max_headroom}")
    if not 0 <= tolerance < 1:
        raise InputError(f"tolerance must be in [0, 1), got {tolerance}")
    path = schedule.demand
    hi = np.asarray(path.values, dtype=np.float64)
    mean = hi if path.expected is None else np.asarray(path.expected, dtype=np.float64)
    cap = schedule.capacity
    needed = np.ceil(hi / (cap * schedule.target_utilisation) - _EPS)  # before the floor
    binding = (needed >= 2) & (mean > 0)
    if binding.any():
        bounds = mean[binding] / (cap * (needed[binding] - 1))
        target = float(bounds.min()) * (1 - 1e-6)
        where = int(np.flatnonzero(binding)[int(bounds.argmin())])
        why = (
            f"step {where} (expected {mean[where]:.4g}, covered {hi[where]:.4g}, "
            f"{int(needed[where])} replicas) binds the target"
        )
    else:
        ratio = float(mean.sum() / hi.sum()) if hi.sum() > 0 else 1.0
        target = schedule.target_utilisation * ratio
        why = "no step needs 2+ replicas; target scaled by the mean/covered demand ratio"
    target = min(target / (1 + tolerance), schedule.target_utilisation)
    pct = max(1, math.floor(target * 100 + _EPS))
    min_replicas = max(1, schedule.low)
    max_replicas = max(min_replicas, math.ceil(schedule.peak * (1 + max_headroom) - _EPS))
    stabilisation = math.ceil(schedule.scale_down_delay_s)
    rationale = (
        f"target {pct}% of the request (schedule {schedule.target_utilisation:.0%} on "
        f"{path.column}, HPA sees the mean; {why}; tolerance {tolerance:g}); "
        f"min {min_replicas} = schedule low, max {max_replicas} = peak {schedule.peak} "
        f"+ {max_headroom:.0%}"
    )
    return HpaSettings(
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_utilisation_pct=pct,
        scale_down_stabilisation_s=stabilisation,
        capacity=cap,
        tolerance=tolerance,
        rationale=rationale,
    )


@dataclass(frozen=True, slots=True)
class CronWindow:
    """A time window holding a replica count (one KEDA cron trigger)."""

    start: datetime
    end: datetime
    replicas: int

    @property
    def cron_start(self) -> str:
        """Five-field cron of the start, floored to the minute (UTC)."""
        return _cron(self.start)

    @property
    def cron_end(self) -> str:
        """Five-field cron of the end, rounded up to the minute (UTC)."""
        end = self.end
        if end.second or end.microsecond:
            end = end.replace(second=0, microsecond=0) + timedelta(minutes=1)
        return _cron(end)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "replicas": self.replicas,
            "cron_start": self.cron_start,
            "cron_end": self.cron_end,
        }


def _cron(when: datetime) -> str:
    """``minute hour day month *``: fires on that date (yearly); KEDA's cron format."""
    when = when.astimezone(UTC)
    return f"{when.minute} {when.hour} {when.day} {when.month} *"


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A replica schedule compressed into a base count and a few windows above it."""

    base_replicas: int
    windows: tuple[CronWindow, ...]
    replica_hours: float
    schedule_replica_hours: float
    timezone: str = "Etc/UTC"

    @property
    def peak(self) -> int:
        """The most replicas any window holds (the base when there is none)."""
        return max([self.base_replicas, *(w.replicas for w in self.windows)])

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return {
            "timezone": self.timezone,
            "base_replicas": self.base_replicas,
            "peak": self.peak,
            "replica_hours": self.replica_hours,
            "schedule_replica_hours": self.schedule_replica_hours,
            "windows": [w.to_dict() for w in self.windows],
        }


def _runs(levels: IntArray) -> list[list[int]]:
    """Runs of equal values as ``[start, length, level]``."""
    edges = np.flatnonzero(np.diff(levels)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [levels.size]])
    return [[int(s), int(e - s), int(levels[s])] for s, e in zip(starts, ends, strict=True)]


def _cheapest_merge(runs: list[list[int]], base: int) -> tuple[int, int]:
    """The merge adding the fewest replica-steps, as ``(first run, last run)``.

    Candidates are two adjacent windows, or two windows with one base run between them;
    between two windows there is never more than one base run, so with two or more
    windows a candidate always exists.
    """
    best: tuple[int, int, int] | None = None
    for i, run in enumerate(runs):
        if run[2] <= base:
            continue
        j = i + 1 if i + 1 < len(runs) and runs[i + 1][2] > base else i + 2
        if j >= len(runs):
            continue
        span = runs[i : j + 1]
        top = max(r[2] for r in span)
        added = sum((top - r[2]) * r[1] for r in span)
        if best is None or added < best[2]:
            best = (i, j, added)
    if best is None:
        raise AssertionError("fewer than two windows: nothing to merge")
    return best[0], best[1]


def cron_schedule(schedule: ReplicaSchedule, *, max_windows: int = 6) -> CronSchedule:
    """At most ``max_windows`` windows (KEDA cron triggers) covering the schedule.

    Outside the windows the base count (the schedule's low) runs. Adjacent windows are
    merged greedily -- the merge adding the fewest replica-hours first, a merged window
    holding the larger count -- so the result never has fewer replicas than the schedule.
    """
    if max_windows < 1:
        raise InputError(f"max_windows must be >= 1, got {max_windows}")
    ts = schedule.demand.ts
    if ts is None:
        raise InputError(
            "a cron schedule needs timestamps; plan from a forecast frame (demand_from_forecast)"
        )
    levels = np.asarray(schedule.replicas, dtype=np.int64)
    base = int(levels.min())
    runs = _runs(levels)
    while sum(r[2] > base for r in runs) > max_windows:
        i, j = _cheapest_merge(runs, base)
        top = max(r[2] for r in runs[i : j + 1])
        runs[i : j + 1] = [[runs[i][0], sum(r[1] for r in runs[i : j + 1]), top]]
    # a window ends where the next step starts (the grid may have gaps), the last one step on
    ends = (*ts[1:], ts[-1] + timedelta(seconds=schedule.demand.step_s))
    windows = tuple(
        CronWindow(start=ts[s], end=ends[s + length - 1], replicas=level)
        for s, length, level in runs
        if level > base
    )
    hours = sum(r[1] * r[2] for r in runs) * schedule.step_hours
    return CronSchedule(
        base_replicas=base,
        windows=windows,
        replica_hours=float(hours),
        schedule_replica_hours=schedule.replica_hours,
    )
