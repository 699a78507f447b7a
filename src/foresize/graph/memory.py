"""Inference and training memory of a transformer, from its Architecture alone.

Every figure is per device and in bytes, broken down by named component, so a user can
see *why* a 7B model needs 108 GB to train and what each knob (precision, optimizer,
activation recomputation, ZeRO, tensor parallelism) takes away.

Sources for the formulas:

- Training state, 16 bytes/param for mixed-precision Adam (2 weights + 2 grads + 4 fp32
  master + 4 + 4 moments), and ZeRO stages 1/2/3 partitioning optimizer state, then
  gradients, then weights across the data-parallel group: Rajbhandari et al. 2020, "ZeRO:
  Memory Optimizations Toward Training Trillion Parameter Models", section 3.1 and figure 1.
- Saved activations per transformer layer, ``sbh(34 + 5as/h)`` bytes for GPT-style blocks
  in 16-bit with dropout, and ``sbh(10 + 24/t + 5as/(ht))`` under tensor parallelism ``t``:
  Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models",
  section 4.1. :func:`layer_activation_bytes` generalises it to grouped-query attention,
  gated MLPs, other intermediate sizes and fused (flash) attention, and reproduces it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from foresize.core.errors import InputError, UnknownNameError
from foresize.graph.hf_config import Architecture

# Bytes per element. int4 packs two weights per byte; quantisation scales (about 3% more
# at a group size of 128 with fp16 scales) are not counted.
DTYPE_BYTES: Mapping[str, float] = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1, "int4": 0.5}
FP32_BYTES = 4
# Extra fp32 copies each optimizer keeps per parameter (momentum; Adam's two moments).
OPTIMIZER_MOMENTS: Mapping[str, int] = {"sgd": 0, "sgd_momentum": 1, "adam": 2, "adamw": 2}

Precision = Literal["fp32", "bf16", "fp16"]
Attention = Literal["eager", "flash"]
Recompute = Literal["none", "full"]


@dataclass(frozen=True, slots=True)
class MemoryBreakdown:
    """Per-device memory in bytes, by named component (all in the same units)."""

    components: Mapping[str, int]

    @property
    def total_bytes(self) -> int:
        """Sum of the components."""
        return sum(self.components.values())


def dtype_bytes(dtype: str) -> float:
    """Bytes per element of ``dtype``; an unknown name lists the valid ones."""
    if dtype not in DTYPE_BYTES:
        raise UnknownNameError("dtype", dtype, list(DTYPE_BYTES))
    return DTYPE_BYTES[dtype]


def weight_bytes(arch: Architecture, dtype: str) -> int:
    """Bytes of all weights stored in ``dtype`` (int4 rounds up to whole bytes)."""
    return math.ceil(arch.n_params * dtype_bytes(dtype))


def decode_weight_bytes(arch: Architecture, dtype: str, *, batch: int) -> int:
    """Weights one decode step reads for ``batch`` sequences (one new token each).

    A dense model reads all of them. A mixture of experts reads its shared weights and
    only the routed experts some token of the step is sent to: with uniform routing a token
    leaves a given expert out with probability ``1 - k / E``, so an expert goes unread by
    all ``batch`` tokens with probability ``(1 - k / E) ** batch``. At batch 1, Mixtral
    (2 of 8) reads a quarter of its experts; by batch 16, 99 % of them. An
    encoder-decoder's step runs the decoder only: the encoder's weights are not read.
    """
    _check_positive(batch=batch)
    size = Fraction(dtype_bytes(dtype))
    total = weight_bytes(arch, dtype) - math.floor(Fraction(arch.encoder_params) * size)
    if arch.n_experts == 1:
        return total
    experts = Fraction(arch.params["experts"]) * size
    unread = Fraction(arch.n_experts - arch.experts_per_token, arch.n_experts) ** batch
    return total - math.floor(experts * unread)


def kv_cache_bytes(arch: Architecture, *, batch: int, context: int, dtype: str = "fp16") -> int:
    """Keys and values cached by a decoder: batch x positions x the layer's cache width.

    The width is ``2 x kv_heads x head_dim`` (MLA: its latent, ``Architecture.kv_cache_width``);
    positions are summed over layers: a sliding-window layer caches at most its window and
    an encoder-decoder's layer also caches the source's cross-attention keys and values
    (``Architecture.attended_tokens``). Encoders (bert) keep no cache: they see the whole
    input in one pass.
    """
    if not arch.is_decoder:
        return 0
    elements = batch * arch.attended_tokens(context) * arch.kv_cache_width
    return math.ceil(elements * dtype_bytes(dtype))


def inference_workspace_bytes(arch: Architecture, *, batch: int, context: int, dtype: str) -> int:
    """Transient memory of one forward pass over ``batch x context`` tokens (the prefill).

    Layers run one after another and free their temporaries, so the peak is one block's
    widest point: the residual stream and its normalised copy (2 x hidden) beside the MLP's
    up-projections (2 x intermediate when gated, since gate and up are alive together;
    1 x otherwise), in the activation dtype (int weights still compute in 16-bit). Fused
    attention is assumed, so no context x context score matrix is materialised. Decoders
    add the last position's logits in fp32. An estimate: kernels' scratch space and the
    allocator's fragmentation are not modelled.
    """
    act_bytes = FP32_BYTES if dtype_bytes(dtype) == FP32_BYTES else 2
    mlp_width = (2 if arch.gated_mlp else 1) * arch.active_intermediate
    block = batch * context * (2 * arch.hidden + mlp_width) * act_bytes
    logits = batch * arch.vocab * FP32_BYTES if arch.is_decoder else 0
    return math.ceil(block + logits)


def inference_memory(
    arch: Architecture,
    *,
    dtype: str = "bf16",
    batch: int = 1,
    context: int | None = None,
    kv_dtype: str | None = None,
    tensor_parallel: int = 1,
) -> MemoryBreakdown:
    """Weights + KV cache + workspace for serving ``batch`` sequences of ``context`` tokens.

    ``context`` defaults to the model's ``max_positions``; ``kv_dtype`` to fp16 for
    quantised weights and to ``dtype`` otherwise. Tensor parallelism shards every
    component across ``tensor_parallel`` devices (heads and MLP columns are split).
    """
    context = _context(arch, context)
    _check_positive(batch=batch, tensor_parallel=tensor_parallel)
    kv_dtype = kv_dtype or (dtype if dtype in ("fp32", "bf16", "fp16") else "fp16")
    components = {
        "weights": weight_bytes(arch, dtype),
        "kv_cache": kv_cache_bytes(arch, batch=batch, context=context, dtype=kv_dtype),
        "workspace": inference_workspace_bytes(arch, batch=batch, context=context, dtype=dtype),
    }
    return MemoryBreakdown({k: _shard(v, tensor_parallel) for k, v in components.items()})


def layer_activation_bytes(
    arch: Architecture,
    *,
    batch: int,
    seq: int,
    precision: Precision = "bf16",
    attention: Attention = "flash",
    tensor_parallel: int = 1,
) -> int:
    """Activations one transformer block saves for its backward pass.

    Following Korthikanti et al. (2022, section 4.1), with ``T = batch x seq`` tokens and
    ``B`` bytes per activation:

    - replicated across tensor-parallel ranks: the inputs of both norms, of the QKV
      projection and of the MLP (``4 B T h``), and two dropout masks (``2 T h``, 1 byte each)
      when the model trains with dropout;
    - split across ranks: Q and K for the scores, V, the output projection's input
      (``B T (2 q + 2 kv)``), the MLP's hidden (``2 B T i``, or ``4 B T i`` for a gated MLP:
      gate, up, activated gate, product; a mixture of experts keeps it for each of the
      ``experts_per_token`` experts a token is routed to), and attention probabilities:
      eager attention keeps
      the softmax output (``B b a s^2``) and, with dropout, its mask and output
      (``(B + 1) b a s^2``); fused attention keeps only the fp32 log-sum-exp (``4 b a s``).
    """
    size = _activation_dtype_bytes(precision)
    tokens = batch * seq
    dropout_mask = 1 if arch.has_dropout else 0
    replicated = tokens * arch.hidden * (4 * size + 2 * dropout_mask)
    projections = size * tokens * (2 * arch.attention_width + 2 * arch.kv_width)
    mlp = size * tokens * arch.active_intermediate * (4 if arch.gated_mlp else 2)
    squares = batch * arch.n_heads * seq * seq
    if attention == "eager":
        scores = squares * (size + (size + dropout_mask if arch.has_dropout else 0))
    else:
        scores = FP32_BYTES * batch * arch.n_heads * seq
    return replicated + _shard(projections + mlp + scores, tensor_parallel)


def training_memory(
    arch: Architecture,
    *,
    batch: int,
    seq: int,
    precision: Precision = "bf16",
    optimizer: str = "adamw",
    attention: Attention = "flash",
    recompute: Recompute = "none",
    zero_stage: Literal[0, 1, 2, 3] = 0,
    data_parallel: int = 1,
    tensor_parallel: int = 1,
) -> MemoryBreakdown:
    """Memory of one training step on one device, by component.

    ``precision`` is the compute dtype: fp32 trains in full precision; bf16 and fp16 are
    mixed precision and keep an fp32 master copy of the weights. ``zero_stage`` 1, 2 and 3
    divide optimizer state (master weights and moments), then gradients, then weights by
    ``data_parallel``; ``tensor_parallel`` divides all of them and most activations.
    ``recompute="full"`` keeps only each layer's input and recomputes one layer at a time
    in the backward pass, whose activations are then the ``recompute_workspace``.
    """
    _check_positive(
        batch=batch, seq=seq, data_parallel=data_parallel, tensor_parallel=tensor_parallel
    )
    if optimizer not in OPTIMIZER_MOMENTS:
        raise UnknownNameError("optimizer", optimizer, list(OPTIMIZER_MOMENTS))
    if zero_stage not in (0, 1, 2, 3):
        raise InputError(f"zero_stage must be 0, 1, 2 or 3, got {zero_stage!r}")
    state = _model_state(arch, precision, optimizer)
    # ZeRO stage s shards the state kinds listed up to s (stage 1: optimizer only, ...).
    zero_sharded = ("master_weights", "optimizer_state", "gradients", "weights")
    n_kinds = {0: 0, 1: 2, 2: 3, 3: 4}[zero_stage]
    components = {
        kind: _shard(_shard(n, tensor_parallel), data_parallel)
        if kind in zero_sharded[:n_kinds]
        else _shard(n, tensor_parallel)
        for kind, n in state.items()
    }
    components |= _activation_components(
        arch, batch, seq, precision, attention, recompute, tensor_parallel
    )
    return MemoryBreakdown(components)


def _model_state(arch: Architecture, precision: Precision, optimizer: str) -> dict[str, int]:
    """Weights, gradients, fp32 master weights and optimizer moments, unsharded."""
    size = _activation_dtype_bytes(precision)
    mixed = precision != "fp32"
    return {
        "weights": arch.n_params * size,
        "gradients": arch.n_params * size,
        "master_weights": arch.n_params * FP32_BYTES if mixed else 0,
        "optimizer_state": arch.n_params * FP32_BYTES * OPTIMIZER_MOMENTS[optimizer],
    }


def _activation_components(
    arch: Architecture,
    batch: int,
    seq: int,
    precision: Precision,
    attention: Attention,
    recompute: Recompute,
    tensor_parallel: int,
) -> dict[str, int]:
    """Saved activations of all layers, the recompute workspace and the fp32 logits.

    An encoder-decoder's encoder layers are sized like its decoder layers (the decoder's
    cross-attention inputs are not counted on top).

    The loss upcasts logits to fp32 (``4 b s v``, split by vocabulary across tensor-parallel
    ranks as Megatron does); encoders without an LM head have none.
    """
    per_layer = layer_activation_bytes(
        arch,
        batch=batch,
        seq=seq,
        precision=precision,
        attention=attention,
        tensor_parallel=tensor_parallel,
    )
    layer_input = batch * seq * arch.hidden * _activation_dtype_bytes(precision)
    logits = batch * seq * arch.vocab * FP32_BYTES if arch.is_decoder else 0
    n_layers = arch.n_layers + arch.n_encoder_layers
    if recompute == "full":
        saved, workspace = n_layers * layer_input, per_layer
    else:
        saved, workspace = n_layers * per_layer, 0
    return {
        "activations": saved,
        "recompute_workspace": workspace,
        "logits": _shard(logits, tensor_parallel),
    }


def _activation_dtype_bytes(precision: Precision) -> int:
    """Bytes of one activation (and weight) element in the compute precision."""
    if precision not in ("fp32", "bf16", "fp16"):
        raise InputError(f"training precision must be fp32, bf16 or fp16, got {precision!r}")
    return FP32_BYTES if precision == "fp32" else 2


def _shard(n_bytes: int, degree: int) -> int:
    """Bytes on the device holding the largest of ``degree`` equal shards."""
    return -(-n_bytes // degree)


def _context(arch: Architecture, context: int | None) -> int:
    """The context length asked for, else the model's maximum."""
    if context is None:
        if arch.max_positions is None:
            raise InputError(
                f"{arch.model_type} config sets no max_position_embeddings; pass a context length"
            )
        return arch.max_positions
    _check_positive(context=context)
    return context


def _check_positive(**values: int) -> None:
    """Reject zero or negative sizes with the parameter's name."""
    for name, value in values.items():
        if value < 1:
            raise InputError(f"{name} must be a positive integer, got {value}")
