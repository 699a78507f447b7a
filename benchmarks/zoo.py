"""A zoo of plain-torch models for bench_graph.py: no torchvision, no transformers.

Each entry is ``name -> (build_model, make_inputs)``; models are built in eval mode
with a fixed seed. Sizes follow the published configurations where one exists.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

# ---------------------------------------------------------------- MLP


class MLP(nn.Module):
    def __init__(self, sizes: tuple[int, ...] = (784, 1024, 1024, 10)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.GELU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# ---------------------------------------------------------------- ResNet-18


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.down(x))


class ResNet18(nn.Module):
    def __init__(self, n_classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
        blocks: list[nn.Module] = []
        cin = 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ---------------------------------------------------------------- transformer parts


class MHA(nn.Module):
    """Multi-head attention; SDPA or explicit matmuls.

    q/k/v come from separate projections, or (``fused``, GPT-2's ``c_attn``) from one
    projection split in three: views of one tensor, which lives while any of them does.
    """

    def __init__(
        self, dim: int, heads: int, *, causal: bool = False, sdpa: bool = True, fused: bool = False
    ) -> None:
        super().__init__()
        self.h, self.d = heads, dim // heads
        self.fused = fused
        if fused:
            self.qkv = nn.Linear(dim, 3 * dim)
        else:
            self.q, self.k, self.v = (nn.Linear(dim, dim) for _ in range(3))
        self.o = nn.Linear(dim, dim)
        self.causal, self.sdpa = causal, sdpa

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        parts = self.qkv(x).split(c, dim=2) if self.fused else (self.q(x), self.k(x), self.v(x))
        q, k, v = (p.view(b, t, self.h, self.d).transpose(1, 2) for p in parts)
        if self.sdpa:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        else:
            s = (q @ k.transpose(-2, -1)) / math.sqrt(self.d)
            if self.causal:
                mask = torch.ones(t, t, dtype=torch.bool).triu(1)
                s = s.masked_fill(mask, float("-inf"))
            y = s.softmax(-1) @ v
        return self.o(y.transpose(1, 2).reshape(b, t, c))


class TBlock(nn.Module):
    """Pre-LN (ViT, GPT-2) or post-LN (BERT) transformer block with a GELU MLP."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp: int,
        *,
        causal: bool,
        sdpa: bool,
        pre: bool,
        fused: bool = False,
    ) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = MHA(dim, heads, causal=causal, sdpa=sdpa, fused=fused)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))
        self.pre = pre

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre:
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))
        x = self.ln1(x + self.attn(x))
        return self.ln2(x + self.mlp(x))


class ViT(nn.Module):
    """ViT-Tiny/16: dim 192, depth 12, 3 heads, MLP 768, 224x224 input."""

    def __init__(self, dim: int = 192, depth: int = 12, heads: int = 3, mlp: int = 768) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 16, 16)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, 197, dim))
        self.blocks = nn.Sequential(
            *(TBlock(dim, heads, mlp, causal=False, sdpa=True, pre=True) for _ in range(depth))
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        return self.head(self.norm(self.blocks(x))[:, 0])


class Bert(nn.Module):
    """BERT-base encoder (12 x 768, 12 heads, MLP 3072), explicit attention matmuls."""

    def __init__(
        self, vocab: int = 30522, dim: int = 768, depth: int = 12, heads: int = 12
    ) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(512, dim)
        self.typ = nn.Embedding(2, dim)
        self.ln = nn.LayerNorm(dim)
        self.blocks = nn.Sequential(
            *(
                TBlock(dim, heads, 4 * dim, causal=False, sdpa=False, pre=False)
                for _ in range(depth)
            )
        )
        self.pool = nn.Linear(dim, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.ln(self.tok(ids) + self.pos(pos) + self.typ(torch.zeros_like(ids)))
        x = self.blocks(x)
        return torch.tanh(self.pool(x[:, 0]))


class GPT2(nn.Module):
    """GPT-2 small (12 x 768, 12 heads), fused q/k/v split in three as GPT-2's ``c_attn``,
    causal SDPA, LM head tied to the embedding."""

    def __init__(
        self, vocab: int = 50257, dim: int = 768, depth: int = 12, heads: int = 12
    ) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(1024, dim)
        self.blocks = nn.Sequential(
            *(
                TBlock(dim, heads, 4 * dim, causal=True, sdpa=True, pre=True, fused=True)
                for _ in range(depth)
            )
        )
        self.ln = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.ln(self.blocks(self.tok(ids) + self.pos(pos)))
        return x @ self.tok.weight.t()


# ---------------------------------------------------------------- LLaMA-style


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.w, self.eps = nn.Parameter(torch.ones(dim)), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], -1)
    return x * cos + rot * sin


