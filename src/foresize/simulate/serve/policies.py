"""Replica policies for the serving engine, each with the one knob a sweep turns.

All run against the same engine and see the same ``TickView`` (one tick a second):

* ``static`` -- a fixed count all run long (knob: replicas); the cheapest count that
  meets the SLO is the static plan a capacity planner with hindsight would buy.
* ``hpa`` -- the Kubernetes HPA (``replicas.scalers.HPA``: 15 s syncs, tolerance 0.1,
  300 s scale-down stabilisation, the default rate limits) on one metric: ``gpu_util``
  (busy share, what DCGM's duty cycle shows; knob: target utilisation), ``kv_cache``
  (KV usage share, vLLM's ``gpu_cache_usage_perc``; knob: target share) or
  ``in_flight`` (running + waiting requests per replica; knob: target per replica).
  The metric is the mean over the last sync period.
* ``kpa`` -- Knative's KPA on request concurrency: every 2 s, desired =
  ceil(window mean concurrency / (target x 0.7)) over the 60 s stable window, or the
  6 s panic window when that asks for 2x the ready replicas (panic: no scale-down until
  60 s without panic); scale-down at most halves the ready count per decision (knob:
  target concurrency per replica).
* ``keda`` -- KEDA on queue length (vLLM's ``num_requests_waiting``): polled every 30 s,
  fed to the HPA it creates as an AverageValue target (knob: waiting requests per
  replica). A queue of zero asks for ``min_replicas``.
* ``predictive`` -- ``replicas.scalers.Predictive`` on the arriving work (replica-seconds
  of service per second, from the token counts) in 15 s steps, sized with the calibrated
  capacity of one replica at the SLO: provision for a quantile of the work the start-up
  lead ahead. Two knobs: the quantile level, and a capacity scale (the share of the
  calibrated capacity it sizes with), because the calibration's Poisson arrivals hide the
  sub-step bursts of a real trace (the code trace sends 60 requests in one second); the
  oracle's one knob is that scale.
* ``hybrid`` -- the predictive plan with a reactive floor on SLO risk: every tick, when
  the request at the head of the queue has waited ``RISK_SHARE`` of the TTFT SLO, it
  asks at once (not at the next 15 s step) for the replicas that would serve the last
  step's work plus the queued work within the TTFT SLO, and holds the highest such
  floor for ``RISK_COOLDOWN_S`` (a 37 s start-up cannot rescue the burst that raised
  it, but bursts come in clusters: the floor is there for the next one).
  ``replicas.scalers.Hybrid``'s own fallback compares arriving work with the capacity it
  provisioned; that error stays small when the quantile is high, so it hardly ever
  fired: the queue is where a serving forecast shows it is wrong.
* ``oracle`` -- ``replicas.scalers.Oracle`` on the true work series: exactly the
  replicas each 15 s step needs at the calibrated capacity, started a start-up ahead
  (knob: capacity scale, for the headroom the SLO needs inside a step). It knows the work
  of every 15 s step, not every request: it is already what ``predictive`` would do with
  a perfect forecast of the work at its own 15 s resolution (``Predictive`` runs the
  highest of its last start-up + 1 needs, each the need a start-up ahead, which is the
  oracle's plan), so it bounds any forecast that is exact to the 15 s step.
* ``rate_oracle`` -- clairvoyant, a bound and not a deployable policy: the same plan on
  the true work *rate* over aligned ``RATE_WINDOW_S`` blocks (``PolicyContext.
  rate_window_s``): the mean work of each minute, given to every step of it. It knows
  how much work each minute brings, never when in the minute it lands, which is the most
  a forecast of the arrival rate can know (a request trace's rate at a finer step is its
  bursts, which no rate forecast sees coming). Its tuned GPU-hours bound every
  forecast-driven policy of this form fed a per-minute rate forecast, however good
  (knob: capacity scale, as the oracle's; a minute's rate hides its bursts, so its sweep
  reaches further down). Given ``PolicyContext.rate_plan`` (the work each step is sized
  to, look-ahead included: ``plan_ahead`` of a rate, or a forecast made at each step) it
  runs that plan instead, the same way: how a rate forecast's errors cost (a bound's
  sensitivity, not clairvoyance).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from foresize.core.errors import InputError, UsageError
from foresize.core.registry import Registry
from foresize.simulate.replicas.scalers import HPA, ScaleContext, Scaler, StepView, make_scaler
from foresize.simulate.replicas.service import FloatArray, Sizer
from foresize.simulate.serve.engine import Policy, TickView

CONTROL_S = 15.0  # the step of the forecast-driven policies and the HPA's sync period
KPA_TICK_S, KPA_STABLE_S, KPA_PANIC_S = 2.0, 60.0, 6.0  # Knative defaults
KPA_UTILISATION, KPA_PANIC_THRESHOLD, KPA_MAX_DOWN_RATE = 0.7, 2.0, 2.0
KEDA_POLL_S = 30.0
RATE_WINDOW_S = 60.0  # the rate oracle's resolution: the work rate of each minute
RISK_SHARE, RISK_COOLDOWN_S, RISK_HEADROOM = 0.5, 300.0, 0.25  # hybrid's reactive floor
CAPACITY_SCALES = (1.0, 0.85, 0.7, 0.55, 0.4)
HpaMetric = Literal["gpu_util", "kv_cache", "in_flight"]


@dataclass(frozen=True, slots=True)
class PolicyContext:
    """What a policy may be built from: the replica's size and the run's reference series.

    ``capacity`` is the work (replica-seconds per second) one replica serves at the SLO
    (``calibrate``); ``truth`` the arriving work per ``CONTROL_S`` step, which only the
    hindsight references (``static`` sizing, ``oracle`` and ``rate_oracle``) read.
    """

    capacity: float
    kv_capacity_tokens: int
    startup_s: float
    tick_s: float
    truth: FloatArray
    max_replicas: int = 1_000
    ttft_s: float = 2.0  # the TTFT SLO, for the hybrid's risk signal
    rate_window_s: float = RATE_WINDOW_S  # the rate oracle's resolution
    rate_plan: FloatArray | None = None  # what ``rate_oracle`` sizes each step to, if given

    @property
    def initial(self) -> int:
        """Replicas ready at time 0, the same for every policy: what the first step needs."""
        sizer = Sizer(self.capacity, min_replicas=1, max_replicas=self.max_replicas)
        return sizer.need(float(self.truth[0]) if self.truth.size else 0.0)


def _ticks(seconds: float, tick_s: float) -> int:
    return max(1, round(seconds / tick_s))


@dataclass(slots=True)
class Static:
    """A fixed replica count."""

    replicas: int

    def start(self, n_ticks: int, tick_s: float) -> int:
        """Start with all of them ready."""
        return self.replicas

    def desired(self, view: TickView) -> int:
        """Always the same."""
        return self.replicas


@dataclass(slots=True)
class SeriesPolicy:
    """A ``replicas.scalers`` scaler driven every ``CONTROL_S`` by a per-step series.

    ``series`` picks the metric from the tick view (mean over each control step);
    ``capacity`` is the per-replica value of that metric the scaler's sizer divides by.
    """

    scaler: Scaler
    ctx: PolicyContext
    series: Callable[[TickView], FloatArray]
    capacity: float
    hindsight: bool = False
    step_s: float = CONTROL_S
    _per: int = 1

    def start(self, n_ticks: int, tick_s: float) -> int:
        """Build the scale context in control steps and start the scaler."""
        self._per = _ticks(self.step_s, tick_s)
        sizer = Sizer(self.capacity, min_replicas=1, max_replicas=self.ctx.max_replicas)
        startup = math.ceil(self.ctx.startup_s / self.step_s)
        truth = self.ctx.truth if self.ctx.truth.size else np.zeros(1)
        first = self.scaler.start(ScaleContext(sizer, startup, self.step_s, truth))
        return first if self.hindsight else self.ctx.initial

    def desired(self, view: TickView) -> int:
        """Decide at the end of each control step; hold in between."""
        if (view.t + 1) % self._per:
            return view.current
        values = self.series(view)
        n = values.size // self._per
        if n >= self.ctx.truth.size:
            return view.current  # every request has arrived: hold while the rest drains
        observed = values[: n * self._per].reshape(n, self._per).mean(axis=1)
        return self.scaler.desired(StepView(n, observed, observed, view.ready, view.starting))


@dataclass(slots=True)
class RiskHybrid(SeriesPolicy):
    """A forecast-driven plan with a reactive floor while requests queue toward the SLO.

    Every tick, a queue head older than ``RISK_SHARE`` x the TTFT SLO starts (or extends)
    a fallback of ``RISK_COOLDOWN_S``; during it the count is at least what the last
    control step's work plus the queued work served within the TTFT SLO need, with
    ``RISK_HEADROOM``; the highest such floor holds until the fallback ends.
    ``fallbacks`` counts how many fallbacks began.
    """

    fallbacks: int = 0
    _until: float = -math.inf
    _floor: int = 0

    def start(self, n_ticks: int, tick_s: float) -> int:
        """Forget earlier fallbacks."""
        self.fallbacks, self._until, self._floor = 0, -math.inf, 0
        return SeriesPolicy.start(self, n_ticks, tick_s)

    def desired(self, view: TickView) -> int:
        """The plan, raised to the reactive floor while at risk."""
        planned = SeriesPolicy.desired(self, view)
        if view.wait[-1] >= RISK_SHARE * self.ctx.ttft_s:
            if view.now_s > self._until:
                self.fallbacks += 1
                self._floor = 0
            self._until = view.now_s + RISK_COOLDOWN_S
            rate = float(view.work[-self._per:].mean())
            backlog = float(view.queued_work[-1]) / self.ctx.ttft_s
            floor = math.ceil((rate + backlog) * (1 + RISK_HEADROOM) / self.capacity - 1e-9)
            self._floor = max(self._floor, min(floor, self.ctx.max_replicas))
        if view.now_s > self._until:
            return planned
        return max(planned, self._floor)


@dataclass(slots=True)
class KPA:
    """Knative's pod autoscaler on concurrency (stable and panic windows)."""

    target: float
    ctx: PolicyContext
    _per: int = 2
    _stable: int = 60
    _panic: int = 6
    _panic_until: float = -math.inf
    _panic_peak: int = 0

    def start(self, n_ticks: int, tick_s: float) -> int:
        """Windows in ticks; start with one replica."""
        if not self.target > 0:
            raise InputError(f"kpa: target concurrency must be > 0, got {self.target}")
        self._per = _ticks(KPA_TICK_S, tick_s)
        self._stable = _ticks(KPA_STABLE_S, tick_s)
        self._panic = _ticks(KPA_PANIC_S, tick_s)
        self._panic_until, self._panic_peak = -math.inf, 0
        return self.ctx.initial

    def desired(self, view: TickView) -> int:
        """Every 2 s: the stable-window size, or the panic-window one while panicking."""
        if (view.t + 1) % self._per:
            return view.current
        per_pod = self.target * KPA_UTILISATION
        stable = math.ceil(float(view.in_flight[-self._stable:].mean()) / per_pod - 1e-9)
        panic = math.ceil(float(view.in_flight[-self._panic:].mean()) / per_pod - 1e-9)
        ready = max(view.ready, 1)
        if panic / ready >= KPA_PANIC_THRESHOLD:
            self._panic_until = view.now_s + KPA_STABLE_S
        if view.now_s < self._panic_until:
            self._panic_peak = max(self._panic_peak, panic, view.current)
            return self._panic_peak
        self._panic_peak = 0
        floor = math.floor(view.current / KPA_MAX_DOWN_RATE)
        return max(stable, floor, 0)


