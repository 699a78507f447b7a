"""Options shared by many commands: one name and one meaning everywhere.

The telemetry source options are one group, declared once: :func:`telemetry_options`
puts them on a command whose ``telemetry`` parameter then receives a
:class:`~foresize.ingest.sources.TelemetrySource`.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from foresize.cli.checks import parse_checks
from foresize.cli.output import FORMATS
from foresize.core.errors import UsageError
from foresize.core.io import check_output_file, check_writable_folder

if TYPE_CHECKING:  # the readers (polars) load when a command reads, not at start-up
    from foresize.ingest.sources import TelemetrySource
    from foresize.ingest.tabular import TsUnit

TS_UNITS: tuple[TsUnit, ...] = ("s", "ms", "us", "ns")
Command = TypeVar("Command", bound=Callable[..., Any])


def _complete_format(incomplete: str) -> list[str]:
    return [name for name in FORMATS.names() if name.startswith(incomplete)]


def _check_format(name: str | None) -> str | None:
    """An unknown format fails as the flag is parsed (exit 2, "Did you mean"), not after
    the work when the result is written.
    """
    if name is not None:
        FORMATS.get(name)
    return name


def parse_instant(text: str | None) -> datetime | None:
    """``--until`` as Prometheus' own API reads a time: RFC 3339 (``2024-01-01T00:00:00Z``,
    ``+05:30``), a plain ISO date or date-time taken as UTC, or Unix seconds.
    """
    if text is None:
        return None
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--until {text!r} is not a time: give RFC 3339 "
                         "(2024-01-01T00:00:00Z), an ISO date or Unix seconds") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format", "-f",
        help="Output format: table, json, csv or parquet. Default: from the -o suffix, else table.",
        autocompletion=_complete_format, rich_help_panel="Output", callback=_check_format,
    ),
]
def output_file(path: Path | None) -> Path | None:
    """Check an output file option as it is parsed, so a path that cannot be written
    fails in a second (exit 3, naming it), not after the work; ``-`` is stdout.
    """
    if path is not None and str(path) != "-":
        check_output_file(path)
    return path


def output_folder(path: Path | None) -> Path | None:
    """Check an output folder option as it is parsed: its parent exists and takes a new
    folder, and it is not a file (it may exist: it is replaced atomically).
    """
    if path is not None:
        check_writable_folder(path)
    return path


OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o",
        help="Write the result to this file (atomically); '-' for stdout.",
        rich_help_panel="Output", callback=output_file,
    ),
]
def _parse_checks(texts: list[str] | None) -> list[str] | None:
    """A malformed gate fails as the flag is read (exit 2), not after the work."""
    parse_checks(texts)
    return texts


CheckOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--check", help="A gate every result row must hold, COLUMN OP NUMBER over a column "
        "of -f json's rows ('mase<=1.0'); repeatable. The output is written, then a broken "
        "gate exits 5 naming the rows.",
        rich_help_panel="Output", callback=_parse_checks, show_default=False,
    ),
]
ForceOpt = Annotated[
    bool,
    typer.Option("--force", help="Allow a --horizon longer than the history.",
                 rich_help_panel="Options"),
]
WideOpt = Annotated[
    bool,
    typer.Option(
        "--wide", help="Tables: show every column at its natural width (lines may pass the "
        "terminal's edge), not the summary that fits it. -f json always has everything.",
        rich_help_panel="Output",
    ),
]
_MIRROR = typer.Option(
    "--mirror", envvar="FORESIZE_DATA_MIRROR",
    help="Read datasets from this local mirror of the upstream layout instead of downloading.",
    rich_help_panel="Input", file_okay=False,
)
MirrorOpt = Annotated[Path | None, _MIRROR]
SeedOpt = Annotated[
    int | None,
    typer.Option("--seed", help="Seed for this command (overrides the global --seed).",
                 show_default=False),
]
SourcesArg = Annotated[
    list[str],
    typer.Argument(help="Telemetry files (parquet, CSV, tar.gz; - for stdin), dataset names, "
                   "NAME:TABLE, or prometheus://HOST:PORT with --query.", show_default=False),
]
MetricFilterOpt = Annotated[
    list[str] | None,
    typer.Option("--metric", help="Keep only this metric (repeatable).", rich_help_panel="Filter"),
]
EngineOpt = Annotated[
    str,
    typer.Option("--engine", help="Where independent work runs: serial (here), local (all "
                 "cores, processes) or ray (a Ray cluster; see --ray-address). Results do not "
                 "depend on it.", rich_help_panel="Scale-out"),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option("--ray-address", envvar="RAY_ADDRESS", help="Ray cluster to join with "
                 "--engine ray (e.g. ray://head:10001 or auto); default: a local Ray instance.",
                 rich_help_panel="Scale-out"),
]

# The telemetry source group: parameter -> (type, default, the option). Order is help order.
SOURCE_OPTIONS: dict[str, tuple[Any, Any, Any]] = {
    "mapping": (str | None, None, typer.Option(
        "--map", rich_help_panel="Input", help="Column mapping for generic files: "
        "ts=COL,workload=COL[,metric=COL][,value=COL].")),
    "as_metric": (str | None, None, typer.Option(
        "--as-metric", rich_help_panel="Input",
        help="Metric name for a generic file whose rows name none.")),
    "ts_unit": (str, "s", typer.Option(
        "--ts-unit", rich_help_panel="Input", help="Unit of numeric timestamps: s, ms, us or ns.")),
    "ts_format": (str | None, None, typer.Option(
        "--ts-format", rich_help_panel="Input",
        help="strftime format of text timestamps, e.g. '%d/%m/%Y %H:%M'; ISO 8601 and "
        "RFC 3339 (a zone is converted to UTC, none means UTC) need none.")),
    "mirror": (Path | None, None, _MIRROR),
    "query": (str | None, None, typer.Option(
        "--query", rich_help_panel="Prometheus",
        help="PromQL for a prometheus://HOST:PORT source; without it the source is a whole "
        "Kubernetes cluster (kube-state-metrics, cAdvisor, DCGM).")),
    "namespace": (list[str] | None, None, typer.Option(
        "--namespace", rich_help_panel="Prometheus",
        help="Cluster mode: namespaces to read (glob, repeatable; default all).")),
    "owner_kind": (list[str] | None, None, typer.Option(
        "--owner-kind", rich_help_panel="Prometheus",
        help="Cluster mode: owner kinds to read (Deployment, StatefulSet, DaemonSet, Job, "
        "CronJob, ReplicaSet, Pod; repeatable).")),
    "selector": (str | None, None, typer.Option(
        "--selector", rich_help_panel="Prometheus",
        help="Cluster mode: pod label selector, e.g. 'app=web,tier!=db'.")),
    "cluster_label": (str | None, None, typer.Option(
        "--cluster-label", rich_help_panel="Prometheus",
        help="Cluster mode: the label naming the cluster in a multi-cluster Prometheus.")),
    "timeout": (str, "5m", typer.Option(
        "--timeout", rich_help_panel="Prometheus",
        help="Give up on Prometheus, or on downloading a dataset SOURCE, after this long, "
        "all requests together, however slowly the server answers, e.g. 5m.")),
    "max_response": (str, "512Mi", typer.Option(
        "--max-response", rich_help_panel="Prometheus",
        help="Largest answer to accept from Prometheus (an error beyond), e.g. 512Mi.")),
    "since": (str, "7d", typer.Option(
        "--since", rich_help_panel="Prometheus",
        help="How far back to read from Prometheus, e.g. 7d, 12h.")),
    "until": (str | None, None, typer.Option(
        "--until", rich_help_panel="Prometheus", callback=parse_instant,
        help="End of the Prometheus window: RFC 3339 / ISO 8601 (a time without a zone is "
        "UTC) or Unix seconds, as Prometheus takes it; default: now.")),
    "step": (str, "1m", typer.Option(
        "--step", rich_help_panel="Prometheus", help="Prometheus query resolution, e.g. 1m, 30s.")),
    "scale": (float, 1.0, typer.Option(
        "--scale", rich_help_panel="Input",
        help="Multiply every value by this factor as it is read, e.g. 100 for fractions "
        "read as a percentage, 1048576 for MiB read as bytes.")),
    "strict": (bool, False, typer.Option(
        "--strict", rich_help_panel="Input",
        help="Fail (exit 3) instead of dropping invalid rows with a count.")),
    "workload": (list[str] | None, None, typer.Option(
        "--workload", rich_help_panel="Filter",
        help="Keep workloads matching this glob (repeatable).")),
}
PROMETHEUS = ("query", "since", "until", "step", "namespace", "owner_kind", "selector",
              "cluster_label", "timeout", "max_response")


def telemetry_source(sources: str | list[str] | None, **flags: Any) -> TelemetrySource:
    """The TelemetrySource the group's flags describe (flags not offered keep defaults)."""
    from foresize.core.units import parse_duration
    from foresize.ingest.sources import ReadOptions, TelemetrySource
    from foresize.ingest.tabular import parse_mapping

    given = {name: default for name, (_, default, _) in SOURCE_OPTIONS.items()} | flags
    if given["ts_unit"] not in TS_UNITS:
        raise typer.BadParameter(f"{given['ts_unit']!r} is not one of {', '.join(TS_UNITS)}",
                                 param_hint="--ts-unit")
    options = ReadOptions(
        mapping=parse_mapping(given["mapping"]), metric=given["as_metric"],
        ts_unit=given["ts_unit"], ts_format=given["ts_format"], mirror=given["mirror"],
        query=given["query"], since_s=parse_duration(given["since"]), until=given["until"],
        step_s=parse_duration(given["step"]),
        namespaces=tuple(given["namespace"] or ()), owner_kinds=tuple(given["owner_kind"] or ()),
        selector=given["selector"], cluster_label=given["cluster_label"],
        timeout_s=parse_duration(given["timeout"]),
        max_response_bytes=_bytes(given["max_response"]),
    )
    if options.timeout_s <= 0:
        raise typer.BadParameter(f"{given['timeout']!r} is not a positive duration",
                                 param_hint="--timeout")
    scale = float(given["scale"])
    if not math.isfinite(scale) or scale <= 0:
        raise typer.BadParameter(f"{given['scale']} is not a positive number",
                                 param_hint="--scale")
    listed = [sources] if isinstance(sources, str) else sources or []
    return TelemetrySource(tuple(listed), options, workloads=tuple(given["workload"] or ()),
                           strict=given["strict"], scale=scale)