class LlamaBlock(nn.Module):
    def __init__(self, dim: int, heads: int, kv_heads: int, inter: int) -> None:
        super().__init__()
        self.h, self.kv, self.d = heads, kv_heads, dim // heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, kv_heads * self.d, bias=False)
        self.v = nn.Linear(dim, kv_heads * self.d, bias=False)
        self.o = nn.Linear(dim, dim, bias=False)
        self.gate = nn.Linear(dim, inter, bias=False)
        self.up = nn.Linear(dim, inter, bias=False)
        self.down = nn.Linear(inter, dim, bias=False)
        self.n1, self.n2 = RMSNorm(dim), RMSNorm(dim)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        h = self.n1(x)
        q = self.q(h).view(b, t, self.h, self.d).transpose(1, 2)
        k = self.k(h).view(b, t, self.kv, self.d).transpose(1, 2)
        v = self.v(h).view(b, t, self.kv, self.d).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        rep = self.h // self.kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o(y.transpose(1, 2).reshape(b, t, c))
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(nn.Module):
    """4 LLaMA blocks: hidden 512, 8 heads, 2 KV heads (GQA), SwiGLU 1408, RoPE."""

    def __init__(
        self,
        vocab: int = 32000,
        dim: int = 512,
        depth: int = 4,
        heads: int = 8,
        kv_heads: int = 2,
        inter: int = 1408,
        max_t: int = 2048,
    ) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList(LlamaBlock(dim, heads, kv_heads, inter) for _ in range(depth))
        self.norm = RMSNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        d = dim // heads
        inv = 1.0 / (10000 ** (torch.arange(0, d, 2).float() / d))
        ang = torch.outer(torch.arange(max_t).float(), inv)
        ang = torch.cat([ang, ang], -1)
        self.register_buffer("cos", ang.cos(), persistent=False)
        self.register_buffer("sin", ang.sin(), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        cos, sin = self.cos[:t], self.sin[:t]
        x = self.tok(ids)
        for block in self.blocks:
            x = block(x, cos, sin)
        return self.head(self.norm(x))


# ---------------------------------------------------------------- UNet


def double_conv(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


class UNet(nn.Module):
    """3-level UNet (32-64-128, bottleneck 256), ConvTranspose up-sampling, 128x128 input."""

    def __init__(self, cin: int = 3, n_classes: int = 2, base: int = 32) -> None:
        super().__init__()
        chans = [base, base * 2, base * 4]
        self.downs = nn.ModuleList()
        c = cin
        for ch in chans:
            self.downs.append(double_conv(c, ch))
            c = ch
        self.mid = double_conv(c, c * 2)
        self.ups = nn.ModuleList()
        self.upconvs = nn.ModuleList()
        c = c * 2
        for ch in reversed(chans):
            self.upconvs.append(nn.ConvTranspose2d(c, ch, 2, 2))
            self.ups.append(double_conv(2 * ch, ch))
            c = ch
        self.out = nn.Conv2d(c, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.mid(x)
        for upconv, up, skip in zip(self.upconvs, self.ups, reversed(skips), strict=True):
            x = up(torch.cat([upconv(x), skip], 1))
        return self.out(x)


# ---------------------------------------------------------------- LSTM


class LSTMNet(nn.Module):
    """2-layer LSTM (input 256, hidden 512), batch-first, with a linear head."""

    def __init__(self, cin: int = 256, hidden: int = 512, layers: int = 2, n_out: int = 10) -> None:
        super().__init__()
        self.lstm = nn.LSTM(cin, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x)
        return self.head(y[:, -1])


Factory = tuple[Callable[[], nn.Module], Callable[[int], tuple[torch.Tensor, ...]]]


def _ids(vocab: int, t: int) -> Callable[[int], tuple[torch.Tensor, ...]]:
    return lambda batch: (
        torch.randint(0, vocab, (batch, t), generator=torch.Generator().manual_seed(0)),
    )


def _randn(*shape: int) -> Callable[[int], tuple[torch.Tensor, ...]]:
    return lambda batch: (torch.randn(batch, *shape),)


ZOO: dict[str, Factory] = {
    "mlp": (MLP, _randn(784)),
    "resnet18": (ResNet18, _randn(3, 224, 224)),
    "vit_tiny16": (ViT, _randn(3, 224, 224)),
    "bert_base_s128": (Bert, _ids(30522, 128)),
    "gpt2_s128": (GPT2, _ids(50257, 128)),
    "llama_gqa_4L": (Llama, _ids(32000, 256)),
    "unet_128": (UNet, _randn(3, 128, 128)),
    "lstm_2L": (LSTMNet, _randn(64, 256)),
}
# The batch each model is measured at first (the MLP and the LSTM are batched already)
# and the activation-dominated batch issue #18 judges the liveness model at.
BATCHES: dict[str, tuple[int, int]] = {
    "mlp": (32, 256),
    "resnet18": (1, 32),
    "vit_tiny16": (1, 64),
    "bert_base_s128": (1, 16),
    "gpt2_s128": (1, 16),
    "llama_gqa_4L": (1, 16),
    "unet_128": (1, 8),
    "lstm_2L": (8, 32),
}


def build(name: str, batch: int | None = None) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """The model (eval mode, seed 0) and its example inputs at ``batch`` (default: the first)."""
    torch.manual_seed(0)
    make_model, make_inputs = ZOO[name]
    model = make_model().eval()
    return model, make_inputs(BATCHES[name][0] if batch is None else batch)
