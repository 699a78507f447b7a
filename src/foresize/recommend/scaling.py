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

Two autoscaler translations follow. :func:`hpa_settings` picks an HPA target within
``HPA_TARGET_RANGE`` (20-95 % of the request) by replaying the HPA's rule on the demand it
will react to, and bounds that hold the schedule. :func:`cron_schedule` compresses the
schedule into a few KEDA cron windows that recur weekly (day of week and time), so a
plan made from an old trace still names future instants.
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
# The range an HPA utilisation target in a plan stays in (a share of the request): below
# 20 % an HPA keeps five times the replicas the demand needs; above 90 % the tolerance
# band (x 1.1) lets replicas run at 100 % before it acts.
HPA_TARGET_RANGE = (0.20, 0.90)
DEFAULT_HPA_TARGET = 0.8  # what kubectl autoscale and most charts set
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


def hpa_unserved(
    demand: FloatArray,
    capacity: float,
    targets: FloatArray,
    *,
    lag_steps: int,
    tolerance: float = HPA_TOLERANCE,
    min_replicas: int = 1,
    max_replicas: int | None = None,
) -> FloatArray:
    """Share of ``demand`` an HPA at each of ``targets`` leaves unserved, replayed step by step.

    A coarse replay, vectorised over targets: the HPA sizes for the demand it saw
    ``lag_steps`` ago (its sync period plus the replicas' start-up), lets utilisation run
    ``tolerance`` over the target before acting, and a replica serves ``capacity``; what
    exceeds ``ready * capacity`` is unserved. It ranks targets, it does not replace
    ``simulate autoscale``.
    """
    total = float(demand.sum())
    if total <= 0:
        return np.zeros(targets.size)
    seen = np.concatenate([np.full(lag_steps, demand[0]), demand[: demand.size - lag_steps]])
    per_replica = capacity * targets[:, None] * (1 + tolerance)
    ready = np.maximum(np.ceil(seen[None, :] / per_replica - _EPS), max(min_replicas, 1))
    if max_replicas is not None:
        ready = np.minimum(ready, max_replicas)
    short = np.maximum(demand[None, :] - ready * capacity, 0.0)
    out: FloatArray = short.sum(axis=1) / total
    return out


