"""The serving engine and its replica model, on the real Azure LLM traces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from foresize.core.errors import InputError
from foresize.graph.hf_config import read_hf_config
from foresize.ingest.requests import read_request_source, replay
from foresize.simulate.serve.engine import ServeEngine, Trace
from foresize.simulate.serve.policies import KPA, PolicyContext, Static
from foresize.simulate.serve.replica import ReplicaModel, ReplicaSpec, build_replica
from foresize.simulate.serve.study import Slo, attained, check_slo_floor, trace_from_frame

REFERENCE = Path(__file__).resolve().parents[2] / "src/foresize/graph/reference"


def _model(name: str = "llama-2-7b", **spec: object) -> ReplicaModel:
    return build_replica(read_hf_config(REFERENCE / f"{name}.json"),
                         ReplicaSpec(**spec),  # type: ignore[arg-type]
                         model=name)


@pytest.fixture(scope="module")
def code_trace(mirror: Path) -> Trace:
    frame, _ = read_request_source("azure-llm:code", mirror=mirror)
    return trace_from_frame(replay(frame, rate_scale=4.0)[0])


def test_replica_model_of_llama_2_7b_on_h100_has_the_known_sizes() -> None:
    m = _model(device="h100")
    assert m.weight_bytes == 2 * 6_738_415_616
    assert m.kv_bytes_per_token == 2 * 32 * 32 * 128 * 2  # K and V, 32 layers, 32 heads x 128
    free = 0.9 * 80 * 2**30 - m.weight_bytes - (2048 * (2 * 4096 + 2 * 11008) * 2 + 32000 * 4)
    assert m.kv_capacity_tokens == int(free // m.kv_bytes_per_token)
    assert m.startup_s == pytest.approx(30 + m.weight_bytes / 2e9)
    # a decode step at batch 1 reads every weight once: >= weights / bandwidth
    assert m.decode_step_s(1, 1) > m.weight_bytes / 3.35e12
    tp2 = _model(device="h100", tp=2)
    assert tp2.weight_read_s == pytest.approx(m.weight_read_s / 2)
    assert tp2.kv_capacity_tokens > 2 * m.kv_capacity_tokens


def test_a_model_that_does_not_fit_says_what_would() -> None:
    with pytest.raises(InputError, match="does not fit h100_sxm at TP 1") as info:
        _model("llama-2-70b", device="h100")
    assert "--tp 2" in str(info.value.hint)
    with pytest.raises(InputError, match="does not fit l4") as info:
        _model("llama-2-7b", device="l4", gpu_memory_utilization=0.5)
    assert "--dtype int8" in str(info.value.hint)


def test_one_request_alone_takes_its_prefill_then_one_decode_step_per_token() -> None:
    m = _model(device="h100")
    trace = Trace(np.array([0.0]), np.array([3000]), np.array([50]))
    result = ServeEngine(m, trace).run(Static(1))
    assert result.first_token_s[0] == pytest.approx(m.prefill_s(3000), rel=1e-9)
    steps = sum(m.iteration_s(1, 3000 + j) for j in range(49))
    assert result.finish_s[0] - result.first_token_s[0] == pytest.approx(steps, rel=1e-9)


def test_every_request_is_served_once_in_order_of_its_own_events(code_trace: Trace) -> None:
    result = ServeEngine(_model(device="h100"), code_trace).run(Static(2))
    assert np.isfinite(result.finish_s).all()
    assert (result.first_token_s >= code_trace.arrival_s).all()
    assert (result.finish_s >= result.first_token_s).all()
    single = code_trace.output_tokens == 1
    assert (result.finish_s[single] == result.first_token_s[single]).all()


def test_littles_law_holds_for_requests_in_the_system(code_trace: Trace) -> None:
    result = ServeEngine(_model(device="h100"), code_trace).run(Static(2))
    span = result.ticks["in_flight"].size * result.tick_s
    sojourn = float((result.finish_s - code_trace.arrival_s).sum())
    # L = lambda W: the time-average in the system (sampled each second) vs arrivals x wait
    assert result.ticks["in_flight"].mean() == pytest.approx(sojourn / span, rel=0.05)


def test_more_replicas_never_serve_worse_and_cost_more(code_trace: Trace) -> None:
    model, slo = _model(device="h100"), Slo(2.0, 0.1)
    rows = []
    for n in (1, 2, 4):
        result = ServeEngine(model, code_trace).run(Static(n))
        ttft, _, share = attained(result, code_trace, slo)
        rows.append((result.replica_s, share, float(np.quantile(ttft, 0.99))))
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert rows[0][1] < rows[1][1] <= rows[2][1]
    assert rows[0][2] > rows[1][2] >= rows[2][2]


def test_a_full_kv_cache_preempts_and_recomputes_without_losing_requests(
    code_trace: Trace,
) -> None:
    small = _model(device="h100", gpu_memory_utilization=0.22)
    assert small.kv_capacity_tokens < 20_000
    result = ServeEngine(small, code_trace).run(Static(2))
    assert result.preemptions.sum() > 0
    assert np.isfinite(result.finish_s).all()


def test_a_prompt_larger_than_the_kv_cache_names_the_first_such_request() -> None:
    m = _model(device="h100")
    big = m.kv_capacity_tokens
    trace = Trace(np.arange(4.0), np.array([100, big, 200, big + 5]), np.array([5, 5, 5, 5]))
    with pytest.raises(InputError, match=rf"request 2: {big:,} prompt tokens exceed"):
        ServeEngine(m, trace).run(Static(1))


def test_an_slo_below_the_idle_floor_names_the_floor(code_trace: Trace) -> None:
    with pytest.raises(InputError, match=r"TTFT SLO of 10 ms cannot be met.*floor"):
        check_slo_floor(_model(device="h100"), code_trace, Slo(0.01, 0.1))


def test_kpa_panics_on_a_burst_and_holds_its_peak() -> None:
    ctx = PolicyContext(1.0, 1000, 30.0, 1.0, np.ones(4))
    kpa = KPA(10.0, ctx)
    assert kpa.start(100, 1.0) == 1
    from foresize.simulate.serve.engine import TickView

    def view(t: int, flight: list[float], ready: int) -> TickView:
        z = np.zeros(len(flight))
        return TickView(t, t + 1.0, ready, 0, z, np.asarray(flight), z, z, z, z, z)

    calm = [7.0] * 60
    assert kpa.desired(view(59, calm, 1)) == 1  # 7 / (10 x 0.7) = 1
    burst = calm[:-6] + [70.0] * 6  # panic window asks for 10 >= 2 x 1 ready
    assert kpa.desired(view(61, [*burst, 70.0, 70.0], 1)) == 10
    assert kpa.desired(view(63, [*burst, 70.0, 70.0, 0.0, 0.0], 10)) == 10  # no scale-down


def test_a_warm_up_is_run_but_not_scored(code_trace: Trace) -> None:
    from foresize.simulate.serve.engine import billed_s

    result = ServeEngine(_model(device="h100"), code_trace).run(Static(3))
    assert billed_s(result) == pytest.approx(result.replica_s)
    since = 300.0  # three static replicas run from 0 to the end: each bills end - since
    assert billed_s(result, since) == pytest.approx(3 * (result.end_s - since))
    _, _, late = attained(result, code_trace, Slo(2.0, 0.1), since)
    ttft, tpot, _ = attained(result, code_trace, Slo(2.0, 0.1))
    keep = code_trace.arrival_s >= since
    assert late == pytest.approx(float(((ttft <= 2.0) & (tpot <= 0.1))[keep].mean()))


def test_hybrid_raises_a_floor_when_the_queue_nears_the_ttft_slo() -> None:
    from foresize.simulate.replicas.scalers import make_scaler
    from foresize.simulate.serve.engine import TickView
    from foresize.simulate.serve.policies import RISK_COOLDOWN_S, RiskHybrid, _work

    ctx = PolicyContext(1.0, 1000, 30.0, 1.0, np.ones(100), ttft_s=2.0)
    hybrid = RiskHybrid(make_scaler("predictive", level=0.9), ctx, _work, ctx.capacity)
    assert hybrid.start(100, 1.0) == 1

    def view(t: int, wait: float, queued: float) -> TickView:
        z = np.zeros(t + 1)
        w, q = z.copy(), z.copy()
        w[-1], q[-1] = wait, queued
        return TickView(t, t + 1.0, 1, 0, z, z, z, z, z + 1.0, w, q)

    assert hybrid.desired(view(3, 0.5, 4.0)) == 1  # a short wait is no risk
    # the head has waited half the TTFT SLO: serve 1 work/s plus 8 queued within 2 s,
    # with 25 % headroom, at capacity 1: ceil((1 + 4) x 1.25) = 7
    assert hybrid.desired(view(4, 1.0, 8.0)) == 7
    assert hybrid.fallbacks == 1
    assert hybrid.desired(view(5, 0.0, 0.0)) == 7  # the floor holds through the cooldown
    later = int(5 + RISK_COOLDOWN_S)
    assert hybrid.desired(view(later, 0.0, 0.0)) < 7


def test_refining_a_sweep_bisects_toward_the_cheaper_neighbour(code_trace: Trace) -> None:
    from foresize.ingest.requests import ReplayInfo
    from foresize.simulate.serve.study import ServeSetup, sweep_policy, tuned

    setup = ServeSetup(_model(device="h100"), code_trace, Slo(2.0, 0.1, 0.9),
                       ReplayInfo(4.0, 1, code_trace.n, float(code_trace.arrival_s[-1])), 1.0)
    grid = [(1.0, 1.0), (4.0, 1.0), (8.0, 1.0)]
    coarse = sweep_policy(setup, "static", 1.0, grid)
    fine = sweep_policy(setup, "static", 1.0, grid, refine=3)
    assert fine[:3] == coarse
    best, refined = tuned(coarse, 0.9), tuned(fine, 0.9)
    assert best is not None
    assert refined is not None
    assert refined["gpu_hours"] <= best["gpu_hours"]
    below = [v for v, _ in grid if v < best["value"]][-1]
    assert all(below < r["value"] < best["value"] for r in fine[3:])  # only between them


def test_rate_series_gives_every_step_its_block_s_mean() -> None:
    from foresize.simulate.serve.policies import rate_series

    truth = np.array([1.0, 3.0, 5.0, 7.0, 9.0])
    assert rate_series(truth, 2).tolist() == [2.0, 2.0, 6.0, 6.0, 9.0]  # last block: 1 step
    assert rate_series(truth, 1).tolist() == truth.tolist()
    with pytest.raises(InputError):
        rate_series(truth, 0)


def test_predictive_with_a_perfect_forecast_plans_as_the_oracle() -> None:
    """Why the oracle (and the rate oracle, the oracle on a rate series) is the bound of the
    predictive form: fed the exact need a start-up ahead, ``Predictive``'s hold of start-up
    + 1 steps runs, at every step, the most that any step up to a start-up ahead needs.
    """
    from foresize.simulate.replicas.scalers import (
        Oracle,
        Predictive,
        ScaleContext,
        StepView,
    )
    from foresize.simulate.replicas.service import Sizer

    class Perfect(Predictive):
        """The need of the step a start-up ahead, read from the truth (test only)."""

        def forecast_need(self, view: StepView) -> int | None:
            assert self.ctx is not None
            ahead = min(view.t + self.ctx.startup, self.ctx.truth.size - 1)
            return self.ctx.sizer.need(float(self.ctx.truth[ahead]))

    truth = np.array([1.0, 4.0, 0.5, 0.5, 7.0, 2.0, 0.2, 0.2, 0.2, 3.0, 1.0, 0.5, 0.5, 0.5])
    ctx = ScaleContext(Sizer(1.0), 3, 15.0, truth)
    oracle, perfect = Oracle(), Perfect()
    oracle.start(ctx)
    perfect.start(ctx)
    for t in range(truth.size):
        view = StepView(t, truth[:t], truth[:t], 1, 0)
        want, planned = perfect.desired(view), oracle.desired(view)
        if t >= ctx.startup:  # before that the hold has fewer than start-up + 1 needs
            assert want == planned, t


def _decisions(name: str, ctx: PolicyContext, knob: float = 1.0) -> list[int]:
    """Every tick's decision of a hindsight policy over the control steps of ``ctx.truth``."""
    from foresize.simulate.serve.engine import TickView
    from foresize.simulate.serve.policies import CONTROL_S, build_policy

    policy = build_policy(name, knob, ctx)
    first = policy.start(0, ctx.tick_s)
    out = [first]
    for t in range(int(ctx.truth.size * CONTROL_S / ctx.tick_s)):
        z = np.zeros(t + 1)
        view = TickView(t, t + 1.0, out[-1], 0, z, z, z, z, z, z, z)
        out.append(policy.desired(view))
    return out


