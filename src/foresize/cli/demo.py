"""``foresize demo``: the whole journey, offline, on the embedded synthetic telemetry.

The command only gathers the inputs (synthetic telemetry from ``--seed``, or a
registered dataset read from a mirror or the cache) and renders the summary; the
stages live in ``foresize.evaluate.demo``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.table import Table

from foresize.cli.options import FormatOpt, MirrorOpt, OutputOpt, SeedOpt
from foresize.cli.output import SETTINGS, Result, emit, info, progress, scaled, short_id
from foresize.core.io import atomic_write
from foresize.core.units import human_bytes, human_duration, parse_duration
from foresize.evaluate.demo.inputs import Assumptions, load_dataset, synthetic_assumptions
from foresize.evaluate.demo.run import REFERENCE_MODEL, DemoOptions, run_demo
from foresize.evaluate.demo.summary import recommendation_rows
from foresize.forecast.models import FORECASTERS
from foresize.ingest.synthetic import describe_synthetic, generate_telemetry

EPILOG = """\
Examples:

  foresize demo

  foresize demo --duration 7d --seed 3 --out demo-7d

  foresize demo -f json -o summary.json --quiet

  foresize demo --dataset alibaba-gentd26 --mirror ../shared/datasets/alibaba-clusterdata

  foresize demo --save-telemetry demo.parquet && foresize profile telemetry demo.parquet --by-phase
