"""foresize's strategy: the history peak plus a margin calibrated conformally on the fleet.

Why: a workload's next jump is often not in its own history (a container that just
started keeps growing; a step-like GPU memory series sits flat for hours, then loads a
bigger model), so a percentile of its own past plus a fixed 15 % is too loose for the
steady majority and too tight for the few that grow. A parametric margin (a log-normal
of peers' growth) claims a risk it does not keep: the growth of a fleet is zero for most
workloads and large for a few, so its quantiles are nothing like a normal's. What the
fleet can say without any assumption about that distribution is *how often, and by how
much, a future peak passed the history's peak* on the histories the user gave us. Split
conformal prediction turns that count into a limit whose risk means what it says.

How (``risk`` = the chance that usage passes the limit within the horizon):

1. **Calibration rows from the given histories only.** Each history is split into a
   pseudo-history and a pseudo-future *as long as the real horizon* (its last
   ``H = n f / (1 - f)`` samples, ``f`` = horizon / (history + horizon)). When changes
   arrive at a constant rate (a step-like GPU memory series loads a model now and
   then), the chance that the pseudo-future passes the pseudo-history's peak is the
   chance that the real future passes the real history's: same length, same chance of
   a jump. For samples exchangeable in time it is cautious (a shorter past is easier
   to pass). ``split="ratio"`` keeps the ratio of future to history instead, exact in
   that second case; the benchmark reports both, and ``length`` was chosen on
   ``pod_memory_util`` (``benchmarks/bench_rightsize.py``).
2. **A score that adapts to each workload's shape.** A row's score is how far its
   future peak passed its past peak, in units of the past's *spread*
   ``D = (peak - median) + share x peak``: a bursty history (peak far above its median)
   gets a margin in proportion to its bursts, a flat or step-like one (peak = median)
   a margin in proportion to its level. ``share`` is ``DEFAULT_SHARE``, chosen on
   ``pod_memory_util`` by the leave-one-panel-out rule of ``bench_rightsize.py`` and
   reported on the other panels there; ``share=None`` lets each fleet pick it from
   ``GAP_SHARES`` as the one whose calibrated limits reserve the least on its own
   calibration rows (``inf``: the peak alone, a margin in proportion to the level for
   every workload, as KRR's buffer).
3. **The risk spent where covering costs most** (``allocation="cost"``, the default).
   The calibration scores give, without assumptions, the chance that a workload passes
   a margin of ``m`` spreads: ``S(m) = (#{scores > m} + 1) / (n + 1)``. Covering a
   workload costs its spread times the horizon per unit of ``m``. One margin for all
   (``allocation="uniform"``: the ``ceil((n + 1)(1 - risk))``-th smallest score, each
   workload's chance at most ``risk``) gives a 70 GB server the same chance of
   exceeding as a 2 GB one, though covering its jump reserves 35 times as much.
   Instead each workload takes the margin minimising ``cost x m + price x S(m)`` (a
   point of the lower convex hull of ``S``), and the price is the least at which the
   mean chance over the workloads being sized is at most ``risk`` (the spread's share
   is chosen on the calibration rows priced the same way): the fleet still expects a
   share ``risk`` of its workloads exceeded (what the calibration check counts), the
   chances the rationales state average ``risk``, and it reserves least for that. No
   workload's own chance is above ``max_chance`` (``--max-chance``; by default one half:
   a limit below the median outcome is no limit). Why no tighter ceiling by default: the
   risk a fleet is judged by is its share of workloads exceeded, and a ceiling of
   ``2 x risk`` (the upper edge of the benchmark's calibration band), tried as the
   default, made every workload cover a step fleet's jumps at ``risk = 0.01`` (6.8 x the
   oracle's reserve, none of 800 exceeded, out of the band) where one half reserves
   2.6 x and 4 of 800 are exceeded (in it); a user who wants each workload's own chance
   bounded sets it. Why it matters: on a step-like fleet
   a margin wide enough for the rare jump is paid by every flat workload, and no equal
   split of the risk reaches VPA's count of exceeded workloads with much less reserve;
   spending the same expected count where covering is dearest does
   (``bench_rightsize.py``). Each rationale states the workload's own chance. A fleet
   too small to resolve ``risk`` (``n < 1/risk - 1``) gets its largest score and says
   so (``resolved = 0``).
4. **Idle histories** (all zero) have no spread to scale: they get the conformal
   quantile of the future peaks of the fleet's idle rows, and at least the unit's pod
   minimum (VPA's 250 MiB, 25 millicores, 2.5 %).
5. **Physical bounds.** A percentage is capped at 100 % (utilisation of a device,
   memory of a limit); a static-analysis ``floor`` is never undercut.
6. **Request by resource kind.** For memory (OOM-critical) the request is the limit.
   CPU and utilisation only throttle above their request, so the request is the
   history's ``1 - risk`` quantile of usage and the limit is the calibrated peak.

Small fleets (under ``MIN_WORKLOADS`` workloads) are calibrated on several splits of
each history (``SMALL_FLEET_SPLITS``), each with the same ratio of future to past.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from foresize.core.errors import UsageError
from foresize.core.metrics import percent_cap
from foresize.recommend.strategies.base import (
    Fleet,
    FloatArray,
    History,
    Sizing,
    units_for,
)

#: The share of the peak in a score's spread, chosen on pod_memory_util
#: (``bench_rightsize.py``'s leave-one-panel-out table).
DEFAULT_SHARE = 0.02
#: Candidate shares of the peak in a score's spread, when a fleet picks its own.
GAP_SHARES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, math.inf)
#: Fleets smaller than this are calibrated on several splits of every history.
MIN_WORKLOADS = 30
#: Where small fleets cut each history, as shares of it (each keeps the horizon ratio).
SMALL_FLEET_SPLITS = (0.4, 0.5, 0.6, 0.7)
TINY = 1e-12

#: No workload's own chance of exceeding is above this unless asked (``max_chance``):
#: a limit its workload passes more often than not is no limit.
DEFAULT_MAX_CHANCE = 0.5

Split = Literal["ratio", "length"]
Allocation = Literal["uniform", "cost"]


@dataclass(frozen=True, slots=True)
class CalibrationRows:
    """The fleet's pseudo-histories: past peak and median, future peak and length."""

    past_peak: FloatArray
    past_median: FloatArray
    future_peak: FloatArray
    future_len: FloatArray

    @property
    def n_rows(self) -> int:
        """Calibration rows (pseudo-histories)."""
        return int(self.past_peak.size)

    @property
    def idle(self) -> np.ndarray:
        """Rows whose pseudo-history never left zero."""
        return self.past_peak <= TINY