@dataclass(slots=True)
class Keda:
    """KEDA: a polled queue length fed to the HPA it creates (AverageValue target)."""

    target: float
    ctx: PolicyContext
    hpa: HPA = field(init=False)
    _sync: int = 15
    _poll: int = 30

    def start(self, n_ticks: int, tick_s: float) -> int:
        """HPA state and polling period."""
        self.hpa = HPA(target=self.target)
        self._sync = _ticks(CONTROL_S, tick_s)
        self._poll = _ticks(KEDA_POLL_S, tick_s)
        sizer = Sizer(1.0, min_replicas=1, max_replicas=self.ctx.max_replicas)
        truth = self.ctx.truth if self.ctx.truth.size else np.zeros(1)
        self.hpa.start(ScaleContext(sizer, 0, CONTROL_S, truth))
        return self.ctx.initial

    def desired(self, view: TickView) -> int:
        """The HPA's decision every sync, on the queue length of the last poll."""
        if (view.t + 1) % self._sync:
            return view.current
        polled = float(view.queue[(len(view.queue) - 1) // self._poll * self._poll])
        observed = np.asarray([polled])
        sync = view.t // self._sync  # the HPA counts time in its 15 s syncs
        return self.hpa.desired(StepView(sync, observed, observed, view.ready, view.starting))


def _busy(view: TickView) -> FloatArray:
    return view.busy


def _kv(view: TickView) -> FloatArray:
    return view.kv_used


def _in_flight(view: TickView) -> FloatArray:
    return view.in_flight


def _work(view: TickView) -> FloatArray:
    return view.work


def rate_series(truth: FloatArray, steps: int) -> FloatArray:
    """The mean of ``truth`` over aligned blocks of ``steps`` steps, given to every step
    of its block (the last block may be shorter): the rate, without its timing inside a
    block. ``steps = 1`` returns ``truth`` itself.
    """
    if steps < 1:
        raise InputError(f"rate window must be >= 1 step, got {steps}")
    n = truth.size
    padded = np.zeros(-(-n // steps) * steps)
    padded[:n] = truth
    sizes = np.full(padded.size // steps, float(steps))
    if n % steps:
        sizes[-1] = n % steps
    means: FloatArray = padded.reshape(-1, steps).sum(axis=1) / sizes
    return np.repeat(means, steps)[:n]


def plan_ahead(rate: FloatArray, steps: int) -> FloatArray:
    """The highest of ``rate`` over each step and the ``steps`` after it (fewer at the end):
    what the oracle's plan sizes a step to, a replica asked for now being ready ``steps``
    on. ``steps = 0`` returns ``rate`` itself.
    """
    if steps < 0:
        raise InputError(f"look-ahead must be >= 0 steps, got {steps}")
    out: FloatArray = np.asarray(rate, dtype=np.float64).copy()
    for k in range(1, min(steps, out.size - 1) + 1):
        out[:-k] = np.maximum(out[:-k], rate[k:])
    return out


def _rate_oracle(scale: float, ctx: PolicyContext) -> Policy:
    """The oracle's plan on the work rate of each ``ctx.rate_window_s`` block (clairvoyant),
    or, given ``ctx.rate_plan``, that plan: each step sized to its value, no further
    look-ahead (``plan_ahead`` of the blocks' rate is the clairvoyant plan itself).
    """
    if ctx.rate_plan is not None:
        if ctx.rate_plan.shape != ctx.truth.shape:
            raise InputError(f"rate plan: {ctx.rate_plan.size} steps for a run of "
                             f"{ctx.truth.size}")
        planned = replace(ctx, truth=ctx.rate_plan, startup_s=0.0)
        return SeriesPolicy(make_scaler("oracle"), planned, _work, ctx.capacity * scale,
                            hindsight=True)
    rate = rate_series(ctx.truth, _ticks(ctx.rate_window_s, CONTROL_S))
    return SeriesPolicy(make_scaler("oracle"), replace(ctx, truth=rate), _work,
                        ctx.capacity * scale, hindsight=True)


def _hpa(metric: HpaMetric, target: float, ctx: PolicyContext) -> Policy:
    series, capacity = {
        "gpu_util": (_busy, 1.0),
        "kv_cache": (_kv, float(ctx.kv_capacity_tokens)),
        "in_flight": (_in_flight, 1.0),
    }[metric]
    return SeriesPolicy(HPA(target=target), ctx, series, capacity)


@dataclass(frozen=True, slots=True)
class PolicyKind:
    """A registered policy: its knob, the sweep of the knob, and how to build it.

    ``more_is_safer`` says which way the knob moves attainment up (more replicas).
    """

    name: str
    knob: str
    default: float
    sweep: tuple[float, ...]
    build: Callable[[float, PolicyContext], Policy]
    reactive: bool
    more_is_safer: bool
    scales: tuple[float, ...] = (1.0,)  # capacity scales swept beside the knob


POLICIES: Registry[PolicyKind] = Registry("serve policy")


def _register(kind: PolicyKind) -> None:
    POLICIES.add(kind.name, kind)


_LEVELS = (0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
def _static(replicas: float, ctx: PolicyContext) -> Policy:
    """``replicas`` fixed, or 0: sized for the peak 15 s of work at the calibrated capacity."""
    if replicas >= 1:
        return Static(int(replicas))
    sizer = Sizer(ctx.capacity, min_replicas=1, max_replicas=ctx.max_replicas)
    return Static(sizer.need(float(ctx.truth.max()) if ctx.truth.size else 0.0))


_register(PolicyKind(
    "static", "replicas", 0, (1, 2, 3, 4, 6, 8, 12, 16, 24, 32),
    _static, reactive=False, more_is_safer=True))
_register(PolicyKind(
    "hpa", "target_gpu_util", 0.8, (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
    lambda k, c: _hpa("gpu_util", k, c), reactive=True, more_is_safer=False))
_register(PolicyKind(
    "hpa_kv", "target_kv_share", 0.7, (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    lambda k, c: _hpa("kv_cache", k, c), reactive=True, more_is_safer=False))
_register(PolicyKind(
    "hpa_inflight", "target_in_flight", 16, (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64),
    lambda k, c: _hpa("in_flight", k, c), reactive=True, more_is_safer=False))
_register(PolicyKind(
    "kpa", "target_concurrency", 16, (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64),
    lambda k, c: KPA(k, c), reactive=True, more_is_safer=False))
_register(PolicyKind(
    "keda", "target_queue", 4, (0.5, 1, 2, 4, 8, 16),
    lambda k, c: Keda(k, c), reactive=True, more_is_safer=False))
_register(PolicyKind(
    "predictive", "level", 0.95, _LEVELS,
    lambda k, c: SeriesPolicy(make_scaler("predictive", level=k), c, _work, c.capacity),
    reactive=False, more_is_safer=True, scales=CAPACITY_SCALES))
_register(PolicyKind(
    "hybrid", "level", 0.9, _LEVELS,
    lambda k, c: RiskHybrid(make_scaler("predictive", level=k), c, _work, c.capacity),
    reactive=False, more_is_safer=True, scales=CAPACITY_SCALES))
_register(PolicyKind(
    "oracle", "capacity_scale", 1.0, (0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2),
    lambda k, c: SeriesPolicy(make_scaler("oracle"), c, _work, c.capacity * k, hindsight=True),
    reactive=False, more_is_safer=False))
_register(PolicyKind(
    "rate_oracle", "capacity_scale", 1.0,
    (0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2),
    _rate_oracle, reactive=False, more_is_safer=False))


def parse_policies(text: str) -> list[str]:
    """``hpa,kpa,oracle`` -> checked registry names (a typo gets a suggestion)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--policies: name at least one policy")
    for name in names:
        POLICIES.get(name)
    return names


def build_policy(name: str, knob: float | None, ctx: PolicyContext) -> Policy:
    """A fresh policy ``name`` at ``knob`` (default: its registered default)."""
    kind = POLICIES.get(name)
    return kind.build(kind.default if knob is None else knob, ctx)


def sweep_values(name: str) -> Sequence[float]:
    """The knob values a sweep of ``name`` runs, safest last."""
    kind = POLICIES.get(name)
    return kind.sweep if kind.more_is_safer else tuple(reversed(kind.sweep))


def sweep_grid(name: str) -> list[tuple[float, float]]:
    """(knob, capacity scale) pairs a sweep of ``name`` runs."""
    return [(k, c) for c in POLICIES.get(name).scales for k in sweep_values(name)]
