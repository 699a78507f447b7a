"""``foresize datasets``: the checksummed registry of public traces.

``fetch`` and ``path`` print bare paths, one per line, so ``$(foresize datasets path X)``
works; ``-f json|csv|parquet`` (or ``-f table``) gives the full rows instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import RenderableType

from foresize.cli.common import provenance
from foresize.cli.options import FormatOpt, MirrorOpt, OutputOpt, WideOpt, opt
from foresize.cli.output import Col, Result, emit, frame_table, info, progress, resolve_format
from foresize.core.errors import ChecksumError
from foresize.core.io import atomic_write
from foresize.ingest import datasets

app = typer.Typer(
    help="Checksummed registry of public traces: list, info, fetch, verify, path.",
    no_args_is_help=True,
)


def _examples(*lines: str) -> str:
    # typer's rich help joins single newlines; blank lines keep one example per line.
    return "\n\n".join(["Examples:", *lines])


LIST_EPILOG = _examples("foresize datasets list", "foresize datasets list -f json")
INFO_EPILOG = _examples(
    "foresize datasets info gentd26", "foresize datasets info openb:multigpu50 -f json"
)
FETCH_EPILOG = _examples(
    "foresize datasets fetch gentd26",
    "foresize datasets fetch openb:default --mirror ../shared/datasets/alibaba-clusterdata",
    "foresize datasets fetch pai2020:job -f json -o fetched.json",
)
VERIFY_EPILOG = _examples("foresize datasets verify", "foresize datasets verify gentd26 -f json")
PATH_EPILOG = _examples(
    "foresize datasets path gentd26:lora", "foresize datasets path openb:nodes_gpu --extracted"
)


def _complete_address(incomplete: str) -> list[str]:
    names = [
        name
        for d in datasets.list_datasets()
        for name in (d.name, d.alias, *(f"{d.alias}:{t.name}" for t in d.tables))
    ]
    return [name for name in names if name.startswith(incomplete)]


AddressArg = Annotated[str, typer.Argument(
    help="NAME or NAME:TABLE (full name or alias), e.g. gentd26, openb:default.",
    autocompletion=_complete_address, show_default=False)]
CacheDirOpt = Annotated[Path | None, opt(
    "--cache-dir", "Download into this folder (upstream layout, usable later as --mirror) "
    "instead of the foresize cache.", "Input", file_okay=False)]
TimeoutOpt = Annotated[str, opt(
    "--timeout", "Give up on the downloads after this long, all files together, however "
    "slowly the server sends, e.g. 2h.", "Input")]


LONG = frozenset({"url", "path", "file", "title"})  # long text: shown with --wide


def _human_table(columns: list[str]) -> Callable[[Result], RenderableType]:
    """Render chosen columns: sizes humanised, digests cut to 12 characters, yes/no flags."""

    def render(result: Result) -> RenderableType:
        import polars as pl

        frame = result.frame.select(columns)
        frame = frame.with_columns(
            *(pl.col(c).cast(pl.Float64) for c in columns if c.endswith("_bytes")),
            *(pl.col(c).str.slice(0, 12) for c in columns if c.endswith("sha256")),
            *(
                pl.col(c).replace_strict({True: "yes", False: "no"}, return_dtype=pl.String)
                for c, dtype in frame.schema.items()
                if dtype == pl.Boolean
            ),
        )
        shown = Result(frame, result.document, title=result.title, caption=result.caption,
                       wide=result.wide)
        return frame_table(shown, columns=[c if c not in LONG else Col(c, summary=False)
                                           for c in columns])

    return render


def _emit_paths(result: Result, paths: list[Path], *, fmt: str | None, output: Path | None) -> None:
    """Bare paths, one per line, unless a format was asked for (or implied by ``-o``)."""
    if fmt is not None or resolve_format(None, output) != "table":
        emit(result, fmt=fmt, output=output)
        return
    text = "".join(f"{path}\n" for path in paths)
    if output is None or str(output) == "-":
        typer.echo(text, nl=False)
    else:
        with atomic_write(output) as tmp:
            tmp.write_text(text, encoding="utf-8")
        info(f"wrote {output} ({len(paths)} path{'' if len(paths) == 1 else 's'})")
    if result.summary:
        info(result.summary)


@app.command("list", epilog=LIST_EPILOG)
def list_command(fmt: FormatOpt = None, output: OutputOpt = None, wide: WideOpt = False) -> None:
    """List the registered datasets: tables, size, license, and how many the shared mirror has."""
    import polars as pl

    from foresize.ingest.dataset_rows import dataset_doc

    docs = [dataset_doc(d) for d in datasets.list_datasets()]
    columns = ["name", "alias", "n_tables", "n_mirrored", "size_bytes", "license", "title"]
    frame = pl.DataFrame([{c: doc[c] for c in columns} for doc in docs]).rename({"name": "dataset"})
    shown = _human_table(["dataset", "alias", "n_tables", "n_mirrored", "size_bytes", "license"])
    emit(Result(frame, {**provenance({}), "datasets": docs}, title="Datasets", table=shown,
                caption="mirrored: tables in the shared development mirror", wide=wide),
         fmt=fmt, output=output)


@app.command("info", epilog=INFO_EPILOG)
def info_command(name: AddressArg, fmt: FormatOpt = None, output: OutputOpt = None,
                 wide: WideOpt = False) -> None:
    """Show a dataset's tables: upstream path, size, sha256, kind, mirrored, URL; and its card."""
    import polars as pl

    from foresize.ingest.dataset_rows import dataset_doc, file_rows

    dataset, _ = datasets.parse_address(name)
    rows = file_rows(datasets.select_tables(name))
    frame = pl.DataFrame(rows, schema_overrides={"size_bytes": pl.Int64, "reader": pl.String})
    document = {**provenance({}), "dataset": dataset_doc(dataset), "files": rows}
    caption = (
        f"{dataset.license} · cite: {dataset.citation} · card: {dataset.card} · {dataset.homepage}"
    )
    emit(Result(frame, document, title=f"{dataset.name} ({dataset.alias}): {dataset.title}",
                caption=caption, wide=wide,
                table=_human_table(["table", "kind", "size_bytes", "sha256", "mirrored", "url"])),
         fmt=fmt, output=output)


