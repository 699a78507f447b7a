"""``foresize simulate serve``: an LLM request trace on replicas built from the static
analysis, under replica policies, against TTFT/TPOT SLOs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from foresize.cli.checks import parse_checks
from foresize.cli.common import provenance
from foresize.cli.errors import INTERRUPTED
from foresize.cli.options import (
    CheckOpt,
    FormatOpt,
    MirrorOpt,
    OutputOpt,
    WideOpt,
    opt,
    output_file,
)
from foresize.cli.output import Col, Result, emit, frame_table, info, progress
from foresize.core.units import parse_duration
from foresize.graph.devices import DEVICES

REFERENCE = "src/foresize/graph/reference/llama-2-7b.json"
EPILOG = f"""\
Examples:

  foresize simulate serve azure-llm:conv --model {REFERENCE} --device h100 \
      --slo ttft=2s,tpot=100ms --rate-scale 4 --splice 4 --warmup 14m

  foresize simulate serve azure-llm:code --model {REFERENCE} --device a100 \
      --policies static,hpa_inflight,kpa,keda,predictive,oracle --sweep --plot code.png

  foresize simulate serve requests.jsonl --map ts=time,input_tokens=prompt,output_tokens=gen \
      --model config.json --device h100 --tp 2 -f json -o serve.json
