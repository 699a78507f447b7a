"""The foresize strategy's risk means what it says, and odd histories get sane limits.

Calibration is checked on a constructed step-like fleet (``step_fleet``) whose future
peaks are known and whose changes arrive uniformly in time: the real step-like GPU
memory panel is not in the mirror. Idle, constant and all-zero fleets are constructed
too, since they are edge cases a real panel holds only a few of.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from foresize.core.errors import UsageError
from foresize.evaluate.rightsize_panels import (
    Panel,
    PanelResult,
    evaluate_panel,
    peak_bound,
    request_view,
    step_fleet,
)
from foresize.recommend.rightsize import (
    backtest_rightsizing,
    histories,
    recommend_rightsizing,
)
from foresize.recommend.strategies import History, make_strategy
from foresize.recommend.strategies.foresize import (
    DEFAULT_MAX_CHANCE,
    RiskCurve,
    calibrate,
    conformal_quantile,
)


@pytest.fixture(scope="module")
def steps() -> Panel:
    return Panel("steps", "gpu_mem_bytes", {**step_fleet(seed=0), **step_fleet(seed=1)}, "test")


@pytest.fixture(scope="module")
def on_steps(steps: Panel) -> PanelResult:
    """The default strategy's risk sweep and the references on the step fleet, once."""
    return evaluate_panel(steps)


def test_conformal_quantile_known_answers() -> None:
    scores = np.arange(1.0, 100.0)  # 99 rows
    assert conformal_quantile(scores, 0.1) == (90.0, True)  # ceil(100 * 0.9) = 90th
    assert conformal_quantile(scores, 0.01) == (99.0, True)
    assert conformal_quantile(scores[:5], 0.01) == (5.0, False)  # cannot resolve 1 %
    assert conformal_quantile(np.array([]), 0.1) == (0.0, False)


def test_risk_curve_known_answers() -> None:
    # 99 rows: 89 never grew, 10 grew by 1..10 spreads
    scores = np.r_[np.zeros(89), np.arange(1.0, 11.0)]
    curve = RiskCurve.fit(scores, np.ones(99), 0.05, max_chance=0.1)
    # S(m) = (#{s > m} + 1) / 100, kept on its lower convex hull and cut at 10 %
    assert curve.chances.max() <= 0.1
    for m, chance in zip(curve.margins, curve.chances, strict=True):
        assert chance == pytest.approx(((scores > m).sum() + 1) / 100)
    slopes = np.diff(curve.chances) / np.diff(curve.margins)
    assert (np.diff(slopes) >= -1e-12).all()  # convex: each step buys less
    # equal costs: everyone gets one margin, whose chance is at most 5 %
    (margin,) = set(curve.margin_for(np.ones(99)).tolist())
    assert curve.chance(np.array([margin]))[0] <= 0.05
    # S falls linearly here, so every point of it is on the hull
    assert curve.margins.tolist() == [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10]


def test_replicas_of_one_deployment_get_the_uniform_margin() -> None:
    # equal costs leave nothing to reallocate: the cost allocation must not reserve more
    # than one conformal margin for all, so calibrate keeps the uniform one
    rng = np.random.default_rng(5)
    rows = {}
    for i in range(60):
        values = np.full(300, 10.0)
        if i % 6 == 0:  # a tenth of the replicas step up late, after a flat pseudo-history
            values[int(rng.integers(200, 290)) :] = 10.0 + float(rng.integers(1, 10))
        rows[f"r{i}"] = values
    fleet = _fleet(rows)
    cost = calibrate(fleet, horizon_frac=0.3, risk=0.05, shares=(0.02,))
    uniform = calibrate(fleet, horizon_frac=0.3, risk=0.05, shares=(0.02,), allocation="uniform")
    assert cost.curve is None
    assert cost.margin == uniform.margin > 0


