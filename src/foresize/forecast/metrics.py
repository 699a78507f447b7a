"""Forecast accuracy: MASE, WAPE, pinball loss and interval coverage on backtest points.

Conventions (the ones the forecasting literature and Nixtla's utilsforecast use):

- **MASE** per series = MAE of the forecast / ``scale``, where ``scale`` is the
  in-sample MAE of the one-step naive forecast on the series' training part; the
  panel's MASE is the mean over series. Series whose training part is constant
  (scale 0) have no MASE and are counted in ``no_scale``.
- **WAPE** = sum |y - mean| / sum |y| over every point of the panel;
  ``accuracy`` = 1 - WAPE.
- **Pinball** loss at q = mean of max(q (y - f), (q - 1)(y - f)) where f is the q
  quantile: ``hi_80`` for q = 0.9 and ``hi_90`` for q = 0.95. The panel's value is
  the mean over series of the loss divided by the series' scale, so spiky and calm
  series weigh alike (and the number reads like a MASE).
- **Coverage** of the L % interval = share of points with lo_L <= y <= hi_L.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

HORIZON_BUCKETS: tuple[tuple[int, int], ...] = ((1, 5), (6, 15), (16, 30))
PINBALL: dict[str, tuple[float, str]] = {
    "pinball_90": (0.9, "hi_80"),
    "pinball_95": (0.95, "hi_90"),
}


def naive_scale(y: np.ndarray) -> float:
    """In-sample MAE of the one-step naive forecast: the MASE denominator."""
    if y.size < 2:
        return 0.0
    return float(np.mean(np.abs(np.diff(y))))


def pinball(y: pl.Expr, quantile: pl.Expr, q: float) -> pl.Expr:
    """Pinball (quantile) loss of ``quantile`` as the q-quantile forecast of ``y``."""
    diff = y - quantile
    return pl.max_horizontal(diff * q, diff * (q - 1))


def score_points(
    points: pl.DataFrame, scales: Mapping[str, float], levels: Sequence[int] = (80, 90, 95)
) -> dict[str, float]:
    """Panel metrics of backtest ``points`` (columns series, step, y, mean, lo_L/hi_L)."""
    frame = _with_scales(points, scales)
    out: dict[str, float] = {"points": float(frame.height)}
    total = float(frame["y"].abs().sum())
    wape = float(frame["abs_err"].sum()) / total if total > 0 else float("nan")
    out["wape"] = wape
    out["accuracy"] = 1.0 - wape
    scaled = frame.filter(pl.col("scale") > 0)
    per_series = _series_scores(scaled)
    out["mase"] = float(per_series["mase"].mean()) if per_series.height else float("nan")  # type: ignore[arg-type]
    for name, (_, column) in PINBALL.items():
        if column in frame.columns and per_series.height:
            out[name] = float(per_series[name].mean())  # type: ignore[arg-type]
    out["no_scale"] = float(frame.filter(~(pl.col("scale") > 0))["series"].n_unique())
    for level in levels:
        lo, hi = f"lo_{level}", f"hi_{level}"
        if lo in frame.columns and hi in frame.columns:
            inside = (pl.col("y") >= pl.col(lo)) & (pl.col("y") <= pl.col(hi))
            out[f"coverage_{level}"] = float(frame.select(inside.mean()).item())
    for first, last in HORIZON_BUCKETS:
        bucket = scaled.filter(pl.col("step").is_between(first, last))
        if bucket.height:
            by_series = bucket.group_by("series").agg(
                mase=pl.col("abs_err").mean() / pl.col("scale").first()
            )
            out[f"mase_h{first}_{last}"] = float(by_series["mase"].mean())  # type: ignore[arg-type]
    return out


def series_scores(points: pl.DataFrame, scales: Mapping[str, float]) -> pl.DataFrame:
    """Per series with a positive scale: its MASE and pinball losses (the panel's
    ``mase`` and ``pinball_*`` of ``score_points`` are their means), for resampling the
    panel by series.
    """
    frame = _with_scales(points, scales)
    return _series_scores(frame.filter(pl.col("scale") > 0)).sort("series")


def _with_scales(points: pl.DataFrame, scales: Mapping[str, float]) -> pl.DataFrame:
    """``points`` with each series' MASE ``scale`` and the absolute error of its mean."""
    scale_frame = pl.DataFrame(
        {"series": list(scales), "scale": [float(v) for v in scales.values()]},
        schema={"series": pl.String, "scale": pl.Float64},
    )
    return points.join(scale_frame, on="series", how="left").with_columns(
        abs_err=(pl.col("y") - pl.col("mean")).abs()
    )


def _series_scores(scaled: pl.DataFrame) -> pl.DataFrame:
    """MASE and pinball per series of points joined to their positive ``scale``."""
    return scaled.group_by("series").agg(
        mase=pl.col("abs_err").mean() / pl.col("scale").first(),
        **{
            name: pinball(pl.col("y"), pl.col(column), q).mean() / pl.col("scale").first()
            for name, (q, column) in PINBALL.items()
            if column in scaled.columns
        },
    )
