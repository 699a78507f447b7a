from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from foresize.core.errors import InputError
from foresize.core.schemas import TELEMETRY
from foresize.ingest.synthetic import (
    SERVICE_KINDS,
    TRAINING_KINDS,
    describe_synthetic,
    generate_telemetry,
)
from foresize.ingest.validate import canonicalize

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
STEP_S = 60.0
N = 2 * 1440  # samples per series in the default two days at one minute
KIND = {k.name: k for k in TRAINING_KINDS}


@pytest.fixture(scope="module")
def default() -> pl.DataFrame:
    return generate_telemetry()


def series(frame: pl.DataFrame, workload: str, metric: str) -> pl.DataFrame:
    return frame.filter(pl.col("workload") == workload, pl.col("metric") == metric)


def run_starts(frame: pl.DataFrame, phase: str) -> list[datetime]:
    """Timestamps where a run of ``phase`` begins."""
    inside = pl.col("phase") == phase
    first = inside & ~inside.shift(1, fill_value=False)
    return frame.filter(first)["ts"].to_list()


def test_schema_is_telemetry_plus_phase(default: pl.DataFrame) -> None:
    assert default.schema == pl.Schema({**TELEMETRY, "phase": pl.String})
    training = pl.col("workload").str.starts_with("train-")
    assert default.filter(training)["phase"].null_count() == 0
    assert default.filter(~training)["phase"].null_count() == default.filter(~training).height


def test_workload_names_follow_the_kinds(default: pl.DataFrame) -> None:
    assert sorted(default["workload"].unique()) == [
        "infer-assist-02",
        "infer-chat-00",
        "infer-embed-01",
        "train-llm-00",
        "train-recsys-02",
        "train-vit-01",
    ]
    prefixes = {w.rsplit("-", 1)[0] for w in default["workload"].unique()}
    assert prefixes == set(describe_synthetic())


def test_sorted_by_workload_metric_ts(default: pl.DataFrame) -> None:
    assert_frame_equal(default, default.sort("workload", "metric", "ts"))


def test_same_seed_same_frame_other_seed_other_values(default: pl.DataFrame) -> None:
    assert_frame_equal(generate_telemetry(seed=0), default)
    other = generate_telemetry(seed=1)
    assert_frame_equal(other.drop("value"), default.drop("value"))
    assert (other["value"] != default["value"]).mean() > 0.9


def test_a_workload_does_not_depend_on_how_many_others_exist(default: pl.DataFrame) -> None:
    alone = generate_telemetry(n_training=0, n_inference=1)
    assert_frame_equal(alone, default.filter(pl.col("workload") == "infer-chat-00"))


def test_canonicalize_keeps_every_row(default: pl.DataFrame) -> None:
    out, report = canonicalize(default, source="synthetic")
    assert report.dropped == {}
    assert report.reordered == 0
    assert report.n_series == 6 * 3 + 4 * 3
    assert_frame_equal(out, default)


def test_values_are_nonnegative_and_percentages_bounded(default: pl.DataFrame) -> None:
    assert default["value"].min() >= 0
    util = default.filter(pl.col("metric").str.ends_with("_pct"))["value"]
    assert util.max() <= 100
    assert default["value"].is_finite().all()


def test_training_gpu_util_follows_phases(default: pl.DataFrame) -> None:
    for workload in ("train-llm-00", "train-vit-01", "train-recsys-02"):
        util = series(default, workload, "gpu_util_pct")
        means = dict(util.group_by("phase").agg(pl.col("value").mean()).iter_rows())
        assert means["training"] > 84
        assert means["data_loading"] < 10
        assert means["checkpoint"] < 15
        assert means["data_loading"] < means["evaluation"] < means["training"]


def test_training_gpu_memory_is_flat_after_the_first_steps(default: pl.DataFrame) -> None:
    mem = series(default, "train-llm-00", "gpu_mem_bytes")
    steady = mem.filter(pl.col("phase") == "training", pl.col("ts") >= START + timedelta(hours=1))
    values = steady["value"].to_numpy()
    assert values.std() / values.mean() < 0.005
    assert mem["value"][0] < 0.1 * values.mean()  # only the CUDA context at start
    assert 8 * 80 * 0.82 * 2**30 * 0.99 < values.mean() < 8 * 80 * 0.94 * 2**30 * 1.01


def test_checkpoints_recur_at_the_configured_period(default: pl.DataFrame) -> None:
    for workload, name in (("train-llm-00", "llm"), ("train-vit-01", "vit")):
        kind = KIND[name]
        util = series(default, workload, "gpu_util_pct")
        starts = run_starts(util, "checkpoint")
        gaps = {(b - a).total_seconds() for a, b in pairwise(starts)}
        assert gaps == {kind.checkpoint_every_s}
        assert starts[0] == START + timedelta(seconds=kind.loading_s + kind.checkpoint_every_s)
        lengths = util.filter(pl.col("phase") == "checkpoint").height / len(starts)
        assert lengths == kind.checkpoint_s / STEP_S


def test_checkpoints_spike_host_memory_and_cpu(default: pl.DataFrame) -> None:
    for metric in ("mem_bytes", "cpu_cores"):
        means = dict(
            series(default, "train-llm-00", metric)
            .group_by("phase")
            .agg(pl.col("value").mean())
            .iter_rows()
        )
        assert means["checkpoint"] > 1.5 * means["training"]


