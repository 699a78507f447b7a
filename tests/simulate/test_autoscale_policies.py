"""Scalers: Kubernetes HPA known answers, the oracle bound, no look-ahead, injections."""

from __future__ import annotations

import numpy as np
import pytest

from foresize.core.errors import InputError, UnknownNameError
from foresize.simulate.replicas.run import ServiceConfig, compare, simulate
from foresize.simulate.replicas.scalers import HPA, ScaleContext, StepView, make_scaler
from foresize.simulate.replicas.service import Sizer
from foresize.simulate.replicas.stress import apply_injections, parse_injection


def hpa(target: float = 0.8, step_s: float = 15.0) -> HPA:
    scaler = HPA(target=target)
    scaler.start(ScaleContext(Sizer(1.0), 0, step_s, np.ones(3)))
    return scaler


def view(t: int, demand: float, ready: int, starting: int = 0) -> StepView:
    seen = np.array([demand])
    return StepView(t, seen, seen, ready, starting)


def test_hpa_formula_and_tolerance() -> None:
    # 12 busy over 10 ready at target 0.8: ratio 1.5 -> ceil(1.5 x 10) = 15
    assert hpa().desired(view(1, 12.0, 10)) == 15
    # ratio 0.85 / 0.8 = 1.0625 is within the 0.1 tolerance: no change
    assert hpa().desired(view(1, 8.5, 10)) == 10
    # just outside the tolerance: 8.9 / 10 / 0.8 = 1.1125 -> ceil(11.125) = 12
    assert hpa().desired(view(1, 8.9, 10)) == 12


def test_hpa_starting_pods_count_as_idle_on_scale_up() -> None:
    # 10 ready + 5 starting, 12 busy: ready-only ratio 1.5 says up, but over all 15
    # pods 12 / 15 / 0.8 = 1.0 is within tolerance -> keep 15 (no double request)
    assert hpa().desired(view(1, 12.0, 10, starting=5)) == 15


def test_hpa_scale_up_rate_limit() -> None:
    # 2 pods, demand for 125: one 15 s sync may add max(100 %, 4 pods) -> 6
    assert hpa().desired(view(1, 100.0, 2)) == 6
    # a 60 s step runs 4 syncs; starting pods stay idle so the target stays 125,
    # each sync may double or add 4: 2 -> 6 -> 12 -> 24 -> 48
    assert hpa(step_s=60.0).desired(view(1, 100.0, 2)) == 48


def test_hpa_scale_down_stabilisation_keeps_max_of_300s() -> None:
    scaler = hpa()
    assert scaler.desired(view(0, 16.0, 10)) == 20
    seen = []
    for t in range(1, 25):  # demand drops to 4 -> raw recommendation 5
        seen.append(scaler.desired(view(t, 4.0, 20)))
    # recommendations within (now - 300 s, now] include the 20 made at t = 0 until
    # t = 20 (300 s later), then the scale-down (limit -100 % per 15 s) goes to 5
    assert seen[:19] == [20] * 19
    assert seen[19:] == [5] * 5


def test_oracle_lower_bounds_every_policy_without_unserved_demand() -> None:
    rng = np.random.default_rng(3)
    demand = np.clip(np.cumsum(rng.normal(0, 1.5, 400)) + 10 + rng.poisson(2, 400), 0, None)
    for startup in (0, 2, 4):
        config = ServiceConfig(capacity=2.0, startup=startup)
        rows = compare(
            demand,
            ["static", "hpa", "predictive", "hybrid", "oracle"],
            config,
            settings={"predictive": {"refit_every": 50}, "hybrid": {"refit_every": 50}},
        ).rows
        by = {r["policy"]: r for r in rows}
        assert by["oracle"]["unserved_frac"] == 0.0
        assert by["oracle_nodelay"]["replica_hours"] <= by["oracle"]["replica_hours"]
        for row in rows:
            if row["unserved_frac"] == 0.0:
                assert (
                    row["replica_hours"] >= by["oracle"]["replica_hours"] - 1e-9
                    or row["policy"] == "oracle_nodelay"
                )
        assert by["static"]["unserved_frac"] == 0.0
        assert by["static"]["replica_hours"] >= by["oracle"]["replica_hours"]
        hpa_low = compare(demand, ["hpa"], config, settings={"hpa": {"target": 0.3}}).rows[0]
        if hpa_low["unserved_frac"] == 0.0:
            assert hpa_low["replica_hours"] >= by["oracle"]["replica_hours"]


def test_startup_delay_and_drain_are_billed() -> None:
    demand = np.array([1.0] * 5 + [10.0] * 10 + [1.0] * 10)
    plain = simulate(demand, make_scaler("oracle"), ServiceConfig(capacity=1.0, startup=0))
    slow = simulate(demand, make_scaler("oracle"), ServiceConfig(capacity=1.0, startup=3))
    drained = simulate(
        demand, make_scaler("oracle"), ServiceConfig(capacity=1.0, startup=3, drain=2)
    )
    assert plain.billed.tolist() == [1] * 5 + [10] * 10 + [1] * 10
    assert (slow.ready >= np.minimum(demand, 10)).all()  # ready in time
    assert slow.billed.sum() == plain.billed.sum() + 3 * 9  # 9 replicas start 3 steps early
    assert drained.billed.sum() == slow.billed.sum() + 2 * 9
    assert drained.draining.max() == 9


