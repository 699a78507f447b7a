"""Time ``foresize profile model`` on ONNX graphs of 20k to 200k nodes (issue #20).

The graphs are residual chains built with ``onnx.helper``: each block is MatMul, Add
(bias), Relu, Add (residual), Reshape, Concat, Reshape, MatMul, eight nodes over a batch
of 4 x 64, with five small initializers every block shares, so the file stays a few MB
and the time is the analyser's, not the protobuf's. Every pass must be linear in the
node count: the table shows seconds per 10k nodes staying flat as the graph grows.

Each run is a fresh ``foresize`` process (import, read, shape inference, FLOPs, liveness,
the table); wall time, CPU time (user + system, what the machine's load does not
inflate) and peak RSS come from the child's own ``wait4`` accounting. ``--baseline``
names another ``foresize`` executable (an older checkout's, e.g.
``/work/main/.venv/bin/foresize``) run on the same files in the same run: the ratio
column is its time over ours, and its first table line and memory note must equal ours.
``--repeat N`` runs each N times, ours and the baseline's in turn (a machine whose speed
drifts by the minute drifts for both), and prints the median and, after a slash, the best.

    python benchmarks/bench_onnx_large.py                       # 20k, 100k, 200k nodes
    python benchmarks/bench_onnx_large.py --nodes 200000 --baseline /work/main/.venv/bin/foresize
    python benchmarks/bench_onnx_large.py --nodes 200000 --phases   # where the time goes
    python benchmarks/bench_onnx_large.py --nodes 200000 --repeat 7 --baseline OLD
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HIDDEN = 64
BATCH = 4
BLOCK = 8  # nodes per block
TARGET_S = 5.0  # the target for 200k nodes


def build(path: Path, n_nodes: int) -> None:
    """Write a residual chain of ``n_nodes`` (a multiple of ``BLOCK``) to ``path``."""
    inits = [
        numpy_helper.from_array(np.zeros((HIDDEN, HIDDEN), np.float32), "W"),
        numpy_helper.from_array(np.zeros((HIDDEN,), np.float32), "b"),
        numpy_helper.from_array(np.array([-1, 8, HIDDEN // 8], np.int64), "as_cube"),
        numpy_helper.from_array(np.array([-1, 2 * HIDDEN], np.int64), "as_rows"),
        numpy_helper.from_array(np.zeros((2 * HIDDEN, HIDDEN), np.float32), "W2"),
    ]
    nodes = []
    x = "x"
    for i in range(n_nodes // BLOCK):
        p = f"blocks.{i}/"
        nodes += [
            helper.make_node("MatMul", [x, "W"], [p + "mm"], name=p + "MatMul"),
            helper.make_node("Add", [p + "mm", "b"], [p + "biased"], name=p + "Add"),
            helper.make_node("Relu", [p + "biased"], [p + "act"], name=p + "Relu"),
            helper.make_node("Add", [p + "act", x], [p + "res"], name=p + "Residual"),
            helper.make_node("Reshape", [p + "res", "as_cube"], [p + "cube"], name=p + "Cube"),
            helper.make_node("Concat", [p + "cube", p + "cube"], [p + "cat"], axis=1,
                             name=p + "Concat"),
            helper.make_node("Reshape", [p + "cat", "as_rows"], [p + "rows"], name=p + "Rows"),
            helper.make_node("MatMul", [p + "rows", "W2"], [p + "out"], name=p + "Down"),
        ]
        x = p + "out"
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [BATCH, HIDDEN])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [BATCH, HIDDEN])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


@dataclass(frozen=True, slots=True)
class Run:
    """One ``foresize profile model`` process: its times, peak RSS and what it printed."""

    wall_s: float
    cpu_s: float
    rss_mib: float
    title: str
    memory_note: str


def timed(command: list[str], path: Path, env: dict[str, str]) -> Run:
    """Run ``command profile model path``; wait4 gives this child's own CPU and RSS."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([*command, "profile", "model", str(path)], stdout=out,
                                 stderr=err, text=True, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {child.returncode} on {path}:\n{stderr}")
    title = next((line.strip() for line in stdout.splitlines() if line.strip()), "")
    note = next((line.strip() for line in stderr.splitlines() if line.startswith("memory")), "")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, title, note)


PHASES = """
import os, sys
def cpu():  # waited-for children too: read_onnx infers large graphs in a forked child
    return sum(os.times()[:4])
start = cpu()
import onnx
from foresize.graph.onnx_reader import read_onnx
from foresize.graph.flops import analyze_flops
from foresize.graph.liveness import inference_memory
from foresize.graph.model import collector_paused
imported = cpu()
with collector_paused():
    model = onnx.shape_inference.infer_shapes(onnx.load(sys.argv[1]), data_prop=True)
    del model
    inferred = cpu()
    graph = read_onnx(sys.argv[1])
    read = cpu()
    analyze_flops(graph)
    priced = cpu()
    inference_memory(graph)
    sized = cpu()
print(f"import {imported - start:.2f}, load+infer {inferred - imported:.2f}, "
      f"read {read - inferred - (inferred - imported):.2f}, "
      f"flops {priced - read:.2f}, memory {sized - priced:.2f}")
"""


