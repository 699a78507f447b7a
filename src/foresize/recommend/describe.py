"""Words and rows that describe a plan: the table rows of CSV/parquet, title and summary.

Shared by ``foresize recommend`` and notebooks; the plan document itself is
:meth:`foresize.recommend.service.PlanBody.document`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from foresize.core.io import sha256_file
from foresize.recommend.service import PlanBody


def plan_rows(body: PlanBody) -> pl.DataFrame:
    """Rows for CSV/parquet: one per workload and resource, or one per scaling plan."""
    if body.scaling_plans:
        return pl.DataFrame(
            [
                {
                    "workload": s.workload,
                    "metric": s.metric,
                    "forecaster": s.forecaster,
                    "horizon_steps": s.horizon_steps,
                    "demand_peak": max(s.schedule.demand),
                    "replicas_peak": s.schedule.peak,
                    "replicas_low": s.schedule.low,
                    "replica_hours": s.schedule.replica_hours,
                    "saving_vs_static": s.schedule.saving_vs_static,
                    "hpa_min": s.hpa.min_replicas,
                    "hpa_max": s.hpa.max_replicas,
                    "hpa_target_pct": s.hpa.target_utilisation_pct,
                    "cron_windows": len(s.cron.windows),
                    "cost_on_demand": None if s.cost is None else s.cost.horizon_on_demand,
                    "rationale": s.rationale,
                }
                for s in body.scaling_plans
            ],
            schema_overrides={"cost_on_demand": pl.Float64},
        )
    rows: list[dict[str, Any]] = []
    for rec in body.recommendations:
        place = rec.placement
        rows.append(
            {
                "workload": rec.workload,
                "resource": rec.resource,
                "status": rec.status,
                "request": rec.recommended.request,
                "limit": rec.recommended.limit,
                "base": rec.method.base,
                "margin_pct": rec.method.margin_pct,
                "quantile": rec.method.quantile,
                "risk": rec.risk.p_exceed,
                "expected_slack": rec.risk.expected_slack,
                "n_points": rec.evidence.n_points,
                "n_phases": len(rec.phases),
                "gpu": None if place is None else gpu_label(place.device, place),
                "gpu_fraction": None if place is None else place.gpu_fraction,
                "cost_on_demand_per_h": None if rec.cost is None else rec.cost.per_hour.on_demand,
                "rationale": rec.rationale,
            }
        )
    return pl.DataFrame(
        rows,
        schema_overrides={
            "request": pl.Float64,
            "limit": pl.Float64,
            "base": pl.Float64,
            "margin_pct": pl.Float64,
            "quantile": pl.Float64,
            "expected_slack": pl.Float64,
            "gpu": pl.String,
            "gpu_fraction": pl.Float64,
            "cost_on_demand_per_h": pl.Float64,
        },
    )


def gpu_label(device: str, place: Any) -> str:
    """Where one replica goes: whole devices, a MIG profile or a milli-GPU share."""
    if place.mode == "whole":
        return f"{place.devices} x {device}"
    if place.mode == "mig":
        return f"{device} MIG {place.profile}"
    return f"{device} {place.gpu_milli}m"


def plan_inputs(
    sha256: Mapping[str, str | None], *, model: str | None, prices: Path | None
) -> dict[str, str | None]:
    """The plan's inputs and their hashes: telemetry, the model config and the prices."""
    inputs = dict(sha256)
    if model is not None:
        path = Path(model) / "config.json" if Path(model).is_dir() else Path(model)
        if path.is_file():
            inputs[str(path)] = sha256_file(path)
    if prices is not None:
        inputs[str(prices)] = sha256_file(prices)
    return inputs


def plan_title(body: PlanBody, label: str) -> str:
    """What the plan is of, and from where."""
    kind = "Scaling plan" if body.scaling_plans else "Right-sizing"
    return f"{kind} of {body.metric} in {label}"


def plan_caption(body: PlanBody) -> str:
    """The parameters the plan was made with, in one line."""
    params = body.parameters
    if body.scaling_plans:
        return (
            f"per workload · {params['forecaster']} forecast, replicas cover hi_{params['level']}"
            f" · {params['capacity']:g} per replica at {params['target_utilisation']:.0%}"
        )
    return f"strategy {params['strategy']} · risk {params['risk']:g} · limit = enforced cap"


def plan_summary(body: PlanBody, min_points: int) -> str:
    """What was sized or planned, what was skipped and where the model was placed."""
    if body.scaling_plans:
        peak = sum(s.schedule.peak for s in body.scaling_plans)
        text = f"{len(body.scaling_plans):,} scaling plans ({body.metric}); {peak:,} replicas"
        text += " at peak"
    else:
        n_ok = sum(r.status == "ok" for r in body.recommendations)
        skipped = len(body.recommendations) - n_ok
        params = body.parameters
        text = f"{n_ok:,} workloads sized ({params['strategy']}, risk {params['risk']:g})" + (
            f"; {skipped:,} skipped: fewer than {min_points} samples" if skipped else ""
        )
    if body.placement is not None:
        best = body.placement.best
        text += f"; placed on {gpu_label(best.device, best)}"
    return text
