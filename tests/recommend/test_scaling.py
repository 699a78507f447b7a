from __future__ import annotations

import math
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from foresize.core.errors import InputError, InsufficientDataError
from foresize.forecast.baselines import WindowAverage
from foresize.forecast.panel import to_panel
from foresize.ingest.sources import ReadOptions, open_telemetry
from foresize.recommend.scaling import (
    HPA_TARGET_RANGE,
    CronWindow,
    DemandPath,
    ReplicaSchedule,
    cron_schedule,
    demand_from_forecast,
    estimate_capacity,
    hpa_settings,
    hpa_unserved,
    replica_schedule,
)


def _qps(mirror: Path) -> pl.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = open_telemetry(["alibaba-gentd26:qps"], ReadOptions(mirror=mirror)).frame
        return frame.collect() if hasattr(frame, "collect") else frame


@pytest.fixture(scope="module")
def qps(mirror: Path) -> pl.DataFrame:
    return _qps(mirror)


@pytest.fixture(scope="module")
def forecast_path(qps: pl.DataFrame) -> DemandPath:
    """Total GenTD26 QPS forecast 60 steps ahead, summed per step over 108 workloads."""
    panel, _ = to_panel(qps, metric="qps")
    forecast = WindowAverage(window=30).fit(panel).predict(60, levels=(80, 95))
    return demand_from_forecast(forecast)


@pytest.fixture(scope="module")
def observed_path(qps: pl.DataFrame) -> DemandPath:
    """The observed total QPS of the trace (sum over workloads per timestamp, 57 s steps)."""
    total = qps.group_by("ts").agg(pl.col("value").sum()).sort("ts")
    return DemandPath(
        values=tuple(total["value"].to_list()),
        step_s=57.0,
        ts=tuple(total["ts"].to_list()),
        column="observed qps",
    )


def _ready_in_time(schedule: ReplicaSchedule) -> None:
    """Every step's covered demand is served by replicas ordered a start-up delay earlier."""
    demand = np.asarray(schedule.demand.values)
    replicas = np.asarray(schedule.replicas)
    lead = math.ceil(schedule.startup_s / schedule.demand.step_s)
    need = np.ceil(demand / (schedule.capacity * schedule.target_utilisation) - 1e-9)
    for t in range(demand.size):
        assert replicas[max(0, t - lead) : t + 1].min() >= need[t], t
    assert np.all(replicas * schedule.capacity * schedule.target_utilisation >= demand - 1e-9)


def test_forecast_schedule_on_gentd26_covers_the_upper_quantile(forecast_path: DemandPath) -> None:
    assert forecast_path.column == "hi_95"
    assert len(forecast_path.values) == 60
    assert forecast_path.step_s == pytest.approx(114.0)  # the panel's grid step
    assert all(
        hi >= mean
        for hi, mean in zip(forecast_path.values, forecast_path.expected or (), strict=True)
    )
    schedule = replica_schedule(
        forecast_path, capacity=0.5, target_utilisation=0.7, startup_s=300, scale_down_delay_s=600
    )
    _ready_in_time(schedule)
    assert schedule.replica_hours <= schedule.static_peak_replica_hours
    assert schedule.peak == max(schedule.replicas) >= schedule.low
    out = schedule.to_dict()
    assert out["steps"] == 60
    assert out["covers"] == "hi_95"
    assert len(out["ts"]) == 60


def test_observed_gentd26_schedule_saves_replica_hours_against_the_static_peak(
    observed_path: DemandPath,
) -> None:
    schedule = replica_schedule(
        observed_path, capacity=0.25, target_utilisation=0.7, startup_s=180, scale_down_delay_s=300
    )
    _ready_in_time(schedule)
    # the total QPS swings between 0.09 and 9.6: a schedule needs far fewer replica-hours
    assert schedule.peak == math.ceil(9.6 / (0.25 * 0.7))
    assert 0.3 < schedule.saving_vs_static < 1.0
    # the scale-down delay holds every count for 300 s (6 steps of 57 s) after the need falls
    base = replica_schedule(observed_path, capacity=0.25, startup_s=180)
    hold = np.asarray(base.replicas)
    expected = [hold[max(0, t - 6) : t + 1].max() for t in range(hold.size)]
    assert list(schedule.replicas) == expected


