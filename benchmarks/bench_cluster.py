"""Cluster mode at scale: read N containers x D days at 1-minute resolution from a local
Prometheus and print the time, the requests, the bytes and the peak RSS.

The server is backfilled with ``foresize.ingest.cluster.sample`` (real GenTD26 values on
cAdvisor, kube-state-metrics and DCGM names) in chunks of owners, one ``promtool tsdb
create-blocks-from openmetrics`` run each (Prometheus merges the overlapping blocks), then
started on a free loopback port; the timed part is ``read_cluster`` (discovery, the
batched and paged usage queries, pooling) and, separately, the planning.

    python benchmarks/bench_cluster.py                    # 1,000 containers x 14 days
    python benchmarks/bench_cluster.py --containers 100 --days 2
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from foresize.ingest.cluster import ClusterRequest, read_cluster
from foresize.ingest.cluster.sample import sample_cluster
from foresize.recommend.cluster import ClusterPlanRequest, plan_cluster

CONTAINERS_PER_OWNER = 6 / 5  # the layout cycles 5 kinds holding 2+1+1+1+1 containers
MIRROR = Path(os.environ.get("FORESIZE_DATA_MIRROR",
                             Path(__file__).resolve().parents[2] / "shared" / "datasets"
                             / "alibaba-clusterdata"))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=1000)
    parser.add_argument("--days", type=float, default=14.0)
    parser.add_argument("--chunk", type=int, default=20, help="owners per promtool run")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not (prometheus and promtool):
        sys.exit("needs prometheus and promtool: apt-get install -y prometheus")
    n_owners = round(args.containers / CONTAINERS_PER_OWNER)
    cluster = sample_cluster(MIRROR, n_owners=n_owners, days=args.days)
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        work = Path(tmp)
        storage = work / "data"
        storage.mkdir()
        started = time.perf_counter()
        owners = sorted({(p.namespace, p.top_kind, p.top_name) for p in cluster.pods})
        for first in range(0, len(owners), args.chunk):
            chosen = set(owners[first:first + args.chunk])
            pods = [p for p in cluster.pods if (p.namespace, p.top_kind, p.top_name) in chosen]
            source = cluster.write_openmetrics(work / "chunk.om", pods)
            done = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics",
                                   "--max-block-duration=24h", str(source), str(storage)],
                                  check=False, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"promtool failed: {done.stderr[-2000:]}")
            source.unlink()
        backfill_s = time.perf_counter() - started
        config = work / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1m\n")
        port = _free_port()
        with (work / "prometheus.log").open("wb") as log:
            process = subprocess.Popen(
                [prometheus, f"--config.file={config}", f"--storage.tsdb.path={storage}",
                 f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=30y",
                 "--query.lookback-delta=30s"], stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, process)
            request = ClusterRequest(f"prometheus://127.0.0.1:{port}",
                                     since_s=cluster.end_s - cluster.t0_s,
                                     until=datetime.fromtimestamp(cluster.end_s, UTC),
                                     concurrency=args.concurrency)
            t0 = time.perf_counter()
            read = read_cluster(request)
            read_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            plan = plan_cluster(read, ClusterPlanRequest(), source=request.url)
            plan_s = time.perf_counter() - t0
        finally:
            process.terminate()
            process.wait(timeout=30)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"sample cluster: {read.containers.height:,} workload containers, "
          f"{len(owners):,} owners, {len({p.name for p in cluster.pods}):,} pods, "
          f"{args.days:g} days at 1 min; backfill {backfill_s:,.1f} s (not timed below)")
    print(f"read_cluster: {read_s:,.1f} s, {read.requests:,} requests, "
          f"{read.bytes_read / 2**20:,.1f} MiB, {read.frame.height:,} samples pooled")
    print(f"plan_cluster: {plan_s:,.1f} s, {len(plan.section.owners):,} owners sized, "
          f"{len(plan.section.skipped):,} skipped")
    print(f"peak RSS: {rss:,.0f} MiB")


if __name__ == "__main__":
    main()