def test_risk_curve_spends_the_risk_where_covering_costs_most() -> None:
    # growth of 19 rows in 99, spread geometrically: each further spread of margin buys
    # less chance (a convex S), as a fleet's heavy tail does
    scores = np.r_[np.zeros(80), np.geomspace(1, 1000, 19)]
    cost = np.r_[np.full(50, 1.0), np.full(49, 30.0)]  # half the rows cost 30 x to cover
    curve = RiskCurve.fit(scores, cost, 0.05, max_chance=0.1)
    margins = curve.margin_for(cost)
    cheap, dear = margins[0], margins[-1]
    assert cheap > dear  # the dear workloads take the risk
    chance = curve.chance(margins)
    assert chance.mean() <= 0.05  # the fleet's expected share exceeded
    assert chance.max() <= 0.1  # and no workload above the ceiling asked for
    # and it reserves less than one margin for all at the same expected share
    uniform = conformal_quantile(scores, 0.05)[0]
    assert (cost * margins).sum() < (cost * uniform).sum()
    # a higher price never buys a larger chance
    richer = curve.margin_for(cost, curve.price * 4)
    assert (richer >= margins).all()
    # priced for other workloads, their chances average the risk
    others = np.r_[np.full(10, 1.0), np.full(90, 30.0)]
    assert curve.chance(curve.priced(others, 0.05).margin_for(others)).mean() <= 0.05


def test_cost_allocation_beats_one_margin_for_all_on_a_step_fleet(
    steps: Panel, on_steps: PanelResult
) -> None:
    # the constructed step-like fleet: a uniform margin wide enough for the rare jump is
    # paid by every flat workload; spending the risk by cost meets the frontier target
    cost = on_steps
    assert cost.variant == "length/share=0.02/cost"  # the default
    uniform = evaluate_panel(steps, "length/share=0.02/uniform", references=cost.references)
    assert cost.frontier_ratio() <= 0.7 < uniform.frontier_ratio()
    assert cost.dominates()
    sizings = make_strategy("foresize")(
        dict(list(steps.fleet.items())[:400]),
        metric="gpu_mem_bytes", risk=0.05, horizon_frac=0.3,
    )  # fmt: skip
    chances = [s.details["chance"] for s in sizings.values()]
    assert max(chances) <= DEFAULT_MAX_CHANCE
    assert np.mean(chances) <= 0.05  # the chances the rationales state average the risk
    assert min(chances) < 0.05 < max(chances)  # and are spent unevenly
    assert all("chance of exceeding" in s.rationale for s in sizings.values())


def test_peak_bound_lets_go_the_costliest_growth() -> None:
    # history (first 140 of 200 points) then the judged future (last 60)
    def flat(name: str, before: float, after: float) -> History:
        values = np.array([before] * 140 + [after] * 60)
        return History(name, values, np.arange(200.0))

    fleet = {
        "grows-a-lot": flat("grows-a-lot", 1.0, 5.0),  # keeping it whole costs 4 x 60
        "grows-a-bit": flat("grows-a-bit", 2.0, 3.0),  # 1 x 60
        "shrinks": flat("shrinks", 4.0, 1.0),  # its history peak, 4, is kept
    }
    used = (5 + 3 + 1) * 60
    whole = (5 + 3 + 4) * 60
    assert peak_bound(fleet, 0) == pytest.approx((whole - used) / whole)
    one = (1 + 3 + 4) * 60  # the big grower let go at its history peak
    assert peak_bound(fleet, 1) == pytest.approx((one - used) / one)
    two = (1 + 2 + 4) * 60
    assert peak_bound(fleet, 2) == pytest.approx((two - used) / two)


def test_bound_ratio_is_never_above_the_frontier_ratio(on_steps: PanelResult) -> None:
    # the foresize strategy keeps every limit at or above the history peak, so its
    # least slack at VPA's count can never beat the hindsight bound of that class
    result = on_steps
    assert result.bound_ratio() <= result.frontier_ratio()
    assert 0 < result.bound_ratio() < 1