def test_predictive_has_no_look_ahead() -> None:
    rng = np.random.default_rng(0)
    demand = rng.poisson(5, 300).astype(float)
    altered = demand.copy()
    altered[200:] *= 4
    config = ServiceConfig(capacity=1.0, startup=2)
    for name in ("hpa", "predictive", "hybrid"):
        a = simulate(demand, make_scaler(name), config)
        b = simulate(altered, make_scaler(name), config)
        assert (a.desired[:201] == b.desired[:201]).all(), name  # decides at t from [:t]


def test_unknown_policy_suggests() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'hpa'"):
        make_scaler("hpaa")
    with pytest.raises(UnknownNameError, match="forecaster"):
        make_scaler("predictive", forecaster="prophet")


def test_injections_parse_and_apply() -> None:
    spike = parse_injection("spike:3x:10m@12h")
    assert (spike.kind, spike.factor, spike.start_s, spike.duration_s) == (
        "spike",
        3.0,
        43_200.0,
        600.0,
    )
    shift = parse_injection("shift:+50%@6h")
    assert (shift.kind, shift.factor) == ("shift", 1.5)
    assert parse_injection("shift:-20%@1h").factor == pytest.approx(0.8)
    demand = np.ones(24 * 60)
    out, visible, factor = apply_injections(
        demand, 60.0, [spike, parse_injection("blackout:2h@10h")]
    )
    assert out[720:730].tolist() == [3.0] * 10
    assert out.sum() == demand.sum() + 20
    assert (factor == out).all()
    assert (visible[600:720] == 600).all()
    assert visible[599] == 599
    assert visible[720] == 720
    shifted, _, _ = apply_injections(demand, 60.0, [shift])
    assert shifted[359] == 1.0
    assert (shifted[360:] == 1.5).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("spike:3:10m@12h", "is not an injection"),
        ("spike:3x:10@12h", "is not a duration"),
        ("spike:0x:10m@1h", "must be > 0"),
        ("shift:50@6h", "is not an injection"),
        ("burst:2h@1h", "is not an injection"),
    ],
)
def test_bad_injections(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_injection(text)


def test_injection_outside_the_series() -> None:
    with pytest.raises(InputError, match="starts after the series ends"):
        apply_injections(np.ones(60), 60.0, [parse_injection("spike:2x:5m@2h")])


def test_need_quantiles_learn_the_conditional_distribution() -> None:
    # demand alternates 0 and 4 every step: the state after a 0 always sees 4 one
    # step later, so once learnt the quantile is exact, and no label is used early
    from foresize.simulate.replicas.quantile import NeedQuantiles

    y = np.tile([0.0, 4.0], 400)
    model = NeedQuantiles(Sizer(1.0, min_replicas=0), horizon=1, level=0.95, min_count=5)
    asked = [model.quantile(y[:t]) for t in range(1, y.size)]
    # asked[i] comes from history y[:i + 1] and is for step i + 1
    assert asked[-2:] == [0, 4]
    assert all(a == y[i + 1] for i, a in enumerate(asked) if i > 100)
    # two steps ahead the same state always sees its own value again
    model = NeedQuantiles(Sizer(1.0, min_replicas=0), horizon=2, level=0.95, min_count=5)
    asked = [model.quantile(y[:t]) for t in range(1, y.size - 1)]
    assert all(a == y[i + 2] for i, a in enumerate(asked) if i > 100)


def test_slo_feedback_tracks_the_unserved_target() -> None:
    rng = np.random.default_rng(7)
    demand = rng.poisson(3.0, 4000).astype(float)
    config = ServiceConfig(capacity=1.0, startup=2)
    shares = {}
    for target in (0.01, 0.08):
        run = simulate(demand, make_scaler("predictive", slo_unserved=target, gamma=0.05), config)
        shares[target] = float((demand - run.served).sum() / demand.sum())
    assert shares[0.01] < 0.02
    assert 0.04 < shares[0.08] < 0.12
    assert shares[0.01] < shares[0.08]


def test_predictive_hold_defaults_to_startup() -> None:
    # a single burst: the replicas asked for stay at least `startup` steps
    demand = np.array([0.0] * 300 + [6.0] + [0.0] * 20)
    scaler = make_scaler("predictive", level=0.5)
    run = simulate(demand, scaler, ServiceConfig(capacity=1.0, startup=3))
    after = run.desired[301:306].tolist()
    assert after[:4] == [after[0]] * 4  # held for startup + 1 decisions
    assert run.desired[-1] == 1


def test_hybrid_falls_back_under_a_spike() -> None:
    rng = np.random.default_rng(1)
    demand = rng.poisson(2.0, 1500).astype(float)
    spiked, _, _ = apply_injections(demand, 60.0, [parse_injection("spike:4x:20m@20h")])
    config = ServiceConfig(capacity=1.0, startup=2)
    hybrid = make_scaler("hybrid")
    run = simulate(spiked, hybrid, config)
    assert run.notes["fallbacks"] >= 1
    pred = simulate(spiked, make_scaler("predictive"), config)
    window = slice(1200, 1225)
    assert run.served[window].sum() >= pred.served[window].sum()


def test_bad_predictive_settings() -> None:
    with pytest.raises(InputError, match="level must be a quantile"):
        make_scaler("predictive", level=0.3)
    with pytest.raises(InputError, match="slo-unserved"):
        simulate(np.ones(20), make_scaler("predictive", slo_unserved=1.5), ServiceConfig(1.0))
