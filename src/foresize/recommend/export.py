"""A plan as Kubernetes YAML: resource patches, HorizontalPodAutoscalers, KEDA ScaledObjects.

Everything is read from the validated :class:`~foresize.recommend.plan.Plan`, so a plan
saved as JSON can be turned into manifests later and gives the same YAML.

* Per right-sized workload, a strategic-merge patch of its Deployment's container
  resources: ``mem_bytes`` as memory, ``cpu_cores`` as CPU; ``mem_util_pct`` /
  ``cpu_util_pct`` are percentages of the container's *current* limit, so they become
  quantities only when the plan holds that limit (``parameters.current_limit``, from
  ``--current-limit``) and are otherwise skipped with a comment saying why. A GPU placement
  adds ``nvidia.com/gpu`` or the MIG slice's resource; a milli-GPU share has no standard
  resource name and is left as a comment. Other metrics (GPU utilisation, latencies) have
  no Kubernetes quantity and are skipped with a comment.
* Per scaling plan, an ``autoscaling/v2`` HPA on the demand metric (a Pods metric: it
  needs a custom-metrics adapter serving it) and a KEDA ``ScaledObject`` with the cron
  windows of the forecast schedule. They are alternatives: KEDA drives its own HPA, so
  apply one of the two per Deployment.
* A serving plan (``recommend serve``) adds the replica's GPUs as a patch and a KEDA
  ``ScaledObject`` on vLLM's queue length at the simulated target, with the Knative KPA
  settings as a comment.

Names are made DNS-1123 safe (lowercase, ``-`` for anything else, at most 63 characters);
each document's comment names the workload as the telemetry spelled it. The container in
a patch is named like its Deployment (a single-container pod's usual name): strategic
merge matches containers by name, so adjust it where yours differs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from foresize.core.errors import InputError
from foresize.recommend.k8s import (
    ContainerResources,
    cpu_quantity,
    hpa_manifest,
    keda_prometheus_scaled_object,
    keda_scaled_object,
    memory_quantity,
    resources_patch,
    to_yaml,
)
from foresize.recommend.plan import GpuPlacement, Plan, ResourceRecommendation, ScalingPlan
from foresize.recommend.scaling import CronSchedule, CronWindow, HpaSettings

MAX_NAME = 63
_UNSAFE = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True, slots=True)
class Manifest:
    """One YAML document and the comment lines written above it."""

    body: dict[str, Any]
    comments: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """The manifest's ``kind``."""
        return str(self.body["kind"])


def k8s_name(workload: str) -> str:
    """A DNS-1123 label from a workload id: ``IMG_2_IMG`` -> ``img-2-img``."""
    name = _UNSAFE.sub("-", workload.lower()).strip("-")[:MAX_NAME].strip("-")
    return name or "workload"


def _gpu_resources(placement: GpuPlacement | None) -> tuple[dict[str, int], list[str]]:
    """Extended resources for a placement, and a comment where it has none."""
    if placement is None:
        return {}, []
    if placement.resources:
        return dict(placement.resources), [f"GPU: {placement.rationale}"]
    return {}, [
        f"GPU: {placement.gpu_milli} milli-GPU of {placement.device} -- no standard Kubernetes "
        "resource name; set it in your GPU-sharing device plugin's terms"
    ]


def _share(pct: float | None, whole: float) -> float | None:
    return None if pct is None else pct / 100.0 * whole


