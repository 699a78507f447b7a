"""``foresize profile model``: size a model before it runs, from its graph or config."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from foresize.cli.common import provenance
from foresize.cli.options import FormatOpt, OutputOpt, parse_dims
from foresize.cli.output import Result, Rows, emit, info
from foresize.core.io import read_json_object, sha256_file
from foresize.core.paths import missing_file
from foresize.graph.devices import DEVICES, device_name
from foresize.graph.hf_config import SUPPORTED_FAMILIES, read_hf_config
from foresize.graph.hf_meta import size_with_transformers, transformers_available
from foresize.graph.sizing import SizingRequest, size_architecture

if TYPE_CHECKING:
    from foresize.graph.analysis import GraphRequest
    from foresize.graph.model import ModelGraph
    from foresize.graph.torch_reader import ExampleInput

EPILOG = """\
Examples:

  foresize profile model llama-2-7b/config.json --context 4096 --device h100_sxm

  foresize profile model config.json --train --optimizer adamw --zero 3 --dp 8 -f json

  foresize profile model model.onnx --dim batch=8 --dim seq=512 --top 20

  foresize profile model model.onnx --dim batch=8 --train --device a100_80gb
"""


def _config_path(source: Path) -> Path:
    return source / "config.json" if source.is_dir() else source


def model(
    source: Annotated[Path, typer.Argument(help="A Hugging Face-style config.json (or its "
                                           "folder) or an ONNX model.", show_default=False)],
    dim: Annotated[list[str] | None, typer.Option(
        "--dim", help="Bind a symbolic ONNX dimension, NAME=VALUE (repeatable).")] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Sequences per step.")] = 1,
    context: Annotated[int | None, typer.Option(
        "--context", min=1, help="Tokens per sequence (default: the model's maximum).")] = None,
    dtype: Annotated[str | None, typer.Option(
        "--dtype", help="fp32, bf16 or fp16 (default: bf16 for a config, the graph's own "
        "dtype for ONNX).")] = None,
    device: Annotated[str | None, typer.Option(
        "--device", help=f"One of: {', '.join(DEVICES.names())}; h100, a100, v100 name "
        f"the SXM / largest-memory form (default: h100_sxm for a "
        "config; ONNX adds per-op roofline time only when given).")] = None,
    train: Annotated[bool, typer.Option("--train", help="Also size one training step.")] = False,
    optimizer: Annotated[str, typer.Option("--optimizer",
                                           help="sgd, sgd_momentum, adam or adamw.")] = "adamw",
    zero: Annotated[int, typer.Option("--zero", min=0, max=3, help="ZeRO stage.")] = 0,
    dp: Annotated[int, typer.Option("--dp", min=1, help="Data-parallel degree.")] = 1,
    tp: Annotated[int, typer.Option("--tp", min=1, help="Tensor-parallel degree.")] = 1,
    pp: Annotated[int, typer.Option("--pp", min=1, help="Pipeline-parallel stages (a config: "
                                    "layers split evenly; training runs one-sequence "
                                    "microbatches on a 1F1B schedule).")] = 1,
    recompute: Annotated[str, typer.Option(
        "--recompute", help="Activation checkpointing: none or full (every repeated block; "
        "on a graph, its indexed modules).")] = "none",
    train_bn: Annotated[bool, typer.Option(
        "--train-bn", help="Graph: BatchNorm trains after every Conv that no "
        "BatchNormalization reads (an eval-mode export folded it and left no record); "
        "folds the torch exporter records are counted without it.")] = False,
    top: Annotated[int, typer.Option("--top", min=1, help="ONNX: costliest ops shown.")] = 15,
    strict: Annotated[bool, typer.Option(
        "--strict", help="ONNX: unsupported or unresolved ops are an error (exit 4).")] = False,
    shape: Annotated[list[str] | None, typer.Option(
        "--input", help="PyTorch factory: an example input, NAME:SHAPE[:DTYPE] "
        "(repeatable), e.g. x:1x3x224x224, ids:1x128:int64, mask:1x128:bool; integer "
        "inputs are fed zeros, boolean ones ones, floating ones zeros in --dtype.")] = None,
    by_layer: Annotated[bool, typer.Option(
        "--by-layer", help="ONNX: costs per layer (from the exporter's scoped node names) "
        "instead of per op.")] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Parameters, FLOPs, inference and training memory, devices needed and roofline time
    from a model's config.json, or FLOPs, parameters and roofline time per op and memory by
    tensor liveness from an ONNX graph.
    """
    from foresize.graph.report import report_rows  # polars: loaded on use

    if dtype is not None and dtype not in ("fp32", "bf16", "fp16"):
        raise typer.BadParameter(f"{dtype!r} is not fp32, bf16 or fp16", param_hint="--dtype")
    if recompute not in ("none", "full"):
        raise typer.BadParameter(f"{recompute!r} is not none or full", param_hint="--recompute")
    device = None if device is None else device_name(device)
    dims = parse_dims(dim)
    is_factory = not source.exists() and ":" in str(source)
    is_onnx = source.suffix.lower() == ".onnx"
    if is_factory or is_onnx:
        _reject_config_options(batch=batch, context=context, tp=tp, pp=pp)
        from foresize.graph.analysis import GraphRequest  # the op tables load for graphs only

        request = GraphRequest(dims=dims, dtype=dtype, device=device, train=train,
                               optimizer=optimizer, top=top, strict=strict, by_layer=by_layer,
                               zero_stage=zero, data_parallel=dp, recompute=recompute,
                               train_bn=train_bn)
    if is_factory:
        from foresize.graph.torch_reader import read_torch  # onnx loads only when needed

        spec = str(source)
        graph = read_torch(spec, _parse_inputs(shape, spec), dtype=dtype or "fp32")
        _onnx(graph, request, label=spec, inputs={spec: None}, fmt=fmt, output=output)
        return
    if not source.exists():
        raise missing_file(source)
    if is_onnx:
        from foresize.graph.model import collector_paused
        from foresize.graph.onnx_reader import read_onnx  # onnx loads only when needed

        # One pause from reading to output, and the graph let go before the collector
        # resumes: reference counting frees it, where each resume in between rescanned its
        # millions of objects (a third of a second at 200k nodes).
        with collector_paused():
            graph = read_onnx(source, dims=dims or None)
            _onnx(graph, request, label=str(source), inputs={str(source): sha256_file(source)},
                  fmt=fmt, output=output)
            del graph
        return
    precision: Literal["fp32", "bf16", "fp16"] = dtype or "bf16"  # type: ignore[assignment]
    recompute_mode: Literal["none", "full"] = recompute  # type: ignore[assignment]
    zero_stage: Literal[0, 1, 2, 3] = zero  # type: ignore[assignment]
    path = _config_path(source)
    config = read_json_object(path, what="config")
    if config.get("model_type") not in SUPPORTED_FAMILIES and transformers_available():
        _reject_meta_options(device=device, tp=tp, pp=pp, zero=zero, dp=dp,
                             recompute=recompute)
        report = size_with_transformers(config, batch=batch, context=context, dtype=precision,
                                        train=train, optimizer=optimizer)
        emit(Result(report_rows(report), {**provenance({str(path): sha256_file(path)}),
                                          "model": report},
                    title=f"{path} ({report['model_type']}, {report['class']})",
                    caption=f"path: {report['path']}; 1 multiply-add = 2 FLOPs"),
             fmt=fmt, output=output)
        return
    arch = read_hf_config(path)
    report = size_architecture(arch, SizingRequest(
        batch=batch, context=context, dtype=precision, device=device or "h100_sxm", train=train,
        optimizer=optimizer, zero_stage=zero_stage, data_parallel=dp, tensor_parallel=tp,
        pipeline_parallel=pp,
        recompute=recompute_mode))
    frame = report_rows(report)
    document = {**provenance({str(path): sha256_file(path)}), "model": report}
    emit(Result(frame, document, title=f"{path} ({arch.model_type})",
                caption=f"path: {report['path']}; roofline lower bounds; "
                "1 multiply-add = 2 FLOPs"),
         fmt=fmt, output=output)


