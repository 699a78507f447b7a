"""The ``foresize`` command: global options and the command groups."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Annotated

import typer

from foresize import __version__
from foresize.cli import (
    datasets,
    demo,
    environment,
    evaluate,
    forecast,
    profile,
    recommend,
    simulate,
)
from foresize.cli.errors import report
from foresize.cli.output import SETTINGS, info
from foresize.core.errors import DataDroppedWarning

app = typer.Typer(
    name="foresize",
    help="Profile, forecast, right-size and simulate AI workloads on GPU clusters.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(profile.app, name="profile")
app.add_typer(datasets.app, name="datasets")
app.add_typer(forecast.app, name="forecast")
app.add_typer(simulate.app, name="simulate")
app.add_typer(evaluate.app, name="evaluate")
app.add_typer(recommend.app, name="recommend")
app.command("demo", epilog=demo.EPILOG)(demo.demo)
app.command("env")(environment.env)
app.command("version")(environment.version)


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


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the app and map errors to exit codes."""
    args = sys.argv[1:] if argv is None else argv
    SETTINGS.debug = "--debug" in args or os.environ.get("FORESIZE_DEBUG", "") not in ("", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        # commands print ingest reports themselves, once each
        warnings.simplefilter("ignore", DataDroppedWarning)
        warnings.showwarning = _show_warning
        try:
            returned = app(args=args, prog_name="foresize", standalone_mode=False)
            code = returned if isinstance(returned, int) else 0
        except BaseException as exc:
            code = report(exc)
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