def calibration_rows(
    fleet: Fleet, *, horizon_frac: float, split: Split = "length"
) -> CalibrationRows:
    """Split every history into pseudo-history and pseudo-future.

    ``split="ratio"`` keeps the ratio ``horizon_frac`` of future to past-plus-future
    that the real plan faces (exact for samples exchangeable in time);
    ``split="length"`` keeps the future's length instead (exact for jumps that arrive
    at a constant rate, and more cautious for the rest).
    """
    keep = 1.0 - horizon_frac
    splits = (keep,) if len(fleet) >= MIN_WORKLOADS else SMALL_FLEET_SPLITS
    rows: list[tuple[float, float, float, int]] = []
    for history in fleet.values():
        values = history.values
        horizon = round(values.size * horizon_frac / keep)
        for share in splits:
            if split == "ratio":
                cut = int(values.size * share)
                end = min(values.size, round(cut / keep))
            else:
                end = min(values.size, round(values.size * share / keep))
                cut = end - horizon
            if cut < 2 or end - cut < 1:
                continue
            past, future = values[:cut], values[cut:end]
            rows.append(
                (float(past.max()), float(np.median(past)), float(future.max()), future.size)
            )
    table = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return CalibrationRows(table[:, 0], table[:, 1], table[:, 2], table[:, 3])


