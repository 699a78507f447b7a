"""The constructed step-like forecast panel is the right-sizing step fleet, as a panel."""

from __future__ import annotations

import numpy as np
import polars as pl

from foresize.evaluate.panels import SEASONS, load_panel
from foresize.evaluate.rightsize_panels import step_fleet
from foresize.forecast.panel import check_panel


def test_steps_panel_is_the_step_fleet_on_a_minute_grid() -> None:
    panel = load_panel("steps")
    check_panel(panel)  # a valid forecast panel: sorted, unique, finite
    fleet = step_fleet(seed=0)
    assert panel["series"].n_unique() == len(fleet) == 400
    first = next(iter(fleet.values()))
    one = panel.filter(pl.col("series") == first.workload)
    assert np.array_equal(one["y"].to_numpy(), first.values)
    steps = one["ts"].diff().drop_nulls().dt.total_seconds().unique().to_list()
    assert steps == [60]
    assert SEASONS["steps"] == 60
