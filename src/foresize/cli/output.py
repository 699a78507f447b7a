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
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from foresize.cli.checks import Check, check_gate_columns, enforce
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
PIPE_WIDTH = 120  # a table sent to a pipe or file is the one a 120-column terminal shows
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
    table: Callable[[Result], RenderableType] | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)  # what a format may need
    wide: bool = False  # tables: every column (--wide), not the summary


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


def _flat_rows(frame: pl.DataFrame, pad: str) -> json.JSONEncoder | None:
    """For rows of scalars only, an encoder whose one line per row, framed, is the bytes
    ``json.dumps(row, indent=2)`` gives, but from the C encoder (which Python uses only
    without ``indent``; the indented one is pure Python, ten times slower on the 200k
    rows of a long forecast). None when a column nests (lists, structs).
    """
    import polars as pl

    if any(dtype.is_nested() or dtype == pl.Object for dtype in frame.schema.values()):
        return None
    return json.JSONEncoder(separators=(",\n" + pad, ": "), default=_json_default)


def _finite_floats(frame: pl.DataFrame) -> pl.DataFrame:
    """Non-finite floats as nulls, as ``_clean`` makes them, column by column."""
    import polars as pl

    floats = [name for name, dtype in frame.schema.items() if dtype.is_float()]
    if not floats:
        return frame
    return frame.with_columns(
        pl.when(pl.col(name).is_finite()).then(pl.col(name)).otherwise(None).alias(name)
        for name in floats
    )


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
        flat = _flat_rows(value.frame, inner + _INDENT)
        for start, part in enumerate(value.frame.iter_slices(ROWS_PER_SLICE)):
            if flat is not None:
                for j, row in enumerate(_finite_floats(part).to_dicts()):
                    text = flat.encode(row)
                    body = f"{{\n{inner}{_INDENT}{text[1:-1]}\n{inner}}}" if row else "{}"
                    yield f"{',' if start or j else ''}\n{inner}" + body
                continue
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
    if result.wide:  # every column at its natural width: lines may pass the terminal's edge
        console.width = max(console.width, console.measure(table,
                            options=console.options.update_width(10_000)).maximum)
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


def emit(result: Result, *, fmt: str | None, output: Path | None,
         checks: Sequence[Check] = ()) -> None:
    """Write ``result`` to stdout or atomically to ``output``; then a summary on stderr;
    then judge the ``--check`` gates on its rows (exit 5 when one breaks).
    """
    name = resolve_format(fmt, output)
    writer = FORMATS.get(name)
    check_gate_columns([result.frame], checks)
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
    enforce([result.frame], checks)


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


@dataclass(frozen=True, slots=True)
class Col:
    """One column of a table: the frame column it shows, a short header that carries the
    unit, how a cell reads, and whether the summary view shows it (``--wide`` shows all).

    The order of a table's columns is also their priority: when the summary does not fit
    the width, the last ones give way first, so the columns a person acts on come first.
    """

    key: str
    header: str | None = None
    show: Callable[[Any], str] | None = None
    summary: bool = True
    prose: bool = False  # free text that may wrap between words (a description, a value)


MIN_PROSE = 24  # a prose column narrower than this reads as a column of fragments
ID_SHORTEN_AT = 20  # ids this long (32-hex hashes) show as their shortest unique prefix
ID_PREFIX = 8
ID_COLUMNS = frozenset({"workload", "series", "container", "pod", "job", "task"})
_UNIT_SUFFIXES = (("_frac", " %"), ("_pct", " %"), ("_usd", " $"), ("_hours", " h"),
                  ("_bytes", ""), ("_s", ""))


_ABBREVIATIONS = (("allocated at ", "alloc@"), ("fragmentation", "frag"),
                  ("utilisation", "util"), ("seconds", "s"), ("per replica", "/replica"))


def short_header(key: str) -> str:
    """A frame column's header: the unit suffix becomes a unit mark (``idle_frac`` ->
    ``idle %``), ``n_`` counts lose the prefix, and underscores become spaces.
    """
    name, unit = key, ""
    for suffix, mark in _UNIT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name, unit = name[: -len(suffix)], mark
            break
    name = name.removeprefix("n_").replace("_", " ")
    for long, short in _ABBREVIATIONS:
        name = name.replace(long, short)
    return name + unit