def test_evaluations_never_overlap_checkpoints(default: pl.DataFrame) -> None:
    kind = KIND["llm"]
    util = series(default, "train-llm-00", "gpu_util_pct")
    starts = run_starts(util, "evaluation")
    assert len(starts) == N * STEP_S // kind.eval_every_s
    lengths = util.filter(pl.col("phase") == "evaluation").height / len(starts)
    assert lengths == kind.eval_s / STEP_S


def test_stall_leaves_a_gap_after_a_starved_loader(default: pl.DataFrame) -> None:
    kind = KIND["recsys"]
    assert kind.stall_at is not None
    util = series(default, "train-recsys-02", "gpu_util_pct")
    steps = util["ts"].diff().dt.total_seconds()
    gaps = util.filter(steps > 2 * STEP_S)
    assert gaps.height == 1
    begin = START + timedelta(seconds=round(kind.stall_at * N) * STEP_S)
    assert gaps["ts"][0] == begin + timedelta(seconds=kind.stall_s)
    assert util.height == N - kind.stall_s / STEP_S
    before = util.filter(pl.col("ts") < begin).tail(5)
    assert before["phase"].to_list() == ["data_loading"] * 5
    assert before["value"].mean() < 10


def test_preempted_job_stops_early(default: pl.DataFrame) -> None:
    kind = KIND["vit"]
    assert kind.preempt_at is not None
    ends = dict(default.group_by("workload").agg(pl.col("ts").max()).iter_rows())
    last = START + timedelta(seconds=(N - 1) * STEP_S)
    assert ends.pop("train-vit-01") == START + timedelta(
        seconds=(round(kind.preempt_at * N) - 1) * STEP_S
    )
    assert set(ends.values()) == {last}


def test_inference_qps_repeats_daily() -> None:
    frame = generate_telemetry(n_training=0, n_inference=3, duration="4d", seed=3)
    for workload in frame["workload"].unique():
        qps = series(frame, workload, "qps")["value"].to_numpy()
        spectrum = np.abs(np.fft.rfft(qps - qps.mean()))
        k = int(np.argmax(spectrum[1:])) + 1
        assert qps.size * STEP_S / k == 86400, workload


def test_idle_overnight_service(default: pl.DataFrame) -> None:
    util = series(default, "infer-assist-02", "gpu_util_pct")
    idle = util["value"] <= 1.0
    assert idle.mean() > 0.5
    night = util.filter(pl.col("ts").dt.hour().is_between(12, 23))
    assert (night["value"] == 0).all()
    chat = series(default, "infer-chat-00", "gpu_util_pct")
    assert (chat["value"] <= 1.0).mean() == 0  # always-on services never idle


def test_peak_to_trough_ratio_is_realistic() -> None:
    frame = generate_telemetry(n_training=0, n_inference=2, duration="6d")
    for workload, (low, high) in (("infer-chat-00", (2.5, 6)), ("infer-embed-01", (1.5, 3))):
        qps = (
            series(frame, workload, "qps")
            .group_by(pl.col("ts").dt.hour())
            .agg(pl.col("value").median())["value"]
        )
        assert low < qps.max() / qps.min() < high, workload


def test_weekends_are_quieter() -> None:
    frame = generate_telemetry(n_training=0, n_inference=3, duration="14d", step="5m")
    weekend = pl.col("ts").dt.weekday() >= 6
    for workload in ("infer-chat-00", "infer-assist-02"):
        qps = series(frame, workload, "qps")
        assert qps.filter(weekend)["value"].mean() < qps.filter(~weekend)["value"].mean()
    assert (series(frame, "infer-assist-02", "qps").filter(weekend)["value"] == 0).all()


def test_service_metrics_track_load(default: pl.DataFrame) -> None:
    for workload in ("infer-chat-00", "infer-embed-01", "infer-assist-02"):
        wide = (
            default.filter(pl.col("workload") == workload)
            .pivot("metric", index="ts", values="value")
            .sort("qps")
        )
        assert wide.select(pl.corr("qps", "gpu_util_pct")).item() > 0.8
        quiet, busy = wide.head(wide.height // 10), wide.tail(wide.height // 10)
        for metric in ("gpu_util_pct", "latency_s", "gpu_mem_bytes", "cpu_cores"):
            assert busy[metric].mean() > quiet[metric].mean(), (workload, metric)
        assert busy["latency_s"].max() > 3 * wide["latency_s"].min()


def test_row_count_scales_with_duration_and_step(default: pl.DataFrame) -> None:
    metrics = 4 * 1 + 6 * 3  # one full training job, three services
    for duration, step, n in (("2d", "1m", N), ("4d", "1m", 2 * N), ("2d", "30s", 2 * N)):
        frame = generate_telemetry(n_training=1, duration=duration, step=step)
        assert frame.height == metrics * n
    vit, recsys = KIND["vit"], KIND["recsys"]
    assert vit.preempt_at is not None
    kept = N + round(vit.preempt_at * N) + (N - recsys.stall_s / STEP_S)
    assert default.height == 4 * kept + 6 * 3 * N == 81_672


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": -1}, "'seed' parameter"),
        ({"n_training": -1}, "'n_training' parameter"),
        ({"n_training": 0, "n_inference": 0}, "nothing to generate"),
        ({"duration": "1h", "step": "2h"}, "'step' parameter"),
        ({"duration": "two days"}, "needs a number and a unit"),
        ({"start": datetime(2026, 1, 5)}, "timezone-aware"),
    ],
)
def test_bad_arguments_raise_input_error(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        generate_telemetry(**kwargs)


def test_every_kind_is_described() -> None:
    described = describe_synthetic()
    assert len(described) == len(TRAINING_KINDS) + len(SERVICE_KINDS)
    assert "checkpoint every 1h for 4m" in described["train-llm"]
