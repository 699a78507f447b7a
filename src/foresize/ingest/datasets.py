"""The checksummed registry of public traces: names, upstream files, sha256, local copies.

The catalog (``catalog.json`` beside this module) lists every dataset, its tables and,
for each upstream file, the relative path in github.com/alibaba/clusterdata, its sha256
and size. Data is only ever handed out after its sha256 matched the catalog.

Where files come from, in one predictable rule:

* **Mirror** (``mirror=`` or ``$FORESIZE_DATA_MIRROR``): a folder laid out like upstream.
  Files are read in place (``<mirror>/<path>``), never copied. A table the address names
  explicitly but the mirror lacks is an ``InputError`` giving the path and the URL; a
  whole-dataset address skips (and reports) absent tables, and fails only when the mirror
  has none of them. Nothing is downloaded while a mirror is set.
* **Cache** (otherwise): files are downloaded to ``<cache_dir>/<path>``, by default
  ``core.paths.cache_dir()/"datasets"``. The folder has the upstream layout, so a filled
  cache can later serve as a mirror. A verified file is not downloaded again; a cached copy
  that no longer matches is replaced.

Verified digests are remembered in ``<cache_dir>/.sha256-cache.json`` keyed by
(path, size, mtime), so repeated fetches of an unchanged file cost one ``stat``; the mirror
itself is never written to. ``verify`` ignores that memo and re-hashes.

Downloads use the upstream URL, or ``<base_url>/<path>`` when a base URL is given
(``base_url=`` or ``$FORESIZE_DATA_BASE_URL``): a mirror served over HTTP, and the tests'
local server. A fetch ends by one deadline (``timeout_s``, the CLI's ``--timeout``) for
all its files together: a watchdog cuts the connection when it passes, so a server that
drips a byte at a time cannot hold the fetch, and the partial file is deleted like any
failed one.

Extraction happens in one place only: ``archive.extracted_csv`` (the cache's
``extracted/<sha256 prefix>/``), which readers call on the archive ``fetch`` returns.
``fetch`` itself never extracts, so what it returns is always the file the checksum covers.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib
import json
import os
import urllib.error
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, cast

from foresize.core.errors import ChecksumError, ForesizeError, InputError, UnknownNameError
from foresize.core.io import atomic_write
from foresize.core.limits import Deadline
from foresize.core.paths import cache_dir as foresize_cache_dir
from foresize.core.registry import Registry
from foresize.ingest.archive import extracted_csv, is_archive
from foresize.ingest.watchdog import Watchdog, watched_opener

if TYPE_CHECKING:
    import polars as pl

    from foresize.ingest.report import IngestReport

MIRROR_ENV = "FORESIZE_DATA_MIRROR"
BASE_URL_ENV = "FORESIZE_DATA_BASE_URL"
DIGESTS_FILE = ".sha256-cache.json"
_CHUNK = 1 << 20
_TIMEOUT_S = 60.0  # one silence of the server
DEFAULT_DEADLINE_S = 3600.0  # a whole fetch, all its files together (``--timeout``)

Kind = Literal["telemetry", "requests", "nodes", "pods", "pai_table", "instances", "misc"]
Origin = Literal["mirror", "cache", "download"]
VerifyStatus = Literal["ok", "mismatch", "absent"]
Progress = Callable[[int], None]
"""Called with a byte count each time that many bytes were downloaded or hashed."""


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One upstream file: where it lives, what it hashes to, whether the shared mirror has it."""

    path: str
    sha256: str
    size_bytes: int | None
    url: str
    mirrored: bool