"""
DEFAULT_OUT = Path("foresize-demo")
DEFAULT_LIMIT = 20


def _model_table(model: Mapping[str, Any]) -> Table:
    table = Table(title="Model (static analysis)", title_justify="left")
    table.add_column("item", no_wrap=True)
    table.add_column("value")
    if model.get("parameters"):
        table.add_row("model", f"{model['source']} ({model['parameters'] / 1e9:.2f} B parameters)")
    else:
        table.add_row("model", str(model["source"]))
    table.add_row(
        "inference",
        f"{model['dtype']}, batch {model['batch']}, context {model['context']}: "
        f"{human_bytes(model['need_bytes'])} per replica",
    )
    parts = model.get("components_bytes") or {}
    if parts:
        table.add_row("memory", ", ".join(f"{k} {human_bytes(v)}" for k, v in parts.items()))
    if model.get("decode_tokens_per_s"):
        table.add_row(
            "roofline",
            f"{model['decode_tokens_per_s']:,.0f} tokens/s decode on {model['device']} "
            f"({model['devices_needed']} device(s))",
        )
    return table


def _plan_table(plan: Mapping[str, Any]) -> Table:
    table = Table(title="Right-sizing plan", title_justify="left")
    for name in ("workload", "resource", "request", "limit", "slack", "rationale"):
        table.add_column(name, no_wrap=name != "rationale")
    for row in plan["recommendations"]:
        slack = row["expected_slack"]
        table.add_row(
            short_id(row["workload"]),
            row["resource"],
            scaled(row["resource"], row["request"]),
            scaled(row["resource"], row["limit"]),
            "-" if slack is None else f"{slack:.0%}",
            row["rationale"] if row["status"] == "ok" else row["status"],
        )
    return table


def _scaling_table(plan: Mapping[str, Any]) -> Table | None:
    if not plan["scaling_plans"]:
        return None
    place = plan.get("placement")
    where = "" if place is None else f" · one replica: {place['rationale']}"
    table = Table(title=f"Scaling plans{where}", title_justify="left")
    for name in ("workload", "per replica", "replicas", "HPA min/max/target", "vs static", "cost"):
        table.add_column(name, no_wrap=True, justify="left" if name == "workload" else "right")
    for row in plan["scaling_plans"]:
        cost = row["cost_horizon_usd"]
        table.add_row(
            short_id(row["workload"]),
            f"{row['capacity_per_replica']:.3g} {row['metric']}",
            f"{row['replicas_low']}-{row['replicas_peak']}",
            row["hpa"],
            f"-{row['saving_vs_static']:.0%}",
            "-" if cost is None else f"${cost:,.2f}",
        )
    return table


def _accuracy_table(forecast: Mapping[str, Any]) -> Table | None:
    if not forecast["accuracy"]:
        return None
    table = Table(
        title=f"Forecast accuracy ({forecast['model']}, rolling origins)", title_justify="left"
    )
    for name in ("metric", "series", "horizon", "MASE", "WAPE", "cover 80", "cover 95"):
        table.add_column(name, justify="left" if name == "metric" else "right", no_wrap=True)
    for row in forecast["accuracy"]:
        table.add_row(
            row["metric"],
            str(row["series"]),
            f"{row['horizon_steps']} steps",
            f"{row['mase']:.2f}",
            f"{row['wape']:.1%}",
            f"{row['coverage_80']:.0%}",
            f"{row['coverage_95']:.0%}",
        )
    return table


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


def _autoscale_table(rows: list[dict[str, Any]]) -> Table | None:
    if not rows:
        return None
    totals = autoscale_totals(rows)
    steps = rows[0]["steps"]
    table = Table(
        title=f"Autoscaling simulation (last {steps} steps of each service)", title_justify="left"
    )
    for name in ("policy", "replica-h", "vs oracle", "unserved", "violation", "actions", "cost"):
        table.add_column(name, justify="left" if name == "policy" else "right", no_wrap=True)
    for row in totals.iter_rows(named=True):
        table.add_row(
            row["policy"],
            f"{row['replica_hours']:,.1f}",
            f"{row['vs_oracle']:.2f}x",
            f"{row['unserved_frac']:.2%}",
            human_duration(row["violation_min"] * 60),
            f"{row['actions']:,}",
            f"${row['cost_usd']:,.2f}",
        )
    return table


def _schedule_table(schedule: Mapping[str, Any]) -> Table:
    node = schedule["node"]
    table = Table(
        title=f"Scheduling simulation ({schedule['copies']} pods per workload on "
        f"{node['gpus']}x {node['gpu_model']} nodes, {schedule['placement']})",
        title_justify="left",
    )
    for name in ("requests", "GPUs", "CPU cores", "memory", "nodes", "placed on fewest"):
        table.add_column(name, justify="left" if name == "requests" else "right", no_wrap=True)
    for row in schedule["rows"]:
        table.add_row(
            row["requests"],
            f"{row['gpus_requested']:,.1f}",
            f"{row['cpu_cores_requested']:,.0f}",
            human_bytes(row["memory_gib_requested"] * 2**30),
            f"{row['nodes_needed']} (bound {row['nodes_lower_bound']})",
            f"{row['placed_at_once']}/{row['pods']} on {row['on_nodes']}",
        )
    return table


def summary_table(result: Result) -> Table:
    """The terminal view: one small table per stage."""
    doc = result.document
    grid = Table.grid(padding=(1, 0))
    if result.title:
        grid.add_row(result.title)
    parts = [
        _model_table(doc["model"]),
        _plan_table(doc["plan"]),
        _scaling_table(doc["plan"]),
        _accuracy_table(doc["forecast"]),
        _autoscale_table(doc["autoscale"]),
        _schedule_table(doc["schedule"]),
    ]
    for part in parts:
        if part is not None:
            grid.add_row(part)
    if result.caption:
        grid.add_row(result.caption)
    return grid


def _synthetic(seed: int, duration: str, step: str, save: Path | None) -> pl.DataFrame:
    telemetry = generate_telemetry(seed=seed, duration=duration, step=step)
    if save is not None:
        with atomic_write(save) as tmp:
            telemetry.write_parquet(tmp)
        info(f"wrote {save} ({telemetry.height:,} telemetry rows)")
    return telemetry


def demo(
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            file_okay=False,
            help="Folder for every artefact (replaced "
            "atomically): model, profile, phases, forecast, plan, autoscale, schedule.",
        ),
    ] = DEFAULT_OUT,
    duration: Annotated[str, typer.Option(help="Span of synthetic telemetry, e.g. 2d.")] = "3d",
    step: Annotated[str, typer.Option(help="Sampling step, e.g. 1m, 30s.")] = "1m",
    save_telemetry: Annotated[
        Path | None,
        typer.Option(
            "--save-telemetry",
            dir_okay=False,
            help="Also write the generated telemetry (canonical parquet) here.",
        ),
    ] = None,
    seed: SeedOpt = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="Run on a registered dataset (NAME or NAME:TABLE, read "
            "from --mirror or the cache; never downloaded) instead of synthetic data.",
            rich_help_panel="Input",
        ),
    ] = None,
    mirror: MirrorOpt = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            min=1,
            help="With --dataset: the workloads covered by the most metrics, at most this many.",
            rich_help_panel="Input",
        ),
    ] = DEFAULT_LIMIT,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="Model for the static analysis and placement: a "
            "config.json (or its folder) or an .onnx. Default: the bundled "
            "llama-2-7b config.",
            show_default=False,
        ),
    ] = None,
    forecaster: Annotated[
        str, typer.Option("--forecaster", help=f"Forecaster: {', '.join(FORECASTERS.names())}.")
    ] = "wavelet",
    horizon: Annotated[
        str | None,
        typer.Option(
            "--horizon",
            help="Planning horizon, e.g. 12h (default: 1 day, or 3/7 of the history when shorter).",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No terminal summary and no messages.")
    ] = False,
) -> None:
    """Run the whole journey offline: static analysis of a reference model, profile and
    phases of the embedded synthetic telemetry (or --dataset), forecasts with intervals,
    a right-sizing and scaling plan (plan.json, plan.yaml), and an autoscaler and
    scheduler simulation of it; a summary here and every artefact in --out.
    """
    began = time.perf_counter()
    if quiet:
        SETTINGS.quiet = True
    seed = SETTINGS.seed if seed is None else seed
    FORECASTERS.get(forecaster)
    options = DemoOptions(
        forecaster=forecaster,
        horizon_s=None if horizon is None else parse_duration(horizon),
    )
    source: dict[str, Any]
    if dataset is None:
        telemetry = _synthetic(seed, duration, step, save_telemetry)
        label = "synthetic"
        workloads = sorted(telemetry["workload"].unique().to_list())
        assumptions = synthetic_assumptions(workloads)
        inputs: dict[str, str | None] = {}
        source = {
            "synthetic": {
                "seed": seed,
                "duration": duration,
                "step": step,
                "workload_kinds": describe_synthetic(),
            }
        }
    else:
        loaded = load_dataset(dataset, mirror=mirror, limit=limit)
        telemetry, label, inputs = loaded.frame, loaded.dataset, dict(loaded.sha256)
        assumptions = Assumptions(
            notes=(
                f"replica capacity = each service's observed peak / {Assumptions().peak_replicas}",
                "original pods hold one whole GPU with the node's CPU and memory per GPU",
            )
        )
        source = {
            "dataset": {
                "name": loaded.dataset,
                "tables": list(loaded.tables),
                "workloads": telemetry["workload"].n_unique(),
                "workloads_total": loaded.workloads_total,
                "limit": limit,
            }
        }
    with progress("demo", 8) as bar:
        result = run_demo(
            telemetry,
            model_spec=model or REFERENCE_MODEL,
            out_dir=out,
            seed=seed,
            source=label,
            assumptions=assumptions,
            options=options,
            inputs=inputs,
            extra={"source": source},
            on_stage=lambda _name: bar.advance(),
        )
    document = result.summary
    elapsed = time.perf_counter() - began
    n_workloads = telemetry["workload"].n_unique()
    title = (
        f"foresize demo · synthetic telemetry · seed {seed} · {duration}"
        if dataset is None
        else f"foresize demo · {label} · {n_workloads} workloads"
    )
    info(f"wrote {out}/ ({len(result.paths)} artefacts) in {elapsed:.1f} s")
    if quiet and fmt is None and output is None:
        return
    emit(
        Result(
            recommendation_rows(result.plan),
            document,
            table=summary_table,
            title=title,
            caption=f"{telemetry.height:,} samples · {n_workloads} workloads · "
            f"{document['profile']['series']} series · artefacts in {out}/",
        ),
        fmt=fmt,
        output=output,
    )
