"""Per-phase forecasts: Markov phase probabilities and within-phase demand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from foresize.forecast.phased import phase_forecast


def _panel(values: list[float]) -> pl.DataFrame:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "series": ["s"] * len(values),
            "ts": [base + timedelta(minutes=i) for i in range(len(values))],
            "y": values,
        },
        schema={"series": pl.String, "ts": pl.Datetime("us", "UTC"), "y": pl.Float64},
    )


def test_alternating_idle_busy_known_chain() -> None:
    # 20 idle, 20 busy, repeated: each phase stays with p = 19/20 per step
    values = ([0.0] * 20 + [80.0] * 20) * 5
    out = phase_forecast(_panel(values), 3, metric="gpu_util_pct")
    assert out["phase"].to_list() == ["busy"] * 3
    assert out["phase_prob"][0] == pytest.approx(19 / 20, abs=0.01)
    assert out["phase_p95"].to_list() == [80.0] * 3
    # the mixture quantile sits at busy's level while busy stays the likely phase
    assert out["mixture_p95"][0] == pytest.approx(80.0, abs=0.5)


def test_real_panel_one_row_per_series_and_step(gpu_subset: pl.DataFrame) -> None:
    out = phase_forecast(gpu_subset, 5, metric="gpu_util_pct")
    assert out.height == 5 * gpu_subset["series"].n_unique()
    assert set(out["phase"].unique()) <= {"idle", "busy", "low", "mid", "high", "spike"}
    assert out.filter(
        (pl.col("phase_prob") <= 0) | (pl.col("phase_prob") > 1 + 1e-9)
        | (pl.col("phase_p50") > pl.col("phase_p95"))
    ).is_empty()  # fmt: skip
