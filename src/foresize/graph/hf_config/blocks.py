"""Parameter and per-token matmul counts of the pieces every family is built from.

Each piece reports ``params`` (by component, biases included) and ``matmul``: the matmul
weights one token passes through (biases excluded), which sets its FLOPs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from foresize.graph.hf_config.keys import ConfigKeys


def linear(n_in: int, n_out: int, *, bias: bool) -> int:
    """Parameters of a dense layer."""
    return n_in * n_out + (n_out if bias else 0)


def mlp_params(hidden: int, width: int, *, gated: bool, bias: bool) -> int:
    """A gated (gate, up, down) or plain (up, down) MLP."""
    ups = 2 if gated else 1
    return ups * linear(hidden, width, bias=bias) + linear(width, hidden, bias=bias)


@dataclass(frozen=True, slots=True)
class Attention:
    """Multi-head attention with ``n_kv_heads`` key/value heads (grouped-query when fewer).

    ``o_in`` is the width entering the output projection (``n_heads x head_dim``).
    """

    hidden: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    qkv_bias: bool
    o_bias: bool

    def params(self) -> dict[str, int]:
        """Per layer: q, k, v and o projections."""
        q, kv = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        return {
            "attention_q": linear(self.hidden, q, bias=self.qkv_bias),
            "attention_k": linear(self.hidden, kv, bias=self.qkv_bias),
            "attention_v": linear(self.hidden, kv, bias=self.qkv_bias),
            "attention_o": linear(q, self.hidden, bias=self.o_bias),
        }

    def matmul(self) -> int:
        """Matmul weights per token per layer."""
        return self.hidden * 2 * (self.n_heads + self.n_kv_heads) * self.head_dim


@dataclass(frozen=True, slots=True)
class MLPStack:
    """The MLPs of all layers: ``n_dense`` dense ones and ``n_sparse`` mixtures of experts.

    A sparse layer holds ``n_experts`` gated experts of ``expert_width``, a bias-free router
    (``hidden x n_experts``) and optionally a shared expert of ``shared_width`` that every
    token runs (with a 1-wide sigmoid gate for qwen2_moe); a token runs ``per_token``
    routed experts. Only dense MLPs carry ``bias`` (llama's ``mlp_bias``).
    """

    hidden: int
    n_dense: int
    dense_width: int
    gated: bool = True
    bias: bool = False
    n_sparse: int = 0
    n_experts: int = 1
    per_token: int = 1
    expert_width: int = 0
    shared_width: int = 0
    shared_gate: bool = False

    def params(self) -> dict[str, int]:
        """``mlp`` (dense and shared), and for a mixture ``experts`` and ``router``."""
        dense = mlp_params(self.hidden, self.dense_width, gated=self.gated, bias=self.bias)
        shared = mlp_params(self.hidden, self.shared_width, gated=True, bias=False)
        out = {"mlp": self.n_dense * dense + self.n_sparse * shared}
        if self.n_sparse:
            expert = mlp_params(self.hidden, self.expert_width, gated=True, bias=False)
            out["experts"] = self.n_sparse * self.n_experts * expert
            out["router"] = self.n_sparse * self.hidden * (self.n_experts + self.shared_gate)
        return out

    def matmul(self) -> int:
        """Matmul weights one token passes through, summed over layers."""
        ups = 3 if self.gated else 2
        routed = self.per_token * self.expert_width + self.shared_width
        sparse = 3 * self.hidden * routed + self.hidden * (self.n_experts + self.shared_gate)
        return self.n_dense * ups * self.hidden * self.dense_width + self.n_sparse * sparse

    def active_width(self) -> int:
        """The MLP width a token spans, averaged over layers (rounded up)."""
        routed = self.per_token * self.expert_width + self.shared_width
        layers = self.n_dense + self.n_sparse
        return math.ceil((self.n_dense * self.dense_width + self.n_sparse * routed) / layers)


def mixture(cfg: ConfigKeys, experts_key: str) -> tuple[int, int]:
    """``(n_experts, per_token)``, checking that a token runs no more experts than exist."""
    n_experts = cfg.integer(experts_key)
    per_token = cfg.integer("num_experts_per_tok")
    cfg.check_at_most("num_experts_per_tok", per_token, experts_key, n_experts)
    return n_experts, per_token


def head_dim(cfg: ConfigKeys, n_heads_key: str, hidden_key: str, default: int | None = None) -> int:
    """``head_dim`` when set, else the family's default, else ``hidden / heads`` (exactly)."""
    if cfg.is_set("head_dim"):
        return cfg.integer("head_dim")
    if default is not None:
        return default
    return cfg.divide(hidden_key, n_heads_key)