def _container(
    rec: ResourceRecommendation, name: str, current_limit: float | None
) -> tuple[ContainerResources | None, list[str]]:
    """Container resources for one recommendation, and the comment lines explaining them."""
    request, limit = rec.recommended.request, rec.recommended.limit
    extended, notes = _gpu_resources(rec.placement)
    resource = rec.resource
    memory: tuple[float | None, float | None] = (None, None)
    cpu: tuple[float | None, float | None] = (None, None)
    if resource in ("mem_bytes", "mem_uss_bytes"):
        memory = (request, limit)
    elif resource == "cpu_cores":
        cpu = (request, limit)
    elif resource in ("mem_util_pct", "cpu_util_pct"):
        what = "memory" if resource == "mem_util_pct" else "CPU"
        if current_limit is None:
            notes.append(
                f"skipped {resource}: a percentage of the container's current {what} limit; "
                "rerun with --current-limit to write quantities"
            )
        else:
            scaled = (_share(request, current_limit), _share(limit, current_limit))
            shown = (
                memory_quantity(current_limit) if what == "memory" else cpu_quantity(current_limit)
            )
            memory, cpu = (scaled, cpu) if what == "memory" else (memory, scaled)
            notes.append(
                f"{resource} request {request:.4g}% / limit "
                f"{'-' if limit is None else f'{limit:.4g}%'} of the current {what} limit "
                f"{shown}"
            )
    else:
        notes.append(f"{resource} has no Kubernetes resource quantity; not patched")
    if memory == (None, None) and cpu == (None, None) and not extended:
        return None, notes
    gpus = extended.pop("nvidia.com/gpu", None)
    spec = ContainerResources(
        name=name,
        cpu_request=cpu[0],
        cpu_limit=cpu[1],
        memory_request=memory[0],
        memory_limit=memory[1],
        gpus=gpus,
        extended=extended,
    )
    return spec, notes


def _header(workload: str, name: str) -> list[str]:
    return [f"workload {workload}"] if name != workload else []


def recommendation_manifests(plan: Plan) -> tuple[list[Manifest], list[str]]:
    """Deployment patches for the right-sized workloads, and notes on those skipped."""
    current = plan.parameters.get("current_limit")
    current_limit = None if current is None else float(current)
    out: list[Manifest] = []
    skipped: dict[str, int] = {}
    for rec in plan.recommendations:
        if rec.status != "ok":
            key = f"not sized ({rec.status})"
            skipped[key] = skipped.get(key, 0) + 1
            continue
        name = k8s_name(rec.workload)
        spec, notes = _container(rec, name, current_limit)
        if spec is None:
            key = notes[-1] if notes else f"{rec.resource}: nothing to patch"
            skipped[key] = skipped.get(key, 0) + 1
            continue
        comments = [
            *_header(rec.workload, name),
            f"{rec.resource}: {rec.rationale}",
            *notes,
        ]
        out.append(Manifest(resources_patch(name, [spec]), tuple(comments)))
    notes = [f"{count} workload(s): {why}" for why, count in skipped.items()]
    return out, notes


def _hpa(plan: ScalingPlan) -> HpaSettings:
    h = plan.hpa
    return HpaSettings(
        min_replicas=h.min_replicas,
        max_replicas=h.max_replicas,
        target_utilisation_pct=h.target_utilisation_pct,
        scale_down_stabilisation_s=h.scale_down_stabilisation_s,
        capacity=plan.schedule.capacity_per_replica,
        tolerance=h.tolerance,
        rationale=h.rationale,
    )


def _cron(plan: ScalingPlan) -> CronSchedule:
    c = plan.cron
    return CronSchedule(
        base_replicas=c.base_replicas,
        windows=tuple(
            CronWindow(
                start=datetime.fromisoformat(w.start),
                end=datetime.fromisoformat(w.end),
                replicas=w.replicas,
            )
            for w in c.windows
        ),
        replica_hours=c.replica_hours,
        schedule_replica_hours=c.schedule_replica_hours,
        timezone=c.timezone,
    )


def scaling_manifests(plan: Plan) -> list[Manifest]:
    """Per scaling plan: a GPU patch when the plan is placed, an HPA and a ScaledObject."""
    out: list[Manifest] = []
    placement = None if plan.placement is None else plan.placement.best
    for scaling in plan.scaling_plans:
        name = k8s_name(scaling.workload)
        head = _header(scaling.workload, name)
        extended, notes = _gpu_resources(placement)
        if extended:
            gpus = extended.pop("nvidia.com/gpu", None)
            spec = ContainerResources(name=name, gpus=gpus, extended=extended)
            out.append(Manifest(resources_patch(name, [spec]), (*head, *notes)))
        hpa = _hpa(scaling)
        out.append(
            Manifest(
                hpa_manifest(name, hpa, metric=scaling.metric),
                (
                    *head,
                    f"HPA on the per-pod metric {scaling.metric!r} (needs a custom-metrics "
                    f"adapter serving it): {hpa.rationale}",
                    "apply this HPA or the KEDA ScaledObject below, not both: KEDA runs its "
                    "own HPA for the Deployment",
                ),
            )
        )
        cron = _cron(scaling)
        out.append(
            Manifest(
                keda_scaled_object(
                    name, cron, scale_down_stabilisation_s=hpa.scale_down_stabilisation_s
                ),
                (
                    *head,
                    f"KEDA cron schedule from the {scaling.forecaster} forecast "
                    f"({scaling.schedule.covers}): base {cron.base_replicas}, peak {cron.peak}; "
                    "the crons recur weekly at the forecast's day and time (UTC)",
                ),
            )
        )
    return out


