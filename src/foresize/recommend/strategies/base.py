"""What every right-sizing strategy takes and returns, and the units it sizes in.

A strategy sees the whole fleet at once (``Fleet``: one ``History`` per workload, all of
one metric), because the foresize strategy learns from peers; the reference strategies
(VPA, KRR, history max) size each workload on its own history only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from foresize.core.errors import InputError, UsageError

FloatArray = npt.NDArray[np.float64]
ResourceKind = Literal["cpu", "memory", "util"]
MIB = 1024.0**2


@dataclass(frozen=True, slots=True)
class History:
    """One workload's usage history of one metric, in time order."""

    workload: str
    values: FloatArray
    ts_s: FloatArray  # seconds since the epoch, same length as values

    @property
    def n_points(self) -> int:
        """How many samples the history holds."""
        return int(self.values.size)

    @property
    def window_s(self) -> float:
        """Time from the first to the last sample."""
        return float(self.ts_s[-1] - self.ts_s[0]) if self.values.size else 0.0


Fleet = Mapping[str, History]


@dataclass(frozen=True, slots=True)
class Units:
    """Unit-dependent constants of the reference recommenders, per resource kind.

    The upstream constants are in cores and bytes. Percent metrics (``mem_util_pct``,
    ``gpu_util_pct``) keep the algorithms and scale the floors as if 100 % were one
    25 GiB container (memory) or one core (utilisation): VPA's 250 MiB pod minimum
    becomes 1 %, KRR's 100 MiB floor 0.4 %, the OOM bump's 100 MiB 0.4 %; 25 millicores
    becomes 2.5 % and KRR's 10 m 1 %. Histograms start at 0.01 of the unit.
    """

    kind: ResourceKind
    first_bucket: float
    vpa_min: float
    krr_min: float
    oom_min_bump: float


UNITS: dict[str, Units] = {
    "cores": Units("cpu", 0.01, 0.025, 0.010, 0.0),
    "bytes": Units("memory", 1e7, 250 * MIB, 100 * MIB, 100 * MIB),
    "%memory": Units("memory", 0.01, 1.0, 0.4, 0.4),
    "%util": Units("util", 0.01, 2.5, 1.0, 0.0),
}


def units_for(metric: str) -> Units:
    """The constants for a metric: bytes, cores, memory percent or utilisation percent."""
    from foresize.core.metrics import metric_info

    unit = metric_info(metric).unit
    if unit == "bytes":
        return UNITS["bytes"]
    if unit == "%":
        return UNITS["%memory"] if "mem" in metric else UNITS["%util"]
    if unit == "cores":
        return UNITS["cores"]
    raise InputError(
        f"metric {metric!r} (unit {unit!r}) cannot be right-sized; use a cores, "
        "bytes or percent metric such as mem_bytes, cpu_cores or mem_util_pct"
    )


#: The default chance of exceeding the limit within the horizon, for every resource.
#: Chosen on GenTD26's pod_memory_util alone, as the standard risk (0.01, 0.02, 0.05,
#: 0.1) with the least slack whose limits violate no more containers than the VPA-style
#: strategy's there (``benchmarks/bench_rightsize.py`` reports it on every other panel).
#: At 0.01 the limit must cover jumps that one workload in a hundred makes, which costs
#: more than VPA reserves on every step-like panel. Memory still gets request = limit.
DEFAULT_RISK = 0.05


def default_risk(metric: str) -> float:
    """The default risk for ``metric`` (``DEFAULT_RISK``; the metric must be sizable)."""
    units_for(metric)
    return DEFAULT_RISK


def check_risk(risk: float) -> float:
    """Risk is a probability of exceeding in (0, 0.5]; above 0.5 the limit is below the
    median outcome, which no right-sizer should recommend.
    """
    if not (0.0 < risk <= 0.5):
        raise UsageError(f"--risk must be in (0, 0.5], got {risk}; e.g. --risk 0.01")
    return float(risk)


@dataclass(frozen=True, slots=True)
class Sizing:
    """One strategy's answer for one workload.

    ``limit`` is the enforced cap (memory above it is an OOM) or ``None`` when the
    strategy sets none (VPA and KRR leave CPU unlimited). ``lower``/``upper`` are the
    VPA-style bounds where the strategy has them. ``margin`` is the fraction added on
    top of ``base`` (the quantile or peak before the margin).
    """

    request: float
    limit: float | None
    base: float
    quantile: float | None
    margin: float
    lower: float | None = None
    upper: float | None = None
    rationale: str = ""
    details: dict[str, float] = field(default_factory=dict)

    @property
    def enforced(self) -> float:
        """The value usage is held to: the limit, else the request."""
        return self.limit if self.limit is not None else self.request


class Strategy(Protocol):
    """A right-sizer: sizes every workload of a fleet for one metric."""

    name: str

    def __call__(
        self,
        fleet: Fleet,
        /,
        *,
        metric: str,
        risk: float,
        horizon_frac: float,
    ) -> dict[str, Sizing]:
        """Size each workload of ``fleet`` (all hold at least ``MIN_POINTS`` samples)."""
        ...
