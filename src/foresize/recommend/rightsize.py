"""Right-sizing entry point: telemetry in, one ``ResourceRecommendation`` per workload.

``recommend_rightsizing`` picks the metric, builds each workload's history, runs a
strategy over the fleet, adds the per-phase schedule and the evidence, and returns the
recommendations. ``backtest_rightsizing`` is the benchmark protocol (recommend from the
first 70 % of each workload, judge on the last 30 %, the limit enforced) shared by the
tests and ``benchmarks/bench_rightsize.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from foresize.core.errors import InputError, InsufficientDataError, UsageError
from foresize.core.metrics import metric_info, percent_cap
from foresize.core.units import human_bytes, human_duration
from foresize.profile.phases import detect_phases, phase_summary
from foresize.recommend.plan import (
    Bounds,
    Evidence,
    Method,
    PhaseRequest,
    Reason,
    ResourceRecommendation,
    Risk,
    Values,
)
from foresize.recommend.strategies import (
    MIN_POINTS,
    History,
    Sizing,
    Strategy,
    check_chance_option,
    check_risk,
    default_risk,
    make_strategy,
    oracle_sizing,
)

DEFAULT_HORIZON_FRAC = 0.3
MIN_PHASE_SHARE = 0.05  # phases holding less of the time get no schedule row
MIN_PHASE_GAP = 0.2  # a schedule is offered only where phase peaks differ this much
MODELS = {
    "foresize": "fleet_growth",
    "vpa": "decaying_histogram",
    "krr": "percentile",
    "max": "history_max",
}


def pick_metric(frame: pl.DataFrame, metric: str | None, *, source: str) -> str:
    """The metric to size: the one asked for (it must appear) or the only one present."""
    present = sorted(frame["metric"].unique().to_list()) if frame.height else []
    if metric is not None:
        if metric not in present:
            found = ", ".join(present) or "no rows"
            raise InputError(f"{source}: metric {metric!r} never appears (found: {found})")
        return metric
    if not present:
        raise InsufficientDataError(
            f"{source}: no telemetry rows; recommend needs at least "
            f"{MIN_POINTS} samples per workload"
        )
    if len(present) > 1:
        raise InputError(
            f"{source} holds {len(present)} metrics ({', '.join(present)}); pick one with --metric"
        )
    return str(present[0])


def histories(frame: pl.DataFrame, metric: str) -> dict[str, History]:
    """Each workload's history of ``metric``, in time order (canonical rows: finite, >= 0)."""
    rows = frame.filter(pl.col("metric") == metric).sort("workload", "ts")
    out: dict[str, History] = {}
    for (workload,), group in rows.group_by(["workload"], maintain_order=True):
        ts = group["ts"].dt.epoch("us").to_numpy().astype(np.float64) / 1e6
        out[str(workload)] = History(
            str(workload), group["value"].to_numpy().astype(np.float64), ts
        )
    return out


def horizon_fraction(fleet: Mapping[str, History], horizon_s: float | None, *,
                     force: bool = False) -> float:
    """Share of (history + horizon) the horizon takes, for the strategy's calibration.

    A horizon longer than the longest history is refused unless ``force``: the
    calibration splits each history into a past and a future as long as the horizon, so
    no history can show how far a workload moves in that long, and a limit "for 90 days"
    from 2 days of samples would claim a risk nothing measured. With ``force`` it is
    sized as for a horizon as long as the median history (the most the data can speak to).
    """
    if horizon_s is None:
        return DEFAULT_HORIZON_FRAC
    if horizon_s <= 0:
        raise UsageError(f"--horizon must be positive, got {horizon_s:g} s; e.g. --horizon 7d")
    longest = max(h.window_s for h in fleet.values())
    if horizon_s > longest and not force:
        raise UsageError(
            f"--horizon {human_duration(horizon_s)} is longer than the history "
            f"({human_duration(longest)} in the longest workload)",
            hint="ask for a shorter --horizon, or pass --force to size for the history's "
            "own length")
    window = float(np.median([h.window_s for h in fleet.values()]))
    return float(np.clip(horizon_s / (window + horizon_s), 0.1, 0.5))


