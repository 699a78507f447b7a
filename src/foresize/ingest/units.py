"""Unit sanity: a warning when a metric's values contradict the unit its name promises.

Canonical metrics carry their unit in the name (``mem_util_pct`` is a percentage,
``gpu_mem_bytes`` bytes, ``cpu_cores`` cores), and every later stage trusts it: a
right-sizer's floors and caps, the 100 % bound on utilisation, humanised bytes. A file
whose values are in another unit is read without error and gives advice that is wrong
by a constant factor -- GenTD26's ``pod_memory_util`` holds fractions (0.66), and read
as ``mem_util_pct`` a VPA-style 1 % floor then dwarfs every value. The values cannot
prove the unit, so this is a warning that names what the range suggests and the flag
that fixes it (``--scale``), never an error.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import polars as pl

from foresize.core.errors import ForesizeWarning
from foresize.core.metrics import metric_info

MIN_SAMPLES = 10  # fewer values say nothing about a unit
MEMORY_METRICS = frozenset({"mem_bytes", "mem_uss_bytes", "gpu_mem_bytes"})
MIB = 2**20
GIB = 2**30
# a running process or a CUDA context holds at least about 1 MiB: a memory maximum below
# it is a count of larger units; at or below 2,048 it could be MiB or GiB alike
SMALLEST_MEMORY_BYTES = MIB
AMBIGUOUS_MEMORY_MAX = 2048
MOST_CORES = 1024  # more CPU cores than any one node holds: millicores (Kubernetes' unit)


class UnitWarning(ForesizeWarning):
    """A metric's values contradict its unit; the message names the likely fix."""


@dataclass(frozen=True, slots=True)
class UnitSuspicion:
    """One metric whose values look like another unit, and the factor that fixes them."""

    metric: str
    low: float
    high: float
    likely: str
    scale: str

    def message(self, source: str) -> str:
        """The one-line warning: the metric, its observed range, the likely unit, the fix."""
        return (f"{source}: {self.metric} ranges {self.low:.4g}..{self.high:.4g}, which "
                f"looks like {self.likely}, not {metric_info(self.metric).unit}; if so, "
                f"read it with --scale {self.scale}")


def value_ranges(telemetry: pl.DataFrame) -> pl.DataFrame:
    """Per metric of canonical ``telemetry``: sample count ``n``, ``low`` and ``high``."""
    return telemetry.group_by("metric").agg(
        pl.len().alias("n"), pl.col("value").min().alias("low"),
        pl.col("value").max().alias("high"))


def profile_ranges(profile: pl.DataFrame) -> pl.DataFrame:
    """The same ranges from a telemetry profile (one row per series, ``profile telemetry``),
    which never holds all rows at once.
    """
    return profile.group_by("metric").agg(
        pl.col("n_samples").sum().alias("n"), pl.col("min").min().alias("low"),
        pl.col("max").max().alias("high"))


def suspect_units(ranges: pl.DataFrame) -> list[UnitSuspicion]:
    """The metrics whose value range (``value_ranges``) contradicts their unit."""
    found: list[UnitSuspicion] = []
    rows = ranges.select("metric", "n", "low", "high").sort("metric").iter_rows()
    for metric, n, low, high in rows:
        if n < MIN_SAMPLES or high is None or high <= 0:
            continue
        suspicion = _suspicion(str(metric), float(low), float(high))
        if suspicion is not None:
            found.append(suspicion)
    return found


def _suspicion(metric: str, low: float, high: float) -> UnitSuspicion | None:
    unit = metric_info(metric).unit
    if unit == "%" and high <= 1.0:
        return UnitSuspicion(metric, low, high, "fractions of 1", "100")
    if metric in MEMORY_METRICS and high < SMALLEST_MEMORY_BYTES:
        if high <= AMBIGUOUS_MEMORY_MAX:
            return UnitSuspicion(metric, low, high, "MiB or GiB",
                                 f"{MIB} (MiB) or --scale {GIB} (GiB)")
        return UnitSuspicion(metric, low, high, "MiB", str(MIB))
    if metric == "cpu_cores" and high > MOST_CORES:
        return UnitSuspicion(metric, low, high, "millicores", "0.001")
    return None


def warn_on_units(ranges: pl.DataFrame, *, source: str) -> None:
    """Warn once per metric whose value range contradicts its unit."""
    for suspicion in suspect_units(ranges):
        warnings.warn(suspicion.message(source), UnitWarning, stacklevel=2)
