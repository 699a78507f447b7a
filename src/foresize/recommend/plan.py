"""The Recommendation document: pydantic models, their JSON Schema and ``schema_version``.

Field names follow DESIGN §2.3 (VPA vocabulary for bounds). Values are in the base unit
of ``resource`` (the metric name carries it). ``placement``, ``cost`` and
``scaling_plans`` are filled by ``recommend.service`` from the placement, cost and scaling
modules (their ``to_dict`` shapes); right-sizing alone leaves them empty. Only additive
changes are allowed within a major ``schema_version``: 1.1 typed those three hooks, 1.2
added ``cluster`` (cluster mode: per owner and container, current -> recommended requests
and limits, the GPU decision, the change in money and a severity), 1.3 ``serving``
(``recommend serve``: the configurations tried for an LLM service and the autoscaler
settings that meet its SLO).

``validate_plan`` checks a document twice: against the pydantic models, and -- as JSON --
against the published JSON Schema itself (``jsonschema``), so what ``--schema`` prints is
what every written plan satisfies.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, Literal

import jsonschema  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field

from foresize.core.errors import InputError, SchemaMismatchError
from foresize.core.io import read_json_object

SCHEMA_VERSION = "1.3"
Status = Literal["ok", "insufficient_data"]
Severity = Literal["GOOD", "OK", "WARNING", "CRITICAL"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reason(_Model):
    """Why a recommendation is missing or qualified: a code and a sentence."""

    code: str
    message: str


class Values(_Model):
    """Request and limit; ``limit`` is ``null`` where none is set (CPU)."""

    request: float | None
    limit: float | None


class Bounds(_Model):
    """VPA's vocabulary: lowerBound, target, upperBound, uncappedTarget."""

    lower: float | None = None
    target: float | None = None
    upper: float | None = None
    uncapped: float | None = None


class Method(_Model):
    """How the number was made: strategy, quantile of what, margin over it."""

    strategy: str
    quantile: float | None = Field(None, description="quantile level the base comes from")
    base: float | None = Field(None, description="the value before the margin")
    margin_pct: float | None = Field(None, description="margin added to the base, percent")
    model: str = Field(description="what produced the base, e.g. fleet_growth or histogram")


class Risk(_Model):
    """Target chance of exceeding over the horizon, and the slack expected from history."""

    p_exceed: float = Field(gt=0, le=0.5)
    expected_slack: float | None = Field(
        None, description="share of the limit unused on the history: sum(rec - usage)/sum(rec)"
    )


class Evidence(_Model):
    """What the number rests on: the history, the horizon and the calibration."""

    n_points: int
    window_s: float
    start: str | None = None
    end: str | None = None
    horizon_s: float | None = None
    calibration: dict[str, float] = Field(default_factory=dict)


class PhaseRequest(_Model):
    """The request one phase needs (a vertical-scaling schedule)."""

    phase: str
    time_share: float
    request: float
    p95: float
    max: float


class GpuPlacement(_Model):
    """How one replica sits on one GPU type: whole devices, a MIG slice or a milli share."""

    device: str
    mode: Literal["whole", "mig", "milli"]
    devices: int
    profile: str | None
    gpu_milli: int | None
    gpu_fraction: float = Field(description="whole-GPU units occupied (what cost multiplies)")
    memory_need_bytes: float
    memory_per_unit_bytes: float
    compute_need: float | None = Field(description="P95 GPU utilisation, fraction of one GPU")
    compute_share: float
    resources: dict[str, int] = Field(description="Kubernetes extended resources to request")
    rationale: str


class ModelSizing(_Model):
    """The model the placement sizes, as the static analysis saw it."""

    source: str
    kind: Literal["hf_config", "onnx"]
    need_bytes: float = Field(description="GPU memory one replica needs (inference)")
    dtype: str | None
    batch: int | None = None
    context: int | None = None
    parameters: int | None = None


class PlacementSection(_Model):
    """Every GPU type that holds one replica, and the chosen one (cheapest on demand)."""

    model: ModelSizing
    need_bytes: float
    util_p95: float | None = Field(description="pooled P95 GPU utilisation, fraction")
    dtype: str | None
    best: GpuPlacement
    options: list[GpuPlacement]


class PerHour(_Model):
    """Cost per hour under each price mode (null: the mode is not priced)."""

    on_demand: float
    reserved_1y: float | None
    spot: float | None


class CostItem(_Model):
    """One priced line: what, how many units, on-demand cost per hour."""

    what: str
    quantity: float
    on_demand_per_hour: float


