"""Scale-free origin features for the direct multi-horizon hybrid forecaster.

Row ``t`` of :func:`origin_features` describes a series as seen at origin ``t``
(only ``y[:t + 1]`` is used, so rows are causal). Every value-like feature is a
difference to the last value ``y[t]`` divided by the series scale ``s`` (the mean
absolute one-step change), so one global model serves series on any scale: a GPU
duty cycle in percent and a request rate share the same trees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from foresize.forecast.arima import ndiffs
from foresize.forecast.panel import FloatArray
from foresize.forecast.wavelet import ARModel, ar_paths, causal_components, fit_ar

SECONDS_PER_DAY = 86_400.0


def series_scale(y: FloatArray) -> float:
    """Mean absolute one-step change (the MASE scale); 0.0 for a constant series."""
    if y.size < 2:
        return 0.0
    return float(np.mean(np.abs(np.diff(y))))


def idle_level(y: FloatArray) -> float:
    """Values at or below this count as idle: the floor plus 1 % of the range.

    Utilisation series sit at their floor (0 % duty cycle, a resident memory level)
    when nothing runs; 1 % of the range absorbs sensor jitter around that floor.
    """
    low, high = float(y.min()), float(y.max())
    return low + 0.01 * (high - low)


def _windows(y: FloatArray, w: int) -> FloatArray:
    """``(n, w)`` trailing windows, the series' first value repeated before its start."""
    padded = np.concatenate([np.full(w - 1, y[0]), y])
    return sliding_window_view(padded, w)


def _steps_since(flag: np.ndarray) -> FloatArray:
    """Per index, steps since ``flag`` was last true (the index itself when never)."""
    index = np.arange(flag.size)
    last = np.maximum.accumulate(np.where(flag, index, 0))
    return (index - last).astype(np.float64)


def feature_names(lags: int, windows: Sequence[int], *, calendar: bool) -> list[str]:
    """Column names of :func:`origin_features`, in order (``h`` is appended by the caller)."""
    names = ["level", "range_pos", "idle_now", "run_state", "run_flat", "hist_mean", "hist_idle"]
    names += [f"diff_{j}" for j in range(1, lags + 1)]
    for w in windows:
        names += [f"{stat}_{w}" for stat in ("mean", "median", "min", "max", "std", "idle")]
    if calendar:
        names += ["tod_sin", "tod_cos"]
    return names


def origin_features(
    y: FloatArray,
    ts_s: FloatArray,
    *,
    scale: float,
    idle: float,
    lags: int,
    windows: Sequence[int],
    calendar: bool,
    rows: npt.NDArray[np.int64] | None = None,
) -> FloatArray:
    """``(n, p)`` features, row ``t`` from ``y[:t + 1]`` only; columns as in ``feature_names``.

    ``scale`` divides every value-like feature, ``idle`` is the idle threshold
    (see :func:`idle_level`), ``ts_s`` the sample times in epoch seconds (used for
    the time of day when ``calendar``). ``rows``, when given, are the only origins
    computed (in that order): a fit needs a few hundred of a history's thousands,
    and the rolling medians dominate the cost.
    """
    n = y.size
    at = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    low, high = float(y.min()), float(y.max())
    span = high - low if high > low else 1.0
    is_idle = y <= idle
    flips = np.concatenate([[False], is_idle[1:] != is_idle[:-1]])
    changes = np.concatenate([[False], np.abs(np.diff(y)) > 1e-9 * max(scale, 1e-12)])
    count = np.arange(1, n + 1, dtype=np.float64)
    cols: list[FloatArray] = [
        y / scale,
        (y - low) / span,
        is_idle.astype(np.float64),
        np.log1p(_steps_since(flips)),
        np.log1p(_steps_since(changes)),
        (np.cumsum(y) / count - y) / scale,
        np.cumsum(is_idle) / count,
    ]
    cols = [c[at] for c in cols]
    last = y[at]
    padded = np.concatenate([np.full(lags, y[0]), y])
    for j in range(1, lags + 1):
        cols.append((last - padded[lags - j + at]) / scale)
    for w in windows:
        win = _windows(y, w)[at]
        cols += [
            (win.mean(axis=1) - last) / scale,
            (np.median(win, axis=1) - last) / scale,
            (win.min(axis=1) - last) / scale,
            (win.max(axis=1) - last) / scale,
            win.std(axis=1) / scale,
            (win <= idle).mean(axis=1),
        ]
    if calendar:
        angle = 2 * np.pi * (ts_s[at] % SECONDS_PER_DAY) / SECONDS_PER_DAY
        cols += [np.sin(angle), np.cos(angle)]
    return np.column_stack(cols)


def wavelet_feature_names(levels: int) -> list[str]:
    """Column names of :func:`wavelet_features`: the details fine to coarse, then the smooth."""
    return [f"wav_d{j}" for j in range(1, levels + 1)] + [f"wav_c{levels}"]


def wavelet_features(y: FloatArray, *, scale: float, levels: int) -> FloatArray:
    """``(n, levels + 1)`` causal à trous Haar components at each origin, scale-free.

    The details ``d_1 .. d_levels`` are already changes (they oscillate around zero) and
    are divided by ``scale``; the smooth ``c_levels`` is given as ``(c - y) / scale``, how
    far the local level sits from the last value, like the rolling means. Row ``t`` uses
    ``y[:t + 1]`` only (``wavelet.causal_components`` is causal).
    """
    comps = causal_components(y, levels)
    comps[-1] -= y
    return np.ascontiguousarray((comps / scale).T)


@dataclass(frozen=True, slots=True)
class StackedAR:
    """A per-series linear forecaster whose h-step forecasts feed the hybrid (stacking).

    ``levels == 0``: one AR(p) on the series itself; ``levels >= 1``: the Wavelet
    forecaster's model (an AR per causal à trous Haar component, the smooth on its
    KPSS-chosen difference), recombined. Fitted once on the history given to ``fit``;
    forecasts from an origin ``t`` use ``y[:t + 1]`` only.
    """

    levels: int
    models: tuple[ARModel, ...]

    @classmethod
    def fit(cls, y: FloatArray, *, levels: int, lags: int) -> StackedAR:
        """Least-squares AR(``lags``) per component of ``y`` (see the class doc)."""
        comps = _components(y, levels)
        warmup = 2**levels if levels else 0
        smooth_d = min(ndiffs(comps[-1][warmup:], max_d=1), 1)
        models = [fit_ar(c, lags, warmup) for c in comps[:-1]]
        models.append(fit_ar(comps[-1], lags, warmup, d=smooth_d))
        return cls(levels, tuple(models))

    def paths(self, y: FloatArray, origins: np.ndarray, h: int) -> FloatArray:
        """``(origins, h)`` forecasts of ``y`` from every origin at once (vectorised)."""
        comps = _components(y, self.levels)
        index = np.asarray(origins, dtype=np.int64)
        out = np.zeros((index.size, h))
        for comp, model in zip(comps, self.models, strict=True):
            out += ar_paths(comp, model, index, h)
        return out


def _components(y: FloatArray, levels: int) -> FloatArray:
    """The series as one row (``levels == 0``) or its causal wavelet components."""
    return causal_components(y, levels) if levels else np.asarray(y, dtype=np.float64)[None, :]