def table_cell(key: str, value: Any) -> str:
    """A cell as a table shows it: like :func:`format_cell`, but a percentage drops its
    ``%`` (the header carries it, see :func:`short_header`), and numbers never wrap.
    """
    if isinstance(value, float) and math.isfinite(value) and key.endswith(("_pct", "_frac")):
        return f"{value * (100 if key.endswith('_frac') else 1):.1f}"
    if isinstance(value, float) and math.isfinite(value) and key.endswith("_usd"):
        return f"{value:,.2f}"
    return format_cell(key, value)


def short_ids(values: list[str], *, least: int = ID_PREFIX) -> list[str]:
    """Long ids (32-hex hashes) as their shortest prefix that is unique within ``values``,
    at least ``least`` characters, with an ellipsis; the full id stays in JSON/CSV/parquet.
    Ids shorter than ``ID_SHORTEN_AT`` characters are names a person chose: kept whole.
    """
    long = sorted({v for v in values if len(v) >= ID_SHORTEN_AT})
    if not long:
        return values
    length = least
    for a, b in pairwise(long):
        common = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                      min(len(a), len(b)))
        length = max(length, common + 1)
    return [v[:length] + "…" if len(v) >= ID_SHORTEN_AT and len(v) > length + 1 else v
            for v in values]


