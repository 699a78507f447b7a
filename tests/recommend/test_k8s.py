from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from foresize.core.errors import InputError
from foresize.graph.devices import GiB
from foresize.recommend.k8s import (
    ContainerResources,
    cpu_quantity,
    decimal_quantity,
    hpa_manifest,
    keda_scaled_object,
    memory_quantity,
    resources_patch,
    to_yaml,
)
from foresize.recommend.scaling import DemandPath, cron_schedule, hpa_settings, replica_schedule


@pytest.mark.parametrize(
    ("cores", "text"),
    [(0.25, "250m"), (0.5, "500m"), (2, "2000m"), (0.0001, "1m"), (1.2345, "1235m"), (0, "0m")],
)
def test_cpu_is_millicores_rounded_up(cores: float, text: str) -> None:
    assert cpu_quantity(cores) == text


@pytest.mark.parametrize(
    ("num_bytes", "text"),
    [
        (12 * GiB, "12Gi"),
        (1.5e9, "1431Mi"),
        (256 * 2**20, "256Mi"),
        (1, "1Mi"),
        (int(1.5 * GiB), "1536Mi"),
        (0, "0Mi"),
    ],
)
def test_memory_is_gi_when_whole_else_mi_rounded_up(num_bytes: float, text: str) -> None:
    assert memory_quantity(num_bytes) == text


def test_decimal_targets_round_down_to_millis() -> None:
    assert decimal_quantity(3.5) == "3500m"
    assert decimal_quantity(2.0) == "2"
    assert decimal_quantity(0.33339) == "333m"
    with pytest.raises(InputError, match="finite number >= 0"):
        cpu_quantity(-1)
    with pytest.raises(InputError, match="finite number >= 0"):
        memory_quantity(float("nan"))


def test_resources_patch_round_trips_through_yaml() -> None:
    patch = resources_patch(
        "llm-server",
        [
            ContainerResources(
                "server",
                cpu_request=0.25,
                cpu_limit=1.5,
                memory_request=1.5e9,
                memory_limit=12 * GiB,
                gpus=1,
            ),
            ContainerResources(
                "sidecar", memory_request=256 * 2**20, extended={"nvidia.com/mig-1g.10gb": 1}
            ),
        ],
        kind="StatefulSet",
        namespace="ml",
    )
    loaded = yaml.safe_load(to_yaml(patch))
    assert loaded == patch
    assert loaded["apiVersion"] == "apps/v1"
    assert loaded["kind"] == "StatefulSet"
    assert loaded["metadata"] == {"name": "llm-server", "namespace": "ml"}
    server, sidecar = loaded["spec"]["template"]["spec"]["containers"]
    assert server["name"] == "server"
    assert server["resources"]["requests"] == {
        "cpu": "250m",
        "memory": "1431Mi",
        "nvidia.com/gpu": "1",
    }
    assert server["resources"]["limits"] == {
        "cpu": "1500m",
        "memory": "12Gi",
        "nvidia.com/gpu": "1",
    }
    assert sidecar["resources"]["requests"] == {"memory": "256Mi", "nvidia.com/mig-1g.10gb": "1"}
    assert sidecar["resources"]["limits"] == {"nvidia.com/mig-1g.10gb": "1"}


def test_bad_resources_are_input_errors() -> None:
    with pytest.raises(InputError, match=r"container c: memory limit 1Gi is below its request"):
        resources_patch(
            "w", [ContainerResources("c", memory_request=2 * GiB, memory_limit=1 * GiB)]
        )
    with pytest.raises(InputError, match="no fractional devices"):
        resources_patch("w", [ContainerResources("c", extended={"nvidia.com/gpu": 0.5})])  # type: ignore[dict-item]
    with pytest.raises(InputError, match="at least one container"):
        resources_patch("w", [])


@pytest.fixture(scope="module")
def schedule_docs() -> tuple[Any, Any]:
    start = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
    ts = tuple(start + timedelta(minutes=10 * i) for i in range(36))
    mean = [2.0] * 12 + [9.0] * 12 + [3.0] * 12
    path = DemandPath(
        values=tuple(1.4 * m for m in mean),
        expected=tuple(mean),
        step_s=600.0,
        ts=ts,
        column="hi_95",
    )
    schedule = replica_schedule(
        path, capacity=2.0, target_utilisation=0.7, startup_s=600, scale_down_delay_s=1200
    )
    after = datetime(2026, 1, 1, tzinfo=UTC)
    return hpa_settings(schedule), cron_schedule(schedule, max_windows=3, after=after)


def test_hpa_manifest_round_trips(schedule_docs: tuple[Any, Any]) -> None:
    settings, _ = schedule_docs
    manifest = hpa_manifest("llm-server", settings, scale_down_pods_per_minute=2)
    loaded = yaml.safe_load(to_yaml(manifest))
    assert loaded == manifest
    assert loaded["apiVersion"] == "autoscaling/v2"
    assert loaded["kind"] == "HorizontalPodAutoscaler"
    spec = loaded["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "llm-server",
    }
    assert (spec["minReplicas"], spec["maxReplicas"]) == (
        settings.min_replicas,
        settings.max_replicas,
    )
    (metric,) = spec["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": settings.target_utilisation_pct,
    }
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 1200
    assert spec["behavior"]["scaleDown"]["policies"] == [
        {"type": "Pods", "value": 2, "periodSeconds": 60}
    ]
    pods = yaml.safe_load(to_yaml(hpa_manifest("llm-server", settings, metric="qps")))
    target = pods["spec"]["metrics"][0]["pods"]["target"]
    assert target["type"] == "AverageValue"
    per_pod = 2.0 * settings.target_utilisation_pct / 100
    assert target["averageValue"] == decimal_quantity(per_pod)


def test_keda_scaled_object_round_trips(schedule_docs: tuple[Any, Any]) -> None:
    _, cron = schedule_docs
    scaled = keda_scaled_object("llm-server", cron, namespace="ml", scale_down_stabilisation_s=1200)
    text = to_yaml([scaled, hpa_manifest("other", schedule_docs[0])])
    loaded = list(yaml.safe_load_all(text))
    assert loaded[0] == scaled
    assert loaded[1]["kind"] == "HorizontalPodAutoscaler"
    spec = loaded[0]["spec"]
    assert loaded[0]["apiVersion"] == "keda.sh/v1alpha1"
    assert spec["minReplicaCount"] == cron.base_replicas == 2  # ceil(2.8 / 1.4)
    assert spec["maxReplicaCount"] == cron.peak == 9  # ceil(12.6 / 1.4)
    peak, tail = spec["triggers"]
    assert peak["type"] == tail["type"] == "cron"
    # 9 replicas from 09:50 (one start-up step early) to 12:20 (two steps of hold), then 3,
    # every Saturday (2024-06-01 was one), next on 2026-01-03, after the plan
    assert cron.windows[0].start == datetime(2026, 1, 3, 9, 50, tzinfo=UTC)
    assert peak["metadata"] == {
        "timezone": "Etc/UTC",
        "start": "50 9 * * 6",
        "end": "20 12 * * 6",
        "desiredReplicas": "9",
    }
    assert tail["metadata"] == {
        "timezone": "Etc/UTC",
        "start": "20 12 * * 6",
        "end": "0 14 * * 6",
        "desiredReplicas": "3",
    }
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 1200


_scalars = st.one_of(
    st.text(max_size=20),
    st.integers(-(10**12), 10**12),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
_trees = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=12), _trees, max_size=5))
def test_emitter_round_trips_arbitrary_documents(doc: dict[str, Any]) -> None:
    assert yaml.safe_load(to_yaml(doc)) == (doc or None)
