"""Turn exceptions into one line on stderr and an exit code scripts can branch on."""

from __future__ import annotations

import traceback

import typer
from typer._click import exceptions as click_exceptions

from foresize.cli.output import SETTINGS, stderr
from foresize.core.errors import ForesizeError

INTERRUPTED = 130


def report(exc: BaseException) -> int:
    """Print ``exc`` for a user and return the process exit code."""
    if isinstance(exc, KeyboardInterrupt | typer.Abort):
        stderr.print("Interrupted.", markup=False)
        return INTERRUPTED
    if isinstance(exc, typer.Exit):
        return exc.exit_code
    if isinstance(exc, click_exceptions.ClickException):
        if SETTINGS.debug:
            traceback.print_exception(exc, file=stderr.file)
        exc.show(file=stderr.file)
        return exc.exit_code
    if SETTINGS.debug:
        traceback.print_exception(exc, file=stderr.file)
    if isinstance(exc, ForesizeError):
        stderr.print(f"Error: {exc.message}", markup=False, soft_wrap=True)
        if exc.hint:
            stderr.print(f"Hint: {exc.hint}", markup=False, soft_wrap=True)
        return exc.exit_code
    stderr.print(f"Internal error: {type(exc).__name__}: {exc}", markup=False, soft_wrap=True)
    if not SETTINGS.debug:
        stderr.print("Hint: rerun with --debug for the traceback", markup=False)
    return 1
