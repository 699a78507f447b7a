"""The ``foresize`` command: global options and the command groups.

Start-up is kept short (``foresize --help`` and ``version`` well under half a second):
this module imports typer and nothing heavy, and a command group's module (with its
polars, numpy, statsmodels, ...) is imported only when that group is run. The root
help lists the groups from ``LAZY``'s one-line descriptions, which a test keeps equal
to the groups' own. Ctrl-C while any of this loads exits 130 quietly, as it does later.
"""

from __future__ import annotations

import sys

try:  # the console script imports this module: Ctrl-C during start-up lands here
    import importlib
    import os
    import warnings
    from dataclasses import dataclass
    from typing import Annotated, Any

    import typer
    from typer.core import TyperGroup

    from foresize import __version__
    from foresize.cli.errors import INTERRUPTED, redeliver_swallowed_interrupts, report
    from foresize.cli.output import SETTINGS, info
    from foresize.core.errors import DataDroppedWarning
except KeyboardInterrupt:
    raise SystemExit(130) from None


@dataclass(frozen=True, slots=True)
class Lazy:
    """A top-level command whose module loads on use: ``module:attribute``, and its
    first help paragraph for the root listing (a Typer group, or a command function).
    """

    module: str
    attribute: str
    help: str
    epilog: str | None = None  # name of the module's epilog constant, for a command


# order is the order of `foresize --help`
LAZY: dict[str, Lazy] = {
    "demo": Lazy("foresize.cli.demo", "demo", "Run the whole journey offline: static "
                 "analysis of a reference model, profile and phases of the embedded synthetic "
                 "telemetry (or --dataset), forecasts with intervals, a right-sizing and "
                 "scaling plan (plan.json, plan.yaml), and an autoscaler and scheduler "
                 "simulation of it; a summary here and every artefact in --output-dir.", "EPILOG"),
    "env": Lazy("foresize.cli.environment", "env",
                "Print versions, the cache folder and the devices, for bug reports."),
    "version": Lazy("foresize.cli.environment", "version",
                    "Print the foresize version (``-f json`` for scripts, as every command)."),
    "profile": Lazy("foresize.cli.profile", "app", "Telemetry: canonicalise files and traces, "
                    "profile their patterns, sample running workloads."),
    "datasets": Lazy("foresize.cli.datasets", "app", "Checksummed registry of public traces: "
                     "list, info, fetch, verify, path."),
    "forecast": Lazy("foresize.cli.forecast", "app", "Forecast demand per series with "
                     "intervals (and phases); backtest the forecasters."),
    "simulate": Lazy("foresize.cli.simulate", "app", "Reference scheduler simulator: replay "
                     "traces, compare placement and queue policies."),
    "evaluate": Lazy("foresize.cli.evaluate", "app", "Evaluate forecasting, right-sizing, "
                     "autoscaling and scheduling on public traces; write a markdown report "
                     "with tables and PNG plots."),
    "recommend": Lazy("foresize.cli.recommend", "app", "Right-size workloads and plan "
                      "replicas from telemetry (`recommend SOURCES`, the same as `recommend "
                      "plan SOURCES`), or plan an LLM service on a request trace by "
                      "simulation (`recommend serve TRACE`)."),
}


