from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from foresize.core.errors import InputError
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
    assert list(out.iterdir()) == []  # nothing half-extracted, not even ok.csv


def test_links_are_refused(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", [("ok.csv", CSV)], link="passwd")
    with pytest.raises(InputError, match="member 'passwd' is a link"):
        extract_tar(archive, tmp_path / "out")


def test_size_cap_stops_a_bomb(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar.gz", [("big.csv", b"0" * 10_000)])
    with pytest.raises(InputError, match="exceeds the cap of 1,000 bytes"):
        extract_tar(archive, tmp_path / "out", max_bytes=1000)
    assert list((tmp_path / "out").iterdir()) == []


def test_truncated_and_garbage_archives(tmp_path: Path) -> None:
    good = make_tar(tmp_path / "good.tar.gz", [("x.csv", CSV * 2000)]).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError, match=r"cut\.tar\.gz: truncated or corrupt tar\.gz archive"):
        extract_tar(cut, tmp_path / "out")
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not a gzip stream")
    with pytest.raises(InputError, match=r"garbage\.tar\.gz: truncated or corrupt"):
        extracted_csv(garbage)


def test_archive_must_hold_one_csv(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "two.tar.gz", [("a.csv", CSV), ("b.csv", CSV)])
    with pytest.raises(InputError, match="expected one CSV inside, found 2"):
        extracted_csv(archive)