class FitTable:
    """A table laid out for the width it is drawn at, never squeezed: every cell stays on
    one line (only prose columns wrap, between words), headers are never broken, and the
    summary keeps the columns that fit in their priority order, naming how many more
    ``--wide`` shows. ``wide`` lays out every column at its natural width.
    """

    def __init__(self, columns: list[Col], rows: list[list[str]], *, title: str | None,
                 caption: str | None, wide: bool) -> None:
        self.columns = columns
        self.rows = rows
        self.title = title
        self.caption = caption
        self.wide = wide

    def _natural(self, index: int) -> int:
        column = self.columns[index]
        cells = [len(line) for row in self.rows for line in row[index].splitlines() or [""]]
        return max([len(column.header or column.key), *cells])

    def _least(self, index: int) -> int:
        column = self.columns[index]
        natural = self._natural(index)
        if not column.prose:
            return natural
        words = [len(w) for row in self.rows for w in row[index].split()]
        return min(natural, max([MIN_PROSE, len(column.header or column.key), *words]))

    def layout(self, width: int) -> tuple[list[int], dict[int, int]]:
        """The columns shown and their widths at ``width`` characters."""
        shown = [i for i, c in enumerate(self.columns) if self.wide or c.summary]
        if self.wide:
            return shown, {i: self._natural(i) for i in shown}
        least = {i: self._least(i) for i in shown}

        def total(cols: list[int]) -> int:
            return sum(least[i] for i in cols) + 3 * len(cols) + 1

        while len(shown) > 1 and total(shown) > width:
            shown.pop()
        widths = dict(least)
        spare = width - total(shown)
        for i in shown:
            if self.columns[i].prose and spare > 0:
                grow = min(spare, self._natural(i) - widths[i])
                widths[i] += grow
                spare -= grow
        return shown, widths

    def build(self, width: int) -> Table:
        """The rich table for ``width`` characters."""
        shown, widths = self.layout(width)
        hidden = len(self.columns) - len(shown)
        note = (f"{hidden} more column{'s' if hidden > 1 else ''}: --wide or -f json"
                if hidden else None)
        caption = "\n".join(t for t in (self.caption, note) if t) or None
        table = Table(title=escape(self.title) if self.title else None,
                      caption=escape(caption) if caption else None, title_justify="left")
        for i in shown:
            column = self.columns[i]
            numeric = not column.prose and column.key not in WORD_COLUMNS and all(
                _looks_numeric(row[i]) for row in self.rows)
            table.add_column(escape(column.header or column.key), width=widths[i],
                             no_wrap=not column.prose, overflow="fold",
                             justify="right" if numeric else "left")
        for row in self.rows:
            table.add_row(*(escape(row[i]) for i in shown))
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.build(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        shown, widths = self.layout(options.max_width)
        size = sum(widths[i] for i in shown) + 3 * len(shown) + 1
        return Measurement(min(size, options.max_width), size)


def _looks_numeric(text: str) -> bool:
    """A cell that reads as a figure (right-aligned): starts with a digit, sign or '$'."""
    head = text.lstrip("+-$~<>")
    return text in ("-", "") or (head[:1].isdigit() and not text.endswith("…"))


def fit_table(result: Result, columns: Sequence[Col | str]) -> FitTable:
    """The table of ``result.frame`` with the given columns (``str`` for a column with the
    default header and cell); id columns show short unique prefixes.
    """
    specs = [Col(c, short_header(c), prose=c in PROSE_COLUMNS) if isinstance(c, str) else c
             for c in columns]
    specs = [c if c.header else replace(c, header=short_header(c.key)) for c in specs]
    cells: list[list[str]] = []
    for spec in specs:
        values = result.frame.get_column(spec.key).to_list()
        shown = [spec.show(v) if spec.show else table_cell(spec.key, v) for v in values]
        if spec.key in ID_COLUMNS:
            shown = short_ids(shown)
        cells.append(shown)
    rows = [list(row) for row in zip(*cells, strict=True)] if cells else []
    return FitTable(specs, rows, title=result.title, caption=result.caption, wide=result.wide)


def frame_table(result: Result, *, columns: Sequence[Col | str] | None = None) -> FitTable:
    """The result's frame as a table: ``columns`` are the summary (in priority order), the
    frame's other columns appear with ``--wide``.
    """
    chosen = list(columns) if columns is not None else list(result.frame.columns)
    named = {c if isinstance(c, str) else c.key for c in chosen}
    rest = [Col(c, summary=False, prose=c in PROSE_COLUMNS) for c in result.frame.columns
            if c not in named]
    return fit_table(result, [*chosen, *rest])


WORD_COLUMNS = frozenset({"workload", "resource", "gpu", "rationale", "forecaster", "item",
                          "value", "metric", "policy", "requests"})
PROSE_COLUMNS = frozenset({"rationale", "value", "description", "note"})


def text_table(frame: pl.DataFrame, *, title: str | None = None,
               caption: str | None = None, wide: bool = False,
               summary: Sequence[str] | None = None) -> FitTable:
    """A table of display text (a library view): the rationale and value columns wrap
    between words, every other cell stays on one line; ``summary`` names the columns
    shown without ``--wide`` (default all).
    """
    chosen = set(frame.columns if summary is None else summary)
    columns = [Col(name, name, summary=name in chosen, prose=name in PROSE_COLUMNS)
               for name in frame.columns]
    cells = [[str(v) for v in frame.get_column(name).to_list()] for name in frame.columns]
    cells = [short_ids(c) if name in ID_COLUMNS else c
             for name, c in zip(frame.columns, cells, strict=True)]
    rows = [list(row) for row in zip(*cells, strict=True)] if cells else []
    return FitTable(columns, rows, title=title, caption=caption, wide=wide)


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


def python_owns_ctrl_c() -> None:
    """Give SIGINT back to Python's own handler, in the main thread, once polars is loaded.

    Why: polars installs a SIGINT handler of its own when it loads (pola-rs/polars#20961,
    to interrupt its queries), and with it a Ctrl-C sometimes ends the process at once
    with status 130, before Python sees the signal: no "Ctrl-C keeps what is done", no
    message (about 1 run in 10 of ``forecast backtest`` interrupted after its first
    series). Long work starts here, after the data is read, so from here on Ctrl-C is
    Python's ``KeyboardInterrupt`` again, which every command turns into kept work and
    exit 130. A polars call then finishes before the interrupt is seen.
    """
    if "polars" not in sys.modules or threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGINT)
    if current is not None:  # None: set outside Python, left alone
        signal.signal(signal.SIGINT, current)


@contextmanager
def progress(description: str, total: int | None, *, unit: str = "") -> Iterator[Bar]:
    """Show the progress of ``total`` units of work on stderr, unless ``--quiet``.

    On a terminal: a transient rich bar with the count, the rate and the ETA. Piped (a
    log, CI): a heartbeat line every ``FORESIZE_HEARTBEAT_S`` seconds (30), so a long
    run never looks hung and the data on stdout stays clean. Count the units before the
    work starts, so the total and the ETA show from the first second.
    """
    python_owns_ctrl_c()
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