"""
COLUMNS = ("policy", "value", "gpu_hours", "cost_usd", "energy_kwh", "attainment",
           "ttft_p50_s", "ttft_p99_s", "tpot_p50_ms", "tpot_p99_ms", "queue_mean", "queue_max",
           "replicas_max", "cold_starts", "vs_oracle")


def _fixed(digits: int, suffix: str = "", scale: float = 1) -> Callable[[float | None], str]:
    """A cell with ``digits`` decimals (``scale`` first), ``-`` for missing."""
    return lambda v: "-" if v is None else f"{v * scale:,.{digits}f}{suffix}"


SUMMARY = [  # the price of a policy and whether it meets the SLO, then the detail
    Col("policy"), Col("gpu_hours", "GPU h", show=_fixed(2)),
    Col("cost_usd", "cost $", show=_fixed(2)),
    Col("attainment", "SLO met %", show=_fixed(1, scale=100)),
    Col("ttft_p99_s", "TTFT P99"), Col("tpot_p99_ms", "TPOT P99 ms", show=_fixed(0)),
    Col("vs_oracle", "vs oracle", show=_fixed(2, "x")),
    Col("value", "knob"), Col("replicas_max", "peak"),
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
    device: Annotated[str, opt(
        "--device", f"One of: {', '.join(DEVICES.names())}; h100, a100 name the SXM / "
        "largest-memory form.", "Replica")] = "h100_sxm",
    tp: Annotated[int, opt("--tp", "Tensor-parallel degree (GPUs per replica).", "Replica",
                           min=1)] = 1,
    dtype: Annotated[str, opt("--dtype", "Weight dtype: bf16, fp16, int8 or int4.",
                              "Replica")] = "bf16",
    load_gb_s: Annotated[float, opt(
        "--load-gb-s", "Weight loading bandwidth of a new replica (GB/s).", "Replica",
        min=0.01)] = 2.0,
    container_start: Annotated[float, opt(
        "--container-start", "Seconds a new replica takes before loading weights.", "Replica",
        min=0.0)] = 30.0,
    slo: Annotated[str, opt("--slo", "Per-request SLO: ttft=DURATION,tpot=DURATION.",
                            "SLO")] = "ttft=2s,tpot=100ms",
    attainment: Annotated[float, opt(
        "--attainment", "Share of requests that must meet the SLO (tuning target).", "SLO",
        min=0.5, max=0.9999)] = 0.99,
    policies: Annotated[str, opt(
        "--policies", "Comma-separated: static, hpa (GPU utilisation), hpa_kv (KV-cache "
        "usage), hpa_inflight (requests in flight), kpa, keda, predictive, hybrid, oracle, "
        "rate_oracle (clairvoyant like the oracle: knows each minute's work, not when in "
        "the minute it lands; the bound for a perfect rate forecast). The oracle always "
        "runs as the reference.", "Policy",
    )] = "static,hpa,kpa,keda,predictive,hybrid,oracle",
    sweep: Annotated[bool, opt(
        "--sweep", "Sweep each policy's knob and report its cheapest setting that meets "
        "the attainment target (otherwise each runs at its default).", "Policy")] = False,
    rate_scale: Annotated[float, opt(
        "--rate-scale", "Replay the trace this many times faster.", "Trace", min=0.001)] = 1.0,
    splice: Annotated[int, opt(
        "--splice", "Replay the trace this many times end to end.", "Trace", min=1)] = 1,
    warmup: Annotated[str, opt(
        "--warmup", "Run the first DURATION of the replay but score neither its requests "
        "nor its GPU-hours: the history every policy starts from (e.g. one copy of a "
        "--splice).", "Trace")] = "0s",
    map_: Annotated[str | None, opt(
        "--map", "Columns of a trace file: ts=COL,input_tokens=COL,output_tokens=COL"
        "[,model=COL,tenant=COL].", "Trace", show_default=False)] = None,
    mirror: MirrorOpt = None,
    price: Annotated[float | None, opt(
        "--price", "USD per GPU-hour (default: the on-demand price of the device).",
        "Output", min=0.0, show_default=False)] = None,
    plot: Annotated[Path | None, opt(
        "--plot", "Write a PNG: GPU-hours against attainment (with --sweep) and the "
        "busiest 15 minutes of replicas.", "Output", callback=output_file)] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    wide: WideOpt = False,
    checks: CheckOpt = None,
) -> None:
    """Serve an LLM request trace on replicas built from the model's static analysis
    (continuous batching, KV cache, start-up) and compare replica policies on GPU-hours,
    money, energy and TTFT/TPOT SLO attainment against a hindsight oracle.
    """
    from foresize.ingest.requests import parse_request_mapping
    from foresize.simulate.serve.policies import parse_policies, sweep_grid
    from foresize.simulate.serve.study import (
        ServeInputs,
        open_setup,
        parse_slo,
        plot_study,
        run_study,
        study_document,
        summary_frame,
    )

    names = parse_policies(policies)
    inputs = ServeInputs(
        trace=trace, model=str(model), device=device, tp=tp, dtype=dtype,
        slo=parse_slo(slo, attainment=attainment), rate_scale=rate_scale, splice=splice,
        mapping=parse_request_mapping(map_), mirror=None if mirror is None else str(mirror),
        price_per_gpu_h=price,
        overrides={"load_gb_s": load_gb_s, "container_start_s": container_start},
        warmup_s=parse_duration(warmup))
    setup, hashes, notes = open_setup(inputs)
    for note in notes:
        info(note)
    runs = sum(len(sweep_grid(n)) + 1 if sweep else 1
               for n in (names if "oracle" in names else [*names, "oracle"]))
    with progress("serve runs", runs) as bar:
        study = run_study(setup, names, sweep=sweep, on_run=lambda _: bar.advance())
    if plot is not None and not study.interrupted:
        plot_study(setup, study, plot)
        info(f"wrote {plot}")
    frame = summary_frame(study)
    shown = frame.select([c for c in COLUMNS if c in frame.columns]) \
        if "gpu_hours" in frame.columns else frame
    m = setup.model
    emit(Result(
        shown, {**provenance(hashes), **study_document(setup, inputs, study, sweep=sweep)},
        title=f"Serving {setup.trace.n:,} requests ({trace}, {setup.replay.describe()}) with "
        f"{m.model} on {m.device.name} x{m.gpus} ({inputs.dtype}); SLO TTFT "
        f"{inputs.slo.ttft_s:g} s, TPOT {1e3 * inputs.slo.tpot_s:g} ms",
        caption=("each policy at its cheapest knob value meeting "
                 f"{100 * attainment:g} % attainment" if sweep else
                 "each policy at its default knob") +
        f"; vs oracle: GPU-hours / oracle's; capacity {study.capacity:.3g} work/s per replica "
        f"(calibrated), start-up {m.startup_s:.0f} s, KV {m.kv_capacity_tokens:,} tokens",
        wide=wide, table=lambda result: frame_table(
            result, columns=[c for c in SUMMARY if c.key in result.frame.columns])),
        fmt=fmt, output=output, checks=() if study.interrupted else parse_checks(checks))
    if study.interrupted:
        info(f"interrupted: {bar.done}/{runs} runs done; the policies whose runs all finished "
             "kept in the output beside the oracle and marked partial")
        raise typer.Exit(INTERRUPTED)
