"""Vertical scaling by phase: resize a replica's memory (or GPU share) as its phase changes.

A workload's resource use moves between phases (``profile.phases.detect_phases``:
idle, one to three active regimes, spikes). A fixed request must cover the highest
phase; a per-phase request covers each phase on its own and is resized (a VPA
in-place resize) when the phase changes. This measures what that saves, per series:

* **Learn** on the first ``train_frac`` (70 %) of the series: each phase's size is its
  ``1 - risk`` quantile there; the fixed size is the ``1 - risk`` quantile of the whole
  training part. Spikes are shorter than a phase (``min_dwell``) and cannot be followed
  by a resize, so a spike sample belongs to the phase it interrupts. A phase never seen
  in training gets the fixed size.
* **Apply** on the rest: the size at step ``t`` is the size of the phase at step
  ``t - resize_delay`` (a phase change takes ``resize_delay`` steps to apply, and in
  the meantime the old size stays).
* **Score** each strategy (``fixed``, ``per_phase``, and the per-step ``oracle`` whose
  size is the use itself) on the applied part: reserved resource-hours (the metric's
  unit x hours, e.g. %-of-limit-hours for ``mem_util_pct``), the share of steps
  under-sized (use above the size), the shortfall (use above the size, as a share of
  all use) and the overshoot (reserved beyond use, as a share of use).

**From a plan** (``--plan``): instead of learning, replay the recommender's sizes
(``foresize recommend``: each workload's request and its per-phase schedule,
:func:`plan_sizes`) over the whole of later telemetry, with the same resize delay and
scores (:func:`replay_series`).

Phase labels come from the whole series (``detect_phases`` looks a few samples
around each one), so the timing of a phase change is known in hindsight; the resize
delay is where detection lag belongs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from foresize.core.errors import InputError, InsufficientDataError, UsageError
from foresize.profile.phases import SPIKE, detect_phases
from foresize.recommend.plan import ResourceRecommendation, read_plan
from foresize.simulate.replicas.service import FloatArray

STRATEGIES = ("fixed", "per_phase", "oracle")
MIN_TRAIN = 20  # fewest training samples of a series worth sizing
MIN_TEST = 10  # fewest applied samples


@dataclass(frozen=True, slots=True)
class VerticalConfig:
    """How per-phase sizes are learned and applied."""

    risk: float = 0.05
    train_frac: float = 0.7
    resize_delay: int = 2
    min_dwell: int = 3

    def __post_init__(self) -> None:
        if not (math.isfinite(self.risk) and 0 < self.risk <= 0.5):
            raise UsageError(
                f"--risk must be in (0, 0.5] (the share of time a size may be exceeded), "
                f"got {self.risk!r}"
            )
        if not (math.isfinite(self.train_frac) and 0 < self.train_frac < 1):
            raise InputError(f"train fraction must be in (0, 1), got {self.train_frac!r}")
        if self.resize_delay < 0:
            raise UsageError(f"--resize-delay must be >= 0 steps, got {self.resize_delay}")
        if self.min_dwell < 1:
            raise UsageError(f"--min-dwell must be >= 1 sample, got {self.min_dwell}")


@dataclass(frozen=True, slots=True)
class SeriesSizing:
    """One series: the learned sizes, the applied per-phase size, and each strategy's score."""

    workload: str
    phase_sizes: dict[str, float]
    fixed_size: float
    applied: FloatArray  # the per-phase size on the applied part
    scores: dict[str, dict[str, float]]
    n_phases: int
    resizes: int


def merge_spikes(phases: npt.NDArray[np.str_] | list[str]) -> list[str]:
    """Spike samples take the phase they interrupt (the one before; at the start, after)."""
    labels = list(phases)
    last: str | None = None
    for i, label in enumerate(labels):
        if label == SPIKE:
            if last is not None:
                labels[i] = last
        else:
            last = label
    first = next((label for label in labels if label != SPIKE), None)
    if first is not None:
        labels = [first if label == SPIKE else label for label in labels]
    return labels


def score_sizes(use: FloatArray, size: FloatArray, step_s: float) -> dict[str, float]:
    """Reserved and used resource-hours, under-sized share, shortfall and overshoot."""
    hours = step_s / 3600.0
    used = float(use.sum())
    reserved = float(size.sum())
    short = np.maximum(use - size, 0.0)
    tolerance = 1e-9 * max(1.0, float(np.abs(use).max()) if use.size else 1.0)
    return {
        "reserved_h": reserved * hours,
        "used_h": used * hours,
        "under_frac": float((use > size + tolerance).mean()) if use.size else 0.0,
        "shortfall": float(short.sum()) / used if used > 0 else 0.0,
        "overshoot": (reserved - used) / used if used > 0 else math.nan,
    }


