"""Right-sizing benchmark on the real GenTD26 memory telemetry (issue 8).

Protocol: per container with at least 100 history points, recommend from the first 70 %
of its samples and judge on the last 30 %; the recommendation is an enforced limit
(usage above it is an OOM). Metrics: reserved/oracle = sum(limit) / sum(test max);
slack = sum(limit - usage) / sum(limit); violation rate = share of test steps above the
limit; containers with any violation; mean overshoot when violated. Then the trade-off
curve of each strategy (its knob swept) and the GPU sharing analysis on the duty cycles.

Run: ``FORESIZE_DATA_MIRROR=... python benchmarks/bench_rightsize.py`` (deterministic,
a few seconds).
"""

from __future__ import annotations

import warnings

import polars as pl

from foresize.ingest.sources import open_telemetry
from foresize.recommend.rightsize import BacktestScore, backtest_rightsizing, histories
from foresize.recommend.sharing import analyze_sharing
from foresize.recommend.strategies import make_strategy

METRIC = "mem_util_pct"
CURVES = {
    "foresize risk": ("foresize", "risk", [0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002]),
    "vpa margin": ("vpa", "margin", [0.0, 0.05, 0.1, 0.15, 0.25, 0.4]),
    "vpa percentile": ("vpa", "target_percentile", [0.5, 0.9, 0.95, 0.99]),
    "krr buffer": ("krr", "buffer", [0.0, 0.05, 0.1, 0.15, 0.25, 0.4]),
    "max margin": ("max", "margin", [0.0, 0.02, 0.05, 0.1, 0.2, 0.3]),
}


def read(address: str) -> pl.DataFrame:
    """One GenTD26 table, eager, without the ingest notices."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = open_telemetry([address]).frame
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


def line(score: BacktestScore, label: str | None = None) -> str:
    """One table row."""
    return (
        f"{label or score.name:<22} {score.reserved_over_oracle:>8.3f} {score.slack:>7.1%} "
        f"{score.violation_rate:>9.4%} {score.n_violated:>4d}/{score.n_workloads:<4d} "
        f"{score.mean_overshoot:>9.1%}"
    )


HEADER = (
    f"{'strategy':<22} {'res/orac':>8} {'slack':>7} {'viol.rate':>9} {'viol.':>9} {'overshoot':>9}"
)


def main() -> None:
    """Print the headline table, the trade-off curves, the verdict and the sharing table."""
    fleet = histories(read("alibaba-gentd26:memory_util"), METRIC)
    run = {
        "foresize (risk 0.01)": backtest_rightsizing(
            fleet, make_strategy("foresize"), metric=METRIC, risk=0.01
        ),
        "foresize (risk 0.02)": backtest_rightsizing(
            fleet, make_strategy("foresize"), metric=METRIC, risk=0.02
        ),
        "vpa": backtest_rightsizing(fleet, make_strategy("vpa"), metric=METRIC, risk=0.01),
        "krr": backtest_rightsizing(fleet, make_strategy("krr"), metric=METRIC, risk=0.01),
        "history max": backtest_rightsizing(fleet, make_strategy("max"), metric=METRIC, risk=0.01),
        "oracle": backtest_rightsizing(fleet, None, metric=METRIC, risk=0.01),
    }
    print(f"pod_memory_util ({METRIC}): recommend on the first 70 %, judge on the last 30 %")
    print(HEADER)
    for label, score in run.items():
        print(line(score, label))
    vpa = run["vpa"]
    for label in ("foresize (risk 0.01)", "foresize (risk 0.02)"):
        ours = run[label]
        cut = 1 - ours.slack / vpa.slack
        met = (
            cut >= 0.3
            and ours.n_violated <= vpa.n_violated
            and ours.violation_rate <= vpa.violation_rate
        )
        print(
            f"target vs vpa, {label}: slack {cut:.1%} lower (>= 30 %), containers "
            f"{ours.n_violated} <= {vpa.n_violated}, rate {ours.violation_rate:.4%} <= "
            f"{vpa.violation_rate:.4%}: {'MET' if met else 'NOT MET'}"
        )
    print("\ntrade-off curves (reserved/oracle vs containers violated)")
    print(f"{'knob':<22} {'value':>6} " + HEADER[23:])
    for label, (name, knob, values) in CURVES.items():
        for value in values:
            if knob == "risk":
                score = backtest_rightsizing(fleet, make_strategy(name), metric=METRIC, risk=value)
            else:
                score = backtest_rightsizing(
                    fleet, make_strategy(name, **{knob: value}), metric=METRIC, risk=0.01
                )
            print(f"{label:<22} {value:>6g} " + line(score)[23:])
    print("\nGPU sharing on pod_gpu_duty_cycle (milli-GPU, P95 request, FFD on aligned steps)")
    print(
        f"{'max collision':>13} {'dedicated':>9} {'by request':>10} {'req.coll.':>9} "
        f"{'time-packed':>11} {'collision':>9}"
    )
    duty = read("alibaba-gentd26:gpu_duty_cycle")
    for bound in (0.0, 0.001, 0.01, 0.05):
        share = analyze_sharing(duty, max_collision=bound)
        print(
            f"{bound:>13.1%} {share.n_dedicated:>9d} {share.n_request_packed:>10d} "
            f"{share.request_collision_rate:>9.2%} {share.n_time_packed:>11d} "
            f"{share.collision_rate:>9.2%}"
        )


if __name__ == "__main__":
    main()
