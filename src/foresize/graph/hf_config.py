"""Size a transformer from its Hugging Face ``config.json`` alone: no weights, no network.

This is how a user sizes a 70B model on a laptop: the config fixes every weight shape,
so parameter counts are exact and per-token FLOPs follow from them.

Supported families (``model_type``): llama, mistral and qwen2 (decoders with grouped-query
attention, a gated SiLU MLP and RMSNorm; RoPE adds no parameters), mixtral (the same with a
sparse mixture of experts in place of the MLP: ``num_local_experts`` gated MLPs and a
router, ``num_experts_per_tok`` of them run per token), gemma and gemma2 (the same block
with an explicit ``head_dim``, a tied head by default, and for gemma2 a norm before and
after each sublayer), gpt2 (learned positions,
LayerNorm, biases everywhere, tied LM head) and bert (the ``BertModel`` encoder with token
types and, by default, the pooler).

FLOP convention: one multiply-accumulate (MAC) = 2 FLOPs. A forward pass costs, per token,
2 FLOPs per matmul weight it touches (Kaplan et al. 2020, "Scaling Laws for Neural Language
Models", section 2.1), plus ``4 x context x attention_width`` per layer for the attention
scores (Q.K^T) and the weighted sum of values (each ``context x attention_width`` MACs);
a sliding-window layer attends to at most its window, and caches no more.
Biases, norms and activations are element-wise and left out; embedding lookups are gathers,
not matmuls, but the LM head's projection onto the vocabulary is a matmul even when its
weight is tied to the embedding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foresize.core.errors import InputError
from foresize.core.io import read_json_object

SUPPORTED_FAMILIES = ("bert", "gemma", "gemma2", "gpt2", "llama", "mistral", "mixtral", "qwen2")


@dataclass(frozen=True, slots=True)
class Architecture:
    """Shapes and exact parameter counts of one transformer, as read from its config.

    ``params`` maps a component (``embeddings``, ``attention_q``, ``attention_k``,
    ``attention_v``, ``attention_o``, ``mlp``, ``norms``, ``lm_head`` and, for bert,
    ``pooler``; for a mixture of experts, ``router``) to its parameter count, biases
    included. A tied LM head counts 0 there: it shares the embedding matrix.
    ``matmul_params`` is the number of matmul weights one token passes through, which sets
    the FLOPs: with experts, only the ``experts_per_token`` it is routed to.
    """

    model_type: str
    hidden: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    max_positions: int | None
    is_decoder: bool
    gated_mlp: bool
    has_dropout: bool
    params: Mapping[str, int]
    matmul_params: int
    n_experts: int = 1
    experts_per_token: int = 1
    sliding_window: int | None = None
    sliding_layers: int = 0

    def attended_tokens(self, context: int) -> int:
        """Cached (and attended) positions summed over layers for a ``context``-long prefix.

        A sliding-window layer keeps only the last ``sliding_window`` positions; the
        others keep all of them.
        """
        window = context if self.sliding_window is None else min(context, self.sliding_window)
        return self.sliding_layers * window + (self.n_layers - self.sliding_layers) * context

    @property
    def active_intermediate(self) -> int:
        """MLP width one token's activations span: ``experts_per_token x intermediate``."""
        return self.experts_per_token * self.intermediate

    @property
    def n_params(self) -> int:
        """Total parameter count (a tied LM head counted once)."""
        return sum(self.params.values())

    @property
    def attention_width(self) -> int:
        """Width of the concatenated query heads, ``n_heads x head_dim`` (= hidden usually)."""
        return self.n_heads * self.head_dim

    @property
    def kv_width(self) -> int:
        """Width of the keys (and of the values): ``n_kv_heads x head_dim``."""
        return self.n_kv_heads * self.head_dim

    def forward_flops_per_token(self, *, context: int) -> int:
        """Forward FLOPs for one token attending to ``context`` tokens (1 MAC = 2 FLOPs)."""
        if context < 0:
            raise InputError(f"context must be >= 0 tokens, got {context}")
        attention = 4 * self.attended_tokens(context) * self.attention_width
        return 2 * self.matmul_params + attention


def read_hf_config(
    source: str | Path | Mapping[str, Any], *, include_pooler: bool = True
) -> Architecture:
    """Read a Hugging Face ``config.json`` (a path, or the parsed dict) into an Architecture.

    ``include_pooler`` only matters for bert: ``BertModel`` has a pooler, the MLM and
    token-classification heads do not.
    """
    where, config = _load(source)
    model_type = config.get("model_type")
    builder = _BUILDERS.get(model_type) if isinstance(model_type, str) else None
    if builder is None:
        raise InputError(
            f"{where}: model_type {model_type!r} is not supported; "
            f"supported: {', '.join(SUPPORTED_FAMILIES)}"
        )
    return builder(_Config(where, config, include_pooler))