@dataclass(frozen=True, slots=True)
class RightsizingResult:
    """The recommendations and the parameters that made them."""

    metric: str
    strategy: str
    risk: float
    recommendations: list[ResourceRecommendation]
    max_chance: float | None = None  # the ceiling per workload (foresize strategy only)

    @property
    def n_ok(self) -> int:
        """Recommendations with a value."""
        return sum(r.status == "ok" for r in self.recommendations)


def recommend_rightsizing(
    frame: pl.DataFrame,
    *,
    metric: str | None = None,
    strategy: str = "foresize",
    risk: float | None = None,
    max_chance: float | None = None,
    horizon_s: float | None = None,
    floor: float | None = None,
    ceiling: Mapping[str, float] | None = None,
    min_points: int = MIN_POINTS,
    include_phases: bool = True,
    source: str = "telemetry",
    force: bool = False,
) -> RightsizingResult:
    """Request and limit per workload for one metric of canonical telemetry.

    ``risk`` is the target chance of exceeding the limit within the horizon, in
    (0, 0.5]; default ``DEFAULT_RISK`` (0.05, chosen on pod_memory_util; see
    ``benchmarks/bench_rightsize.py``): the share of the workloads expected to pass their
    limit. ``max_chance`` (the foresize strategy only) caps each workload's own chance,
    which the strategy spends unevenly by default. ``floor`` (in the metric's unit) is never
    undercut, e.g. the GPU memory the model's weights and activations need.
    ``ceiling`` (per workload, same unit) is the most the hardware can give, e.g. the
    GPU memory of the GPUs a workload runs on: a limit above it could never be used, so
    it is capped there and the rationale says so. Workloads with fewer than
    ``min_points`` samples get ``status="insufficient_data"`` and no value; if none has
    enough, ``InsufficientDataError`` says how many are needed. A ``horizon_s`` longer
    than the longest history is a usage error unless ``force``.
    """
    name = pick_metric(frame, metric, source=source)
    chosen_risk = check_risk(default_risk(name) if risk is None else risk)
    ceiling_chance = check_chance_option(strategy, max_chance)
    settings: dict[str, float] = {}
    if strategy == "foresize" and floor is not None:
        settings["floor"] = floor
    if ceiling_chance is not None:
        settings["max_chance"] = ceiling_chance
    sizer: Strategy = make_strategy(strategy, **settings)
    all_histories = histories(frame, name)
    fleet = {w: h for w, h in all_histories.items() if h.n_points >= min_points}
    if not fleet:
        longest = max((h.n_points for h in all_histories.values()), default=0)
        raise InsufficientDataError(
            f"{source}: no workload has {min_points} samples of {name} (longest: {longest}); "
            f"right-sizing needs at least {min_points} per workload"
        )
    frac = horizon_fraction(fleet, horizon_s, force=force)
    sizings = sizer(fleet, metric=name, risk=chosen_risk, horizon_frac=frac)
    if floor is not None and strategy != "foresize":
        sizings = {w: _floored(s, floor) for w, s in sizings.items()}
    if ceiling:
        show = human_bytes if name.endswith("_bytes") else (lambda v: f"{v:.4g}")
        sizings = {
            w: _capped(s, ceiling[w], f"the hardware's {show(ceiling[w])}") if w in ceiling else s
            for w, s in sizings.items()
        }
    top = percent_cap(name)
    if top is not None:  # no strategy may ask for more than all of a percentage
        sizings = {w: _capped(s, top, f"{top:g} %") for w, s in sizings.items()}
    schedules = phase_schedules(frame, name, sizings) if include_phases else {}
    unit = metric_info(name).unit
    recs: list[ResourceRecommendation] = []
    for workload, history in all_histories.items():
        if workload not in sizings:
            recs.append(_missing(workload, name, unit, history, strategy, chosen_risk, min_points))
            continue
        recs.append(
            _recommendation(
                workload,
                name,
                unit,
                history,
                sizings[workload],
                strategy=strategy,
                risk=chosen_risk,
                horizon_s=horizon_s,
                phases=schedules.get(workload, []),
            )
        )
    return RightsizingResult(name, strategy, chosen_risk, recs, ceiling_chance)


