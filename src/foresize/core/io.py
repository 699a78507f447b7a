"""File helpers shared by every stage: atomic writes, their temporaries, content hashes.

Every temporary foresize creates beside a destination is named
``.<name>.foresize-<pid>-<random>.tmp``: a SIGKILL can leave one behind, and the name
says whose it is, so the next run in that folder (and ``foresize env --clean``) removes
those whose process is gone, and never a file of anyone else.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from foresize.core.errors import InputError

_CHUNK = 1 << 20
TMP_MARK = "foresize"
_TEMPORARY = re.compile(rf"^\..+\.{TMP_MARK}-(?P<pid>\d+)-[^./]*\.tmp$")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _temporary_prefix(target: Path) -> str:
    return f".{target.name}.{TMP_MARK}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists but belongs to someone else
    return True


def stale_temporaries(folder: Path) -> list[Path]:
    """Temporaries in ``folder`` left by foresize processes that no longer run."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    stale = []
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match and not _alive(int(match.group("pid"))):
            stale.append(entry)
    return stale


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete :func:`stale_temporaries` of ``folder`` (files and folders); return them."""
    removed = []
    for entry in stale_temporaries(folder):
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


def remove_stale_temporaries_below(root: Path) -> list[Path]:
    """:func:`remove_stale_temporaries` in ``root`` and every folder below it (a cache)."""
    removed: list[Path] = []
    for folder, _, _ in os.walk(root):
        removed += remove_stale_temporaries(Path(folder))
    return removed


# what the file system answers when a write cannot happen there: no permission, a
# read-only mount, a file where a folder should be, a folder where the file should be
_CANNOT_WRITE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR,
                 errno.ENOENT, errno.EEXIST)


def write_error(path: Path, exc: OSError, *, what: str = "write") -> InputError:
    """A failed write as one line: a full disk says so, and how much was asked for."""
    if exc.errno in _NO_SPACE:
        return InputError(
            f"{path}: no space left to {what} it (the disk is full or a file size limit "
            "was reached)",
            hint="free some disk space, or write somewhere else",
        )
    return InputError(f"{path}: cannot write here ({exc.strerror or exc})")


def _umask() -> int:
    """The process umask (read by setting it back at once: POSIX offers no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: Path, *, folder: bool = False) -> None:
    """Give a file (0666) or folder (0777) the mode the umask allows, as ``open`` would.

    ``mkstemp`` and ``mkdtemp`` create 0600 and 0700 whatever the umask, which is right
    for a temporary but wrong for the output it is renamed into: a team's shared folder
    must get the files a user's umask says it gets.
    """
    path.chmod((0o777 if folder else 0o666) & ~_umask())


def _check_parent(path: Path) -> None:
    """The folder ``path`` goes in exists and is a folder: one line naming both if not."""
    folder = path.parent
    if not folder.exists():
        raise InputError(f"{path}: folder {folder} does not exist",
                         hint=f"create it first (mkdir -p {folder}) or write elsewhere")
    if not folder.is_dir():
        raise InputError(f"{path}: {folder} is a file, not a folder")


def check_output_file(path: Path) -> None:
    """Fail before the work starts when ``path`` could not be written as a file.

    The folder must already exist (a mistyped path never grows a tree of folders), be a
    folder and take a new file (tried, not guessed from permission bits: root, ACLs and
    read-only mounts all fool ``os.access``); ``path`` itself must not be a folder.
    """
    if path.is_dir():
        raise InputError(f"{path}: is a folder; name a file to write",
                         hint="add a file name, e.g. DIR/result.json")
    _check_parent(path)
    try:
        fd, probe = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=".tmp",
                                     dir=path.parent)
    except OSError as exc:
        raise write_error(path, exc) from None
    os.close(fd)
    Path(probe).unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], *, parents: bool = False, private: bool = False
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success.

    A failed or interrupted run therefore never leaves a half-written output file, and
    a killed one leaves a temporary the next run in that folder removes. The file gets
    the mode the umask allows unless ``private`` (0600: a file holding a secret).
    ``parents`` creates missing folders, for foresize's own cache; a user's output
    folder must exist (``check_output_file``).
    """
    target = Path(path)
    try:
        if parents:
            target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target.parent)
        fd, tmp_name = tempfile.mkstemp(prefix=_temporary_prefix(target), suffix=".tmp",
                                        dir=target.parent)
    except OSError as exc:
        raise write_error(target, exc) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not private:
            follow_umask(tmp)
        tmp.replace(target)
    except OSError as exc:
        if (exc.errno in _NO_SPACE or exc.errno in _CANNOT_WRITE
                or exc.filename in (tmp_name, str(target))):
            raise write_error(target, exc) from None
        raise
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
    return temporary_folder(target)


def temporary_folder(target: Path, *, parents: bool = False) -> Path:
    """An empty folder beside ``target`` named as a temporary (removed by the next run in
    that folder once this process is gone); ``parents`` creates missing folders above it
    (foresize's own cache), which a user's output folder must not need.
    """
    try:
        if parents:
            target.parent.mkdir(parents=True, exist_ok=True)
        else:
            _check_parent(target)
        remove_stale_temporaries(target.parent)
        return Path(tempfile.mkdtemp(prefix=_temporary_prefix(target), suffix=".tmp",
                                     dir=target.parent))
    except OSError as exc:
        raise write_error(target, exc) from None


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
        for folder, _, _ in os.walk(tmp):
            follow_umask(Path(folder), folder=True)
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
    check_output_file(path)
