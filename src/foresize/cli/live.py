"""``foresize profile run`` / ``attach``: sample a running workload, live, into telemetry."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from foresize.cli.common import provenance
from foresize.cli.options import FormatOpt
from foresize.cli.output import (
    SETTINGS,
    Result,
    emit,
    format_cell,
    info,
    progress,
    stderr,
    titled_table,
)
from foresize.core.io import atomic_write, check_writable_file
from foresize.core.metrics import metric_info
from foresize.core.units import human_bytes, human_duration, parse_duration

if TYPE_CHECKING:  # the sampler loads psutil and polars: only `profile run/attach` pay
    from foresize.ingest.sampler import Recording

RUN_EPILOG = """\
Examples:

  foresize profile run -o train.parquet -- python train.py --epochs 1

  foresize profile run --interval 100ms --per-process -o serve.parquet -- ./serve.sh

  foresize profile run -f json -o run.parquet -- make test > summary.json
"""

ATTACH_EPILOG = """\
Examples:

  foresize profile attach 4242 -o job.parquet          # Ctrl-C to stop; samples are kept

  foresize profile attach $(pgrep -f vllm) --interval 5s -o vllm.parquet
"""

IntervalOpt = Annotated[str, typer.Option("--interval", help="Sampling interval, e.g. 1s, 100ms.")]
SamplesOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", dir_okay=False,
                 help="Write the samples (canonical telemetry, .parquet or .csv) atomically."),
]
PerProcessOpt = Annotated[
    bool, typer.Option("--per-process", help="One workload per process instead of the tree's sum.")
]
NameOpt = Annotated[
    str | None, typer.Option("--name", help="Workload name (default: the command's name).")
]


def _show(metric: str, value: float) -> str:
    unit = metric_info(metric).unit
    if unit == "bytes":
        return human_bytes(value)
    if unit == "bytes/s":
        return f"{human_bytes(value)}/s"
    return f"{value:,.2f}" if metric == "cpu_cores" else f"{value:,.1f}"


class _LiveView:
    """Current and peak value per metric with elapsed time, redrawn every sample."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.started: datetime | None = None
        self.current: dict[str, float] = {}
        self.peak: dict[str, float] = {}
        self.live = Live(self._table(), console=stderr, transient=True, auto_refresh=False)

    def tick(self, stamp: datetime, snapshot: dict[str, dict[str, float]]) -> None:
        self.started = self.started or stamp
        totals: dict[str, float] = {}
        for values in snapshot.values():
            for metric, value in values.items():
                totals[metric] = totals.get(metric, 0.0) + value
        self.current = totals
        for metric, value in totals.items():
            self.peak[metric] = max(value, self.peak.get(metric, value))
        elapsed = (stamp - self.started).total_seconds()
        self.live.update(self._table(elapsed), refresh=True)

    def _table(self, elapsed: float = 0.0) -> Table:
        table = Table(title=f"{self.title} · {human_duration(elapsed)}", title_justify="left")
        for header in ("metric", "now", "peak"):
            table.add_column(header, justify="left" if header == "metric" else "right")
        for metric, value in self.current.items():
            table.add_row(metric, _show(metric, value), _show(metric, self.peak[metric]))
        return table


def _summary_table(result: Result) -> Table:
    table = titled_table(result)
    columns = [c for c in result.frame.columns if c != "n_samples"]
    for column in columns:
        table.add_column(column, justify="right" if column in ("peak", "p95", "mean") else "left")
    for row in result.frame.iter_rows(named=True):
        table.add_row(*(
            _show(row["metric"], row[c]) if c in ("peak", "p95", "mean") else format_cell(c, row[c])
            for c in columns
        ))
    return table


