"""File helpers shared by every stage: atomic writes and content hashes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from foresize.core.errors import InputError

_CHUNK = 1 << 20


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success.

    A failed or interrupted run therefore never leaves a half-written output file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in chunks so large traces stay cheap."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _scratch_beside(target: Path) -> Path:
    """An empty temporary folder beside ``target``; a one-line error when that is impossible."""
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: exists and is not a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise InputError(f"{target}: cannot write here ({exc.strerror or exc})") from None


def check_writable_folder(path: str | os.PathLike[str]) -> None:
    """Fail now, not after an hour of work, when a report folder could not be written."""
    shutil.rmtree(_scratch_beside(Path(path)), ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it replaces ``path`` only on success.

    Reports are folders (markdown, JSON, figures): a failed run must leave neither a
    half-written folder nor a mix of old and new files.
    """
    target = Path(path)
    tmp = _scratch_beside(target)
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.replace(old)
            tmp.replace(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.replace(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_json_object(path: Path, *, what: str, hint: str | None = None) -> dict[str, Any]:
    """The JSON object in ``path`` (a config, a plan); every way it can fail names the file.

    Unreadable (missing included), empty, not JSON, or JSON but not an object: each is an
    ``InputError`` in one line; ``hint`` says where a good file comes from.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} ({exc.strerror})", hint=hint) from None
    if not text.strip():
        raise InputError(f"{path}: file is empty", hint=hint)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})", hint=hint
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(data).__name__}", hint=hint)
    return data


def check_writable_file(
    path: Path | None, *, suffixes: tuple[str, ...], what: str = "samples"
) -> None:
    """Fail before the work starts, not after an hour of it, when ``path`` cannot be written
    (a suffix not in ``suffixes``, a missing or read-only folder).
    """
    if path is None:
        return
    if path.suffix.lower() not in suffixes:
        raise InputError(f"{path}: {what} are written as {' or '.join(suffixes)}")
    folder = path.parent if str(path.parent) else Path()
    if not folder.is_dir():
        raise InputError(f"{path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise InputError(f"{path}: folder {folder} is not writable")
