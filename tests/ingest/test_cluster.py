"""Cluster mode's reader against a real Prometheus backfilled with a sample cluster."""

from __future__ import annotations

import contextlib
import itertools
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from foresize.core.errors import InputError, InsufficientDataError
from foresize.ingest.cluster import ClusterRequest, ClusterTelemetry, Scope, read_cluster
from foresize.ingest.cluster.client import _fast_matrix, parse_matrix
from foresize.ingest.cluster.read import _rates
from tests.ingest import prom_server
from tests.ingest.cluster_server import ClusterServer


def _read(server: ClusterServer, **scope: Any) -> ClusterTelemetry:
    return read_cluster(ClusterRequest(server.url, since_s=server.since_s, until=server.until,
                                       scope=Scope(**scope)))


def test_pooled_usage_equals_the_generated_histories(cluster_server: ClusterServer) -> None:
    read = read_cluster(ClusterRequest(cluster_server.url, since_s=cluster_server.since_s,
                                       until=cluster_server.until))
    expected = cluster_server.cluster.expected()
    got = read.frame.select(expected.columns).sort("workload", "metric", "ts")
    assert_frame_equal(got, expected)
    assert read.report.dropped == {}



def test_owners_containers_and_current_resources(cluster_server: ClusterServer) -> None:
    read = _read(cluster_server)
    containers = read.containers
    kinds = set(containers["owner_kind"])
    assert kinds == {"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job"}
    assert set(containers["namespace"]) == {"team-a", "team-b", "batch"}
    web = containers.filter(pl.col("owner_name") == "deployment-0").sort("container")
    # two ReplicaSet hashes x two replicas pooled into one workload, two containers
    assert web["container"].to_list() == ["app", "sidecar"]
    assert web["pods"].to_list() == [4, 4]
    assert web["replicas"].to_list() == [2, 2]
    pods = {p.name: p for p in cluster_server.cluster.pods}
    app = next(p for p in pods.values() if p.top_name == "deployment-0").containers[0]
    row = web.row(0, named=True)
    assert (row["cpu_request"], row["cpu_limit"]) == (app.cpu_request, app.cpu_limit)
    assert (row["memory_request"], row["memory_limit"]) == (app.memory_request, app.memory_limit)
    cron = containers.filter(pl.col("owner_kind") == "CronJob").row(0, named=True)
    assert cron["pods"] == 4  # four runs (Jobs) of one CronJob
    gpu = containers.filter(pl.col("gpu_request").is_not_null())
    assert set(gpu["gpu_model"]) == {"NVIDIA A100-SXM4-80GB"}
    assert gpu.height == 2


@pytest.mark.parametrize(("scope", "owners"), [
    ({"namespaces": ("team-*",)}, {"team-a", "team-b"}),
    ({"owner_kinds": ("cronjob",)}, {"CronJob"}),
    ({"selector": "tier=db"}, {"StatefulSet"}),
    ({"selector": "app=deployment-5,tier!=db"}, {"deployment-5"}),
])
def test_scope_filters(cluster_server: ClusterServer, scope: dict[str, Any],
                       owners: set[str]) -> None:
    read = _read(cluster_server, **scope)
    column = ("namespace" if "namespaces" in scope else "owner_kind" if "owner_kinds" in scope
              else "owner_kind" if scope["selector"] == "tier=db" else "owner_name")
    assert set(read.containers[column]) == owners
    assert set(read.frame["workload"]) <= set(read.containers["workload"])
    whole = cluster_server.cluster.expected().filter(
        pl.col("workload").is_in(read.containers["workload"].to_list()))
    assert_frame_equal(read.frame.select(whole.columns).sort("workload", "metric", "ts"), whole)


def test_small_batches_and_pages_read_the_same(cluster_server: ClusterServer) -> None:
    whole = _read(cluster_server)
    paged = read_cluster(ClusterRequest(cluster_server.url, since_s=cluster_server.since_s,
                                        until=cluster_server.until, points_per_request=5_000,
                                        max_points=500, concurrency=3))
    assert_frame_equal(paged.frame, whole.frame)
    assert paged.requests > whole.requests


# --- bad input: one line naming the server, typed errors ----------------------------


def test_unreachable_server() -> None:
    url = f"prometheus://127.0.0.1:{prom_server.free_port()}"
    with pytest.raises(InputError, match="connection refused") as exc:
        read_cluster(ClusterRequest(url, since_s=3600))
    assert "\n" not in str(exc.value)


def test_a_server_slower_than_the_deadline() -> None:
    with contextlib.ExitStack() as stack:
        url = f"prometheus://127.0.0.1:{prom_server.silent_port(stack)}"
        with pytest.raises(InputError, match=r"no complete answer within the --timeout of "
                                             r"0.5 s"):
            read_cluster(ClusterRequest(url, since_s=3600, timeout_s=0.5))