def conformal_quantile(scores: FloatArray, risk: float) -> tuple[float, bool]:
    """The split-conformal ``1 - risk`` quantile of ``scores`` and whether ``n`` rows can
    resolve it; when they cannot, the largest score (the most the fleet has seen).
    """
    n = scores.size
    if n == 0:
        return 0.0, False
    rank = math.ceil((n + 1) * (1.0 - risk))
    ordered = np.sort(scores)
    if rank > n:
        return float(ordered[-1]), False
    return float(ordered[rank - 1]), True


@dataclass(frozen=True, slots=True)
class RiskCurve:
    """The lower convex hull of a fleet's survival curve ``S(m)`` (margins ``m`` in
    spreads, rising; chances ``S``, falling) and the price of an exceeded workload at
    which the fleet spends its risk: the only margins a cost-minimising choice takes.
    """

    margins: FloatArray
    chances: FloatArray
    price: float

    @classmethod
    def fit(
        cls,
        scores: FloatArray,
        cost: FloatArray,
        risk: float,
        max_chance: float = DEFAULT_MAX_CHANCE,
    ) -> RiskCurve:
        """The hull of ``scores``' conformal survival curve, cut at ``max_chance``, and
        the least price whose margins give a mean chance over the rows (costs ``cost``)
        of at most ``risk``.
        """
        n = scores.size
        ordered = np.sort(scores)
        candidates = np.unique(np.concatenate([[0.0], ordered[ordered > 0]]))
        above = n - np.searchsorted(ordered, candidates, side="right")
        chances = ((above + 1.0) / (n + 1.0)).astype(np.float64)
        counts = above + 1  # exact: the hull test must see collinear points as such
        hull: list[int] = []
        for i in range(candidates.size):  # monotone chain: keep the lower convex hull
            while len(hull) >= 2:
                a, b = hull[-2], hull[-1]
                cross = (counts[b] - counts[a]) * (candidates[i] - candidates[a]) - (
                    counts[i] - counts[a]
                ) * (candidates[b] - candidates[a])
                if cross <= 1e-9 * abs(candidates[i] - candidates[a]):  # b on or below
                    break
                hull.pop()
            hull.append(i)
        margins, chances = candidates[hull], chances[hull]
        allowed = chances <= max_chance
        if allowed.any():  # else the fleet cannot resolve the risk: the last point only
            margins, chances = margins[allowed], chances[allowed]
        else:
            margins, chances = margins[-1:], chances[-1:]
        return cls(margins, chances, 0.0).priced(cost, risk)

    def priced(self, cost: FloatArray, risk: float) -> RiskCurve:
        """The curve at the least price whose margins for workloads of costs ``cost``
        give a mean chance of at most ``risk`` (the largest price tried where none does).
        """
        # bisection in units of a typical cost: the mean chance falls, in steps, as the
        # price rises
        unit = float(np.median(cost)) if cost.size else 1.0
        lo, hi = 1e-9, 1e9
        if self.chance(self.margin_for(cost, hi * unit)).mean() <= risk:
            for _ in range(60):
                mid = math.sqrt(lo * hi)
                if self.chance(self.margin_for(cost, mid * unit)).mean() <= risk:
                    hi = mid
                else:
                    lo = mid
        # a hair above the breakpoint found, so no workload sits on a tie that rounding
        # could tip either way
        return RiskCurve(self.margins, self.chances, hi * unit * (1.0 + 1e-6))

    def margin_for(self, cost: FloatArray, price: float | None = None) -> FloatArray:
        """Each workload's margin (in spreads) minimising ``cost x m + price x S(m)``."""
        total = np.multiply.outer(cost, self.margins) + (
            self.price if price is None else price
        ) * self.chances
        chosen: FloatArray = self.margins[total.argmin(axis=-1)]
        return chosen

    def chance(self, margins: FloatArray) -> FloatArray:
        """The conformal chance of exceeding at margins taken from the hull."""
        found: FloatArray = self.chances[np.searchsorted(self.margins, margins)]
        return found


def spread(peak: FloatArray | float, median: FloatArray | float, share: float) -> FloatArray:
    """A history's spread: its peak's gap above the median plus ``share`` of the peak;
    ``share = inf`` means the peak alone (a margin in proportion to the level).
    """
    top = np.asarray(peak, dtype=np.float64)
    if math.isinf(share):
        return top
    return top - median + share * top


