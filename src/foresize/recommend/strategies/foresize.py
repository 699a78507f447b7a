"""foresize's strategy: the history peak times a growth factor learned from the fleet.

Why: a workload's next jump is often not in its own history (a container that just
started keeps growing; a fleet-wide event lifts many at once), so a percentile of its
own past plus a fixed 15 % is either too loose for the steady majority or too tight for
the few that grow. What the fleet does know is how the *future maximum* relates to the
*past maximum* for workloads that behave alike.

How (``risk`` = the chance that usage exceeds the limit within the horizon):

1. **Calibration on the fleet's histories only.** Each workload's history is split
   again: the first ``1 - f`` is a pseudo-history, the last ``f`` (``f`` = horizon /
   (history + horizon), 0.3 by default, the ratio the real plan faces) its
   pseudo-future. Its growth is ``g = log(max(pseudo-future) / max(pseudo-history))``.
2. **Peers.** Workloads are described by three shape features of a history: coverage
   (its length relative to the longest in the fleet: young workloads are still
   ramping up), level (median / max: spiky vs flat) and volatility (std of the
   step-to-step changes / max). The ``k`` nearest calibration workloads in standardised
   feature space are the peers.
3. **Margin from measured error.** ``g`` over the peers has mean ``m`` and variance
   ``v``; a fleet floor ``s0`` (the robust scale, 1.4826 x MAD, of every workload's
   ``g``) keeps a flat group from claiming zero uncertainty. The limit is
   ``max(history) x max(1, exp(m + z(1 - risk) sqrt(v + s0^2)))``: a log-normal
   quantile of the growth factor.
4. A static-analysis ``floor`` (weights + activations) is never undercut.
5. **Request by resource kind.** For memory (OOM-critical) the request is the limit.
   CPU and utilisation only throttle above their request, so the request is the
   history's ``1 - risk`` quantile of usage (what the scheduler must reserve) and the
   limit stays the growth-based peak (room for bursts), as KRR and VPA also request
   CPU from a percentile rather than the peak.

Small fleets (under ``MIN_PEERS`` workloads) are calibrated on several splits of each
history (40-70 %), so a single workload still gets a measured margin.
The fit also reports the leave-one-out coverage of the calibration: the share of
workloads whose pseudo-future stayed under the limit their peers would have given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from foresize.recommend.strategies.base import (
    Fleet,
    FloatArray,
    History,
    Sizing,
    units_for,
)

K_PEERS = 30
MIN_PEERS = 5
SMALL_FLEET_SPLITS = (0.4, 0.5, 0.6, 0.7)
MAD_TO_SD = 1.4826
TINY = 1e-9


def shape_features(values: FloatArray, longest: int) -> FloatArray:
    """Coverage, median/max and step volatility/max of one (pseudo-)history."""
    peak = max(float(values.max()), TINY)
    volatility = float(np.diff(values).std()) if values.size > 1 else 0.0
    return np.array(
        [values.size / max(longest, 1), float(np.median(values)) / peak, volatility / peak]
    )


@dataclass(frozen=True, slots=True)
class Calibration:
    """The fleet's pseudo-histories: their features and measured log growth."""

    features: FloatArray  # (n, 3)
    growth: FloatArray  # (n,) log(max future / max past)
    floor_sd: float
    mean: FloatArray
    sd: FloatArray

    @property
    def n_rows(self) -> int:
        """Calibration rows (pseudo-histories)."""
        return int(self.growth.size)

    def peers(self, features: FloatArray, k: int, *, exclude: int | None = None) -> FloatArray:
        """The log growth of the ``k`` calibration rows nearest to ``features``."""
        scaled = (self.features - self.mean) / self.sd
        target = (features - self.mean) / self.sd
        distance = ((scaled - target) ** 2).sum(axis=1)
        if exclude is not None:
            distance[exclude] = np.inf
        order = np.argsort(distance, kind="stable")[: min(k, self.n_rows - (exclude is not None))]
        return self.growth[order]


