"""Per-phase vertical sizing: known answers on a step series, real GenTD26 memory, bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from foresize.core.errors import InputError, InsufficientDataError
from foresize.ingest.sources import ReadOptions, open_telemetry
from foresize.simulate.replicas.vertical import (
    PlannedSizes,
    VerticalConfig,
    merge_spikes,
    replay_series,
    size_series,
    totals,
    vertical_sizing,
)

MULTI_PHASE = "83e64a296f3943e4ca90d52cce91de5c"  # a GenTD26 container with 3 memory phases


@pytest.fixture(scope="module")
def memory(mirror: Path) -> pl.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = open_telemetry(["alibaba-gentd26:memory_util"], ReadOptions(mirror=mirror)).frame
    collected = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    assert isinstance(collected, pl.DataFrame)
    return collected


def test_a_step_series_gets_each_phase_level_and_the_delay_costs_exactly_its_steps() -> None:
    # 10 blocks of 20 steps, alternating low (10) and high (50); learn on 140, apply on 60
    values = np.tile(np.repeat([10.0, 50.0], 20), 5)
    labels = [("low", "high")[(i // 20) % 2] for i in range(values.size)]
    config = VerticalConfig(risk=0.05, resize_delay=3)
    result = size_series(values, labels, config, step_s=60.0)
    assert result.phase_sizes == {"low": 10.0, "high": 50.0}
    assert result.fixed_size == 50.0
    per_phase, fixed = result.scores["per_phase"], result.scores["fixed"]
    # applied steps 140..199: high at 140 and 180 up-switches are late by 3 steps each
    assert per_phase["under_frac"] == pytest.approx(6 / 60)
    assert per_phase["shortfall"] == pytest.approx(6 * 40 / values[140:].sum())
    assert fixed["under_frac"] == 0.0
    assert fixed["reserved_h"] == pytest.approx(60 * 50 / 60)
    assert per_phase["reserved_h"] < fixed["reserved_h"]
    assert result.resizes == 3
    oracle = result.scores["oracle"]
    assert oracle["reserved_h"] == pytest.approx(oracle["used_h"])
    assert oracle["under_frac"] == 0.0
    assert oracle["overshoot"] == 0.0
    instant = size_series(values, labels, VerticalConfig(resize_delay=0), step_s=60.0)
    assert instant.scores["per_phase"]["reserved_h"] == pytest.approx(oracle["reserved_h"])


def test_spikes_belong_to_the_phase_they_interrupt() -> None:
    assert merge_spikes(["spike", "low", "spike", "high", "spike"]) == [
        "low",
        "low",
        "low",
        "high",
        "high",
    ]


def test_per_phase_reserves_less_than_fixed_on_a_real_multi_phase_container(
    memory: pl.DataFrame,
) -> None:
    rows, details = vertical_sizing(memory, metric="mem_util_pct", workloads=[MULTI_PHASE])
    row = rows.row(0, named=True)
    assert row["n_phases"] >= 2
    assert row["resizes"] >= 1
    assert row["reserved_h_per_phase"] <= row["reserved_h_fixed"]
    assert row["reserved_h_oracle"] <= row["reserved_h_per_phase"]
    assert 0.0 <= row["under_frac_per_phase"] < 0.2  # reported, near the 5 % risk
    assert row["steps"] == details[0].applied.size
    sizes = details[0].phase_sizes
    assert sizes["low"] < sizes["high"]


def test_over_all_memory_containers(memory: pl.DataFrame) -> None:
    rows, _ = vertical_sizing(memory, config=VerticalConfig(risk=0.05))
    assert 150 <= rows.height <= memory["workload"].n_unique()
    single = rows.filter(pl.col("n_phases") == 1)
    # one phase: the per-phase size is the fixed size
    assert (single["reserved_h_per_phase"] - single["reserved_h_fixed"]).abs().max() < 1e-9
    summary = totals(rows.filter(pl.col("n_phases") >= 2))
    assert summary["per_phase_vs_fixed"] < 1.0
    assert summary["reserved_h_oracle"] < summary["reserved_h_per_phase"]
    assert 0.0 < summary["under_frac_per_phase"] < 0.2


@pytest.mark.parametrize("risk", [0.0, 0.6, -0.1, float("nan")])
def test_risk_outside_the_range_is_an_input_error(risk: float) -> None:
    with pytest.raises(InputError, match=r"--risk must be in \(0, 0.5\]"):
        VerticalConfig(risk=risk)


def test_bad_input_is_a_clear_error(memory: pl.DataFrame) -> None:
    with pytest.raises(InputError, match="'gpu_util_pct' is not in the source; it holds"):
        vertical_sizing(memory, metric="gpu_util_pct")
    with pytest.raises(InputError, match="--workload 'nope' has no mem_util_pct"):
        vertical_sizing(memory, workloads=["nope"])
    with pytest.raises(InputError, match="--resize-delay must be >= 0"):
        VerticalConfig(resize_delay=-1)
    with pytest.raises(InsufficientDataError, match="too short"):
        size_series(np.ones(12), ["busy"] * 12, VerticalConfig(), step_s=60.0)
    with pytest.raises(InputError, match="12 values but 3 phase labels"):
        size_series(np.ones(12), ["busy"] * 3, VerticalConfig(), step_s=60.0)


def test_a_plan_is_replayed_over_the_whole_series_with_the_resize_delay() -> None:
    values = np.repeat([10.0, 50.0, 10.0], 20)
    labels = ["low"] * 20 + ["high"] * 20 + ["low"] * 20
    sizes = PlannedSizes(fixed=60.0, phases={"low": 12.0, "high": 55.0})
    result = replay_series(values, labels, sizes, VerticalConfig(resize_delay=2), step_s=3600.0)
    assert result.applied.tolist() == [12.0] * 22 + [55.0] * 20 + [12.0] * 18
    per_phase = result.scores["per_phase"]
    assert per_phase["under_frac"] == pytest.approx(2 / 60)  # high's first two steps at 12
    assert per_phase["reserved_h"] == pytest.approx(22 * 12 + 20 * 55 + 18 * 12)
    assert result.scores["fixed"]["reserved_h"] == pytest.approx(60 * 60)
    assert result.resizes == 2
    unplanned = replay_series(
        values, labels, PlannedSizes(60.0, {}), VerticalConfig(), step_s=3600.0
    )
    assert unplanned.applied.tolist() == [60.0] * 60  # no schedule: the overall request

