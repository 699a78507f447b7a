from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foresize.core.errors import InputError, SchemaMismatchError
from foresize.core.schemas import TELEMETRY
from foresize.ingest.alibaba.gentd26 import read_gentd26
from foresize.ingest.synthetic import generate_telemetry
from foresize.profile.phases import (
    PHASES,
    SUMMARY_SCHEMA,
    TRANSITIONS_SCHEMA,
    detect_phases,
    phase_summary,
    phase_transitions,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def series(values: np.ndarray | list[float], *, step_s: float = 60.0, workload: str = "w",
           metric: str = "gpu_util_pct") -> pl.DataFrame:
    values = np.asarray(values, dtype=float)
    times = [T0 + timedelta(seconds=i * step_s) for i in range(values.size)]
    return pl.DataFrame({"workload": workload, "metric": metric, "ts": times, "value": values},
                        schema=TELEMETRY)


def boundaries(segment: pl.Series) -> list[int]:
    s = segment.to_numpy()
    return (np.flatnonzero(np.diff(s)) + 1).tolist()


def dominant(labeled: pl.DataFrame) -> list[str]:
    """The most common phase of each segment, in time order."""
    return (labeled.group_by("segment").agg(pl.col("phase").mode().first())
            .sort("segment")["phase"].to_list())


# --- known answers -----------------------------------------------------------------------


def step_signal(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([
        rng.uniform(0.0, 0.5, 100),  # idle: below the 1 % threshold of gpu_util_pct
        100 + rng.normal(0.0, 1.0, 100),
        300 + rng.normal(0.0, 1.0, 100),
        rng.uniform(0.0, 0.5, 50),
    ])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_step_signal_change_points_and_ordered_regimes(seed: int) -> None:
    out = detect_phases(series(step_signal(seed)))
    found = boundaries(out["segment"])
    assert len(found) == 3
    for got, want in zip(found, [100, 200, 300], strict=True):
        assert abs(got - want) <= 2
    assert dominant(out) == ["idle", "low", "high", "idle"]
    assert out["segment"].to_list()[0] == 0


def test_large_penalty_and_one_regime() -> None:
    frame = series(step_signal())
    # idle switches always end a segment; a huge penalty removes the 100 -> 300 change
    out = detect_phases(frame, penalty=1e9)
    assert dominant(out) == ["idle", "busy", "idle"]
    out = detect_phases(frame, max_regimes=1)
    assert dominant(out) == ["idle", "busy", "busy", "idle"]


def test_threshold_method_is_the_simple_labelling() -> None:
    values = step_signal()
    out = detect_phases(series(values), method="threshold")
    expected = np.where(values <= 1.0, "idle", "busy")
    assert out["phase"].to_list() == expected.tolist()
    assert boundaries(out["segment"]) == [100, 300]


def test_spikes_are_short_excursions_above_the_level() -> None:
    rng = np.random.default_rng(3)
    values = 50 + rng.normal(0, 1, 200)
    values[[40, 120, 121]] = 95.0  # one- and two-sample bursts
    values[160:170] = 95.0  # a ten-sample plateau is a phase, not a spike
    out = detect_phases(series(values))
    spikes = np.flatnonzero(out["phase"].to_numpy() == "spike").tolist()
    assert spikes == [40, 120, 121]
    assert set(out["phase"][160:170]) == {"high"}
    # bursts from an idle level that sits at exactly zero are spikes too
    values = np.zeros(60)
    values[[10, 30, 31]] = 20.0
    out = detect_phases(series(values))
    assert np.flatnonzero(out["phase"].to_numpy() == "spike").tolist() == [10, 30, 31]
    assert set(out["phase"].to_list()) == {"idle", "spike"}


def test_short_pauses_belong_to_the_busy_phase() -> None:
    values = np.full(60, 80.0)
    values[[20, 40, 41]] = 0.0  # pauses shorter than min_dwell=3
    out = detect_phases(series(values))
    assert set(out["phase"].to_list()) == {"busy"}
    assert out["segment"].n_unique() == 1
    # with min_dwell=1 every sample is its own phase judge
    out = detect_phases(series(values), min_dwell=1)
    assert np.flatnonzero(out["phase"].to_numpy() == "idle").tolist() == [20, 40, 41]


def test_long_series_is_segmented_on_blocks_and_refined() -> None:
    rng = np.random.default_rng(5)
    n = 100_000
    values = np.concatenate([np.full(30_011, 20.0), np.full(39_990, 60.0),
                             np.full(n - 70_001, 90.0)]) + rng.normal(0, 1, n)
    out = detect_phases(series(values, step_s=1.0))
    found = boundaries(out["segment"])
    assert len(found) == 2
    assert abs(found[0] - 30_011) <= 2
    assert abs(found[1] - 70_001) <= 2
    assert dominant(out) == ["low", "mid", "high"]


# --- synthetic training jobs with known phases ---------------------------------------------


@pytest.fixture(scope="module")
def synthetic_util() -> pl.DataFrame:
    frame = generate_telemetry(seed=0).filter(pl.col("metric") == "gpu_util_pct")
    return frame.rename({"phase": "truth"})


def test_synthetic_training_phases_default(synthetic_util: pl.DataFrame) -> None:
    out = detect_phases(synthetic_util).filter(pl.col("truth").is_not_null())
    agree = ((out["truth"] == "training") == (out["phase"] == "high")).mean()
    assert agree > 0.95  # measured 0.985: vit's 2-sample checkpoints are below min_dwell
    for _, job in out.group_by("workload"):
        assert ((job["truth"] == "training") == (job["phase"] == "high")).mean() > 0.9
    # checkpoints of 3-4 samples (llm, recsys) and all data loading are the low regime
    long_ckpt = out.filter(pl.col("truth") == "checkpoint", ~pl.col("workload").str.contains("vit"))
    assert (long_ckpt["phase"] == "low").mean() > 0.95
    assert (out.filter(pl.col("truth") == "data_loading")["phase"] == "low").mean() > 0.9


def test_synthetic_training_phases_min_dwell_2(synthetic_util: pl.DataFrame) -> None:
    out = detect_phases(synthetic_util, min_dwell=2).filter(pl.col("truth").is_not_null())
    agree = ((out["truth"] == "training") == (out["phase"] == "high")).mean()
    assert agree > 0.99  # measured 0.9999
    share = out.group_by("truth").agg(
        (pl.col("phase") == "high").mean().alias("high"),
        (pl.col("phase") == "mid").mean().alias("mid"),
        (pl.col("phase") == "low").mean().alias("low"),
    )
    by = {row["truth"]: row for row in share.iter_rows(named=True)}
    assert by["training"]["high"] > 0.99
    assert by["evaluation"]["mid"] > 0.95
    assert by["checkpoint"]["low"] > 0.95
    assert by["data_loading"]["low"] > 0.95


def test_synthetic_office_hours_service_idles(synthetic_util: pl.DataFrame) -> None:
    out = detect_phases(synthetic_util.filter(pl.col("workload") == "infer-assist-02"))
    idle = out["phase"] == "idle"
    assert 0.4 < idle.mean() < 0.7
    assert ((out["value"] <= 1.0) == idle).mean() > 0.95


# --- real GenTD26 duty cycles -----------------------------------------------------------------


@pytest.fixture(scope="module")
def duty(gentd26_dir: Path) -> pl.DataFrame:
    frame, _ = read_gentd26(gentd26_dir / "pod_gpu_duty_cycle_anon.tar.gz")
    labeled = detect_phases(frame)
    return labeled.with_columns(
        (pl.col("phase") == "idle").alias("auto_idle"),
        (pl.col("value") <= 1.0).alias("threshold_idle"),
        (pl.int_range(pl.len()) / pl.len()).over("workload").alias("position"),
    )


def test_gentd26_idle_split_agrees_with_threshold(duty: pl.DataFrame) -> None:
    assert duty["workload"].n_unique() == 143
    agree = duty["auto_idle"] == duty["threshold_idle"]
    assert agree.mean() > 0.9  # measured 0.940 pooled
    per = duty.group_by("workload").agg(
        (pl.col("auto_idle") == pl.col("threshold_idle")).mean().alias("agree"), pl.len()
    )
    assert per["agree"].median() > 0.9  # measured 0.944
    assert (per.filter(pl.col("len") >= 100)["agree"] > 0.8).all()
    assert set(duty["phase"].unique()) <= set(PHASES)


def test_gentd26_late_regime_is_more_idle(duty: pl.DataFrame) -> None:
    late = pl.col("position") >= 0.7
    shares = duty.group_by("workload").agg(
        pl.col("auto_idle").filter(late).mean().alias("late"),
        pl.col("auto_idle").filter(~late).mean().alias("early"),
    )
    assert (shares["late"] > shares["early"]).mean() > 0.75  # measured 0.86
    assert duty.filter(late)["auto_idle"].mean() > duty.filter(~late)["auto_idle"].mean() + 0.2


def test_gentd26_summary_is_consistent(duty: pl.DataFrame) -> None:
    summary = phase_summary(duty.select("workload", "metric", "ts", "value", "phase"))
    assert summary.schema == SUMMARY_SCHEMA
    totals = summary.group_by("workload").agg(pl.col("time_share").sum(),
                                              pl.col("n_samples").sum())
    assert np.allclose(totals["time_share"].to_numpy(), 1.0)
    assert totals["n_samples"].sum() == duty.height
    left = summary.filter(pl.col("p_to_idle").is_not_null())
    jumps = left.select(pl.sum_horizontal(pl.col("^p_to_.*$")))
    assert np.allclose(jumps.to_series().to_numpy(), 1.0)


# --- phase_summary known answers ---------------------------------------------------------------


def alternating(cycles: int = 3) -> pl.DataFrame:
    phases = (["idle"] * 10 + ["busy"] * 20) * cycles
    values = [0.0 if p == "idle" else 50.0 + (i % 20) for i, p in enumerate(phases)]
    return series(values).with_columns(phase=pl.Series(phases))


def test_summary_dwell_share_and_transitions_by_hand() -> None:
    summary = phase_summary(alternating())
    idle = summary.filter(pl.col("phase") == "idle")
    busy = summary.filter(pl.col("phase") == "busy")
    assert summary["phase"].to_list() == ["idle", "busy"]  # PHASES order
    assert idle["n_samples"].item() == 30
    assert busy["n_samples"].item() == 60
    assert idle["time_s"].item() == 1800.0
    assert idle["time_share"].item() == pytest.approx(1 / 3)
    assert busy["time_share"].item() == pytest.approx(2 / 3)
    assert idle["n_visits"].item() == busy["n_visits"].item() == 3
    assert idle["mean_dwell_s"].item() == idle["max_dwell_s"].item() == 600.0
    assert busy["mean_dwell_s"].item() == busy["max_dwell_s"].item() == 1200.0
    # idle: 30 next samples, 27 idle, 3 busy; busy: 59 next samples, 57 busy, 2 idle
    assert idle["p_stay"].item() == pytest.approx(27 / 30)
    assert busy["p_stay"].item() == pytest.approx(57 / 59)
    assert idle["p_to_busy"].item() == 1.0
    assert busy["p_to_idle"].item() == 1.0
    assert idle["p_to_idle"].item() == 0.0
    assert idle["p_to_spike"].item() == 0.0
    busy_values = np.array([50.0 + (i % 20) for i in range(90) if i % 30 >= 10])
    assert busy["mean"].item() == pytest.approx(busy_values.mean())
    assert busy["p95"].item() == pytest.approx(np.percentile(busy_values, 95))
    assert busy["max"].item() == 69.0


def test_transition_matrix_by_hand() -> None:
    matrix = phase_transitions(alternating())
    assert matrix.schema == TRANSITIONS_SCHEMA
    rows = {(r["phase"], r["next_phase"]): (r["n_transitions"], r["p"])
            for r in matrix.iter_rows(named=True)}
    assert rows == {
        ("idle", "idle"): (27, pytest.approx(27 / 30)),
        ("idle", "busy"): (3, pytest.approx(3 / 30)),
        ("busy", "idle"): (2, pytest.approx(2 / 59)),
        ("busy", "busy"): (57, pytest.approx(57 / 59)),
    }
    assert matrix["phase"].to_list() == ["idle", "idle", "busy", "busy"]  # PHASES order


def test_summary_and_transitions_take_any_labels(synthetic_util: pl.DataFrame) -> None:
    job = synthetic_util.filter(pl.col("workload") == "train-llm-00").rename({"truth": "phase"})
    summary = phase_summary(job)
    assert sorted(summary["phase"]) == ["checkpoint", "data_loading", "evaluation", "training"]
    training = summary.filter(pl.col("phase") == "training")
    assert training["mean_dwell_s"].item() > 20 * 60  # between checkpoints, evaluations
    checkpoint = summary.filter(pl.col("phase") == "checkpoint")
    assert checkpoint["mean_dwell_s"].item() == 4 * 60.0
    assert checkpoint["p95"].item() < 20 < training["p50"].item()
    matrix = phase_transitions(job)
    sums = matrix.group_by("phase").agg(pl.col("p").sum())
    assert np.allclose(sums["p"].to_numpy(), 1.0)
    leaving_checkpoint = matrix.filter(pl.col("phase") == "checkpoint",
                                       pl.col("next_phase") != "checkpoint")
    assert leaving_checkpoint["next_phase"].to_list() == ["training"]


def test_summary_of_detected_phases_matches_hand_count() -> None:
    frame = alternating().drop("phase")
    summary = phase_summary(detect_phases(frame, method="threshold"))
    assert summary.filter(pl.col("phase") == "busy")["mean_dwell_s"].item() == 1200.0
    auto = phase_summary(detect_phases(frame))
    assert auto.filter(pl.col("phase") == "idle")["mean_dwell_s"].item() == 600.0


def test_summary_gap_ends_a_visit_and_is_not_time() -> None:
    frame = alternating(cycles=1)  # 10 idle then 20 busy at 60 s
    shifted = frame.with_columns(
        pl.when(pl.int_range(pl.len()) >= 15)
        .then(pl.col("ts") + timedelta(hours=1))
        .otherwise(pl.col("ts"))
    )
    busy = phase_summary(shifted).filter(pl.col("phase") == "busy")
    assert busy["n_visits"].item() == 2  # 5 busy samples, an hour unobserved, 15 busy
    assert busy["time_s"].item() == 20 * 60.0
    assert busy["max_dwell_s"].item() == 15 * 60.0
    assert busy["p_stay"].item() == 1.0  # 18 pairs; the one across the gap is not counted


def test_summary_several_series_and_one_sample() -> None:
    frame = pl.concat([alternating().with_columns(workload=pl.lit("a")),
                       series([5.0], workload="b").with_columns(phase=pl.lit("busy"))])
    summary = phase_summary(frame)
    b = summary.filter(pl.col("workload") == "b")
    assert b["time_share"].item() == 1.0
    assert b["n_visits"].item() == 1
    assert b["p_stay"].item() is None
    assert b["p_to_idle"].item() is None
    assert summary.filter(pl.col("workload") == "a").height == 2


# --- edge cases and errors --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["auto", "threshold", "changepoint"])
@pytest.mark.parametrize(
    ("values", "phase"),
    [([50.0] * 40, "busy"), ([0.0] * 40, "idle"), ([7.0], "busy"), ([0.0], "idle"),
     ([3.0, 0.0], None)],
)
def test_degenerate_series_are_one_phase(method: str, values: list[float],
                                         phase: str | None) -> None:
    out = detect_phases(series(values), method=method)  # type: ignore[arg-type]
    assert out.height == len(values)
    if phase is not None:
        assert set(out["phase"].to_list()) == {phase}
        assert out["segment"].to_list() == [0] * len(values)
    summary = phase_summary(out)
    assert summary["n_samples"].sum() == len(values)


def test_empty_frame() -> None:
    empty = pl.DataFrame(schema=TELEMETRY)
    out = detect_phases(empty)
    assert out.height == 0
    assert out.schema["phase"] == pl.String
    assert out.schema["segment"] == pl.Int64
    assert phase_summary(out).schema == SUMMARY_SCHEMA
    assert phase_transitions(out).schema == TRANSITIONS_SCHEMA


def test_rows_keep_input_order_and_series_are_independent() -> None:
    a = series(step_signal(), workload="a")
    b = series(np.r_[np.zeros(30), np.full(30, 40.0)], workload="b", metric="cpu_cores")
    mixed = pl.concat([b, a]).sample(fraction=1.0, shuffle=True, seed=1)
    out = detect_phases(mixed)
    assert out.select("workload", "metric", "ts", "value").equals(mixed)
    alone = detect_phases(a)
    joined = out.filter(pl.col("workload") == "a").sort("ts")
    assert joined["phase"].to_list() == alone["phase"].to_list()
    assert joined["segment"].to_list() == alone["segment"].to_list()


def test_existing_phase_column_is_replaced() -> None:
    frame = series(step_signal()).with_columns(phase=pl.lit("training"), segment=pl.lit(7))
    out = detect_phases(frame)
    assert out.columns == [*TELEMETRY.names(), "phase", "segment"]
    assert "training" not in out["phase"].to_list()


def test_non_canonical_input_is_an_input_error() -> None:
    frame = series([1.0, float("nan"), 3.0])
    with pytest.raises(InputError, match=r"'value' has 1 NaN or infinite"):
        detect_phases(frame)
    with pytest.raises(InputError, match=r"'value' has 1 null"):
        detect_phases(series([1.0, 2.0]).with_columns(value=pl.Series([1.0, None])))
    with pytest.raises(SchemaMismatchError, match="'value'"):
        detect_phases(series([1.0]).with_columns(pl.col("value").cast(pl.Int64)))
    with pytest.raises(InputError, match="polars DataFrame"):
        detect_phases(series([1.0]).lazy())  # type: ignore[arg-type]
    with pytest.raises(InputError, match="String 'phase' column"):
        phase_summary(series([1.0]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_dwell": 0},
         "The 'min_dwell' parameter of detect_phases must be an int >= 1. Got 0 instead."),
        ({"min_dwell": 2.5},
         "The 'min_dwell' parameter of detect_phases must be an int >= 1. Got 2.5 instead."),
        ({"min_dwell": True},
         "The 'min_dwell' parameter of detect_phases must be an int >= 1. Got True instead."),
        ({"max_regimes": 4},
         "The 'max_regimes' parameter of detect_phases must be an int between 1 and 3. "
         "Got 4 instead."),
        ({"penalty": 0.0},
         "The 'penalty' parameter of detect_phases must be None or a finite number > 0. "
         "Got 0.0 instead."),
        ({"penalty": float("inf")},
         "The 'penalty' parameter of detect_phases must be None or a finite number > 0. "
         "Got inf instead."),
        ({"method": "hmm"},
         "The 'method' parameter of detect_phases must be one of 'auto', 'threshold', "
         "'changepoint'. Got 'hmm' instead."),
    ],
)
def test_bad_parameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError) as caught:
        detect_phases(series([1.0, 2.0]), **kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_tiny_penalty_keeps_segments_at_least_min_dwell_long() -> None:
    out = detect_phases(series(step_signal()), penalty=1e-9)
    assert out["segment"].n_unique() > 4
    assert (out["segment"].value_counts()["count"] >= 3).all()


# --- property -----------------------------------------------------------------------------------

levels = st.sampled_from([0.0, 0.5, 5.0, 30.0, 90.0])


@st.composite
def random_series(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.integers(0, 120))
    base = draw(st.lists(levels, min_size=n, max_size=n))
    noise = draw(st.lists(st.floats(0.0, 3.0), min_size=n, max_size=n))
    return np.asarray(base, dtype=float) + np.asarray(noise, dtype=float)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    a=random_series(),
    b=random_series(),
    method=st.sampled_from(["auto", "threshold", "changepoint"]),
    min_dwell=st.integers(1, 6),
    max_regimes=st.integers(1, 3),
)
def test_every_row_gets_one_phase_and_contiguous_segments(
    a: np.ndarray, b: np.ndarray, method: str, min_dwell: int, max_regimes: int
) -> None:
    frame = pl.concat([series(a, workload="a"), series(b, workload="b", metric="qps")])
    out = detect_phases(frame, method=method, min_dwell=min_dwell,  # type: ignore[arg-type]
                        max_regimes=max_regimes)
    assert out.height == frame.height
    assert out.select("workload", "metric", "ts", "value").equals(frame)
    assert out["phase"].null_count() == 0
    allowed = {"idle", "busy"} if method == "threshold" else set(PHASES)
    assert set(out["phase"].to_list()) <= allowed
    for _, part in out.group_by("workload"):
        part = part.sort("ts")
        seg = part["segment"].to_numpy()
        if seg.size == 0:
            continue
        assert seg[0] == 0
        assert set(np.diff(seg).tolist()) <= {0, 1}
        if method != "threshold" and seg.size >= 2 * min_dwell:
            assert np.bincount(seg).min() >= min_dwell
            # a segment is wholly idle or wholly active
            idle = part["phase"].to_numpy() == "idle"
            spike = part["phase"].to_numpy() == "spike"
            for s in np.unique(seg):
                inside = seg == s
                assert not (idle[inside].any() and (~idle & ~spike)[inside].any())
    summary = phase_summary(out)
    assert summary["n_samples"].sum() == frame.height
