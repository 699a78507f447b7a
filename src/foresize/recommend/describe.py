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
from foresize.core.units import human_bytes, human_metric, short_id
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


# --- views: display text for a table per part of the plan --------------------------------


def _money(value: float | None, currency: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}{' ' + currency if currency else ''}"


def _text(rows: list[dict[str, str]], columns: list[str]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String))


def rightsizing_view(body: PlanBody) -> pl.DataFrame:
    """Request, limit, slack and risk with a one-line rationale per workload x resource;
    the GPU and its price per hour when the model was placed.
    """
    placed = any(r.placement is not None for r in body.recommendations)
    rows = []
    for rec in body.recommendations:
        slack = rec.risk.expected_slack
        row = {
            "workload": rec.workload, "resource": rec.resource,
            "request": human_metric(rec.resource, rec.recommended.request),
            "limit": human_metric(rec.resource, rec.recommended.limit),
            "slack": "-" if slack is None else f"{slack:.1%}", "risk": f"{rec.risk.p_exceed:.2g}",
        }
        if placed:
            row["gpu"] = "-" if rec.placement is None else gpu_label(rec.placement.device,
                                                                     rec.placement)
            row["$/h"] = _money(None if rec.cost is None else rec.cost.per_hour.on_demand)
        rows.append({**row, "rationale": rec.rationale})
    columns = ["workload", "resource", "request", "limit", "slack", "risk",
               *(["gpu", "$/h"] if placed else []), "rationale"]
    return _text(rows, columns)


def scaling_view(body: PlanBody) -> pl.DataFrame:
    """One row per scaling plan: replicas, HPA settings, cron windows, cost."""
    rows = [{
        "workload": s.workload, "forecaster": s.forecaster,
        "demand peak": f"{max(s.schedule.demand):.3g} {s.unit}",
        "replicas": f"{s.schedule.low}-{s.schedule.peak}",
        "HPA min/max/target": f"{s.hpa.min_replicas}/{s.hpa.max_replicas}/"
        f"{s.hpa.target_utilisation_pct}%",
        "cron": f"{len(s.cron.windows)} windows",
        "replica-h": f"{s.schedule.replica_hours:,.1f}",
        "vs static": f"-{s.schedule.saving_vs_static:.0%}",
        "cost": "-" if s.cost is None else _money(s.cost.horizon_on_demand),
        "rationale": s.rationale,
    } for s in body.scaling_plans]  # fmt: skip
    columns = ["workload", "forecaster", "demand peak", "replicas", "HPA min/max/target", "cron",
               "replica-h", "vs static", "cost", "rationale"]
    return _text(rows, columns)


def _prices(hour: Any, currency: str) -> str:
    return (f"on demand {_money(hour.on_demand)}, 1y {_money(hour.reserved_1y)}, "
            f"spot {_money(hour.spot)} {currency}")


def placement_view(body: PlanBody) -> pl.DataFrame | None:
    """Placement of one replica, the fleet's cost per hour and the commitment advice."""
    if body.placement is None or body.cost is None:
        return None
    place, cost, model = body.placement, body.cost, body.placement.model
    items = {
        "model": f"{model.source} ({model.kind}, {model.dtype}): {human_bytes(model.need_bytes)}",
        "GPU utilisation P95": "unknown (whole GPUs)" if place.util_p95 is None
        else f"{place.util_p95:.0%}",
        "placement": f"{gpu_label(place.best.device, place.best)}: {place.best.rationale}",
        "fits on": ", ".join(sorted({o.device for o in place.options})),
        "per replica / h": _prices(cost.per_replica.per_hour, cost.currency),
    }
    if cost.fleet is not None:
        items[f"fleet ({cost.fleet_replicas} workloads) / h"] = _prices(cost.fleet.per_hour,
                                                                      cost.currency)
    for s in body.scaling_plans:
        commit = None if s.cost is None else s.cost.commitment
        if commit is not None:
            items[f"commit ({short_id(s.workload)})"] = (
                f"{commit.committed_units:g} GPU(s) for 1y covers {commit.coverage:.0%} of the "
                f"horizon; {_money(commit.mixed_cost)} vs {_money(commit.all_on_demand_cost)} "
                f"all on demand ({commit.saving_fraction:.0%} saved)")
    items["prices"] = f"{cost.source} (as of {cost.as_of})"
    return _text([{"item": k, "value": v} for k, v in items.items()], ["item", "value"])