def test_startup_lead_and_hysteresis_on_a_spike() -> None:
    demand = [1.0] * 10 + [10.0] * 3 + [1.0] * 10
    schedule = replica_schedule(
        demand,
        capacity=1.0,
        target_utilisation=1.0,
        step_s=60,
        startup_s=120,
        scale_down_delay_s=180,
    )
    assert schedule.needed[10:13] == (10, 10, 10)
    # ready two steps early, kept three steps after
    assert schedule.replicas == (1,) * 8 + (10,) * 8 + (1,) * 7


def test_max_replicas_caps_and_counts_the_shortfall() -> None:
    schedule = replica_schedule(
        [1.0, 5.0, 9.0], capacity=1.0, target_utilisation=1.0, max_replicas=6
    )
    assert schedule.replicas == (1, 5, 6)
    assert schedule.capped_steps == 1


def test_hpa_target_is_the_highest_in_range_no_worse_served_than_the_default(
    forecast_path: DemandPath, observed_path: DemandPath
) -> None:
    schedule = replica_schedule(forecast_path, capacity=0.5, target_utilisation=0.7)
    observed = np.asarray(observed_path.values)
    settings = hpa_settings(schedule, observed=observed)
    low, high = HPA_TARGET_RANGE
    assert low * 100 <= settings.target_utilisation_pct <= high * 100
    per_replica = 0.5 * settings.target_utilisation_pct / 100
    # min: the fewest the history needs at the target, max: at least the schedule's peak
    assert settings.min_replicas == max(1, math.ceil(observed.min() / per_replica - 1e-9))
    assert settings.max_replicas >= math.ceil(schedule.peak * 1.2)
    assert settings.max_replicas >= math.ceil(observed.max() / per_replica - 1e-9)
    targets = np.arange(20, 91) / 100
    unserved = hpa_unserved(observed, 0.5, targets, lag_steps=1)
    at = dict(zip(np.round(targets * 100).astype(int).tolist(), unserved.tolist(), strict=True))
    chosen = settings.target_utilisation_pct
    assert at[chosen] <= at[80] + 1e-9
    assert all(at[t] > at[80] + 1e-9 for t in range(chosen + 1, 91))
    assert "no more demand unserved than the default 80%" in settings.rationale


def test_hpa_unserved_known_answer() -> None:
    # the HPA saw [2, 2, 2, 6] (one step late); at 50 % x 1.1 it keeps 4, 4, 4, 11 replicas
    # of capacity 1, so the jump to 6 finds 4: 2 of 16 units unserved
    share = hpa_unserved(np.array([2.0, 2.0, 6.0, 6.0]), 1.0, np.array([0.5, 0.9]), lag_steps=1)
    assert share[0] == pytest.approx(2 / 16)
    assert share[1] == pytest.approx(3 / 16)  # at 90 % x 1.1: ceil(2 / 0.99) = 3, 3 short
    assert hpa_unserved(np.zeros(3), 1.0, np.array([0.5]), lag_steps=1).tolist() == [0.0]


def test_hpa_target_never_follows_a_near_zero_mean() -> None:
    # the demo's infer-assist-02: the mean the HPA would see is near zero where the
    # upper quantile needs 2 replicas; the old translation wrote a 1 % target
    path = DemandPath(values=(0.5, 3.0, 3.0, 0.5), step_s=60.0, expected=(0.0, 0.01, 0.01, 0.0))
    schedule = replica_schedule(path, capacity=2.0, target_utilisation=0.7)
    settings = hpa_settings(schedule)
    assert settings.target_utilisation_pct == 90
    assert settings.scale_down_stabilisation_s == 0
    assert (settings.min_replicas, settings.max_replicas) == (1, 4)  # peak 3 + 20 %


