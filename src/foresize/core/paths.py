"""Where foresize keeps downloaded and extracted data, and what to say when a file is missing."""

from __future__ import annotations

import difflib
import itertools
import os
from pathlib import Path

from foresize.core.errors import InputError


def cache_dir() -> Path:
    """``$FORESIZE_CACHE_DIR``, else ``$XDG_CACHE_HOME/foresize``, else ``~/.cache/foresize``."""
    if explicit := os.environ.get("FORESIZE_CACHE_DIR"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "foresize"


# The bundled example inputs: the checkout's examples/ (src/foresize/core/ -> repo root).
BUNDLED_EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
_MAX_SCANNED = 2000  # files looked at per examples folder; a stray huge folder stays cheap


def missing_file(path: str | os.PathLike[str], *, dataset_names: bool = False,
                 what: str = "file") -> InputError:
    """The one-line error for an input file that does not exist, with the closest one there is.

    A new user copies a command whose input they do not have; naming the bundled example
    of that name (``examples/``), or a near spelling in the same folder, turns the dead end
    into the next command. ``dataset_names``: the argument could have been a dataset name
    instead, so the message shows what one looks like. ``what`` names the missing thing
    (``no such {what}``).
    """
    path = Path(path)
    notes = []
    if (example := _bundled_example(path)) is not None:
        notes.append(f"an example is in {example}")
    elif (near := _near_spelling(path)) is not None:
        notes.append(f"a close name: {near}")
    if dataset_names:
        notes.append("a dataset name looks like gentd26:memory_util, see 'foresize datasets "
                     "list'")
    detail = f" ({'; '.join(notes)})" if notes else ""
    return InputError(f"{path}: no such {what}{detail}")


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it lies below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _bundled_example(path: Path) -> str | None:
    """The example file whose trailing path parts match most of ``path``'s (name at least)."""
    best: tuple[int, str] | None = None
    for folder in dict.fromkeys((Path.cwd() / "examples", BUNDLED_EXAMPLES)):
        if not folder.is_dir():
            continue
        for i, candidate in enumerate(folder.rglob(path.name)):
            if i >= _MAX_SCANNED:
                break
            shared = sum(1 for _ in itertools.takewhile(
                lambda pair: pair[0] == pair[1], zip(reversed(candidate.parts),
                                                     reversed(path.parts), strict=False)))
            if candidate.is_file() and (best is None or shared > best[0]):
                best = (shared, _shown(candidate))
    return best[1] if best is not None else None


def _near_spelling(path: Path) -> str | None:
    """A file in ``path``'s folder whose name is one slip away from ``path``'s."""
    folder = path.parent
    if not folder.is_dir():
        return None
    names = [p.name for p in itertools.islice(folder.iterdir(), _MAX_SCANNED)]
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.8)
    return str(path.with_name(close[0])) if close else None
