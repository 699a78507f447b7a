"""Size a model from its architecture alone: parameters, FLOPs, memory, devices, time.

Composes ``hf_config`` (what the model is), ``memory`` (what it holds) and ``devices``
(what runs it) into one report, the answer a job owner needs before asking for GPUs.
Times are roofline lower bounds: a prefill pass is usually compute-bound, a decode step
memory-bound (every weight and the KV cache are read once per generated token). A model
that needs several devices is timed split over them by tensor parallelism (or over
``--tp`` when that is more): each device reads its share, and the per-layer all-reduces
are priced from the catalogue's device-to-device bandwidth and NCCL's latencies.

Pipeline parallelism (``pipeline_parallel`` stages, Huang et al. 2019; Narayanan et al.
2021) splits the layers evenly, so each device holds ``1 / pp`` of the weights, training
state and KV cache. A forward pass crosses the stages one after another: prefill and
decode take the sum of the stages' times plus one activation send per boundary. A training
step runs the batch as one-sequence microbatches ``m`` on a 1F1B schedule: each device
holds the activations of at most ``pp`` microbatches of its layers, and the step takes the
ideal ``1 / pp`` share stretched by the bubble, ``(m + pp - 1) / m``, plus two sends per
microbatch slot on the critical path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from foresize.graph.devices import (
    Device,
    allreduce_time,
    fits,
    get_device,
    roofline_time,
    send_time,
)
from foresize.graph.hf_config import Architecture
from foresize.graph.memory import (
    MemoryBreakdown,
    Precision,
    decode_weight_bytes,
    inference_memory,
    kv_cache_bytes,
    training_memory,
)


@dataclass(frozen=True, slots=True)
class SizingRequest:
    """What to size for: the batch, context and dtype, and optionally a training step."""

    batch: int = 1
    context: int | None = None  # tokens; default the model's max positions
    dtype: Precision = "bf16"
    device: str = "h100_sxm"
    train: bool = False
    optimizer: str = "adamw"
    zero_stage: Literal[0, 1, 2, 3] = 0
    data_parallel: int = 1
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    recompute: Literal["none", "full"] = "none"


def _memory_rows(breakdown: MemoryBreakdown) -> dict[str, Any]:
    return {"components_bytes": dict(breakdown.components), "total_bytes": breakdown.total_bytes}


def _tp_allreduce_s(arch: Architecture, tokens: int, degree: int, device: Device, dtype: str,
                    *, layers: int) -> float:
    """Tensor-parallel communication of one forward pass over ``tokens`` tokens.

    Megatron-style tensor parallelism all-reduces the ``tokens x hidden`` activations twice
    per layer (after attention's output projection and after the MLP; Shoeybi et al. 2019,
    section 3), in the 16-bit activation dtype (fp32 when computing in fp32).
    """
    message = tokens * arch.hidden * (4 if dtype == "fp32" else 2)
    return 2 * layers * allreduce_time(message, degree, device)


CLOSED_FORM = "closed form (the family's formulas, hf_config)"


def _pp_send_s(arch: Architecture, tokens: int, stages: int, device: Device,
               dtype: str) -> float:
    """Activation sends of one pass over ``tokens`` tokens across ``stages`` pipeline stages:
    ``tokens x hidden`` in the activation dtype over each of the ``stages - 1`` boundaries.
    """
    if stages == 1:
        return 0.0
    message = tokens * arch.hidden * (4 if dtype == "fp32" else 2)
    return (stages - 1) * send_time(message, device)


def size_architecture(arch: Architecture, request: SizingRequest) -> dict[str, Any]:
    """The sizing report of ``arch`` for ``request``, as a JSON-ready dict."""
    context = request.context or arch.max_positions or 2048
    device = get_device(request.device)
    tokens = request.batch * context
    flops_per_token = arch.forward_flops_per_token(context=context)
    prefill_flops = arch.prefill_flops_per_token(context=context) * tokens
    inference = inference_memory(arch, dtype=request.dtype, batch=request.batch,
                                 context=context, tensor_parallel=request.tensor_parallel)
    needed = fits(inference.total_bytes * request.tensor_parallel, device)
    pp = request.pipeline_parallel
    # a model that does not fit its stages' devices is timed split over as many as hold it
    split = max(request.tensor_parallel, -(-needed // pp))
    per_device = inference_memory(arch, dtype=request.dtype, batch=request.batch,
                                  context=context, tensor_parallel=split).total_bytes / pp
    stage_s, prefill_bound = roofline_time(
        prefill_flops / (split * pp), per_device, device, request.dtype)
    prefill_comm_s = _tp_allreduce_s(arch, tokens, split, device, request.dtype,
                                     layers=arch.n_layers + arch.n_encoder_layers)
    prefill_send_s = _pp_send_s(arch, tokens, pp, device, request.dtype)
    flops: dict[str, Any] = {"convention": "1 multiply-add = 2 FLOPs",
                             "forward_per_token": flops_per_token, "context": context}
    if arch.is_encoder_decoder:  # the prefill is the encoder's pass over the source
        flops["encoder_per_token"] = arch.encoder_flops_per_token(context=context)
    flops["prefill"] = prefill_flops
    report: dict[str, Any] = {
        "path": CLOSED_FORM,
        "model_type": arch.model_type,
        "parameters": {"total": arch.n_params, "active": arch.n_active_params,
                       "by_component": dict(arch.params)},
        "flops": flops,
        "inference": {"batch": request.batch, "context": context, "dtype": request.dtype,
                      **_memory_rows(inference),
                      "devices_needed": needed, "tensor_parallel": split,
                      "pipeline_parallel": pp,
                      "prefill_s": pp * stage_s + prefill_comm_s + prefill_send_s,
                      "prefill_bound": prefill_bound, "prefill_allreduce_s": prefill_comm_s,
                      "prefill_send_s": prefill_send_s},
        "device": {"name": device.name, "memory_bytes": device.memory_bytes,
                   "bandwidth_bytes_per_s": device.bandwidth_bytes_per_s,
                   "peak_flops": device.peak(request.dtype)},
    }
    if arch.is_decoder:
        step_bytes = (decode_weight_bytes(arch, request.dtype, batch=request.batch)
                      + kv_cache_bytes(arch, batch=request.batch, context=context,
                                       dtype=request.dtype)) / (split * pp)
        decode_s, decode_bound = roofline_time(
            flops_per_token * request.batch / (split * pp), step_bytes, device, request.dtype)
        decode_comm_s = _tp_allreduce_s(arch, request.batch, split, device, request.dtype,
                                        layers=arch.n_layers)
        decode_s = pp * decode_s + decode_comm_s + _pp_send_s(
            arch, request.batch, pp, device, request.dtype)
        report["inference"].update(decode_step_s=decode_s, decode_bound=decode_bound,
                                   decode_allreduce_s=decode_comm_s,
                                   decode_tokens_per_s=request.batch / decode_s)
    if request.train:
        micro = request.batch  # one-sequence microbatches
        in_flight = micro if pp == 1 else min(pp, micro)  # 1F1B: at most pp on stage 1
        whole = training_memory(
            arch, batch=in_flight, seq=context, precision=request.dtype,
            optimizer=request.optimizer, recompute=request.recompute,
            zero_stage=request.zero_stage, data_parallel=request.data_parallel,
            tensor_parallel=request.tensor_parallel)
        training = MemoryBreakdown({k: -(-v // pp) for k, v in whole.components.items()})
        forward = arch.train_flops_per_token(context=context) * tokens
        step_flops = 3 * forward  # forward + backward (2x forward)
        if request.recompute == "full":
            step_flops += forward  # the forward pass again
        step_s, step_bound = roofline_time(step_flops / (request.tensor_parallel * pp),
                                           training.total_bytes, device, request.dtype)
        # forward and backward each all-reduce twice per layer (a stage's share of them)
        step_s += 2 * _tp_allreduce_s(arch, tokens, request.tensor_parallel, device,
                                      request.dtype,
                                      layers=arch.n_layers + arch.n_encoder_layers) / pp
        stretch = (micro + pp - 1) / micro
        send_s = 2 * (micro + pp - 2) * _pp_send_s(arch, context, 2, device, request.dtype)
        step_s = step_s * stretch + (send_s if pp > 1 else 0.0)
        report["training"] = {"optimizer": request.optimizer, "zero_stage": request.zero_stage,
                              "data_parallel": request.data_parallel,
                              "tensor_parallel": request.tensor_parallel,
                              "pipeline_parallel": pp, "microbatches": micro,
                              "bubble_fraction": (pp - 1) / (micro + pp - 1),
                              "recompute": request.recompute, **_memory_rows(training),
                              "fits_on_device": training.total_bytes
                              <= device.memory_bytes * 0.9,
                              "step_flops": step_flops, "step_s": step_s,
                              "step_bound": step_bound}
    return report