def _finish(recording: Recording, *, name: str, command: list[str] | None, pid: int | None,
            output: Path | None, fmt: str | None) -> int:
    # phases (start-up, steady levels, spikes) with the detector the forecasters use
    from foresize.profile.phases import detect_phases
    from foresize.profile.telemetry import recording_summary

    telemetry = detect_phases(recording.telemetry).drop("segment")
    if output is not None:
        with atomic_write(output) as tmp:
            if output.suffix.lower() == ".csv":
                telemetry.write_csv(tmp)
            else:
                telemetry.write_parquet(tmp)
        info(f"wrote {output} ({telemetry.height:,} rows)")
    elif not SETTINGS.quiet:
        info("Hint: pass -o FILE.parquet to keep the samples")
    summary = recording_summary(telemetry)
    n_ticks = telemetry["ts"].n_unique()
    document: dict[str, Any] = {
        **provenance({}),
        "workload": name,
        "command": command,
        "pid": pid,
        "exit_code": recording.exit_code,
        "interrupted": recording.interrupted,
        "wall_s": recording.wall_s,
        "n_samples": n_ticks,
        "sampler_cpu_pct": recording.sampler_cpu_pct,
        "gpu": recording.gpu_note,
        "output": str(output) if output else None,
        "summary": summary.to_dicts(),
    }
    caption = (f"{n_ticks:,} samples over {human_duration(recording.wall_s)} · sampler used "
               f"{recording.sampler_cpu_pct:.2f}% of a core · {recording.gpu_note}")
    result = Result(summary, document, title=f"foresize profile: {name}", caption=caption,
                    table=_summary_table)
    if fmt is None or fmt == "table":
        if not SETTINGS.quiet:
            stderr.print(_summary_table(result))  # stdout belongs to the wrapped command
    else:
        emit(result, fmt=fmt, output=None)
    if recording.interrupted:
        return 130
    return recording.exit_code or 0


def _sample(root: Any, *, name: str, interval: str, per_process: bool, own_child: bool
            ) -> Recording:
    from foresize.ingest.sampler import record

    interval_s = parse_duration(interval)
    view = _LiveView(f"sampling {name}") if stderr.is_terminal and not SETTINGS.quiet else None
    if view is None:
        if not SETTINGS.quiet:  # piped: one line says sampling has begun (Ctrl-C keeps it)
            stderr.print(f"sampling {name} every {interval}", soft_wrap=True)
        with progress(f"sampling {name}", None, unit="samples") as bar:  # then a heartbeat
            return record(root, name=name, interval_s=interval_s, per_process=per_process,
                          own_child=own_child, on_tick=lambda _stamp, _snapshot: bar.advance())
    with view.live:
        return record(root, name=name, interval_s=interval_s, per_process=per_process,
                      own_child=own_child, on_tick=view.tick)


def run(
    command: Annotated[list[str], typer.Argument(help="The command to run, after --.",
                                                 show_default=False)],
    interval: IntervalOpt = "1s",
    output: SamplesOpt = None,
    per_process: PerProcessOpt = False,
    name: NameOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """Run a command and sample its whole process tree until it exits; its exit code is
    passed through. Ctrl-C stops the command and keeps every sample taken.
    """
    from foresize.ingest.sampler import start_command

    check_writable_file(output, suffixes=(".parquet", ".csv"))
    workload = name or Path(command[0]).name
    root = start_command(command)
    recording = _sample(root, name=workload, interval=interval, per_process=per_process,
                        own_child=True)
    raise typer.Exit(_finish(recording, name=workload, command=command, pid=root.pid,
                             output=output, fmt=fmt))


def attach(
    pid: Annotated[int, typer.Argument(help="PID of a running process.", show_default=False)],
    interval: IntervalOpt = "1s",
    output: SamplesOpt = None,
    per_process: PerProcessOpt = False,
    name: NameOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """Sample a running process and its children until it exits or Ctrl-C (samples kept)."""
    from foresize.ingest.sampler import attach_process

    check_writable_file(output, suffixes=(".parquet", ".csv"))
    root = attach_process(pid)
    workload = name or root.name()
    recording = _sample(root, name=workload, interval=interval, per_process=per_process,
                        own_child=False)
    raise typer.Exit(_finish(recording, name=workload, command=None, pid=pid, output=output,
                             fmt=fmt))