def serving_manifests(plan: Plan) -> list[Manifest]:
    """``recommend serve``: the replica's GPUs as a patch, KEDA on the vLLM queue, and the
    Knative KPA annotations (as a comment: they go on a Knative Service, not a Deployment).
    """
    serving = plan.serving
    if serving is None or not plan.scaling_plans:
        return []
    scaling = plan.scaling_plans[0]
    name = k8s_name(scaling.workload)
    head = _header(scaling.workload, name)
    tuned = {a.policy: a for a in serving.autoscalers}
    notes = [f"{serving.tp} x {serving.device} per replica (tensor parallel)"]
    kpa = tuned.get("kpa")
    if kpa is not None:
        notes.append(
            "Knative instead of a Deployment: annotate the Service's revision template with "
            f"autoscaling.knative.dev/metric: concurrency, autoscaling.knative.dev/target: "
            f"'{kpa.value:g}' (window 60s, panic 6s, target-utilization 70 %: the defaults "
            f"simulated; {kpa.gpu_hours:.2f} GPU-h at {100 * kpa.attainment:.2f} % "
            f"attainment{'' if kpa.meets_slo else ', below the SLO target'})")
    keda = tuned.get("keda")
    if keda is not None and not keda.meets_slo:
        notes.append(f"KEDA on vLLM's queue length is left out: no swept target met the SLO "
                     f"(best {100 * keda.attainment:.2f} % at {keda.value:g} waiting)")
    out = [Manifest(resources_patch(name, [ContainerResources(name=name, gpus=serving.tp)]),
                    (*head, *notes))]
    if keda is not None and keda.meets_slo:
        out.append(Manifest(
            keda_prometheus_scaled_object(
                name, name=f"{name}-queue", query=f'sum(vllm:num_requests_waiting{{'
                f'model_name="{serving.model}"}})', threshold=keda.value,
                min_replicas=scaling.hpa.min_replicas, max_replicas=scaling.hpa.max_replicas),
            (*head, f"KEDA on vLLM's queue length, {keda.value:g} waiting per replica: "
             f"{keda.gpu_hours:.2f} GPU-h at {100 * keda.attainment:.2f} % attainment in "
             "simulation; an alternative to the HPA and the cron ScaledObject (apply one "
             "per Deployment); set serverAddress to your Prometheus")))
    return out


def plan_manifests(plan: Plan) -> tuple[list[Manifest], list[str]]:
    """Every manifest of a plan, and the notes on what was not turned into one."""
    patches, notes = recommendation_manifests(plan)
    return [*patches, *scaling_manifests(plan), *serving_manifests(plan)], notes


def _comment(lines: list[str] | tuple[str, ...]) -> str:
    return "".join(f"# {line}\n" for line in lines)


def plan_yaml(plan: Plan) -> str:
    """The plan as one YAML stream: a header comment, then one document per manifest."""
    manifests, notes = plan_manifests(plan)
    header = [
        f"foresize {plan.foresize_version} recommend plan (schema {plan.schema_version}), "
        f"generated {plan.generated_at}",
        f"metric {plan.parameters.get('metric')}; {len(manifests)} manifest(s)",
        *notes,
    ]
    documents = [_comment(m.comments) + to_yaml(m.body) for m in manifests]
    return _comment(header) + "---\n".join(documents)


_QUANTITY = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*")
_SUFFIXES = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}


def parse_quantity(text: str) -> float:
    """A Kubernetes quantity as a number: ``16Gi`` -> 17179869184, ``500m`` -> 0.5."""
    match = _QUANTITY.fullmatch(text)
    if match is None or match.group(2) not in _SUFFIXES:
        raise InputError(f"{text!r} is not a Kubernetes quantity (e.g. 16Gi, 512Mi, 2, 500m)")
    return float(match.group(1)) * _SUFFIXES[match.group(2)]
