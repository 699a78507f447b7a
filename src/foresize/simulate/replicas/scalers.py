"""Horizontal scalers: how many replicas to run, decided once per step of the demand series.

Timing, the same for every policy: at the start of step ``t`` a scaler sees the demand
of steps ``0 .. t-1`` (``StepView.observed``; the current step has not happened yet)
and the replicas that are ready or still starting, and returns the replicas it wants.
New replicas become ready ``startup`` steps later (at ``t + startup``); replicas
removed are taken from the starting ones first, newest first (a ReplicaSet deletes
not-ready pods before ready ones). Every policy starts with the replicas the first
step needs, ready.

Registry ``SCALERS``: a name -> a factory of a fresh, stateful scaler built from its
keyword settings (``SCALERS.get("hpa")(target=0.6)``). Only ``oracle`` and ``static``
read ``ScaleContext.truth`` (the whole series): they are the hindsight references.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import polars as pl

from foresize.core.errors import InputError
from foresize.core.registry import Registry
from foresize.forecast.models import make_forecaster
from foresize.simulate.replicas.quantile import NeedQuantiles, reactive_need
from foresize.simulate.replicas.service import FloatArray, Sizer

EMPIRICAL = "empirical"  # the online conditional-quantile model, not a FORECASTERS name

__all__ = [
    "HPA",
    "SCALERS",
    "Hybrid",
    "Oracle",
    "Predictive",
    "ScaleContext",
    "Scaler",
    "StaticPeak",
    "StepView",
]


@dataclass(frozen=True, slots=True)
class ScaleContext:
    """What a scaler knows before the run: sizing, start-up delay, step, and the truth.

    ``truth`` is the whole demand series; only hindsight references may read it.
    """

    sizer: Sizer
    startup: int
    step_s: float
    truth: FloatArray


@dataclass(frozen=True, slots=True)
class StepView:
    """What a scaler sees at the start of step ``t``.

    ``observed`` is the live metric history (steps ``0 .. t-1``); ``forecast_input`` is
    what a forecaster may learn from: the same, except during a forecast blackout,
    when it stops at the blackout's start.
    """

    t: int
    observed: FloatArray
    forecast_input: FloatArray
    ready: int
    starting: int

    @property
    def current(self) -> int:
        """Replicas asked for so far (ready + starting): Kubernetes' ``spec.replicas``."""
        return self.ready + self.starting


class Scaler(Protocol):
    """Decides the replica count once per step."""

    @property
    def name(self) -> str:
        """The registry name."""
        ...

    def start(self, ctx: ScaleContext) -> int:
        """Reset the scaler for a run; return the replicas ready at step 0."""
        ...

    def desired(self, view: StepView) -> int:
        """Replicas wanted from now on."""
        ...


SCALERS: Registry[Callable[..., Scaler]] = Registry("autoscale policy")


def _first_need(ctx: ScaleContext) -> int:
    return ctx.sizer.need(float(ctx.truth[0])) if ctx.truth.size else ctx.sizer.min_replicas


@SCALERS.register("static")
@dataclass(slots=True)
class StaticPeak:
    """Provision for the peak of the whole series, all the time (hindsight: the most a
    static plan needs to serve everything; a plan from history alone can only be worse).
    """

    name: ClassVar[str] = "static"
    replicas: int = 0

    def start(self, ctx: ScaleContext) -> int:
        """Size for the series' peak."""
        self.replicas = ctx.sizer.need(float(ctx.truth.max()))
        return self.replicas

    def desired(self, view: StepView) -> int:
        """Always the peak size."""
        return self.replicas


@SCALERS.register("oracle")
@dataclass(slots=True)
class Oracle:
    """Knows the future exactly but pays the start-up delay: at ``t`` it runs the most
    replicas any step in ``[t, t + startup]`` needs, so each is ready in time and none
    is removed while a later step still needs it. With ``startup = 0`` it runs exactly
    what each step needs: the lower bound of replica-hours at zero unserved demand.
    """

    name: ClassVar[str] = "oracle"
    plan: np.ndarray[Any, np.dtype[np.int64]] = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )

    def start(self, ctx: ScaleContext) -> int:
        """Plan the whole run from the truth."""
        need = ctx.sizer.need_many(ctx.truth)
        plan = need.copy()
        for k in range(1, ctx.startup + 1):
            plan[:-k] = np.maximum(plan[:-k], need[k:])
        self.plan = plan
        return int(plan[0]) if plan.size else ctx.sizer.min_replicas

    def desired(self, view: StepView) -> int:
        """The precomputed plan."""
        return int(self.plan[view.t])


