"""The dataset registry: catalog vs the real mirror, addresses, mirror reads, downloads."""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from foresize.core.errors import ChecksumError, InputError, UnknownNameError
from foresize.ingest import datasets
from foresize.ingest.datasets import (
    fetch,
    fetch_tables,
    get_dataset,
    list_datasets,
    load_reader,
    parse_address,
    table_path,
    verify,
)
from tests.ingest import hostile_server
from tests.ingest.hostile_server import HostileServer

GENTD = "cluster-trace-v2026-GenAI"
QUEUE_SIZE = f"{GENTD}/queue_size_raw_anon.tar.gz"
NODES_GPU = "cluster-trace-gpu-v2023/csv/openb_node_list_gpu_node.csv"


@pytest.fixture(autouse=True)
def _no_ambient_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test says explicitly whether a mirror or a base URL is in effect."""
    monkeypatch.delenv(datasets.MIRROR_ENV, raising=False)
    monkeypatch.delenv(datasets.BASE_URL_ENV, raising=False)


def _sha256sums(mirror: Path) -> dict[str, str]:
    lines = (mirror / "SHA256SUMS").read_text().splitlines()
    return {path.removeprefix("./"): digest for digest, path in (ln.split(None, 1) for ln in lines)}


def _all_files() -> dict[str, datasets.RemoteFile]:
    return {f.path: f for d in list_datasets() for t in d.tables for f in t.files}


def _copy(mirror: Path, dest: Path, *paths: str) -> None:
    for path in paths:
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mirror / path, dest / path)


def _flip_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


# --- the catalog against the real mirror and the shared README -------------------------


def test_catalog_lists_every_mirrored_data_file_with_its_mirror_digest_and_size(
    mirror: Path,
) -> None:
    files = _all_files()
    sums = _sha256sums(mirror)
    data_files = {p for p in sums if not p.endswith(("README.md", "LICENSE"))}
    assert data_files == {
        p for p, f in files.items() if f.mirrored and not p.startswith(AZURE_DIR)
    }
    for path in data_files:
        assert files[path].sha256 == sums[path], path
        assert files[path].size_bytes == (mirror / path).stat().st_size, path


AZURE_DIR = "azure-llm-inference-2023/"


def test_the_azure_traces_are_registered_with_the_mirror_digests_beside_the_alibaba_mirror(
    mirror: Path,
) -> None:
    azure = mirror.parent / AZURE_DIR
    sums = {f"{AZURE_DIR}{name}": digest for digest, name in
            (ln.split() for ln in (azure / "SHA256SUMS").read_text().splitlines())}
    files = {p: f for p, f in _all_files().items() if p.startswith(AZURE_DIR)}
    assert {p: f.sha256 for p, f in files.items()} == sums
    for path, file in files.items():
        assert file.mirrored
        assert file.size_bytes == (mirror.parent / path).stat().st_size
        assert file.url == ("https://raw.githubusercontent.com/Azure/AzurePublicDataset/master/"
                            f"data/{path.removeprefix(AZURE_DIR)}")
    fetched = datasets.fetch_tables("azure-llm", mirror=mirror)
    assert [(f.table.name, f.origin, f.path) for f in fetched] == [
        (t, "mirror", azure / f"AzureLLMInferenceTrace_{t}.csv") for t in ("code", "conv")
    ]


def test_catalog_lists_every_upstream_digest_of_the_shared_readme(mirror: Path) -> None:
    readme = (mirror.parent / "README.md").read_text()
    listed = re.findall(r"^([0-9a-f]{64})  (\S+)  \(([\d,]+) bytes\)", readme, re.MULTILINE)
    files = _all_files()
    assert len(listed) == 27
    for digest, path, size in listed:
        assert not files[path].mirrored, path
        assert (files[path].sha256, files[path].size_bytes) == (digest, int(size.replace(",", "")))
    pai = {
        name: digest
        for digest, name in re.findall(r"^    ([0-9a-f]{64})  (pai_\S+)$", readme, re.MULTILINE)
    }
    assert {f"cluster-trace-gpu-v2020/data/{n}": d for n, d in pai.items()}.items() <= {
        p: f.sha256 for p, f in files.items()
    }.items()


def test_datasets_tables_and_readers_are_as_documented() -> None:
    assert [(d.name, d.alias) for d in list_datasets()] == [
        ("alibaba-gentd26", "gentd26"),
        ("alibaba-openb", "openb"),
        ("alibaba-pai-2020", "pai2020"),
        ("alibaba-dlrm-2025", "dlrm2025"),
        ("azure-llm-inference-2023", "azure-llm"),
    ]
    gentd = get_dataset("gentd26")
    assert [t.name for t in gentd.tables] == [
        "gpu_duty_cycle",
        "memory_util",
        "gpu_memory",
        "qps",
        "queue_size",
        "queue_rt",
        "lora",
        "model_predict",
        "pipeline_inference",
    ]
    assert gentd.table("lora").reader == "foresize.ingest.alibaba.gentd26:read_gentd26_lora"
    assert {t.name for t in gentd.tables if t.mirrored} == {
        "gpu_duty_cycle",
        "memory_util",
        "qps",
        "queue_size",
        "queue_rt",
        "lora",
    }
    openb = get_dataset("openb")
    assert (len(openb.tables), openb.n_mirrored) == (26, 5)
    assert {t.kind for t in openb.tables} == {"nodes", "pods"}
    pai = get_dataset("pai2020")
    assert [t.name for t in pai.tables if t.kind == "pai_table"] == [
        "job",
        "task",
        "instance",
        "sensor",
        "group_tag",
        "machine_spec",
        "machine_metric",
    ]
    assert all(
        t.header is not None and t.header.mirrored for t in pai.tables if t.kind == "pai_table"
    )
    assert {t.name: t.reader for t in pai.tables if t.kind == "misc"} == dict.fromkeys(
        ["minibatch_job1", "minibatch_job2", "minibatch_job3", "minibatch_job4", "philly_runtime"]
    )
    dlrm = get_dataset("alibaba-dlrm-2025")
    assert [(t.name, t.kind, t.mirrored) for t in dlrm.tables] == [
        ("instances", "instances", False)
    ]
    names = [t.name for d in list_datasets() for t in d.tables]
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names)
    assert {d.license for d in list_datasets()} == {"CC BY 4.0"}


def test_urls_use_github_raw_except_the_pai_tables_on_oss() -> None:
    lora = get_dataset("gentd26").table("lora")
    assert lora.url == (
        "https://raw.githubusercontent.com/alibaba/clusterdata/master/"
        "cluster-trace-v2026-GenAI/lora_request_trace.tar.gz"
    )
    job = get_dataset("pai2020").table("job")
    assert job.url == (
        "https://aliopentrace.oss-cn-beijing.aliyuncs.com/v2020GPUTraces/pai_job_table.tar.gz"
    )
    assert job.header is not None
    assert job.header.url.endswith("/master/cluster-trace-gpu-v2020/data/pai_job_table.header")
    assert datasets.source_url(job.file, "http://127.0.0.1:9/m/") == (
        "http://127.0.0.1:9/m/cluster-trace-gpu-v2020/data/pai_job_table.tar.gz"
    )


def test_cards_exist_for_every_dataset_and_name_every_table() -> None:
    repo = Path(__file__).resolve().parents[2]
    for dataset in list_datasets():
        card = (repo / dataset.card).read_text()
        assert "CC BY 4.0" in card
        for table in dataset.tables:
            assert f"`{table.name}`" in card, (dataset.name, table.name)
            assert table.path in card, table.path


# --- addresses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "dataset", "table"),
    [
        ("gentd26", "alibaba-gentd26", None),
        ("gentd26:lora", "alibaba-gentd26", "lora"),
        ("alibaba-openb:multigpu50", "alibaba-openb", "multigpu50"),
        (" PAI2020:Job ", "alibaba-pai-2020", "job"),
    ],
)
def test_parse_address_takes_names_and_aliases(text: str, dataset: str, table: str | None) -> None:
    got_dataset, got_table = parse_address(text)
    assert got_dataset.name == dataset
    assert (got_table.name if got_table else None) == table


def test_unknown_names_list_the_valid_ones_and_the_closest() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown dataset 'gentd2'.*Did you mean 'gentd26'"):
        parse_address("gentd2")
    with pytest.raises(
        UnknownNameError, match=r"unknown alibaba-openb table 'multigpu5';.*multigpu50"
    ) as info:
        parse_address("openb:multigpu5")
    assert info.value.suggestion == "multigpu50"
    assert info.value.exit_code == 2


def test_load_reader_imports_lazily_and_refuses_misc_tables() -> None:
    lora = get_dataset("gentd26").table("lora")
    assert load_reader(replace(lora, reader="json:loads"))('{"a": 1}') == {"a": 1}
    with pytest.raises(InputError, match=r"alibaba-pai-2020:philly_runtime: a misc table"):
        load_reader("pai2020:philly_runtime")
    with pytest.raises(Exception, match=r"reader 'json:no_such' cannot be loaded"):
        load_reader(replace(lora, reader="json:no_such"))


# --- mirror ----------------------------------------------------------------------------


def test_fetch_from_mirror_verifies_in_place_and_skips_absent_tables(
    mirror: Path, tmp_path: Path
) -> None:
    fetched = fetch_tables("gentd26", mirror=mirror, cache_dir=tmp_path)
    found = {f.table.name: f.path for f in fetched if f.path}
    assert found == {t.name: mirror / t.path for t in get_dataset("gentd26").tables if t.mirrored}
    assert {f.table.name: f.missing for f in fetched if not f.path} == {
        "gpu_memory": (f"{GENTD}/pod_gpu_memory_used_bytes_anon.tar.gz",),
        "model_predict": (f"{GENTD}/model_predict_data_anon.tar.gz",),
        "pipeline_inference": (f"{GENTD}/pipeline_inference_data_anon.tar.gz",),
    }
    assert {f.origin for f in fetched if f.path} == {"mirror"}
    assert fetch("gentd26", mirror=mirror, cache_dir=tmp_path) == list(found.values())


def test_repeated_mirror_fetches_reuse_the_verified_digests(
    mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[Path] = []
    real = datasets._hash_file
    monkeypatch.setattr(datasets, "_hash_file", lambda p, prog: hashed.append(p) or real(p, prog))
    fetch("openb", mirror=mirror, cache_dir=tmp_path)
    assert len(hashed) == 5
    fetch("openb", mirror=mirror, cache_dir=tmp_path)
    assert len(hashed) == 5
    assert (tmp_path / datasets.DIGESTS_FILE).is_file()


def test_a_changed_mirror_file_is_rehashed_and_refused(mirror: Path, tmp_path: Path) -> None:
    fake = tmp_path / "mirror"
    _copy(mirror, fake, QUEUE_SIZE)
    assert fetch("gentd26:queue_size", mirror=fake, cache_dir=tmp_path) == [fake / QUEUE_SIZE]
    _flip_byte(fake / QUEUE_SIZE)
    os.utime(fake / QUEUE_SIZE, ns=(1, 1))
    with pytest.raises(
        ChecksumError,
        match=r"queue_size_raw_anon.tar.gz: sha256 mismatch: "
        r"expected 585499916ed9\w+, got [0-9a-f]{64}",
    ) as info:
        fetch("gentd26:queue_size", mirror=fake, cache_dir=tmp_path)
    assert info.value.exit_code == 3
    assert (fake / QUEUE_SIZE).is_file()  # the mirror is never modified


def test_mirror_misses_name_the_path_and_url(mirror: Path, tmp_path: Path) -> None:
    with pytest.raises(
        InputError,
        match=r"pod_gpu_memory_used_bytes_anon.tar.gz: "
        r"alibaba-gentd26:gpu_memory is not in the mirror; get it from https://",
    ):
        fetch("gentd26:gpu_memory", mirror=mirror, cache_dir=tmp_path)
    with pytest.raises(InputError, match=r"none of the 1 tables of alibaba-dlrm-2025"):
        fetch("dlrm2025", mirror=mirror, cache_dir=tmp_path)
    with pytest.raises(InputError, match=r"no-such-dir: dataset mirror folder does not exist"):
        fetch("gentd26", mirror=tmp_path / "no-such-dir")


def test_mirror_comes_from_the_environment(
    mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(datasets.MIRROR_ENV, str(mirror))
    assert table_path("gentd26:lora", cache_dir=tmp_path) == (
        mirror / GENTD / "lora_request_trace.tar.gz"
    )


def test_table_path_needs_one_table_that_is_present(mirror: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"alibaba-dlrm-2025:instances is not in the mirror"):
        table_path("dlrm2025", mirror=mirror, cache_dir=tmp_path)  # its only table
    with pytest.raises(
        InputError,
        match=r"'openb' names 26 tables; name one, e\.g\. "
        r"openb:nodes_gpu",
    ):
        table_path("openb", mirror=mirror, cache_dir=tmp_path)
    with pytest.raises(InputError, match=r"alibaba-openb:nodes_gpu is not fetched yet") as info:
        table_path("openb:nodes_gpu", cache_dir=tmp_path)
    assert info.value.hint == "run: foresize datasets fetch alibaba-openb:nodes_gpu"
    header = table_path("pai2020:machine_spec", mirror=mirror, cache_dir=tmp_path)
    assert header == mirror / "cluster-trace-gpu-v2020/data/pai_machine_spec.tar.gz"
    assert header.with_name("pai_machine_spec.header").is_file()


def test_extracted_path_gives_the_csv_inside_the_archive(mirror: Path, tmp_path: Path) -> None:
    csv = datasets.extracted_path("gentd26:queue_size", mirror=mirror, cache_dir=tmp_path)
    assert csv.name == "queue_size_raw_anon.csv"
    assert csv.read_text().splitlines()[0] == "value,container_ip,timestamp_anon"
    plain = datasets.extracted_path("openb:nodes_gpu", mirror=mirror, cache_dir=tmp_path)
    assert plain == mirror / NODES_GPU


def test_verify_rehashes_and_reports_ok_mismatch_and_absent(mirror: Path, tmp_path: Path) -> None:
    fake = tmp_path / "mirror"
    _copy(mirror, fake, QUEUE_SIZE, f"{GENTD}/qps.tar.gz")
    _flip_byte(fake / GENTD / "qps.tar.gz")
    rows = {r.table.name: r for r in verify("gentd26", mirror=fake, cache_dir=tmp_path)}
    assert {name: r.status for name, r in rows.items()} == {
        "gpu_duty_cycle": "absent",
        "memory_util": "absent",
        "gpu_memory": "absent",
        "qps": "mismatch",
        "queue_size": "ok",
        "queue_rt": "absent",
        "lora": "absent",
        "model_predict": "absent",
        "pipeline_inference": "absent",
    }
    assert rows["qps"].actual not in (None, rows["qps"].file.sha256)
    assert rows["queue_size"].local_path == fake / QUEUE_SIZE
    everything = verify(mirror=mirror, cache_dir=tmp_path)
    assert len(everything) == sum(len(t.files) for d in list_datasets() for t in d.tables)
    # the docs (8) are not tables; the 2 Azure traces are found beside the mirror
    assert sum(r.status == "ok" for r in everything) == len(_sha256sums(mirror)) - 8 + 2
    assert {r.status for r in everything} == {"ok", "absent"}


# --- downloads from a local HTTP server ------------------------------------------------


@dataclass
class Upstream:
    """A local folder laid out like upstream, served over HTTP on 127.0.0.1."""

    root: Path
    url: str
    requests: list[str] = field(default_factory=list)
    truncated: set[str] = field(default_factory=set)


class _Handler(SimpleHTTPRequestHandler):
    upstream: Upstream

    def do_GET(self) -> None:
        relative = self.path.lstrip("/")
        self.upstream.requests.append(relative)
        if relative in self.upstream.truncated:
            body = (self.upstream.root / relative).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output clean."""


