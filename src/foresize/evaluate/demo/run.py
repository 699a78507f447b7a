"""The whole foresize journey on one telemetry frame: what ``foresize demo`` runs.

Seven stages, each the library piece that owns it, composed without logic of their own
where a piece exists:

1. **model**: static analysis of a model config (``recommend.service.size_model`` and
   ``graph.sizing.size_architecture``): parameters, FLOPs, inference memory.
2. **profile**: ``profile.telemetry.profile_telemetry`` per workload and metric.
3. **phases**: ``profile.phases.detect_phases`` + ``phase_summary``.
4. **forecast**: one forecaster (``forecast.models``) per metric over the planning
   horizon with 80/95 % intervals, and its rolling-origin backtest
   (``forecast.backtest``) as the accuracy figure.
5. **plan**: ``recommend.service.build_plan`` per resource metric (request and limit per
   workload) and per service (replica schedule, HPA, KEDA; each service scaled with its
   own per-replica capacity), the model placed and priced on the services; merged into
   one plan document validated against the published schema, and its k8s YAML.
6. **autoscale**: ``simulate.replicas.run.compare`` of static, HPA (at the plan's
   target), predictive and oracle replica scalers on each service's recent demand.
7. **schedule**: ``evaluate.fleet.compare_fleets``: a fleet of the workloads with the
   original requests and with the plan's requests, on identical GPU nodes.

``run_demo`` returns every stage's product and writes them into one folder
atomically (``core.io.atomic_folder``): all artefacts, or none.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from foresize import __version__
from foresize.core.errors import InputError
from foresize.core.io import atomic_folder, sha256_file
from foresize.evaluate.demo.forecast import DAY_S, LEVELS, default_horizon_s, forecast_metrics
from foresize.evaluate.demo.inputs import Assumptions
from foresize.evaluate.demo.plan import analyse_model, build_demo_plan, plan_document
from foresize.evaluate.demo.simulate import pod_sizes, simulate_autoscaling
from foresize.evaluate.demo.summary import finite, records, summarise, summary_markdown
from foresize.evaluate.fleet import NodeShape, compare_fleets
from foresize.profile.phases import detect_phases, phase_summary
from foresize.profile.telemetry import profile_telemetry
from foresize.recommend.export import plan_yaml
from foresize.recommend.plan import ModelSizing, validate_plan

REFERENCE_MODEL = Path(__file__).resolve().parents[2] / "graph" / "reference" / "llama-2-7b.json"
SCALERS = ("static", "hpa", "predictive", "oracle")
DEFAULT_FLEET_PODS = 48
ARTEFACTS = (
    "model.json",
    "profile.parquet",
    "profile.json",
    "phases.json",
    "forecast.parquet",
    "plan.json",
    "plan.yaml",
    "autoscale.json",
    "schedule.json",
    "summary.json",
    "summary.md",
)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """Knobs of the pipeline; the defaults keep the demo well under a minute on 2 cores."""

    forecaster: str = "wavelet"
    strategy: str = "foresize"
    horizon_s: float | None = None  # default min(1 day, 3/7 of the history)
    accuracy: bool = True
    scalers: tuple[str, ...] = SCALERS
    startup_steps: int = 2
    autoscale_window_s: float = DAY_S
    node: NodeShape = field(default_factory=NodeShape)
    fleet_pods: int = DEFAULT_FLEET_PODS
    batch: int = 1
    context: int | None = None


@dataclass(slots=True)
class DemoResult:
    """What each stage produced, the summary document and the artefact paths."""

    model: dict[str, Any]
    profile: pl.DataFrame
    phases: pl.DataFrame
    forecast: pl.DataFrame
    accuracy: pl.DataFrame
    plan: dict[str, Any]
    plan_yaml: str
    autoscale: pl.DataFrame
    schedule: pl.DataFrame
    summary: dict[str, Any]
    paths: dict[str, Path]
    timings: dict[str, float]


Stage = Callable[[str], None]


@dataclass(slots=True)
class _Clock:
    """Wall time per stage, and the caller's progress hook."""

    on_stage: Stage | None
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.on_stage is not None:
            self.on_stage(name)
        began = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - began, 3)