def _bytes(text: str) -> int:
    """``512Mi`` -> bytes, for ``--max-response``."""
    from foresize.recommend.export import parse_quantity

    try:
        value = parse_quantity(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--max-response") from None
    if value < 1:
        raise typer.BadParameter(f"{text!r} is below one byte", param_hint="--max-response")
    return int(value)


def telemetry_options(
    *, sources: Any = SourcesArg, default: Any = inspect.Parameter.empty,
    omit: Collection[str] = (), name: str = "sources",
) -> Callable[[Command], Command]:
    """Give a command the SOURCES argument and the source options, declared once here.

    The command's ``telemetry`` parameter is replaced by the argument (``name``, first)
    and the options (where ``telemetry`` stood, minus ``omit``); the command is called
    with the TelemetrySource they describe.
    """
    offered = [name for name in SOURCE_OPTIONS if name not in omit]

    def decorate(command: Command) -> Command:
        keyword = inspect.Parameter.KEYWORD_ONLY
        # the command's own ``telemetry: TelemetrySource`` is replaced below, so its module
        # may import the name for type checkers only (keeping polars out of start-up)
        own = inspect.signature(command, eval_str=True,
                                locals={"TelemetrySource": object}).parameters.values()
        group = [inspect.Parameter(name, keyword, annotation=Annotated[kind, option],
                                   default=value)
                 for name, (kind, value, option) in SOURCE_OPTIONS.items() if name in offered]
        params = [inspect.Parameter(name, keyword, annotation=sources, default=default)]
        for param in own:
            params += group if param.name == "telemetry" else [param.replace(kind=keyword)]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            flags = {name: kwargs.pop(name) for name in offered}
            kwargs["telemetry"] = telemetry_source(kwargs.pop(name), **flags)
            return command(**kwargs)

        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper  # type: ignore[return-value]

    return decorate


def parse_dims(texts: list[str] | None) -> dict[str, int]:
    """``--dim NAME=VALUE`` options as ``{NAME: VALUE}``."""
    dims: dict[str, int] = {}
    for text in texts or []:
        name, sep, value = text.partition("=")
        if not sep or not name or not value.strip().lstrip("-").isdigit():
            raise typer.BadParameter(f"{text!r} is not NAME=INTEGER", param_hint="--dim")
        dims[name.strip()] = int(value)
    return dims


def opt(flag: str, text: str, panel: str | None = None, **extra: Any) -> Any:
    """A typer option in one line: its flag, help and help panel (and any extra settings)."""
    return typer.Option(flag, help=text, rich_help_panel=panel, **extra)
