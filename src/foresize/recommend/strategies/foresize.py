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
   a margin in proportion to its level. ``share`` is not a constant of ours: each fleet
   picks it from ``GAP_SHARES`` as the one whose calibrated limits reserve the least on
   its own calibration rows (``inf``: the peak alone, a margin in proportion to the
   level for every workload, as KRR's buffer).
3. **The conformal quantile.** With ``n`` calibration rows, the margin is the
   ``ceil((n + 1)(1 - risk))``-th smallest score (zero at least): under
   exchangeability of workloads, a new workload exceeds its limit with probability at
   most ``risk``. A fleet too small to resolve ``risk`` (``n < 1/risk - 1``) gets its
   largest score and says so (``resolved = 0``).
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

from foresize.recommend.strategies.base import (
    Fleet,
    FloatArray,
    History,
    Sizing,
    units_for,
)

#: Candidate shares of the peak in a score's spread; each fleet picks its own.
GAP_SHARES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, math.inf)
#: Fleets smaller than this are calibrated on several splits of every history.
MIN_WORKLOADS = 30
#: Where small fleets cut each history, as shares of it (each keeps the horizon ratio).
SMALL_FLEET_SPLITS = (0.4, 0.5, 0.6, 0.7)
#: Percent metrics never need more than all of it.
PERCENT_CAP = 100.0
TINY = 1e-12

Split = Literal["ratio", "length"]


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
    """What the fleet's rows taught: the spread's share, the margin in spreads, the
    limit for idle histories, and how well the rows cover at the asked risk.
    """

    share: float
    margin: float
    resolved: bool
    idle_limit: float | None
    n_rows: int
    n_idle_rows: int
    coverage: float


def calibrate(
    fleet: Fleet,
    *,
    horizon_frac: float,
    risk: float,
    cap: float | None = None,
    split: Split = "length",
    shares: tuple[float, ...] = GAP_SHARES,
) -> Calibration:
    """Pick the spread share that reserves least at the conformal margin (see module)."""
    rows = calibration_rows(fleet, horizon_frac=horizon_frac, split=split)
    active = ~rows.idle
    peak, median = rows.past_peak[active], rows.past_median[active]
    future, weight = rows.future_peak[active], rows.future_len[active]
    best: tuple[float, float, float, bool] | None = None
    for share in shares:
        scale = spread(peak, median, share)
        margin, resolved = conformal_quantile((future - peak) / scale, risk)
        margin = max(margin, 0.0)
        limits = peak + margin * scale
        if cap is not None:
            limits = np.minimum(limits, cap)
        reserved = float((limits * weight).sum())
        if best is None or reserved < best[0]:
            best = (reserved, share, margin, resolved)
    _, share, margin, resolved = best if best is not None else (0.0, shares[0], 0.0, False)
    covered = future <= peak + margin * spread(peak, median, share) + TINY
    idle_future = rows.future_peak[rows.idle]
    idle_limit = conformal_quantile(idle_future, risk)[0] if idle_future.size else None
    return Calibration(
        share=share,
        margin=margin,
        resolved=resolved and bool(peak.size),
        idle_limit=idle_limit,
        n_rows=rows.n_rows,
        n_idle_rows=int(idle_future.size),
        coverage=float(covered.mean()) if covered.size else math.nan,
    )


def percent_cap(metric: str) -> float | None:
    """100 for percentage metrics (a device cannot be more than fully busy), else none."""
    from foresize.core.metrics import metric_info

    return PERCENT_CAP if metric_info(metric).unit == "%" else None


class ForesizeStrategy:
    """The history peak plus a conformally calibrated, shape-scaled margin (see module)."""

    name = "foresize"

    def __init__(
        self, *, floor: float | None = None, split: Split = "length", share: float | None = None
    ) -> None:
        self.floor = floor
        self.split = split
        self.share = share

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
        )
        return {
            name: self._size(
                history,
                calibration,
                risk=risk,
                cap=cap,
                pod_min=units.vpa_min,
                throttle_only=units.kind != "memory",
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
    ) -> Sizing:
        values = history.values
        peak = float(values.max())
        level = f"P{(1 - risk) * 100:g}"
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
            value = peak + calibration.margin * scale
            shape = (
                "the peak"
                if math.isinf(calibration.share)
                else f"peak - median + {calibration.share:g} x peak"
            )
            rationale = (
                f"peak +{calibration.margin:.2f} x spread ({scale:.4g}: {shape}), the "
                f"conformal {level} of {calibration.n_rows} calibration rows"
            )
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
                "margin_spreads": calibration.margin,
                "resolved": float(calibration.resolved),
            },
        )
