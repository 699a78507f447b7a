"""Kubernetes manifests: resource patches, HorizontalPodAutoscalers, KEDA cron ScaledObjects.

Manifests are built as plain dicts and written by a small YAML emitter (block style, the
subset manifests need: mappings, sequences, strings, numbers, booleans, null), so foresize
needs no YAML library at run time. Strings are written plain only when they cannot be read
back as anything but a string (no digits first, no YAML 1.1 booleans such as ``on``);
everything else is double-quoted with JSON escapes, which YAML reads identically.

Quantities follow the Kubernetes quantity format (k8s.io/apimachinery resource.Quantity):
CPU in millicores rounded up (0.25 -> ``250m``), memory in ``Gi`` when it is a whole number
of GiB and otherwise in ``Mi`` rounded up (1.5e9 bytes -> ``1431Mi``). Requests round up
so a recommendation is never silently shaved.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from foresize.core.errors import InputError
from foresize.recommend.scaling import CronSchedule, HpaSettings

MiB = 2**20
GiB = 2**30
WorkloadKind = Literal["Deployment", "StatefulSet"]

_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_./-]*")
# Words YAML 1.1 (PyYAML) reads as booleans or null.
_RESERVED = {"y", "yes", "n", "no", "true", "false", "on", "off", "null", "nan", "inf"}


def _check(value: float, what: str) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise InputError(f"{what} must be a finite number >= 0, got {value}")
    return value


def cpu_quantity(cores: float) -> str:
    """CPU cores as millicores, rounded up: ``0.25`` -> ``"250m"``, ``2`` -> ``"2000m"``."""
    millis = math.ceil(_check(cores, "cpu cores") * 1000 - 1e-6)
    return f"{millis}m"


def memory_quantity(num_bytes: float) -> str:
    """Bytes as ``Gi`` when whole GiB, else ``Mi`` rounded up: ``1.5e9`` -> ``"1431Mi"``."""
    _check(num_bytes, "memory bytes")
    if num_bytes > 0 and num_bytes % GiB == 0:
        return f"{int(num_bytes // GiB)}Gi"
    return f"{math.ceil(num_bytes / MiB - 1e-9)}Mi"


def decimal_quantity(value: float) -> str:
    """A plain number as a quantity, rounded *down* to millis: ``3.5`` -> ``"3500m"``.

    Used for autoscaler targets, where rounding down errs towards more replicas.
    """
    millis = math.floor(_check(value, "quantity") * 1000 + 1e-6)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


@dataclass(frozen=True, slots=True)
class ContainerResources:
    """Requests and limits for one container; None leaves a field out of the patch.

    ``gpus`` is ``nvidia.com/gpu``; ``extended`` holds other extended resources such as
    ``{"nvidia.com/mig-1g.10gb": 1}``. Extended resources cannot be overcommitted, so they
    go into both requests and limits.
    """

    name: str
    cpu_request: float | None = None
    cpu_limit: float | None = None
    memory_request: float | None = None
    memory_limit: float | None = None
    gpus: int | None = None
    extended: Mapping[str, int] = field(default_factory=dict)


def _resources(spec: ContainerResources) -> dict[str, Any]:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if spec.cpu_request is not None:
        requests["cpu"] = cpu_quantity(spec.cpu_request)
    if spec.cpu_limit is not None:
        limits["cpu"] = cpu_quantity(spec.cpu_limit)
    if spec.memory_request is not None:
        requests["memory"] = memory_quantity(spec.memory_request)
    if spec.memory_limit is not None:
        limits["memory"] = memory_quantity(spec.memory_limit)
    extended = dict(spec.extended)
    if spec.gpus is not None:
        extended["nvidia.com/gpu"] = spec.gpus
    for name, count in extended.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InputError(
                f"{name} must be a whole number >= 0 (no fractional devices), got {count!r}"
            )
        requests[name] = limits[name] = str(count)
    for key in ("cpu", "memory"):
        if (
            key in requests
            and key in limits
            and _bytes_or_millis(limits[key]) < _bytes_or_millis(requests[key])
        ):
            raise InputError(
                f"container {spec.name}: {key} limit {limits[key]} is below "
                f"its request {requests[key]}"
            )
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def _bytes_or_millis(quantity: str) -> int:
    """Compare quantities this module wrote: ``250m``, ``12Gi``, ``1431Mi``."""
    for suffix, scale in (("Gi", GiB), ("Mi", MiB), ("m", 1)):
        if quantity.endswith(suffix):
            return int(quantity[: -len(suffix)]) * scale
    return int(quantity) * 1000


def resources_patch(
    workload: str,
    containers: Sequence[ContainerResources],
    *,
    kind: WorkloadKind = "Deployment",
    namespace: str | None = None,
) -> dict[str, Any]:
    """A strategic-merge patch setting container resources of a Deployment/StatefulSet.

    Apply with ``kubectl patch deployment NAME --patch-file patch.yaml`` (strategic merge
    matches containers by ``name``, so other containers and fields are untouched).
    """
    if not containers:
        raise InputError("resources_patch needs at least one container")
    metadata: dict[str, Any] = {"name": workload}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": metadata,
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": c.name, "resources": _resources(c)} for c in containers]
                }
            }
        },
    }


def hpa_manifest(
    workload: str,
    settings: HpaSettings,
    *,
    metric: str = "cpu",
    kind: WorkloadKind = "Deployment",
    namespace: str | None = None,
    scale_down_pods_per_minute: int | None = None,
) -> dict[str, Any]:
    """An ``autoscaling/v2`` HorizontalPodAutoscaler for ``settings``.

    ``metric`` ``cpu`` or ``memory`` targets average utilisation of the request (the
    schedule's capacity is the demand a replica serves at 100 % of it); any other name is
    a per-pod custom metric (e.g. ``qps``) with an average value of
    ``capacity x target`` per pod. Scale-down is stabilised over the schedule's scale-down
    delay; scale-up is immediate (window 0, the Kubernetes default).
    """
    if metric in ("cpu", "memory"):
        metrics: dict[str, Any] = {
            "type": "Resource",
            "resource": {
                "name": metric,
                "target": {
                    "type": "Utilization",
                    "averageUtilization": settings.target_utilisation_pct,
                },
            },
        }
    else:
        metrics = {
            "type": "Pods",
            "pods": {
                "metric": {"name": metric},
                "target": {
                    "type": "AverageValue",
                    "averageValue": decimal_quantity(settings.target_value_per_replica),
                },
            },
        }
    scale_down: dict[str, Any] = {"stabilizationWindowSeconds": settings.scale_down_stabilisation_s}
    if scale_down_pods_per_minute is not None:
        scale_down["policies"] = [
            {"type": "Pods", "value": scale_down_pods_per_minute, "periodSeconds": 60}
        ]
    metadata: dict[str, Any] = {"name": workload}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": workload},
            "minReplicas": settings.min_replicas,
            "maxReplicas": settings.max_replicas,
            "metrics": [metrics],
            "behavior": {"scaleDown": scale_down, "scaleUp": {"stabilizationWindowSeconds": 0}},
        },
    }


def keda_scaled_object(
    workload: str,
    cron: CronSchedule,
    *,
    kind: WorkloadKind = "Deployment",
    namespace: str | None = None,
    scale_down_stabilisation_s: int | None = None,
) -> dict[str, Any]:
    """A KEDA ``ScaledObject`` with one cron trigger per window of the schedule.

    Outside every window KEDA holds ``minReplicaCount`` (the schedule's base); the HPA that
    KEDA manages takes the largest of the active triggers. The crons recur weekly (day of
    week and time, UTC), the pattern the forecast saw; their windows never overlap.
    """
    triggers = [
        {
            "type": "cron",
            "metadata": {
                "timezone": cron.timezone,
                "start": w.cron_start,
                "end": w.cron_end,
                "desiredReplicas": str(w.replicas),
            },
        }
        for w in cron.windows
    ]
    metadata: dict[str, Any] = {"name": workload}
    if namespace:
        metadata["namespace"] = namespace
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": workload},
        "minReplicaCount": cron.base_replicas,
        "maxReplicaCount": cron.peak,
        "triggers": triggers,
    }
    if scale_down_stabilisation_s is not None:
        spec["advanced"] = {
            "horizontalPodAutoscalerConfig": {
                "behavior": {
                    "scaleDown": {"stabilizationWindowSeconds": scale_down_stabilisation_s}
                }
            }
        }
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata,
        "spec": spec,
    }


def keda_prometheus_scaled_object(
    workload: str,
    *,
    query: str,
    threshold: float,
    min_replicas: int,
    max_replicas: int,
    server_address: str = "http://prometheus.monitoring:9090",
    kind: WorkloadKind = "Deployment",
    namespace: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """A KEDA ``ScaledObject`` (named ``name``, default ``workload``) with one Prometheus
    trigger: ``query`` (a total, e.g. the requests waiting over every pod) divided by the
    replicas is held at ``threshold`` (KEDA's default AverageValue metric type).
    ``server_address`` is a placeholder to edit.
    """
    metadata: dict[str, Any] = {"name": name or workload}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": workload},
            "minReplicaCount": min_replicas,
            "maxReplicaCount": max_replicas,
            "triggers": [{
                "type": "prometheus",
                "metadata": {"serverAddress": server_address, "query": query,
                             "threshold": decimal_quantity(threshold)},
            }],
        },
    }


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"cannot write {value} into a manifest")
        mantissa, e, exponent = repr(value).partition("e")
        if e and "." not in mantissa:  # YAML 1.1 floats need a dot: 1e-06 -> 1.0e-06
            mantissa += ".0"
        return mantissa + e + exponent
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and value.lower() not in _RESERVED:
            return value
        return _quote(value)
    raise InputError(f"cannot write a {type(value).__name__} into a manifest")


def _quote(text: str) -> str:
    """Double-quoted with JSON escapes, and escapes for what YAML would not read back as is.

    Those are C1 controls and NEL, the Unicode line/paragraph separators, non-characters
    and surrogates.
    """
    out = []
    for char in json.dumps(text, ensure_ascii=False):
        code = ord(char)
        unsafe = (
            0x7F <= code <= 0x9F
            or code in (0x2028, 0x2029, 0xFFFE, 0xFFFF)
            or 0xD800 <= code <= 0xDFFF
        )
        out.append(f"\\u{code:04x}" if unsafe else char)
    return "".join(out)


def _emit(value: Any, indent: int, lines: list[str]) -> None:
    """Append the block-style lines of a mapping or sequence at ``indent`` spaces."""
    pad = " " * indent
    if isinstance(value, Mapping):
        for key, item in value.items():
            head = f"{pad}{_scalar(str(key))}:"
            if isinstance(item, Mapping | list | tuple) and item:
                lines.append(head)
                _emit(item, indent + 2, lines)
            else:
                lines.append(f"{head} {_inline(item)}")
        return
    for item in value:
        if isinstance(item, Mapping | list | tuple) and item:
            sub: list[str] = []
            _emit(item, indent + 2, sub)
            lines.append(f"{pad}- {sub[0][indent + 2 :]}")
            lines.extend(sub[1:])
        else:
            lines.append(f"{pad}- {_inline(item)}")


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list | tuple):
        return "[]"
    return _scalar(value)


def to_yaml(documents: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    """One or more manifests as a YAML stream (documents separated by ``---``)."""
    docs = [documents] if isinstance(documents, Mapping) else list(documents)
    parts = []
    for doc in docs:
        lines: list[str] = []
        _emit(doc, 0, lines)
        parts.append("\n".join(lines) + "\n")
    return "---\n".join(parts)