# --- Kubernetes HPA ----------------------------------------------------------------------

SYNC_PERIOD_S = 15.0  # --horizontal-pod-autoscaler-sync-period default
TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance default
DOWN_WINDOW_S = 300.0  # behavior.scaleDown.stabilizationWindowSeconds default
UP_WINDOW_S = 0.0  # behavior.scaleUp.stabilizationWindowSeconds default
UP_PERCENT, UP_PODS, UP_PERIOD_S = 100.0, 4, 15.0  # default scaleUp policies, selectPolicy Max
DOWN_PERCENT, DOWN_PERIOD_S = 100.0, 15.0  # default scaleDown policy


@SCALERS.register("hpa")
@dataclass(slots=True)
class HPA:
    """The Kubernetes HorizontalPodAutoscaler (autoscaling/v2) on a utilisation metric.

    Constants are Kubernetes' defaults (kube-controller-manager flags and the
    ``behavior`` defaults of the autoscaling/v2 API, k8s.io/kubernetes
    pkg/controller/podautoscaler ``replica_calculator.go`` and ``horizontal.go``):
    sync period 15 s; tolerance 0.1; desired = ceil(ready x utilisation / target),
    where utilisation = demand / (ready x capacity) over *ready* pods; when pods are
    still starting and the ratio says scale up, starting pods count as 0 % utilisation
    and the ratio is recomputed over all pods (so pods on their way are not asked for
    twice); scale-up stabilisation window 0 s, scale-down 300 s (the highest
    recommendation of the last 300 s wins); scale-up limit per 15 s: max(+100 %, +4
    pods); scale-down limit per 15 s: -100 %.

    Adaptation to a series step longer than 15 s: the controller runs
    ``round(step / 15)`` syncs per step at 15 s spacing, all seeing the metric of the
    last finished step (it changes once per step), with the rate limits and windows
    applied in seconds as Kubernetes does. The metric may exceed 100 % (queued
    requests count as demand, like a requests-in-flight custom metric).
    """

    name: ClassVar[str] = "hpa"
    target: float = 0.8
    tolerance: float = TOLERANCE
    down_window_s: float = DOWN_WINDOW_S
    sizer: Sizer | None = None
    step_s: float = 60.0
    _recs: deque[tuple[float, int]] = field(default_factory=deque)
    _events: deque[tuple[float, int]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.target) and self.target > 0):
            raise InputError(f"HPA target utilisation must be > 0, got {self.target!r}")

    def start(self, ctx: ScaleContext) -> int:
        """Clear the recommendation and event history."""
        self.sizer, self.step_s = ctx.sizer, ctx.step_s
        self._recs.clear()
        self._events.clear()
        return _first_need(ctx)

    def raw(self, demand: float, ready: int, unready: int, current: int) -> int:
        """The replica calculator: desired replicas before stabilisation and rate limits."""
        assert self.sizer is not None
        if ready == 0:
            return current  # no metrics from any pod: Kubernetes keeps the scale
        ratio = demand / (ready * self.sizer.capacity) / self.target
        if not (unready > 0 and ratio > 1.0):
            if abs(ratio - 1.0) <= self.tolerance:
                return current
            return math.ceil(ratio * ready - 1e-9)
        new_ratio = demand / ((ready + unready) * self.sizer.capacity) / self.target
        if abs(new_ratio - 1.0) <= self.tolerance or new_ratio < 1.0:
            return current
        return max(current, math.ceil(new_ratio * (ready + unready) - 1e-9))

    def desired(self, view: StepView) -> int:
        """Run this step's syncs; return the replica count after the last one."""
        assert self.sizer is not None
        if view.observed.size == 0:
            return view.current
        demand = float(view.observed[-1])
        current, unready = view.current, view.starting
        syncs = max(1, round(self.step_s / SYNC_PERIOD_S))
        for k in range(syncs):
            now = view.t * self.step_s + k * SYNC_PERIOD_S
            want = self.raw(demand, view.ready, unready, current)
            new = self._normalise(now, want, current)
            if new != current:
                self._events.append((now, new - current))
                unready = (
                    max(0, unready + new - current)
                    if new > current
                    else max(0, unready - (current - new))
                )
                current = new
        return current

    def _normalise(self, now: float, want: int, current: int) -> int:
        """Stabilisation windows, then the rate limits, then min/max replicas."""
        assert self.sizer is not None
        self._recs.append((now, want))
        while self._recs and self._recs[0][0] <= now - self.down_window_s:
            self._recs.popleft()
        down = max(r for _, r in self._recs)
        up = want  # scale-up window 0 s: only the current recommendation
        rec = current
        rec = max(rec, up)
        rec = min(rec, down)
        while self._events and self._events[0][0] <= now - max(UP_PERIOD_S, DOWN_PERIOD_S):
            self._events.popleft()
        if rec > current:
            added = sum(d for ts, d in self._events if ts > now - UP_PERIOD_S and d > 0)
            base = current - added
            limit = max(math.ceil(base * (1 + UP_PERCENT / 100)), base + UP_PODS)
            rec = min(rec, limit)
        elif rec < current:
            removed = -sum(d for ts, d in self._events if ts > now - DOWN_PERIOD_S and d < 0)
            base = current + removed
            rec = max(rec, math.floor(base * (1 - DOWN_PERCENT / 100)))
        return max(self.sizer.min_replicas, min(rec, self.sizer.max_replicas))


