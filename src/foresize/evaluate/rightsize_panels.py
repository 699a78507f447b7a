"""Right-sizing judged panel by panel, with every choice made on one panel only.

Why: a right-sizer is used on fleets it has never seen, so a constant tuned on the
panel it is scored on proves nothing. Each panel here is a fleet of one metric; the
benchmark protocol (``foresize.recommend.rightsize``: recommend on each workload's first
70 %, enforce the limit on its last 30 %) scores foresize at each risk, the VPA- and
KRR-style references, the history max and the oracle, and checks three things:

* **calibration**: at ``risk`` r the share of workloads whose limit is exceeded lies in
  ``[r/2, 2r]`` (with its Clopper-Pearson 95 % interval, since a panel of a hundred
  workloads cannot tell 1 % from 2 %);
* **frontier**: at the VPA-style strategy's count of violated workloads, foresize's
  least slack over a sweep of its risk, as a ratio to VPA's slack (target <= 0.7);
* **default**: foresize at its default risk against VPA, less slack and no more
  violated workloads.

Both comparisons with VPA have a hindsight bound (``peak_bound``): the least slack any
strategy can have with no more violated workloads than VPA when it never sets a limit
below the workload's own history peak (a limit under a peak the workload already
reached is exceeded by the history itself). Where that bound is above 0.7 x VPA's
slack the frontier target cannot be met by any such strategy; above VPA's slack, no
such strategy dominates VPA. It binds where VPA's number is a request and not a limit:
for CPU and GPU utilisation VPA recommends its P90 target as the request and sets no
limit, so "exceeded" counts the throttled workloads VPA accepts by design.

Panels: the real GenTD26 ``pod_memory_util`` and ``pod_gpu_duty_cycle`` (as
utilisation), the demo generator's synthetic fleets (memory bytes, GPU memory bytes,
CPU cores) and a constructed step-like GPU memory fleet (``step_fleet``: the real GenTD26
GPU memory panel is not in the mirror, and a flat-then-jump fleet with known future
peaks is what the real data here cannot show).

``leave_one_panel_out`` picks the strategy's variant (how pseudo-histories are split,
how the spread is scaled) on one panel and reports it on every other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from foresize.evaluate.common import read_table
from foresize.recommend.rightsize import (
    DEFAULT_HORIZON_FRAC,
    BacktestScore,
    backtest_rightsizing,
    histories,
    score_limits,
    split_fleet,
)
from foresize.recommend.strategies import History, default_risk, make_strategy

RISKS = (0.01, 0.02, 0.05, 0.1)
#: The sweep that draws foresize's frontier (slack against violated workloads): 40 risks,
#: evenly spaced in log from 0.002 to 0.5 (a step of 15 %). Why this fine: near VPA's
#: count a few violated workloads move the slack a lot (on the step-like fleet, 42 to 46
#: violated takes it from 0.287 to 0.218), and a coarse sweep that jumps over VPA's count
#: reports the frontier at the last point before it.
SWEEP = tuple(round(0.002 * (0.5 / 0.002) ** (i / 39), 5) for i in range(40))
FRONTIER_TARGET = 0.7  # slack at VPA's violation count, as a share of VPA's
#: Variants of the foresize strategy the leave-one-panel-out table chooses among.
VARIANTS: dict[str, dict[str, Any]] = {
    "ratio/learned/cost": {"split": "ratio", "share": None},
    "ratio/learned/uniform": {"split": "ratio", "share": None, "allocation": "uniform"},
    "length/learned/cost": {"split": "length", "share": None},
    "length/learned/uniform": {"split": "length", "share": None, "allocation": "uniform"},
    "length/share=0.02/cost": {"split": "length", "share": 0.02},
    "length/share=0.02/uniform": {"split": "length", "share": 0.02, "allocation": "uniform"},
}
DEFAULT_VARIANT = "length/share=0.02/cost"
#: The panel the default variant was chosen on.
DEFAULT_CHOSEN_ON = "pod_memory_util"
Fleet = dict[str, History]


@dataclass(frozen=True, slots=True)
class Panel:
    """A fleet of one metric and what it is."""

    name: str
    metric: str
    fleet: Fleet
    source: str


#: The step-like fleet's generator: changes over a series per workload (drawn with
#: ``STEP_RATE_P``), the sd of a change's log factor, and the samples' relative noise.
STEP_RATES = (0.0, 0.5, 2.0, 6.0)
STEP_RATE_P = (0.4, 0.3, 0.2, 0.1)
STEP_JUMP_SD = 0.5
STEP_NOISE = 0.001


def step_fleet(n: int = 400, points: int = 1440, seed: int = 0) -> Fleet:
    """A constructed step-like GPU memory fleet with known future peaks.

    Each workload holds a level (log-normal around 20 GB) that changes at a constant
    rate drawn per workload (40 % never change, the rest 0.5, 2 or 6 changes over the
    series on average), each change multiplying the level by a log-normal factor
    (sd 0.5), with 0.1 % sample noise: flat for hours, then a jump, as GPU memory is
    when a server loads another model. Changes arrive uniformly in time, so the last
    30 % of a series is exchangeable with the rest.
    """
    ts_s = np.arange(points, dtype=np.float64) * 60.0
    return {
        name: History(name, np.maximum(values, 0.0), ts_s)
        for name, (_, _, values) in _step_series(n, points, seed).items()
    }


def step_truth(
    n: int = 400, points: int = 1440, seed: int = 0
) -> dict[str, tuple[float, np.ndarray]]:
    """Each ``step_fleet`` workload's rate of level changes (per series) and its level
    before the sample noise. Why: changes come at random times (a Poisson process of
    that rate) with log factors symmetric around 0, so given the past, the level and
    the rate say all there is about every later sample: a forecaster that knows them
    bounds what any forecast of the fleet can reach (``bench_forecast.py``).
    """
    return {
        name: (rate, levels) for name, (rate, levels, _) in _step_series(n, points, seed).items()
    }


def _step_series(
    n: int, points: int, seed: int
) -> dict[str, tuple[float, np.ndarray, np.ndarray]]:
    """Per workload of the step fleet: its rate, its levels, and its samples."""
    rng = np.random.default_rng(seed)
    out: dict[str, tuple[float, np.ndarray, np.ndarray]] = {}
    for i in range(n):
        rate = float(rng.choice(STEP_RATES, p=STEP_RATE_P))
        times = np.sort(rng.integers(1, points, size=rng.poisson(rate)))
        level = math.exp(rng.normal(math.log(20e9), 0.8))
        levels = np.empty(points)
        start = 0
        for at in times:
            levels[start:at] = level
            start = int(at)
            level *= math.exp(rng.normal(0.0, STEP_JUMP_SD))
        levels[start:] = level
        values = levels * (1 + STEP_NOISE * rng.standard_normal(points))
        out[f"steps-{seed}-{i:03d}"] = (rate, levels, values)
    return out


def _synthetic(metric: str) -> Fleet:
    from foresize.ingest.synthetic import generate_telemetry

    frames = [
        generate_telemetry(seed=seed, n_training=20, n_inference=20, duration="7d", step="5m")
        .filter(pl.col("metric") == metric)
        .with_columns(pl.col("workload") + f"-s{seed}")
        for seed in range(3)
    ]
    return histories(pl.concat(frames), metric)


def _gentd26(table: str, metric: str, mirror: Path | None) -> Callable[[], Fleet]:
    return lambda: histories(read_table(f"alibaba-gentd26:{table}", mirror=mirror), metric)


def load_panels(names: Sequence[str] | None = None, *, mirror: Path | None = None) -> list[Panel]:
    """The right-sizing panels (all by default), in a fixed order."""
    specs: dict[str, tuple[str, Callable[[], Fleet], str]] = {
        "pod_memory_util": (
            "mem_util_pct", _gentd26("memory_util", "mem_util_pct", mirror), "GenTD26, real"
        ),
        "pod_gpu_duty_cycle": (
            "gpu_util_pct", _gentd26("gpu_duty_cycle", "gpu_util_pct", mirror), "GenTD26, real"
        ),
        "synthetic_mem_bytes": ("mem_bytes", lambda: _synthetic("mem_bytes"), "demo generator"),
        "synthetic_gpu_mem_bytes": (
            "gpu_mem_bytes", lambda: _synthetic("gpu_mem_bytes"), "demo generator"
        ),
        "synthetic_cpu_cores": ("cpu_cores", lambda: _synthetic("cpu_cores"), "demo generator"),
        "steps_gpu_mem_bytes": (
            "gpu_mem_bytes",
            lambda: {**step_fleet(seed=0), **step_fleet(seed=1)},
            "constructed step-like",
        ),
    }
    chosen = list(specs) if names is None else list(names)
    unknown = [n for n in chosen if n not in specs]
    if unknown:
        from foresize.core.errors import UnknownNameError

        raise UnknownNameError("right-sizing panel", unknown[0], list(specs))
    return [Panel(n, specs[n][0], specs[n][1](), specs[n][2]) for n in chosen]


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact binomial interval of ``k`` successes in ``n`` trials."""
    from scipy.stats import beta

    alpha = 1.0 - level
    lo = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


