"""Safe extraction of the traces' ``.tar.gz`` archives, into a cache that heals itself.

Upstream ships each table as one CSV inside a tar.gz. Extraction refuses members that
would land outside the target folder (path traversal, absolute paths, links, devices),
names repeated or nested absurdly deep, and stops at a size cap so a gzip bomb cannot
fill the disk. A truncated or corrupt archive is a one-line ``InputError`` naming the
file; a full disk says so (it is not the archive's fault).

Everything is extracted into a temporary folder beside the target, named as
``core.io`` names temporaries, that no reader looks into; it is renamed into place only
once the whole archive was read, with a manifest (``.complete``: every file and its
size). A reader trusts a folder only when the manifest matches what is on disk, so a
kill mid-extraction, a deleted or truncated file, or an older layout is re-extracted on
the next run, and the temporaries of killed runs are removed then.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO

from foresize.core.errors import InputError
from foresize.core.io import sha256_file, temporary_folder, write_error
from foresize.core.limits import env_size, free_disk
from foresize.core.paths import cache_dir, missing_file

_MAX_BYTES_ENV = "FORESIZE_MAX_EXTRACT_BYTES"
# the traces' CSVs compress 4-5:1 and even runs of one value rarely beat 100:1; a gzip
# bomb does 1000:1
ARCHIVE_RATIO = 200
DISK_FRACTION = 0.5  # extraction never takes more than this share of the free disk
MIN_CAP = 64 * 2**20  # below this no ratio is a threat, and a tiny archive is no bomb
MAX_DEPTH = 32  # folders a member may be nested in
MAX_NAME_CHARS = 1024
MANIFEST = ".complete"
_COPY_CHUNK = 1 << 20


def max_extract_bytes(archive: Path | None = None, dest: Path | None = None) -> int:
    """Size cap for one archive's extracted contents.

    ``FORESIZE_MAX_EXTRACT_BYTES`` (``8G``, ``500M``, bytes) when set; else the smaller of
    ``ARCHIVE_RATIO`` times the archive (at least ``MIN_CAP``) and ``DISK_FRACTION`` of the
    disk ``dest`` is on.
    """
    explicit = env_size(_MAX_BYTES_ENV, 0)
    if explicit:
        return explicit
    caps = []
    if archive is not None:
        caps.append(max(MIN_CAP, ARCHIVE_RATIO * archive.stat().st_size))
    if dest is not None:
        caps.append(int(DISK_FRACTION * free_disk(dest)))
    return min(caps) if caps else ARCHIVE_RATIO * 2**30


def is_archive(path: str | os.PathLike[str]) -> bool:
    """True for the ``.tar.gz``/``.tgz`` files the traces ship as."""
    name = Path(path).name
    return name.endswith((".tar.gz", ".tgz"))


@contextmanager
def _staging(dest: Path) -> Iterator[Path]:
    """A temporary folder beside ``dest`` (see ``core.io``), removed unless renamed away."""
    staging = temporary_folder(dest, parents=True)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def extract_tar(
    archive: str | os.PathLike[str], dest: str | os.PathLike[str], *, max_bytes: int | None = None
) -> list[Path]:
    """Extract the regular files of ``archive`` as the folder ``dest``; return their paths.

    ``dest`` appears only complete (replacing whatever was there); a failure leaves it as
    it was and no temporary behind.
    """
    archive, dest = Path(archive), Path(dest)
    limit = max_extract_bytes(archive, dest.parent) if max_bytes is None else max_bytes
    with _staging(dest) as staging:
        sizes = _extract_into(archive, staging, limit)
        if not sizes:
            raise InputError(f"{archive}: archive holds no files")
        try:
            (staging / MANIFEST).write_text(json.dumps(sizes), encoding="utf-8")
            if dest.exists():
                shutil.rmtree(dest)
            staging.replace(dest)
        except OSError as exc:
            raise write_error(dest, exc, what="extract into") from None
    return [dest / name for name in sizes]


def _extract_into(archive: Path, staging: Path, limit: int) -> dict[str, int]:
    """Write every regular member below ``staging``; {relative path: size}."""
    sizes: dict[str, int] = {}
    total = 0
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for member in tar:
                name = _check_member(archive, member)
                if not member.isfile():
                    continue
                if name in sizes:
                    raise InputError(
                        f"{archive}: member {name!r} appears twice; refusing an archive "
                        "whose files would overwrite each other"
                    )
                total += member.size
                if total > limit:
                    raise InputError(
                        f"{archive}: extracted size exceeds the cap of {limit:,} bytes "
                        f"at member {name!r} ({member.size:,} bytes)",
                        hint=f"set {_MAX_BYTES_ENV} (e.g. 20G) if the archive is trusted",
                    )
                source = tar.extractfile(member)
                if source is None:  # a regular member always has a payload
                    raise InputError(f"{archive}: member {name!r} has no data")
                with source:
                    _copy(source, staging / name, archive=archive, staging=staging)
                sizes[name] = member.size
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise InputError(
            f"{archive}: truncated or corrupt tar.gz archive ({exc})",
            hint="if it came from the cache, delete it and fetch it again; a mirror copy "
            "that passed its sha256 check is the upstream file as published",
        ) from None
    return sizes


def _copy(source: IO[bytes], target: Path, *, archive: Path, staging: Path) -> None:
    """Copy a member's payload; a failed write is a disk error, never 'corrupt archive'."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        out = target.open("wb")
    except OSError as exc:
        raise write_error(staging.parent, exc, what="extract into") from None
    with out:
        while chunk := source.read(_COPY_CHUNK):
            try:
                out.write(chunk)
            except OSError as exc:
                raise write_error(staging.parent, exc, what=f"extract {archive.name} into") \
                    from None


