"""``Meanwhile``: work in a forked child, and None wherever the child cannot deliver."""

from __future__ import annotations

import os
import signal
import time

import pytest

from foresize.core import parallel
from foresize.core.parallel import Meanwhile, default_workers

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or default_workers() < 2,
                                reason="Meanwhile forks on Linux with two cores or more only")


def test_the_child_sends_its_bytes_while_this_process_goes_on() -> None:
    big = bytes(range(256)) * 40_000  # 10 MB: many times a pipe's buffer
    with Meanwhile(lambda: os.getpid().to_bytes(8, "little") + big) as child:
        here = os.getpid()
        data = child.result()
    assert data is not None
    assert int.from_bytes(data[:8], "little") != here  # made in another process
    assert data[8:] == big


def test_nothing_is_forked_when_not_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork() -> int:
        raise AssertionError("forked")

    monkeypatch.setattr(os, "fork", no_fork)
    with Meanwhile(lambda: b"x", enabled=False) as child:
        assert child.result() is None


def test_one_core_runs_nothing_in_a_child(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "default_workers", lambda: 1)
    with Meanwhile(lambda: b"x") as child:
        assert child.result() is None


def raises() -> bytes:
    raise ValueError("the work failed")


def dies() -> bytes:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


@pytest.mark.parametrize("work", [raises, dies], ids=["raises", "dies"])
def test_a_failed_child_delivers_nothing(work: object) -> None:
    with Meanwhile(work) as child:  # type: ignore[arg-type]
        assert child.result() is None


def test_a_fork_refused_delivers_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork() -> int:
        raise BlockingIOError("fork: resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    with Meanwhile(lambda: b"x") as child:
        assert child.result() is None


def test_a_hung_child_is_killed_at_its_patience(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "MIN_PATIENCE_S", 0.5)
    pid_read, pid_write = os.pipe()

    def hang() -> bytes:
        os.write(pid_write, os.getpid().to_bytes(8, "little"))
        while True:
            time.sleep(60)

    with Meanwhile(hang) as child:
        assert child.result() is None
    pid = int.from_bytes(os.read(pid_read, 8), "little")
    os.close(pid_read)
    os.close(pid_write)
    with pytest.raises(ChildProcessError):  # killed and reaped, not left behind
        os.waitpid(pid, os.WNOHANG)


def test_a_result_not_asked_for_is_stopped_on_the_way_out() -> None:
    pid_read, pid_write = os.pipe()

    def slow() -> bytes:
        os.write(pid_write, os.getpid().to_bytes(8, "little"))
        time.sleep(60)
        return b"late"

    def fail_meanwhile() -> int:
        with Meanwhile(slow):
            pid = int.from_bytes(os.read(pid_read, 8), "little")  # the child is at work
            raise KeyError(pid)  # this process fails first

    with pytest.raises(KeyError) as failed:
        fail_meanwhile()
    pid = failed.value.args[0]
    os.close(pid_read)
    os.close(pid_write)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
