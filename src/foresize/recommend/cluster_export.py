"""A cluster plan as Kubernetes objects: one patch per owner, or VerticalPodAutoscalers.

Both read the validated plan's ``cluster`` section (``recommend.cluster``), so a plan
saved as JSON gives the same YAML later.

* ``owner_patches``: ONE strategic-merge patch per owner, under the owner's real
  ``apiVersion``, kind and namespace, with every container and every resource in it
  (strategic merge matches containers by ``name``, so other containers and fields stay
  as they are). Apply with ``kubectl patch KIND NAME -n NS --patch-file``. The pod
  template sits at ``spec.template`` (``spec.jobTemplate.spec.template`` for a CronJob;
  a bare Pod's containers at ``spec.containers``). Whole-GPU counts go into the patch;
  a MIG profile or a milli share changes the resource *name*, which needs your device
  plugin's configuration, so it is written as a comment.
* ``vpa_objects``: an ``autoscaling.k8s.io/v1`` VerticalPodAutoscaler per owner in
  ``updateMode: "Off"`` (recommendations only, nothing evicted), with each container's
  ``minAllowed``/``maxAllowed`` from our bounds, so VPA's own recommender stays within
  what foresize found. A bare Pod has no controller for VPA to target and gets none.
"""

from __future__ import annotations

from typing import Any

from foresize.core.errors import InputError
from foresize.recommend.export import Manifest
from foresize.recommend.k8s import cpu_quantity, memory_quantity, to_yaml
from foresize.recommend.plan import ContainerPlan, OwnerPlan, Plan, ResourceChange

API_VERSIONS = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "ReplicaSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "Pod": "v1",
}
VPA_API = "autoscaling.k8s.io/v1"


def _section(plan: Plan) -> list[OwnerPlan]:
    if plan.cluster is None:
        raise InputError("this plan has no cluster section; -f vpa and the per-owner patches "
                         "come from cluster mode (foresize recommend prometheus://HOST:PORT)")
    return plan.cluster.owners


def _quantity(change: ResourceChange, value: float) -> str:
    return cpu_quantity(value) if change.resource == "cpu" else memory_quantity(value)


def _resources(container: ContainerPlan) -> tuple[dict[str, Any], list[str]]:
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    notes: list[str] = []
    for change in container.resources:
        old, new = change.current, change.recommended
        if new.request is not None:
            requests[change.resource] = _quantity(change, new.request)
        if new.limit is not None:
            limits[change.resource] = _quantity(change, new.limit)
        shown_old = "unset" if old.request is None else _quantity(change, old.request)
        notes.append(f"{container.container} {change.resource}: request {shown_old} -> "
                     f"{requests.get(change.resource, 'unchanged')}, limit "
                     f"{'unset' if old.limit is None else _quantity(change, old.limit)} -> "
                     f"{limits.get(change.resource, 'unchanged')} ({change.severity})")
    gpu = container.gpu
    if gpu is not None and gpu.placement is not None:
        placed = gpu.placement
        if placed.mode == "whole":
            requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(placed.devices)
        notes.append(f"{container.container} GPU: {gpu.current_gpus or 0:g} -> "
                     + (f"{placed.devices} x {placed.device}" if placed.mode == "whole" else
                        f"{placed.profile or f'{placed.gpu_milli} milli'} on {placed.device} "
                        "(not patched: set the device plugin's resource name)")
                     + f"; {gpu.note}")
    elif gpu is not None:
        notes.append(f"{container.container} GPU: {gpu.note}")
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out, notes


def _pod_spec_path(kind: str, containers: list[dict[str, Any]]) -> dict[str, Any]:
    pod = {"containers": containers}
    if kind == "Pod":
        return pod
    template = {"template": {"spec": pod}}
    return {"jobTemplate": {"spec": template}} if kind == "CronJob" else template


def _metadata(owner: OwnerPlan) -> dict[str, Any]:
    return {"name": owner.name, "namespace": owner.namespace}