def size_series(
    values: FloatArray,
    phases: list[str],
    config: VerticalConfig,
    *,
    step_s: float,
    workload: str = "",
) -> SeriesSizing:
    """Learn per-phase and fixed sizes on the head of one series, apply and score on the tail."""
    n = values.size
    if len(phases) != n:
        raise InputError(f"{workload or 'series'}: {n} values but {len(phases)} phase labels")
    split = round(config.train_frac * n)
    if split < MIN_TRAIN or n - split < MIN_TEST:
        raise InsufficientDataError(
            f"{workload or 'series'}: {n} samples is too short to learn on "
            f"{config.train_frac:.0%} (>= {MIN_TRAIN}) and apply on the rest (>= {MIN_TEST})"
        )
    labels = np.asarray(merge_spikes(phases))
    level = 1.0 - config.risk
    train, train_labels = values[:split], labels[:split]
    fixed = float(np.quantile(train, level))
    sizes = {
        str(p): float(np.quantile(train[train_labels == p], level)) for p in np.unique(train_labels)
    }
    lagged = labels[split - config.resize_delay : n - config.resize_delay]
    applied = np.asarray([sizes.get(str(p), fixed) for p in lagged], dtype=np.float64)
    use = values[split:]
    scores = {
        "fixed": score_sizes(use, np.full(use.size, fixed), step_s),
        "per_phase": score_sizes(use, applied, step_s),
        "oracle": score_sizes(use, use, step_s),
    }
    return SeriesSizing(
        workload,
        sizes,
        fixed,
        applied,
        scores,
        int(np.unique(labels).size),
        int((np.diff(applied) != 0).sum()),
    )


@dataclass(frozen=True, slots=True)
class PlannedSizes:
    """A workload's sizes from a recommender plan: the overall request and per phase."""

    fixed: float
    phases: dict[str, float]


def plan_sizes(
    recommendations: Iterable[ResourceRecommendation], metric: str
) -> dict[str, PlannedSizes]:
    """Per workload, a plan's request for ``metric`` and its per-phase schedule.

    A recommendation without a request (no data, or a resource it only limits) is left
    out; one without a phase schedule (its phases' levels do not differ) resizes never.
    """
    out: dict[str, PlannedSizes] = {}
    for rec in recommendations:
        if rec.resource != metric or rec.recommended.request is None:
            continue
        phases = {p.phase: p.request for p in rec.phases}
        out[rec.workload] = PlannedSizes(rec.recommended.request, phases)
    return out


def read_planned_sizes(path: Path, metric: str) -> dict[str, PlannedSizes]:
    """The sizes a plan file gives ``metric``; a plan for another resource is an input error."""
    recommendations = read_plan(path).recommendations
    sizes = plan_sizes(recommendations, metric)
    if not sizes:
        resources = sorted({r.resource for r in recommendations}) or ["nothing"]
        raise InputError(
            f"{path}: the plan sizes {', '.join(resources)}, not {metric}",
            hint="pass the plan made from this metric's earlier telemetry",
        )
    return sizes


def replay_series(
    values: FloatArray,
    phases: list[str],
    sizes: PlannedSizes,
    config: VerticalConfig,
    *,
    step_s: float,
    workload: str = "",
) -> SeriesSizing:
    """Apply a plan's sizes over the whole series (nothing learned) and score them.

    The size at step ``t`` is the planned size of the phase at ``t - resize_delay``; the
    first steps keep the first phase's size. A phase the plan has no size for gets the
    overall request, as the plan's own fallback.
    """
    n = values.size
    if len(phases) != n:
        raise InputError(f"{workload or 'series'}: {n} values but {len(phases)} phase labels")
    if n < MIN_TEST:
        raise InsufficientDataError(f"{workload or 'series'}: {n} samples (>= {MIN_TEST} needed)")
    labels = merge_spikes(phases)
    delay = min(config.resize_delay, n)
    lagged = [labels[0]] * delay + labels[: n - delay]
    applied = np.asarray([sizes.phases.get(p, sizes.fixed) for p in lagged], dtype=np.float64)
    scores = {
        "fixed": score_sizes(values, np.full(n, sizes.fixed), step_s),
        "per_phase": score_sizes(values, applied, step_s),
        "oracle": score_sizes(values, values, step_s),
    }
    return SeriesSizing(
        workload,
        dict(sizes.phases),
        sizes.fixed,
        applied,
        scores,
        int(np.unique(labels).size),
        int((np.diff(applied) != 0).sum()),
    )


