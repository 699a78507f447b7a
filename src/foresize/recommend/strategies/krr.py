"""A KRR-style recommender: robusta-dev/krr's ``simple`` strategy.

From robusta-dev/krr ``robusta_krr/strategies/simple.py`` (``SimpleStrategySettings``)
and ``robusta_krr/core/models/config.py``: CPU request = P95 of the usage samples
(``cpu_percentile = 95``), no CPU limit; memory request = limit = the maximum usage
times 1.15 (``memory_buffer_percentage = 15``); a workload needs at least 100 data
points (``points_required``); history 14 days (``history_duration``, hours = 336);
floors 10 millicores and 100 MiB (``cpu_min_value``, ``memory_min_value``).
KRR's percentile is numpy's (linear interpolation).
"""

from __future__ import annotations

import numpy as np

from foresize.recommend.strategies.base import Fleet, History, Sizing, Units, units_for

CPU_PERCENTILE = 95.0
MEMORY_BUFFER = 0.15
POINTS_REQUIRED = 100
HISTORY_S = 14 * 86400.0


def recent(history: History, window_s: float = HISTORY_S) -> History:
    """The last ``window_s`` of the history, the part KRR queries."""
    keep = history.ts_s >= history.ts_s[-1] - window_s
    return History(history.workload, history.values[keep], history.ts_s[keep])


def size_krr(
    history: History,
    units: Units,
    *,
    buffer: float = MEMORY_BUFFER,
    cpu_percentile: float = CPU_PERCENTILE,
) -> Sizing:
    """KRR simple for one history: CPU P95 (no limit), memory max x 1.15 (limit = request)."""
    window = recent(history)
    if units.kind == "memory":
        base = float(window.values.max())
        value = max(base * (1.0 + buffer), units.krr_min)
        return Sizing(
            request=value,
            limit=value,
            base=base,
            quantile=1.0,
            margin=buffer,
            rationale=f"KRR simple: max of the last 14 d +{buffer:.0%}",
        )
    base = float(np.percentile(window.values, cpu_percentile))
    value = max(base, units.krr_min)
    return Sizing(
        request=value,
        limit=None,
        base=base,
        quantile=cpu_percentile / 100,
        margin=0.0,
        rationale=f"KRR simple: P{cpu_percentile:g} of the last 14 d, no limit",
    )


class KrrStrategy:
    """The KRR-simple strategy; ``buffer`` (memory) is the knob the benchmark sweeps."""

    name = "krr"

    def __init__(self, *, buffer: float = MEMORY_BUFFER) -> None:
        self.buffer = buffer

    def __call__(
        self,
        fleet: Fleet,
        /,
        *,
        metric: str,
        risk: float,
        horizon_frac: float,
    ) -> dict[str, Sizing]:
        """Size each workload from its own last 14 days; ``risk`` is not used."""
        units = units_for(metric)
        return {name: size_krr(h, units, buffer=self.buffer) for name, h in fleet.items()}
