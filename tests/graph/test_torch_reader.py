"""PyTorch reader: hand-counted FLOPs of a tiny nn.Sequential, factories, and torch absent.

Tests marked ``torch`` need the torch extra and run with ``python -m pytest -m torch``;
the torch-absent test runs everywhere.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from foresize.core.errors import InputError
from foresize.graph.flops import analyze_flops
from foresize.graph.torch_reader import read_torch

FACTORIES = '''
import torch

def build():
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))

def broken():
    raise RuntimeError("no weights here")

def not_a_module():
    return 42
'''


@pytest.fixture
def factories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "tiny_factories.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "tiny_factories"


@pytest.mark.torch
def test_sequential_flops_by_hand() -> None:
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    graph = read_torch(model, {"x": (3, 4)})
    assert graph.inputs == ("x",)
    report = analyze_flops(graph)
    # Gemm 3x4 @ 4x8: 96 MACs + 24 bias adds; Relu 24; Gemm 3x8 @ 8x2: 48 MACs + 6 adds
    assert report.macs == 96 + 48
    assert report.flops == 2 * 96 + 24 + 24 + 2 * 48 + 6
    assert report.n_params == 4 * 8 + 8 + 8 * 2 + 2
    assert report.coverage_pct == 100.0
    assert model.training  # the caller's mode is restored after the eval-mode export


@pytest.mark.torch
def test_factory_dtype_and_positional_shapes(factories: str) -> None:
    graph = read_torch(f"{factories}:build", [(3, 4)], dtype="fp16")
    assert graph.inputs == ("input_0",)
    assert graph.param_bytes == (4 * 8 + 8 + 8 * 2 + 2) * 2
    assert graph.name == f"{factories}:build"


@pytest.mark.torch
def test_bad_factories(factories: str) -> None:
    with pytest.raises(InputError, match=r"tiny_factories:broken: RuntimeError: no weights"):
        read_torch(f"{factories}:broken", {"x": (1, 4)})
    with pytest.raises(InputError, match=r"expected a torch\.nn\.Module"):
        read_torch(f"{factories}:not_a_module", {"x": (1, 4)})
    with pytest.raises(InputError, match="ModuleNotFoundError"):
        read_torch("no_such_module_here:build", {"x": (1, 4)})
    with pytest.raises(InputError, match="MODULE:FACTORY"):
        read_torch("just_a_name", {"x": (1, 4)})
    with pytest.raises(InputError, match="ONNX export failed"):
        read_torch(f"{factories}:build", {"x": (1, 5)})  # Linear(4, 8) gets 5 features


def test_torch_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(InputError, match=r"install foresize\[torch\]"):
        read_torch("anything:build", {"x": (1, 4)})


@pytest.mark.torch
def test_cli_sizes_a_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "zoo_factory.py").write_text(
        "import torch.nn as nn\n"
        "def build():\n"
        "    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from foresize.cli.main import main

    assert main(["profile", "model", "zoo_factory:build", "--input", "x=3,4", "-f", "json"]) == 0
    report = json.loads(capsys.readouterr().out)["model"]
    assert report["parameters"] == 4 * 8 + 8 + 8 * 2 + 2
    assert report["macs"] == 3 * (4 * 8 + 8 * 2)
    assert main(["profile", "model", "zoo_factory:build"]) == 2
    assert "needs example inputs" in capsys.readouterr().err


@pytest.mark.torch
def test_blocks_of_an_exported_model_are_its_indexed_modules() -> None:
    import torch

    from foresize.graph.flops import by_layer
    from foresize.graph.liveness import training_memory

    def block() -> torch.nn.Module:
        return torch.nn.Sequential(
            torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 16)
        )

    graph = read_torch(torch.nn.Sequential(block(), block(), block()), {"x": (256, 16)})
    assert by_layer(analyze_flops(graph))["layer"].to_list() == ["0", "1", "2"]
    # x and each block's output: 256 x 16 fp32 = 16 KiB; each ReLU output 64 KiB. At the
    # last ReLU's backward all are saved; checkpointed, only the block outputs and the
    # last block's ReLU output (rebuilt for its backward) are
    plain = training_memory(graph, optimizer="sgd")
    redo = training_memory(graph, optimizer="sgd", recompute="full")
    assert plain.components["saved_activations"] == 3 * 16384 + 3 * 65536
    assert redo.components["saved_activations"] == 3 * 16384 + 65536


TOKEN_MODEL = '''
import torch
from torch import nn

class Tagger(nn.Module):
    """Token ids and a boolean mask in, one score per token out."""

    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(100, 8)
        self.out = nn.Linear(8, 4)

    def forward(self, ids, mask):
        return self.out(self.tok(ids)).sum(-1).masked_fill(~mask, 0.0)

def build():
    return Tagger()
'''


@pytest.mark.torch
def test_cli_sizes_a_token_id_model_with_typed_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "token_factory.py").write_text(TOKEN_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    from foresize.cli.main import main

    args = ["profile", "model", "token_factory:build", "--input", "ids:2x16:int64",
            "--input", "mask:2x16:bool", "-f", "json"]  # fmt: skip
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)["model"]
    assert report["parameters"] == 100 * 8 + 8 * 4 + 4
    assert report["macs"] == 2 * 16 * 8 * 4  # the Linear on 32 embedded tokens
    assert main(["profile", "model", "token_factory:build", "--input", "ids:2x16:int64",
                 "--input", "mask:2x16:complex"]) == 2  # fmt: skip
    assert "is not one of" in capsys.readouterr().err
    # float zeros for token ids, as before typed inputs, cannot be exported
    assert main(["profile", "model", "token_factory:build", "--input", "ids=2,16",
                 "--input", "mask=2,16"]) != 0  # fmt: skip
