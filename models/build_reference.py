"""Build the small reference ONNX graphs the benchmark and the demo profile.

The graphs are generated, not committed: this script and its torch definitions are the
source of truth, so a reviewer can read what each graph is. Needs the torch extra::

    python models/build_reference.py OUT_DIR

Every graph has a symbolic ``batch`` dim and the BERT-style stack a symbolic ``seq``
dim too, bound later with ``foresize profile model OUT_DIR/bert_encoder.onnx --dim
batch=8 --dim seq=512``; the GPT-style stack is exported at a fixed 512 tokens.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from foresize.graph.torch_reader import export_onnx

HIDDEN, HEADS, FFN, LAYERS, GPT_SEQ = 256, 4, 1024, 4, 512


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016): two 3x3 convs, batch norm, identity shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual sum, then ReLU."""
        return torch.relu(self.body(x) + self.shortcut(x))


class TransformerBlock(nn.Module):
    """Multi-head attention and an MLP, post-norm (BERT) or pre-norm and causal (GPT).

    Written out with plain Linear/MatMul/Softmax so that every op is one the FLOP rules
    price, rather than a fused kernel the exporter may emit for nn.TransformerEncoderLayer.
    """

    def __init__(self, *, causal: bool) -> None:
        super().__init__()
        self.causal = causal
        self.qkv = nn.Linear(HIDDEN, 3 * HIDDEN)
        self.proj = nn.Linear(HIDDEN, HIDDEN)
        self.mlp = nn.Sequential(nn.Linear(HIDDEN, FFN), nn.GELU(), nn.Linear(FFN, HIDDEN))
        self.norm1, self.norm2 = nn.LayerNorm(HIDDEN), nn.LayerNorm(HIDDEN)
        mask = torch.triu(torch.full((GPT_SEQ, GPT_SEQ), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled dot-product attention over HEADS heads, causal for the decoder."""
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, HEADS, HIDDEN // HEADS).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1) / math.sqrt(HIDDEN // HEADS)
        if self.causal:
            scores = scores + self.mask  # the decoder runs at GPT_SEQ tokens
        out = torch.softmax(scores, dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, t, HIDDEN))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """GPT: x + f(norm(x)); BERT: norm(x + f(x))."""
        if self.causal:
            x = x + self.attention(self.norm1(x))
            return x + self.mlp(self.norm2(x))
        x = self.norm1(x + self.attention(x))
        return self.norm2(x + self.mlp(x))


def mlp() -> nn.Module:
    """An MNIST-sized MLP: 784 -> 512 -> 512 -> 10."""
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 10))


def resnet() -> nn.Module:
    """A CIFAR-sized ResNet: stem, three stages of two basic blocks, pool, classifier."""
    stages: list[nn.Module] = []
    c_in = 16
    for c_out, stride in ((16, 1), (32, 2), (64, 2)):
        stages += [BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)]
        c_in = c_out
    return nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def bert_encoder() -> nn.Module:
    """LAYERS post-norm encoder blocks over embedded tokens (batch, seq, HIDDEN)."""
    return nn.Sequential(*(TransformerBlock(causal=False) for _ in range(LAYERS)))


def gpt_decoder() -> nn.Module:
    """LAYERS pre-norm causal decoder blocks over embedded tokens (batch, seq, HIDDEN)."""
    return nn.Sequential(*(TransformerBlock(causal=True) for _ in range(LAYERS)))


# name -> (factory, example input shape, symbolic dims by axis)
REFERENCES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], dict[int, str]]] = {
    "mlp": (mlp, (2, 784), {0: "batch"}),
    "resnet_cnn": (resnet, (2, 3, 32, 32), {0: "batch"}),
    "bert_encoder": (bert_encoder, (2, 16, HIDDEN), {0: "batch", 1: "seq"}),
    # seq stays fixed: with a symbolic seq, shape inference cannot carry it through the
    # causal mask's Slice and leaves unnamed dims no --dim can bind
    "gpt_decoder": (gpt_decoder, (2, GPT_SEQ, HIDDEN), {0: "batch"}),
}


def build(out_dir: Path) -> list[Path]:
    """Export every reference graph into ``out_dir`` (created if missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    paths = []
    for name, (factory, shape, dims) in REFERENCES.items():
        paths.append(export_onnx(factory(), {"x": shape}, out_dir / f"{name}.onnx",
                                 dynamic_axes={"x": dims}))
    return paths


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: build into the folder given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder to write the .onnx files into")
    args: Any = parser.parse_args(argv)
    for path in build(args.out_dir):
        sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