@dataclass(frozen=True, slots=True)
class Table:
    """One table of a dataset: its upstream file (plus a ``.header`` for PAI 2020 tables).

    ``reader`` is a dotted ``module:function`` string, imported only by ``load_reader``, so
    the registry loads without the readers' dependencies.
    """

    dataset: str
    name: str
    kind: Kind
    description: str
    reader: str | None
    file: RemoteFile
    header: RemoteFile | None = None
    as_telemetry: str | None = None

    @property
    def telemetry_reader(self) -> str | None:
        """Reader giving canonical telemetry: the table's own, or its telemetry view
        (request traces are profiled as arrival counts).
        """
        return self.reader if self.kind == "telemetry" else self.as_telemetry

    @property
    def address(self) -> str:
        """``dataset:table``, the form every command accepts."""
        return f"{self.dataset}:{self.name}"

    @property
    def files(self) -> tuple[RemoteFile, ...]:
        """The data file first, then its header file if it has one."""
        return (self.file,) if self.header is None else (self.file, self.header)

    @property
    def path(self) -> str:
        """Upstream relative path of the data file."""
        return self.file.path

    @property
    def sha256(self) -> str:
        """sha256 of the data file as served upstream."""
        return self.file.sha256

    @property
    def url(self) -> str:
        """Upstream URL of the data file."""
        return self.file.url

    @property
    def size_bytes(self) -> int | None:
        """Bytes of all its files, or None if any size is unknown."""
        return _total_size(self.files)

    @property
    def mirrored(self) -> bool:
        """True when the shared development mirror holds all of its files."""
        return all(f.mirrored for f in self.files)


@dataclass(frozen=True, slots=True)
class Dataset:
    """A public trace: provenance, license, citation and its tables."""

    name: str
    alias: str
    title: str
    description: str
    license: str
    homepage: str
    citation: str
    card: str
    tables: tuple[Table, ...]

    def table(self, name: str) -> Table:
        """Return the table called ``name``; a miss lists the valid names and the closest."""
        for table in self.tables:
            if table.name == name:
                return table
        raise UnknownNameError(f"{self.name} table", name, [t.name for t in self.tables])

    @property
    def size_bytes(self) -> int | None:
        """Bytes of every file of every table, or None if any size is unknown."""
        return _total_size(f for t in self.tables for f in t.files)

    @property
    def n_mirrored(self) -> int:
        """How many tables the shared development mirror holds."""
        return sum(t.mirrored for t in self.tables)


@dataclass(frozen=True, slots=True)
class FetchedTable:
    """Where one table of a fetch ended up (``paths`` empty when the mirror lacks it)."""

    table: Table
    paths: tuple[Path, ...]
    origin: Origin | None
    missing: tuple[str, ...] = ()

    @property
    def path(self) -> Path | None:
        """Local path of the data file; its header, if any, sits beside it."""
        return self.paths[0] if self.paths else None


@dataclass(frozen=True, slots=True)
class VerifyRow:
    """The outcome of re-hashing one local file against the catalog."""

    table: Table
    file: RemoteFile
    local_path: Path
    status: VerifyStatus
    actual: str | None


def _total_size(files: Iterable[RemoteFile]) -> int | None:
    sizes = [f.size_bytes for f in files]
    return None if any(s is None for s in sizes) else sum(cast(list[int], sizes))


# --- the catalog -----------------------------------------------------------------------


def _remote_file(entry: dict[str, Any], bases: dict[str, str]) -> RemoteFile:
    path = str(entry["path"])
    # The PAI 2020 tables live on OSS under their bare name; GitHub only has LFS pointers.
    # Other upstreams keep a file under another path than the mirror's (``upstream_path``).
    suffix = PurePosixPath(path).name if entry["source"] == "pai_oss" else path
    suffix = str(entry.get("upstream_path", suffix))
    return RemoteFile(
        path=path,
        sha256=str(entry["sha256"]),
        size_bytes=entry.get("size_bytes"),
        url=bases[entry["source"]] + suffix,
        mirrored=bool(entry["mirrored"]),
    )


def _dataset(entry: dict[str, Any], bases: dict[str, str]) -> Dataset:
    tables = tuple(
        Table(
            dataset=entry["name"],
            name=t["name"],
            kind=t["kind"],
            description=t["description"],
            reader=t.get("reader"),
            file=_remote_file(t["file"], bases),
            header=_remote_file(t["header"], bases) if "header" in t else None,
            as_telemetry=t.get("as_telemetry"),
        )
        for t in entry["tables"]
    )
    return Dataset(
        name=entry["name"],
        alias=entry["alias"],
        title=entry["title"],
        description=entry["description"],
        license=entry["license"],
        homepage=entry["homepage"],
        citation=entry["citation"],
        card=entry["card"],
        tables=tables,
    )


