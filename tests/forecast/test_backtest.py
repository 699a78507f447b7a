"""The rolling-origin protocol and its metrics, on known answers and the real panel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from foresize.core.errors import InsufficientDataError
from foresize.forecast.backtest import backtest, compare, first_origins
from foresize.forecast.baselines import Naive, WindowAverage
from foresize.forecast.metrics import naive_scale, score_points, series_scores


def _panel(series: dict[str, list[float]]) -> pl.DataFrame:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        (name, base + timedelta(minutes=i), float(v))
        for name, values in series.items()
        for i, v in enumerate(values)
    ]
    return pl.DataFrame(
        rows,
        schema={"series": pl.String, "ts": pl.Datetime("us", "UTC"), "y": pl.Float64},
        orient="row",
    )


def test_origins_cover_the_last_30_percent() -> None:
    assert first_origins({"a": 100, "b": 11}, 0.3) == {"a": 70, "b": 7}


def test_naive_on_a_line_has_mase_one_per_step() -> None:
    # y = t: the in-sample naive MAE is 1, a naive h-step forecast errs by h
    panel = _panel({"line": list(range(100))})
    result = backtest(panel, Naive(), horizon=5, every=5)
    assert result.origins == 6
    assert result.points.height == 30
    assert result.points["step"].to_list() == [1, 2, 3, 4, 5] * 6
    metrics = result.metrics
    assert metrics["mase"] == pytest.approx(3.0)  # mean of 1..5
    # the intervals of a deterministic line are exact: every point is covered
    assert metrics["coverage_80"] == metrics["coverage_95"] == 1.0


def test_horizon_is_cut_at_the_series_end_and_refit_sees_only_history() -> None:
    seen: list[int] = []

    class Spy(Naive):
        def fit(self, panel: pl.DataFrame) -> Spy:
            seen.append(panel.height)
            return super().fit(panel)

    result = backtest(_panel({"a": list(range(40))}), Spy(), horizon=30, every=5)
    assert seen == [28, 33, 38]
    assert result.points.group_by("origin").len().sort("origin")["len"].to_list() == [12, 7, 2]


def test_score_points_known_pinball_and_coverage() -> None:
    points = pl.DataFrame(
        {
            "series": ["a", "a"],
            "step": [1, 2],
            "y": [10.0, 0.0],
            "mean": [8.0, 2.0],
            "lo_80": [7.0, 1.0],
            "hi_80": [9.0, 3.0],
            "lo_90": [6.0, 0.5],
            "hi_90": [12.0, 4.0],
        }
    )
    metrics = score_points(points, {"a": 2.0}, (80, 90))
    assert metrics["mase"] == pytest.approx(1.0)  # MAE 2 / scale 2
    assert metrics["wape"] == pytest.approx(0.4)
    # q=0.9 on hi_80: y above by 1 -> 0.9; y below by 3 -> 0.3; mean 0.6, / scale 2
    assert metrics["pinball_90"] == pytest.approx(0.3)
    assert metrics["coverage_80"] == 0.0
    assert metrics["coverage_90"] == 0.5


def test_series_scores_are_what_the_panel_metrics_average() -> None:
    """Two series on different scales, one without a scale: per series, MASE and pinball
    in its own units; their means are the panel's metrics, the unscaled one left out.
    """
    points = pl.DataFrame(
        {
            "series": ["a", "a", "b", "b", "c"],
            "step": [1, 2, 1, 2, 1],
            "y": [10.0, 0.0, 100.0, 100.0, 5.0],
            "mean": [8.0, 2.0, 90.0, 110.0, 5.0],
            "hi_90": [12.0, 4.0, 100.0, 120.0, 6.0],
        }
    )
    scales = {"a": 2.0, "b": 10.0, "c": 0.0}
    per_series = series_scores(points, scales)
    assert per_series["series"].to_list() == ["a", "b"]
    assert per_series["mase"].to_list() == pytest.approx([1.0, 1.0])
    # q=0.95 on hi_90: a: below by 2 and 4 -> 0.1, 0.2; b: 0 and below by 20 -> 1.0
    assert per_series["pinball_95"].to_list() == pytest.approx([0.075, 0.05])
    panel = score_points(points, scales, ())
    assert panel["mase"] == pytest.approx(float(per_series["mase"].mean()))
    assert panel["pinball_95"] == pytest.approx(float(per_series["pinball_95"].mean()))


def test_constant_training_part_has_no_scale() -> None:
    assert naive_scale(np.array([4.0, 4.0, 4.0])) == 0.0
    result = backtest(_panel({"flat": [4.0] * 25 + [5.0] * 5, "line": list(range(30))}), Naive())
    assert result.metrics["no_scale"] == 1.0


def test_too_short_everywhere_is_insufficient_data() -> None:
    with pytest.raises(InsufficientDataError, match="training points"):
        backtest(_panel({"a": [1.0, 2.0, 3.0]}), Naive())


def test_real_panel_window_average_beats_naive_at_long_horizons(gpu_panel: pl.DataFrame) -> None:
    # GenTD26 duty cycles are noisy around their level: averaging helps beyond a few steps
    naive = backtest(gpu_panel, Naive())
    window = backtest(gpu_panel, WindowAverage(window=30))
    assert naive.series == window.series == 136  # 7 containers are too short to backtest
    assert naive.skipped == {"too_short": 7}
    assert window.metrics["mase_h16_30"] < naive.metrics["mase_h16_30"]
    table = compare([naive, window])
    assert table["model"].to_list()[0] == "window_average"
