"""Hostile and careless inputs, as hypothesis strategies, and one way to run a command on them.

The same strategies drive the property tests (``tests/fuzz``, a few hundred cases in the
default run, thousands with ``-m slow``) and ``benchmarks/bench_fuzz.py``. Each case is
a file a user could hand foresize: mostly valid rows with a few cells an attacker or a
careless export would put there (absurd numbers, text in number columns, invalid UTF-8
after the first rows, a row with an extra field, quotes, empty metrics).

``run_cli`` runs one command in-process and returns what a script sees: the exit code,
stdout, stderr, and whether a file was left at the ``-o`` destination.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from foresize.cli.main import main

ALLOWED_EXIT = (0, 3, 4)
HOSTILE_NUMBERS = ("1e300", "-1e300", "1e400", "-1e400", "nan", "NaN", "inf", "-inf",
                   "9223372036854775808", "-9223372036854775809", "1e20", "-1e12", "0x1F",
                   "1_000", "٣", "1e-400", "00000000000000000000001", "", " ", "NULL", "true")
HOSTILE_TEXT = ("abc", "\"quoted,comma\"", "'", "\"", "ä", "\u202e", "a\tb", "=cmd()", "😀",
                "x" * 5000, "..", "/etc/passwd", "{}", "[", "-")
INVALID_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a script running the command would see."""

    code: int
    out: str
    err: str
    wrote: bool

    @property
    def signature(self) -> str:
        """A crash's identity: the internal error's first line, numbers blanked."""
        line = next((x for x in self.err.splitlines() if x.startswith("Internal error")), "")
        return "".join("#" if c.isdigit() else c for c in line)[:160]


def run_cli(argv: Sequence[str], output: Path | None = None) -> Outcome:
    """Run ``foresize argv`` in-process with stdout/stderr captured (stdin empty)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    wrote = output is not None and output.exists()
    return Outcome(code, out.getvalue(), err.getvalue(), wrote)


def check(outcome: Outcome, *, what: str) -> None:
    """The property every case must hold: an allowed code, no traceback, no file unless 0."""
    assert outcome.code in ALLOWED_EXIT, f"{what}: exit {outcome.code}: {outcome.err[-2000:]}"
    assert "Traceback" not in outcome.err, f"{what}: {outcome.err[-2000:]}"
    assert outcome.code == 0 or not outcome.wrote, f"{what}: a file left after exit " \
                                                   f"{outcome.code}"


def leftovers(folder: Path) -> list[Path]:
    """Temporaries of atomic writes or extraction left in ``folder`` (recursively)."""
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".partial-" in p.name]


# --- cells and files ----------------------------------------------------------------------

number_cells = st.one_of(
    st.sampled_from(HOSTILE_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)
text_cells = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=12))


def _encode(cell: str | bytes) -> bytes:
    return cell if isinstance(cell, bytes) else cell.encode("utf-8", "surrogatepass")


@st.composite
def telemetry_csv(draw: st.DrawFn) -> bytes:
    """A long or wide telemetry CSV: valid rows with hostile cells and rows mixed in."""
    wide = draw(st.booleans())
    header = ["ts", "cpu_util_pct", "mem_util_pct"] if wide else \
        ["workload", "metric", "ts", "value"]
    n_rows = draw(st.integers(min_value=0, max_value=60))
    rows: list[list[str | bytes]] = []
    for i in range(n_rows):
        ts = str(1_700_000_000 + 60 * i)
        rows.append([ts, f"{i % 7 * 10.5}", "1"] if wide else
                    [f"w{i % 3}", "cpu_util_pct", ts, f"{i % 5 * 1.5}"])
    n_bad = draw(st.integers(min_value=0 if rows else 1, max_value=4))
    for _ in range(n_bad):
        where = draw(st.integers(min_value=0, max_value=len(rows)))
        kind = draw(st.sampled_from(["cell", "utf8", "extra", "short", "empty_metric",
                                     "blank"]))
        template = rows[where - 1] if rows and where else rows[0] if rows else []
        row = list(template) or (["1", "1", "1"] if wide else ["w", "m", "1", "1"])
        column = draw(st.integers(min_value=0, max_value=len(row) - 1))
        if kind == "cell":
            row[column] = draw(st.one_of(number_cells, text_cells))
        elif kind == "utf8":
            row[column] = _encode(row[column]) + draw(st.sampled_from(INVALID_UTF8))
        elif kind == "extra":
            row.append(draw(st.one_of(number_cells, text_cells)))
        elif kind == "short":
            row = row[:column]
        elif kind == "empty_metric":
            row = [r if i != (1 if not wide else column) else "" for i, r in enumerate(row)]
        else:
            row = []
        rows.insert(where, row)
    if wide and draw(st.integers(0, 4)) == 0:  # every metric cell empty
        rows = [[r[0], "", ""] if r else r for r in rows]
    lines = [b",".join(_encode(c) for c in header)]
    lines += [b",".join(_quote(_encode(c)) for c in row) for row in rows]
    return b"\n".join(lines) + draw(st.sampled_from([b"\n", b"", b"\r\n"]))


def _quote(cell: bytes) -> bytes:
    return b'"' + cell.replace(b'"', b'""') + b'"' if b"," in cell or b"\n" in cell else cell


OPENB_HEADER = ("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
                "creation_time,deletion_time,scheduled_time")


@st.composite
def openb_pods_csv(draw: st.DrawFn) -> bytes:
    """An openb pod list: valid pods, then hostile cells or bytes anywhere."""
    n_rows = draw(st.integers(min_value=1, max_value=40))
    rows: list[list[str | bytes]] = [
        [f"openb-pod-{i:04d}", "4000", "8192", str(i % 2), "1000" if i % 2 else "0", "",
         "LS", "Running", str(10 * i), str(10 * i + 500), str(10 * i)]
        for i in range(n_rows)
    ]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        row = rows[draw(st.integers(min_value=0, max_value=n_rows - 1))]
        column = draw(st.integers(min_value=0, max_value=len(row) - 1))
        if draw(st.booleans()):
            row[column] = draw(st.one_of(number_cells, text_cells))
        else:
            row[column] = _encode(row[column]) + draw(st.sampled_from(INVALID_UTF8))
    lines = [OPENB_HEADER.encode()] + [b",".join(_quote(_encode(c)) for c in r) for r in rows]
    return b"\n".join(lines) + b"\n"


def write(folder: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to ``folder/name`` and return the path."""
    path = folder / name
    path.write_bytes(data)
    return path


def fresh_output(folder: Path, name: str) -> Path:
    """An output path in ``folder`` with nothing there yet."""
    path = folder / name
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return path
