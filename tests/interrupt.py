"""Ctrl-C on a real run: the shared half of every "Ctrl-C keeps what finished" test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable


def interrupt_when(args: list[str], ready: Callable[[str], bool]) -> tuple[list[str], str]:
    """Run ``foresize ARGS`` in a subprocess with a heartbeat every 0.05 s, send SIGINT
    once a stderr line satisfies ``ready`` (a readiness signal, never a sleep), and check
    that it exits 130 without a traceback.

    Returns the stderr lines read before the signal and the stderr after it.
    """
    run = subprocess.Popen(
        [sys.executable, "-m", "foresize.cli.main", *args], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "FORESIZE_HEARTBEAT_S": "0.05"},
    )
    assert run.stderr is not None
    seen: list[str] = []
    for line in run.stderr:
        seen.append(line)
        if ready(line):
            break
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=300)
    assert run.returncode == 130, err
    assert "Traceback" not in err
    return seen, err
