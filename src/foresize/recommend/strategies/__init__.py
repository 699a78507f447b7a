"""Right-sizing strategies, one registry: ``foresize``, ``vpa``, ``krr`` and ``max``.

Each entry is a factory taking keyword settings and returning a ``Strategy``; the
reference strategies document where their constants come from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from foresize.core.errors import UsageError
from foresize.core.registry import Registry
from foresize.recommend.choices import MIN_POINTS
from foresize.recommend.strategies.base import (
    Fleet,
    History,
    Sizing,
    Strategy,
    check_risk,
    default_risk,
    units_for,
)
from foresize.recommend.strategies.foresize import (
    DEFAULT_MAX_CHANCE,
    ForesizeStrategy,
    check_max_chance,
)
from foresize.recommend.strategies.krr import KrrStrategy
from foresize.recommend.strategies.simple import MaxStrategy, oracle_sizing
from foresize.recommend.strategies.vpa import VpaStrategy

STRATEGIES: Registry[Callable[..., Strategy]] = Registry("strategy")
STRATEGIES.add("foresize", ForesizeStrategy)
STRATEGIES.add("vpa", VpaStrategy)
STRATEGIES.add("krr", KrrStrategy)
STRATEGIES.add("max", MaxStrategy)


def check_chance_option(strategy: str, max_chance: float | None) -> float | None:
    """``--max-chance`` for ``strategy``: the ceiling on each workload's own chance of
    exceeding that the foresize strategy works under (its default when not given), None
    for the reference strategies, which spend no risk per workload; a usage error when it
    is given for one of them or is out of range.
    """
    if strategy != "foresize":
        if max_chance is not None:
            raise UsageError(f"--max-chance applies to the foresize strategy, not {strategy!r}")
        return None
    return DEFAULT_MAX_CHANCE if max_chance is None else check_max_chance(max_chance)


def make_strategy(name: str, **settings: Any) -> Strategy:
    """Build a registered strategy; an unknown name raises ``UnknownNameError``."""
    return STRATEGIES.get(name)(**settings)


__all__ = [
    "MIN_POINTS",
    "STRATEGIES",
    "Fleet",
    "History",
    "Sizing",
    "Strategy",
    "check_chance_option",
    "check_risk",
    "default_risk",
    "make_strategy",
    "oracle_sizing",
    "units_for",
]
