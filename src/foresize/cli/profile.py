"""``foresize profile``: canonicalise telemetry and profile its historic patterns."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from foresize.cli import live, model
from foresize.cli.common import announce, ingest_header, read_telemetry
from foresize.cli.options import FormatOpt, MetricFilterOpt, OutputOpt, WideOpt, telemetry_options
from foresize.cli.output import (
    Col,
    FitTable,
    Result,
    emit,
    format_cell,
    frame_table,
    progress,
    short_ids,
    table_cell,
)
from foresize.core.errors import InsufficientDataError
from foresize.core.units import human_metric

if TYPE_CHECKING:  # readers and profiles load polars: `profile model` and --help do not
    from foresize.ingest.sources import TelemetrySource

app = typer.Typer(help="Telemetry: canonicalise files and traces, profile their patterns, "
                  "sample running workloads.", no_args_is_help=True)

TELEMETRY_EPILOG = """\
Examples:

  foresize profile telemetry gentd26:gpu_duty_cycle

  foresize profile telemetry pod_gpu_duty_cycle_anon.csv -f json \\
      --map ts=timestamp_anon,workload=container_ip --as-metric gpu_util_pct

  foresize profile telemetry telemetry.parquet --by-phase -o profile.csv

  foresize profile telemetry prometheus://localhost:9090 --since 7d --step 1m \\
      --query 'rate(container_cpu_usage_seconds_total[5m])' --map workload=pod --as-metric cpu_cores
"""

INGEST_EPILOG = """\
Examples:

  foresize profile ingest gentd26:gpu_duty_cycle gentd26:memory_util -o gentd26.parquet

  foresize profile ingest raw.csv --map ts=timestamp,workload=pod --strict -o clean.parquet
"""


PROFILE_COLUMNS = [  # (header, summary): the level and spread a sizing acts on come first
    Col("workload"), Col("metric"), Col("phase"), Col("mean"), Col("P95"), Col("max"),
    Col("idle %"), Col("P99/P50"), Col("trend/d"), Col("P50", summary=False),
    Col("P99", summary=False), Col("samples", summary=False), Col("span", summary=False),
    Col("step", summary=False), Col("gaps", summary=False), Col("period", summary=False),
]


def profile_table(result: Result) -> FitTable:
    """The human view of a profile: one row per series, values in their metric's unit."""
    frame = result.frame
    columns = [c for c in PROFILE_COLUMNS if c.key != "phase" or "phase" in frame.columns]
    ids = short_ids(frame["workload"].to_list())
    rows = []
    for workload, row in zip(ids, frame.iter_rows(named=True), strict=True):
        metric = row["metric"]
        cells = {
            "workload": workload, "metric": metric, "phase": row.get("phase") or "-",
            "mean": human_metric(metric, row["mean"]), "P95": human_metric(metric, row["p95"]),
            "max": human_metric(metric, row["max"]),
            "idle %": table_cell("idle_frac", row["idle_frac"]),
            "P99/P50": "-" if row["burstiness"] is None else f"{row['burstiness']:.1f}x",
            "trend/d": human_metric(metric, row["trend_per_day"]),
            "P50": human_metric(metric, row["p50"]), "P99": human_metric(metric, row["p99"]),
            "samples": f"{row['n_samples']:,}", "span": format_cell("span_s", row["span_s"]),
            "step": format_cell("interval_s", row["interval_s"]),
            "gaps": f"{row['n_gaps']:,}", "period": format_cell("period_s", row["period_s"]),
        }
        rows.append([cells[c.key] for c in columns])
    return FitTable(columns, rows, title=result.title, caption=result.caption,
                    wide=result.wide)