def _weekly_holds(window: CronWindow, t: datetime) -> bool:
    """Whether the weekly window is active at the instant ``t`` (any week)."""
    offset = (t - window.start) % timedelta(days=7)
    return offset < window.end - window.start


def test_cron_windows_recur_weekly_after_the_plan_and_never_overlap() -> None:
    # synthetic: a 9-day horizon (longer than a week) whose peaks land on the same weekday
    # twice, at times 30 s off the minute, with two counts touching mid-minute
    start = datetime(2022, 9, 12, 8, 0, 30, tzinfo=UTC)  # a Monday, in the trace's year
    ts = tuple(start + timedelta(minutes=30 * i) for i in range(9 * 48))
    values = [1.0] * len(ts)
    for day, (lo, hi, level) in [(0, (2, 6, 5.0)), (0, (6, 8, 3.0)), (7, (4, 10, 4.0))]:
        for i in range(day * 48 + lo, day * 48 + hi):
            values[i] = level
    path = DemandPath(values=tuple(values), step_s=1800.0, ts=ts)
    schedule = replica_schedule(path, capacity=1.0, target_utilisation=1.0)
    after = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # a Monday
    cron = cron_schedule(schedule, max_windows=6, after=after)
    spans = [(w.start, w.end, w.replicas, w.cron_start, w.cron_end) for w in cron.windows]
    # Monday 09:00-11:00 at 5 (week 1) and 10:00-13:00 at 4 (week 2) merge at 5 until 13:00;
    # week 1's 11:00-12:00 at 3 lies inside it
    assert spans == [
        (
            datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
            datetime(2026, 12, 7, 13, 1, tzinfo=UTC),
            5,
            "0 9 * * 1",
            "1 13 * * 1",
        )
    ]
    assert cron.base_replicas == 1


def test_cron_neighbours_share_a_minute_without_overlap() -> None:
    start = datetime(2024, 3, 4, 6, 0, 20, tzinfo=UTC)
    ts = tuple(start + timedelta(seconds=30 * i) for i in range(8))
    path = DemandPath(values=(1.0, 5.0, 5.0, 3.0, 3.0, 3.0, 1.0, 1.0), step_s=30.0, ts=ts)
    cron = cron_schedule(
        replica_schedule(path, capacity=1.0, target_utilisation=1.0),
        after=datetime(2026, 1, 1, tzinfo=UTC),
    )
    first, second = cron.windows
    assert (first.replicas, second.replicas) == (5, 3)
    assert first.end == second.start  # 5 keeps 06:01-06:02, 3 starts where it ends
    assert (first.cron_start, first.cron_end, second.cron_end) == (
        "0 6 * * 1",
        "2 6 * * 1",
        "4 6 * * 1",
    )


def test_cron_schedule_merges_into_few_windows_and_covers(observed_path: DemandPath) -> None:
    schedule = replica_schedule(
        observed_path, capacity=0.25, target_utilisation=0.7, startup_s=180, scale_down_delay_s=300
    )
    ts = observed_path.ts or ()
    after = datetime(2026, 11, 24, tzinfo=UTC)
    for max_windows in (1, 4, 8):
        cron = cron_schedule(schedule, max_windows=max_windows, after=after)
        assert 1 <= len(cron.windows) <= max_windows
        assert cron.base_replicas == schedule.low
        assert cron.peak == schedule.peak
        assert all(w.start >= after for w in cron.windows)
        for t, replicas in zip(ts, schedule.replicas, strict=True):
            held = [w.replicas for w in cron.windows if _weekly_holds(w, t)]
            assert max([cron.base_replicas, *held]) >= replicas
        assert cron.replica_hours >= schedule.replica_hours - 1e-9
        assert cron.replica_hours <= schedule.static_peak_replica_hours + 1e-9
    few, many = cron_schedule(schedule, max_windows=2), cron_schedule(schedule, max_windows=8)
    assert many.replica_hours <= few.replica_hours  # more windows never cost more


