"""``foresize datasets``: stdout carries the data, stderr the summary and errors."""

from __future__ import annotations

import json
import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from foresize.cli.main import main
from foresize.ingest.datasets import BASE_URL_ENV, MIRROR_ENV, get_dataset
from tests.ingest import hostile_server
from tests.ingest.hostile_server import HostileServer

GENTD = "cluster-trace-v2026-GenAI"
OPENB = "cluster-trace-gpu-v2023/csv"


@pytest.fixture(autouse=True)
def _plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    monkeypatch.delenv(BASE_URL_ENV, raising=False)


@pytest.fixture
def with_mirror(mirror: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    return mirror


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _fake_mirror(mirror: Path, root: Path, path: str, *, flip: bool) -> Path:
    (root / path).parent.mkdir(parents=True)
    shutil.copyfile(mirror / path, root / path)
    if flip:
        data = bytearray((root / path).read_bytes())
        data[200] ^= 0x01
        (root / path).write_bytes(bytes(data))
    return root


def test_list_shows_every_dataset_with_alias_size_and_license(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _run(capsys, "datasets", "list")
    assert (code, err) == (0, "")
    for name, alias in [
        ("alibaba-gentd26", "gentd26"),
        ("alibaba-openb", "openb"),
        ("alibaba-pai-2020", "pai2020"),
        ("alibaba-dlrm-2025", "dlrm2025"),
        ("azure-llm-inference-2023", "azure-llm"),
    ]:
        line = next(ln for ln in out.splitlines() if f" {name} " in ln)
        assert alias in line
        assert "CC BY 4.0" in line
    assert "5.4 MiB" in out
    assert "1.4 GiB" in out
    code, out, _ = _run(capsys, "datasets", "list", "-f", "json")
    document = json.loads(out)
    assert [(d["alias"], d["n_tables"], d["n_mirrored"]) for d in document["datasets"]] == [
        ("gentd26", 9, 6),
        ("openb", 26, 5),
        ("pai2020", 12, 4),
        ("dlrm2025", 1, 0),
        ("azure-llm", 2, 2),
    ]


def test_info_lists_tables_with_urls_digests_and_the_card(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _run(capsys, "datasets", "info", "gentd26", "--wide")  # URLs are wide
    assert (code, err) == (0, "")
    assert "datasets/alibaba-gentd26.md" in out
    queue = next(ln for ln in out.splitlines() if " queue_size " in ln)
    assert "585499916ed9" in queue
    assert "4.7 KiB" in queue
    assert " yes " in queue
    assert "/master/cluster-trace-v2026-GenAI/queue_size_raw_anon.tar.gz" in queue
    code, out, _ = _run(capsys, "datasets", "info", "pai2020:job", "-f", "json")
    files = json.loads(out)["files"]
    assert [(f["file"].rsplit("/", 1)[1], f["mirrored"]) for f in files] == [
        ("pai_job_table.tar.gz", False),
        ("pai_job_table.header", True),
    ]
    assert files[0]["url"].startswith("https://aliopentrace.oss-cn-beijing.aliyuncs.com/")
    assert files[0]["sha256"] == get_dataset("pai2020").table("job").sha256


def test_fetch_gentd26_verifies_every_mirrored_file(
    capsys: pytest.CaptureFixture[str], with_mirror: Path, tmp_path: Path
) -> None:
    code, out, err = _run(capsys, "datasets", "fetch", "gentd26", "--cache-dir", str(tmp_path))
    assert code == 0
    expected = [with_mirror / t.path for t in get_dataset("gentd26").tables if t.mirrored]
    assert out.splitlines() == [str(p) for p in expected]
    assert err.strip() == (
        "alibaba-gentd26: 6 tables verified (4.0 MiB; 6 from the mirror); 3 not in the "
        "mirror: gpu_memory, model_predict, pipeline_inference (drop --mirror to download them)"
    )


def test_fetch_openb_as_json(
    capsys: pytest.CaptureFixture[str], with_mirror: Path, tmp_path: Path
) -> None:
    code, out, err = _run(
        capsys, "datasets", "fetch", "openb", "--cache-dir", str(tmp_path), "-f", "json"
    )
    assert code == 0
    tables = json.loads(out)["tables"]
    ok = {t["table"]: t["path"] for t in tables if t["status"] == "ok"}
    assert ok == {
        "nodes_gpu": f"{with_mirror}/{OPENB}/openb_node_list_gpu_node.csv",
        "nodes_all": f"{with_mirror}/{OPENB}/openb_node_list_all_node.csv",
        "default": f"{with_mirror}/{OPENB}/openb_pod_list_default.csv",
        "gpuspec10": f"{with_mirror}/{OPENB}/openb_pod_list_gpuspec10.csv",
        "gpuspec33": f"{with_mirror}/{OPENB}/openb_pod_list_gpuspec33.csv",
    }
    assert sum(t["status"] == "not_in_mirror" for t in tables) == 21
    assert err.startswith("alibaba-openb: 5 tables verified")


def test_fetch_downloads_into_the_cache_dir(
    capsys: pytest.CaptureFixture[str],
    mirror: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = f"{GENTD}/queue_size_raw_anon.tar.gz"
    served = _fake_mirror(mirror, tmp_path / "served", path, flip=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{server.server_address[1]}")
        cache = tmp_path / "cache"
        code, out, err = _run(
            capsys, "datasets", "fetch", "gentd26:queue_size", "--cache-dir", str(cache)
        )
        assert (code, out) == (0, f"{cache / path}\n")
        assert err.strip() == "alibaba-gentd26: 1 table verified (4.7 KiB; 1 downloaded)"
        code, out, err = _run(
            capsys, "datasets", "fetch", "gentd26:queue_size", "--cache-dir", str(cache)
        )
        assert (code, out) == (0, f"{cache / path}\n")
        assert "1 already cached" in err
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("command", [
    ["datasets", "fetch", "gentd26:queue_size", "--timeout", "1s"],
    ["profile", "telemetry", "gentd26:queue_size", "--timeout", "1s"],
])
def test_timeout_bounds_a_dripping_download(
    command: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--timeout`` ends a download however slowly it arrives, in ``datasets fetch`` and
    where a telemetry SOURCE is a dataset not yet in the cache: exit 3, nothing cached.
    """
    cache = tmp_path / "cache"
    monkeypatch.setenv("FORESIZE_CACHE_DIR", str(cache))
    with HostileServer(hostile_server.drip(0.2)) as hostile:
        monkeypatch.setenv(BASE_URL_ENV, hostile.url)
        code, out, err = _run(capsys, *command)
    assert (code, out) == (3, "")
    assert err.splitlines()[0].endswith(
        "queue_size_raw_anon.tar.gz: download not complete within the --timeout of 1 s; "
        "nothing was kept")
    assert [p for p in cache.rglob("*") if p.is_file() and p.suffix == ".gz"] == []


@pytest.mark.parametrize("command", [["datasets", "fetch"], ["profile", "telemetry"]])
@pytest.mark.parametrize("value", ["0s", "soon"])
def test_timeout_must_be_a_positive_duration(
    command: list[str], value: str, capsys: pytest.CaptureFixture[str], with_mirror: Path
) -> None:
    """A usage error (2) even where nothing would be downloaded (the mirror has it)."""
    code, out, err = _run(capsys, *command, "gentd26:queue_size", "--timeout", value)
    assert (code, out) == (2, "")
    assert "--timeout" in err or "duration" in err


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep test output clean."""


def test_path_prints_the_mirror_path(
    capsys: pytest.CaptureFixture[str], with_mirror: Path, tmp_path: Path
) -> None:
    code, out, err = _run(capsys, "datasets", "path", "gentd26:lora", "--cache-dir", str(tmp_path))
    assert (code, out, err) == (0, f"{with_mirror}/{GENTD}/lora_request_trace.tar.gz\n", "")
    code, out, _ = _run(capsys, "datasets", "path", "gentd26:lora", "--extracted", "-f", "json")
    assert json.loads(out)["path"].endswith("/lora_request_trace.csv")


def test_path_of_a_table_not_fetched_exits_3(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = _run(
        capsys, "datasets", "path", "openb:nodes_gpu", "--cache-dir", str(tmp_path)
    )
    assert (code, out) == (3, "")
    assert err.splitlines() == [
        f"Error: {tmp_path}/{OPENB}/openb_node_list_gpu_node.csv: alibaba-openb:nodes_gpu is "
        "not fetched yet",
        "Hint: run: foresize datasets fetch alibaba-openb:nodes_gpu",
    ]


def test_unknown_dataset_exits_2_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "datasets", "fetch", "gentd62")
    assert (code, out) == (2, "")  # a name typed on the command line: a usage error
    assert err.count("\n") == 1
    assert err.startswith("Error: unknown dataset 'gentd62'; valid: alibaba-gentd26,")
    assert "Did you mean 'gentd26'?" in err


def test_checksum_mismatch_in_a_mirror_is_one_line_and_exit_3(
    capsys: pytest.CaptureFixture[str], mirror: Path, tmp_path: Path
) -> None:
    fake = _fake_mirror(mirror, tmp_path / "fake", f"{GENTD}/qps.tar.gz", flip=True)
    code, out, err = _run(
        capsys,
        "datasets",
        "fetch",
        "gentd26:qps",
        "--mirror",
        str(fake),
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    assert (code, out) == (3, "")
    first, hint = err.splitlines()
    expected = get_dataset("gentd26").table("qps").sha256
    assert first.startswith(
        f"Error: {fake}/{GENTD}/qps.tar.gz: sha256 mismatch: expected {expected}, got "
    )
    assert hint.startswith("Hint: the local copy differs from upstream; replace it from https://")
    assert "Traceback" not in err


def test_verify_reports_each_file_and_exits_3_on_a_mismatch(
    capsys: pytest.CaptureFixture[str], mirror: Path, tmp_path: Path
) -> None:
    fake = _fake_mirror(mirror, tmp_path / "fake", f"{GENTD}/qps.tar.gz", flip=True)
    code, out, err = _run(
        capsys,
        "datasets",
        "verify",
        "gentd26",
        "--mirror",
        str(fake),
        "--cache-dir",
        str(tmp_path / "cache"),
        "-f",
        "json",
    )
    assert code == 3
    document = json.loads(out)
    assert document["counts"] == {"ok": 0, "mismatch": 1, "absent": 8}
    assert err.splitlines()[0] == f"{fake}: 0 ok, 1 mismatched, 8 absent"
    assert err.splitlines()[1].startswith(
        f"Error: 1 file(s) failed verification; first: {fake}/{GENTD}/qps.tar.gz: expected "
    )


def test_verify_of_the_real_mirror_passes(
    capsys: pytest.CaptureFixture[str], with_mirror: Path, tmp_path: Path
) -> None:
    code, out, err = _run(capsys, "datasets", "verify", "openb", "--cache-dir", str(tmp_path))
    assert code == 0
    assert sum(" ok " in ln for ln in out.splitlines()) == 5
    assert err.strip() == f"{with_mirror}: 5 ok, 0 mismatched, 21 absent"


def test_output_file_is_written_atomically_with_paths(
    capsys: pytest.CaptureFixture[str], with_mirror: Path, tmp_path: Path
) -> None:
    target = tmp_path / "paths.txt"
    code, out, err = _run(
        capsys, "datasets", "fetch", "gentd26:lora", "-o", str(target), "--cache-dir", str(tmp_path)
    )
    assert (code, out) == (0, "")
    assert target.read_text() == f"{with_mirror}/{GENTD}/lora_request_trace.tar.gz\n"
    assert err.startswith(f"wrote {target} (1 path)")