def test_request_view_judges_requests_by_time_above() -> None:
    # stationary CPU usage (i.i.d. samples): a request at the history's 1 - r quantile
    # leaves about r of the judged samples above it; constructed, since a real panel's
    # drift would blur the known answer
    rng = np.random.default_rng(3)
    fleet = {
        f"w{i}": History(f"w{i}", rng.uniform(0.5, 1.5, 1000), np.arange(1000.0) * 60)
        for i in range(40)
    }
    view = request_view(Panel("iid", "cpu_cores", fleet, "test"))
    rows = {r["strategy"]: r for r in view.iter_rows(named=True)}
    assert set(rows) >= {"foresize r=0.1", "vpa", "krr"}
    for risk in (0.02, 0.05, 0.1):
        assert risk / 2 <= rows[f"foresize r={risk:g}"]["time_above"] <= 2 * risk
    # a lower risk requests more, so less time above and more left idle
    assert rows["foresize r=0.01"]["idle_share"] > rows["foresize r=0.1"]["idle_share"]
    assert rows["krr"]["time_above"] == pytest.approx(rows["foresize r=0.05"]["time_above"])


@pytest.mark.parametrize("risk", [0.01, 0.02, 0.05, 0.1])
def test_share_of_workloads_exceeded_matches_the_risk(on_steps: PanelResult, risk: float) -> None:
    result = on_steps
    score = result.sweep[risk]
    assert score.n_workloads == 800
    assert risk / 2 <= score.n_violated / score.n_workloads <= 2 * risk


def test_a_ceiling_per_workload_costs_reserve_at_a_low_risk(steps: Panel) -> None:
    # every workload at most 2 x 1 %: each must cover the step jumps (a few % of the
    # fleet's windows hold one), so none of 800 is exceeded, out of the band, for far more
    # reserve than the default's, which lets the costliest workloads take more of the risk
    fleet, metric = steps.fleet, steps.metric
    even = backtest_rightsizing(fleet, make_strategy("foresize", max_chance=0.02),
                                metric=metric, risk=0.01)
    default = backtest_rightsizing(fleet, make_strategy("foresize"), metric=metric, risk=0.01)
    assert even.n_violated < 0.005 * 800 <= default.n_violated <= 0.02 * 800
    assert default.reserved_over_oracle < 0.5 * even.reserved_over_oracle


@pytest.mark.parametrize("bad", [0.0, -0.1, 0.6, float("nan")])
def test_max_chance_out_of_range_is_a_usage_error(bad: float) -> None:
    with pytest.raises(UsageError, match="--max-chance must be in"):
        make_strategy("foresize", max_chance=bad)


def test_risk_orders_reserve_and_violations(on_steps: PanelResult) -> None:
    result = on_steps
    ordered = [result.sweep[r] for r in sorted(result.sweep)]
    reserved = [s.reserved_over_oracle for s in ordered]
    violated = [s.n_violated for s in ordered]
    assert reserved == sorted(reserved, reverse=True)
    assert violated == sorted(violated)


def _fleet(rows: dict[str, np.ndarray]) -> dict[str, History]:
    return {w: History(w, v.astype(np.float64), np.arange(v.size) * 60.0) for w, v in rows.items()}


def test_constant_fleet_gets_its_level_exactly() -> None:
    fleet = _fleet({f"c{i}": np.full(300, 1e9 * (i + 1)) for i in range(40)})
    sized = make_strategy("foresize")(fleet, metric="mem_bytes", risk=0.01, horizon_frac=0.3)
    for name, sizing in sized.items():
        assert sizing.limit == pytest.approx(fleet[name].values[0])
        assert sizing.request == sizing.limit