def test_the_rate_oracle_knows_each_minute_s_work_but_not_when_it_lands() -> None:
    from dataclasses import replace

    from foresize.simulate.serve.policies import CONTROL_S

    rng = np.random.default_rng(7)
    truth = rng.exponential(2.0, 40)  # 40 steps of 15 s: ten minutes
    ctx = PolicyContext(1.0, 1000, 37.0, 1.0, truth)
    seen = _decisions("rate_oracle", ctx, 0.5)
    shuffled = truth.reshape(10, 4)[:, rng.permutation(4)].ravel()  # same minutes, new order
    assert _decisions("rate_oracle", replace(ctx, truth=shuffled), 0.5) == seen
    assert _decisions("oracle", replace(ctx, truth=shuffled), 0.5) != \
        _decisions("oracle", ctx, 0.5)  # the oracle does see the order
    # at the oracle's own 15 s step the rate is the work itself: the two plan alike
    fine = replace(ctx, rate_window_s=CONTROL_S)
    assert _decisions("rate_oracle", fine, 0.5) == _decisions("oracle", fine, 0.5)
    # a steady minute-level rate (every minute's steps sum the same) gets a flat plan
    steady = np.tile([0.0, 8.0, 0.0, 0.0], 10)
    flat = _decisions("rate_oracle", replace(ctx, truth=steady), 1.0)
    assert set(flat) == {2}