# --- forecast-driven ---------------------------------------------------------------------


@dataclass(slots=True)
class _Plan:
    """One forecast made at ``origin`` (its first step): mean path and band per horizon.

    ``band[j]`` is the upper quantile minus the mean ``j + 1`` steps ahead.
    """

    origin: int
    mean: FloatArray
    band: FloatArray

    def path(self, y: FloatArray, t: int, k: int) -> FloatArray:
        """Upper quantile for steps ``t .. t + k``, re-anchored on the last observation.

        The mean path is shifted by the latest one-step error (observation minus the
        stored mean for that step) and the band is taken for the horizon counted from
        that observation, so between refits the plan is what a forecast from the newest
        data would give if the model's shape still held. Past the stored horizon the
        last value stays (stale, as during a blackout).
        """
        last = y.size - 1
        index = np.clip(np.arange(t, t + k + 1) - self.origin, 0, self.mean.size - 1)
        shift = float(y[-1] - self.mean[last - self.origin]) if last >= self.origin else 0.0
        ahead = np.clip(np.arange(t, t + k + 1) - last - 1, 0, self.band.size - 1)
        result: FloatArray = np.maximum(self.mean[index] + shift + self.band[ahead], 0.0)
        return result


def _ready_after(view: StepView, want: int) -> int:
    """Ready replicas after asking for ``want`` (removals take starting replicas first)."""
    if want >= view.current:
        return view.ready
    return view.ready - max(0, view.current - want - view.starting)


