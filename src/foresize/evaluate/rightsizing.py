"""The right-sizing protocol on public telemetry: foresize against VPA, KRR and the oracle.

Protocol (issue 8): per container with at least 100 history points, recommend from the
first 70 % of its samples and judge on the last 30 %; the recommendation is an enforced
limit (usage above it is an OOM). Reported per strategy: reserved/oracle, slack,
violation rate, containers violated, mean overshoot; and each strategy's trade-off
curve, its knob swept (foresize's risk, VPA's margin, KRR's buffer, history max's
margin). GPU duty cycles are too spiky to size a request from, so they get the GPU
sharing analysis instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from foresize.evaluate import plots
from foresize.evaluate.common import first_workloads, read_table, require_rows
from foresize.evaluate.report import Section
from foresize.recommend.rightsize import BacktestScore, backtest_rightsizing, histories
from foresize.recommend.sharing import analyze_sharing
from foresize.recommend.strategies import make_strategy
from foresize.recommend.strategies.base import DEFAULT_RISK

MEMORY_METRIC = "mem_util_pct"
CURVES: dict[str, tuple[str, str, list[float]]] = {
    "foresize": ("foresize", "risk", [0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002]),
    "vpa": ("vpa", "margin", [0.0, 0.05, 0.1, 0.15, 0.25, 0.4]),
    "krr": ("krr", "buffer", [0.0, 0.05, 0.1, 0.15, 0.25, 0.4]),
    "max": ("max", "margin", [0.0, 0.02, 0.05, 0.1, 0.2, 0.3]),
}
SHARING_BOUNDS = (0.0, 0.001, 0.01, 0.05)


def strategy_scores(frame: pl.DataFrame, *, risk: float = DEFAULT_RISK) -> list[BacktestScore]:
    """The headline rows: foresize, VPA-style, KRR-style, history max and the oracle."""
    fleet = histories(frame, MEMORY_METRIC)
    rows = [
        backtest_rightsizing(fleet, make_strategy(name), metric=MEMORY_METRIC, risk=risk)
        for name in ("foresize", "vpa", "krr", "max")
    ]
    return [*rows, backtest_rightsizing(fleet, None, metric=MEMORY_METRIC, risk=risk)]


def tradeoff_curves(frame: pl.DataFrame) -> pl.DataFrame:
    """Every strategy's knob swept: reserved/oracle against containers violated."""
    fleet = histories(frame, MEMORY_METRIC)
    rows: list[dict[str, Any]] = []
    for label, (name, knob, values) in CURVES.items():
        for value in values:
            if knob == "risk":
                score = backtest_rightsizing(
                    fleet, make_strategy(name), metric=MEMORY_METRIC, risk=value
                )
            else:
                score = backtest_rightsizing(
                    fleet, make_strategy(name, **{knob: value}), metric=MEMORY_METRIC,
                    risk=DEFAULT_RISK,
                )  # fmt: skip
            rows.append({"curve": label, "knob": knob, "value": value, **score.row()})
    return pl.DataFrame(rows).drop("strategy")


def target_check(scores: list[BacktestScore]) -> dict[str, Any]:
    """Issue 8's target: slack >= 30 % below VPA's, no more containers, no higher rate."""
    by_name = {s.name: s for s in scores}
    ours, vpa = by_name["foresize"], by_name["vpa"]
    cut = 1 - ours.slack / vpa.slack if vpa.slack else float("nan")
    return {
        "slack_cut_vs_vpa": cut,
        "containers": f"{ours.n_violated} vs {vpa.n_violated}",
        "rate": f"{ours.violation_rate:.4%} vs {vpa.violation_rate:.4%}",
        "met": bool(
            cut >= 0.3
            and ours.n_violated <= vpa.n_violated
            and ours.violation_rate <= vpa.violation_rate
        ),
    }


def sharing_table(duty: pl.DataFrame) -> pl.DataFrame:
    """GPUs needed dedicated, packed by P95 request and packed on aligned time series."""
    rows = []
    for bound in SHARING_BOUNDS:
        share = analyze_sharing(duty, max_collision=bound)
        rows.append(
            {
                "max_collision": bound,
                "dedicated_gpus": share.n_dedicated,
                "request_packed_gpus": share.n_request_packed,
                "request_collision_rate": share.request_collision_rate,
                "time_packed_gpus": share.n_time_packed,
                "time_collision_rate": share.collision_rate,
            }
        )
    return pl.DataFrame(rows)


def frontier_figure(curves: pl.DataFrame) -> Any:
    """Each strategy's trade-off curve: reserved/oracle against containers violated.

    Violations are a count of containers, so the y ticks are whole numbers.
    """
    frontier = {
        label: (group["reserved/oracle"].to_list(), [float(v) for v in group["violated"]])
        for (label,), group in curves.sort("reserved/oracle").group_by(["curve"],
                                                                       maintain_order=True)
    }
    return plots.lines_figure(
        frontier, title="Slack vs violations: reserved/oracle against containers violated",
        xlabel="reserved / oracle", ylabel="containers violated", markers=True, integer_y=True,
    )


def rightsize_sections(
    dataset: str, *, mirror: Path | None = None, smoke: int | None = None,
    plots_on: bool = True, risk: float = DEFAULT_RISK,
) -> list[Section]:
    """The right-sizing sections of a report on ``dataset`` (GenTD26 telemetry)."""
    memory = require_rows(
        first_workloads(read_table(f"{dataset}:memory_util", mirror=mirror), smoke),
        f"{dataset}:memory_util",
    )
    scores = strategy_scores(memory, risk=risk)
    curves = tradeoff_curves(memory)
    check = target_check(scores)
    section = Section(
        "Right-sizing memory (pod_memory_util)",
        text=(
            "Recommend on the first 70% of each container, enforce as a limit on the last "
            f"30%. foresize at risk {risk}: slack {check['slack_cut_vs_vpa']:.1%} below the "
            f"VPA-style strategy's; containers violated {check['containers']}; violation "
            f"rate {check['rate']}; target (>= 30% less slack, no more violations) "
            f"{'met' if check['met'] else 'not met'}."
        ),
        tables={
            "Strategies": pl.DataFrame([s.row() for s in scores]),
            "Trade-off curves (each strategy's knob swept)": curves,
        },
        data={"target": check},
    )
    if plots_on:

        def draw(path: Path) -> None:
            fig = frontier_figure(curves)
            fig.savefig(path)
            plots.close(fig)

        section.figures["rightsize_frontier"] = draw
    duty = first_workloads(read_table(f"{dataset}:gpu_duty_cycle", mirror=mirror), smoke)
    sharing = Section(
        "GPU sharing (pod_gpu_duty_cycle)",
        text=(
            "Duty cycles are too spiky to size a request from; instead, which workloads can "
            "share a GPU in milli-GPU units without their peaks colliding."
        ),
        tables={"GPUs needed": sharing_table(duty)},
    )
    return [section, sharing]