def test_an_answer_over_the_cap(cluster_server: ClusterServer) -> None:
    with pytest.raises(InputError, match=r"passed the cap of 1.0 KiB.*--max-response"):
        read_cluster(ClusterRequest(cluster_server.url, since_s=cluster_server.since_s,
                                    until=cluster_server.until, max_response_bytes=1024))


def test_a_namespace_without_pods(cluster_server: ClusterServer) -> None:
    with pytest.raises(InsufficientDataError, match=r"namespace nope has no pods in the window "
                                                    r"\(namespaces with pods: batch, team-a"):
        _read(cluster_server, namespaces=("nope",))
    with pytest.raises(InsufficientDataError, match=r"namespace batch has no pods in scope"):
        _read(cluster_server, namespaces=("team-a", "batch"), selector="tier=db")


def test_no_kube_state_metrics(cluster_server: ClusterServer) -> None:
    """The window before the backfill holds no series at all."""
    with pytest.raises(InsufficientDataError, match=r"no kube_pod_owner series in the window: "
                                                    r"kube-state-metrics is not scraped"):
        read_cluster(ClusterRequest(cluster_server.url, since_s=3600,
                                    until=datetime(2022, 1, 1, tzinfo=UTC)))


@pytest.mark.parametrize(("scope", "problem"), [
    ({"owner_kinds": ("Rollout",)}, "--owner-kind 'Rollout' is not one of"),
    ({"selector": "app in (a,b)"}, "is not KEY=VALUE"),
    ({"cluster_label": "bad-label"}, "is not a label name"),
])
def test_bad_scope_fails_before_any_request(scope: dict[str, Any], problem: str) -> None:
    url = f"prometheus://127.0.0.1:{prom_server.free_port()}"
    with pytest.raises(InputError, match=problem):
        read_cluster(ClusterRequest(url, since_s=3600, scope=Scope(**scope)))


def test_backfill_windows_add_up_to_the_whole(cluster_server: ClusterServer) -> None:
    """The benchmark backfills one window per promtool run: together they are the file."""
    cluster = cluster_server.cluster

    def samples(text: str) -> list[str]:
        return sorted(line for line in text.splitlines() if not line.startswith("#"))

    cuts = [0, 1, 500, 1000, cluster.n_samples]
    windows = "".join("".join(cluster.openmetrics(window=(first, last)))
                      for first, last in itertools.pairwise(cuts))
    assert samples(windows) == samples("".join(cluster.openmetrics()))


def test_rates_are_irate_between_present_steps() -> None:
    """A counter's rate: a reset counts the new value, a gap past irate's range breaks it."""
    series = np.array([0, 0, 0, 0, 1, 1], dtype=np.uint32)
    ts = np.array([0, 60_000, 120_000, 360_000, 60_000, 120_000], dtype=np.int64)
    values = np.array([10.0, 70.0, 30.0, 90.0, 5.0, 65.0])
    kept_series, kept_ts, rates = _rates(series, ts, values, gap_ms=120_000)
    assert kept_series.tolist() == [0, 0, 1]
    assert kept_ts.tolist() == [60_000, 120_000, 120_000]
    assert rates.tolist() == [1.0, 0.5, 1.0]


def test_the_fast_matrix_parser_numbers_series_and_reads_special_values() -> None:
    """Labels that look like structure, NaN, +Inf, a fractional timestamp and one-sample
    series: the fast path takes the answer and reads it as the JSON says.
    """
    answer = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"pod": 'a]],"values":[[', "container": "x"},
         "values": [[1.5, "1"], [60, "NaN"], [120, "+Inf"]]},
        {"metric": {}, "values": [[0, "-2500"]]},
        {"metric": {"pod": "b"}, "values": [[7, "3"], [8, "-Inf"]]},
    ]}}
    body = json.dumps(answer, separators=(",", ":")).encode()
    assert _fast_matrix(body) is not None
    matrix = parse_matrix(body, name="test")
    assert matrix.labels == [{"pod": 'a]],"values":[[', "container": "x"}, {}, {"pod": "b"}]
    assert matrix.samples["series"].to_list() == [0, 0, 0, 1, 2, 2]
    assert matrix.samples["ts_ms"].to_list() == [1500, 60_000, 120_000, 0, 7000, 8000]
    values = matrix.samples["value"].to_numpy()
    assert values[[0, 3, 4]].tolist() == [1.0, -2500.0, 3.0]
    assert np.isnan(values[1])
    assert values[2] == np.inf
    assert values[5] == -np.inf
