"""LLM serving on the Azure LLM traces: every replica policy tuned to 99 % SLO attainment.

Run: ``FORESIZE_DATA_MIRROR=... python benchmarks/bench_serve.py [--rate-scale 4]
[--splice 4]``.

Issue #17 asks predictive or hybrid for at least 20 % fewer GPU-hours than the best
reactive policy (HPA on GPU utilisation, KV usage or requests in flight; Knative KPA;
KEDA on queue length) tuned by a sweep of its knob to the same attainment, and for at
most 1.3x the hindsight oracle's. Setup, stated in every table: Llama-2-7B (the bundled
config) in bf16 on one H100 SXM per replica, SLO TTFT 2 s and TPOT 100 ms for 99 % of
requests, start-up = 30 s container + weights at 2 GB/s (37 s). At its recorded rate a
trace needs one to three such replicas, too few for scaling to matter, so each trace is
replayed ``--rate-scale`` times faster and ``--splice``-d to about an hour again (both
shown). The first copy is a warm-up every policy runs through but nobody is scored on
(the history a deployed policy would have). Each policy's knob is swept
(``policies.POLICIES``; predictive, hybrid and the oracle also over a capacity scale); a
policy's tuned row is its cheapest run at >= 99 % attainment after three bisections of
its knob toward the next cheaper swept value (the same for every policy). The last table is the
simulator's speed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from foresize.graph.hf_config import read_hf_config
from foresize.ingest.requests import read_request_source, replay
from foresize.simulate.serve.policies import POLICIES
from foresize.simulate.serve.replica import ReplicaSpec, build_replica
from foresize.simulate.serve.study import (
    ServeSetup,
    Slo,
    calibrate,
    compare,
    sweep_policy,
    trace_from_frame,
    tuned,
)

MODEL = Path(__file__).resolve().parents[1] / "src/foresize/graph/reference/llama-2-7b.json"
PRICE_H100 = 12.29  # recommend/prices.toml, h100_sxm on-demand
REFINE = 3  # bisections of every policy's knob past its sweep (study.sweep_policy)


def _knob(row: dict[str, Any]) -> str:
    """``0.95`` or, with a capacity scale, ``0.95@0.7``."""
    scale = row["capacity_scale"]
    return f"{row['value']:g}" if scale == 1 else f"{row['value']:g}@{scale:g}"


def _bound(best: dict[str, dict[str, Any] | None], reactive: str | None) -> None:
    """The hindsight bound: no forecast, however good, needs fewer GPU-hours than the
    oracle (it knows every step's work and pays only the start-up lead), so when the tuned
    oracle is not 20 % below the best reactive policy no predictive policy can be.
    """
    oracle = best.get("oracle")
    top = best.get(reactive) if reactive else None
    if oracle is None or top is None:
        print("bound: the oracle or every reactive policy misses 99 % at every setting")
        return
    ratio = oracle["gpu_hours"] / top["gpu_hours"]
    verdict = ("the 20 % target is within reach" if ratio <= 0.8 else
               "no policy, however good its forecast, can meet the 20 % target on this replay")
    print(f"bound: the tuned oracle needs {ratio:.3f}x the best reactive's GPU-hours "
          f"({100 * (1 - ratio):.1f} % fewer): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate-scale", type=float, default=4.0)
    parser.add_argument("--splice", type=int, default=4)
    parser.add_argument("--traces", default="code,conv")
    args = parser.parse_args()
    model = build_replica(read_hf_config(MODEL), ReplicaSpec(device="h100_sxm"),
                          model="llama-2-7b")
    slo = Slo(2.0, 0.1, 0.99)
    speed: list[tuple[str, int, float]] = []
    for name in args.traces.split(","):
        frame, _ = read_request_source(f"azure-llm:{name}")
        frame, info = replay(frame, rate_scale=args.rate_scale, splice=args.splice)
        trace = trace_from_frame(frame)
        warmup = float(trace.arrival_s[-1]) / args.splice if args.splice > 1 else 0.0
        setup = ServeSetup(model, trace, slo, info, PRICE_H100, warmup_s=warmup)
        capacity = calibrate(setup)
        print(f"\n## azure-llm:{name} ({info.describe()}: {info.n_requests:,} requests over "
              f"{info.duration_s / 60:.0f} min), llama-2-7b bf16 on 1 x H100, SLO TTFT 2 s / "
              f"TPOT 100 ms at 99 %; calibrated capacity {capacity:.3f} work/s per replica; "
              f"the first {warmup / 60:.0f} min (one copy) are the warm-up every policy "
              "learns from, run but not scored")
        best = {}
        print(f"{'policy':<13}{'knob':>18}{'value':>7}{'GPU-h':>8}{'attain':>8}"
              f"{'TTFT p99':>9}{'TPOT p99':>9}{'cold':>6}   sweep (value: GPU-h / attainment)")
        for policy in POLICIES.names():
            start = time.perf_counter()
            rows = sweep_policy(setup, policy, capacity, refine=REFINE)
            speed.append((f"{name}:{policy}", len(rows) * setup.trace.n,
                          time.perf_counter() - start))
            best[policy] = pick = tuned(rows, slo.attainment)
            curve = "  ".join(f"{_knob(r)}: {r['gpu_hours']:.2f}/{100 * r['attainment']:.1f}"
                              for r in rows)
            if pick is None:
                print(f"{policy:<13}{POLICIES.get(policy).knob:>18}{'--':>7}{'--':>8}"
                      f"{'<99 %':>8}{'':>9}{'':>9}{'':>6}   {curve}")
                continue
            print(f"{policy:<13}{pick['knob']:>18}{_knob(pick):>7}{pick['gpu_hours']:>8.2f}"
                  f"{100 * pick['attainment']:>7.2f}%{pick['ttft_p99_s']:>8.2f}s"
                  f"{pick['tpot_p99_ms']:>7.0f}ms{pick['cold_starts']:>6}   {curve}")
        result = compare(best)
        print(f"best reactive: {result['best_reactive']}")
        _bound(best, result["best_reactive"])
        for policy in ("predictive", "hybrid"):
            if policy in result:
                r = result[policy]
                print(f"{policy}: {r['vs_best_reactive']:.3f}x the best reactive "
                      f"({100 * r['saving_vs_best_reactive']:.1f} % fewer GPU-hours; target "
                      f">= 20 %), {r['vs_oracle']:.3f}x the oracle (target <= 1.3)")
            else:
                print(f"{policy}: no swept level reaches 99 %")
    print("\n## validation against published measurements: none printed; no source found "
          "states model, GPU, TP, prompt/output lengths and load exactly for two (model, "
          "GPU) pairs the catalogue holds (datasets/serve-validation.md)")
    print("\n## simulator speed (requests simulated per second of wall time; target >= 100k)")
    total_n = sum(n for _, n, _ in speed)
    total_s = sum(s for _, _, s in speed)
    for label, n, seconds in speed:
        print(f"{label:<24}{n / seconds:>12,.0f} req/s")
    print(f"{'all runs':<24}{total_n / total_s:>12,.0f} req/s ({total_n:,} requests)")


if __name__ == "__main__":
    main()