def _head(owner: OwnerPlan, plan: Plan) -> list[str]:
    where = f"{owner.cluster}/" if owner.cluster else ""
    cost = ("" if owner.delta_per_hour is None or plan.cluster is None else
            f"; {owner.delta_per_hour:+.4f} {plan.cluster.currency}/h")
    return [f"{where}{owner.namespace}/{owner.kind}/{owner.name}: {owner.severity}{cost}"]


def owner_patches(plan: Plan) -> list[Manifest]:
    """One strategic-merge patch per owner with every container and resource in it."""
    out = []
    for owner in _section(plan):
        containers, notes = [], _head(owner, plan)
        for container in owner.containers:
            resources, lines = _resources(container)
            containers.append({"name": container.container, "resources": resources})
            notes.extend(lines)
        if owner.kind in ("Job", "Pod"):
            notes.append(f"a {owner.kind}'s pod template is immutable: apply this to the "
                         f"next {owner.kind} of this name, not to the running one")
        body = {"apiVersion": API_VERSIONS.get(owner.kind, "apps/v1"), "kind": owner.kind,
                "metadata": _metadata(owner), "spec": _pod_spec_path(owner.kind, containers)}
        out.append(Manifest(body, tuple(notes)))
    return out


def vpa_objects(plan: Plan) -> tuple[list[Manifest], list[str]]:
    """A VerticalPodAutoscaler (updateMode Off) per owner; notes on owners left out."""
    out, skipped = [], []
    for owner in _section(plan):
        if owner.kind == "Pod":
            skipped.append(f"{owner.namespace}/Pod/{owner.name}: a bare pod has no "
                           "controller for a VerticalPodAutoscaler to target")
            continue
        policies = []
        for container in owner.containers:
            low: dict[str, str] = {}
            high: dict[str, str] = {}
            for change in container.resources:
                request = change.recommended.request
                if request is None:
                    continue
                lower = change.lower if change.lower is not None else request
                upper = max(change.upper if change.upper is not None else request,
                            change.recommended.limit or request)
                low[change.resource] = _quantity(change, min(lower, request))
                high[change.resource] = _quantity(change, max(upper, request))
            policy: dict[str, Any] = {"containerName": container.container, "mode": "Auto",
                                      "controlledResources": sorted(low)}
            if low:
                policy["minAllowed"] = low
                policy["maxAllowed"] = high
            policies.append(policy)
        body = {
            "apiVersion": VPA_API,
            "kind": "VerticalPodAutoscaler",
            "metadata": _metadata(owner),
            "spec": {
                "targetRef": {"apiVersion": API_VERSIONS.get(owner.kind, "apps/v1"),
                              "kind": owner.kind, "name": owner.name},
                "updatePolicy": {"updateMode": "Off"},
                "resourcePolicy": {"containerPolicies": policies},
            },
        }
        out.append(Manifest(body, tuple(_head(owner, plan))))
    return out, skipped


def _comment(lines: list[str] | tuple[str, ...]) -> str:
    return "".join(f"# {line}\n" for line in lines)


def _stream(plan: Plan, manifests: list[Manifest], what: str, notes: list[str]) -> str:
    section = plan.cluster
    header = [
        f"foresize {plan.foresize_version} cluster plan (schema {plan.schema_version}), "
        f"generated {plan.generated_at}",
        f"{section.source if section else ''}: {len(manifests)} {what}",
        *notes,
    ]
    return _comment(header) + "---\n".join(_comment(m.comments) + to_yaml(m.body)
                                           for m in manifests)


def cluster_patches_yaml(plan: Plan) -> str:
    """``-f k8s`` for a cluster plan: the per-owner patches as one YAML stream."""
    skipped = [f"skipped {s.workload}: {s.reasons[0].message}"
               for s in (plan.cluster.skipped if plan.cluster else [])]
    return _stream(plan, owner_patches(plan), "patch(es), one per owner", skipped)


def vpa_yaml(plan: Plan) -> str:
    """``-f vpa``: the VerticalPodAutoscalers as one YAML stream."""
    manifests, notes = vpa_objects(plan)
    return _stream(plan, manifests, "VerticalPodAutoscaler(s), updateMode Off", notes)
