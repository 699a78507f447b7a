"""The Recommendation document: pydantic models, their JSON Schema and ``schema_version``.

Field names follow DESIGN §2.3 (VPA vocabulary for bounds). Values are in the base unit
of ``resource`` (the metric name carries it). ``placement``, ``cost`` and
``scaling_plans`` are hooks filled by the placement/cost and scaling modules; right-sizing
leaves them empty. Only additive changes are allowed within a major ``schema_version``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.0"
Status = Literal["ok", "insufficient_data"]


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
    placement: dict[str, Any] | None = None
    cost: dict[str, Any] | None = None


class Input(_Model):
    """A source the plan was computed from."""

    source: str
    sha256: str | None = None


class Plan(_Model):
    """A right-sizing (and later scaling, placement and cost) plan."""

    schema_version: Literal["1.0"] = "1.0"
    foresize_version: str
    generated_at: str
    seed: int = 0
    inputs: list[Input] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    recommendations: list[ResourceRecommendation]
    scaling_plans: list[dict[str, Any]] = Field(default_factory=list)
    placement: dict[str, Any] | None = None
    cost: dict[str, Any] | None = None


def recommendation_schema() -> dict[str, Any]:
    """The published JSON Schema of a plan (``foresize recommend --schema``)."""
    schema = Plan.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://foresize.dev/schema/recommendation-{SCHEMA_VERSION}.json"
    return schema


def validate_plan(document: dict[str, Any]) -> Plan:
    """Check a plan document against the schema (the pydantic models that publish it);
    raises ``pydantic.ValidationError`` naming the field.
    """
    return Plan.model_validate(document)