def test_step_history_limit_covers_its_peak_with_a_margin() -> None:
    rng = np.random.default_rng(3)
    rows = {f"flat{i}": np.full(400, 8e9) for i in range(30)}
    for i in range(10):  # flat, then a jump at a random time
        at = int(rng.integers(50, 400))
        rows[f"jump{i}"] = np.r_[np.full(at, 8e9), np.full(400 - at, 16e9)]
    sized = make_strategy("foresize")(
        _fleet(rows), metric="gpu_mem_bytes", risk=0.05, horizon_frac=0.3
    )
    for name, sizing in sized.items():
        assert sizing.limit >= rows[name].max()
    # jumps were seen in the fleet, so flat histories get room for one
    assert sized["flat0"].limit > 8e9
    assert "calibration rows" in sized["flat0"].rationale


def test_idle_histories_get_what_idle_peers_reached_and_the_pod_minimum() -> None:
    rows = {f"busy{i}": 20 + 10 * np.sin(np.arange(300) / (5 + i)) for i in range(35)}
    rows |= {f"idle{i}": np.zeros(300) for i in range(4)}
    rows["wakes"] = np.r_[np.zeros(250), np.full(50, 7.0)]
    sized = make_strategy("foresize")(
        _fleet(rows), metric="gpu_util_pct", risk=0.05, horizon_frac=0.3
    )
    # five idle pseudo-histories, one woke to 7 %: too few rows to resolve 5 %, so the
    # most an idle peer reached
    assert sized["idle0"].limit == pytest.approx(7.0)
    assert sized["idle0"].request <= sized["idle0"].limit
    assert "idle history" in sized["idle0"].rationale
    del rows["wakes"]
    asleep = make_strategy("foresize")(
        _fleet(rows), metric="gpu_util_pct", risk=0.05, horizon_frac=0.3
    )
    assert asleep["idle0"].limit == pytest.approx(2.5)  # the pod minimum
    zero = make_strategy("foresize")(
        _fleet({f"z{i}": np.zeros(200) for i in range(3)}),
        metric="mem_bytes",
        risk=0.01,
        horizon_frac=0.3,
    )
    assert all(s.limit == pytest.approx(250 * 1024**2) for s in zero.values())


def test_utilisation_never_above_100_percent(mirror) -> None:  # type: ignore[no-untyped-def]
    from foresize.evaluate.common import read_table

    duty = read_table("alibaba-gentd26:gpu_duty_cycle", mirror=mirror)
    for risk in (0.01, 0.05, 0.2):
        result = recommend_rightsizing(duty, risk=risk, include_phases=False)
        limits = [r.recommended.limit for r in result.recommendations if r.status == "ok"]
        assert len(limits) == 129
        assert max(limits) <= 100.0
        assert min(limits) > 0.0
    wild = pl.DataFrame(
        {
            "workload": ["w"] * 200,
            "metric": ["gpu_util_pct"] * 200,
            "ts": pl.datetime_range(
                pl.datetime(2026, 1, 1, time_zone="UTC"),
                pl.datetime(2026, 1, 1, 3, 19, time_zone="UTC"),
                "1m",
                eager=True,
            ),
            "value": np.r_[np.full(150, 0.01), np.full(50, 99.0)],
        }
    )
    rec = recommend_rightsizing(wild, include_phases=False).recommendations[0]
    assert rec.recommended.limit is not None
    assert rec.recommended.limit <= 100.0
    assert "too few to resolve" in rec.rationale  # one workload cannot resolve 5 %


def test_single_fleet_history_is_judged_by_the_same_frame(mirror) -> None:  # type: ignore[no-untyped-def]
    from foresize.evaluate.common import read_table

    memory = read_table("alibaba-gentd26:memory_util", mirror=mirror)
    fleet = histories(memory, "mem_util_pct")
    sized = make_strategy("foresize")(
        {w: h for w, h in fleet.items() if h.n_points >= 100},
        metric="mem_util_pct",
        risk=0.01,
        horizon_frac=0.3,
    )
    assert all(s.limit <= 100.0 for s in sized.values())
    assert all(s.limit >= fleet[w].values.max() for w, s in sized.items())