@cache
def _catalog() -> tuple[Registry[Dataset], dict[str, str]]:
    """Read the catalog once: datasets by full name, and alias -> full name."""
    text = resources.files(__package__).joinpath("catalog.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    registry: Registry[Dataset] = Registry("dataset")
    aliases: dict[str, str] = {}
    for entry in raw["datasets"]:
        dataset = registry.add(entry["name"], _dataset(entry, raw["base_urls"]))
        aliases[dataset.alias] = dataset.name
    return registry, aliases


def list_datasets() -> list[Dataset]:
    """Every registered dataset, in catalog order."""
    registry, _ = _catalog()
    return [registry.get(name) for name in registry.names()]


def get_dataset(name: str) -> Dataset:
    """Return the dataset called ``name`` (full name or alias)."""
    registry, aliases = _catalog()
    full = aliases.get(name, name)
    if full not in registry:
        raise UnknownNameError("dataset", name, [*registry.names(), *aliases])
    return registry.get(full)


def parse_address(text: str) -> tuple[Dataset, Table | None]:
    """``NAME`` or ``NAME:TABLE`` (full name or alias) -> the dataset and the table, if any."""
    name, sep, table_name = text.strip().lower().partition(":")
    dataset = get_dataset(name)
    return dataset, (dataset.table(table_name) if sep else None)


def select_tables(address: str) -> list[Table]:
    """Return the tables an address covers: the one it names, or all of its dataset."""
    dataset, table = parse_address(address)
    return [table] if table is not None else list(dataset.tables)


def load_reader(table: Table | str, *, telemetry: bool = False) -> Callable[..., Any]:
    """Import the reader of a table (or ``NAME:TABLE`` address) on demand; with
    ``telemetry`` the one that yields canonical telemetry.
    """
    if isinstance(table, str):
        table = _one_table(table)
    reader = table.telemetry_reader if telemetry else table.reader
    if reader is None:
        raise InputError(
            f"{table.address}: a {table.kind} table has no foresize "
            + ("telemetry reader" if telemetry else "reader"),
            hint=f"read it with {table.reader}" if table.reader else "read it with polars",
        )
    module_name, _, function = reader.partition(":")
    try:
        return cast(Callable[..., Any], getattr(importlib.import_module(module_name), function))
    except (ImportError, AttributeError) as exc:
        raise ForesizeError(
            f"{table.address}: reader {reader!r} cannot be loaded ({exc})"
        ) from exc


def source_url(file: RemoteFile, base_url: str | None = None) -> str:
    """Where a download of ``file`` goes: upstream, or ``<base_url>/<path>`` when overridden."""
    base = base_url if base_url is not None else os.environ.get(BASE_URL_ENV) or None
    return file.url if base is None else f"{base.rstrip('/')}/{file.path}"


# --- local folders and the digest memo -------------------------------------------------


def mirror_root(mirror: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the mirror in effect: the argument, else ``$FORESIZE_DATA_MIRROR``, else None."""
    value = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    if value is None:
        return None
    root = Path(value).expanduser()
    if not root.is_dir():
        raise InputError(
            f"{root}: dataset mirror folder does not exist", hint=f"check --mirror or ${MIRROR_ENV}"
        )
    return root


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder downloads go to: the argument, else ``<foresize cache>/datasets``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return foresize_cache_dir() / "datasets"


class _Digests:
    """Digests of files already verified, keyed by resolved path and (size, mtime)."""

    def __init__(self, root: Path) -> None:
        self.file = root / DIGESTS_FILE
        self.entries = self._load()
        self.changed = False

    def _load(self) -> dict[str, list[Any]]:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # a lost or damaged memo only costs re-hashing
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _key(path: Path) -> tuple[str, list[Any]]:
        stat = path.stat()
        return str(path.resolve()), [stat.st_size, stat.st_mtime_ns]

    def matches(self, path: Path, sha256: str) -> bool:
        key, stamp = self._key(path)
        return self.entries.get(key) == [*stamp, sha256]

    def remember(self, path: Path, sha256: str) -> None:
        key, stamp = self._key(path)
        self.entries[key] = [*stamp, sha256]
        self.changed = True

    def forget(self, path: Path) -> None:
        if self.entries.pop(str(path.resolve()), None) is not None:
            self.changed = True

    def save(self) -> None:
        if not self.changed:
            return
        try:
            with atomic_write(self.file, parents=True) as tmp:
                tmp.write_text(json.dumps(self.entries, indent=0), encoding="utf-8")
        except OSError:
            return  # a read-only cache only costs re-hashing next time
        self.changed = False


def _advance(progress: Progress | None, n_bytes: int) -> None:
    if progress is not None and n_bytes:
        progress(n_bytes)


def _hash_file(path: Path, progress: Progress | None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            _advance(progress, len(chunk))
    return digest.hexdigest()


def _digest(path: Path, expected: str, digests: _Digests, progress: Progress | None) -> str:
    """sha256 of ``path``, skipping the hashing when the memo says this exact file matched."""
    if digests.matches(path, expected):
        _advance(progress, path.stat().st_size)
        return expected
    actual = _hash_file(path, progress)
    if actual == expected:
        digests.remember(path, actual)
    else:
        digests.forget(path)
    return actual


def _mismatch(local: Path, file: RemoteFile, actual: str) -> ChecksumError:
    return ChecksumError(
        f"{local}: sha256 mismatch: expected {file.sha256}, got {actual}",
        hint=f"the local copy differs from upstream; replace it from {file.url}",
    )


# --- downloads -------------------------------------------------------------------------


def _reason(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    return str(exc.reason if isinstance(exc, urllib.error.URLError) else exc)


def _stream(url: str, dest: Path, progress: Progress | None, deadline: Deadline) -> str:
    """Copy ``url`` into ``dest`` in chunks; return the sha256 of what arrived.

    ``_TIMEOUT_S`` bounds one silence of the server; the watchdog cuts the connection when
    ``deadline`` (the whole fetch's) passes, so a server that drips a byte at a time
    cannot hold the fetch past it.
    """
    digest = hashlib.sha256()
    received = 0
    if deadline.expired:
        raise _deadline_error(url, deadline)
    try:
        with Watchdog(deadline) as watchdog, \
                watched_opener(url, watchdog).open(
                    url, timeout=min(_TIMEOUT_S, deadline.remaining())) as response, \
                dest.open("wb") as out:
            length = response.headers.get("Content-Length")
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                _advance(progress, len(chunk))
    except (OSError, ValueError, http.client.HTTPException) as exc:
        if deadline.expired:
            raise _deadline_error(url, deadline) from None
        raise InputError(
            f"{url}: download failed ({_reason(exc)}); nothing was kept",
            hint=f"check the network and run `foresize datasets fetch DATASET`, or point "
            f"--mirror/${MIRROR_ENV} at a copy",
        ) from exc
    if deadline.expired:  # a cut connection can look like a complete short answer
        raise _deadline_error(url, deadline)
    if length is not None and received != int(length):
        raise InputError(
            f"{url}: download cut short after {received:,} of {int(length):,} "
            "bytes; nothing was kept",
            hint="run the fetch again",
        )
    return digest.hexdigest()


def _deadline_error(url: str, deadline: Deadline) -> InputError:
    return InputError(
        f"{url}: download not complete within the --timeout of {deadline.seconds:g} s; "
        "nothing was kept",
        hint="raise --timeout (e.g. 2h) on a slow network, or point "
        f"--mirror/${MIRROR_ENV} at a copy",
    )


def _download(
    file: RemoteFile, target: Path, base_url: str | None, progress: Progress | None,
    deadline: Deadline,
) -> None:
    """Download ``file`` to ``target`` through a temp file; only a verified file is kept."""
    url = source_url(file, base_url)
    with atomic_write(target, parents=True) as tmp:
        actual = _stream(url, tmp, progress, deadline)
        if actual != file.sha256:
            raise ChecksumError(
                f"{file.path}: sha256 mismatch: expected {file.sha256}, got {actual} "
                f"(downloaded from {url}); the download was deleted",
                hint="upstream changed or the transfer was corrupted; retry or report it",
            )


# --- fetch -----------------------------------------------------------------------------


def in_mirror(root: Path, path: str) -> Path:
    """Where a mirror holds ``path``: below the mirror, else beside it.

    A mirror folder holds one upstream repository's files under their relative paths;
    mirrors of other repositories sit beside it (``/work/shared/datasets/alibaba-
    clusterdata`` and ``.../azure-llm-inference-2023``), so one ``--mirror`` finds both.
    """
    below = root / path
    beside = root.parent / path
    return beside if not below.is_file() and beside.is_file() else below


def _from_mirror(
    table: Table, root: Path, digests: _Digests, progress: Progress | None
) -> FetchedTable:
    missing = tuple(f.path for f in table.files if not in_mirror(root, f.path).is_file())
    if missing:
        return FetchedTable(table, (), None, missing)
    for file in table.files:
        local = in_mirror(root, file.path)
        actual = _digest(local, file.sha256, digests, progress)
        if actual != file.sha256:
            raise _mismatch(local, file, actual)
    return FetchedTable(table, tuple(in_mirror(root, f.path) for f in table.files), "mirror")


def _from_cache(
    table: Table, root: Path, digests: _Digests, progress: Progress | None, base_url: str | None,
    deadline: Deadline,
) -> FetchedTable:
    origin: Origin = "cache"
    for file in table.files:
        local = root / file.path
        if local.is_file():
            if _digest(local, file.sha256, digests, progress) == file.sha256:
                continue
            local.unlink()  # a damaged cached copy is replaced, never handed out
        _download(file, local, base_url, progress, deadline)
        digests.remember(local, file.sha256)
        origin = "download"
    return FetchedTable(table, tuple(root / f.path for f in table.files), origin)


def _not_in_mirror(root: Path, table: Table, missing: str) -> InputError:
    file = next(f for f in table.files if f.path == missing)
    return InputError(
        f"{root / missing}: {table.address} is not in the mirror; get it from {file.url}",
        hint=f"put it there, or drop --mirror/${MIRROR_ENV} to download it into the cache",
    )


def _check_mirror_misses(
    root: Path, dataset: Dataset, named: Table | None, fetched: list[FetchedTable]
) -> None:
    """A named table must be in the mirror; a whole dataset needs at least one table there."""
    absent = [f for f in fetched if f.missing]
    if named is not None and absent:
        raise _not_in_mirror(root, named, absent[0].missing[0])
    if absent and len(absent) == len(fetched):
        first = absent[0]
        raise InputError(
            f"{root}: none of the {len(fetched)} tables of {dataset.name} is in the mirror "
            f"(looked for {first.missing[0]})",
            hint=f"drop --mirror/${MIRROR_ENV} to download them from {first.table.url}",
        )


def fetch_tables(
    address: str,
    *,
    mirror: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    base_url: str | None = None,
    kinds: Collection[Kind] | None = None,
    timeout_s: float = DEFAULT_DEADLINE_S,
) -> list[FetchedTable]:
    """Verify (mirror) or download and verify (cache) every table of ``address``.

    Returns one entry per table, including tables a whole-dataset address skipped because
    the mirror lacks them (``origin`` None, ``missing`` set), so callers can report them.
    ``kinds`` narrows a whole-dataset address to tables of those kinds. The downloads end
    by one deadline, ``timeout_s`` from now, all files together (an ``InputError`` past it).
    """
    deadline = Deadline(timeout_s)
    dataset, named = parse_address(address)
    if named is not None:
        tables = [named]
    else:
        tables = [t for t in dataset.tables if kinds is None or t.kind in kinds]
    root = mirror_root(mirror)
    digests = _Digests(cache_root(cache_dir))
    try:
        if root is None:
            local = cache_root(cache_dir)
            return [_from_cache(t, local, digests, progress, base_url, deadline)
                    for t in tables]
        fetched = [_from_mirror(t, root, digests, progress) for t in tables]
    finally:
        digests.save()
    _check_mirror_misses(root, dataset, named, fetched)
    return fetched


def fetch(
    address: str,
    *,
    mirror: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    base_url: str | None = None,
    timeout_s: float = DEFAULT_DEADLINE_S,
) -> list[Path]:
    """Return verified local paths of the data files of ``address``, one per table.

    PAI 2020 tables bring their ``.header`` along; it sits beside the data file. With a
    mirror and a whole-dataset address, tables absent from the mirror are left out (see
    ``fetch_tables`` for which).
    """
    fetched = fetch_tables(address, mirror=mirror, cache_dir=cache_dir, progress=progress,
                           base_url=base_url, timeout_s=timeout_s)
    return [f.path for f in fetched if f.path is not None]


# --- local state: path, verify ---------------------------------------------------------


def _one_table(address: str) -> Table:
    dataset, table = parse_address(address)
    if table is not None:
        return table
    if len(dataset.tables) == 1:
        return dataset.tables[0]
    choices = ", ".join(f"{dataset.alias}:{t.name}" for t in dataset.tables[:4])
    raise InputError(
        f"{address!r} names {len(dataset.tables)} tables; name one, e.g. {choices}, ..."
    )


def table_path(
    address: str,
    *,
    mirror: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Return the verified local path of the one table ``address`` names; never download."""
    table = _one_table(address)
    root = mirror_root(mirror)
    local_root = root if root is not None else cache_root(cache_dir)
    digests = _Digests(cache_root(cache_dir))
    try:
        for file in table.files:
            local = local_root / file.path if root is None else in_mirror(root, file.path)
            if not local.is_file():
                if root is not None:
                    raise _not_in_mirror(root, table, file.path)
                raise InputError(
                    f"{local}: {table.address} is not fetched yet",
                    hint=f"run: foresize datasets fetch {table.address}",
                )
            actual = _digest(local, file.sha256, digests, None)
            if actual != file.sha256:
                raise _mismatch(local, file, actual)
    finally:
        digests.save()
    return local_root / table.file.path if root is None else in_mirror(root, table.file.path)


def extracted_path(
    address: str,
    *,
    mirror: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Return the CSV of one table: the file itself, or the one CSV in its ``.tar.gz``."""
    path = table_path(address, mirror=mirror, cache_dir=cache_dir)
    return extracted_csv(path) if is_archive(path) else path


def verify(
    address: str | None = None,
    *,
    mirror: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> list[VerifyRow]:
    """Re-hash every local file of ``address`` (default: all datasets); absent files are rows.

    The digest memo is bypassed, then refreshed with what was found.
    """
    tables = select_tables(address) if address else [t for d in list_datasets() for t in d.tables]
    root = mirror_root(mirror)
    local_root = root if root is not None else cache_root(cache_dir)
    digests = _Digests(cache_root(cache_dir))
    rows: list[VerifyRow] = []
    try:
        for table in tables:
            for file in table.files:
                local = local_root / file.path if root is None else in_mirror(root, file.path)
                rows.append(_verify_file(table, file, local, digests, progress))
    finally:
        digests.save()
    return rows


def _verify_file(
    table: Table, file: RemoteFile, local: Path, digests: _Digests, progress: Progress | None
) -> VerifyRow:
    if not local.is_file():
        return VerifyRow(table, file, local, "absent", None)
    actual = _hash_file(local, progress)
    if actual == file.sha256:
        digests.remember(local, actual)
        return VerifyRow(table, file, local, "ok", actual)
    digests.forget(local)
    return VerifyRow(table, file, local, "mismatch", actual)


# --- reading -----------------------------------------------------------------------------


def read_telemetry_tables(
    address: str,
    *,
    mirror: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    timeout_s: float = DEFAULT_DEADLINE_S,
) -> tuple[list[pl.DataFrame], list[IngestReport]]:
    """Fetch the telemetry tables of ``address`` and read each with its registered reader.

    A whole-dataset address takes its ``telemetry`` tables (those present, with a mirror);
    a named table is read through its telemetry view if it has one (``gentd26:lora`` as
    arrival counts), else it is an ``InputError``. ``timeout_s`` bounds the downloads.
    """
    _, named = parse_address(address)
    if named is not None and named.telemetry_reader is None:
        raise InputError(
            f"{named.address} holds {named.kind}, not telemetry",
            hint=f"read it with {named.reader or 'polars'}",
        )
    telemetry: tuple[Kind, ...] = ("telemetry",) if named is None else (named.kind,)
    fetched = fetch_tables(address, mirror=mirror, cache_dir=cache_dir, kinds=telemetry,
                           timeout_s=timeout_s)
    results = [
        load_reader(f.table, telemetry=True)(f.path) for f in fetched if f.path is not None
    ]
    if not results:
        raise InputError(
            f"{address}: no telemetry table in this dataset",
            hint="list the tables and their kinds: foresize datasets info NAME",
        )
    return [frame for frame, _ in results], [report for _, report in results]
