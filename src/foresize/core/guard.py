"""The one error wrapper for reading input: library exceptions become one-line InputErrors.

Readers stay lazy (a CSV larger than memory is streamed), so a bad cell may surface only
when a frame is collected, deep inside a stage, as a polars ``ComputeError`` ("invalid
utf-8 sequence", "found more fields than defined in 'Schema'") or a failed cast. Those
are facts about the input, not bugs, and a script must be able to tell them from a crash:
every reader and every place that collects a user's frame runs inside
:func:`input_errors`, and the CLI runs each command inside it too, as the last line.

Only exception types that a hostile or careless input produces are converted; a
``ColumnNotFoundError`` or a ``TypeError`` from foresize's own code stays a bug (exit 1).
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

from foresize.core.errors import InputError

P = ParamSpec("P")
R = TypeVar("R")
_MAX_CHARS = 300


def data_errors() -> tuple[type[BaseException], ...]:
    """What bad input makes polars raise: parse errors and failed strict casts.

    Empty while polars is not loaded (nothing has raised them then): a reader of ONNX
    graphs, which needs polars only for its result table, loads it only there.
    """
    polars = sys.modules.get("polars")
    if polars is None:
        return ()
    return (polars.exceptions.ComputeError, polars.exceptions.InvalidOperationError)


def first_line(exc: BaseException) -> str:
    """An exception's first non-empty line, capped: polars appends pages of advice."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= _MAX_CHARS else text[: _MAX_CHARS - 1] + "…"


def as_input_error(exc: BaseException, source: str | None) -> InputError | None:
    """The ``InputError`` a data-shaped exception means, or None for anything else."""
    where = f"{source}: " if source else ""
    if isinstance(exc, data_errors()):
        return InputError(f"{where}unreadable ({first_line(exc)})",
                          hint="check the file's encoding (UTF-8), columns and number cells")
    if isinstance(exc, UnicodeDecodeError):
        return InputError(f"{where}not UTF-8 text (byte {exc.start:,}: {exc.reason})")
    if isinstance(exc, RecursionError):
        return InputError(f"{where}nested too deep to read")
    if isinstance(exc, OverflowError):
        return InputError(f"{where}a number is out of range ({first_line(exc)})")
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
        name = f"{exc.filename}: " if exc.filename else where
        return InputError(f"{name}{exc.strerror or first_line(exc)}")
    return None


@contextlib.contextmanager
def input_errors(source: str | None) -> Iterator[None]:
    """Turn a data-shaped exception raised inside into an ``InputError`` naming ``source``."""
    try:
        yield
    except InputError:
        raise
    except Exception as exc:
        converted = as_input_error(exc, source)
        if converted is None:
            raise
        raise converted from exc


def reader(function: Callable[P, R]) -> Callable[P, R]:
    """Decorate a ``read_*(path, ...)`` function: its data errors name ``path``."""

    @functools.wraps(function)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        source = str(args[0]) if args else None
        with input_errors(source):
            return function(*args, **kwargs)

    return wrapped


# what an op rule raises on a graph the ONNX spec forbids (Conv on a scalar, a negative
# axis beyond the rank, a zero stride): a fact about the file
GRAPH_ERRORS: tuple[type[BaseException], ...] = (
    IndexError, KeyError, TypeError, ZeroDivisionError, ArithmeticError, ValueError,
)


@contextlib.contextmanager
def graph_errors(source: str) -> Iterator[None]:
    """Turn an op rule's failure on a malformed graph into an ``InputError`` naming it.

    ``--debug`` still shows where the rule gave up, for the case it is a rule's bug.
    """
    try:
        yield
    except InputError:
        raise
    except GRAPH_ERRORS as exc:
        raise InputError(
            f"{source}: the graph's shapes or attributes do not fit its ops "
            f"({type(exc).__name__}: {first_line(exc)})",
            hint="check the model with onnx.checker.check_model(model, full_check=True)",
        ) from exc