class HourlyCost(_Model):
    """Cost per hour of a resource bundle."""

    currency: str
    per_hour: PerHour
    items: list[CostItem]


class Commitment(_Model):
    """What to commit for a year (the always-needed baseline) and the saving it brings."""

    committed_units: float
    break_even: float
    coverage: float
    commitment_utilisation: float
    hours: float
    currency: str
    all_on_demand_cost: float
    mixed_cost: float
    saving: float
    saving_fraction: float
    spot_fraction: float
    mixed_with_spot_cost: float | None
    unit: str = Field("gpu", description="what a committed unit is")


class CostSection(_Model):
    """Prices used and the cost of the plan's placement: per replica and for the fleet."""

    currency: str
    source: str
    as_of: str
    files: list[str]
    gpu_type: str
    per_replica: HourlyCost
    fleet: HourlyCost | None = Field(
        None, description="sum over the sized workloads' own placements (one replica each)"
    )
    fleet_replicas: int | None = None


class HpaSpec(_Model):
    """HorizontalPodAutoscaler settings equivalent to a replica schedule."""

    min_replicas: int
    max_replicas: int
    target_utilisation_pct: int
    target_value_per_replica: float
    scale_down_stabilisation_s: int
    tolerance: float
    rationale: str


class CronWindowSpec(_Model):
    """A window holding a replica count (one KEDA cron trigger)."""

    start: str
    end: str
    replicas: int
    cron_start: str
    cron_end: str


class CronSpec(_Model):
    """A replica schedule as a base count plus a few cron windows."""

    timezone: str
    base_replicas: int
    peak: int
    replica_hours: float
    schedule_replica_hours: float
    windows: list[CronWindowSpec]


class ReplicaScheduleSpec(_Model):
    """Replicas per step over the horizon and what they were derived from."""

    capacity_per_replica: float
    target_utilisation: float
    startup_s: float
    scale_down_delay_s: float
    min_replicas: int
    max_replicas: int | None
    covers: str = Field(description="the forecast column provisioned for, e.g. hi_95")
    step_s: float
    steps: int
    peak: int
    low: int
    replica_hours: float
    static_peak_replica_hours: float
    saving_vs_static: float
    capped_steps: int
    ts: list[str] | None
    demand: list[float]
    needed: list[int]
    replicas: list[int]


class ScheduleCost(_Model):
    """What a replica schedule costs over its horizon, and the commitment it suggests."""

    per_replica: HourlyCost
    peak_per_hour: PerHour
    low_per_hour: PerHour
    horizon_on_demand: float
    commitment: Commitment | None


class ScalingPlan(_Model):
    """A service's replica schedule from its demand forecast, and autoscaler settings."""

    workload: str
    metric: str
    unit: str
    forecaster: str
    evidence: Evidence
    horizon_steps: int
    expected: list[float] = Field(description="forecast mean per step (what the HPA sees)")
    schedule: ReplicaScheduleSpec
    hpa: HpaSpec
    cron: CronSpec
    cost: ScheduleCost | None = None
    rationale: str


class ResourceRecommendation(_Model):
    """One workload and one resource (metric)."""

    workload: str
    resource: str
    unit: str
    status: Status
    recommended: Values
    bounds: Bounds = Field(default_factory=Bounds)
    method: Method
    risk: Risk
    evidence: Evidence
    rationale: str = ""
    phases: list[PhaseRequest] = Field(default_factory=list)
    reasons: list[Reason] = Field(default_factory=list)
    placement: GpuPlacement | None = Field(
        None, description="this workload's GPU placement with its own measured P95 (--model)"
    )
    cost: HourlyCost | None = Field(None, description="cost per hour of that placement")


class ResourceChange(_Model):
    """One container resource in cluster mode: what it has, what it should have, how much
    that matters (KRR's severity), and why.
    """

    resource: Literal["cpu", "memory"]
    unit: Literal["cores", "bytes"]
    current: Values
    recommended: Values
    lower: float | None = Field(None, description="lowest request the bounds allow (VPA min)")
    upper: float | None = Field(None, description="highest request the bounds allow (VPA max)")
    severity: Severity
    note: str = ""


class GpuDecision(_Model):
    """The GPU a container should get: whole devices, a MIG profile or a milli share."""

    model: str | None = Field(description="DCGM's modelName of the GPU it runs on")
    device: str | None = Field(description="the device catalogue's name for that model")
    current_gpus: float | None
    placement: GpuPlacement | None
    severity: Severity
    note: str


class CostChange(_Model):
    """Cost per hour of the container's requests over its replicas, now and recommended."""

    currency: str
    current_per_hour: float
    recommended_per_hour: float
    delta_per_hour: float


