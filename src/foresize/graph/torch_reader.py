"""Read a PyTorch module into a ModelGraph by exporting it to ONNX.

Going through ONNX means one set of op rules prices both front ends. The TorchScript
exporter (``dynamo=False``) is used: with torch 2.13 on CPU it exports a small model in a
tenth of a second where the dynamo exporter takes over a second and pulls in onnxscript,
and both give the same Gemm/Conv graph for the layers the rules price. torch stays an
optional extra, so it is imported inside the functions that need it.
"""

from __future__ import annotations

import copy
import importlib
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foresize.core.errors import InputError
from foresize.graph.model import ModelGraph
from foresize.graph.onnx_reader import read_onnx

if TYPE_CHECKING:
    from torch import nn

TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
# dtypes an example input may name (--input NAME:SHAPE:DTYPE): torch's names and ours
INPUT_DTYPES = {
    **TORCH_DTYPES, **{v: v for v in TORCH_DTYPES.values()},
    "int64": "int64", "long": "int64", "int32": "int32", "int": "int32",
    "bool": "bool", "uint8": "uint8", "int8": "int8",
}  # fmt: skip
OPSET = 17


@dataclass(frozen=True, slots=True)
class ExampleInput:
    """One example input: its shape and torch dtype name (None: the model's float dtype).

    Integer inputs are token ids or positions and are fed zeros, a valid id in every
    vocabulary; boolean ones are masks and are fed ones (attend everywhere), so that a
    mask does not empty a softmax row; floating-point ones are zeros in the model's dtype.
    """

    shape: tuple[int, ...]
    dtype: str | None = None


ExampleShapes = (
    Mapping[str, Sequence[int] | ExampleInput] | Sequence[Sequence[int] | ExampleInput]
)


def import_torch() -> Any:
    """The torch module, or an InputError that says how to get it."""
    try:
        import torch  # optional extra: imported on use
    except ImportError:
        raise InputError(
            "reading a PyTorch model needs torch; install foresize[torch]"
        ) from None
    return torch


def load_factory(spec: str) -> nn.Module:
    """Call ``module:factory`` with no arguments; any failure is one InputError naming it."""
    torch = import_torch()
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InputError(f"{spec!r} is not MODULE:FACTORY (e.g. mypkg.models:build)")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
        model = factory()
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise InputError(f"{spec}: {type(exc).__name__}: {reason}".rstrip(": ")) from None
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"{spec}: returned {type(model).__name__}, expected a torch.nn.Module")
    built: nn.Module = model  # torch is untyped here, so name the type for callers
    return built


def export_onnx(
    model: nn.Module | str,
    example_shapes: ExampleShapes,
    path: str | Path,
    *,
    dtype: str = "fp32",
    dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
) -> Path:
    """Export ``model`` in eval mode, fed example inputs of ``example_shapes``, to ONNX.

    ``example_shapes`` names each input (``{"x": (1, 3, 224, 224)}``) or lists them in
    order (inputs are then ``input_0``, ``input_1``, ...); an :class:`ExampleInput` gives
    a dtype too (``ExampleInput((1, 128), "int64")`` for token ids). ``dtype`` casts a
    copy of the model and its floating-point inputs, so the graph's tensors carry that
    precision. ``dynamic_axes``
    (``{"x": {0: "batch"}}``) leaves dims symbolic, for graphs meant to be bound later.
    """
    torch = import_torch()
    if dtype not in TORCH_DTYPES:
        raise InputError(f"dtype {dtype!r} is not one of {', '.join(TORCH_DTYPES)}")
    module = load_factory(model) if isinstance(model, str) else model
    torch_dtype = getattr(torch, TORCH_DTYPES[dtype])
    if dtype != "fp32":
        module = copy.deepcopy(module).to(torch_dtype)
    shapes = (
        dict(example_shapes)
        if isinstance(example_shapes, Mapping)
        else {f"input_{i}": shape for i, shape in enumerate(example_shapes)}
    )
    args = tuple(_example(torch, spec, torch_dtype) for spec in shapes.values())
    path = Path(path)
    was_training = module.training
    module.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
            torch.onnx.export(
                module, args, str(path), input_names=list(shapes), dynamo=False,
                opset_version=OPSET,
                dynamic_axes={k: dict(v) for k, v in (dynamic_axes or {}).items()} or None,
            )
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        name = model if isinstance(model, str) else type(module).__name__
        raise InputError(f"{name}: ONNX export failed ({reason})") from None
    finally:
        module.train(was_training)
    return path


def _example(torch: Any, spec: Sequence[int] | ExampleInput, float_dtype: Any) -> Any:
    """The tensor fed for one example input (see :class:`ExampleInput` for the values)."""
    if not isinstance(spec, ExampleInput):
        return torch.zeros(tuple(spec), dtype=float_dtype)
    if spec.dtype is not None and spec.dtype not in INPUT_DTYPES:
        raise InputError(f"input dtype {spec.dtype!r} is not one of {', '.join(INPUT_DTYPES)}")
    dtype = float_dtype if spec.dtype is None else getattr(torch, INPUT_DTYPES[spec.dtype])
    if dtype.is_floating_point:
        return torch.zeros(spec.shape, dtype=float_dtype)
    if dtype == torch.bool:
        return torch.ones(spec.shape, dtype=dtype)
    return torch.zeros(spec.shape, dtype=dtype)


def read_torch(
    model: nn.Module | str, example_shapes: ExampleShapes, *, dtype: str = "fp32"
) -> ModelGraph:
    """A ModelGraph of ``model`` (a module, or ``"module:factory"``) at the given shapes.

    The ONNX file lives in a temporary folder only for the read.
    """
    with tempfile.TemporaryDirectory(prefix="foresize-") as folder:
        path = export_onnx(model, example_shapes, Path(folder) / "model.onnx", dtype=dtype)
        graph = read_onnx(path)
    name = model if isinstance(model, str) else type(model).__name__
    return ModelGraph(
        name=name, nodes=graph.nodes, tensors=graph.tensors, inputs=graph.inputs,
        outputs=graph.outputs, constants=graph.constants, source=name,
    )