def check_out_dir(out_dir: Path) -> None:
    """Fail before any work when the output folder cannot be written (exit 3, one line)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder")
    parent = out_dir.resolve().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{out_dir}: cannot write here ({parent} is not writable)")


def _header(seed: int, inputs: Mapping[str, str | None]) -> dict[str, Any]:
    return {
        "foresize_version": __version__,
        "generated_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "seed": seed,
        "inputs": [{"source": s, "sha256": h} for s, h in inputs.items()],
    }


def _dump(value: Any) -> str:
    return json.dumps(_plain(value), indent=2, default=str) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return finite(value)


def run_demo(
    telemetry: pl.DataFrame,
    *,
    model_spec: str | Path = REFERENCE_MODEL,
    out_dir: str | Path,
    seed: int = 0,
    source: str = "telemetry",
    assumptions: Assumptions | None = None,
    options: DemoOptions | None = None,
    inputs: Mapping[str, str | None] | None = None,
    extra: Mapping[str, Any] | None = None,
    on_stage: Stage | None = None,
) -> DemoResult:
    """Run every stage on canonical ``telemetry`` and write the artefacts into ``out_dir``.

    ``assumptions`` give replica capacities and today's GPUs (default: none, so each
    service's peak needs ``peak_replicas`` replicas and every pod holds one GPU);
    ``inputs`` (source -> sha256) and ``extra`` (e.g. the synthetic parameters) go into
    the headers. ``on_stage(name)`` is called as each stage starts. Nothing is written
    unless every stage succeeds.
    """
    out = Path(out_dir)
    check_out_dir(out)
    options = options or DemoOptions()
    assumptions = assumptions or Assumptions()
    clock = _Clock(on_stage)
    model_path = Path(model_spec)
    sources = {str(model_path): sha256_file(model_path) if model_path.is_file() else None}
    header = _header(seed, {**(inputs or {}), **sources})
    frame = telemetry.select(
        "workload", "metric", "ts", "value", *(c for c in ("tenant",) if c in telemetry.columns)
    )
    horizon_s = options.horizon_s or default_horizon_s(frame)
    with clock.stage("model"):
        model = analyse_model(model_spec, batch=options.batch, context=options.context)
        sizing = ModelSizing.model_validate(model["sizing"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with clock.stage("profile"):
            profile, _ = profile_telemetry(telemetry, source=source)
        with clock.stage("phases"):
            phases = phase_summary(detect_phases(frame.select("workload", "metric", "ts", "value")))
        with clock.stage("forecast"):
            forecast, accuracy = forecast_metrics(
                frame,
                forecaster=options.forecaster,
                horizon_s=horizon_s,
                accuracy=options.accuracy,
                source=source,
            )
        with clock.stage("plan"):
            bodies, notes = build_demo_plan(
                frame,
                model=sizing,
                assumptions=assumptions,
                forecaster=options.forecaster,
                strategy=options.strategy,
                horizon_s=horizon_s,
                source=source,
                node=options.node,
                startup_steps=options.startup_steps,
                force=options.horizon_s is None,  # its own default; a typed one must fit
            )
            plan = plan_document(bodies, header)
            manifests = plan_yaml(validate_plan(plan))
        with clock.stage("autoscale"):
            autoscale = simulate_autoscaling(
                frame,
                plan,
                scalers=options.scalers,
                startup_steps=options.startup_steps,
                window_s=options.autoscale_window_s,
                source=source,
            )
    with clock.stage("schedule"):
        original, rightsized = pod_sizes(frame, plan, sizing, assumptions, options.node)
        copies = max(1, math.ceil(options.fleet_pods / len(original)))
        schedule = compare_fleets(
            {"original": original, "right-sized": rightsized},
            options.node,
            copies=copies,
            seed=seed,
        )
    schedule_doc = {
        "node": options.node.describe(),
        "copies": copies,
        "placement": "best_fit",
        "queue": "fifo",
        "pods": {
            "original": [p.to_dict() for p in original],
            "right-sized": [p.to_dict() for p in rightsized],
        },
        "rows": records(schedule),
    }
    parameters = {
        "source": source,
        "seed": seed,
        "model": model_path.name,
        "forecaster": options.forecaster,
        "horizon_s": horizon_s,
        "levels": list(LEVELS),
        "scalers": list(options.scalers),
        "startup_steps": options.startup_steps,
        "fleet_copies": copies,
    }
    summary = summarise(
        header=header,
        model=model,
        profile=profile,
        phases=phases,
        forecast=forecast,
        accuracy=accuracy,
        plan=plan,
        autoscale=autoscale,
        schedule=schedule,
        extra={**(extra or {}), "parameters": parameters},
    )
    summary["schedule"] = {k: v for k, v in schedule_doc.items() if k != "pods"}
    summary["notes"] = [*assumptions.notes, *notes]
    summary["timings_s"] = dict(clock.timings)
    paths = {name: out / name for name in ARTEFACTS}
    summary["artefacts"] = {name: str(path) for name, path in paths.items()}
    with clock.stage("write"):
        _write(
            out,
            model=model,
            profile=profile,
            phases=phases,
            forecast=forecast,
            plan=plan,
            manifests=manifests,
            autoscale={"parameters": parameters, "rows": records(autoscale)},
            schedule=schedule_doc,
            summary=summary,
            markdown=summary_markdown(summary, parameters),
        )
    return DemoResult(
        model=model,
        profile=profile,
        phases=phases,
        forecast=forecast,
        accuracy=accuracy,
        plan=plan,
        plan_yaml=manifests,
        autoscale=autoscale,
        schedule=schedule,
        summary=summary,
        paths=paths,
        timings=clock.timings,
    )


def _write(
    out: Path,
    *,
    model: dict[str, Any],
    profile: pl.DataFrame,
    phases: pl.DataFrame,
    forecast: pl.DataFrame,
    plan: dict[str, Any],
    manifests: str,
    autoscale: dict[str, Any],
    schedule: dict[str, Any],
    summary: dict[str, Any],
    markdown: str,
) -> None:
    """Every artefact into a temporary folder that replaces ``out`` only when complete."""
    try:
        with atomic_folder(out) as tmp:
            (tmp / "model.json").write_text(_dump(model), encoding="utf-8")
            profile.write_parquet(tmp / "profile.parquet")
            (tmp / "profile.json").write_text(_dump(records(profile)), encoding="utf-8")
            (tmp / "phases.json").write_text(_dump(records(phases)), encoding="utf-8")
            forecast.write_parquet(tmp / "forecast.parquet")
            (tmp / "plan.json").write_text(_dump(plan), encoding="utf-8")
            (tmp / "plan.yaml").write_text(manifests, encoding="utf-8")
            (tmp / "autoscale.json").write_text(_dump(autoscale), encoding="utf-8")
            (tmp / "schedule.json").write_text(_dump(schedule), encoding="utf-8")
            (tmp / "summary.json").write_text(_dump(summary), encoding="utf-8")
            (tmp / "summary.md").write_text(markdown, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{out}: cannot write the demo folder ({exc.strerror or exc})") from exc