@pytest.fixture
def upstream(mirror: Path, tmp_path: Path) -> Iterator[Upstream]:
    root = tmp_path / "upstream"
    _copy(mirror, root, QUEUE_SIZE, NODES_GPU)
    server_state = Upstream(root, "")
    handler = type("Handler", (_Handler,), {"upstream": server_state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    server_state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server_state
    server.shutdown()
    server.server_close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(
        p.name for p in folder.rglob("*") if p.is_file() and p.name != datasets.DIGESTS_FILE
    )


def test_download_verifies_and_caches_in_the_upstream_layout(
    upstream: Upstream, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    seen: list[int] = []
    paths = fetch(
        "gentd26:queue_size", cache_dir=cache, base_url=upstream.url, progress=seen.append
    )
    assert paths == [cache / QUEUE_SIZE]
    assert paths[0].read_bytes() == (upstream.root / QUEUE_SIZE).read_bytes()
    assert sum(seen) == 4863
    assert upstream.requests == [QUEUE_SIZE]
    again = fetch_tables("gentd26:queue_size", cache_dir=cache, base_url=upstream.url)
    assert [f.origin for f in again] == ["cache"]
    assert upstream.requests == [QUEUE_SIZE]  # nothing downloaded twice


def test_download_base_url_comes_from_the_environment(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(datasets.BASE_URL_ENV, upstream.url + "/")
    fetched = fetch_tables("openb:nodes_gpu", cache_dir=tmp_path / "cache")
    assert [(f.origin, f.path) for f in fetched] == [("download", tmp_path / "cache" / NODES_GPU)]


def test_download_with_wrong_bytes_is_a_checksum_error_and_leaves_nothing(
    upstream: Upstream, tmp_path: Path
) -> None:
    _flip_byte(upstream.root / QUEUE_SIZE)
    cache = tmp_path / "cache"
    with pytest.raises(
        ChecksumError,
        match=rf"{QUEUE_SIZE}: sha256 mismatch: expected "
        r"585499916ed9\w+, got [0-9a-f]{64} \(downloaded from http://127\.0\.0\.1"
        r".*the download was deleted",
    ):
        fetch("gentd26:queue_size", cache_dir=cache, base_url=upstream.url)
    assert _leftovers(cache) == []


def test_a_short_download_is_an_error_and_leaves_nothing(
    upstream: Upstream, tmp_path: Path
) -> None:
    upstream.truncated.add(NODES_GPU)
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match=r"download cut short after 21,176 of 42,353 bytes"):
        fetch("openb:nodes_gpu", cache_dir=cache, base_url=upstream.url)
    assert _leftovers(cache) == []


def test_a_missing_upstream_file_is_an_input_error(upstream: Upstream, tmp_path: Path) -> None:
    with pytest.raises(
        InputError,
        match=r"qps.tar.gz: download failed \(HTTP 404 File "
        r"not found\); nothing was kept",
    ):
        fetch("gentd26:qps", cache_dir=tmp_path / "cache", base_url=upstream.url)
    assert _leftovers(tmp_path / "cache") == []


def test_a_damaged_cached_copy_is_downloaded_again(upstream: Upstream, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fetch("gentd26:queue_size", cache_dir=cache, base_url=upstream.url)
    _flip_byte(cache / QUEUE_SIZE)
    os.utime(cache / QUEUE_SIZE, ns=(1, 1))
    fetched = fetch_tables("gentd26:queue_size", cache_dir=cache, base_url=upstream.url)
    assert fetched[0].origin == "download"
    assert upstream.requests == [QUEUE_SIZE, QUEUE_SIZE]
    assert [r.status for r in verify("gentd26:queue_size", cache_dir=cache)] == ["ok"]


def test_a_dripping_download_is_cut_at_the_deadline_and_leaves_nothing(tmp_path: Path) -> None:
    """One byte every 0.2 s keeps each read alive (the 60 s silence bound never fires);
    the fetch's deadline of 1 s cuts it. Without the cut the fetch lasts the whole drip,
    10,000 bytes over half an hour.
    """
    cache = tmp_path / "cache"
    with HostileServer(hostile_server.drip(0.2)) as hostile, pytest.raises(
        InputError, match=r"queue_size_raw_anon\.tar\.gz: download not complete within the "
        r"--timeout of 1 s; nothing was kept",
    ):
        fetch("gentd26:queue_size", cache_dir=cache, base_url=hostile.url, timeout_s=1)
    assert len(hostile.seen_headers) == 1
    assert _leftovers(cache) == []


class _SlowHandler(SimpleHTTPRequestHandler):
    """Serves the mirror's files, each after ``delay_s`` of silence."""

    delay_s = 0.3
    served: list[str]

    def do_GET(self) -> None:
        self.served.append(self.path)
        threading.Event().wait(self.delay_s)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output clean."""


def test_the_deadline_covers_all_files_of_a_fetch_together(mirror: Path, tmp_path: Path) -> None:
    """openb's 26 files, 0.3 s each: any one fits in the 1 s deadline, all of them do not.
    A deadline per file would fetch them all; the fetch's one deadline stops it after a
    few, and the files already verified stay cached.
    """
    served: list[str] = []
    handler = type("Handler", (_SlowHandler,), {"served": served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(mirror)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cache = tmp_path / "cache"
    try:
        with pytest.raises(InputError, match=r"download not complete within the --timeout "
                                             r"of 1 s"):
            fetch_tables("openb", cache_dir=cache, base_url=f"http://127.0.0.1:"
                         f"{server.server_address[1]}", timeout_s=1)
    finally:
        server.shutdown()
        server.server_close()
    assert 2 <= len(served) < len(get_dataset("openb").tables)
    assert len(_leftovers(cache)) == len(served) - 1  # the cut one is deleted


# --- reading through the registered readers --------------------------------------------


def test_read_telemetry_tables_reads_the_telemetry_tables_present(
    mirror: Path, tmp_path: Path
) -> None:
    fake = tmp_path / "mirror"
    _copy(mirror, fake, QUEUE_SIZE, f"{GENTD}/lora_request_trace.tar.gz")
    frames, reports = datasets.read_telemetry_tables("gentd26", mirror=fake, cache_dir=tmp_path)
    assert [f["metric"].unique().to_list() for f in frames] == [["queue_len"]]
    assert reports[0].rows_out == frames[0].height > 0
    # the whole dataset stacks only true telemetry; a named request table is read through
    # its telemetry view (arrival counts), a table without one is refused
    (arrivals,), (lora_report,) = datasets.read_telemetry_tables(
        "gentd26:lora", mirror=fake, cache_dir=tmp_path)
    assert set(arrivals["metric"]) == {"arrivals"}
    assert arrivals["value"].sum() == lora_report.rows_out
    with pytest.raises(InputError, match=r"alibaba-openb:default holds pods, not telemetry"):
        datasets.read_telemetry_tables("openb:default", mirror=mirror, cache_dir=tmp_path)
    with pytest.raises(InputError, match=r"openb: no telemetry table in this dataset"):
        datasets.read_telemetry_tables("openb", mirror=mirror, cache_dir=tmp_path)
