"""The constructed step-like forecast panel is the right-sizing step fleet, as a panel."""

from __future__ import annotations

import numpy as np
import polars as pl

from foresize.evaluate.panels import SEASONS, load_panel
from foresize.evaluate.rightsize_panels import STEP_NOISE, STEP_RATES, step_fleet, step_truth
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


def test_step_truth_is_the_fleet_without_its_noise() -> None:
    """The levels behind the samples: within 5 sd of the 0.1 % noise everywhere, flat for
    a workload whose rate is 0, and changing as often as the rates say over the fleet
    (a Poisson count: within 4 sd of the rates' sum).
    """
    fleet, truth = step_fleet(n=60, seed=3), step_truth(n=60, seed=3)
    assert truth.keys() == fleet.keys()
    total, expected = 0, 0.0
    for name, (rate, levels) in truth.items():
        assert rate in STEP_RATES
        assert np.abs(fleet[name].values / levels - 1).max() < 5 * STEP_NOISE
        changes = np.count_nonzero(np.diff(levels))
        if rate == 0:
            assert changes == 0
        total, expected = total + changes, expected + rate
    assert expected > 0
    assert abs(total - expected) < 4 * np.sqrt(expected)