def _reject_meta_options(*, device: str | None, tp: int, pp: int, zero: int, dp: int,
                         recompute: str) -> None:
    """Options the transformers path cannot honour are an error, not silently ignored.

    It runs the model once on one device in eager PyTorch: there is no roofline, no split
    over devices and no checkpointing to apply.
    """
    given = [name for name, on in (("--device", device is not None), ("--tp", tp != 1),
                                   ("--pp", pp != 1),
                                   ("--zero", zero != 0), ("--dp", dp != 1),
                                   ("--recompute", recompute != "none")) if on]
    if given:
        raise typer.BadParameter(
            "this model_type has no closed form, so it is sized by running it on fake "
            "tensors (one device, eager PyTorch): no roofline, sharding or checkpointing",
            param_hint=given[0])


def _reject_config_options(*, batch: int, context: int | None, tp: int, pp: int) -> None:
    """Options a graph cannot honour are an error, not silently ignored.

    A graph's batch and sequence are its dims (``--dim``); tensor parallelism splits
    heads and MLP columns, pipeline parallelism the layers, which only the architecture (a
    config.json) describes.
    """
    if batch != 1 or context is not None:
        option = "--batch" if batch != 1 else "--context"
        raise typer.BadParameter(
            "sizes a config.json; a graph's batch and sequence are its dims: bind them with "
            "--dim (e.g. --dim batch=8 --dim seq=4096)", param_hint=option)
    if tp != 1 or pp != 1:
        raise typer.BadParameter(
            "needs the architecture: it splits heads and MLP columns or layers, so size the "
            "model's config.json; for a graph, --zero and --dp shard its training state",
            param_hint="--tp" if tp != 1 else "--pp")