@dataclass(frozen=True, slots=True)
class PanelResult:
    """One panel's scores for one foresize variant."""

    panel: Panel
    variant: str
    sweep: dict[float, BacktestScore]
    references: dict[str, BacktestScore]

    @property
    def vpa(self) -> BacktestScore:
        """The VPA-style reference."""
        return self.references["vpa"]

    @property
    def default(self) -> BacktestScore:
        """The foresize strategy at the metric's default risk."""
        return self.sweep[default_risk(self.panel.metric)]

    def frontier_ratio(self) -> float:
        """Least foresize slack with no more violated workloads than VPA, over VPA's."""
        fitting = [s.slack for s in self.sweep.values() if s.n_violated <= self.vpa.n_violated]
        if not fitting or not self.vpa.slack:
            return math.inf
        return min(fitting) / self.vpa.slack

    def bound_ratio(self) -> float:
        """``peak_bound`` at VPA's count of violated workloads, over VPA's slack: the
        least frontier ratio a strategy that keeps its limits at or above the history
        peaks can reach on this panel, in hindsight.
        """
        if not self.vpa.slack:
            return math.inf
        return peak_bound(self.panel.fleet, self.vpa.n_violated) / self.vpa.slack

    def dominates(self) -> bool:
        """The default has less slack than VPA and no more violated workloads."""
        return self.default.slack < self.vpa.slack and self.default.n_violated <= (
            self.vpa.n_violated
        )

    def calibration(self) -> pl.DataFrame:
        """Share of workloads exceeded at each risk, its interval and the band check."""
        rows = []
        for risk in RISKS:
            score = self.sweep[risk]
            share = score.n_violated / score.n_workloads
            lo, hi = clopper_pearson(score.n_violated, score.n_workloads)
            rows.append(
                {
                    "risk": risk,
                    "violated": score.n_violated,
                    "of": score.n_workloads,
                    "share": share,
                    "ci95_lo": lo,
                    "ci95_hi": hi,
                    "band": f"[{risk / 2:g}, {2 * risk:g}]",
                    "in_band": in_band(score, risk),
                    "band_in_ci": lo <= 2 * risk and hi >= risk / 2,
                }
            )
        return pl.DataFrame(rows)

    def table(self) -> pl.DataFrame:
        """Slack and violated workloads: foresize at each risk, the references, the oracle."""
        rows = [
            {"strategy": f"foresize r={r:g}", **_cells(self.sweep[r])} for r in RISKS
        ] + [{"strategy": name, **_cells(s)} for name, s in self.references.items()]
        return pl.DataFrame(rows)

    def summary(self) -> dict[str, Any]:
        """The panel's line in the cross-panel table."""
        calibration = self.calibration()
        return {
            "panel": self.panel.name,
            "variant": self.variant,
            "workloads": self.vpa.n_workloads,
            "default_risk": default_risk(self.panel.metric),
            "slack": self.default.slack,
            "violated": self.default.n_violated,
            "vpa_slack": self.vpa.slack,
            "vpa_violated": self.vpa.n_violated,
            "dominates_vpa": self.dominates(),
            "frontier_ratio": self.frontier_ratio(),
            "frontier_met": self.frontier_ratio() <= FRONTIER_TARGET,
            "bound_ratio": self.bound_ratio(),
            "calibrated": f"{int(calibration['in_band'].sum())}/{calibration.height}",
        }


