"""The serving engine's outputs, bit for bit, against digests recorded before issue #17's
speed work (commit 5359919): the engine's speed-ups (idle-replica heap, cached decode
iteration costs, fewer attribute reads, the least-held replica by one ``min``) change no
float operation and no event, so every policy's GPU-hours, attainment and TTFT/TPOT
percentiles stay exactly what they were.

The runs cover every registered policy at its default knob on the real Azure code trace,
three policies on the conversation trace with a small KV cache (hundreds of preemptions
and recomputes), and one overloaded replica on each (a queue of hundreds, preempted
requests ahead of the arrivals in it), each trace at 4x its recorded rate.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from foresize.graph.hf_config import read_hf_config
from foresize.ingest.requests import read_request_source, replay
from foresize.simulate.serve import engine
from foresize.simulate.serve.engine import (
    RunResult,
    ServeEngine,
    TickView,
    Trace,
    _Replica,
    _Run,
)
from foresize.simulate.serve.policies import POLICIES, Static
from foresize.simulate.serve.replica import ReplicaSpec, build_replica
from foresize.simulate.serve.study import ServeSetup, Slo, run_policy, trace_from_frame

LLAMA = Path(__file__).resolve().parents[2] / "src/foresize/graph/reference/llama-2-7b.json"

# sha256 (first 16 hex digits) of each run's outputs, computed at commit 5359919 (the
# rate oracle's when it was added, after the speed work)
CODE_H100 = {
    "static": "945e5261a39e97e2", "hpa": "5e9fc35a22b27912", "hpa_kv": "9f111500d7e4f8d4",
    "hpa_inflight": "2b1ee50be9889513", "kpa": "407d95dd6d7bae7c", "keda": "48f3047a85a28ba4",
    "predictive": "877f8780ecc6c833", "hybrid": "8f89ca942ba33ca7",
    "oracle": "6bfb39b1aa51bc14", "rate_oracle": "d9876b74b355f6bd",
}
CONV_SMALL_KV = {"hpa_kv": "4c2d36ada98365ac", "kpa": "80f613a2e01452d9",
                 "hybrid": "8a1f0740c2b2a7fe"}
ONE_REPLICA = {"code": "400b3bf5ef85b85c", "conv small kv": "dd799e329ddb5edf"}


def _digest(result: RunResult) -> str:
    """Every per-request time, preemption count, replica span and per-tick series."""
    h = hashlib.sha256()
    scalars = np.array([result.busy_s, result.replica_s, result.end_s, result.n_cold_starts])
    for array in (result.first_token_s, result.finish_s, result.preemptions, result.spans,
                  scalars, *result.ticks.values()):
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:16]


def _setup(mirror: Path, table: str, device: str, memory: float) -> ServeSetup:
    frame, _ = read_request_source(f"azure-llm:{table}", mirror=mirror)
    frame, info = replay(frame, rate_scale=4.0)
    model = build_replica(read_hf_config(LLAMA),
                          ReplicaSpec(device=device, gpu_memory_utilization=memory),
                          model="llama-2-7b")
    return ServeSetup(model, trace_from_frame(frame), Slo(), info, 1.0)


def test_every_policy_on_the_code_trace_gives_the_recorded_outputs(mirror: Path) -> None:
    setup = _setup(mirror, "code", "h100_sxm", 0.9)
    assert set(CODE_H100) == set(POLICIES.names())
    got = {name: _digest(run_policy(setup, name, None, 1.0)[1]) for name in CODE_H100}
    assert got == CODE_H100


@pytest.fixture(scope="module")
def conv_small_kv(mirror: Path) -> ServeSetup:
    """The conversation trace on an A100 40 GB with half its memory for the replica."""
    return _setup(mirror, "conv", "a100_40gb", 0.5)


@pytest.mark.parametrize("policy", sorted(CONV_SMALL_KV))
def test_preempting_runs_on_the_conversation_trace_give_the_recorded_outputs(
    conv_small_kv: ServeSetup, policy: str,
) -> None:
    row, result = run_policy(conv_small_kv, policy, None, 1.0)
    assert row["preemptions"] > 300  # the KV cache fills: recompute paths are exercised
    assert _digest(result) == CONV_SMALL_KV[policy]


def test_one_overloaded_replica_gives_the_recorded_outputs(
    mirror: Path, conv_small_kv: ServeSetup,
) -> None:
    code = _setup(mirror, "code", "h100_sxm", 0.9)
    got = {}
    for label, setup in (("code", code), ("conv small kv", conv_small_kv)):
        result = ServeEngine(setup.model, setup.trace).run(Static(1))
        assert result.ticks["queue"].max() > 500
        got[label] = _digest(result)
    assert result.preemptions.sum() > 1_000
    assert got == ONE_REPLICA


class _Sawtooth:
    """One replica more every ``every`` ticks up to ``top``, then back to one."""

    def __init__(self, every: int, top: int) -> None:
        self.every, self.top = every, top

    def start(self, n_ticks: int, tick_s: float) -> int:
        return 1

    def desired(self, view: TickView) -> int:
        return 1 + (view.t // self.every) % self.top


def test_an_arrival_at_a_replicas_ready_instant_is_dispatched_as_by_the_full_scan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``_dispatch`` cuts the least-held busy replica by one ``min`` when no replica is
    idle, but not at an instant when one turns ready (it is idle, not yet listed: its
    wake-up has not run). A replica ready every 10 s, an arrival at every ready instant
    and thousands more on busy replicas give the outputs of the full scan the shortcut
    replaces (forced by never taking it).
    """
    model = build_replica(read_hf_config(LLAMA), ReplicaSpec(device="h100_sxm"),
                          model="llama-2-7b")
    rng = np.random.default_rng(7)
    # ticks at whole seconds: a replica added at tick t is ready at exactly t + startup_s
    ready = [float(t) + model.startup_s for t in range(400)]
    busy = rng.uniform(0.0, 400.0, 6_000)
    arrival = np.sort(np.concatenate([ready, busy]))
    n = arrival.size
    trace = Trace(arrival, rng.integers(20, 800, n), rng.integers(10, 200, n))
    keyed: list[int] = []  # one entry per replica weighed by the shortcut's min

    def kv(replica: _Replica) -> int:
        keyed.append(replica.index)
        return replica.kv

    monkeypatch.setattr(engine, "_KV", kv)
    fast = ServeEngine(model, trace, tick_s=1.0).run(_Sawtooth(10, 8))
    assert len(keyed) > 5_000  # the shortcut is taken

    def never(run: _Run, now: float) -> None:
        run.ready_since = math.inf  # the shortcut's condition never holds: the full scan
        full_scan(run, now)

    full_scan = _Run._dispatch
    monkeypatch.setattr(_Run, "_dispatch", never)
    scan = ServeEngine(model, trace, tick_s=1.0).run(_Sawtooth(10, 8))
    assert _digest(fast) == _digest(scan)
