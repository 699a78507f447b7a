from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from foresize.core.errors import InputError
from foresize.core.io import sha256_file
from foresize.core.paths import cache_dir
from foresize.ingest.archive import extract_tar, extracted_csv

CSV = b"value,timestamp_anon,container_ip\n1.0,1662858720.0,abc\n"


def make_tar(path: Path, members: list[tuple[str, bytes]], *, link: str | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        if link is not None:
            info = tarfile.TarInfo(link)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
    return path


def test_extracts_regular_files(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", [("dir/x.csv", CSV)])
    assert extract_tar(archive, tmp_path / "out") == [tmp_path / "out" / "dir" / "x.csv"]
    assert (tmp_path / "out" / "dir" / "x.csv").read_bytes() == CSV
    assert extracted_csv(archive).read_bytes() == CSV


@pytest.mark.parametrize("name", ["../evil.csv", "/tmp/evil.csv", "a/../../evil.csv"])
def test_members_escaping_the_target_are_refused(tmp_path: Path, name: str) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", [("ok.csv", CSV), (name, CSV)])
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"a.tar.gz: member .* outside the target folder"):
        extract_tar(archive, out)
    assert not (tmp_path / "evil.csv").exists()
    assert not out.exists()  # nothing half-extracted, not even ok.csv
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz"]  # no temporary left


def test_links_are_refused(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", [("ok.csv", CSV)], link="passwd")
    with pytest.raises(InputError, match="member 'passwd' is a link"):
        extract_tar(archive, tmp_path / "out")


def test_size_cap_stops_a_bomb(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", [("big.csv", b"0" * 10_000)])
    with pytest.raises(InputError, match="exceeds the cap of 1,000 bytes"):
        extract_tar(archive, tmp_path / "out", max_bytes=1000)
    assert not (tmp_path / "out").exists()


def test_truncated_and_garbage_archives(tmp_path: Path) -> None:
    good = make_tar(tmp_path / "good.tar.gz", [("x.csv", CSV * 2000)]).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError, match=r"cut\.tar\.gz: truncated or corrupt tar\.gz archive"):
        extract_tar(cut, tmp_path / "out", max_bytes=10**9)
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not a gzip stream")
    with pytest.raises(InputError, match=r"garbage\.tar\.gz: truncated or corrupt"):
        extracted_csv(garbage)


def test_archive_must_hold_one_csv(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "two.tar.gz", [("a.csv", CSV), ("b.csv", CSV)])
    with pytest.raises(InputError, match="expected one CSV inside, found 2"):
        extracted_csv(archive)


# --- hostile members, caps and a cache that heals ----------------------------------------


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_a_repeated_member_name_is_refused(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", [("x.csv", CSV), ("./x.csv", CSV)])
    with pytest.raises(InputError, match=r"member 'x\.csv' appears twice"):
        extract_tar(archive, tmp_path / "out")


def test_a_member_nested_absurdly_deep_is_refused(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", [("d/" * 2000 + "x.csv", CSV)])
    with pytest.raises(InputError, match=r"nested 2,001 folders deep|characters long"):
        extract_tar(archive, tmp_path / "out")
    archive = make_tar(tmp_path / "b.tar.gz", [("d/" * 40 + "x.csv", CSV)])
    with pytest.raises(InputError, match="nested 41 folders deep"):
        extract_tar(archive, tmp_path / "out")


def test_devices_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "dev.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("null")
        info.type = tarfile.CHRTYPE
        tar.addfile(info)
    with pytest.raises(InputError, match="'null' is not a regular file"):
        extract_tar(archive, tmp_path / "out")


def test_default_cap_is_a_multiple_of_the_archive(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A gzip bomb (1000:1) is refused before it is written, at the default cap."""
    monkeypatch.delenv("FORESIZE_MAX_EXTRACT_BYTES", raising=False)
    archive = make_tar(tmp_path / "bomb.tar.gz", [("x.csv", b"0" * 80_000_000)])
    assert archive.stat().st_size * 200 < 64 * 2**20 < 80_000_000
    with pytest.raises(InputError, match=r"exceeds the cap of .* at member 'x\.csv'"):
        extracted_csv(archive)
    monkeypatch.setenv("FORESIZE_MAX_EXTRACT_BYTES", "abc")
    with pytest.raises(InputError, match="FORESIZE_MAX_EXTRACT_BYTES='abc': expected a size"):
        extracted_csv(archive)
    monkeypatch.setenv("FORESIZE_MAX_EXTRACT_BYTES", "100M")
    assert extracted_csv(archive).stat().st_size == 80_000_000


def test_a_killed_extraction_heals_on_the_next_run(tmp_path: Path) -> None:
    """What a SIGKILL leaves (an old-layout ``.partial-PID`` inside the target, a staging
    folder of a dead process beside it) is never read, and is removed by the next run.
    """
    archive = make_tar(tmp_path / "a.tar.gz", [("x.csv", CSV)])
    dest = cache_dir() / "extracted" / sha256_file(archive)[:16]
    (dest / ".partial-123").mkdir(parents=True)
    (dest / ".partial-123" / "x.csv").write_bytes(CSV[:10])
    (dest / ".complete").touch()  # what the old layout marked complete after a failed rerun
    stale = dest.parent / f".{dest.name}.foresize-{_dead_pid()}-abc.tmp"
    stale.mkdir()
    (stale / "x.csv").write_bytes(CSV[:10])
    csv = extracted_csv(archive)
    assert csv.read_bytes() == CSV
    assert not stale.exists()
    assert sorted(p.name for p in dest.iterdir()) == [".complete", "x.csv"]


def test_a_truncated_extracted_copy_is_extracted_again(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", [("x.csv", CSV)])
    csv = extracted_csv(archive)
    csv.write_bytes(CSV[:5])
    assert extracted_csv(archive).read_bytes() == CSV
    csv.unlink()
    assert extracted_csv(archive).read_bytes() == CSV


def test_sigkill_mid_extraction_leaves_nothing_a_reader_sees(tmp_path: Path) -> None:
    """A real kill: the extractor reads the archive from a pipe the test fills halfway,
    is killed once its staging file exists, and the next extraction is whole and clean.
    """
    payload = random.Random(0).randbytes(4_000_000)  # incompressible: half is half
    archive = make_tar(tmp_path / "a.tar.gz", [("x.csv", payload)])
    data = archive.read_bytes()
    fifo = tmp_path / "pipe.tar.gz"
    os.mkfifo(fifo)
    dest = tmp_path / "out"
    code = (f"from foresize.ingest.archive import extract_tar; "
            f"extract_tar({str(fifo)!r}, {str(dest)!r}, max_bytes=10**9)")
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        with fifo.open("wb") as pipe:
            pipe.write(data[: len(data) // 2])
            pipe.flush()
            deadline = time.monotonic() + 60
            while not any(tmp_path.glob(".out.foresize-*.tmp/x.csv")):
                assert time.monotonic() < deadline, "the extractor never started writing"
                assert child.poll() is None, "the extractor exited early"
                time.sleep(0.01)
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
    except BrokenPipeError:
        pass
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert not dest.exists()
    assert len(list(tmp_path.glob(".out.foresize-*.tmp"))) == 1
    assert extract_tar(archive, dest) == [dest / "x.csv"]
    assert (dest / "x.csv").read_bytes() == payload
    assert not list(tmp_path.glob(".out.foresize-*.tmp"))
