"""A real Prometheus backfilled with a sample cluster (``foresize.ingest.cluster.sample``).

Shared by the ingest and recommend tests of cluster mode: one server per session holds
ten owners of every kind in three namespaces over one day of real GenTD26 values, plus
one Deployment with too little history.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from foresize.ingest.cluster.sample import SampleCluster, sample_cluster
from tests.ingest import prom_server


@dataclass(frozen=True, slots=True)
class ClusterServer:
    url: str  # prometheus://127.0.0.1:PORT
    http: str  # http://127.0.0.1:PORT
    cluster: SampleCluster

    @property
    def until(self) -> datetime:
        return datetime.fromtimestamp(self.cluster.end_s, UTC)

    @property
    def since_s(self) -> float:
        return float(self.cluster.end_s - self.cluster.t0_s)


@contextlib.contextmanager
def running(mirror: Path, workdir: Path) -> Iterator[ClusterServer]:
    cluster = sample_cluster(mirror, n_owners=10, days=1.0, short=1)
    text = "".join(cluster.openmetrics())
    with contextlib.ExitStack() as stack:
        http = prom_server.start_prometheus(stack, workdir, backfill=text, targets=[])
        yield ClusterServer(http.replace("http://", "prometheus://"), http, cluster)