def test_plan_ahead_is_the_highest_rate_over_each_step_s_start_up_look_ahead() -> None:
    from foresize.simulate.serve.policies import plan_ahead

    rate = np.array([1.0, 5.0, 2.0, 0.0, 3.0, 1.0])
    assert plan_ahead(rate, 2).tolist() == [5.0, 5.0, 3.0, 3.0, 3.0, 1.0]  # fewer at the end
    assert plan_ahead(rate, 0).tolist() == rate.tolist()
    assert plan_ahead(rate, 10).tolist() == [5.0, 5.0, 3.0, 3.0, 3.0, 1.0]
    with pytest.raises(InputError):
        plan_ahead(rate, -1)


def test_a_rate_plan_is_sized_step_by_step_and_must_cover_the_run() -> None:
    from dataclasses import replace

    plan = np.array([1.0, 3.0, 0.5, 2.0, 6.0, 1.0, 1.0, 1.0])  # work per 15 s step
    ctx = PolicyContext(1.0, 1000, 37.0, 1.0, np.ones(plan.size), rate_plan=plan)
    seen = _decisions("rate_oracle", ctx, 0.5)  # capacity 0.5: need = ceil(2 x plan)
    # no look-ahead of its own: the decision at the end of step n runs step n + 1's need
    steps = [seen[0]] + [seen[15 * (n + 1)] for n in range(plan.size - 1)]
    assert steps == [2, 6, 1, 4, 12, 2, 2, 2]
    with pytest.raises(InputError, match="rate plan: 7 steps for a run of 8"):
        _decisions("rate_oracle", replace(ctx, rate_plan=plan[:-1]), 0.5)