@dataclass(frozen=True, slots=True)
class Calibration:
    """What the fleet's rows taught: the spread's share, the margin in spreads (one for
    all; with the cost allocation, the ``curve`` each workload's margin is read from),
    the limit for idle histories, and how well the rows cover at the asked risk.
    """

    share: float
    margin: float
    resolved: bool
    curve: RiskCurve | None
    idle_limit: float | None
    n_rows: int
    n_idle_rows: int
    coverage: float


def fleet_costs(fleet: Fleet, share: float, horizon_frac: float) -> FloatArray:
    """What a spread of margin costs each busy workload of ``fleet``: its spread times
    its horizon in samples (as :class:`ForesizeStrategy` sizes it).
    """
    future_share = horizon_frac / (1.0 - horizon_frac)
    busy = [h.values for h in fleet.values() if float(h.values.max()) > TINY]
    return np.array(
        [float(spread(v.max(), np.median(v), share)) * (v.size * future_share) for v in busy],
        dtype=np.float64,
    )


def calibrate(
    fleet: Fleet,
    *,
    horizon_frac: float,
    risk: float,
    cap: float | None = None,
    split: Split = "length",
    shares: tuple[float, ...] = GAP_SHARES,
    allocation: Allocation = "cost",
    max_chance: float = DEFAULT_MAX_CHANCE,
) -> Calibration:
    """Pick the spread share that reserves least at the conformal margins (see module)."""
    rows = calibration_rows(fleet, horizon_frac=horizon_frac, split=split)
    active = ~rows.idle
    peak, median = rows.past_peak[active], rows.past_median[active]
    future, weight = rows.future_peak[active], rows.future_len[active]
    best: tuple[float, float, float, bool, RiskCurve | None, FloatArray] | None = None
    for share in shares:
        scale = spread(peak, median, share)
        scores = (future - peak) / scale
        margin, resolved = conformal_quantile(scores, risk)
        margin = max(margin, 0.0)
        options: list[tuple[RiskCurve | None, FloatArray]] = [
            (None, np.full(scores.shape, margin))
        ]
        if allocation == "cost" and scores.size:
            # kept only where it reserves less than one margin for all: with equal costs
            # (replicas of one deployment) the uniform margin is the cheapest
            fitted = RiskCurve.fit(scores, scale * weight, risk, max_chance)
            options.append((fitted, fitted.margin_for(scale * weight)))
        for curve, margins in options:
            limits = peak + margins * scale
            if cap is not None:
                limits = np.minimum(limits, cap)
            reserved = float((limits * weight).sum())
            if best is None or reserved < best[0]:
                best = (reserved, share, margin, resolved, curve, margins)
    if best is None:
        best = (0.0, shares[0], 0.0, False, None, np.zeros(0))
    _, share, margin, resolved, curve, margins = best
    if curve is not None:  # the fleet's own workloads spend the risk: price on their costs
        curve = curve.priced(fleet_costs(fleet, share, horizon_frac), risk)
    covered = future <= peak + margins * spread(peak, median, share) + TINY
    idle_future = rows.future_peak[rows.idle]
    idle_limit = conformal_quantile(idle_future, risk)[0] if idle_future.size else None
    return Calibration(
        share=share,
        margin=margin,
        resolved=resolved and bool(peak.size),
        curve=curve,
        idle_limit=idle_limit,
        n_rows=rows.n_rows,
        n_idle_rows=int(idle_future.size),
        coverage=float(covered.mean()) if covered.size else math.nan,
    )


def check_max_chance(value: float) -> float:
    """``--max-chance``: a chance in (0, 0.5], or a usage error naming the flag."""
    if not (isinstance(value, int | float) and 0 < value <= DEFAULT_MAX_CHANCE):
        raise UsageError(
            f"--max-chance must be in (0, {DEFAULT_MAX_CHANCE:g}], got {value!r}",
            hint="it caps each workload's own chance of exceeding; --risk is the fleet's",
        )
    return float(value)