def _cells(score: BacktestScore) -> dict[str, Any]:
    return {
        "slack": score.slack,
        "reserved/oracle": score.reserved_over_oracle,
        "violated": score.n_violated,
        "of": score.n_workloads,
    }


def evaluate_panel(
    panel: Panel,
    variant: str = DEFAULT_VARIANT,
    *,
    references: Mapping[str, BacktestScore] | None = None,
) -> PanelResult:
    """One foresize variant over the risk sweep, and the references, on one panel."""
    strategy = make_strategy("foresize", **VARIANTS[variant])
    risks = sorted({*SWEEP, *RISKS, default_risk(panel.metric)})
    sweep = {
        r: backtest_rightsizing(panel.fleet, strategy, metric=panel.metric, risk=r)
        for r in risks
    }
    return PanelResult(panel, variant, sweep, dict(references or reference_scores(panel)))


def reference_scores(panel: Panel) -> dict[str, BacktestScore]:
    """VPA-style, KRR-style, history max and the oracle on one panel."""
    risk = default_risk(panel.metric)
    out = {
        name: backtest_rightsizing(panel.fleet, make_strategy(name), metric=panel.metric, risk=risk)
        for name in ("vpa", "krr", "max")
    }
    out["oracle"] = backtest_rightsizing(panel.fleet, None, metric=panel.metric, risk=risk)
    return out


