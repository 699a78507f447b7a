"""Two yardsticks: the history maximum (optionally times a margin) and the oracle.

The oracle knows the future: its limit is each workload's maximum over the period it is
judged on, the smallest fixed limit that never OOMs. It is a benchmark bound, not a
recommender (it is not in ``STRATEGIES``).
"""

from __future__ import annotations

from foresize.recommend.strategies.base import Fleet, FloatArray, Sizing, units_for


class MaxStrategy:
    """Limit = the history's maximum x ``(1 + margin)``: what "give it what it used" means."""

    name = "max"

    def __init__(self, *, margin: float = 0.0) -> None:
        self.margin = margin

    def __call__(
        self,
        fleet: Fleet,
        /,
        *,
        metric: str,
        risk: float,
        horizon_frac: float,
    ) -> dict[str, Sizing]:
        """Size each workload at its own history maximum (plus the margin)."""
        units_for(metric)
        out: dict[str, Sizing] = {}
        for name, history in fleet.items():
            base = float(history.values.max())
            value = base * (1.0 + self.margin)
            out[name] = Sizing(
                request=value,
                limit=value,
                base=base,
                quantile=1.0,
                margin=self.margin,
                rationale=f"history max +{self.margin:.0%}",
            )
        return out


def oracle_sizing(future: FloatArray) -> Sizing:
    """The oracle's limit for a judged period: its maximum."""
    peak = float(future.max())
    return Sizing(
        request=peak,
        limit=peak,
        base=peak,
        quantile=1.0,
        margin=0.0,
        rationale="oracle: the judged period's max",
    )
