"""A forecasting panel: canonical telemetry of one metric on a regular grid per series.

Forecasters count in steps, not seconds, so telemetry is first put on a grid. The
rule, stated once here and reported in ``PanelReport``: the step is the median
interval between consecutive samples over all series (rounded to a whole second);
each series' grid starts at its first sample; samples are assigned to the nearest
grid point and averaged when several land on one (``merged``); grid points with no
sample are linearly interpolated between their neighbours (``filled``). Nothing is
dropped: a series with fewer than two points keeps its one point and forecasters
fall back to naive on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from foresize.core.errors import InputError, InsufficientDataError, UsageError
from foresize.core.schemas import check_telemetry
from foresize.core.units import human_duration

# a grid beyond this is a stray timestamp, not a history: it would take gigabytes
MAX_GRID_POINTS = 20_000_000

FloatArray = npt.NDArray[np.float64]

PANEL_SCHEMA: dict[str, pl.DataType] = {
    "series": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "y": pl.Float64(),
}


@dataclass(frozen=True, slots=True)
class PanelReport:
    """What regularisation did: the step chosen and how many points it touched."""

    metric: str
    series: int
    samples: int
    points: int
    step_s: float
    merged: int
    filled: int

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return asdict(self)


def infer_step_s(frame: pl.DataFrame) -> float:
    """Median interval between consecutive samples of the same series, in whole seconds."""
    gaps = (
        frame.sort("workload", "ts")
        .select(pl.col("ts").diff().over("workload").dt.total_microseconds())
        .to_series()
        .drop_nulls()
    )
    gaps = gaps.filter(gaps > 0)
    if gaps.is_empty():
        return 60.0
    return max(1.0, round(float(gaps.median()) / 1e6))  # type: ignore[arg-type]


def to_panel(
    frame: pl.DataFrame,
    *,
    metric: str | None = None,
    step_s: float | None = None,
    source: str = "telemetry",
) -> tuple[pl.DataFrame, PanelReport]:
    """Canonical telemetry -> ``series, ts, y`` on a regular grid per workload.

    ``metric`` picks one metric when the frame holds several (required then).
    """
    check_telemetry(frame, source=source)
    metrics = sorted(frame["metric"].unique().to_list())
    if metric is None:
        if not metrics:
            raise InsufficientDataError(f"{source}: no samples left to forecast",
                                        hint="the ingest report says why rows were dropped")
        if len(metrics) != 1:
            raise InputError(
                f"{source}: holds metrics {', '.join(metrics)}; pick one with --metric"
            )
        metric = metrics[0]
    elif metric not in metrics:
        raise InputError(
            f"{source}: metric {metric!r} does not appear; it holds {', '.join(metrics) or 'none'}"
        )
    rows = frame.filter(pl.col("metric") == metric).sort("workload", "ts")
    if rows.is_empty():
        raise InsufficientDataError(f"{source}: no samples of {metric}")
    step = float(step_s) if step_s is not None else infer_step_s(rows)
    if step <= 0:
        raise InputError(f"{source}: step must be positive, got {step}")
    step_us = round(step * 1e6)
    parts: list[pl.DataFrame] = []
    merged = filled = points = 0
    for (workload,), group in rows.group_by(["workload"], maintain_order=True):
        t_us = group["ts"].dt.epoch("us").to_numpy().astype(np.int64)
        values = group["value"].to_numpy().astype(np.float64)
        index = np.floor((t_us - t_us[0]) / step_us + 0.5).astype(np.int64)
        n_bins = int(index[-1]) + 1
        points += n_bins
        if points > MAX_GRID_POINTS:
            raise InputError(
                f"{source}: the regular grid of {metric} would hold over "
                f"{MAX_GRID_POINTS:,} points ({workload!r} alone spans {n_bins:,} steps of "
                f"{step:g} s, {group['ts'].min()!s} to {group['ts'].max()!s})",
                hint="a timestamp far from the others (check the ts column and --ts-unit), "
                     "or pick a coarser --grid",
            )
        sums = np.bincount(index, weights=values, minlength=n_bins)
        counts = np.bincount(index, minlength=n_bins)
        have = counts > 0
        merged += int(counts[have].sum() - have.sum())
        grid = np.empty(n_bins)
        grid[have] = sums[have] / counts[have]
        if not have.all():
            positions = np.arange(n_bins)
            grid[~have] = np.interp(positions[~have], positions[have], grid[have])
            filled += int((~have).sum())
        ts = t_us[0] + np.arange(n_bins, dtype=np.int64) * step_us
        parts.append(
            pl.DataFrame(
                {
                    "series": np.full(n_bins, str(workload), dtype=object),
                    "ts": pl.Series(ts).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
                    "y": grid,
                },
                schema=PANEL_SCHEMA,
            )
        )
    panel = pl.concat(parts)
    report = PanelReport(
        metric=metric,
        series=len(parts),
        samples=rows.height,
        points=panel.height,
        step_s=step,
        merged=merged,
        filled=filled,
    )
    return panel, report


def check_panel(panel: pl.DataFrame, *, source: str = "panel") -> None:
    """Fail with one line when ``panel`` is not ``series, ts, y`` with finite values."""
    for name, dtype in PANEL_SCHEMA.items():
        if name not in panel.columns:
            raise InputError(f"{source}: missing column {name!r}")
        if name != "ts" and panel.schema[name] != dtype:
            raise InputError(f"{source}: column {name!r} must be {dtype}, got {panel.schema[name]}")
    if not panel.schema["ts"].is_temporal():
        raise InputError(f"{source}: column 'ts' must be a datetime, got {panel.schema['ts']}")
    if panel.is_empty():
        raise InsufficientDataError(f"{source}: no rows")
    bad = panel.filter(~pl.col("y").is_finite() | pl.col("y").is_null())
    if not bad.is_empty():
        row = bad.row(0, named=True)
        raise InputError(f"{source}: y is {row['y']} for series {row['series']!r} at {row['ts']}")


def series_arrays(panel: pl.DataFrame) -> dict[str, FloatArray]:
    """Each series' values in time order, keyed by series id (in first-seen order)."""
    out: dict[str, FloatArray] = {}
    for (name,), group in panel.sort("series", "ts", maintain_order=True).group_by(
        ["series"], maintain_order=True
    ):
        out[str(name)] = group["y"].to_numpy().astype(np.float64)
    return out


