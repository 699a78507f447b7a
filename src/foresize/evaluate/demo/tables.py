"""The demo summary's tables for people: one small frame of display text per stage.

Each table is a title and a frame of strings (numbers humanised, ids shortened), so any
front end renders it as it is: the CLI as rich tables, a notebook as frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from foresize.core.units import human_bytes, human_duration, human_metric

Shown = tuple[str, pl.DataFrame]


def _frame(rows: list[dict[str, str]], columns: tuple[str, ...]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String))


def model_table(model: Mapping[str, Any]) -> Shown:
    """The static analysis: model, inference memory, components, roofline."""
    items: dict[str, str] = {}
    if model.get("parameters"):
        items["model"] = f"{model['source']} ({model['parameters'] / 1e9:.2f} B parameters)"
    else:
        items["model"] = str(model["source"])
    items["inference"] = (f"{model['dtype']}, batch {model['batch']}, context "
                          f"{model['context']}: {human_bytes(model['need_bytes'])} per replica")
    parts = model.get("components_bytes") or {}
    if parts:
        items["memory"] = ", ".join(f"{k} {human_bytes(v)}" for k, v in parts.items())
    if model.get("decode_tokens_per_s"):
        items["roofline"] = (f"{model['decode_tokens_per_s']:,.0f} tokens/s decode on "
                             f"{model['device']} ({model['devices_needed']} device(s))")
    rows = [{"item": k, "value": v} for k, v in items.items()]
    return "Model (static analysis)", _frame(rows, ("item", "value"))


def plan_table(plan: Mapping[str, Any]) -> Shown:
    """Request, limit and slack per workload and resource."""
    rows = [{
        "workload": r["workload"], "resource": r["resource"],
        "request": human_metric(r["resource"], r["request"]),
        "limit": human_metric(r["resource"], r["limit"]),
        "slack": "-" if r["expected_slack"] is None else f"{r['expected_slack']:.0%}",
        "rationale": r["rationale"] if r["status"] == "ok" else r["status"],
    } for r in plan["recommendations"]]  # fmt: skip
    columns = ("workload", "resource", "request", "limit", "slack", "rationale")
    return "Right-sizing plan", _frame(rows, columns)


def scaling_table(plan: Mapping[str, Any]) -> Shown | None:
    """Replicas, HPA, saving and cost per service."""
    if not plan["scaling_plans"]:
        return None
    place = plan.get("placement")
    where = "" if place is None else f" · one replica: {place['rationale']}"
    rows = [{
        "workload": r["workload"],
        "per replica": f"{r['capacity_per_replica']:.3g} {r['metric']}",
        "replicas": f"{r['replicas_low']}-{r['replicas_peak']}", "HPA min/max/target": r["hpa"],
        "vs static": f"-{r['saving_vs_static']:.0%}",
        "cost": "-" if r["cost_horizon_usd"] is None else f"${r['cost_horizon_usd']:,.2f}",
    } for r in plan["scaling_plans"]]  # fmt: skip
    columns = ("workload", "per replica", "replicas", "HPA min/max/target", "vs static", "cost")
    return f"Scaling plans{where}", _frame(rows, columns)


def accuracy_table(forecast: Mapping[str, Any]) -> Shown | None:
    """The backtest's MASE, WAPE and coverage per metric."""
    if not forecast["accuracy"]:
        return None
    rows = [{
        "metric": r["metric"], "series": str(r["series"]), "horizon": f"{r['horizon_steps']} steps",
        "MASE": f"{r['mase']:.2f}", "WAPE": f"{r['wape']:.1%}",
        "cover 80": f"{r['coverage_80']:.0%}", "cover 95": f"{r['coverage_95']:.0%}",
    } for r in forecast["accuracy"]]  # fmt: skip
    columns = ("metric", "series", "horizon", "MASE", "WAPE", "cover 80", "cover 95")
    return f"Forecast accuracy ({forecast['model']}, rolling origins)", _frame(rows, columns)


def autoscale_totals(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Per policy, over all services: replica-hours, vs oracle, unserved share, cost."""
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return (
        frame.group_by("policy", maintain_order=True)
        .agg(
            pl.len().alias("services"),
            pl.col("replica_hours").sum(),
            pl.col("unserved_frac").mean(),
            pl.col("violation_min").sum(),
            pl.col("actions").sum(),
            pl.col("cost_usd").sum(),
        )
        .with_columns(
            vs_oracle=pl.col("replica_hours")
            / pl.col("replica_hours").filter(pl.col("policy") == "oracle").first()
        )
    )


def autoscale_table(rows: list[dict[str, Any]]) -> Shown | None:
    """Each scaler's totals over the services."""
    if not rows:
        return None
    shown = [{
        "policy": r["policy"], "replica-h": f"{r['replica_hours']:,.1f}",
        "vs oracle": f"{r['vs_oracle']:.2f}x", "unserved": f"{r['unserved_frac']:.2%}",
        "violation": human_duration(r["violation_min"] * 60), "actions": f"{r['actions']:,}",
        "cost": f"${r['cost_usd']:,.2f}",
    } for r in autoscale_totals(rows).iter_rows(named=True)]  # fmt: skip
    columns = ("policy", "replica-h", "vs oracle", "unserved", "violation", "actions", "cost")
    title = f"Autoscaling simulation (last {rows[0]['steps']} steps of each service)"
    return title, _frame(shown, columns)


def schedule_table(schedule: Mapping[str, Any]) -> Shown:
    """The fleet with the original and the right-sized requests on identical nodes."""
    node = schedule["node"]
    rows = [{
        "requests": r["requests"], "GPUs": f"{r['gpus_requested']:,.1f}",
        "CPU cores": f"{r['cpu_cores_requested']:,.0f}",
        "memory": human_bytes(r["memory_gib_requested"] * 2**30),
        "nodes": f"{r['nodes_needed']} (bound {r['nodes_lower_bound']})",
        "placed on fewest": f"{r['placed_at_once']}/{r['pods']} on {r['on_nodes']}",
    } for r in schedule["rows"]]  # fmt: skip
    columns = ("requests", "GPUs", "CPU cores", "memory", "nodes", "placed on fewest")
    title = (f"Scheduling simulation ({schedule['copies']} pods per workload on "
             f"{node['gpus']}x {node['gpu_model']} nodes, {schedule['placement']})")
    return title, _frame(rows, columns)


def summary_tables(summary: Mapping[str, Any]) -> list[Shown]:
    """Every stage's table, in the journey's order (stages with nothing to show left out)."""
    tables = [
        model_table(summary["model"]),
        plan_table(summary["plan"]),
        scaling_table(summary["plan"]),
        accuracy_table(summary["forecast"]),
        autoscale_table(summary["autoscale"]),
        schedule_table(summary["schedule"]),
    ]
    return [t for t in tables if t is not None]
