"""Turn exceptions into one line on stderr and an exit code scripts can branch on.

Everything printed here goes through ``core.secrets.redact``: an exception's text can
quote a header or a URL with credentials, and this is where it would reach a terminal.
"""

from __future__ import annotations

import _thread
import sys
import traceback
from typing import Any

import typer
from typer._click import exceptions as click_exceptions

from foresize.cli.output import SETTINGS, stderr
from foresize.core.errors import ForesizeError
from foresize.core.secrets import redact

INTERRUPTED = 130
CLOSED_PIPE = 141  # 128 + SIGPIPE: what a shell shows for `yes | head`


def redeliver_swallowed_interrupts(unraisable: Any) -> None:
    """``sys.unraisablehook`` of the ``foresize`` process: a Ctrl-C that lands in a
    callback interrupts the command all the same.

    Why: Python raises ``KeyboardInterrupt`` wherever the main thread happens to be,
    and when that is a weakref callback or a ``__del__`` (an import lock's cleanup, a
    garbage collection) the exception is "ignored": printed as a traceback and lost,
    so the command runs on to its end as if Ctrl-C had never been pressed. This hook
    takes such an interrupt instead of printing it and delivers it again from another
    thread, which can only run once the main thread has left this hook (delivered from
    here, it would land in the hook and be swallowed in turn); a redelivery that lands
    in a callback again comes back here. Everything else goes to Python's own hook.
    """
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
        _thread.start_new_thread(_thread.interrupt_main, ())
        return
    sys.__unraisablehook__(unraisable)


def report(exc: BaseException) -> int:
    """Print ``exc`` for a user and return the process exit code."""
    if isinstance(exc, KeyboardInterrupt | typer.Abort):
        stderr.print("Interrupted.", markup=False)
        return INTERRUPTED
    if isinstance(exc, typer.Exit):
        return exc.exit_code
    if isinstance(exc, SystemExit):
        # click's answer to EPIPE (`foresize ... | head`): the reader has what it wanted,
        # so nothing is printed, and the code says "pipe closed", not a crash (1)
        return CLOSED_PIPE if exc.code == 1 else int(exc.code or 0)
    if isinstance(exc, BrokenPipeError):
        return CLOSED_PIPE
    if isinstance(exc, click_exceptions.ClickException):
        _traceback(exc)
        exc.show(file=stderr.file)
        return exc.exit_code
    _traceback(exc)
    if isinstance(exc, Exception) and not isinstance(exc, ForesizeError):
        # the last line of the one error wrapper (core.guard): bad input is never a crash
        from foresize.core.guard import as_input_error  # polars: imported only on an error

        exc = as_input_error(exc, None) or exc
    if isinstance(exc, ForesizeError):
        _line(f"Error: {exc.message}")
        if exc.hint:
            _line(f"Hint: {exc.hint}")
        return exc.exit_code
    _line(f"Internal error: {type(exc).__name__}: {exc}")
    if not SETTINGS.debug:
        stderr.print("Hint: rerun with --debug for the traceback", markup=False)
    return 1


def _line(text: str) -> None:
    stderr.print(redact(text), markup=False, soft_wrap=True)


def _traceback(exc: BaseException) -> None:
    """The traceback under ``--debug`` (redacted too: a debug log gets pasted into issues)."""
    if SETTINGS.debug:
        stderr.file.write(redact("".join(traceback.format_exception(exc))))