def check_horizon_fits(panel: pl.DataFrame, h: int, step_s: float, *, text: str,
                       force: bool = False, typed: bool = True) -> None:
    """Refuse a horizon longer than the longest history, unless ``force``.

    Why: nothing in a series says what happens beyond its own length, and the cost
    grows with the horizon: 400 days ahead of 2 days of one-minute samples is 576,000
    steps per series, minutes and gigabytes spent on a flat line. Such a request is
    nearly always a typo (``400d`` for ``40h``), so it is a usage error that names the
    history; ``--force`` runs it anyway. A horizon the user did not type (the default)
    that the history cannot hold says the data is too short instead (exit 4).
    """
    if force or panel.is_empty():
        return
    history = max(panel.group_by("series").len()["len"].to_list())
    if h > history and not typed:
        raise InsufficientDataError(
            f"the history ({human_duration(history * step_s)}, {history:,} steps in the "
            f"longest series) is shorter than the default --horizon {text}",
            hint="give a shorter --horizon, or pass --force",
        )
    if h > history:
        raise horizon_too_long(text, h, step_s, history)


def horizon_too_long(text: str, h: int, step_s: float, history: int, *,
                     longest: str = "series") -> UsageError:
    """The usage error of a ``--horizon`` of ``h`` steps past a ``history``-step history."""
    return UsageError(
        f"--horizon {text} is {h:,} steps of {human_duration(step_s)}, longer than the "
        f"history ({human_duration(history * step_s)}, {history:,} steps in the longest "
        f"{longest})",
        hint="ask for a shorter --horizon, or pass --force to forecast that far anyway",
    )