class ContainerPlan(_Model):
    """One container of an owner: its resources, its GPU, its cost and its severity."""

    container: str
    workload: str = Field(description="namespace/Kind/name/container, the recommendations' key")
    pods: int
    replicas: int
    resources: list[ResourceChange]
    gpu: GpuDecision | None = None
    cost: CostChange | None = None
    severity: Severity
    reasons: list[Reason] = Field(default_factory=list)


class OwnerPlan(_Model):
    """One workload owner (Deployment, StatefulSet, ...) and all its containers."""

    cluster: str | None = None
    namespace: str
    kind: str
    name: str
    severity: Severity
    containers: list[ContainerPlan]
    delta_per_hour: float | None = None


class Skipped(_Model):
    """A workload container left without a recommendation, and why."""

    workload: str
    reasons: list[Reason]


class ClusterSection(_Model):
    """Cluster mode: every owner in scope, what was skipped, and the money at stake."""

    source: str
    start: str
    end: str
    step_s: float
    scope: dict[str, Any]
    owners: list[OwnerPlan]
    skipped: list[Skipped] = Field(default_factory=list)
    currency: str | None = None
    current_per_hour: float | None = None
    recommended_per_hour: float | None = None
    delta_per_hour: float | None = None


class ServingCandidate(_Model):
    """One device x TP configuration tried for an LLM service, and what it costs."""

    device: str
    tp: int
    gpus_per_replica: int
    status: Literal["ok", "does_not_fit", "slo_floor", "slo_unmet"]
    note: str = ""
    capacity_work_per_replica: float | None = None
    policy: str | None = Field(None, description="the cheapest policy meeting the SLO")
    gpu_hours: float | None = None
    cost: float | None = None
    attainment: float | None = None


class ServingAutoscaler(_Model):
    """One autoscaler's tuned setting on the trace, and what it cost at that setting."""

    policy: str
    knob: str
    value: float
    capacity_scale: float = 1.0
    gpu_hours: float
    attainment: float
    meets_slo: bool


class ServingSection(_Model):
    """``recommend serve``: the LLM service, its SLO, every configuration tried and the
    autoscaler settings (HPA on requests in flight, KEDA on queue length, Knative KPA on
    concurrency, the predictive schedule) tuned by simulation to meet the SLO.
    """

    model: str
    trace: str
    replay: str
    dtype: str
    ttft_s: float
    tpot_s: float
    attainment: float
    warmup_s: float
    device: str
    tp: int
    currency: str
    price_per_gpu_hour: float
    gpu_hours: float
    cost: float
    startup_s: float
    kv_capacity_tokens: int
    candidates: list[ServingCandidate]
    autoscalers: list[ServingAutoscaler]


class Input(_Model):
    """A source the plan was computed from."""

    source: str
    sha256: str | None = None


class Plan(_Model):
    """A right-sizing (and later scaling, placement and cost) plan."""

    schema_version: Literal["1.1", "1.2", "1.3"] = "1.3"
    foresize_version: str
    generated_at: str
    seed: int = 0
    inputs: list[Input] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    recommendations: list[ResourceRecommendation]
    scaling_plans: list[ScalingPlan] = Field(default_factory=list)
    placement: PlacementSection | None = None
    cost: CostSection | None = None
    cluster: ClusterSection | None = None
    serving: ServingSection | None = None


def recommendation_schema() -> dict[str, Any]:
    """The published JSON Schema of a plan (``foresize recommend --schema``)."""
    schema = Plan.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://foresize.dev/schema/recommendation-{SCHEMA_VERSION}.json"
    return schema


@cache
def _validator() -> Any:
    schema = recommendation_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(document: dict[str, Any]) -> list[str]:
    """Where the JSON form of ``document`` breaks the published schema, one line each."""
    as_json = json.loads(json.dumps(document, default=str))
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(_validator().iter_errors(as_json), key=lambda e: list(e.path))
    ]


# The HPA utilisation targets a plan file may carry, in percent of the request: below 20
# an HPA holds five times the replicas the demand needs; a serving plan's HPA on requests
# in flight writes 100 (its target is the value per replica).
PLAN_HPA_TARGET_PCT = (20, 100)


def _amount(where: str, value: float | None, *, top: float | None = None) -> str | None:
    """Why ``value`` cannot be a request, limit or bound (None when it can)."""
    if value is None:
        return None
    if not math.isfinite(value) or value < 0:
        return f"{where} is {value!r}; it must be a finite number >= 0"
    if top is not None and value > top + 1e-9:
        return f"{where} is {value:g} %; a percentage of a device is at most {top:g}"
    return None


