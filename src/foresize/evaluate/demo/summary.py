"""The demo's summary: each stage's headline numbers as one JSON document and markdown."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from foresize.evaluate.fleet import GIB
from foresize.evaluate.report import Report, Section, render_markdown


def records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """The frame's rows as JSON-ready dicts."""
    return [{k: finite(v) for k, v in row.items()} for row in frame.to_dicts()]


def finite(value: Any) -> Any:
    """A JSON-ready scalar: non-finite floats become None, datetimes ISO text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def recommendation_rows(plan: Mapping[str, Any]) -> pl.DataFrame:
    """One row per workload and resource: request, limit, slack, rationale."""
    rows = [
        {
            "workload": r["workload"],
            "resource": r["resource"],
            "unit": r["unit"],
            "status": r["status"],
            "request": r["recommended"]["request"],
            "limit": r["recommended"]["limit"],
            "expected_slack": r["risk"]["expected_slack"],
            "rationale": r["rationale"],
        }
        for r in plan["recommendations"]
    ]
    schema = {"request": pl.Float64, "limit": pl.Float64, "expected_slack": pl.Float64}
    return pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None)


def scaling_rows(plan: Mapping[str, Any]) -> pl.DataFrame:
    """One row per service: capacity, replicas, HPA, saving, cost over the horizon."""
    rows = []
    for s in plan["scaling_plans"]:
        sched, hpa, cost = s["schedule"], s["hpa"], s.get("cost")
        rows.append(
            {
                "workload": s["workload"],
                "metric": s["metric"],
                "forecaster": s["forecaster"],
                "capacity_per_replica": sched["capacity_per_replica"],
                "demand_peak": max(sched["demand"]) if sched["demand"] else None,
                "replicas_low": sched["low"],
                "replicas_peak": sched["peak"],
                "hpa": f"{hpa['min_replicas']}/{hpa['max_replicas']}/"
                f"{hpa['target_utilisation_pct']}%",
                "saving_vs_static": sched["saving_vs_static"],
                "cost_horizon_usd": None if cost is None else cost["horizon_on_demand"],
                "rationale": s["rationale"],
            }
        )
    return pl.DataFrame(rows, schema_overrides={"cost_horizon_usd": pl.Float64})


def model_summary(model: Mapping[str, Any]) -> dict[str, Any]:
    """The few numbers of the static analysis the summary shows."""
    sizing = model["sizing"]
    out: dict[str, Any] = {
        "source": Path(sizing["source"]).name,
        "kind": sizing["kind"],
        "parameters": sizing.get("parameters"),
        "dtype": sizing["dtype"],
        "batch": sizing.get("batch"),
        "context": sizing.get("context"),
        "need_bytes": sizing["need_bytes"],
    }
    analysis = model.get("analysis")
    if analysis is not None:
        inference = analysis["inference"]
        out["components_bytes"] = inference["components_bytes"]
        out["forward_flops_per_token"] = analysis["flops"]["forward_per_token"]
        out["decode_tokens_per_s"] = inference.get("decode_tokens_per_s")
        out["device"] = analysis["device"]["name"]
        out["devices_needed"] = inference["devices_needed"]
    return out


def _placement_summary(plan: Mapping[str, Any]) -> dict[str, Any] | None:
    place, cost = plan.get("placement"), plan.get("cost")
    if place is None:
        return None
    best = place["best"]
    return {
        "device": best["device"],
        "mode": best["mode"],
        "gpu_fraction": best["gpu_fraction"],
        "rationale": best["rationale"],
        "util_p95": place["util_p95"],
        "per_replica_per_hour_usd": None
        if cost is None
        else cost["per_replica"]["per_hour"]["on_demand"],
    }


def summarise(
    *,
    header: Mapping[str, Any],
    model: Mapping[str, Any],
    profile: pl.DataFrame,
    phases: pl.DataFrame,
    forecast: pl.DataFrame,
    accuracy: pl.DataFrame,
    plan: Mapping[str, Any],
    autoscale: pl.DataFrame,
    schedule: pl.DataFrame,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """The summary document: each stage's headline numbers (JSON-ready)."""
    profile_cols = ["workload", "metric", "unit", "n_samples", "p50", "p95", "max", "idle_frac"]
    phase_cols = ["workload", "metric", "phase", "time_share", "n_visits", "mean_dwell_s", "p95"]
    return {
        "schema_version": "1.0",
        "foresize_version": header["foresize_version"],
        "generated_at": header["generated_at"],
        "seed": header["seed"],
        "inputs": header["inputs"],
        **extra,
        "model": model_summary(model),
        "profile": {
            "workloads": profile["workload"].n_unique(),
            "series": profile.height,
            "rows": records(profile.select([c for c in profile_cols if c in profile.columns])),
        },
        "phases": {
            "series": phases.select("workload", "metric").unique().height,
            "rows": records(phases.select(phase_cols)),
        },
        "forecast": {
            "series": forecast.select("metric", "series").unique().height,
            "metrics": sorted(forecast["metric"].unique().to_list()),
            "horizon_steps": int(forecast["step"].max() or 0),  # type: ignore[arg-type]
            "model": str(forecast["model"][0]) if "model" in forecast.columns else None,
            "accuracy": records(accuracy),
        },
        "plan": {
            "metrics": plan["parameters"]["metrics"],
            "recommendations": records(recommendation_rows(plan)),
            "scaling_plans": records(scaling_rows(plan)),
            "placement": _placement_summary(plan),
        },
        "autoscale": records(autoscale),
        "schedule": records(schedule),
    }


def summary_markdown(summary: Mapping[str, Any], parameters: dict[str, Any]) -> str:
    """summary.md: the summary document as headed markdown tables."""
    report = Report("foresize demo", parameters)
    model = summary["model"]
    report.add(
        Section(
            "Model (static analysis)",
            text=f"{model['source']}: {model['parameters']:,} parameters, "
            f"{model['need_bytes'] / GIB:.1f} GiB per replica ({model['dtype']}, batch "
            f"{model['batch']}, context {model['context']})."
            if model.get("parameters")
            else f"{model['source']}: {model['need_bytes'] / GIB:.1f} GiB per replica.",
        )
    )
    tables = [
        ("Profile", "Per workload and metric", summary["profile"]["rows"]),
        ("Phases", "Detected phases", summary["phases"]["rows"]),
        ("Forecast", "Backtest accuracy", summary["forecast"]["accuracy"]),
        ("Plan", "Right-sizing", summary["plan"]["recommendations"]),
        ("Scaling", "Scaling plans", summary["plan"]["scaling_plans"]),
        ("Autoscaling simulation", "Scalers on recent demand", summary["autoscale"]),
        ("Scheduling simulation", "Fleet on identical GPU nodes", summary["schedule"]["rows"]),
    ]
    for heading, caption, rows in tables:
        frame = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
        report.add(Section(heading, tables={caption: frame} if rows else {}))
    return render_markdown(report, {})
