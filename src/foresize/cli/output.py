"""Rendering of command results: stdout carries data only, stderr everything else.

Every command builds a ``Result`` (rows as a polars frame plus a JSON document) and
hands it to ``emit``; the format registry decides how it is written. Files are written
atomically, so a failed run never leaves a partial output.

Writers stream: JSON is encoded piece by piece (a document's long row list can be a
``Rows`` of the frame, turned into dicts a slice at a time) and CSV is written a slice
at a time, so the size of an output does not set the peak memory of the command.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from foresize.core.errors import InputError
from foresize.core.io import atomic_write
from foresize.core.registry import Registry

if TYPE_CHECKING:  # polars and rich.progress load where they are used: start-up stays fast
    import polars as pl
    from rich.progress import Progress, TaskID


@dataclass(slots=True)
class Settings:
    """Global options set once by the root callback."""

    quiet: bool = False
    verbose: int = 0
    debug: bool = False
    seed: int = 0


SETTINGS = Settings()
PIPE_WIDTH = 200  # tables sent to a pipe or file are not wrapped at 80 columns
stderr = Console(stderr=True, highlight=False)


def info(message: str) -> None:
    """A one-line summary or notice on stderr, unless ``--quiet``."""
    if not SETTINGS.quiet:
        stderr.print(message, markup=False, soft_wrap=True)


def detail(message: str) -> None:
    """An info log line on stderr with ``-v``."""
    if SETTINGS.verbose and not SETTINGS.quiet:
        stderr.print(message, markup=False, soft_wrap=True, style="dim")


@dataclass(slots=True)
class Result:
    """What a command produced: rows for tables/CSV/parquet and a document for JSON."""

    frame: pl.DataFrame
    document: dict[str, Any]
    title: str | None = None
    caption: str | None = None
    summary: str | None = None
    table: Callable[[Result], Table] | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)  # what a format may need


@dataclass(frozen=True, slots=True)
class Rows:
    """A frame's rows standing in a JSON document for the list ``frame.to_dicts()`` would
    build: the JSON writer encodes them a slice at a time instead of all at once.
    """

    frame: pl.DataFrame

    def to_dicts(self) -> list[dict[str, Any]]:
        """The rows as dicts, for a consumer that needs the whole list."""
        return self.frame.to_dicts()


Writer = Callable[[Result, io.BufferedWriter | Any], None]
ROWS_PER_SLICE = 10_000
_INDENT = "  "
FORMATS: Registry[Writer] = Registry("format")
SUFFIX_FORMATS = {".json": "json", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet",
                  ".txt": "table"}


def _json_default(value: object) -> object:
    if isinstance(value, Rows):
        return value.to_dicts()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    msg = f"cannot serialise {type(value).__name__}"
    raise TypeError(msg)


def _clean(value: Any) -> Any:
    """Replace non-finite floats with ``None`` so the JSON stays valid."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def to_json(document: dict[str, Any]) -> str:
    """The JSON text of a document: 2-space indent, base units, ``null`` for missing."""
    return "".join(iter_json(document)) + "\n"


def iter_json(value: Any, level: int = 0) -> Iterator[str]:
    """The text of ``to_json`` in pieces, ``Rows`` a slice at a time (same bytes as
    ``json.dumps(indent=2)``): a writer never holds the whole text, nor every row as dicts.
    """
    pad, inner = _INDENT * level, _INDENT * (level + 1)
    if isinstance(value, dict) and value:
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            yield f"{',' if i else ''}\n{inner}{json.dumps(str(key))}: "
            yield from iter_json(item, level + 1)
        yield f"\n{pad}}}"
    elif isinstance(value, Rows) and value.frame.height:
        yield "["
        for start, part in enumerate(value.frame.iter_slices(ROWS_PER_SLICE)):
            for j, row in enumerate(part.to_dicts()):
                text = json.dumps(_clean(row), indent=2, default=_json_default)
                yield f"{',' if start or j else ''}\n{inner}" + text.replace("\n", "\n" + inner)
        yield f"\n{pad}]"
    elif isinstance(value, list | tuple) and value:
        yield "["
        for i, item in enumerate(value):
            yield f"{',' if i else ''}\n{inner}"
            yield from iter_json(item, level + 1)
        yield f"\n{pad}]"
    elif isinstance(value, Rows):
        yield "[]"
    else:
        yield json.dumps(_clean(value), indent=2, default=_json_default).replace(
            "\n", "\n" + pad)