def _floored(sizing: Sizing, floor: float) -> Sizing:
    if sizing.request >= floor:
        return sizing
    limit = None if sizing.limit is None else max(sizing.limit, floor)
    return Sizing(
        floor,
        limit,
        sizing.base,
        sizing.quantile,
        sizing.margin,
        sizing.lower,
        sizing.upper,
        sizing.rationale + "; raised to the static-analysis floor",
        sizing.details,
    )


def _capped(sizing: Sizing, cap: float, what: str) -> Sizing:
    """``sizing`` with its request, limit and bounds held to ``cap``."""
    optional = (sizing.limit, sizing.lower, sizing.upper)
    if sizing.request <= cap and all(v is None or v <= cap for v in optional):
        return sizing
    limit, lower, upper = (None if v is None else min(v, cap) for v in optional)
    return Sizing(
        min(sizing.request, cap),
        limit,
        sizing.base,
        sizing.quantile,
        sizing.margin,
        lower,
        upper,
        sizing.rationale + f"; capped at {what}",
        sizing.details,
    )


def _iso(ts_s: float) -> str:
    return datetime.fromtimestamp(ts_s, UTC).isoformat()


def expected_slack(values: np.ndarray, limit: float) -> float | None:
    """``sum(limit - usage) / sum(limit)`` over the history: the share left unused."""
    if limit <= 0 or not math.isfinite(limit):
        return None
    return float(np.sum(limit - values) / (limit * values.size))


def _recommendation(
    workload: str,
    metric: str,
    unit: str,
    history: History,
    sizing: Sizing,
    *,
    strategy: str,
    risk: float,
    horizon_s: float | None,
    phases: list[PhaseRequest],
) -> ResourceRecommendation:
    calibration = {k: v for k, v in sizing.details.items() if math.isfinite(v)}
    return ResourceRecommendation(
        workload=workload,
        resource=metric,
        unit=unit,
        status="ok",
        recommended=Values(request=sizing.request, limit=sizing.limit),
        bounds=Bounds(
            lower=sizing.lower, target=sizing.request, upper=sizing.upper, uncapped=sizing.request
        ),
        method=Method(
            strategy=strategy,
            quantile=sizing.quantile,
            base=sizing.base,
            margin_pct=sizing.margin * 100,
            model=MODELS.get(strategy, strategy),
        ),
        risk=Risk(
            # the workload's own chance where the strategy spends the fleet's risk unevenly
            p_exceed=sizing.details.get("chance", risk),
            expected_slack=expected_slack(history.values, sizing.enforced),
        ),
        evidence=Evidence(
            n_points=history.n_points,
            window_s=history.window_s,
            start=_iso(history.ts_s[0]),
            end=_iso(history.ts_s[-1]),
            horizon_s=horizon_s,
            calibration=calibration,
        ),
        rationale=sizing.rationale,
        phases=phases,
    )


def _missing(
    workload: str,
    metric: str,
    unit: str,
    history: History,
    strategy: str,
    risk: float,
    min_points: int,
) -> ResourceRecommendation:
    message = f"{history.n_points} points < {min_points} required"
    return ResourceRecommendation(
        workload=workload,
        resource=metric,
        unit=unit,
        status="insufficient_data",
        recommended=Values(request=None, limit=None),
        method=Method(strategy=strategy, model=MODELS.get(strategy, strategy)),
        risk=Risk(p_exceed=risk),
        evidence=Evidence(n_points=history.n_points, window_s=history.window_s),
        rationale=f"needs {min_points} samples, has {history.n_points}",
        reasons=[Reason(code="insufficient_data", message=message)],
    )


