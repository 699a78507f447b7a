"""The guard: decided before the origin, naive unless clearly beaten, conformal per step."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from foresize.forecast.auto import Auto
from foresize.forecast.backtest import backtest, first_origins
from foresize.forecast.baselines import naive_forecast
from foresize.forecast.conformal import fleet_scale, step_offsets
from foresize.forecast.guard import choose, naive_paths, paired_noise, validation_origins
from foresize.forecast.hybrid import Hybrid
from foresize.forecast.protocol import Forecaster

FAST = {"n_estimators": 40, "refit_estimators": 10, "max_rows": 8_000}
VALUES = ["mean", "lo_80", "hi_80", "lo_95", "hi_95"]


def synthetic(name: str, values: np.ndarray) -> pl.DataFrame:
    """A panel of one series on a 57 s grid."""
    start = datetime(2022, 9, 11, tzinfo=UTC)
    return pl.DataFrame(
        {
            "series": [name] * values.size,
            "ts": [start + timedelta(seconds=57 * i) for i in range(values.size)],
            "y": values.astype(np.float64),
        },
        schema={"series": pl.String, "ts": pl.Datetime("us", "UTC"), "y": pl.Float64},
    )


def test_choose_keeps_naive_unless_beaten_beyond_the_noise() -> None:
    y = np.arange(100.0)  # a line: naive errs by k at step k, a perfect model by 0
    origins = validation_origins(y.size, 20)
    assert origins.tolist() == list(range(79, 99))
    steps = np.arange(1, 6)
    perfect = y[origins][:, None] + steps[None, :]
    naive = naive_paths(y, origins, 5)
    won = choose(y, origins, {"naive": naive, "model": perfect}, z=2.0, pool=0.0, model="model")
    assert won.method == "model"
    assert won.errors["model"] == 0.0
    assert np.nansum(np.abs(won.residuals)) == 0.0
    # perfect on the first half of the window, 1.9x naive's error on the second: better on
    # average, but by less than one standard error of the (autocorrelated) paired
    # difference, so naive stays at z = 1 and the model wins only at z = 0
    worse = naive - 0.9 * (perfect - naive)
    lucky = np.where(np.arange(origins.size)[:, None] < 10, perfect, worse)
    kept = choose(y, origins, {"naive": naive, "model": lucky}, z=1.0, pool=0.0)
    assert kept.method == "naive"
    assert kept.errors["model"] < kept.errors["naive"] < kept.errors["model"] + kept.noise["model"]
    assert choose(y, origins, {"naive": naive, "model": lucky}, z=0.0, pool=0.0).method == "model"
    # the combination weighs by inverse error: w = e_naive / (e_model + e_naive) = 2/3 for
    # a model that errs half as much, so it errs (1 - 2/3 * 1/2) = 2/3 as much as naive
    half = naive + 0.5 * (perfect - naive)
    mixed = choose(y, origins, {"naive": naive, "model": half}, z=0.0, pool=0.0, model="model")
    assert mixed.errors["model+naive"] == pytest.approx(2 / 3 * mixed.errors["naive"])
    assert mixed.method == "model"  # 1/2 < 2/3: the model alone wins, weight 1


def test_bands_leave_the_observed_range_only_as_far_as_naives_band() -> None:
    """A stair that rises 10 every 5 steps sits at its all-time high: clipped to the
    observed range alone the upper band is the mean (no room above); with the history
    it reaches above that high exactly as far as naive's empirical band does, never
    beyond the method's own conformal offsets, and the lower band keeps its floor.
    """
    y = 10.0 * np.floor(np.arange(200) / 5)
    origins = validation_origins(y.size, 40)
    naive = naive_paths(y, origins, 8)
    wide = naive + 1000.0  # a model whose residuals are large and negative...
    choice = choose(y, origins, {"naive": naive, "model": wide - 2000.0}, z=0.0, pool=0.0)
    assert choice.method == "naive"  # ...loses; naive's own residuals are the stair's moves
    flat = {"naive": np.full(8, y[-1])}
    clipped = choice.forecast(flat, (95,), low=0.0, high=float(y.max()), label="t")
    assert np.array_equal(clipped.upper[95], clipped.mean)
    reached = choice.forecast(flat, (95,), low=0.0, high=float(y.max()), label="t", history=y)
    own = choice.forecast(flat, (95,), low=0.0, high=np.inf, label="t")
    reach = naive_forecast(y, 8, (95,)).upper[95]
    assert np.array_equal(reached.upper[95], np.minimum(own.upper[95], reach))
    assert reached.upper[95][-1] > y.max()
    assert np.array_equal(reached.lower[95], clipped.lower[95])


def test_paired_noise_counts_overlapping_origins_once() -> None:
    """Origins a step apart share most of their targets: the standard error of the mean
    difference is that of about one draw per horizon, not one per origin.
    """
    rng = np.random.default_rng(3)
    d = np.repeat(rng.normal(0.0, 1.0, 8), 10)  # 8 independent horizons of 10 origins each
    origins = np.arange(d.size, dtype=np.int64)
    naive = np.zeros(d.size)
    iid = float(np.std(d) / np.sqrt(d.size))
    assert paired_noise(d, naive, origins, 10) > 2.0 * iid
    assert paired_noise(d, naive, origins, 1) == pytest.approx(iid)
    assert paired_noise(d[:1], naive[:1], origins[:1], 10) == 0.0


def test_step_offsets_are_conformal_ranks_per_step() -> None:
    residuals = np.tile(np.arange(1.0, 40.0)[:, None], (1, 3))  # 39 residuals 1..39
    residuals[:, 1] = -residuals[:, 1]
    residuals[:, 2] = np.nan  # no residual at step 3: it borrows step 2's band
    bands = step_offsets(residuals, (80, 95))
    lo95, hi95 = bands[95]
    lo80, hi80 = bands[80]
    # 95 %: rank ceil(40 * 0.975) = 39 (the max), floor(40 * 0.025) = 1 (the min)
    assert hi95.tolist() == [39.0, 0.0, 0.0]
    assert lo95.tolist() == [0.0, -39.0, -39.0]
    # 80 %: rank ceil(40 * 0.9) = 36 of 1..39; the band never crosses the mean
    assert hi80[0] == 36.0
    assert lo80[1] == -36.0


def test_step_offsets_pool_neighbouring_steps() -> None:
    """One burst among 40 residuals is a step's 95 % band on its own; pooled with the
    neighbouring steps' calm residuals (120 in all) it is beyond the conformal rank.
    """
    residuals = np.zeros((40, 3))
    residuals[7, 1] = 100.0
    alone = step_offsets(residuals, (95,))[95][1]
    assert alone.tolist() == [0.0, 100.0, 0.0]
    pooled = step_offsets(residuals, (95,), pool=0.5)[95][1]  # step 2 reaches steps 1..3
    assert pooled.tolist() == [0.0, 0.0, 0.0]


def test_fleet_scale_is_what_older_bands_need_to_cover_newer_residuals() -> None:
    """Residuals that hold still need no scaling; a fleet whose newer bursts are twice
    the older ones needs its upper bands doubled, and its lower ones left as they were.
    """
    rng = np.random.default_rng(5)
    steady = [rng.normal(0.0, 1.0, (40, 5)) for _ in range(30)]
    bursting = [np.vstack([r[:20], np.where(r[20:] > 0, 2.0 * r[20:], r[20:])]) for r in steady]
    same = fleet_scale(steady, (80, 95), pool=0.25)
    grown = fleet_scale(bursting, (80, 95), pool=0.25)
    for level in (80, 95):
        assert all(0.7 < factor < 1.4 for factor in same[level])
        assert grown[level][0] == same[level][0]
        assert grown[level][1] == pytest.approx(2.0 * same[level][1], rel=0.25)
    # idle series (all-zero residuals) and series of too few origins are left out
    idle = [np.zeros((40, 5))] * 100
    assert fleet_scale([*idle, *steady], (95,), pool=0.25) == {95: same[95]}
    assert fleet_scale([np.zeros((40, 5)), np.ones((3, 5))], (95,)) == {95: (1.0, 1.0)}


@pytest.mark.parametrize(
    "make",
    [lambda: Hybrid(seed=1, season=60, **FAST), lambda: Auto(season=60, seed=1)],
    ids=["hybrid", "auto"],
)
def test_no_forecast_reads_rows_after_its_origin(
    make: Callable[[], Forecaster], gpu_subset: pl.DataFrame
) -> None:
    """Perturb every row from the third origin on: forecasts at origins 0 and 1 do not move.

    The backtest refits one instance at every origin, so this also covers state kept
    across refits (the hybrid keeps its boosters while the history only grows).
    """
    panel = gpu_subset.sort("series", "ts").with_columns(idx=pl.int_range(pl.len()).over("series"))
    starts = first_origins(dict(panel.group_by("series").agg(pl.len()).iter_rows()), 0.3)
    later = pl.col("idx") >= pl.col("series").replace_strict(starts) + 60
    noise = pl.Series(np.random.default_rng(0).uniform(0, 100, panel.height))
    changed = panel.with_columns(y=pl.when(later).then(noise).otherwise(pl.col("y")))
    assert (changed["y"] != panel["y"]).sum() > 100
    before = backtest(panel.select("series", "ts", "y"), make()).points
    after = backtest(changed.select("series", "ts", "y"), make()).points
    early = pl.col("origin") < 2
    assert before.filter(early).select(VALUES).equals(after.filter(early).select(VALUES))
    # and the perturbation does reach the later forecasts (the test can fail)
    assert not before.filter(~early).select(VALUES).equals(after.filter(~early).select(VALUES))


@pytest.mark.parametrize(
    "make",
    [lambda: Hybrid(seed=1, **FAST), lambda: Auto(seed=1)],
    ids=["hybrid", "auto"],
)
def test_step_idle_and_constant_series_get_sane_forecasts(
    make: Callable[[], Forecaster], gpu_subset: pl.DataFrame
) -> None:
    """Synthetic series beside real ones: the mirror has no GPU-memory-bytes table, the
    step-like kind of issue 15, so a step is constructed (flat, one jump, flat again);
    all-zero and constant series are the limiting cases of idle containers.
    """
    step = np.concatenate([np.full(400, 2.0e9), np.full(400, 6.0e9)])  # bytes, one jump
    panel = pl.concat(
        [
            gpu_subset,
            synthetic("step", step),
            synthetic("idle", np.zeros(800)),
            synthetic("flat", np.full(800, 42.0)),
        ]
    )
    out = make().fit(panel).predict(40, (80, 95))
    known = {"step": 6.0e9, "idle": 0.0, "flat": 42.0}
    for name, last in known.items():
        rows = out.filter(pl.col("series") == name)
        assert rows.height == 40
        # flat over its validation window: naive is exact there, nothing beats it
        for column in VALUES:
            assert rows[column].to_list() == [last] * 40, (name, column, rows["model"][0])
    assert out.select(pl.all_horizontal(pl.col(VALUES).is_finite().all())).item()
    assert (out["lo_95"] <= out["mean"]).all()
    assert (out["mean"] <= out["hi_95"]).all()
    assert (out["lo_95"] >= 0).all()  # usage series never forecast below zero
