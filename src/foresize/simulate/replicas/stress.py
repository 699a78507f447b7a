"""Surprises to inject into a demand series: spikes, level shifts and forecast blackouts.

Syntax (``--inject``, repeatable; offsets from the first step of the series):

* ``spike:3x:10m@12h``: demand x 3 for 10 minutes starting 12 h in.
* ``shift:+50%@6h``: demand x 1.5 from 6 h in to the end (``-20%`` lowers it; never
  below 0).
* ``blackout:2h@10h``: from 10 h in, for 2 h, forecasters see no new data (their
  input stops at the blackout's start, so their forecasts go stale); the live metric
  that reactive policies read is unaffected.

A step is affected when its start lies in ``[start, start + duration)``. An injection
that starts outside the series is an ``InputError``; one that runs past the end is
cut at the end.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from foresize.core.errors import ForesizeWarning, InputError, UsageError
from foresize.core.units import parse_duration
from foresize.simulate.replicas.service import FloatArray, IntArray

Kind = Literal["spike", "shift", "blackout"]
SYNTAX = "spike:3x:10m@12h, shift:+50%@6h or blackout:2h@10h"
_SPIKE = re.compile(r"^spike:(\d+(?:\.\d+)?)x:([^@]+)@(.+)$")
_SHIFT = re.compile(r"^shift:([+-]\d+(?:\.\d+)?)%@(.+)$")
_BLACKOUT = re.compile(r"^blackout:([^@]+)@(.+)$")


@dataclass(frozen=True, slots=True)
class Injection:
    """One surprise: ``kind`` from ``start_s`` for ``duration_s`` (inf: to the end)."""

    kind: Kind
    start_s: float
    duration_s: float
    factor: float = 1.0
    text: str = ""

    def steps(self, n: int, step_s: float) -> tuple[int, int]:
        """The affected steps ``[first, stop)`` of an ``n``-step series."""
        first = math.ceil(self.start_s / step_s - 1e-9)
        if first >= n:
            span = n * step_s / 3600
            raise InputError(
                f"--inject {self.text!r} starts after the series ends "
                f"({n} steps of {step_s:g} s = {span:.1f} h)"
            )
        end = self.start_s + self.duration_s
        stop = n if math.isinf(end) else min(n, math.ceil(end / step_s - 1e-9))
        return first, max(stop, first + 1)


def _duration(text: str, whole: str) -> float:
    try:
        return parse_duration(text)
    except InputError:
        raise UsageError(
            f"--inject {whole!r}: {text!r} is not a duration like 10m or 2h",
            hint=f"expected {SYNTAX}",
        ) from None


def parse_injection(text: str) -> Injection:
    """Parse one ``--inject`` value."""
    spec = text.strip()
    if match := _SPIKE.match(spec):
        factor = float(match.group(1))
        duration = _duration(match.group(2), text)
        if factor <= 0 or duration <= 0:
            raise UsageError(f"--inject {text!r}: factor and duration must be > 0")
        return Injection("spike", _duration(match.group(3), text), duration, factor, text)
    if match := _SHIFT.match(spec):
        factor = 1.0 + float(match.group(1)) / 100.0
        return Injection("shift", _duration(match.group(2), text), math.inf, max(factor, 0.0), text)
    if match := _BLACKOUT.match(spec):
        duration = _duration(match.group(1), text)
        if duration <= 0:
            raise UsageError(f"--inject {text!r}: duration must be > 0")
        return Injection("blackout", _duration(match.group(2), text), duration, 1.0, text)
    raise UsageError(f"--inject {text!r} is not an injection", hint=f"expected {SYNTAX}")


class NoOpInjectionWarning(ForesizeWarning):
    """An ``--inject`` that leaves the demand as it was (it multiplies zeros)."""


def _at(seconds: float) -> str:
    """An offset as ``--inject`` writes it: ``40h``, ``40h30m``."""
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours}h{minutes}m" if minutes else f"{hours}h"


def warn_noop_injections(demand: FloatArray, step_s: float, injections: list[Injection]) -> None:
    """Warn about each spike or shift that changes nothing: demand is 0 in its window.

    Without the warning the "stressed" rows equal the "clean" ones and read as a scaler
    that shrugged off the surprise. The message names the window, its demand and the
    busiest hour, where an injection would bite.
    """
    hourly = max(1, round(3600 / step_s))
    n_hours = math.ceil(demand.size / hourly)
    padded = np.concatenate([demand, np.zeros(n_hours * hourly - demand.size)])
    busiest = int(np.argmax(padded.reshape(n_hours, hourly).sum(axis=1)))
    for injection in injections:
        if injection.kind == "blackout":
            continue
        first, stop = injection.steps(demand.size, step_s)
        window = demand[first:stop]
        if injection.factor != 1.0 and np.any(window > 0):
            continue
        where = (
            f"in {_at(first * step_s)}-{_at(stop * step_s)}"
            if math.isfinite(injection.duration_s)
            else f"from {_at(first * step_s)} on"
        )
        warnings.warn(
            f"--inject {injection.text} changes nothing: demand is "
            f"{float(window.max()):g} {where}; "
            f"busiest hour is {busiest}h",
            NoOpInjectionWarning,
            stacklevel=2,
        )


def apply_injections(
    demand: FloatArray, step_s: float, injections: list[Injection]
) -> tuple[FloatArray, IntArray, FloatArray]:
    """Demand with spikes and shifts applied, the forecaster's visible history length per
    step (``visible[t]`` steps; ``t`` without a blackout), and the factor applied per step
    (to scale any other per-step load the same way).
    """
    factor = np.ones(demand.size)
    visible = np.arange(demand.size, dtype=np.int64)
    for injection in injections:
        first, stop = injection.steps(demand.size, step_s)
        if injection.kind == "blackout":
            visible[first:stop] = np.minimum(visible[first:stop], first)
        else:
            factor[first:stop] *= injection.factor
    return demand * factor, visible, factor
