"""Split-conformal bands per horizon step, from one series' own pre-origin residuals.

A guarded forecaster (``forecast.guard``) scores its chosen method at every origin of
the series' validation window (its last points before the forecast origin, which
that method's forecasts never trained on). The ``k``-step band is the mean plus the
conformal quantiles of the ``k``-step residuals there. Why per series and per step:
on utilisation series an idle container has almost no error and a busy one a wide
spread, so one pooled quantile over-covers the first and under-covers the second;
and errors grow with the step. Why from the recent window rather than the whole
history (as the baselines' empirical bands do): the window says how the series moves
now; step-like series that were busy long ago would otherwise get bands wide enough
to over-cover for hours.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from foresize.forecast.panel import FloatArray
from foresize.forecast.protocol import level_quantiles


def step_offsets(
    residuals: FloatArray, levels: Sequence[int]
) -> dict[int, tuple[FloatArray, FloatArray]]:
    """Per level, the lower and upper offsets per step, from ``(origins, steps)`` residuals.

    ``residuals[i, k]`` is ``y - forecast`` at validation origin ``i`` and step ``k + 1``
    (NaN where the target lies past the history). Each offset is a conformal quantile
    of that step's residuals with the finite-sample correction: the upper quantile
    rounds its rank up, the lower one down, so a band holds at least its nominal share
    of exchangeable new residuals. A step with no residual borrows the previous step's
    offsets (zero for the first); offsets never cross zero, so a band holds the mean.
    """
    ordered = np.sort(residuals, axis=0)  # NaN sort last
    m = np.isfinite(residuals).sum(axis=0)
    column = np.arange(residuals.shape[1])
    have = m > 0
    out: dict[int, tuple[FloatArray, FloatArray]] = {}
    for level in levels:
        q_lo, q_hi = level_quantiles(level)
        rank_hi = np.minimum(m, np.ceil((m + 1) * q_hi).astype(np.int64))
        rank_lo = np.maximum(1, np.floor((m + 1) * q_lo).astype(np.int64))
        lo = np.minimum(ordered[np.maximum(rank_lo - 1, 0), column], 0.0)
        hi = np.maximum(ordered[np.maximum(rank_hi - 1, 0), column], 0.0)
        out[level] = (_carry_forward(lo, have), _carry_forward(hi, have))
    return out


def _carry_forward(values: FloatArray, have: np.ndarray) -> FloatArray:
    """Each step without residuals takes the last step that had some (0 before any)."""
    index = np.where(have, np.arange(values.size), -1)
    last = np.maximum.accumulate(index)
    return np.where(last >= 0, values[np.maximum(last, 0)], 0.0)