@app.command("fetch", epilog=FETCH_EPILOG)
def fetch_command(address: AddressArg, mirror: MirrorOpt = None, cache_dir: CacheDirOpt = None,
                  timeout: TimeoutOpt = "1h", fmt: FormatOpt = None, output: OutputOpt = None,
                  wide: WideOpt = False) -> None:
    """Download a dataset or table (or find it in a mirror) and verify every sha256.

    stdout gets the local paths, one per line; -f table/json/csv/parquet gives the rows.
    """
    import polars as pl

    from foresize.core.units import parse_duration
    from foresize.ingest.dataset_rows import fetch_rows, fetch_summary

    timeout_s = parse_duration(timeout)
    if timeout_s <= 0:
        raise typer.BadParameter(f"{timeout!r} is not a positive duration",
                                 param_hint="--timeout")
    total = sum(t.size_bytes or 0 for t in datasets.select_tables(address)) or None
    with progress(f"fetching {address}", total) as bar:
        fetched = datasets.fetch_tables(address, mirror=mirror, cache_dir=cache_dir,
                                        progress=bar.advance, timeout_s=timeout_s)
    rows = fetch_rows(fetched)
    frame = pl.DataFrame(
        rows, schema_overrides={"origin": pl.String, "path": pl.String, "size_bytes": pl.Int64}
    )
    inputs = {str(p): file.sha256 for f in fetched
              for p, file in zip(f.paths, f.table.files, strict=False)}
    document = {**provenance(inputs), "address": address, "tables": rows}
    result = Result(frame.drop("files", "missing"), document, title=f"Fetched {address}",
                    summary=fetch_summary(fetched), wide=wide,
                    table=_human_table(["table", "status", "origin", "size_bytes", "path"]))
    _emit_paths(result, [f.path for f in fetched if f.path is not None], fmt=fmt, output=output)


@app.command("verify", epilog=VERIFY_EPILOG)
def verify_command(
    address: Annotated[str | None, typer.Argument(
        help="NAME or NAME:TABLE; default: every dataset.", autocompletion=_complete_address,
        show_default=False)] = None,
    mirror: MirrorOpt = None,
    cache_dir: CacheDirOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    wide: WideOpt = False,
) -> None:
    """Re-hash the local copies (mirror, else cache) against the registry; exit 3 on a mismatch."""
    from foresize.ingest.dataset_rows import verify_frame

    with progress("verifying", None) as bar:
        rows = datasets.verify(address, mirror=mirror, cache_dir=cache_dir, progress=bar.advance)
    counts = {s: sum(r.status == s for r in rows) for s in ("ok", "mismatch", "absent")}
    where = datasets.mirror_root(mirror) or datasets.cache_root(cache_dir)
    summary = (
        f"{where}: {counts['ok']} ok, {counts['mismatch']} mismatched, {counts['absent']} absent"
    )
    frame = verify_frame(rows)
    document = {**provenance({}), "location": str(where), "counts": counts,
                "files": frame.to_dicts()}
    shown = _human_table(["table", "status", "size_bytes", "dataset", "expected_sha256",
                          "actual_sha256", "file"])
    emit(Result(frame, document, title=f"Verify {address or 'all datasets'}", summary=summary,
                table=shown, wide=wide), fmt=fmt, output=output)
    bad = [r for r in rows if r.status == "mismatch"]
    if bad:
        raise ChecksumError(
            f"{len(bad)} file(s) failed verification; first: {bad[0].local_path}: expected "
            f"{bad[0].file.sha256}, got {bad[0].actual}",
            hint=f"replace it from {bad[0].file.url}",
        )


@app.command("path", epilog=PATH_EPILOG)
def path_command(
    address: AddressArg,
    mirror: MirrorOpt = None,
    cache_dir: CacheDirOpt = None,
    extracted: Annotated[bool, opt(
        "--extracted", "Print the CSV inside a .tar.gz table (extracted once, cached).",
        "Output")] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Print the verified local path of one table; exit 3 if it is not fetched or not mirrored.

    -f json/csv/parquet/table gives the address and path as a row instead.
    """
    import polars as pl

    locate = datasets.extracted_path if extracted else datasets.table_path
    path = locate(address, mirror=mirror, cache_dir=cache_dir)
    frame = pl.DataFrame({"address": [address], "path": [str(path)]})
    result = Result(
        frame, {**provenance({}), "address": address, "path": str(path)}, title=f"Path of {address}"
    )
    _emit_paths(result, [path], fmt=fmt, output=output)
