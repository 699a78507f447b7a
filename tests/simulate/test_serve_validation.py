"""The replica model against published measurements: rows computed from the engine."""

from __future__ import annotations

import math
from typing import Any

import pytest

from foresize.core.errors import InputError
from foresize.graph.hf_config import read_hf_config
from foresize.simulate.serve import validation as val
from foresize.simulate.serve.replica import ReplicaSpec, build_replica


@pytest.fixture(scope="module")
def shipped() -> list[dict[str, Any]]:
    return val.compare({})


def test_every_source_row_gives_one_comparison_with_finite_errors(
        shipped: list[dict[str, Any]]) -> None:
    assert len(shipped) == len(val.ROWS)
    assert {r["source"] for r in shipped} == set(val.SOURCES)
    assert len(val.pairs()) >= 2
    for row, published in zip(shipped, val.ROWS, strict=True):
        assert row["pair"] == published.pair
        assert math.isfinite(row["throughput"])
        assert row["throughput"] > 0
        assert math.isfinite(row["ttft_s"])
        assert row["ttft_s"] > 0
        for key, pub in (("throughput_err", published.throughput),
                         ("ttft_err", published.ttft_s)):
            assert (row[key] is None) == (pub is None)
            if pub is not None:
                assert math.isfinite(row[key])
        assert row["ttft_scored"] == (published.ttft_s is not None
                                      and published.concurrency == 1)


def test_an_idle_rows_ttft_is_the_replicas_prefill(shipped: list[dict[str, Any]]) -> None:
    """One request on an idle replica: its first token comes with its prefill's end."""
    for row, published in zip(shipped, val.ROWS, strict=True):
        if published.concurrency != 1:
            continue
        model = build_replica(read_hf_config(val.REFERENCE / f"{published.model}.json"),
                              ReplicaSpec(device=published.device, tp=published.tp,
                                          dtype=published.dtype, max_num_seqs=1))
        assert row["ttft_s"] == pytest.approx(model.prefill_s(published.isl), rel=1e-9)


def test_the_numbers_move_with_the_replica_constants(shipped: list[dict[str, Any]]) -> None:
    """Ours come from the engine, not from a table: halve the bandwidth, decode slows."""
    slow = val.compare({"bw_efficiency": 0.4})
    for before, after in zip(shipped, slow, strict=True):
        if before["osl"] > 1:  # a prefill alone is compute-bound
            assert after["throughput"] < before["throughput"]
    summary = val.summarize(shipped)
    assert set(summary) == set(val.pairs())
    for stats in summary.values():
        assert stats["throughput"]["n"] > 0
        assert stats["ttft_idle"]["n"] > 0
        assert isinstance(stats["meets"], bool)


def test_a_closed_loop_sends_each_request_when_an_earlier_one_finishes() -> None:
    """Two clients, three rounds: throughput is tokens over the whole run, and no
    request's TTFT counts the time it waited for a free client."""
    row = val.Row("x", "llama-2-7b", "a100_80gb", 1, 2, 3, 128, 16, 1.0, 1.0)
    m = val.measure(row)
    alone = val.measure(val.Row("x", "llama-2-7b", "a100_80gb", 1, 1, 1, 128, 16, 1.0, 1.0))
    assert alone.ttft_s <= m.ttft_s < 3 * alone.ttft_s  # not queued for rounds
    assert m.throughput > alone.throughput  # two streams beat one
    assert m.preemptions == 0


def test_leave_one_out_runs_only_the_tuning_pairs_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: set[str] = set()
    measure = val.measure

    def spy(row: val.Row, overrides: Any = None) -> val.Measured:
        seen.add(row.pair)
        return measure(row, overrides)

    monkeypatch.setattr(val, "measure", spy)
    tune = val.pairs()[0]
    grid = {"overlap": (1.0, 0.0), "flops_efficiency": (0.6,)}
    chosen = val.leave_one_out(tune, grid)
    assert seen == {tune}
    assert chosen["overlap"] in (1.0, 0.0)
    assert chosen["flops_efficiency"] == 0.6
    with pytest.raises(ValueError, match="no validation row"):
        val.leave_one_out("gpt-5 @ nowhere x9", grid)


def test_overlap_sums_weight_reads_and_compute_when_zero() -> None:
    arch = read_hf_config(val.REFERENCE / "llama-2-7b.json")
    full = build_replica(arch, ReplicaSpec(device="a100_80gb", overlap=1.0))
    none = build_replica(arch, ReplicaSpec(device="a100_80gb", overlap=0.0))
    n = 256
    compute = n * full.per_token_s
    assert full.iteration_s(n, 0) == pytest.approx(
        full.spec.overhead_s + max(full.weight_read_s, compute))
    assert none.iteration_s(n, 0) == pytest.approx(
        none.spec.overhead_s + full.weight_read_s + compute)
    with pytest.raises(InputError, match="overlap"):
        build_replica(arch, ReplicaSpec(device="a100_80gb", overlap=1.5))