def peak_bound(fleet: Fleet, violated: int) -> float:
    """The least slack of limits never below each workload's history peak with at most
    ``violated`` workloads exceeded, in hindsight.

    A workload kept whole needs ``max(history peak, future peak)``; one let go needs
    only its history peak, so the ``violated`` workloads let go are those whose future
    outgrew their peak by the most reserved capacity (an exact minimum: each choice is
    independent and the saving of letting one go is fixed).
    """
    train, test = split_fleet(fleet)
    names = list(test)
    if not names:
        return math.nan
    past = np.array([float(train[w].values.max()) for w in names])
    future = np.array([float(test[w].max()) for w in names])
    length = np.array([test[w].size for w in names], dtype=np.float64)
    limits = np.maximum(past, future)
    saving = (limits - past) * length
    let_go = np.argsort(-saving, kind="stable")[: max(violated, 0)]
    limits[let_go] = past[let_go]
    return score_limits("peak bound", dict(zip(names, limits.tolist(), strict=True)), test).slack


def request_view(panel: Panel) -> pl.DataFrame:
    """Requests judged as requests, for resources that only throttle (CPU, utilisation).

    VPA and KRR set no limit there, so the limit comparison counts the throttling they
    accept by design. Here each strategy's *request* is judged on the last 30 %: the
    share of the requested capacity left idle, and the share of samples above the
    request (throttled or contended time), overall and for the 90th-percentile workload.
    foresize's request is the history's ``1 - risk`` quantile, so its time above should
    stay near or under ``risk``.
    """
    train, test = split_fleet(panel.fleet)
    sizes = np.array([future.size for future in test.values()], dtype=np.float64)
    rows = []
    runs = [("foresize", r) for r in RISKS] + [("vpa", None), ("krr", None)]
    for name, risk in runs:
        sizings = make_strategy(name)(
            train, metric=panel.metric, risk=risk or default_risk(panel.metric),
            horizon_frac=DEFAULT_HORIZON_FRAC,
        )  # fmt: skip
        idle = requested = 0.0
        above = np.zeros(len(test))  # samples above the request, per workload
        for i, (workload, future) in enumerate(test.items()):
            request = sizings[workload].request
            idle += float(np.maximum(request - future, 0.0).sum())
            requested += request * future.size
            above[i] = float((future > request).sum())
        rows.append(
            {
                "strategy": name if risk is None else f"{name} r={risk:g}",
                "idle_share": idle / requested if requested else math.nan,
                "time_above": float(above.sum() / sizes.sum()) if sizes.size else math.nan,
                "time_above_p90": (
                    float(np.quantile(above / sizes, 0.9)) if sizes.size else math.nan
                ),
            }
        )
    return pl.DataFrame(rows)


