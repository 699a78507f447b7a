"""``foresize recommend serve``: the cheapest device x TP x replica schedule that meets an
LLM serving SLO on a request trace, found by simulation, as a recommendation plan.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from foresize.cli.common import provenance
from foresize.cli.options import FormatOpt, MirrorOpt, OutputOpt, WideOpt, opt
from foresize.cli.output import Col, Result, emit, frame_table, progress
from foresize.core.units import parse_duration

REFERENCE = "src/foresize/graph/reference/llama-2-7b.json"
EPILOG = f"""\
Examples:

  foresize recommend serve azure-llm:conv --model {REFERENCE} --device h100 --device a100 \
      --tp 1,2 --slo ttft=2s,tpot=100ms --rate-scale 4 --splice 4 --warmup 14m

  foresize recommend serve azure-llm:code --model {REFERENCE} --device l4 --device h100 \
      -f k8s -o serve.yaml
"""
YAML_SUFFIXES = (".yaml", ".yml")
COLUMNS = ("device", "tp", "status", "policy", "gpu_hours", "cost", "attainment",
           "capacity_work_per_replica", "note")
SUMMARY = [  # the candidate, its price and whether it meets the SLO
    Col("device"), Col("tp"), Col("policy"),
    Col("gpu_hours", "GPU h", show=lambda v: "-" if v is None else f"{v:,.2f}"),
    Col("cost", "cost $", show=lambda v: "-" if v is None else f"{v:,.2f}"),
    Col("attainment", "SLO met %", show=lambda v: "-" if v is None else f"{100 * v:.1f}"),
    Col("status"),
    Col("capacity_work_per_replica", "work/s/replica", summary=False),
    Col("note", prose=True, summary=False),
]


def serve(
    trace: Annotated[str, typer.Argument(
        help="Request trace: a registered table (azure-llm:code, azure-llm:conv) or a CSV, "
        "parquet or JSON-lines file with arrival time, input and output tokens.",
        show_default=False)],
    *,
    model: Annotated[Path, opt(
        "--model", "A Hugging Face config.json of the served model.", "Replica",
        exists=True, dir_okay=False, show_default=False)],
    device: Annotated[list[str] | None, opt(
        "--device", "Candidate GPU types (repeatable; default h100_sxm and a100_80gb).",
        "Replica", show_default=False)] = None,
    tp: Annotated[str | None, opt(
        "--tp", "Candidate tensor-parallel degrees, comma-separated (default 1,2,4,8; a "
        "degree the model does not fit or divide is skipped with its reason).", "Replica",
        show_default=False)] = None,
    dtype: Annotated[str, opt("--dtype", "Weight dtype: bf16, fp16, int8 or int4.",
                              "Replica")] = "bf16",
    slo: Annotated[str, opt("--slo", "Per-request SLO: ttft=DURATION,tpot=DURATION.",
                            "SLO")] = "ttft=2s,tpot=100ms",
    attainment: Annotated[float, opt(
        "--attainment", "Share of requests that must meet the SLO.", "SLO",
        min=0.5, max=0.9999)] = 0.99,
    rate_scale: Annotated[float, opt(
        "--rate-scale", "Replay the trace this many times faster.", "Trace", min=0.001)] = 1.0,
    splice: Annotated[int, opt(
        "--splice", "Replay the trace this many times end to end.", "Trace", min=1)] = 1,
    warmup: Annotated[str, opt(
        "--warmup", "Run the first DURATION but score neither its requests nor its "
        "GPU-hours (the history every policy starts from).", "Trace")] = "0s",
    map_: Annotated[str | None, opt(
        "--map", "Columns of a trace file: ts=COL,input_tokens=COL,output_tokens=COL.",
        "Trace", show_default=False)] = None,
    mirror: MirrorOpt = None,
    prices: Annotated[Path | None, opt(
        "--prices", "A prices TOML merged over the default table (see prices.toml).",
        "Output", dir_okay=False, show_default=False)] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    wide: WideOpt = False,
) -> None:
    """Plan an LLM service: simulate every candidate device and TP degree on the trace,
    tune the predictive schedule and the HPA (requests in flight), KEDA (queue) and
    Knative KPA (concurrency) settings to the SLO, and keep the cheapest. -f json is the
    plan (validated against `foresize recommend --schema`); -f k8s writes manifests.
    """
    import polars as pl

    from foresize.ingest.requests import parse_request_mapping
    from foresize.recommend.plan import SCHEMA_VERSION, validate_plan
    from foresize.simulate.serve.plan import (
        ServePlanRequest,
        candidate_tps,
        n_sweeps,
        recommend_serve,
    )
    from foresize.simulate.serve.study import parse_slo

    if fmt is None and output is not None and output.suffix.lower() in YAML_SUFFIXES:
        fmt = "k8s"
    request = ServePlanRequest(
        trace=trace, model=str(model), devices=tuple(device or ("h100_sxm", "a100_80gb")),
        tps=candidate_tps(tp), dtype=dtype, slo=parse_slo(slo, attainment=attainment),
        rate_scale=rate_scale, splice=splice, warmup_s=parse_duration(warmup),
        mapping=parse_request_mapping(map_), mirror=None if mirror is None else str(mirror),
        prices=None if prices is None else str(prices))
    with progress("simulating candidates", n_sweeps(request), unit="policy sweeps") as bar:
        plan = recommend_serve(request, on_run=lambda _: bar.advance())
    document = {**provenance(plan.hashes), "schema_version": SCHEMA_VERSION,
                **plan.document()}
    validate_plan(json.loads(json.dumps(document)))
    s = plan.section
    frame = pl.DataFrame(plan.rows(), infer_schema_length=None)
    emit(Result(
        frame.select([c for c in COLUMNS if c in frame.columns]), document,
        title=f"Serving {s.model} on {trace} ({s.replay}); SLO TTFT {s.ttft_s:g} s, TPOT "
        f"{1e3 * s.tpot_s:g} ms at {100 * s.attainment:g} %",
        caption=f"cheapest: {s.tp} x {s.device} per replica, {s.gpu_hours:.2f} GPU-h, "
        f"{s.cost:.2f} {s.currency} ({plan.scaling.forecaster}); -f k8s for the manifests",
        wide=wide, table=lambda result: frame_table(
            result, columns=[c for c in SUMMARY if c.key in result.frame.columns])),
        fmt=fmt, output=output)