def _recommendation_problems(i: int, rec: ResourceRecommendation) -> Iterator[str]:
    at = f"recommendations[{i}] ({rec.workload}, {rec.resource})"
    devices = rec.placement.devices if rec.placement is not None else 1
    top = 100.0 * max(devices, 1) if rec.unit == "%" else None
    values = rec.recommended
    for name, value in (("request", values.request), ("limit", values.limit)):
        yield from filter(None, [_amount(f"{at}.recommended.{name}", value, top=top)])
    for name in ("lower", "target", "upper", "uncapped"):
        yield from filter(
            None, [_amount(f"{at}.bounds.{name}", getattr(rec.bounds, name), top=top)]
        )
    for j, phase in enumerate(rec.phases):
        yield from filter(None, [_amount(f"{at}.phases[{j}].request", phase.request, top=top)])
    request, limit = values.request, values.limit
    if request is not None and limit is not None and request > limit:
        yield f"{at}.recommended.request ({request:g}) is above its limit ({limit:g})"


def _scaling_problems(i: int, plan: ScalingPlan) -> Iterator[str]:
    at = f"scaling_plans[{i}] ({plan.workload})"
    hpa, cron, schedule = plan.hpa, plan.cron, plan.schedule
    capacity = schedule.capacity_per_replica
    if not (math.isfinite(capacity) and capacity > 0):
        yield f"{at}.schedule.capacity_per_replica is {capacity!r}; it must be > 0"
    if any(r < 0 for r in schedule.replicas):
        yield f"{at}.schedule.replicas holds {min(schedule.replicas)}; counts must be >= 0"
    if hpa.min_replicas < 1:
        yield f"{at}.hpa.min_replicas is {hpa.min_replicas}; an HPA keeps at least 1"
    if hpa.max_replicas < hpa.min_replicas:
        yield (
            f"{at}.hpa.max_replicas ({hpa.max_replicas}) is below min_replicas "
            f"({hpa.min_replicas})"
        )
    low, high = PLAN_HPA_TARGET_PCT
    if not low <= hpa.target_utilisation_pct <= high:
        yield (
            f"{at}.hpa.target_utilisation_pct is {hpa.target_utilisation_pct}; "
            f"it must be in {low}-{high}"
        )
    per_replica = hpa.target_value_per_replica
    if not (math.isfinite(per_replica) and per_replica > 0):
        yield f"{at}.hpa.target_value_per_replica is {per_replica!r}; it must be > 0"
    if cron.base_replicas < 0:
        yield f"{at}.cron.base_replicas is {cron.base_replicas}; it must be >= 0"
    for j, window in enumerate(cron.windows):
        if window.replicas < 1:
            yield f"{at}.cron.windows[{j}].replicas is {window.replicas}; it must be >= 1"


def plan_problems(plan: Plan) -> list[str]:
    """What in ``plan`` no cluster could apply, one line per field (empty when none).

    The schema checks types; this checks physical ranges, for plans edited by hand or
    written by other tools: amounts finite and >= 0, a request at most its limit, a
    percentage of a device at most 100 per device the placement gives, replicas >= 1 with
    min <= max, and an HPA target in ``PLAN_HPA_TARGET_PCT``.
    """
    problems = [
        p for i, rec in enumerate(plan.recommendations) for p in _recommendation_problems(i, rec)
    ]
    problems += [p for i, sp in enumerate(plan.scaling_plans) for p in _scaling_problems(i, sp)]
    return problems


def validate_plan(document: dict[str, Any]) -> Plan:
    """Check a plan document against the pydantic models and against the JSON Schema they
    publish; the first failure is a ``SchemaMismatchError`` naming the field.
    """
    errors = schema_errors(document)
    if errors:
        raise SchemaMismatchError(f"plan does not match schema {SCHEMA_VERSION}: {errors[0]}")
    return Plan.model_validate(document)


def read_plan(path: Path) -> Plan:
    """A plan written by ``foresize recommend -o plan.json``, checked against its schema.

    A missing, empty or non-JSON file, one that breaks the schema, or one with a value out
    of physical range (:func:`plan_problems`) is an ``InputError`` naming the file and the
    field.
    """
    document = read_json_object(
        path, what="plan", hint="a plan is the JSON that foresize recommend -o plan.json writes"
    )
    try:
        plan = validate_plan(document)
    except SchemaMismatchError as exc:
        raise SchemaMismatchError(f"{path}: {exc}") from None
    problems = plan_problems(plan)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InputError(f"{path}: {problems[0]}{more}")
    return plan