def _parse_inputs(texts: list[str] | None, spec: str) -> dict[str, ExampleInput]:
    """``ids:1x128:int64`` -> {"ids": ExampleInput((1, 128), "int64")}: a factory's inputs.

    NAME, then ``:`` or ``=``, the shape's dims separated by ``x`` or ``,``, and an optional
    ``:DTYPE`` (default: the model's float dtype), so ``x=1,3,224,224`` reads too.
    """
    from foresize.graph.torch_reader import INPUT_DTYPES, ExampleInput  # loads onnx

    if not texts:
        raise typer.BadParameter(f"{spec} needs example inputs, e.g. --input x:1x3x224x224 "
                                 "or --input ids:1x128:int64", param_hint="--input")
    inputs: dict[str, ExampleInput] = {}
    for text in texts:
        name, dims, dtype = _split_input(text)
        parts = [p.strip() for p in dims.replace("x", ",").split(",")]
        if not name or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise typer.BadParameter(f"{text!r} is not NAME:SHAPE[:DTYPE] with a shape of "
                                     "positive integers (e.g. ids:1x128:int64)",
                                     param_hint="--input")
        if dtype is not None and dtype not in INPUT_DTYPES:
            raise typer.BadParameter(f"{text!r}: dtype {dtype!r} is not one of "
                                     f"{', '.join(INPUT_DTYPES)}", param_hint="--input")
        inputs[name] = ExampleInput(tuple(int(p) for p in parts), dtype)
    return inputs


def _split_input(text: str) -> tuple[str, str, str | None]:
    """(name, shape text, dtype or None) of one ``--input``."""
    sep = "=" if "=" in text else ":"
    name, _, rest = text.partition(sep)
    shape, colon, dtype = rest.partition(":")
    return name.strip(), shape, dtype.strip() if colon else None


def _onnx(graph: ModelGraph, request: GraphRequest, *, label: str, inputs: dict[str, Any],
          fmt: str | None, output: Path | None) -> None:
    """Render the analysis of an ONNX graph (read from a file or exported from PyTorch)."""
    from foresize.core.guard import graph_errors
    from foresize.graph.analysis import analyze_graph
    from foresize.graph.flops import by_layer

    with graph_errors(label):
        analysis = analyze_graph(graph, request)
    report, rows = analysis.flops, analysis.rows
    if report.unsupported:
        info("unsupported ops (counted as 0 FLOPs): "
             + ", ".join(f"{op} x{n}" for op, n in sorted(report.unsupported.items())))
    document = {**provenance(inputs), "model": analysis.summary, "ops": Rows(rows)}
    if request.by_layer:
        layers = by_layer(report)
        document["layers"] = Rows(layers)
        shown, caption = layers, f"{layers.height} layers; 1 multiply-add = 2 FLOPs"
    else:
        costly = rows.sort("flops", descending=True, maintain_order=True).head(request.top)
        shown = rows if fmt in ("csv", "parquet", "json") else costly
        caption = (f"the {min(request.top, rows.height)} costliest of {rows.height} ops; "
                   "1 multiply-add = 2 FLOPs")
    emit(Result(shown, document,
                title=f"{label}: {report.n_params:,} parameters, {report.flops:.3e} FLOPs, "
                f"{report.coverage_pct:.1f}% of ops priced",
                caption=caption, summary="; ".join(analysis.notes)),
         fmt=fmt, output=output)