def _check_member(archive: Path, member: tarfile.TarInfo) -> str:
    """The member's normalised relative name; refuse anything that is not a plain file or
    folder strictly below the target.
    """
    name = member.name
    if len(name) > MAX_NAME_CHARS:
        raise InputError(f"{archive}: a member name is {len(name):,} characters long; refusing")
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or Path(name).is_absolute() or ".." in parts or \
            "\x00" in name:
        raise InputError(
            f"{archive}: member {name!r} would be written outside the target folder; refusing"
        )
    if len(parts) > MAX_DEPTH:
        raise InputError(
            f"{archive}: member {name[:80]!r}... is nested {len(parts)} folders deep "
            f"(at most {MAX_DEPTH}); refusing"
        )
    if member.issym() or member.islnk():
        raise InputError(f"{archive}: member {name!r} is a link; refusing to extract links")
    if not (member.isfile() or member.isdir()):
        raise InputError(f"{archive}: member {name!r} is not a regular file; refusing")
    return "/".join(p for p in parts if p not in ("", "."))


def _complete(dest: Path) -> list[Path] | None:
    """The files of a finished extraction, or None when ``dest`` cannot be trusted (absent,
    killed mid-way in an older layout, a file deleted or truncated since).
    """
    try:
        sizes = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(sizes, dict) or not sizes:
        return None
    files = []
    for name, size in sizes.items():
        path = dest / name
        try:
            if not path.is_file() or path.stat().st_size != size:
                return None
        except OSError:
            return None
        files.append(path)
    return files


def extracted_csv(archive: str | os.PathLike[str]) -> Path:
    """The single CSV inside ``archive``, extracted once into the cache (keyed by sha256)."""
    archive = Path(archive)
    if not archive.is_file():
        raise missing_file(archive, dataset_names=True)
    digest = sha256_file(archive)
    dest = cache_dir() / "extracted" / digest[:16]
    files = _complete(dest)
    if files is None:
        extract_tar(archive, dest)
        files = _complete(dest)
        if files is None:
            raise InputError(f"{dest}: the extracted copy vanished while it was being read")
    csvs = sorted(p for p in files if p.suffix == ".csv" and not p.name.startswith("."))
    if len(csvs) != 1:
        raise InputError(f"{archive}: expected one CSV inside, found {len(csvs)}")
    return csvs[0]