def calibrate(fleet: Fleet, *, horizon_frac: float) -> Calibration:
    """Split every history into pseudo-history and pseudo-future and measure growth."""
    splits = (1.0 - horizon_frac,) if len(fleet) >= MIN_PEERS else SMALL_FLEET_SPLITS
    rows: list[tuple[FloatArray, float]] = []
    for split in splits:
        cuts = {name: int(h.n_points * split) for name, h in fleet.items()}
        longest = max(cuts.values())
        for name, history in fleet.items():
            cut = cuts[name]
            if cut < 2 or history.n_points - cut < 1:
                continue
            past, future = history.values[:cut], history.values[cut:]
            past_max = float(past.max())
            if past_max <= TINY:
                continue
            log_growth = math.log(max(float(future.max()), TINY) / past_max)
            rows.append((shape_features(past, longest), log_growth))
    if not rows:
        features: FloatArray = np.zeros((1, 3))
        growth: FloatArray = np.zeros(1)
    else:
        features = np.vstack([r[0] for r in rows])
        growth = np.array([r[1] for r in rows], dtype=np.float64)
    median = float(np.median(growth))
    floor_sd = MAD_TO_SD * float(np.median(np.abs(growth - median)))
    sd = features.std(axis=0)
    return Calibration(
        features, growth, floor_sd, features.mean(axis=0), np.where(sd > TINY, sd, 1.0)
    )


def growth_quantile(peers: FloatArray, floor_sd: float, risk: float) -> tuple[float, float, float]:
    """``(m, s, log quantile)`` of the peers' log growth at ``1 - risk``."""
    m = float(peers.mean())
    var = float(peers.var(ddof=1)) if peers.size > 1 else 0.0
    s = math.sqrt(var + floor_sd**2)
    return m, s, m + NormalDist().inv_cdf(1.0 - risk) * s


def loo_coverage(calibration: Calibration, *, k: int, risk: float) -> float:
    """Share of calibration rows whose growth stayed under the limit their peers (not
    themselves) give: the backtest of this method on the fleet's own histories.
    """
    if calibration.n_rows < 2:
        return math.nan
    hits = 0
    for i in range(calibration.n_rows):
        peers = calibration.peers(calibration.features[i], k, exclude=i)
        _, _, q = growth_quantile(peers, calibration.floor_sd, risk)
        hits += calibration.growth[i] <= max(q, 0.0)
    return hits / calibration.n_rows


class ForesizeStrategy:
    """Fleet-calibrated growth quantile on the history peak (see the module docstring)."""

    name = "foresize"

    def __init__(self, *, k: int = K_PEERS, floor: float | None = None) -> None:
        self.k = k
        self.floor = floor

    def __call__(
        self,
        fleet: Fleet,
        /,
        *,
        metric: str,
        risk: float,
        horizon_frac: float,
    ) -> dict[str, Sizing]:
        """Calibrate on the fleet, then size each workload from its peers' growth."""
        throttle_only = units_for(metric).kind != "memory"
        calibration = calibrate(fleet, horizon_frac=horizon_frac)
        coverage = loo_coverage(calibration, k=self.k, risk=risk)
        longest = max(h.n_points for h in fleet.values())
        out: dict[str, Sizing] = {}
        for name, history in fleet.items():
            out[name] = self._size(
                history,
                calibration,
                longest=longest,
                risk=risk,
                coverage=coverage,
                throttle_only=throttle_only,
            )
        return out

    def _size(
        self,
        history: History,
        calibration: Calibration,
        *,
        longest: int,
        risk: float,
        coverage: float,
        throttle_only: bool,
    ) -> Sizing:
        peak = float(history.values.max())
        features = shape_features(history.values, longest)
        peers = calibration.peers(features, self.k)
        m, s, q = growth_quantile(peers, calibration.floor_sd, risk)
        factor = max(1.0, math.exp(q))
        value = peak * factor
        floored = self.floor is not None and self.floor > value
        value = max(value, self.floor or 0.0)
        rationale = (
            f"peak x{factor:.3f}: P{(1 - risk) * 100:g} growth of {peers.size} peers "
            f"(mean {math.exp(m) - 1:+.1%}, sd {s:.3f})"
        )
        if floored:
            rationale += "; raised to the static-analysis floor"
        request = value
        if throttle_only:
            usage = float(np.quantile(history.values, 1.0 - risk))
            request = min(value, max(usage, self.floor or 0.0))
            rationale = f"request P{(1 - risk) * 100:g} of usage; limit {rationale}"
        return Sizing(
            request=request,
            limit=value,
            base=peak,
            quantile=1.0 - risk,
            margin=factor - 1.0,
            rationale=rationale,
            details={
                "n_peers": float(peers.size),
                "growth_mean": m,
                "growth_sd": s,
                "calibration_rows": float(calibration.n_rows),
                "calibration_coverage": coverage,
                "coverage_target": 1.0 - risk,
            },
        )