def load_command(name: str) -> Any:
    """The click command ``name`` of ``LAZY``, its module imported now."""
    entry = LAZY[name]
    module = importlib.import_module(entry.module)
    target = getattr(module, entry.attribute)
    command: Any
    if isinstance(target, typer.Typer):
        command = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name, epilog=getattr(module, entry.epilog) if entry.epilog else None)(
            target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """The root group: commands from ``LAZY`` load on first use; the root help lists them
    from their descriptions without importing any.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: dict[str, Any] = {}
        self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        """Every command name, lazy ones first (``LAZY``'s order)."""
        return [*LAZY, *(n for n in super().list_commands(ctx) if n not in LAZY)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The command, loaded; a light stand-in while the root help is listing."""
        if cmd_name not in LAZY:
            return super().get_command(ctx, cmd_name)
        if self._listing:
            return TyperGroup(name=cmd_name, help=LAZY[cmd_name].help)
        if cmd_name not in self._loaded:
            self._loaded[cmd_name] = load_command(cmd_name)
        return self._loaded[cmd_name]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """The root help, listing commands without loading them."""
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="foresize",
    cls=LazyGroup,
    help="Profile, forecast, right-size and simulate AI workloads on GPU clusters.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"foresize {__version__}")
        raise typer.Exit


@app.callback()
def root(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Errors only on stderr.")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="More logs on stderr (-vv for debug).")] = 0,
    debug: Annotated[bool, typer.Option("--debug", envvar="FORESIZE_DEBUG",
                                        help="Show full tracebacks on errors.")] = False,
    seed: Annotated[int, typer.Option("--seed", envvar="FORESIZE_SEED",
                                      help="Seed for every random choice.")] = 0,
    _version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                           help="Print the version and exit.")] = False,
) -> None:
    """Profile, forecast, right-size and simulate AI workloads on GPU clusters."""
    if quiet and verbose:
        raise typer.BadParameter("--quiet and --verbose exclude each other", param_hint="-q/-v")
    SETTINGS.quiet, SETTINGS.verbose, SETTINGS.debug, SETTINGS.seed = quiet, verbose, debug, seed


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int,
    file: object = None, line: str | None = None,
) -> None:
    """Warnings reach users as one line on stderr (no source line), silenced by -q."""
    info(f"Warning: {message}")


ROOT_FLAGS = ("-q", "--quiet", "--verbose", "--debug")  # and -v, -vv, ... (counted)
ROOT_VALUED = ("--seed",)  # root options that take a value


def _is_root_flag(token: str) -> bool:
    return token in ROOT_FLAGS or (len(token) > 1 and token[0] == "-" and set(token[1:]) == {"v"})


def _own_flags(path: list[str]) -> set[str]:
    """The option names of the command that ``path`` (``["demo"]``, ``["forecast",
    "run", ...]``) runs: a command's own flag keeps its own meaning.
    """
    if path[0] not in LAZY:
        return set()
    command = load_command(path[0])
    for token in path[1:]:
        sub = getattr(command, "commands", {}).get(token)
        if sub is None:
            break
        command = sub
    return {name for param in command.params for name in (*param.opts, *param.secondary_opts)}


def hoist_root_flags(args: list[str]) -> list[str]:
    """``foresize CMD ... -q`` as ``foresize -q CMD ...``: the global flags (``-q``, ``-v``,
    ``--debug``) work wherever they are typed, as CLI.md's shared flags do, unless the
    command has a flag of that name itself; nothing after ``--`` moves (``profile run --
    COMMAND -q`` passes it on).
    """
    end = args.index("--") if "--" in args else len(args)
    at = 0
    while at < end and args[at].startswith("-"):  # the root options before the command
        at += 2 if args[at] in ROOT_VALUED else 1
    if at >= end:
        return args
    after = args[at + 1:end]
    wanted = [t for t in after if _is_root_flag(t)]
    if not wanted:
        return args
    own = _own_flags(args[at:end])
    moved = [t for t in after if _is_root_flag(t) and t not in own]
    kept = [t for t in after if not (_is_root_flag(t) and t not in own)]
    return [*args[:at], *moved, args[at], *kept, *args[end:]]


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the app and map errors to exit codes."""
    args = sys.argv[1:] if argv is None else argv
    SETTINGS.debug = "--debug" in args or os.environ.get("FORESIZE_DEBUG", "") not in ("", "0")
    if argv is None:  # the process's own run (an embedding caller keeps its hooks)
        sys.unraisablehook = redeliver_swallowed_interrupts
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        # commands print ingest reports themselves, once each
        warnings.simplefilter("ignore", DataDroppedWarning)
        warnings.showwarning = _show_warning
        try:
            args = hoist_root_flags(args)
            returned = app(args=args, prog_name="foresize", standalone_mode=False)
            code = returned if isinstance(returned, int) else 0
        except BaseException as exc:
            code = report(exc)
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # between the app's end and exit: still quiet
        sys.exit(INTERRUPTED)