def test_cron_window_crons_round_outwards_to_the_minute() -> None:
    start = datetime(2024, 3, 5, 6, 30, 20, tzinfo=UTC)
    ts = tuple(start + timedelta(seconds=30 * i) for i in range(6))
    path = DemandPath(values=(1.0, 1.0, 5.0, 5.0, 1.0, 1.0), step_s=30.0, ts=ts)
    after = datetime(2026, 11, 24, tzinfo=UTC)  # a Tuesday, as 2024-03-05 was
    cron = cron_schedule(replica_schedule(path, capacity=1.0, target_utilisation=1.0), after=after)
    (window,) = cron.windows
    assert window.replicas == 5
    assert window.start == datetime(2026, 11, 24, 6, 31, tzinfo=UTC)  # 06:31:20 floored
    assert window.end == datetime(2026, 11, 24, 6, 33, tzinfo=UTC)  # 06:32:20 rounded up
    assert window.cron_start == "31 6 * * 2"
    assert window.cron_end == "33 6 * * 2"


def test_estimate_capacity_recovers_a_known_line() -> None:
    rng = np.random.default_rng(7)
    replicas = rng.integers(2, 6, 200).astype(float)
    demand = rng.uniform(5, 120, 200)
    util = 10 + 2.0 * demand / replicas + rng.normal(0, 0.5, 200)  # percent
    est = estimate_capacity(demand, util, replicas=replicas, utilisation_scale=100)
    assert est.capacity == pytest.approx(45.0, rel=0.02)  # (100 - 10) / 2
    assert est.idle_utilisation == pytest.approx(0.10, abs=0.01)
    assert est.r2 > 0.95
    assert est.samples == 200
    with pytest.raises(InsufficientDataError, match="does not rise with demand"):
        estimate_capacity(demand, 50 - 0.1 * demand, utilisation_scale=100)
    with pytest.raises(InsufficientDataError, match="at least 3 samples"):
        estimate_capacity([1.0, 1.0], [0.2, 0.3])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"capacity": 0.0}, "capacity per replica must be a positive number, got 0.0"),
        ({"capacity": -2.0}, "capacity per replica must be a positive number"),
        (
            {"startup_s": 700.0},
            r"startup_s \(700 s\) is longer than the planning horizon "
            r"\(10 steps x 60 s = 600 s\)",
        ),
        ({"target_utilisation": 1.5}, r"target_utilisation must be in \(0, 1\]"),
        ({"scale_down_delay_s": -1.0}, "scale_down_delay_s must be >= 0 seconds"),
    ],
)
def test_bad_settings_are_one_line_input_errors(kwargs: dict[str, float], message: str) -> None:
    args = {"capacity": 1.0, **kwargs}
    with pytest.raises(InputError, match=message) as err:
        replica_schedule([1.0] * 10, step_s=60, **args)
    assert "\n" not in str(err.value)


def test_negative_or_nan_demand_names_the_step() -> None:
    with pytest.raises(InputError, match=r"step 2 is -1.0 \(1 bad steps\)"):
        replica_schedule([1.0, 2.0, -1.0], capacity=1.0)
    with pytest.raises(InputError, match="step 0 is nan"):
        replica_schedule([float("nan")], capacity=1.0)
    with pytest.raises(InputError, match="no upper-quantile column"):
        demand_from_forecast(
            pl.DataFrame(
                {"series": ["a"], "ts": [datetime(2024, 1, 1)], "step": [1], "mean": [1.0]}
            )
        )
    with pytest.raises(InputError, match="cron schedule needs timestamps"):
        cron_schedule(replica_schedule([1.0, 3.0], capacity=1.0))