def summary(runs: list[Run]) -> Run:
    """The median of each time over ``runs`` (their first output: all must agree)."""
    return Run(statistics.median(r.wall_s for r in runs), statistics.median(r.cpu_s for r in runs),
               statistics.median(r.rss_mib for r in runs), runs[0].title, runs[0].memory_note)


def cell(runs: list[Run], what: str, width: int) -> str:
    """Median, and the best after a slash when there are several runs."""
    values = [getattr(r, what) for r in runs]
    text = f"{statistics.median(values):.2f}"
    if len(values) > 1:
        text += f"/{min(values):.2f}"
    return f"{text:>{width}}"


def phases(path: Path, env: dict[str, str]) -> str:
    """CPU seconds per phase of one analysis in a fresh process: where the time goes.

    "read" is reading less ONNX's load and inference; on a graph of ``FORK_NODES`` nodes
    or more it includes fusion, done while the child infers, so "memory" is the rest.
    """
    done = subprocess.run([sys.executable, "-c", PHASES, str(path)], env=env,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[20_000, 100_000, 200_000])
    parser.add_argument("--baseline", help="another foresize executable to time on the "
                        "same files (e.g. /work/main/.venv/bin/foresize)")
    parser.add_argument("--phases", action="store_true", help="also print CPU seconds per "
                        "phase (import, onnx load and inference, read, FLOPs, memory)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, taken in turn; "
                        "times are the median / the best")
    args = parser.parse_args()
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    ours = [str(Path(sys.executable).with_name("foresize"))]
    if not Path(ours[0]).exists():
        ours = [sys.executable, "-c", "from foresize.cli.main import main; main()"]
    baseline = None
    if args.baseline:
        found = shutil.which(args.baseline)
        if found is None:
            raise SystemExit(f"--baseline {args.baseline}: no such executable")
        baseline = [found]
    # This checkout's sources for our runs; none for the baseline, which then imports the
    # sources its own install points at (an inherited PYTHONPATH would time us twice).
    ours_env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    baseline_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    w = 11 if args.repeat > 1 else 6  # "median/best" takes more room
    if baseline:  # the two side by side; build time and per-10k CPU left out (80 columns)
        header = (f"{'nodes':>8} {'wall s':>{w}} {'old wall':>{w}} {'ratio':>6} {'cpu s':>{w}} "
                  f"{'old cpu':>{w}} {'MiB':>5} {'old':>5} {'same':>4}")
    else:
        header = (f"{'nodes':>8} {'build':>6} {'wall s':>{w}} {'cpu s':>{w}} {'cpu s/10k':>9} "
                  f"{'RSS MiB':>7}")
    print(f"foresize profile model on residual chains; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    print(header)
    with tempfile.TemporaryDirectory() as work:
        for n in args.nodes:
            n -= n % BLOCK
            path = Path(work) / f"chain-{n}.onnx"
            started = time.perf_counter()
            build(path, n)
            built = time.perf_counter() - started
            news: list[Run] = []
            olds: list[Run] = []
            for _ in range(args.repeat):  # in turn: a drifting machine drifts for both
                news.append(timed(ours, path, ours_env))
                if baseline:
                    olds.append(timed(baseline, path, baseline_env))
            new = summary(news)
            if baseline:
                old = summary(olds)
                same = all(r.title == new.title and r.memory_note == new.memory_note
                           for r in news + olds)
                line = (f"{n:>8,} {cell(news, 'wall_s', w)} {cell(olds, 'wall_s', w)} "
                        f"{old.wall_s / new.wall_s:>5.2f}x {cell(news, 'cpu_s', w)} "
                        f"{cell(olds, 'cpu_s', w)} {new.rss_mib:>5.0f} {old.rss_mib:>5.0f} "
                        f"{'yes' if same else 'NO':>4}")
            else:
                line = (f"{n:>8,} {built:>6.1f} {cell(news, 'wall_s', w)} "
                        f"{cell(news, 'cpu_s', w)} {new.cpu_s / n * 10_000:>9.3f} "
                        f"{new.rss_mib:>7.0f}")
            print(line, flush=True)
            if args.phases:
                print(f"{'':>8} cpu s: {phases(path, ours_env)}", flush=True)
    print(f"target: 200,000 nodes in < {TARGET_S:.0f} s wall; cpu s: user + system, the "
          "process's\nand its children's (wall time also counts waiting for a CPU on a loaded "
          "machine);\nratio: the baseline's median wall time over ours")


if __name__ == "__main__":
    main()
