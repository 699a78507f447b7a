"""The sampler on real processes: known allocations, process trees, exits, Ctrl-C."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter

import polars as pl
import psutil
import pytest

from foresize.core.errors import InputError
from foresize.ingest.sampler import CommandError, attach_process, record, start_command

MIB = 2**20
# 100 MiB for 1 s, 300 MiB for 1 s, freed for 1 s, then 1.5 busy seconds of CPU
STEPS = """
import time
time.sleep(0.6)
a = bytearray(b"x") * (100 * 2**20); time.sleep(1.0)
b = bytearray(b"x") * (200 * 2**20); time.sleep(1.0)
del a, b; time.sleep(1.0)
end = time.time() + 1.5
while time.time() < end:
    pass
"""


def series(frame: pl.DataFrame, metric: str) -> list[float]:
    return frame.filter(pl.col("metric") == metric).sort("ts")["value"].to_list()


@pytest.fixture(scope="module")
def steps() -> pl.DataFrame:
    recording = record(start_command([sys.executable, "-c", STEPS]), name="steps",
                       interval_s=0.1, own_child=True)
    assert recording.exit_code == 0
    return recording.telemetry


def test_peak_rss_matches_the_known_allocation(steps: pl.DataFrame) -> None:
    rss = series(steps, "mem_bytes")
    # the interpreter before the first allocation (0.6 s of sleep: the first six samples;
    # the median, since the very first may catch the interpreter still loading). The level
    # after the frees can settle a few MiB away from it, so the steps are measured from
    # here, the level just before them.
    baseline = sorted(rss[:6])[3]
    assert max(rss) - baseline == pytest.approx(300 * MIB, rel=0.05)
    plateau = [r - baseline for r in rss if 80 * MIB < r - baseline < 250 * MIB]
    assert plateau, "the 100 MiB step was never seen"
    # the level most samples sit at (4 MiB bins), not the median: on a slow machine the
    # 200 MiB allocation after it ramps over many samples, all above the plateau
    level = Counter(round(r / (4 * MIB)) for r in plateau).most_common(1)[0][0] * 4 * MIB
    assert level == pytest.approx(100 * MIB, rel=0.05)
    uss = series(steps, "mem_uss_bytes")
    assert max(uss) <= max(rss)


def test_cpu_series_shows_the_busy_window(steps: pl.DataFrame) -> None:
    """Relative thresholds: on a loaded machine the burning child gets less than a core."""
    raw = series(steps, "cpu_cores")
    cpu = [sum(raw[max(i - 1, 0):i + 2]) / len(raw[max(i - 1, 0):i + 2]) for i in range(len(raw))]
    rss = series(steps, "mem_bytes")
    peak_at = rss.index(max(rss))
    runs: list[tuple[int, int]] = []  # (start, length) of consecutive busy samples
    for i, busy in enumerate(c > 0.25 for c in cpu):
        if busy and runs and runs[-1][0] + runs[-1][1] == i:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        elif busy:
            runs.append((i, 1))
    # the burn comes after the memory was freed; on a slow machine the allocations before
    # it (memset of 300 MiB) can be busy runs of their own, so they are not the burn
    after = [run for run in runs if run[0] > peak_at + 5]
    assert after, f"no busy run after the free (peak at sample {peak_at}, runs {runs})"
    start, length = max(after, key=lambda run: run[1])
    assert length >= 8  # about 1.5 s at 0.1 s sampling
    burning = sum(cpu[start:start + length]) / length
    sleeping = cpu[peak_at + 1:start - 1]  # the second after the free
    assert burning > 5 * (sum(sleeping) / len(sleeping) + 0.01)
    assert max(raw) < 1.3  # one thread can use at most about one core


def test_a_process_tree_is_summed_and_can_be_split() -> None:
    script = "import time; b = bytearray(b'x') * (60 * 2**20); time.sleep(1.5)"
    child = f'{sys.executable} -c "{script}"'
    command = ["sh", "-c", f"{child} & {child} & wait"]
    tree = record(start_command(command), name="tree", interval_s=0.1, own_child=True)
    split = record(start_command(command), name="tree", interval_s=0.1, per_process=True,
                   own_child=True)
    assert max(series(tree.telemetry, "mem_bytes")) > 2 * 60 * MIB
    workloads = split.telemetry["workload"].unique().to_list()
    assert sum("python" in w for w in workloads) == 2, workloads


def test_exit_code_is_passed_through() -> None:
    recording = record(start_command(["sh", "-c", "exit 7"]), name="x", interval_s=0.05,
                       own_child=True)
    assert recording.exit_code == 7
    assert not recording.interrupted


def test_attach_until_the_process_exits() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.0)"])
    try:
        recording = record(attach_process(proc.pid), name="sleeper", interval_s=0.1)
    finally:
        proc.wait()
    assert recording.exit_code is None
    assert 0.5 < recording.wall_s < 3
    assert recording.telemetry["ts"].n_unique() >= 4


def test_bad_commands_and_pids() -> None:
    with pytest.raises(CommandError, match="command not found: no-such-command") as info:
        start_command(["no-such-command"])
    assert info.value.exit_code == 127
    with pytest.raises(InputError, match="no command given"):
        start_command([])
    dead = subprocess.Popen(["true"])
    dead.wait()
    with pytest.raises(InputError, match=f"no process with PID {dead.pid}"):
        attach_process(dead.pid)
    with pytest.raises(InputError, match="must be positive"):
        record(psutil.Process(), name="x", interval_s=0)


def test_no_gpu_is_said_not_crashed() -> None:
    recording = record(start_command(["true"]), name="x", interval_s=0.05, own_child=True)
    assert recording.gpu_note.startswith("no NVIDIA GPU found")
    assert "gpu_mem_bytes" not in recording.telemetry["metric"].to_list()


def test_sampling_overhead_is_reported() -> None:
    start = time.monotonic()
    recording = record(start_command(["sleep", "1"]), name="x", interval_s=0.1, own_child=True)
    assert recording.wall_s <= time.monotonic() - start
    assert 0 < recording.sampler_cpu_s < recording.wall_s


def test_network_is_attributed_in_a_private_namespace() -> None:
    """20 MiB over TCP on the namespace's loopback: counted once received, once sent."""
    sender = (
        "import socket, threading, time\n"
        "server = socket.create_server(('127.0.0.1', 0))\n"
        "port = server.getsockname()[1]\n"
        "def drain():\n"
        "    conn, _ = server.accept()\n"
        "    while conn.recv(1 << 20):\n"
        "        pass\n"
        "reader = threading.Thread(target=drain); reader.start()\n"
        "time.sleep(0.5)\n"
        "with socket.create_connection(('127.0.0.1', port)) as client:\n"
        "    client.sendall(b'x' * (20 * 2**20))\n"
        "reader.join(); time.sleep(0.5)\n"
    )
    command = ["unshare", "-n", "sh", "-c", f'ip link set lo up && {sys.executable} -c "$0"',
               sender]
    recording = record(start_command(command), name="net", interval_s=0.1, own_child=True)
    assert recording.exit_code == 0
    samples = recording.telemetry.sort("ts")
    for metric in ("net_rx_bytes_per_s", "net_tx_bytes_per_s"):
        rates = samples.filter(pl.col("metric") == metric)
        stamps = rates["ts"].dt.epoch("us").to_numpy() / 1e6
        moved = float((rates["value"].to_numpy()[1:] * (stamps[1:] - stamps[:-1])).sum())
        assert moved == pytest.approx(20 * MIB, rel=0.10), metric


def test_host_network_is_not_attributed() -> None:
    recording = record(start_command(["sleep", "0.3"]), name="x", interval_s=0.1,
                       own_child=True)
    assert not {"net_rx_bytes_per_s", "net_tx_bytes_per_s"} & set(
        recording.telemetry["metric"].to_list())


def test_phases_of_the_samples_follow_the_allocation_steps(steps: pl.DataFrame) -> None:
    from foresize.profile.phases import detect_phases

    memory = detect_phases(steps.filter(pl.col("metric") == "mem_bytes")).sort("ts")
    rss = memory["value"].to_list()
    phases = memory["phase"].to_list()
    baseline = sorted(rss[-8:])[0]
    level = {"base": [], "100": [], "300": []}
    for value, phase in zip(rss, phases, strict=True):
        grown = (value - baseline) / MIB
        key = "base" if grown < 20 else "100" if 90 < grown < 110 else "300" if grown > 290 else ""
        if key:
            level[key].append(phase)
    majority = {k: max(set(v), key=v.count) for k, v in level.items()}
    assert majority == {"base": "low", "100": "mid", "300": "high"}
    for key, labels in level.items():  # each step is one phase, bar a transition sample
        assert labels.count(majority[key]) >= len(labels) - 2, key