def hpa_settings(
    schedule: ReplicaSchedule,
    *,
    observed: Sequence[float] | FloatArray | None = None,
    max_headroom: float = 0.2,
    tolerance: float = HPA_TOLERANCE,
) -> HpaSettings:
    """HPA bounds and a target in ``HPA_TARGET_RANGE``, chosen by replaying ``observed``.

    The HPA reacts to the demand that arrives, so the upper quantile the schedule covers
    is not its input: translating that headroom onto the forecast mean gave targets of
    1 % where the mean is near zero, and more replica-hours than a default HPA. Instead
    every whole-percent target in the range is replayed on ``observed`` (the workload's
    history on its grid; default: the forecast mean) with :func:`hpa_unserved`, reacting
    after the start-up, and the highest is kept that leaves no more demand unserved than
    Kubernetes' default ``DEFAULT_HPA_TARGET``: never worse served than the default, and
    cheaper where the demand moves slower than the HPA reacts. Bursts faster than that
    are the cron schedule's job, not a lower target's (it would hold the headroom all
    day). The bounds: min the fewest replicas the replayed demand ever needs at the target
    (a floor that costs nothing in the replay and holds if the metric goes missing; the
    forecast's low would hold replicas a default HPA does not), max the schedule's peak
    plus ``max_headroom`` or the replayed peak need, whichever is higher.
    """
    if max_headroom < 0:
        raise InputError(f"max_headroom must be >= 0, got {max_headroom}")
    if not 0 <= tolerance < 1:
        raise InputError(f"tolerance must be in [0, 1), got {tolerance}")
    path = schedule.demand
    if observed is None:
        observed = path.values if path.expected is None else path.expected
    demand = _check_demand(np.asarray(observed, dtype=np.float64), "HPA replay")
    cap = schedule.capacity
    lo, hi = HPA_TARGET_RANGE
    targets = np.arange(round(lo * 100), round(hi * 100) + 1) / 100.0
    lag = 1 + math.ceil(schedule.startup_s / path.step_s - _EPS)
    unserved = hpa_unserved(demand, cap, targets, lag_steps=lag, tolerance=tolerance)
    default = float(unserved[int(np.argmin(np.abs(targets - DEFAULT_HPA_TARGET)))])
    best = int(np.flatnonzero(unserved <= default + _EPS)[-1])
    target = float(targets[best])
    pct = round(target * 100)
    need = math.ceil(float(demand.max()) / (cap * target) - _EPS)
    min_replicas = max(1, math.ceil(float(demand.min()) / (cap * target) - _EPS))
    max_replicas = max(
        min_replicas, math.ceil(schedule.peak * (1 + max_headroom) - _EPS), need
    )
    stabilisation = math.ceil(schedule.scale_down_delay_s)
    rationale = (
        f"target {pct}% of the request: the highest in {lo:.0%}-{hi:.0%} whose replay on "
        f"{demand.size} steps of demand (reacting after {lag} step(s), tolerance "
        f"{tolerance:g}) leaves no more demand unserved than the default "
        f"{DEFAULT_HPA_TARGET:.0%} ({default:.2%}); "
        f"min {min_replicas} = the fewest the replayed demand needs, max {max_replicas} = "
        f"the larger of peak "
        f"{schedule.peak} + {max_headroom:.0%} and the replayed peak need {need}"
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


WEEK = timedelta(days=7)
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class CronWindow:
    """A weekly window holding a replica count (one KEDA cron trigger).

    ``start`` and ``end`` are the window's next occurrence; the crons repeat it every week
    on the same day and time (UTC), so they never name a date that has passed.
    """

    start: datetime
    end: datetime
    replicas: int

    @property
    def cron_start(self) -> str:
        """Five-field weekly cron of the start (UTC)."""
        return _cron(self.start)

    @property
    def cron_end(self) -> str:
        """Five-field weekly cron of the end (UTC)."""
        return _cron(self.end)

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
    """``minute hour * * day-of-week`` (0 = Sunday): fires weekly; KEDA's cron format."""
    when = when.astimezone(UTC)
    return f"{when.minute} {when.hour} * * {(when.weekday() + 1) % 7}"


def _floor_minute(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


def _ceil_minute(when: datetime) -> datetime:
    floored = _floor_minute(when)
    return floored if floored == when else floored + _MINUTE


Span = tuple[datetime, datetime, int]  # start, end, replicas


def _on_minutes(spans: list[Span]) -> list[Span]:
    """Spans widened outwards to whole minutes, never overlapping.

    Where two spans touched inside a minute, the larger count keeps that minute.
    """
    out: list[Span] = []
    for start, end, replicas in spans:
        start, end = _floor_minute(start), _ceil_minute(end)
        if out and out[-1][1] > start:
            p_start, p_end, p_replicas = out[-1]
            if p_replicas >= replicas:
                start = p_end
            else:
                out[-1] = (p_start, start, p_replicas)
                if start <= p_start:
                    out.pop()
        if end > start:
            out.append((start, end, replicas))
    return out


def _weekly(
    spans: list[Span], after: datetime
) -> tuple[list[tuple[timedelta, timedelta, int]], int]:
    """Spans folded onto one week (offset from Monday 00:00 UTC, length), overlaps merged
    at the larger count; a merged span covering the whole week is returned as a base
    count instead (0 when none does).
    """
    monday = _floor_minute(after.astimezone(UTC)).replace(hour=0, minute=0)
    monday -= timedelta(days=monday.weekday())
    folded = sorted(((s - monday) % WEEK, e - s, r) for s, e, r in spans)
    merged: list[list[Any]] = []
    for offset, length, replicas in folded:
        if merged and offset < merged[-1][0] + merged[-1][1]:
            last = merged[-1]
            last[1] = max(last[1], offset + length - last[0])
            last[2] = max(last[2], replicas)
        else:
            merged.append([offset, length, replicas])
    if len(merged) > 1 and merged[-1][0] + merged[-1][1] > WEEK + merged[0][0]:
        first = merged.pop(0)  # the last span wraps past Sunday into the first
        last = merged[-1]
        last[1] = max(last[1], first[0] + WEEK + first[1] - last[0])
        last[2] = max(last[2], first[2])
    whole = [m[2] for m in merged if m[1] >= WEEK]
    if whole:
        return [], max(whole)
    return [(m[0], m[1], m[2]) for m in merged], 0


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


def cron_schedule(
    schedule: ReplicaSchedule, *, max_windows: int = 6, after: datetime | None = None
) -> CronSchedule:
    """At most ``max_windows`` weekly windows (KEDA cron triggers) covering the schedule.

    Outside the windows the base count (the schedule's low) runs. Adjacent windows are
    merged greedily -- the merge adding the fewest replica-hours first, a merged window
    holding the larger count -- so the result never has fewer replicas than the schedule.
    A cron is a recurring pattern, so each window is the forecast's day of week and time
    of day (UTC), repeated weekly: windows are widened to whole minutes, folded onto one
    week (a horizon over a week lands twice on some days: those merge at the larger
    count), and dated at their next occurrence at or after ``after`` (default: now).
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
    spans = [(ts[s], ends[s + length - 1], level) for s, length, level in runs if level > base]
    now = datetime.now(UTC) if after is None else after.astimezone(UTC)
    weekly, whole = _weekly(_on_minutes(spans), now)
    base = max(base, whole)
    monday = _floor_minute(now).replace(hour=0, minute=0) - timedelta(days=now.weekday())
    windows = []
    for offset, length, replicas in weekly:
        start = monday + offset
        if start < now:
            start += WEEK
        windows.append(CronWindow(start=start, end=start + length, replicas=replicas))
    windows.sort(key=lambda w: w.start)
    hours = sum(r[1] * r[2] for r in runs) * schedule.step_hours
    return CronSchedule(
        base_replicas=base,
        windows=tuple(windows),
        replica_hours=float(hours),
        schedule_replica_hours=schedule.replica_hours,
    )
