"""Right-sizing on the real GenTD26 memory telemetry: the benchmark protocol, the target
against the VPA-style strategy, and the plan document.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from foresize.core.errors import InputError, InsufficientDataError
from foresize.evaluate.rightsize_panels import Panel, evaluate_panel
from foresize.ingest.sources import ReadOptions, open_telemetry
from foresize.recommend.plan import recommendation_schema, validate_plan
from foresize.recommend.rightsize import (
    backtest_rightsizing,
    histories,
    recommend_rightsizing,
    score_limits,
    split_fleet,
)
from foresize.recommend.strategies import History, make_strategy
from foresize.recommend.strategies.foresize import calibration_rows


@pytest.fixture(scope="module")
def memory(mirror: Path) -> pl.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = open_telemetry(["alibaba-gentd26:memory_util"], ReadOptions(mirror=mirror)).frame
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


@pytest.fixture(scope="module")
def fleet(memory: pl.DataFrame) -> dict[str, History]:
    return histories(memory, "mem_util_pct")


def test_protocol_keeps_165_containers_and_vpa_matches_reference(
    fleet: dict[str, History],
) -> None:
    train, test = split_fleet(fleet)
    assert len(train) == len(test) == 165
    vpa = backtest_rightsizing(fleet, make_strategy("vpa"), metric="mem_util_pct", risk=0.01)
    assert vpa.n_violated == 17
    assert vpa.reserved_over_oracle == pytest.approx(1.20, abs=0.01)
    oracle = backtest_rightsizing(fleet, None, metric="mem_util_pct", risk=0.01)
    assert oracle.reserved_over_oracle == 1.0
    assert oracle.n_violated == 0
    assert oracle.slack == pytest.approx(0.081, abs=0.002)


def test_foresize_dominates_vpa_and_meets_the_frontier_on_memory(
    fleet: dict[str, History],
) -> None:
    result = evaluate_panel(Panel("pod_memory_util", "mem_util_pct", fleet, "GenTD26"))
    vpa = result.vpa
    assert (vpa.n_violated, round(vpa.slack, 3)) == (17, 0.236)
    # the default (risk 0.05) reserves less than VPA and violates fewer containers
    assert result.default.slack < vpa.slack
    assert result.default.n_violated <= vpa.n_violated
    # at VPA's count of violated containers, at least 30 % less slack
    assert result.frontier_ratio() <= 0.7
    # lower risk costs reserve and buys fewer violated containers
    loose, tight = result.sweep[0.1], result.sweep[0.01]
    assert loose.reserved_over_oracle < tight.reserved_over_oracle
    assert loose.n_violated >= tight.n_violated


def test_limits_never_read_the_judged_period(fleet: dict[str, History]) -> None:
    train, test = split_fleet(fleet)
    strategy = make_strategy("foresize")
    limits = strategy(train, metric="mem_util_pct", risk=0.01, horizon_frac=0.3)
    assert calibration_rows(train, horizon_frac=0.3).n_rows == 165
    # the judged period is no input: a wild future changes the score, never the limits
    wild = {w: v * 10 for w, v in test.items()}
    assert score_limits("a", {w: s.enforced for w, s in limits.items()}, wild).n_violated == 165
    again = strategy(train, metric="mem_util_pct", risk=0.01, horizon_frac=0.3)
    assert {w: s.enforced for w, s in again.items()} == {
        w: s.enforced for w, s in limits.items()
    }
    # a history's own last point is part of what it is calibrated on
    first = next(iter(train))
    spoiled = dict(train)
    spoiled[first] = History(first, np.r_[train[first].values[:-1], 1e6], train[first].ts_s)
    moved = calibration_rows(spoiled, horizon_frac=0.3).future_peak.max()
    assert moved == 1e6 > calibration_rows(train, horizon_frac=0.3).future_peak.max()


def test_recommendations_and_plan_schema(memory: pl.DataFrame) -> None:
    result = recommend_rightsizing(memory, strategy="foresize")
    assert result.metric == "mem_util_pct"
    assert result.risk == 0.05
    ok = [r for r in result.recommendations if r.status == "ok"]
    missing = [r for r in result.recommendations if r.status != "ok"]
    assert len(ok) == 166
    assert len(result.recommendations) == 207
    assert all(r.recommended.request is None for r in missing)
    assert "required" in missing[0].reasons[0].message
    for rec in ok:
        assert rec.recommended.limit is not None
        assert rec.method.base is not None
        assert rec.recommended.limit >= rec.method.base
        assert rec.evidence.calibration["calibration_rows"] == 166
    assert any(r.phases for r in ok)
    for rec in ok:
        for phase in rec.phases:
            assert phase.request <= rec.recommended.request + 1e-9
    document = {
        "foresize_version": "0",
        "generated_at": "2026-01-01T00:00:00Z",
        "recommendations": [r.model_dump(mode="json") for r in result.recommendations],
    }
    assert validate_plan(document).schema_version == "1.3"
    schema = recommendation_schema()
    assert "recommendations" in schema["required"]
    assert schema["properties"]["schema_version"]["enum"] == ["1.1", "1.2", "1.3"]


def test_floor_is_never_undercut(memory: pl.DataFrame) -> None:
    result = recommend_rightsizing(memory, strategy="foresize", floor=99.0, include_phases=False)
    ok = [r for r in result.recommendations if r.status == "ok"]
    assert min(r.recommended.request or 0.0 for r in ok) >= 99.0
    assert all("floor" in r.rationale for r in ok if r.recommended.limit == 99.0)
    assert any("floor" in r.rationale for r in ok)
    vpa = recommend_rightsizing(memory, strategy="vpa", floor=99.0, include_phases=False)
    assert (
        min(r.recommended.request or 0.0 for r in vpa.recommendations if r.status == "ok") >= 99.0
    )


def test_ceiling_caps_only_what_exceeds_the_hardware(memory: pl.DataFrame) -> None:
    free = recommend_rightsizing(memory, include_phases=False)
    ok = [r for r in free.recommendations if r.status == "ok"]
    high, low = ok[0], ok[1]
    cap = (high.recommended.limit or 0.0) * 0.5
    roomy = (low.recommended.limit or 0.0) * 2.0
    capped = recommend_rightsizing(
        memory, include_phases=False, ceiling={high.workload: cap, low.workload: roomy}
    )
    by = {r.workload: r for r in capped.recommendations}
    assert by[high.workload].recommended.limit == pytest.approx(cap)
    assert by[high.workload].recommended.request <= cap
    assert "capped at the hardware" in by[high.workload].rationale
    assert by[low.workload].recommended.limit == low.recommended.limit
    assert "capped" not in by[low.workload].rationale


def test_single_workload_gets_a_measured_margin(memory: pl.DataFrame) -> None:
    one = memory.filter(pl.col("workload") == memory["workload"][0])
    result = recommend_rightsizing(one, include_phases=False)
    rec = result.recommendations[0]
    assert rec.status == "ok"
    assert rec.evidence.calibration["calibration_rows"] == 4  # four splits of one history


def test_bad_input(memory: pl.DataFrame) -> None:
    with pytest.raises(InputError, match=r"risk must be in \(0, 0.5\]"):
        recommend_rightsizing(memory, risk=0.6)
    with pytest.raises(InputError, match="'cpu_cores' never appears"):
        recommend_rightsizing(memory, metric="cpu_cores")
    with pytest.raises(InsufficientDataError, match="needs at least 5000"):
        recommend_rightsizing(memory, min_points=5000)
    with pytest.raises(InsufficientDataError, match="no telemetry rows"):
        recommend_rightsizing(memory.head(0))
    with pytest.raises(InputError, match="horizon must be positive"):
        recommend_rightsizing(memory, horizon_s=-1.0)
    with pytest.raises(ValueError, match="unknown strategy"):
        recommend_rightsizing(memory, strategy="nope")


def test_cpu_requests_a_usage_quantile_and_keeps_the_peak_limit() -> None:
    # GenTD26 has no CPU series: the project's synthetic fleet stands in
    from foresize.ingest.synthetic import generate_telemetry

    telemetry = generate_telemetry(seed=1, duration="2d", step="5m")
    cpu = recommend_rightsizing(telemetry, metric="cpu_cores", include_phases=False)
    mem = recommend_rightsizing(telemetry, metric="mem_bytes", include_phases=False)
    for rec in cpu.recommendations:
        usage = telemetry.filter(
            (pl.col("workload") == rec.workload) & (pl.col("metric") == "cpu_cores")
        )["value"].to_numpy()
        assert rec.recommended.request == pytest.approx(np.quantile(usage, 0.95))
        assert rec.recommended.limit >= usage.max()
        assert rec.rationale.startswith("request P95 of usage")
    assert all(r.recommended.request == r.recommended.limit for r in mem.recommendations)


def test_no_strategy_asks_for_more_than_all_of_a_percentage(memory: pl.DataFrame) -> None:
    for strategy in ("vpa", "krr", "max", "foresize"):
        result = recommend_rightsizing(memory, strategy=strategy, include_phases=False)
        ok = [r for r in result.recommendations if r.status == "ok"]
        assert max(r.recommended.request or 0.0 for r in ok) <= 100.0
        assert max(r.recommended.limit or 0.0 for r in ok) <= 100.0
    vpa = recommend_rightsizing(memory, strategy="vpa", include_phases=False)
    assert any("capped at 100 %" in r.rationale for r in vpa.recommendations)
