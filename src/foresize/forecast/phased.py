"""Per-phase forecasts: for each future step, the phase to expect and the demand within it.

The recommender sizes per phase, so it needs more than a demand path: which phase
the workload will be in and what each phase asks for. History is labelled by the
shared detector (``profile.phases.detect_phases``); the one-step transition matrix
of the labels (``phase_transitions``) is a Markov chain whose k-step distribution,
started from the current phase, gives each future step's phase probabilities. The
demand within a phase is the phase's empirical distribution over the history
(P50/P95/P99 from ``phase_summary``), and the mixture P95 weighs the phases by
their probability at that step (a quantile of the mixture, found by bisection).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from foresize.forecast.panel import check_panel
from foresize.forecast.protocol import check_horizon, series_steps
from foresize.profile.phases import detect_phases, phase_summary, phase_transitions

PHASE_COLUMNS = ("phase", "phase_prob", "phase_p50", "phase_p95", "phase_p99", "mixture_p95")


def panel_to_telemetry(panel: pl.DataFrame, metric: str) -> pl.DataFrame:
    """A panel back in canonical telemetry form, for the profile-layer tools."""
    return panel.select(
        pl.col("series").alias("workload"),
        pl.lit(metric).alias("metric"),
        "ts",
        pl.col("y").alias("value"),
    )


def _mixture_quantile(
    probs: np.ndarray, samples: list[np.ndarray], q: float, lo: float, hi: float
) -> float:
    """The q quantile of a mixture of empirical distributions, by bisection on the CDF."""
    sorted_samples = [np.sort(s) for s in samples]

    def cdf(x: float) -> float:
        return float(
            sum(
                p * np.searchsorted(s, x, side="right") / s.size
                for p, s in zip(probs, sorted_samples, strict=True)
                if s.size
            )
        )

    for _ in range(50):
        mid = (lo + hi) / 2
        if cdf(mid) >= q:
            hi = mid
        else:
            lo = mid
    return hi


def phase_forecast(panel: pl.DataFrame, h: int, *, metric: str, min_dwell: int = 3) -> pl.DataFrame:
    """``series, ts, step`` plus ``PHASE_COLUMNS`` for ``h`` steps after each series' end."""
    check_panel(panel, source="phase forecast")
    h = check_horizon(h)
    telemetry = panel_to_telemetry(panel, metric)
    labeled = detect_phases(telemetry, min_dwell=min_dwell)
    summary = phase_summary(labeled)
    transitions = phase_transitions(labeled)
    steps = series_steps(panel)
    rows: list[dict[str, object]] = []
    for (name,), history in labeled.sort("workload", "ts").group_by(
        ["workload"], maintain_order=True
    ):
        phases = summary.filter(pl.col("workload") == name)
        names = phases["phase"].to_list()
        index = {p: i for i, p in enumerate(names)}
        matrix = np.eye(len(names))
        moves = transitions.filter(pl.col("workload") == name)
        if not moves.is_empty():
            matrix = np.zeros((len(names), len(names)))
            for a, b, p in moves.select("phase", "next_phase", "p").iter_rows():
                matrix[index[a], index[b]] = p
            stuck = matrix.sum(axis=1) == 0  # a phase only seen last: assume it holds
            matrix[stuck, stuck] = 1.0
        values = history["value"].to_numpy()
        labels = history["phase"].to_numpy()
        samples = [values[labels == p] for p in names]
        lo, hi = float(values.min()), float(values.max())
        state = np.zeros(len(names))
        state[index[str(labels[-1])]] = 1.0
        last, step_us = steps[str(name)]
        stats = {row["phase"]: row for row in phases.iter_rows(named=True)}
        for k in range(1, h + 1):
            state = state @ matrix
            best = int(np.argmax(state))
            phase = names[best]
            rows.append(
                {
                    "series": str(name),
                    "ts": last + k * step_us,
                    "step": k,
                    "phase": phase,
                    "phase_prob": float(state[best]),
                    "phase_p50": stats[phase]["p50"],
                    "phase_p95": stats[phase]["p95"],
                    "phase_p99": stats[phase]["p99"],
                    "mixture_p95": _mixture_quantile(state, samples, 0.95, lo, hi),
                }
            )
    frame = pl.DataFrame(rows)
    return frame.with_columns(
        pl.col("ts").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        pl.col("step").cast(pl.Int64),
    )
