"""Any architecture transformers knows, sized by running it on fake tensors.

The closed-form families of :mod:`foresize.graph.hf_config` are exact and instant, and stay
the default for the families they cover. Any other ``model_type`` that the optional
``transformers`` package can build is sized here instead, with nothing downloaded and no
weight allocated:

- the model is built from its config under ``FakeTensorMode``: every parameter and
  activation has a shape and a dtype but no storage, so a 70B model costs the memory of its
  Python objects;
- **parameters** are counted from the built modules (``model.parameters()`` yields a tied
  weight once), so they are exact for that class;
- **FLOPs** are one forward pass of ``batch`` sequences of ``context`` tokens under
  ``torch.utils.flop_counter.FlopCounterMode``, with SDPA on its MATH backend so that
  attention is counted (the CPU flash kernel has no FLOP formula);
- **memory** is torch's ``MemTracker`` over the same forward (without autograd, the
  prefill of a generation: ``use_cache`` keeps its KV cache) and, for training, over one
  step (forward, backward from a gradient of the output, the optimizer step): it follows
  every tensor's lifetime as eager PyTorch frees it, views and saved tensors included.

The figures are eager PyTorch's on one device in ``dtype`` throughout: a bf16 step keeps no
fp32 master copy and its optimizer moments are bf16 (PyTorch's optimizers keep state in
the parameter's dtype), unlike the closed form's mixed-precision convention.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from foresize.core.errors import InputError

PATH = "transformers on fake tensors (FlopCounterMode, MemTracker)"
TORCH_DTYPE = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
# keys a config may give its longest context under
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "seq_length", "max_seq_len")


def transformers_available() -> bool:
    """Whether the optional torch and transformers packages are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "transformers"))


def size_with_transformers(
    config: Mapping[str, Any],
    *,
    batch: int = 1,
    context: int | None = None,
    dtype: str = "bf16",
    train: bool = False,
    optimizer: str = "adamw",
) -> dict[str, Any]:
    """Parameters, forward FLOPs and eager memory of the model ``config`` describes.

    ``config`` is a parsed config.json; ``context`` defaults to the config's longest
    context. The report says which path produced it (``path``).
    """
    if dtype not in TORCH_DTYPE:
        raise InputError(f"dtype {dtype!r} is not one of {', '.join(TORCH_DTYPE)}")
    import torch  # optional extras: imported on use
    from torch._subclasses.fake_tensor import FakeTensorMode

    settings = dict(config)
    model_type = settings.pop("model_type", None)
    if not isinstance(model_type, str):
        raise InputError("config: no model_type, so transformers cannot build it")
    context = context or _longest_context(settings)
    torch_dtype = getattr(torch, TORCH_DTYPE[dtype])
    with FakeTensorMode(allow_non_fake_inputs=True), warnings.catch_warnings():
        # ModTracker doubts its module hierarchy when a model runs more than once
        warnings.filterwarnings("ignore", message="The module hierarchy tracking")
        model, seq2seq = _build(model_type, settings, torch_dtype)
        n_params = sum(p.numel() for p in model.parameters())
        ids = torch.zeros(batch, context, dtype=torch.long)
        inputs = {"input_ids": ids, **({"decoder_input_ids": ids} if seq2seq else {})}
        flops = _forward_flops(model, inputs)
        inference = _inference_peak(model, inputs)
        report: dict[str, Any] = {
            "path": PATH,
            "model_type": model_type,
            "class": type(model).__name__,
            "parameters": {"total": n_params},
            "flops": {"convention": "1 multiply-add = 2 FLOPs", "forward": flops,
                      "forward_per_token": flops / (batch * context), "context": context},
            "inference": {"batch": batch, "context": context, "dtype": dtype, **inference},
        }  # fmt: skip
        if train:
            step = _training_peak(model, inputs, optimizer)
            report["training"] = {"optimizer": optimizer, **step}
    return report