@SCALERS.register("predictive")
@dataclass(slots=True)
class Predictive:
    """Provision for a quantile of the replicas step ``t + startup`` will need.

    Replicas started at ``t`` are ready at ``t + startup``, so that is the step the
    decision at ``t`` controls. With ``forecaster="empirical"`` (the default) the
    quantile is learnt online from the series so far (``quantile.NeedQuantiles``: per
    state of smoothed demand and last demand, the empirical distribution of what was
    needed ``startup`` steps later; no look-ahead). Any other name is a forecaster of
    ``foresize.forecast.models.FORECASTERS``, refit every ``refit_every`` steps on the
    last ``window`` steps, whose upper band at the ``level`` quantile (re-anchored on
    the newest observation between refits) is taken at its highest over
    ``[t, t + startup + horizon]``.

    Scale-down hysteresis tuned to the start-up delay: it runs the highest of its last
    ``hold + 1`` recommendations, ``hold`` = ``startup`` by default, so step ``u`` keeps
    at least the replicas the forecast made at ``u - startup`` asked for (releasing them
    earlier and starting them again would miss the step). ``slo_unserved`` (a share of
    demand) turns on service-level feedback: the quantile level adapts online so the
    realised unserved share tracks it (``NeedQuantiles``).

    Defaults (level 0.95, half-life 5 steps, bins of a quarter replica, hold =
    start-up) were chosen on the first 40 % of the GenTD26 LoRA concurrency series
    (``benchmarks/bench_autoscale.py``), not on the whole of it.
    """

    name: ClassVar[str] = "predictive"
    forecaster: str = "empirical"
    level: float = 0.95
    slo_unserved: float | None = None
    gamma: float = 0.01
    half_life: float = 5.0
    hold: int | None = None
    refit_every: int = 30
    horizon: int = 0
    window: int = 240
    min_history: int = 10
    params: dict[str, Any] = field(default_factory=dict)
    ctx: ScaleContext | None = None
    plan: _Plan | None = None
    model: NeedQuantiles | None = None
    n_refits: int = 0
    _recent: deque[int] = field(default_factory=deque)
    _last_ready: int | None = None

    def __post_init__(self) -> None:
        if self.forecaster != EMPIRICAL:
            make_forecaster(self.forecaster, **self.params)  # unknown: UnknownNameError now
        hold = 0 if self.hold is None else self.hold
        if self.refit_every < 1 or self.window < 2 or self.horizon < 0 or hold < 0:
            raise InputError(
                "predictive: refit_every >= 1, window >= 2, horizon >= 0 and "
                f"hold >= 0 needed, got {self.refit_every}, {self.window}, "
                f"{self.horizon}, {self.hold}"
            )
        if not 0.5 <= self.level < 1:
            raise InputError(f"predictive: level must be a quantile in [0.5, 1), got {self.level}")

    def start(self, ctx: ScaleContext) -> int:
        """Forget earlier forecasts and what was learnt."""
        self.ctx, self.plan, self.n_refits, self._last_ready = ctx, None, 0, None
        self.model = None
        if self.forecaster == EMPIRICAL:
            self.model = NeedQuantiles(
                ctx.sizer,
                ctx.startup + 1,
                level=min(self.level, 0.999),
                half_life=self.half_life,
                slo_unserved=self.slo_unserved,
                gamma=self.gamma,
            )
        self._recent.clear()
        return _first_need(ctx)

    @property
    def notes(self) -> dict[str, float]:
        """What the run learnt (final quantile level, states seen)."""
        return {} if self.model is None else self.model.describe()

    def _feedback(self, view: StepView) -> None:
        """Feed the realised unserved demand of the last step to the level controller."""
        assert self.ctx is not None
        if self.model is None or not view.observed.size or self._last_ready is None:
            return
        demand = float(view.observed[-1])
        served = float(self.ctx.sizer.throughput(np.array([self._last_ready]))[0])
        self.model.observe_service(demand, max(0.0, demand - served))

    def _stabilise(self, want: int) -> int:
        """Scale-down hysteresis: the highest recommendation of the last ``hold`` steps."""
        assert self.ctx is not None
        hold = self.ctx.startup if self.hold is None else self.hold
        self._recent.append(want)
        while len(self._recent) > hold + 1:
            self._recent.popleft()
        return max(self._recent)

    def _refit(self, y: FloatArray) -> _Plan:
        assert self.ctx is not None
        history = y[-self.window :]
        step_us = round(self.ctx.step_s * 1e6)
        first = (y.size - history.size) * step_us
        panel = pl.DataFrame(
            {
                "series": ["demand"] * history.size,
                "ts": pl.Series(first + step_us * np.arange(history.size, dtype=np.int64))
                .cast(pl.Datetime("us"))
                .dt.replace_time_zone("UTC"),
                "y": history.astype(np.float64),
            }
        )
        h = self.refit_every + self.ctx.startup + self.horizon + 1
        interval = max(1, min(99, round(200 * self.level - 100)))
        frame = (
            make_forecaster(self.forecaster, **self.params)
            .fit(panel)
            .predict(h, levels=(interval,))
        )
        self.n_refits += 1
        mean = frame["mean"].to_numpy().astype(np.float64)
        return _Plan(y.size, mean, frame[f"hi_{interval}"].to_numpy() - mean)

    def forecast_need(self, view: StepView) -> int | None:
        """Replicas the forecast asks for at ``t`` before hysteresis (None: too little history)."""
        assert self.ctx is not None
        y = view.forecast_input
        if y.size < self.min_history:
            return None
        if self.model is not None:
            return self.model.quantile(y)
        if self.plan is None or y.size - self.plan.origin >= self.refit_every:
            self.plan = self._refit(y)
        path = self.plan.path(y, view.t, self.ctx.startup + self.horizon)
        return self.ctx.sizer.need(float(path.max()))

    def _decide(self, view: StepView, want: int) -> int:
        self._last_ready = _ready_after(view, want)
        return want

    def desired(self, view: StepView) -> int:
        """Replicas for the forecast quantile; reactive until history suffices."""
        assert self.ctx is not None
        self._feedback(view)
        need = self.forecast_need(view)
        if need is None:
            last = float(view.observed[-1]) if view.observed.size else math.nan
            fallback = view.current if math.isnan(last) else self.ctx.sizer.need(last)
            return self._decide(view, fallback)
        return self._decide(view, self._stabilise(need))


