"""Split-conformal bands: empirical quantiles of held-out residuals, per group.

The hybrid's intervals come from residuals of a model that never saw them (the
latest origins of each series are held out of its training), grouped by horizon
bucket and by the state at the origin (busy, just idle, settled idle). Grouping matters on
utilisation series: an idle origin has almost no error, a busy one a wide spread,
and one pooled quantile would over-cover the first and under-cover the second.
A group with fewer than ``min_count`` residuals borrows the pooled ones.
"""

from __future__ import annotations

import math

import numpy as np

from foresize.forecast.panel import FloatArray

HORIZON_STARTS: tuple[int, ...] = (1, 2, 4, 8, 16)


def horizon_bucket(h: np.ndarray) -> np.ndarray:
    """Bucket index of each horizon: 1, 2-3, 4-7, 8-15, 16 and beyond."""
    return np.searchsorted(np.asarray(HORIZON_STARTS), h, side="right") - 1


N_STATES = 3
LONG_IDLE = 10  # steps: an idle run at least this long is "settled idle"


def origin_state(idle: np.ndarray, idle_run: np.ndarray) -> np.ndarray:
    """0 busy, 1 idle for fewer than ``LONG_IDLE`` steps, 2 settled idle."""
    flag = np.asarray(idle, dtype=np.int64)
    settled = np.asarray(idle_run >= LONG_IDLE, dtype=np.int64)
    return np.asarray(flag + flag * settled, dtype=np.int64)


def group_of(h: np.ndarray, state: np.ndarray) -> np.ndarray:
    """Conformal group of each row: horizon bucket crossed with the state at the origin."""
    return horizon_bucket(h) * N_STATES + state.astype(np.int64)


def conformal_quantile(residuals: FloatArray, q: float) -> float:
    """The ``q`` quantile with the split-conformal finite-sample correction.

    The upper quantile rounds its rank up, the lower one down, so that a band holds
    at least its nominal share of exchangeable new residuals.
    """
    m = residuals.size
    ordered = np.sort(residuals)
    upper = min(m, math.ceil((m + 1) * q))
    lower = max(1, math.floor((m + 1) * q))
    rank = upper if q >= 0.5 else lower
    return float(ordered[rank - 1])


class ConformalBands:
    """Residual quantiles per group, learned once, queried per forecast row."""

    def __init__(self, residuals: FloatArray, groups: np.ndarray, *, min_count: int = 50) -> None:
        self.pooled = residuals
        self.by_group = {
            int(g): residuals[groups == g]
            for g in np.unique(groups)
            if int((groups == g).sum()) >= min_count
        }

    def offsets(self, groups: np.ndarray, q: float) -> FloatArray:
        """The ``q`` residual quantile for each row's group (pooled for a thin group)."""
        cache: dict[int, float] = {}
        out = np.empty(groups.size)
        for i, g in enumerate(groups.tolist()):
            if g not in cache:
                sample = self.by_group.get(g, self.pooled)
                cache[g] = conformal_quantile(sample, q) if sample.size else 0.0
            out[i] = cache[g]
        return out
