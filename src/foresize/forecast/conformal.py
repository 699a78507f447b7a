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
    residuals: FloatArray, levels: Sequence[int], *, pool: float = 0.0
) -> dict[int, tuple[FloatArray, FloatArray]]:
    """Per level, the lower and upper offsets per step, from ``(origins, steps)`` residuals.

    ``residuals[i, k]`` is ``y - forecast`` at validation origin ``i`` and step ``k + 1``
    (NaN where the target lies past the history). Step ``k``'s offsets are conformal
    quantiles of the residuals of steps ``k - a .. k + a``, ``a = floor(pool * k)``
    (``pool = 0``: step ``k``'s alone). Why pool neighbouring steps: a window holds
    about 40 residuals per step, so a 95 % band is the largest or second-largest of
    them, and on bursty series that one value swings the band from zero to the burst;
    errors at nearby steps are alike (they grow slowly with the step), so pooling them
    steadies the quantile without mixing short and long horizons. The quantile has the
    finite-sample correction: the upper one rounds its rank ``(m + 1) q`` up, the lower
    one down, so a band holds at least its nominal share of exchangeable new residuals
    (no interpolation: on mostly-zero residuals the band stays at an observed value).
    A step with no residual borrows the previous step's offsets (zero for the first);
    offsets never cross zero, so a band holds the mean.
    """
    h = residuals.shape[1]
    quantiles = [q for level in levels for q in level_quantiles(level)]
    table = np.full((len(quantiles), h), np.nan)
    for k in range(h):
        reach = int(pool * (k + 1))
        values = residuals[:, max(k - reach, 0) : k + reach + 1].ravel()
        values = np.sort(values[np.isfinite(values)])
        m = values.size
        if m == 0:
            continue
        for row, q in enumerate(quantiles):
            rank = np.ceil((m + 1) * q) if q > 0.5 else np.floor((m + 1) * q)
            table[row, k] = values[int(min(max(rank, 1), m)) - 1]
    have = np.isfinite(table[0])
    out: dict[int, tuple[FloatArray, FloatArray]] = {}
    for i, level in enumerate(levels):
        lo = np.minimum(np.nan_to_num(table[2 * i]), 0.0)
        hi = np.maximum(np.nan_to_num(table[2 * i + 1]), 0.0)
        out[level] = (_carry_forward(lo, have), _carry_forward(hi, have))
    return out


def _carry_forward(values: FloatArray, have: np.ndarray) -> FloatArray:
    """Each step without residuals takes the last step that had some (0 before any)."""
    index = np.where(have, np.arange(values.size), -1)
    last = np.maximum.accumulate(index)
    return np.where(last >= 0, values[np.maximum(last, 0)], 0.0)


def fleet_scale(
    residual_sets: Sequence[FloatArray], levels: Sequence[int], *, pool: float = 0.0
) -> dict[int, tuple[float, float]]:
    """Per level, the factors on every series' lower and upper offsets that make older
    bands cover newer residuals at the nominal rate, over the whole fleet (split
    conformal in time).

    Each series' validation residuals (origins in time order) are split in halves: the
    first half's offsets (``step_offsets``) face the second half's residuals. A residual
    above the mean needs the upper offset scaled by ``r / hi`` to be covered (below it,
    by ``r / lo``), and each side's factor is the conformal quantile of its needs pooled
    over every series, at that side's tail (97.5 % for a 95 % band). Why: within one
    window the residuals are exchangeable only if the series' noise holds still, and a
    window of few independent horizons (a short history, a bursty one) under-states
    what comes next; how much, the fleet's own recent past says, without any constant
    fitted to a panel. Why each side apart: a series' bursts and drops drift apart (a
    count that thins out drops more than it bursts), and one factor for both sides
    would widen the side that already holds to rescue the other. A factor is close to
    1 where the next residuals look like the last; 1 when no series has four origins
    and some residual. Series whose residuals are all zero (idle, forecast exactly) are
    left out: their bands are zero at any factor, and a fleet of mostly idle series
    would otherwise scale the busy ones' bands to nothing.
    """
    needs: dict[int, list[tuple[FloatArray, FloatArray]]] = {level: [] for level in levels}
    for residuals in residual_sets:
        half = residuals.shape[0] // 2
        if half < 2 or not np.nanmax(np.abs(residuals)) > 0:
            continue  # too few origins, or an idle series: its bands are 0 whatever the factor
        late = residuals[half:]
        seen = np.isfinite(late)
        for level, (lo, hi) in step_offsets(residuals[:half], levels, pool=pool).items():
            needs[level].append(
                (_need(late, -lo[None, :], seen, below=True), _need(late, hi[None, :], seen))
            )
    out: dict[int, tuple[float, float]] = {}
    for level in levels:
        tail = level_quantiles(level)[1]
        if not needs[level]:
            out[level] = (1.0, 1.0)
            continue
        lower = np.concatenate([low for low, _ in needs[level]])
        upper = np.concatenate([high for _, high in needs[level]])
        out[level] = (_rank_factor(lower, tail), _rank_factor(upper, tail))
    return out


def _need(
    late: FloatArray, bound: FloatArray, seen: np.ndarray, *, below: bool = False
) -> FloatArray:
    """Per residual, the factor on ``bound`` (an offset's size) that covers it on one side:
    0 for a residual on the other side (or at the mean), inf where the offset is 0.
    """
    size = np.where(late < 0, -late, 0.0) if below else np.where(late > 0, late, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.where(size == 0, 0.0, np.where(bound > 0, size / bound, np.inf))
    return np.asarray(need[seen], dtype=np.float64)


def _rank_factor(needs: FloatArray, q: float) -> float:
    """The conformal ``q`` quantile of ``needs`` (rank rounded up); the largest finite
    need when that rank falls on an infinite one (offsets of zero that burst).
    """
    values = np.sort(needs)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 1.0
    rank = int(min(np.ceil((values.size + 1) * q), values.size))
    value = float(values[rank - 1])
    return value if np.isfinite(value) else float(finite[-1])
