"""The static analysis of a graph in one call: FLOPs, inference and training memory and
roofline time, with the summary and the notes ``foresize profile model`` prints.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from foresize.core.parallel import Meanwhile
from foresize.core.units import human_bytes
from foresize.graph.devices import allreduce_time, get_device
from foresize.graph.flops import FlopReport, analyze_flops, roofline_rows
from foresize.graph.liveness import (
    InferenceMemory,
    graph_precision,
    inference_memory,
    training_memory,
)
from foresize.graph.memory import DTYPE_BYTES, FP32_BYTES
from foresize.graph.model import FORK_NODES, ModelGraph, collector_paused

if TYPE_CHECKING:  # loaded by the FLOP rows, after the graph is read
    import polars as pl

@dataclass(frozen=True, slots=True)
class GraphRequest:
    """What the analysis of a graph was asked for (dims bound, precision, device, training)."""

    dims: dict[str, int]
    dtype: str | None
    device: str | None
    train: bool
    optimizer: str
    top: int
    strict: bool
    by_layer: bool = False
    zero_stage: int = 0
    data_parallel: int = 1
    recompute: str = "none"
    train_bn: bool = False


@dataclass(frozen=True, slots=True)
class GraphAnalysis:
    """The FLOP report, its rows (with roofline time when a device was given), the
    summary document and one note per figure for people.
    """

    flops: FlopReport
    rows: pl.DataFrame
    summary: dict[str, Any]
    notes: list[str]


@collector_paused()
def analyze_graph(graph: ModelGraph, request: GraphRequest) -> GraphAnalysis:
    """FLOPs per op, memory by liveness, a training step and roofline time, as asked.

    On a graph of ``FORK_NODES`` nodes or more, inference memory is found in a forked
    child while this process counts FLOPs: both are passes of pure Python over every
    node, a second and more each at 200k nodes. Where the child cannot deliver, it is
    found here, after the FLOPs, as on smaller graphs (so errors come in the same order).
    """
    with Meanwhile(lambda: _encoded(inference_memory(graph, dtype=request.dtype)),
                   enabled=len(graph.nodes) >= FORK_NODES) as child:
        report = analyze_flops(graph, strict=request.strict)
        data = child.result()
    memory = (_decoded(data) if data is not None
              else inference_memory(graph, dtype=request.dtype))
    precision = request.dtype or graph_precision(graph)
    rows = report.rows
    summary: dict[str, Any] = {
        "parameters": report.n_params, "param_bytes": graph.param_bytes,
        "flops": report.flops, "macs": report.macs,
        "bytes_read": report.bytes_read, "bytes_written": report.bytes_written,
        "coverage_pct": report.coverage_pct, "unsupported": report.unsupported,
        "unresolved": report.unresolved, "dims": request.dims,
        "convention": "1 multiply-add = 2 FLOPs",
        "inference": {"dtype": precision, "weight_bytes": memory.weight_bytes,
                      "peak_activation_bytes": memory.peak_activation_bytes,
                      "peak_node": memory.peak_node, "total_bytes": memory.total_bytes,
                      "unsized_tensors": list(memory.unsized)},
    }
    notes = [f"memory ({precision}): weights {human_bytes(memory.weight_bytes)} + peak "
             f"activations {human_bytes(memory.peak_activation_bytes)} (at {memory.peak_node})"]
    if request.train:
        step = training_memory(graph, optimizer=request.optimizer, dtype=request.dtype,
                               zero_stage=request.zero_stage,
                               data_parallel=request.data_parallel,
                               recompute=request.recompute, train_bn=request.train_bn)
        summary["training"] = {"optimizer": step.optimizer, "precision": step.precision,
                               "zero_stage": request.zero_stage,
                               "data_parallel": request.data_parallel,
                               "recompute": request.recompute,
                               "train_bn": request.train_bn,
                               "components_bytes": dict(step.components),
                               "total_bytes": step.total_bytes, "n_saved_tensors": len(step.saved)}
        parts = ", ".join(f"{k} {human_bytes(v)}" for k, v in step.components.items())
        sharded = (f", ZeRO-{request.zero_stage} over {request.data_parallel} ranks"
                   if request.zero_stage and request.data_parallel > 1 else "")
        sharded += ", blocks recomputed" if request.recompute == "full" else ""
        notes.append(f"training step ({step.optimizer}{sharded}): "
                     f"{human_bytes(step.total_bytes)} = {parts}")
    if request.device is not None:
        rows = roofline_rows(report, request.device, precision)
        total_s = float(rows["time_s"].sum())
        summary["roofline"] = {"device": request.device, "dtype": precision, "time_s": total_s,
                               "convention": "sum of per-op lower bounds"}
        notes.append(f"roofline on {request.device} ({precision}): {total_s:.4g} s, "
                     "the sum of per-op lower bounds")
        if request.train:
            timing = training_step_time(graph, total_s, request)
            summary["roofline"]["training_step"] = timing
            notes.append(f"training step: {timing['step_s']:.4g} s (forward, backward and the "
                         f"{request.optimizer} update; gradient all-reduce "
                         f"{timing['gradient_allreduce_s']:.4g} s over {request.data_parallel} "
                         "ranks, overlapping the backward)")
    return GraphAnalysis(report, rows, summary, notes)


def _encoded(memory: InferenceMemory) -> bytes:
    """``memory`` as JSON, for the child that found it to send (exact for any integer)."""
    return json.dumps(asdict(memory), separators=(",", ":")).encode()


def _decoded(data: bytes) -> InferenceMemory:
    """The ``InferenceMemory`` that :func:`_encoded` sent."""
    fields = json.loads(data)
    return InferenceMemory(fields["weight_bytes"], fields["peak_activation_bytes"],
                           fields["peak_node"], tuple(fields["live_bytes"]),
                           tuple(fields["unsized"]))


# fp32 words one optimizer step reads and writes per trainable parameter: the weight and
# its gradient read, the weight written, and each moment read and written
OPTIMIZER_WORDS = {"sgd": 3, "sgd_momentum": 5, "adam": 7, "adamw": 7}


def training_step_time(
    graph: ModelGraph, forward_s: float, request: GraphRequest
) -> dict[str, Any]:
    """Roofline of one training step of ``graph`` from its forward's per-op lower bounds.

    The backward of each op costs twice its forward, in FLOPs and in bytes (the gradients
    of its input and of its weight are each a product the size of the forward's), so the
    step's compute is three forward passes, four under full recompute. The optimizer update
    is memory-bound: ``OPTIMIZER_WORDS`` fp32 words per trainable parameter, sharded over
    the data-parallel ranks from ZeRO stage 1. The gradient all-reduce over those ranks is
    priced apart (NCCL ring with latency) because DDP overlaps it with the backward.
    """
    device = get_device(request.device or "")
    passes = 4 if request.recompute == "full" else 3
    update = graph.n_params * FP32_BYTES * OPTIMIZER_WORDS[request.optimizer]
    if request.zero_stage >= 1:
        update = -(-update // request.data_parallel)
    update_s = update / device.bandwidth_bytes_per_s
    grad_bytes = graph.n_params * DTYPE_BYTES[request.dtype or graph_precision(graph)]
    allreduce_s = (allreduce_time(grad_bytes, request.data_parallel, device)
                   if request.data_parallel > 1 else 0.0)
    return {"step_s": passes * forward_s + update_s, "compute_passes": passes,
            "optimizer_update_s": update_s, "gradient_allreduce_s": allreduce_s}