def phase_schedules(
    frame: pl.DataFrame,
    metric: str,
    sizings: Mapping[str, Sizing],
) -> dict[str, list[PhaseRequest]]:
    """Per-phase requests where the phases' levels differ: each active phase's P99 times
    the workload's own margin factor, capped at the overall request (the limit stays
    the overall one: a phase can end early, and a phase's max may hold a spike).
    """
    rows = frame.filter(
        (pl.col("metric") == metric) & pl.col("workload").is_in(list(sizings))
    ).select("workload", "metric", "ts", "value")
    if rows.is_empty():
        return {}
    summary = phase_summary(detect_phases(rows))
    out: dict[str, list[PhaseRequest]] = {}
    for (workload,), group in summary.group_by(["workload"], maintain_order=True):
        sizing = sizings[str(workload)]
        kept = group.filter(
            (pl.col("phase") != "spike") & (pl.col("time_share") >= MIN_PHASE_SHARE)
        )
        if kept.height < 2:
            continue
        peaks = kept["p99"].to_numpy()
        if peaks.max() <= 0 or (peaks.max() - peaks.min()) / peaks.max() < MIN_PHASE_GAP:
            continue
        factor = sizing.request / sizing.base if sizing.base > 0 else 1.0
        out[str(workload)] = [
            PhaseRequest(
                phase=r["phase"],
                time_share=r["time_share"],
                request=min(r["p99"] * factor, sizing.request),
                p95=r["p95"],
                max=r["max"],
            )
            for r in kept.iter_rows(named=True)
        ]
    return out


@dataclass(frozen=True, slots=True)
class BacktestScore:
    """The benchmark's metrics for one strategy on one split of the fleet."""

    name: str
    reserved_over_oracle: float
    slack: float
    violation_rate: float
    n_violated: int
    n_workloads: int
    mean_overshoot: float

    def row(self) -> dict[str, float | int | str]:
        """A table row."""
        return {
            "strategy": self.name,
            "reserved/oracle": self.reserved_over_oracle,
            "slack": self.slack,
            "violation_rate": self.violation_rate,
            "violated": self.n_violated,
            "of": self.n_workloads,
            "mean_overshoot": self.mean_overshoot,
        }


def split_fleet(
    fleet: Mapping[str, History],
    *,
    train_frac: float = 1 - DEFAULT_HORIZON_FRAC,
    min_points: int = MIN_POINTS,
) -> tuple[dict[str, History], dict[str, np.ndarray]]:
    """First ``train_frac`` of each workload as history (kept if >= ``min_points``), the
    rest as the judged future.
    """
    train: dict[str, History] = {}
    test: dict[str, np.ndarray] = {}
    for name, h in fleet.items():
        cut = int(h.n_points * train_frac)
        if cut >= min_points and h.n_points > cut:
            train[name] = History(name, h.values[:cut], h.ts_s[:cut])
            test[name] = h.values[cut:]
    return train, test


def score_limits(
    name: str, limits: Mapping[str, float], future: Mapping[str, np.ndarray]
) -> BacktestScore:
    """Slack, reserved/oracle, violation rate, workloads violated and mean overshoot of
    fixed enforced limits on the judged periods.
    """
    reserved = oracle = used = 0.0
    steps = violated_steps = n_violated = 0
    overshoot: list[np.ndarray] = []
    for workload, values in future.items():
        limit = limits[workload]
        reserved += limit * values.size
        oracle += float(values.max()) * values.size
        used += float(values.sum())
        over = values > limit
        steps += values.size
        violated_steps += int(over.sum())
        if over.any():
            n_violated += 1
            overshoot.append((values[over] - limit) / max(limit, 1e-12))
    mean_over = float(np.concatenate(overshoot).mean()) if overshoot else 0.0
    return BacktestScore(
        name,
        reserved / oracle if oracle else math.nan,
        (reserved - used) / reserved if reserved else math.nan,
        violated_steps / steps if steps else math.nan,
        n_violated,
        len(future),
        mean_over,
    )


def backtest_rightsizing(
    fleet: Mapping[str, History],
    strategy: Strategy | None,
    *,
    metric: str,
    risk: float,
    label: str | None = None,
) -> BacktestScore:
    """The benchmark protocol for one strategy (``None`` = the oracle)."""
    train, test = split_fleet(fleet)
    if strategy is None:
        limits = {w: oracle_sizing(v).enforced for w, v in test.items()}
        return score_limits(label or "oracle", limits, test)
    sizings = strategy(
        train, metric=metric, risk=check_risk(risk), horizon_frac=DEFAULT_HORIZON_FRAC
    )
    return score_limits(label or strategy.name, {w: s.enforced for w, s in sizings.items()}, test)