@app.command("telemetry", epilog=TELEMETRY_EPILOG)
@telemetry_options()
def telemetry(
    *,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    telemetry: TelemetrySource,
    metric: MetricFilterOpt = None,
    by_phase: Annotated[bool, typer.Option(
        "--by-phase", help="One row per phase as well (detected when the data has no labels).",
        rich_help_panel="Output")] = False,
    wide: WideOpt = False,
) -> None:
    """Historic pattern analysis per workload and metric: level, percentiles, idle share,
    burstiness, gaps, dominant periods and trend.
    """
    from foresize.ingest.sources import open_source, shown_reports
    from foresize.ingest.units import profile_ranges, warn_on_units
    from foresize.profile.telemetry import profile_telemetry

    opened = open_source(replace(telemetry, metrics=tuple(metric or ())))
    with progress("profiling rows", None) as bar:

        def on_chunk(rows: int, total: int) -> None:
            bar.set_total(total)
            bar.advance(rows)

        profile, report = profile_telemetry(opened.frame, source=opened.label,
                                            by_phase=by_phase, on_chunk=on_chunk,
                                            strict=telemetry.strict)
    reports = shown_reports(opened, report)
    announce(reports)
    warn_on_units(profile_ranges(profile), source=opened.label)
    document = {**ingest_header(opened.sha256, reports), "profiles": profile.to_dicts()}
    caption = (f"{profile.height:,} series · {profile['workload'].n_unique():,} workloads · "
               f"{profile['metric'].n_unique()} metrics")
    emit(Result(profile, document, table=profile_table, caption=caption, wide=wide,
                title=f"Telemetry profile of {opened.label}"), fmt=fmt, output=output)


@app.command("ingest", epilog=INGEST_EPILOG)
@telemetry_options()
def ingest(
    *,
    output: OutputOpt = None,
    fmt: FormatOpt = None,
    telemetry: TelemetrySource,
    metric: MetricFilterOpt = None,
) -> None:
    """Canonicalise telemetry files and traces into one long-format frame (parquet or CSV);
    the ingest report (rows read, kept, dropped by reason) goes to stderr.
    """
    if fmt is None and output is None:
        raise typer.BadParameter("pass -o FILE (.parquet or .csv) or -f FORMAT",
                                 param_hint="-o/--output")
    read, header = read_telemetry(replace(telemetry, metrics=tuple(metric or ())),
                                  all_reports=True)
    document = {**header, "telemetry": read.frame.to_dicts()}
    emit(Result(read.frame, document, title="Canonical telemetry"), fmt=fmt, output=output)


PHASES_EPILOG = """\
Examples:

  foresize profile phases gentd26:gpu_duty_cycle

  foresize profile phases train.parquet --min-dwell 2 -f json -o phases.json
"""


@app.command("phases", epilog=PHASES_EPILOG)
@telemetry_options()
def phases(
    *,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    telemetry: TelemetrySource,
    metric: MetricFilterOpt = None,
    min_dwell: Annotated[int, typer.Option("--min-dwell", help="Shortest phase, in samples; "
                                           "shorter excursions are spikes.")] = 3,
    max_regimes: Annotated[int, typer.Option("--max-regimes", help="Active levels to tell "
                                             "apart (1-3), besides idle and spike.")] = 3,
    wide: WideOpt = False,
) -> None:
    """Phases per workload and metric (idle, low/mid/high or busy, spike): share of time,
    visits, dwell times, demand percentiles and where each phase goes next.
    """
    from foresize.profile.phases import detect_phases, phase_summary

    read, header = read_telemetry(replace(telemetry, metrics=tuple(metric or ())))
    if read.frame.is_empty():
        raise InsufficientDataError(f"{telemetry.label}: no telemetry rows")
    labeled = detect_phases(read.frame.drop("phase", strict=False), min_dwell=min_dwell,
                            max_regimes=max_regimes)
    summary = phase_summary(labeled)
    document = {**header, "parameters": {"min_dwell": min_dwell, "max_regimes": max_regimes},
                "phases": summary.to_dicts()}
    shown: list[Col | str] = [
        "workload", "metric", "phase", Col("time_share", "time %", show=_percent),
        Col("n_visits", "visits"), Col("mean_dwell_s", "dwell"), Col("p95", "P95"),
        Col("max"), Col("p_stay", "P(stay)", show=_probability)]
    emit(Result(summary, document, title=f"Phases of {telemetry.label}", wide=wide,
                caption=f"{summary.select('workload', 'metric').n_unique():,} series",
                table=lambda result: frame_table(result, columns=shown)),
         fmt=fmt, output=output)


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}"


def _probability(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


app.command("run", epilog=live.RUN_EPILOG,
            context_settings={"allow_interspersed_args": False})(live.run)
app.command("attach", epilog=live.ATTACH_EPILOG)(live.attach)
app.command("model", epilog=model.EPILOG)(model.model)
