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
own breakdown, then ``plan_cluster``. Then the same usage queries are replayed with
``curl`` at the same concurrency, bodies discarded: Prometheus' own time to evaluate,
encode and send them, the bound no client can beat on this machine.

    python benchmarks/bench_cluster.py                    # 1,000 containers x 14 days
    python benchmarks/bench_cluster.py --containers 100 --days 2
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from foresize.ingest.cluster import ClusterRequest, read_cluster
from foresize.ingest.cluster.sample import STEP_S, SampleCluster, sample_cluster
from foresize.recommend.cluster import ClusterPlanRequest, plan_cluster

CONTAINERS_PER_OWNER = 6 / 5  # the layout cycles 5 kinds holding 2+1+1+1+1 containers
BLOCK_S = 54 * 3600  # one of promtool's block sizes (2h x 3^k): 14 days are 7-8 blocks
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


def replay(url: str, log: list[tuple[str, dict[str, str]]], concurrency: int) -> tuple[float, int]:
    """The usage queries again with curl, bodies thrown away: (wall seconds, bytes)."""
    curl = shutil.which("curl")
    if curl is None:
        return float("nan"), 0

    def one(entry: tuple[str, dict[str, str]]) -> int:
        path, form = entry
        done = subprocess.run([curl, "-sS", "--noproxy", "*", "-o", "/dev/null", "-w",
                               "%{size_download}", "--data", urllib.parse.urlencode(form),
                               url + path], check=True, capture_output=True, text=True)
        return int(done.stdout)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        sizes = list(pool.map(one, log))
    return time.perf_counter() - started, sum(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=1000)
    parser.add_argument("--days", type=float, default=14.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--cache", type=Path, default=ROOT / ".bench" / "cluster",
                        help="where built TSDBs are kept between runs")
    parser.add_argument("--no-replay", action="store_true", help="skip the curl bound")
    parser.add_argument("--no-plan", action="store_true",
                        help="time the read only (planning 14 days takes far longer)")
    args = parser.parse_args()
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not (prometheus and promtool):
        sys.exit("needs prometheus and promtool: apt-get install -y prometheus")
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
        built = f"built in {seconds:,.1f} s"
    config = work / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\n")
    port = _free_port()
    with (work / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={storage}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=30y",
             f"--storage.tsdb.max-block-duration={BLOCK_S}s", "--query.lookback-delta=30s"],
            stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, process)
        request = ClusterRequest(f"prometheus://127.0.0.1:{port}",
                                 since_s=cluster.end_s - cluster.t0_s,
                                 until=datetime.fromtimestamp(cluster.end_s, UTC),
                                 concurrency=args.concurrency)
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        read = read_cluster(request)
        read_s = time.perf_counter() - t0
        print(f"sample cluster: {read.containers.height:,} workload containers, {n_owners:,} "
              f"owners, {len(cluster.pods):,} pods, {args.days:g} days at 1 min; TSDB {built}")
        print(f"read_cluster: {read_s:,.1f} s, {read.requests:,} requests, "
              f"{read.bytes_read / 2**20:,.1f} MiB, {read.frame.height:,} samples pooled; "
              f"peak RSS {_rss():,.0f} MiB; load average {load:.2f}")
        print("  " + ", ".join(f"{k} {v:,.1f} s" for k, v in read.timings.items()), flush=True)
        if not args.no_replay:
            seconds, size = replay(url, read.log, args.concurrency)
            print(f"  curl replay of the {len(read.log):,} usage queries at concurrency "
                  f"{args.concurrency}: {seconds:,.1f} s, {size / 2**20:,.1f} MiB", flush=True)
    finally:
        process.terminate()
        process.wait(timeout=30)
    if not args.no_plan:
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        plan = plan_cluster(read, ClusterPlanRequest(), source=request.url)
        print(f"plan_cluster: {time.perf_counter() - t0:,.1f} s, {len(plan.section.owners):,} "
              f"owners sized, {len(plan.section.skipped):,} skipped; peak RSS {_rss():,.0f} "
              f"MiB; load average {load:.2f}")


def _rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