class ForesizeStrategy:
    """The history peak plus a conformally calibrated, shape-scaled margin (see module)."""

    name = "foresize"

    def __init__(
        self,
        *,
        floor: float | None = None,
        split: Split = "length",
        share: float | None = DEFAULT_SHARE,
        allocation: Allocation = "cost",
        max_chance: float = DEFAULT_MAX_CHANCE,
    ) -> None:
        self.floor = floor
        self.split = split
        self.share = share
        self.allocation = allocation
        self.max_chance = check_max_chance(max_chance)

    def __call__(
        self,
        fleet: Fleet,
        /,
        *,
        metric: str,
        risk: float,
        horizon_frac: float,
    ) -> dict[str, Sizing]:
        """Calibrate on the fleet, then size each workload from its own peak and spread."""
        units = units_for(metric)
        cap = percent_cap(metric)
        calibration = calibrate(
            fleet,
            horizon_frac=horizon_frac,
            risk=risk,
            cap=cap,
            split=self.split,
            shares=GAP_SHARES if self.share is None else (self.share,),
            allocation=self.allocation,
            max_chance=self.max_chance,
        )
        future_share = horizon_frac / (1.0 - horizon_frac)  # horizon per history sample
        return {
            name: self._size(
                history,
                calibration,
                risk=risk,
                cap=cap,
                pod_min=units.vpa_min,
                throttle_only=units.kind != "memory",
                horizon=history.values.size * future_share,
            )
            for name, history in fleet.items()
        }

    def _size(
        self,
        history: History,
        calibration: Calibration,
        *,
        risk: float,
        cap: float | None,
        pod_min: float,
        throttle_only: bool,
        horizon: float,
    ) -> Sizing:
        values = history.values
        peak = float(values.max())
        level = f"P{(1 - risk) * 100:g}"
        margin, chance = 0.0, risk
        if peak <= TINY:
            seen = calibration.idle_limit
            value = max(seen or 0.0, pod_min)
            rationale = (
                f"idle history: {level} of the peaks that {calibration.n_idle_rows} idle "
                "calibration rows reached, at least the pod minimum"
                if seen is not None
                else "idle history, no idle calibration rows: the pod minimum"
            )
        else:
            scale = float(spread(peak, float(np.median(values)), calibration.share))
            shape = (
                "the peak"
                if math.isinf(calibration.share)
                else f"peak - median + {calibration.share:g} x peak"
            )
            curve = calibration.curve
            if curve is None:
                margin = calibration.margin
                rationale = (
                    f"peak +{margin:.2f} x spread ({scale:.4g}: {shape}), the conformal "
                    f"{level} of {calibration.n_rows} calibration rows"
                )
            else:
                margin = float(curve.margin_for(np.array([scale * horizon]))[0])
                chance = float(curve.chance(np.array([margin]))[0])
                rationale = (
                    f"peak +{margin:.2f} x spread ({scale:.4g}: {shape}): a {chance:.1%} "
                    f"chance of exceeding, from {calibration.n_rows} calibration rows; "
                    f"the fleet's workloads average {risk:g} (those that cost more to "
                    f"cover take more of it, none above {self.max_chance:g})"
                )
            value = peak + margin * scale
            if not calibration.resolved:
                rationale += f" (too few to resolve risk {risk:g}: the largest growth seen)"
        if cap is not None and value > cap:
            value = cap
            rationale += f"; capped at {cap:g} %"
        floored = self.floor is not None and self.floor > value
        value = max(value, self.floor or 0.0)
        if floored:
            rationale += "; raised to the static-analysis floor"
        request = value
        if throttle_only:
            usage = float(np.quantile(values, 1.0 - risk))
            request = min(value, max(usage, self.floor or 0.0))
            rationale = f"request {level} of usage; limit {rationale}"
        return Sizing(
            request=request,
            limit=value,
            base=peak,
            quantile=1.0 - risk,
            margin=value / peak - 1.0 if peak > TINY else 0.0,
            rationale=rationale,
            details={
                "calibration_rows": float(calibration.n_rows),
                "calibration_coverage": calibration.coverage,
                "coverage_target": 1.0 - risk,
                "spread_share": calibration.share,
                "margin_spreads": margin,
                "chance": chance,
                "resolved": float(calibration.resolved),
            },
        )
