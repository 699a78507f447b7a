"""Online conditional quantiles of the replicas a future step will need (no look-ahead).

Why not a forecaster's band: on bursty per-minute concurrency an additive band around a
mean path is wide everywhere and still misses bursts. What a scaler needs is narrower:
the replicas step ``t + startup`` will need (the first step a replica started at ``t``
can serve), as a quantile, given what is known at ``t`` (the demand of steps before
``t``). This learns that directly from the series so far:

* State at ``t``: an exponentially weighted mean of demand (half-life ``half_life``
  steps, in replica capacities, binned by ``bin_width``) and the last step's demand
  (whole capacities, capped). Per-minute peaks are noisy; their smoothed rate is what
  carries over two to five minutes.
* Per state, a histogram of the replicas needed ``startup`` steps later, filled as
  each label becomes known (at ``k + startup + 1`` for a state seen at ``k``: an
  expanding window, updated every step, nothing refit).
* A state with fewer than ``min_count`` labels falls back to the pooled empirical
  quantile of the change in demand over the horizon in the last ``pool_window`` steps
  (naive forecast plus an empirical error quantile), so short or smooth series (summed
  QPS) are served too.
* Quantile level: fixed, or adapted online so the *realised* unserved share tracks a
  target (adaptive conformal inference, Gibbs & Candes 2021, on the service error:
  ``level += gamma (unserved_t / mean demand so far - target)``, clipped to
  ``[0.5, 0.999]``); the only feedback is unserved demand already observed.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from foresize.core.errors import InputError, UsageError
from foresize.simulate.replicas.service import FloatArray, Sizer

MIN_LEVEL, MAX_LEVEL = 0.5, 0.999


@dataclass(slots=True)
class NeedQuantiles:
    """Conditional empirical quantiles of ``need(demand[t + horizon - 1])`` given the state."""

    sizer: Sizer
    horizon: int
    level: float = 0.95
    half_life: float = 5.0
    bin_width: float = 0.25
    last_cap: int = 8
    min_count: int = 30
    pool_window: int = 240
    slo_unserved: float | None = None
    gamma: float = 0.01
    _ewma: float | None = None
    _cells: dict[tuple[int, int], FloatArray] = field(default_factory=dict)
    _pending: deque[tuple[int, tuple[int, int]]] = field(default_factory=deque)
    _demand_sum: float = 0.0
    _seen: int = 0

    def __post_init__(self) -> None:
        if not MIN_LEVEL <= self.level <= MAX_LEVEL:
            raise InputError(
                f"predictive: level must be in [{MIN_LEVEL}, {MAX_LEVEL}], got {self.level}"
            )
        if self.horizon < 1 or self.half_life <= 0 or self.bin_width <= 0:
            raise InputError("predictive: horizon >= 1, half-life and bin width > 0 needed")
        if self.slo_unserved is not None and not 0 < self.slo_unserved < 1:
            raise UsageError(f"--slo-unserved must be a share in (0, 1), got {self.slo_unserved!r}")

    def _state(self, last: float) -> tuple[int, int]:
        """Advance the EWMA with the newest observation and bin the state."""
        x = last / self.sizer.capacity
        rate = 1.0 - 0.5 ** (1.0 / self.half_life)
        self._ewma = x if self._ewma is None else self._ewma + rate * (x - self._ewma)
        return min(int(self._ewma / self.bin_width), 1000), min(int(x), self.last_cap)

    def observe_service(self, demand: float, unserved: float) -> None:
        """Feed the last step's realised service; adapts the level when a target is set."""
        self._demand_sum += demand
        self._seen += 1
        if self.slo_unserved is None:
            return
        mean = self._demand_sum / self._seen
        if mean <= 0:
            return
        step = self.gamma * (unserved / mean - self.slo_unserved)
        self.level = min(MAX_LEVEL, max(MIN_LEVEL, self.level + step))

    def quantile(self, y: FloatArray) -> int:
        """Replicas step ``t + horizon - 1`` needs at ``level``, from history ``y[:t]``."""
        t, lag = y.size, self.horizon - 1
        while self._pending and self._pending[0][0] + lag <= t - 1:
            origin, state = self._pending.popleft()
            need = self.sizer.need(float(y[origin + lag]))
            cell = self._cells.get(state)
            if cell is None or need >= cell.size:
                grown = np.zeros(max(need + 1, 2 * (0 if cell is None else cell.size)))
                if cell is not None:
                    grown[: cell.size] = cell
                cell = self._cells[state] = grown
            cell[need] += 1.0
            coarse = (state[0], -1)
            if coarse != state:
                self._pending.appendleft((origin, coarse))
        state = self._state(float(y[-1]))
        self._pending.append((t, state))
        for key in (state, (state[0], -1)):
            cell = self._cells.get(key)
            if cell is not None and cell.sum() >= self.min_count:
                cum = np.cumsum(cell)
                return int(np.searchsorted(cum, self.level * cum[-1] - 1e-9))
        return self._pooled(y)

    def _pooled(self, y: FloatArray) -> int:
        """Last value plus the empirical quantile of its change over the horizon."""
        t, lag = y.size, self.horizon - 1
        first = max(1, t - lag - self.pool_window)
        origins = np.arange(first, t - lag)
        if origins.size < 5:
            return self.sizer.need(float(y[-1]))
        change = y[origins + lag] - y[origins - 1]
        bump = float(np.quantile(change, self.level))
        return self.sizer.need(max(0.0, float(y[-1]) + bump))

    @property
    def n_cells(self) -> int:
        """States with at least one label."""
        return len(self._cells)

    def describe(self) -> dict[str, float]:
        """Final level and learning state, for the run notes."""
        return {"final_level": round(self.level, 4), "cells": float(self.n_cells)}


def reactive_need(sizer: Sizer, demand: float, headroom: float) -> int:
    """Replicas for the last demand with ``headroom`` (an HPA at target 1/(1+headroom))."""
    if not math.isfinite(demand):
        return sizer.min_replicas
    return sizer.need(demand * (1.0 + headroom))