@SCALERS.register("hybrid")
@dataclass(slots=True)
class Hybrid(Predictive):
    """Predictive, with a reactive floor while the forecast is going wrong.

    The forecast's recent error is the demand it left unserved, in replica capacities:
    the mean over the last ``error_window`` steps, against the *live* metric. When that
    exceeds ``error_bound``, or the last step alone left a whole replica's worth
    unserved (a surprise), or the forecaster's input has gone stale (a blackout: the
    live metric moved on without it), the hybrid runs for ``cooldown`` steps the larger
    of the predictive plan and a reactive one (the last observed demand with
    ``headroom``, sized at once, as an HPA at target ``1 / (1 + headroom)`` with no
    tolerance or windows would).
    """

    name: ClassVar[str] = "hybrid"
    error_bound: float = 0.25
    error_window: int = 10
    cooldown: int = 30
    headroom: float = 0.25
    _errors: deque[float] = field(default_factory=deque)
    _until: int = -1
    fallbacks: int = 0

    def start(self, ctx: ScaleContext) -> int:
        """Forget forecasts and errors."""
        self._errors.clear()
        self._until, self.fallbacks = -1, 0
        return Predictive.start(self, ctx)

    def desired(self, view: StepView) -> int:
        """Predictive unless the recent error says otherwise."""
        assert self.ctx is not None
        sizer = self.ctx.sizer
        surprise = False
        if view.observed.size and self._last_ready is not None:
            served = float(sizer.throughput(np.array([self._last_ready]))[0])
            short = max(0.0, float(view.observed[-1]) - served) / sizer.capacity
            self._errors.append(short)
            while len(self._errors) > self.error_window:
                self._errors.popleft()
            surprise = short >= 1.0
        stale = view.forecast_input.size < view.observed.size
        if surprise or stale or (self._errors and np.mean(self._errors) > self.error_bound):
            if view.t > self._until:
                self.fallbacks += 1
            self._until = view.t + self.cooldown
        self._feedback(view)
        need = self.forecast_need(view)
        last = float(view.observed[-1]) if view.observed.size else math.nan
        if need is None:
            return self._decide(view, view.current if math.isnan(last) else sizer.need(last))
        planned = self._stabilise(need)
        if view.t <= self._until and not math.isnan(last):
            return self._decide(view, max(planned, reactive_need(sizer, last, self.headroom)))
        return self._decide(view, planned)


def make_scaler(name: str, **settings: Any) -> Scaler:
    """A fresh scaler ``name`` with ``settings``; unknown names raise with a suggestion."""
    factory = SCALERS.get(name)
    try:
        return factory(**settings)
    except TypeError as exc:
        raise InputError(f"autoscale policy {name!r}: {exc}") from None
