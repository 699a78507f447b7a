"""Safe extraction of the traces' ``.tar.gz`` archives.

Upstream ships each table as one CSV inside a tar.gz. Extraction refuses members that
would land outside the target folder (path traversal, absolute paths, links), stops at
a size cap so a gzip bomb cannot fill the disk, and turns truncated or corrupt archives
into a one-line ``InputError`` naming the file.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import zlib
from pathlib import Path

from foresize.core.errors import InputError
from foresize.core.io import sha256_file
from foresize.core.paths import cache_dir

DEFAULT_MAX_BYTES = 64 * 2**30
_MAX_BYTES_ENV = "FORESIZE_MAX_EXTRACT_BYTES"


def max_extract_bytes() -> int:
    """Size cap for one archive's extracted contents (env ``FORESIZE_MAX_EXTRACT_BYTES``)."""
    return int(os.environ.get(_MAX_BYTES_ENV, DEFAULT_MAX_BYTES))


def is_archive(path: str | os.PathLike[str]) -> bool:
    """True for the ``.tar.gz``/``.tgz`` files the traces ship as."""
    name = Path(path).name
    return name.endswith((".tar.gz", ".tgz"))


def extract_tar(
    archive: str | os.PathLike[str], dest: str | os.PathLike[str], *, max_bytes: int | None = None
) -> list[Path]:
    """Extract regular files of ``archive`` below ``dest``; return their paths.

    Everything goes to a temporary folder first and is moved into place only when the
    whole archive was read, so a truncated archive leaves nothing behind.
    """
    archive = Path(archive)
    dest = Path(dest)
    limit = max_extract_bytes() if max_bytes is None else max_bytes
    dest.mkdir(parents=True, exist_ok=True)
    staging = dest / f".partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    written: list[Path] = []
    total = 0
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for member in tar:
                _check_member(archive, member)
                if not member.isfile():
                    continue
                total += member.size
                if total > limit:
                    raise InputError(
                        f"{archive}: extracted size exceeds the cap of {limit:,} bytes "
                        f"at member {member.name!r}",
                        hint=f"raise {_MAX_BYTES_ENV} if the archive is trusted",
                    )
                target = staging / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has a payload
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
                written.append(Path(member.name))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise InputError(
            f"{archive}: truncated or corrupt tar.gz archive ({exc})",
            hint="delete it and fetch it again",
        ) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not written:
        shutil.rmtree(staging, ignore_errors=True)
        raise InputError(f"{archive}: archive holds no files")
    final: list[Path] = []
    for relative in written:
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        (staging / relative).replace(target)
        final.append(target)
    shutil.rmtree(staging, ignore_errors=True)
    return final


def _check_member(archive: Path, member: tarfile.TarInfo) -> None:
    name = member.name
    parts = Path(name).parts
    if Path(name).is_absolute() or ".." in parts or name.startswith(("/", "\\")):
        raise InputError(
            f"{archive}: member {name!r} would be written outside the target folder; refusing"
        )
    if member.issym() or member.islnk():
        raise InputError(f"{archive}: member {name!r} is a link; refusing to extract links")
    if not (member.isfile() or member.isdir()):
        raise InputError(f"{archive}: member {name!r} is not a regular file; refusing")


def extracted_csv(archive: str | os.PathLike[str]) -> Path:
    """The single CSV inside ``archive``, extracted once into the cache (keyed by sha256)."""
    archive = Path(archive)
    if not archive.is_file():
        raise InputError(f"{archive}: no such file")
    digest = sha256_file(archive)
    dest = cache_dir() / "extracted" / digest[:16]
    done = dest / ".complete"
    if not done.exists():
        extract_tar(archive, dest)
        done.touch()
    csvs = sorted(p for p in dest.rglob("*.csv") if not p.name.startswith("."))
    if len(csvs) != 1:
        raise InputError(f"{archive}: expected one CSV inside, found {len(csvs)}")
    return csvs[0]