def unseen_growth(panel: Panel) -> tuple[int, int, float]:
    """Workloads whose judged period outgrew every calibration window of the fleet.

    The largest relative growth any pseudo-future of the histories showed is the most
    a calibration learned from those histories has seen; workloads that grow past it in
    the judged period jumped as no history had shown (a fleet-wide event, not the
    exchangeable future calibration assumes): ``(count, workloads, largest growth
    seen)``.
    """
    from foresize.recommend.strategies.foresize import calibration_rows

    train, test = split_fleet(panel.fleet)
    rows = calibration_rows(train, horizon_frac=0.3)
    active = rows.past_peak > 0
    seen = float((rows.future_peak[active] / rows.past_peak[active]).max()) - 1.0
    beyond = sum(
        float(test[w].max()) > float(h.values.max()) * (1.0 + seen) for w, h in train.items()
    )
    return int(beyond), len(train), seen


def leave_one_panel_out(
    panels: Sequence[Panel], results: Mapping[tuple[str, str], PanelResult]
) -> pl.DataFrame:
    """For each panel: the variant that is best there (least frontier ratio, then least
    default slack), and how that choice fares on every *other* panel.
    """
    rows = []
    for tuned in panels:
        chosen = min(
            VARIANTS,
            key=lambda v: (
                results[(tuned.name, v)].frontier_ratio(),
                results[(tuned.name, v)].default.slack,
            ),
        )
        for other in panels:
            if other.name == tuned.name:
                continue
            result = results[(other.name, chosen)]
            rows.append(
                {
                    "chosen_on": tuned.name,
                    "variant": chosen,
                    "reported_on": other.name,
                    "frontier_ratio": result.frontier_ratio(),
                    "dominates_vpa": result.dominates(),
                    "calibrated": f"{int(result.calibration()['in_band'].sum())}/{len(RISKS)}",
                }
            )
    return pl.DataFrame(rows)


def in_band(score: BacktestScore, risk: float) -> bool:
    """Whether the share of workloads exceeded at ``risk`` lies in ``[risk / 2, 2 risk]``."""
    return risk / 2 <= score.n_violated / score.n_workloads <= 2 * risk


def ceiling_table(results: Sequence[PanelResult]) -> pl.DataFrame:
    """Per panel and standard risk: the evaluated strategy as it is (no workload's own
    chance above one half, ``--max-chance``'s default) beside the same with a ceiling of
    ``2 x risk`` per workload, the calibration band's upper edge: what an even spread of
    the risk costs. Only the ceiling's runs are new; the others are ``results``' sweeps.
    """
    rows = []
    for result in results:
        panel = result.panel
        for risk in RISKS:
            capped = make_strategy("foresize", **VARIANTS[result.variant], max_chance=2 * risk)
            cells: dict[str, Any] = {"panel": panel.name, "risk": risk}
            for label, score in (
                ("default", result.sweep[risk]),
                ("2r", backtest_rightsizing(panel.fleet, capped, metric=panel.metric, risk=risk)),
            ):
                cells[f"{label}_slack"] = score.slack
                cells[f"{label}_violated"] = score.n_violated
                cells[f"{label}_in_band"] = in_band(score, risk)
            rows.append(cells)
    return pl.DataFrame(rows)