def test_the_true_rate_as_the_rate_plan_reproduces_the_rate_oracle(code_trace: Trace) -> None:
    """The known answer of the forecast-error bound (``bench_serve.py``): a rate plan with
    no error is the rate oracle, decision for decision and row for row."""
    from dataclasses import replace

    from foresize.ingest.requests import ReplayInfo
    from foresize.simulate.serve.policies import CONTROL_S, plan_ahead, rate_series
    from foresize.simulate.serve.study import ServeSetup, run_policy, work_series

    rng = np.random.default_rng(3)
    truth = rng.exponential(2.0, 40)
    ctx = PolicyContext(1.0, 1000, 37.0, 1.0, truth)
    exact = plan_ahead(rate_series(truth, 4), 3)  # 60 s blocks, 37 s start-up = 3 steps
    for scale in (0.3, 0.5, 1.0):
        assert _decisions("rate_oracle", replace(ctx, rate_plan=exact), scale) == \
            _decisions("rate_oracle", ctx, scale)
    setup = ServeSetup(_model(device="h100"), code_trace, Slo(2.0, 0.1, 0.99),
                       ReplayInfo(4.0, 1, code_trace.n, float(code_trace.arrival_s[-1])), 1.0)
    work = work_series(setup)
    startup = int(np.ceil(setup.model.startup_s / CONTROL_S))
    plan = plan_ahead(rate_series(work, 4), startup)
    rows = {scale: run_policy(setup, "rate_oracle", scale, 1.0)[0] for scale in (0.2, 0.5)}
    for scale, row in rows.items():
        assert run_policy(replace(setup, rate_plan=plan), "rate_oracle", scale, 1.0)[0] == row
    more = run_policy(replace(setup, rate_plan=1.5 * plan), "rate_oracle", 0.5, 1.0)[0]
    assert more["gpu_hours"] > rows[0.5]["gpu_hours"]  # an error in the plan does show


def test_the_rate_oracle_is_neither_reactive_nor_compared_as_a_policy() -> None:
    from foresize.simulate.serve.policies import POLICIES
    from foresize.simulate.serve.study import PREDICTIVE, REACTIVE, compare

    assert not POLICIES.get("rate_oracle").reactive
    assert "rate_oracle" not in (*REACTIVE, *PREDICTIVE)
    row = {"policy": "rate_oracle", "gpu_hours": 1.0}
    assert set(compare({"rate_oracle": row, "oracle": row})) == {"best_reactive"}
