"""Cluster mode at scale: read N containers x D days at 1-minute resolution from a local
Prometheus and print the time, the requests, the bytes, the peak RSS and where the time
went.

The server is backfilled with ``foresize.ingest.cluster.sample`` (real GenTD26 values on
cAdvisor, kube-state-metrics and DCGM names), one ``promtool tsdb create-blocks-from
openmetrics`` run per 54-hour window aligned to promtool's block grid: every run writes
one block of every series and no two blocks overlap, so Prometheus never merges blocks at
query time and never has to hold the text of the whole window set at once. The built
TSDB is kept under ``.bench/`` (gitignored) and reused by the next run of the same size;
it is started with compaction off (``--storage.tsdb.max-block-duration`` = the block
size), so nothing rewrites blocks while the read is timed.

Timed: ``read_cluster`` (discovery, the batched usage queries, parsing, pooling) with its
own breakdown, then ``plan_cluster``. Then the same usage queries are replayed by a
minimal client (one kept-alive connection per thread, bodies read and thrown away) at the
same concurrency: Prometheus' own time to evaluate, encode and send them, the bound no
client can beat on this machine. ``--shapes`` also replays one metric (memory: one
sample per container and minute, 20.16 M at 1,000 x 14 d) in three query shapes, to
find the cheapest Prometheus can answer.

The machine is shared, so wall seconds swing with the load; each part is also given in
CPU seconds (this process from ``getrusage``, Prometheus from ``/proc``), which do not,
and the closing breakdown sets the server's CPU against foresize's and against what the
cores can give in the 60 s target.

    python benchmarks/bench_cluster.py                    # 1,000 containers x 14 days
    python benchmarks/bench_cluster.py --containers 100 --days 2
    python benchmarks/bench_cluster.py --no-plan --shapes # the server bound per shape
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from foresize.ingest.cluster import ClusterRequest, read_cluster
from foresize.ingest.cluster.client import DEFAULT_CONCURRENCY
from foresize.ingest.cluster.read import USAGE
from foresize.ingest.cluster.sample import STEP_S, SampleCluster, sample_cluster
from foresize.recommend.cluster import ClusterPlanRequest, plan_cluster

CONTAINERS_PER_OWNER = 6 / 5  # the layout cycles 5 kinds holding 2+1+1+1+1 containers
BLOCK_S = 54 * 3600  # one of promtool's block sizes (2h x 3^k): 14 days are 7-8 blocks
TARGET_S = 60.0  # issue #21: 1,000 containers x 14 days right-sized within a minute
FORMAT = 2  # bump when the sample cluster's series change: older caches are rebuilt
ROOT = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("FORESIZE_DATA_MIRROR",
                             ROOT.parent / "shared" / "datasets" / "alibaba-clusterdata"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"prometheus exited with {process.returncode}")
        try:
            with opener.open(f"{url}/-/ready", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"prometheus not ready after {timeout_s:g} s")


def _windows(cluster: SampleCluster) -> list[tuple[int, int]]:
    """Sample-index windows ``[first, last)``, cut where promtool's 54 h blocks end."""
    cuts = [0]
    edge = (cluster.t0_s // BLOCK_S + 1) * BLOCK_S
    while (index := -(-(edge - cluster.t0_s) // STEP_S)) < cluster.n_samples:
        cuts.append(index)
        edge += BLOCK_S
    cuts.append(cluster.n_samples)
    return list(itertools.pairwise(cuts))


def backfill(cluster: SampleCluster, storage: Path, promtool: str) -> float:
    """Write one block per window into ``storage``; the next window's text is generated
    while promtool reads the previous one. Returns the seconds it took.
    """
    started = time.perf_counter()
    storage.mkdir(parents=True)
    running: tuple[subprocess.Popen[bytes], Path] | None = None
    for number, window in enumerate(_windows(cluster)):
        source = cluster.write_openmetrics(storage.parent / f"window-{number}.om", window=window)
        if running is not None:
            _finish(*running)
        running = (subprocess.Popen(
            [promtool, "tsdb", "create-blocks-from", "openmetrics",
             f"--max-block-duration={BLOCK_S}s", str(source), str(storage)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), source)
    if running is not None:
        _finish(*running)
    return time.perf_counter() - started


def _finish(process: subprocess.Popen[bytes], source: Path) -> None:
    _, err = process.communicate()
    source.unlink()
    if process.returncode:
        sys.exit(f"promtool failed: {err.decode()[-2000:]}")


Log = list[tuple[str, dict[str, str]]]


def replay(port: int, log: Log, concurrency: int) -> tuple[float, int]:
    """``log``'s requests again, bodies read and thrown away: (wall seconds, bytes).

    One kept-alive connection per thread and 1 MiB reads: the least a client can do.
    """
    local = threading.local()

    def one(entry: tuple[str, dict[str, str]]) -> int:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection("127.0.0.1", port)
        path, form = entry
        connection.request("POST", path, urllib.parse.urlencode(form),
                           {"Content-Type": "application/x-www-form-urlencoded"})
        answer = connection.getresponse()
        if answer.status != 200:
            sys.exit(f"replay: {path} answered {answer.status}: {answer.read(500)!r}")
        size = 0
        while chunk := answer.read(1 << 20):
            size += len(chunk)
        return size

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        sizes = list(pool.map(one, log))
    return time.perf_counter() - started, sum(sizes)


def shapes(log: Log) -> dict[str, Log]:
    """The memory metric's requests of ``log`` in three shapes (see ``--shapes``):

    * ``query_range``, as the read sends it: one sample per step, pages of 11,000 steps;
    * raw samples: one instant query per batch of the selector over the whole window
      (``metric[W]``): no step evaluation and no page limit;
    * ``max by (namespace, pod, container)``: the aggregation done by the server.
    """
    memory = USAGE["mem_bytes"][0]
    ranged = [(path, form) for path, form in log if form["query"].startswith(memory + "{")]
    if not ranged:
        return {}
    first = min(float(form["start"]) for _, form in ranged)
    last = max(float(form["end"]) for _, form in ranged)
    window = f"[{round(last - first) + STEP_S}s]"
    raw = [("/api/v1/query", {"query": query + window, "time": f"{last:.3f}"})
           for query in dict.fromkeys(form["query"] for _, form in ranged)]
    by = [(path, {**form, "query": f"max by (namespace, pod, container) ({form['query']})"})
          for path, form in ranged]
    return {"query_range": ranged, "raw samples": raw, "max by": by}


class Cpu:
    """CPU seconds of this process and of Prometheus since the last ``lap``."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.marks = self._now()

    def _now(self) -> tuple[float, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        fields = Path(f"/proc/{self.server_pid}/stat").read_text().rsplit(")", 1)[1].split()
        server = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return usage.ru_utime + usage.ru_stime, server

    def lap(self) -> tuple[float, float]:
        """(this process, Prometheus) CPU seconds since the previous lap."""
        now = self._now()
        spent = (now[0] - self.marks[0], now[1] - self.marks[1])
        self.marks = now
        return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=1000)
    parser.add_argument("--days", type=float, default=14.0)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                        help="requests in flight (default: the read's, 4 or the cores if fewer)")
    parser.add_argument("--cache", type=Path, default=ROOT / ".bench" / "cluster",
                        help="where built TSDBs are kept between runs")
    parser.add_argument("--no-replay", action="store_true", help="skip the server bound")
    parser.add_argument("--no-plan", action="store_true",
                        help="time the read only (planning 14 days takes far longer)")
    parser.add_argument("--shapes", action="store_true",
                        help="also replay the memory queries alone in three shapes "
                             "(query_range, raw samples, max by): the least the server needs")
    args = parser.parse_args()
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not (prometheus and promtool):
        sys.exit("needs prometheus and promtool: apt-get install -y prometheus")
    cores = len(os.sched_getaffinity(0))
    n_owners = round(args.containers / CONTAINERS_PER_OWNER)
    cluster = sample_cluster(MIRROR, n_owners=n_owners, days=args.days)
    work = args.cache / f"v{FORMAT}-{n_owners}-owners-{cluster.n_samples}-minutes"
    storage = work / "data"
    if (work / "complete").exists():
        built = f"reused {storage}"
    else:
        shutil.rmtree(work, ignore_errors=True)
        seconds = backfill(cluster, storage, promtool)
        (work / "complete").write_text(f"{seconds:.1f}\n")
        built = f"built in {seconds:,.1f} s (not counted)"
    config = work / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\n")
    port = _free_port()
    with (work / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={storage}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=30y",
             f"--storage.tsdb.max-block-duration={BLOCK_S}s", "--query.lookback-delta=30s"],
            stdout=log, stderr=subprocess.STDOUT)
    bound: tuple[float, float] | None = None  # the replay's (wall s, Prometheus CPU s)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, process)
        cpu = Cpu(process.pid)
        request = ClusterRequest(f"prometheus://127.0.0.1:{port}",
                                 since_s=cluster.end_s - cluster.t0_s,
                                 until=datetime.fromtimestamp(cluster.end_s, UTC),
                                 concurrency=args.concurrency)
        load = os.getloadavg()[0]
        cpu.lap()
        t0 = time.perf_counter()
        read = read_cluster(request)
        read_s = time.perf_counter() - t0
        read_cpu, read_server = cpu.lap()
        print(f"sample cluster: {read.containers.height:,} workload containers, {n_owners:,} "
              f"owners, {len(cluster.pods):,} pods, {args.days:g} days at 1 min on {cores} "
              f"cores; TSDB {built}")
        print(f"read_cluster: {read_s:,.1f} s, {read.requests:,} requests, "
              f"{read.bytes_read / 2**20:,.1f} MiB, {read.frame.height:,} samples pooled; "
              f"CPU: foresize {read_cpu:,.1f} s, Prometheus {read_server:,.1f} s; "
              f"peak RSS {_rss():,.0f} MiB; load average {load:.2f}")
        print("  " + ", ".join(f"{k} {v:,.1f} s" for k, v in read.timings.items()), flush=True)
        if not args.no_replay:
            load = os.getloadavg()[0]
            seconds, size = replay(port, read.log, args.concurrency)
            client_cpu, server_cpu = cpu.lap()
            bound = seconds, server_cpu
            print(f"server bound: the {len(read.log):,} usage queries replayed, bodies thrown "
                  f"away, at concurrency {args.concurrency}: {seconds:,.1f} s, "
                  f"{size / 2**20:,.1f} MiB; CPU: Prometheus {server_cpu:,.1f} s, client "
                  f"{client_cpu:,.1f} s; load average {load:.2f}", flush=True)
        if args.shapes:
            for name, queries in shapes(read.log).items():
                load = os.getloadavg()[0]
                seconds, size = replay(port, queries, cores)
                _, server_cpu = cpu.lap()
                print(f"  memory alone as {name}, {len(queries):,} requests at concurrency "
                      f"{cores}: {seconds:,.1f} s, {size / 2**20:,.1f} MiB; Prometheus CPU "
                      f"{server_cpu:,.1f} s; load average {load:.2f}", flush=True)
    finally:
        process.terminate()
        process.wait(timeout=30)
    if args.no_plan:
        return
    load = os.getloadavg()[0]
    started = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    plan = plan_cluster(read, ClusterPlanRequest(), source=request.url)
    plan_s = time.perf_counter() - t0
    ended = resource.getrusage(resource.RUSAGE_SELF)
    plan_cpu = ended.ru_utime + ended.ru_stime - started.ru_utime - started.ru_stime
    print(f"plan_cluster: {plan_s:,.1f} s, {len(plan.section.owners):,} owners sized, "
          f"{len(plan.section.skipped):,} skipped; CPU {plan_cpu:,.1f} s; peak RSS "
          f"{_rss():,.0f} MiB; load average {load:.2f}")
    total_s = read_s + plan_s
    print(f"breakdown of right-sizing {read.containers.height:,} containers x {args.days:g} "
          f"days (backfill not counted): {total_s:,.1f} s wall, target {TARGET_S:g} s")
    print(f"  Prometheus answering the read (server CPU): {read_server:,.1f} s")
    print(f"  foresize read (transfer, parsing, pooling; CPU): {read_cpu:,.1f} s")
    print(f"  foresize right-sizing (plan_cluster; CPU): {plan_cpu:,.1f} s")
    if bound is not None:
        wall, server_cpu = bound
        print(f"  server bound: {wall:,.1f} s wall replayed, {server_cpu:,.1f} s of "
              f"Prometheus CPU = at least {server_cpu / cores:,.1f} s on {cores} cores; "
              f"foresize adds {total_s - wall:,.1f} s, {(total_s - wall) / total_s:.0%} of "
              "the wall")
    need = (read_server + read_cpu + plan_cpu) / cores
    verdict = ("within reach of this machine when idle" if need <= TARGET_S else
               "out of reach of this machine even when idle")
    print(f"  all that CPU spread on {cores} cores: at least {need:,.1f} s wall; the "
          f"{TARGET_S:g} s target is {verdict}")


def _rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