def _longest_context(settings: Mapping[str, Any]) -> int:
    """The config's longest context, or an error asking for ``--context``."""
    for key in CONTEXT_KEYS:
        value = settings.get(key)
        if isinstance(value, int) and value > 0:
            return value
    raise InputError(f"config: none of {', '.join(CONTEXT_KEYS)}; give --context")


def _build(model_type: str, settings: dict[str, Any], torch_dtype: Any) -> tuple[Any, bool]:
    """The model with its language-model head where transformers has one; seq2seq or not."""
    import transformers

    try:
        config = transformers.AutoConfig.for_model(model_type, **settings)
    except (ValueError, KeyError) as exc:
        raise InputError(f"transformers cannot read model_type {model_type!r}: {exc}") from None
    autos: tuple[tuple[Any, bool], ...] = (
        (transformers.AutoModelForCausalLM, False),
        (transformers.AutoModelForSeq2SeqLM, True),
        (transformers.AutoModel, False),
    )
    for auto, seq2seq in autos:
        try:
            model = auto.from_config(config, dtype=torch_dtype)
        except ValueError:  # no class of this kind for the config
            continue
        return model, seq2seq or bool(getattr(config, "is_encoder_decoder", False))
    raise InputError(f"transformers has no model class for model_type {model_type!r}")


@contextmanager
def _math_attention() -> Iterator[None]:
    """SDPA on its MATH backend, whose matmuls FlopCounterMode counts."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        yield


def _forward_flops(model: Any, inputs: dict[str, Any]) -> int:
    """FLOPs of one forward pass without autograd."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), _math_attention(), FlopCounterMode(display=False) as counter:
        model(**inputs, use_cache=False)
    return int(counter.get_total_flops())


def _tracked(snapshot: Mapping[Any, Mapping[Any, int]]) -> dict[str, int]:
    """MemTracker's peak snapshot (one device) by category name, lower-case."""
    (by_kind,) = snapshot.values()
    return {str(getattr(kind, "value", kind)).lower(): int(n) for kind, n in by_kind.items()}


def _inference_peak(model: Any, inputs: dict[str, Any]) -> dict[str, int]:
    """Weights and the activation peak (the KV cache kept) of one prefill."""
    import torch
    from torch.distributed._tools.mem_tracker import MemTracker

    model.eval()
    tracker = MemTracker()
    tracker.track_external(model)
    with tracker, torch.no_grad():
        model(**inputs, use_cache=True)
    peak = _tracked(tracker.get_tracker_snapshot("peak"))
    weights = peak["parameter"] + peak["buffer"]
    return {"weight_bytes": weights, "peak_activation_bytes": peak["total"] - weights,
            "total_bytes": peak["total"]}  # fmt: skip


OPTIMIZERS: Mapping[str, tuple[str, dict[str, Any]]] = {
    "sgd": ("SGD", {"lr": 1e-3}),
    "sgd_momentum": ("SGD", {"lr": 1e-3, "momentum": 0.9}),
    "adam": ("Adam", {}),
    "adamw": ("AdamW", {}),
}


def _training_peak(model: Any, inputs: dict[str, Any], optimizer: str) -> dict[str, Any]:
    """The peak of one step (optimizer state created by a step before it), by component."""
    import torch
    from torch.distributed._tools.mem_tracker import MemTracker

    if optimizer not in OPTIMIZERS:
        raise InputError(f"optimizer {optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
    name, options = OPTIMIZERS[optimizer]
    opt = getattr(torch.optim, name)(model.parameters(), foreach=False, **options)
    model.train()

    def step() -> None:
        out = model(**inputs, use_cache=False)[0]
        out.backward(torch.ones_like(out))
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # the state exists before the step that is measured, as in steady training
    tracker = MemTracker()
    tracker.track_external(model, opt)
    with tracker:
        step()
    peak = _tracked(tracker.get_tracker_snapshot("peak"))
    components = {
        "weights": peak["parameter"] + peak["buffer"],
        "gradients": peak["gradient"],
        "optimizer_state": peak["optstate"],
        "activations": peak["activation"] + peak["temp"] + peak["other"],
    }
    return {"components_bytes": components, "total_bytes": peak["total"]}