def _pick_metric(frame: pl.DataFrame, metric: str | None) -> str:
    present = sorted(frame["metric"].unique().to_list())
    if metric is None:
        if len(present) != 1:
            raise InputError(
                f"the source holds metrics {', '.join(present)}; pick one with --metric"
            )
        return str(present[0])
    if metric not in present:
        raise InputError(
            f"--metric {metric!r} is not in the source; it holds {', '.join(present) or 'none'}"
        )
    return metric


def vertical_sizing(
    telemetry: pl.DataFrame,
    *,
    metric: str | None = None,
    config: VerticalConfig | None = None,
    workloads: list[str] | None = None,
    plan: Mapping[str, PlannedSizes] | None = None,
) -> tuple[pl.DataFrame, list[SeriesSizing]]:
    """Size every workload of one metric by phase; one row per workload, and the details.

    With ``plan`` (:func:`plan_sizes`), the plan's sizes are replayed over the whole of
    each planned workload's series instead of being learned on its head; workloads the
    plan does not size are left out, and none in common is an ``InputError``.
    Series too short to learn and apply are left out; none left is an
    ``InsufficientDataError``. Rows: ``workload``, ``n_phases``, ``resizes``, and per
    strategy ``reserved_h_*``, ``under_frac_*``, ``shortfall_*``, ``overshoot_*``, plus
    ``per_phase_vs_fixed`` (reserved resource-hours per phase / fixed).
    """
    config = config or VerticalConfig()
    chosen = _pick_metric(telemetry, metric)
    frame = telemetry.filter(pl.col("metric") == chosen)
    if workloads is not None:
        missing = sorted(set(workloads) - set(frame["workload"].unique().to_list()))
        if missing:
            raise InputError(f"--workload {missing[0]!r} has no {chosen} samples in the source")
        frame = frame.filter(pl.col("workload").is_in(workloads))
    if plan is not None:
        frame = frame.filter(pl.col("workload").is_in(list(plan)))
        if frame.is_empty():
            raise InputError(
                f"the plan sizes {chosen} for no workload of the source "
                f"(it sizes {len(plan)} workload(s) for {chosen})",
                hint="pass the plan made from this metric's earlier telemetry",
            )
    labelled = detect_phases(frame, min_dwell=config.min_dwell).sort("workload", "ts")
    results: list[SeriesSizing] = []
    for (name,), part in labelled.group_by(["workload"], maintain_order=True):
        values = part["value"].to_numpy().astype(np.float64)
        ts = part["ts"].dt.epoch("us").to_numpy()
        step_s = float(np.median(np.diff(ts))) / 1e6 if ts.size > 1 else 60.0
        labels = part["phase"].to_list()
        try:
            results.append(
                size_series(values, labels, config, step_s=step_s, workload=str(name))
                if plan is None
                else replay_series(
                    values, labels, plan[str(name)], config, step_s=step_s, workload=str(name)
                )
            )
        except InsufficientDataError:
            continue
    if not results:
        raise InsufficientDataError(
            f"no {chosen} series is long enough to size by phase (it takes >= "
            f"{MIN_TRAIN} samples to learn on and >= {MIN_TEST} to apply on)"
        )
    return pl.DataFrame([_row(r) for r in results]), results


def _row(result: SeriesSizing) -> dict[str, Any]:
    row: dict[str, Any] = {
        "workload": result.workload,
        "n_phases": result.n_phases,
        "resizes": result.resizes,
        "steps": result.applied.size,
    }
    for strategy in STRATEGIES:
        for key, value in result.scores[strategy].items():
            if key != "used_h":
                row[f"{key}_{strategy}"] = value
    row["used_h"] = result.scores["oracle"]["used_h"]
    fixed = result.scores["fixed"]["reserved_h"]
    row["per_phase_vs_fixed"] = (
        result.scores["per_phase"]["reserved_h"] / fixed if fixed > 0 else math.nan
    )
    return row


def totals(rows: pl.DataFrame) -> dict[str, float]:
    """Reserved resource-hours summed over workloads, and step-weighted under-sized shares."""
    out: dict[str, float] = {"workloads": float(rows.height)}
    for strategy in STRATEGIES:
        out[f"reserved_h_{strategy}"] = float(rows[f"reserved_h_{strategy}"].sum())
        weight = rows["steps"].to_numpy().astype(np.float64)
        share = rows[f"under_frac_{strategy}"].to_numpy().astype(np.float64)
        out[f"under_frac_{strategy}"] = float(share @ weight / weight.sum())
    fixed = out["reserved_h_fixed"]
    out["per_phase_vs_fixed"] = out["reserved_h_per_phase"] / fixed if fixed > 0 else math.nan
    return out
