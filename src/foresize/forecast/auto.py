"""``auto``: per series, the candidate with the lowest backtest MASE.

No single model wins on every series of a fleet (a flat memory series wants naive, a
noisy duty cycle an average, a busy service the hybrid), so ``Auto`` backtests each
candidate on the history it is given (the same rolling-origin protocol as
``forecast backtest``), keeps per series the one with the lowest mean absolute error
(MASE with the series' own scale, so the ranking is the same), and forecasts each
series with its winner refit on the whole history. Series too short to backtest keep
the first candidate. The choice is in ``choice_`` and in the ``model`` column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import polars as pl

from foresize.core.errors import InputError, InsufficientDataError, NotFittedError
from foresize.forecast.backtest import backtest
from foresize.forecast.panel import check_panel
from foresize.forecast.protocol import (
    DEFAULT_LEVELS,
    Forecaster,
    check_horizon,
    check_levels,
)
from foresize.forecast.registry import SINGLE_MODELS

DEFAULT_CANDIDATES = ("naive", "window_average", "arima", "wavelet", "hybrid")


class Auto:
    """Pick the best candidate per series by backtest, then forecast with it."""

    name = "auto"

    def __init__(
        self,
        candidates: Sequence[str] | None = None,
        *,
        horizon: int = 30,
        test_frac: float = 0.3,
    ) -> None:
        self.candidates = candidates
        self.horizon = horizon
        self.test_frac = test_frac

    def _names(self) -> list[str]:
        names = list(self.candidates or [c for c in DEFAULT_CANDIDATES if c in SINGLE_MODELS])
        if not names:
            raise InputError("auto: needs at least one candidate model")
        if "auto" in names:
            raise InputError("auto: cannot be its own candidate")
        for name in names:
            SINGLE_MODELS.get(name)  # unknown names fail here, with suggestions
        return names

    def fit(self, panel: pl.DataFrame) -> Self:
        """Backtest every candidate on ``panel`` and refit each series' winner on all of it."""
        check_panel(panel, source="auto fit")
        names = self._names()
        errors: list[pl.DataFrame] = []
        for name in names:
            try:
                result = backtest(
                    panel,
                    SINGLE_MODELS.get(name)(),
                    horizon=self.horizon,
                    every=self.horizon,
                    test_frac=self.test_frac,
                )
            except InsufficientDataError:
                continue
            errors.append(
                result.points.group_by("series").agg(
                    mae=(pl.col("y") - pl.col("mean")).abs().mean(), model=pl.lit(name)
                )
            )
        series = panel["series"].unique(maintain_order=True)
        choice = {str(s): names[0] for s in series}
        if errors:
            best = pl.concat(errors).sort("mae", "model").group_by("series").first()
            choice.update(dict(best.select("series", "model").iter_rows()))
        self.choice_ = choice
        self.fitted_: dict[str, Forecaster] = {}
        for name in sorted(set(choice.values())):
            subset = panel.filter(
                pl.col("series").is_in([s for s, m in choice.items() if m == name])
            )
            self.fitted_[name] = SINGLE_MODELS.get(name)().fit(subset)
        return self

    def predict(self, h: int, levels: Sequence[int] = DEFAULT_LEVELS) -> pl.DataFrame:
        """Each series' winner's forecast, its name prefixed ``auto:`` in ``model``."""
        if not hasattr(self, "fitted_"):
            raise NotFittedError("auto: call fit() before predict()")
        h = check_horizon(h)
        levels = check_levels(levels)
        parts = [model.predict(h, levels) for model in self.fitted_.values()]
        return (
            pl.concat(parts, how="diagonal_relaxed")
            .with_columns(model=pl.lit("auto:") + pl.col("model"))
            .sort("series", "step")
        )