@FORMATS.register("table")
def _write_table(result: Result, handle: Any) -> None:
    to_terminal = handle is sys.stdout and sys.stdout.isatty()
    width = int(os.environ.get("COLUMNS", "0")) or (None if to_terminal else PIPE_WIDTH)
    console = Console(file=handle, width=width, highlight=False,
                      force_terminal=None if handle is sys.stdout else False)
    table = result.table(result) if result.table else frame_table(result)
    console.print(table)


@FORMATS.register("json")
def _write_json(result: Result, handle: Any) -> None:
    for piece in iter_json(result.document):
        handle.write(piece)
    handle.write("\n")


@FORMATS.register("csv")
def _write_csv(result: Result, handle: Any) -> None:
    schema = result.frame.schema
    flat = result.frame.select(_flat(column, dtype) for column, dtype in schema.items())
    if flat.height == 0:
        handle.write(flat.write_csv())
        return
    for i, part in enumerate(flat.iter_slices(ROWS_PER_SLICE)):
        handle.write(part.write_csv(include_header=i == 0))


@FORMATS.register("parquet")
def _write_parquet(result: Result, handle: Any) -> None:
    if handle is sys.stdout:
        if sys.stdout.isatty():
            raise InputError("refusing to write parquet to a terminal; pass -o FILE or pipe it")
        buffer = io.BytesIO()
        result.frame.write_parquet(buffer)
        sys.stdout.buffer.write(buffer.getvalue())
        sys.stdout.flush()
    else:
        result.frame.write_parquet(handle)


def _flat(column: str, dtype: pl.DataType) -> pl.Expr:
    """CSV cells are scalars: lists become ';'-joined text, structs JSON."""
    import polars as pl

    if isinstance(dtype, pl.List):
        return pl.col(column).list.eval(pl.element().cast(pl.String)).list.join(";")
    if isinstance(dtype, pl.Struct):
        return pl.col(column).struct.json_encode()
    return pl.col(column)


def resolve_format(fmt: str | None, output: Path | None) -> str:
    """An explicit ``--format`` wins; else the output suffix; else ``table``."""
    if fmt:
        FORMATS.get(fmt)
        return fmt
    if output is not None and str(output) != "-":
        return SUFFIX_FORMATS.get(output.suffix.lower(), "table")
    return "table"


def emit(result: Result, *, fmt: str | None, output: Path | None) -> None:
    """Write ``result`` to stdout or atomically to ``output``; then a summary on stderr."""
    name = resolve_format(fmt, output)
    writer = FORMATS.get(name)
    if output is None or str(output) == "-":
        writer(result, sys.stdout)
        sys.stdout.flush()
    else:
        with atomic_write(output) as tmp:
            if name == "parquet":
                writer(result, tmp)
            else:
                with tmp.open("w", encoding="utf-8", newline="") as handle:
                    writer(result, handle)
        info(f"wrote {output} ({result.frame.height:,} rows, {name})")
    if result.summary:
        info(result.summary)


def format_cell(column: str, value: Any) -> str:
    """Humanise one value by the unit its column name carries."""
    from foresize.core.units import human_bytes, human_duration

    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        if column.endswith("_bytes"):
            return human_bytes(value)
        if column.endswith("_s"):
            return human_duration(value)
        if column.endswith(("_pct", "_frac")):
            scale = 100 if column.endswith("_frac") else 1
            return f"{value * scale:.1f}%"
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def titled_table(result: Result) -> Table:
    """An empty table with the result's title and caption, markup-escaped (a caption such
    as "pip install 'foresize[gpu]'" must print as written).
    """
    return Table(title=escape(result.title) if result.title else None,
                 caption=escape(result.caption) if result.caption else None,
                 title_justify="left")


def frame_table(result: Result, *, columns: list[str] | None = None) -> Table:
    """A rich table of the result's frame with humanised cells."""
    frame = result.frame if columns is None else result.frame.select(columns)
    table = titled_table(result)
    for column, dtype in frame.schema.items():
        table.add_column(column, justify="right" if dtype.is_numeric() else "left",
                         overflow="fold")
    for row in frame.iter_rows():
        table.add_row(*(format_cell(c, v) for c, v in zip(frame.columns, row, strict=True)))
    return table