def _load(source: str | Path | Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """Return a name for messages and the parsed config."""
    if isinstance(source, Mapping):
        return "config", source
    path = Path(source)
    return str(path), read_json_object(path, what="config")


@dataclass(frozen=True, slots=True)
class _Config:
    """A config with typed accessors whose errors name the file and the key."""

    where: str
    data: Mapping[str, Any]
    include_pooler: bool

    def integer(self, key: str, default: int | None = None) -> int:
        """A positive integer; ``default`` when absent (required when ``default`` is None)."""
        value = self.data.get(key, default)
        if value is None:
            raise InputError(
                f"{self.where}: missing required key {key!r} "
                f"for model_type {self.data.get('model_type')!r}"
            )
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InputError(f"{self.where}: key {key!r} must be a positive integer, got {value!r}")
        return value

    def optional(self, key: str) -> int | None:
        """A positive integer that may be absent (e.g. a context limit used for defaults)."""
        return self.integer(key) if key in self.data else None

    def flag(self, key: str, *, default: bool) -> bool:
        """A boolean that defaults to the Hugging Face default for this family."""
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise InputError(f"{self.where}: key {key!r} must be true or false, got {value!r}")
        return value

    def divide(self, numerator: str, denominator: str) -> int:
        """``numerator / denominator`` when it divides exactly (head sizes must)."""
        top, bottom = self.integer(numerator), self.integer(denominator)
        if top % bottom:
            raise InputError(
                f"{self.where}: {numerator}={top} is not divisible by {denominator}={bottom}"
            )
        return top // bottom


def _linear(n_in: int, n_out: int, *, bias: bool) -> int:
    """Parameters of a dense layer."""
    return n_in * n_out + (n_out if bias else 0)


def _llama(cfg: _Config) -> Architecture:
    """llama/mistral/qwen2/mixtral/gemma: GQA, gated MLP, RMSNorm (a scale only), RoPE.

    Biases follow ``transformers``: qwen2 always has q/k/v biases; llama has them when
    ``attention_bias`` is set, and MLP biases when ``mlp_bias`` is set; mistral and
    mixtral have none. Mixtral's block holds ``num_local_experts`` gated MLPs and a
    bias-free router (``hidden x experts``); a token runs the router and
    ``num_experts_per_tok`` experts (``MixtralSparseMoeBlock``).
    """
    hidden, n_layers, vocab = (
        cfg.integer("hidden_size"),
        cfg.integer("num_hidden_layers"),
        cfg.integer("vocab_size"),
    )
    n_heads, intermediate = cfg.integer("num_attention_heads"), cfg.integer("intermediate_size")
    n_kv_heads = cfg.integer("num_key_value_heads", n_heads)
    if n_heads % n_kv_heads:
        raise InputError(
            f"{cfg.where}: num_attention_heads={n_heads} is not divisible by "
            f"num_key_value_heads={n_kv_heads}"
        )
    head_dim = cfg.optional("head_dim") or cfg.divide("hidden_size", "num_attention_heads")
    family = cfg.data["model_type"]
    qwen2 = family == "qwen2"
    qkv_bias = qwen2 or cfg.flag("attention_bias", default=False)
    o_bias = not qwen2 and cfg.flag("attention_bias", default=False)
    mlp_bias = cfg.flag("mlp_bias", default=False)
    tied = cfg.flag("tie_word_embeddings", default=family in ("gemma", "gemma2"))
    moe = family == "mixtral"
    n_experts = cfg.integer("num_local_experts") if moe else 1
    per_token = cfg.integer("num_experts_per_tok") if moe else 1
    if per_token > n_experts:
        raise InputError(
            f"{cfg.where}: num_experts_per_tok={per_token} exceeds "
            f"num_local_experts={n_experts}"
        )
    q, kv = n_heads * head_dim, n_kv_heads * head_dim
    expert = 2 * _linear(hidden, intermediate, bias=mlp_bias) + _linear(
        intermediate, hidden, bias=mlp_bias
    )
    per_layer = {
        "attention_q": _linear(hidden, q, bias=qkv_bias),
        "attention_k": _linear(hidden, kv, bias=qkv_bias),
        "attention_v": _linear(hidden, kv, bias=qkv_bias),
        "attention_o": _linear(q, hidden, bias=o_bias),
        "mlp": n_experts * expert,
        "norms": (4 if family == "gemma2" else 2) * hidden,
    }
    if moe:
        per_layer["router"] = hidden * n_experts
    params = {"embeddings": vocab * hidden}
    params |= {name: n_layers * count for name, count in per_layer.items()}
    params["norms"] += hidden  # the final norm
    params["lm_head"] = 0 if tied else vocab * hidden
    router = hidden * n_experts if moe else 0
    window, windowed = _sliding(cfg, n_layers)
    mlp = per_token * 3 * hidden * intermediate + router
    matmul = n_layers * (hidden * (2 * q + 2 * kv) + mlp) + vocab * hidden
    return Architecture(
        model_type=str(cfg.data["model_type"]),
        hidden=hidden,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=n_kv_heads,
        head_dim=head_dim,
        intermediate=intermediate,
        vocab=vocab,
        max_positions=cfg.optional("max_position_embeddings"),
        is_decoder=True,
        gated_mlp=True,
        has_dropout=False,
        params=params,
        matmul_params=matmul,
        n_experts=n_experts,
        experts_per_token=per_token,
        sliding_window=window,
        sliding_layers=windowed,
    )


def _sliding(cfg: _Config, n_layers: int) -> tuple[int | None, int]:
    """The attention window and how many layers use it, as ``transformers`` applies them.

    mistral and mixtral: ``sliding_window`` on every layer when set (Mistral-7B v0.1:
    4096; later versions null). qwen2: only with ``use_sliding_window``, on the layers
    from ``max_window_layers`` on. gemma2: every other layer (the even ones), the rest
    global. llama and gemma have none.
    """
    family = cfg.data["model_type"]
    if family not in ("mistral", "mixtral", "qwen2", "gemma2"):
        return None, 0
    if cfg.data.get("sliding_window") is None:
        return None, 0
    window = cfg.integer("sliding_window")
    if family == "qwen2":
        if not cfg.flag("use_sliding_window", default=False):
            return None, 0
        first = min(cfg.integer("max_window_layers", n_layers), n_layers)
        return window, n_layers - first
    if family == "gemma2":
        return window, (n_layers + 1) // 2
    return window, n_layers


def _gpt2(cfg: _Config) -> Architecture:
    """gpt2: learned positions, LayerNorm (scale and bias), biases in every linear, tied head.

    ``n_inner`` defaults to ``4 x n_embd`` as in ``transformers``' ``GPT2MLP``.
    """
    hidden, n_layers, vocab = (
        cfg.integer("n_embd"),
        cfg.integer("n_layer"),
        cfg.integer("vocab_size"),
    )
    n_positions, n_heads = cfg.integer("n_positions"), cfg.integer("n_head")
    head_dim = cfg.divide("n_embd", "n_head")
    intermediate = cfg.integer("n_inner", 4 * hidden)
    # c_attn is one (hidden -> 3 hidden) matrix; it is split evenly into q, k and v here.
    qkv = _linear(hidden, hidden, bias=True)
    params = {
        "embeddings": (vocab + n_positions) * hidden,
        "attention_q": n_layers * qkv,
        "attention_k": n_layers * qkv,
        "attention_v": n_layers * qkv,
        "attention_o": n_layers * qkv,
        "mlp": n_layers
        * (_linear(hidden, intermediate, bias=True) + _linear(intermediate, hidden, bias=True)),
        "norms": (2 * n_layers + 1) * 2 * hidden,
        "lm_head": 0,
    }
    matmul = n_layers * (4 * hidden * hidden + 2 * hidden * intermediate) + vocab * hidden
    return Architecture(
        model_type="gpt2",
        hidden=hidden,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=n_heads,
        head_dim=head_dim,
        intermediate=intermediate,
        vocab=vocab,
        max_positions=n_positions,
        is_decoder=True,
        gated_mlp=False,
        has_dropout=True,
        params=params,
        matmul_params=matmul,
    )


def _bert(cfg: _Config) -> Architecture:
    """bert: word, position and token-type embeddings with a LayerNorm; post-norm blocks.

    There is no LM head (``BertModel``); the pooler is a ``hidden x hidden`` dense layer
    applied to the first token only, so it adds parameters but no per-token FLOPs.
    """
    hidden, n_layers, vocab = (
        cfg.integer("hidden_size"),
        cfg.integer("num_hidden_layers"),
        cfg.integer("vocab_size"),
    )
    n_heads, intermediate = cfg.integer("num_attention_heads"), cfg.integer("intermediate_size")
    n_positions, n_types = cfg.integer("max_position_embeddings"), cfg.integer("type_vocab_size", 2)
    head_dim = cfg.divide("hidden_size", "num_attention_heads")
    proj = _linear(hidden, hidden, bias=True)
    params = {
        "embeddings": (vocab + n_positions + n_types) * hidden,
        "attention_q": n_layers * proj,
        "attention_k": n_layers * proj,
        "attention_v": n_layers * proj,
        "attention_o": n_layers * proj,
        "mlp": n_layers
        * (_linear(hidden, intermediate, bias=True) + _linear(intermediate, hidden, bias=True)),
        "norms": (2 * n_layers + 1) * 2 * hidden,  # + the embedding LayerNorm
        "lm_head": 0,
        "pooler": proj if cfg.include_pooler else 0,
    }
    matmul = n_layers * (4 * hidden * hidden + 2 * hidden * intermediate)
    return Architecture(
        model_type="bert",
        hidden=hidden,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=n_heads,
        head_dim=head_dim,
        intermediate=intermediate,
        vocab=vocab,
        max_positions=n_positions,
        is_decoder=False,
        gated_mlp=False,
        has_dropout=True,
        params=params,
        matmul_params=matmul,
    )


_BUILDERS: dict[str, Callable[[_Config], Architecture]] = {
    "bert": _bert,
    "gemma": _llama,
    "gemma2": _llama,
    "gpt2": _gpt2,
    "llama": _llama,
    "mistral": _llama,
    "mixtral": _llama,
    "qwen2": _llama,
}