WORD_COLUMNS = frozenset({"workload", "resource", "gpu", "rationale", "forecaster", "item",
                          "value", "metric", "policy", "requests"})


def text_table(frame: pl.DataFrame, *, title: str | None = None,
               caption: str | None = None) -> Table:
    """A table of display text (a library view): words left, figures right; the
    rationale and value columns wrap.
    """
    table = Table(title=escape(title) if title else None,
                  caption=escape(caption) if caption else None, title_justify="left")
    for name in frame.columns:
        table.add_column(name, justify="left" if name in WORD_COLUMNS else "right",
                         no_wrap=name not in ("rationale", "value"))
    for row in frame.iter_rows():
        table.add_row(*row)
    return table


HEARTBEAT_ENV = "FORESIZE_HEARTBEAT_S"
HEARTBEAT_S = 30.0  # a piped run says where it is this often (FORESIZE_HEARTBEAT_S overrides)


def heartbeat_interval() -> float:
    """Seconds between heartbeat lines: ``FORESIZE_HEARTBEAT_S`` or 30."""
    text = os.environ.get(HEARTBEAT_ENV, "").strip()
    if not text:
        return HEARTBEAT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{HEARTBEAT_ENV}: expected a positive number of seconds, got {text!r}")
    return value


def _clock(seconds: float) -> str:
    """``130`` -> ``2m10s``: compact, for progress lines."""
    from foresize.core.units import human_duration

    return human_duration(seconds).replace(" ", "")


@dataclass(slots=True)
class Bar:
    """Counts the work units of one long step and shows them when stderr is a terminal.

    It counts whether or not anything is shown, so a command can say how far it got when
    it is interrupted (``done`` of ``total``).
    """

    description: str = ""
    total: int | None = None
    unit: str = ""
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    _progress: Progress | None = None
    _task: TaskID | None = None

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units done."""
        self.done += n
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def set_total(self, total: int) -> None:
        """Set the total once it is known (e.g. rows counted by a first pass)."""
        self.total = total
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=total)

    def line(self) -> str:
        """``backtest: 40/170 series, 2m10s elapsed, ETA 7m``: the heartbeat's text."""
        elapsed = time.monotonic() - self.started
        unit = f" {self.unit}" if self.unit else ""
        count = f"{self.done:,}/{self.total:,}" if self.total else f"{self.done:,}"
        text = f"{self.description}: {count}{unit}, {_clock(elapsed)} elapsed"
        if self.total and 0 < self.done < self.total:
            text += f", ETA {_clock(elapsed / self.done * (self.total - self.done))}"
        elif self.total and not self.done:
            text += ", ETA unknown until the first finishes"
        return text


@contextmanager
def _heartbeat(bar: Bar) -> Iterator[None]:
    """Print ``bar.line()`` on stderr every ``heartbeat_interval()`` seconds until exit.

    A thread, so a unit that runs for minutes (one ARIMA fit, one simulation) still
    shows the run is alive.
    """
    interval = heartbeat_interval()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            stderr.print(bar.line(), markup=False, soft_wrap=True)

    thread = threading.Thread(target=beat, name="foresize-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextmanager
def progress(description: str, total: int | None, *, unit: str = "") -> Iterator[Bar]:
    """Show the progress of ``total`` units of work on stderr, unless ``--quiet``.

    On a terminal: a transient rich bar with the count, the rate and the ETA. Piped (a
    log, CI): a heartbeat line every ``FORESIZE_HEARTBEAT_S`` seconds (30), so a long
    run never looks hung and the data on stdout stays clean. Count the units before the
    work starts, so the total and the ETA show from the first second.
    """
    bar = Bar(description, total, unit)
    if SETTINGS.quiet:
        yield bar
    elif not stderr.is_terminal:
        with _heartbeat(bar):
            yield bar
    else:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(escape(unit)),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=stderr,
            transient=True,
        ) as shown:
            bar._progress, bar._task = shown, shown.add_task(escape(description), total=total)
            yield bar
