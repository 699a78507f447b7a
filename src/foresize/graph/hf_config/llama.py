"""The llama family: pre-norm decoders with grouped-query attention, RoPE and gated MLPs.

One reader covers the families that share this block and differ in details, each as
``transformers`` builds it (RoPE, including llama 3.x ``rope_scaling``, adds no weights):

======================  ==================================================================
``model_type``          differences
======================  ==================================================================
llama                   q/k/v/o biases with ``attention_bias``, MLP biases with ``mlp_bias``
mistral                 no biases; ``sliding_window`` on every layer when set
mixtral                 mistral with ``num_local_experts`` gated experts, a router, and
                        ``num_experts_per_tok`` experts run per token, on every layer
qwen2                   q/k/v biases always; sliding window from ``max_window_layers`` on
                        when ``use_sliding_window``
qwen2_moe               qwen2 (biases with ``qkv_bias``) with ``num_experts`` experts of
                        ``moe_intermediate_size``, a shared expert of
                        ``shared_expert_intermediate_size`` behind a 1-wide gate, on layers
                        ``i`` with ``(i + 1) % decoder_sparse_step == 0`` not in
                        ``mlp_only_layers`` (the others: a dense MLP of ``intermediate_size``)
qwen3                   biases with ``attention_bias``; an RMSNorm of ``head_dim`` on each
                        query and key head (q_norm, k_norm); ``head_dim`` defaults to 128
qwen3_moe               qwen3 with qwen2_moe's layer rule and no shared expert
gemma, gemma2           biases with ``attention_bias``; ``head_dim`` defaults to 256; tied
                        head by default; gemma2 norms before and after each sublayer and
                        slides its window on every other layer
phi3                    fused qkv and gate-up projections (same counts), no biases,
                        ``sliding_window`` on every layer when set
======================  ==================================================================

FLOPs per token: ``2 x matmul_params`` plus attention (see ``architecture``). KV cache per
token and layer: ``2 x num_key_value_heads x head_dim`` elements (a windowed layer holds at
most its window).
"""

from __future__ import annotations

from foresize.graph.hf_config.architecture import Architecture
from foresize.graph.hf_config.blocks import Attention, MLPStack, head_dim, mixture
from foresize.graph.hf_config.keys import ConfigKeys

LLAMA_FAMILIES = (
    "gemma", "gemma2", "llama", "mistral", "mixtral", "phi3", "qwen2", "qwen2_moe", "qwen3",
    "qwen3_moe",
)
_HEAD_DIM_DEFAULTS = {"gemma": 256, "gemma2": 256, "qwen3": 128}
_ATTENTION_BIAS = frozenset({"gemma", "gemma2", "llama", "qwen3", "qwen3_moe"})
_TIED_BY_DEFAULT = frozenset({"gemma", "gemma2"})
_QK_NORM = frozenset({"qwen3", "qwen3_moe"})


def read_llama(cfg: ConfigKeys) -> Architecture:
    """An Architecture for any of ``LLAMA_FAMILIES``."""
    family = cfg.model_type
    hidden, n_layers, vocab = (
        cfg.integer("hidden_size"),
        cfg.integer("num_hidden_layers"),
        cfg.integer("vocab_size"),
    )
    n_heads, intermediate = cfg.integer("num_attention_heads"), cfg.integer("intermediate_size")
    attention = _attention(cfg, hidden, n_heads)
    mlps = _mlps(cfg, hidden, n_layers, intermediate)
    per_layer_norms = (4 if family == "gemma2" else 2) * hidden
    if family in _QK_NORM:
        per_layer_norms += 2 * attention.head_dim
    tied = cfg.flag("tie_word_embeddings", default=family in _TIED_BY_DEFAULT)
    params = {"embeddings": vocab * hidden}
    params |= {name: n_layers * count for name, count in attention.params().items()}
    params |= mlps.params()
    params["norms"] = n_layers * per_layer_norms + hidden  # + the final norm
    params["lm_head"] = 0 if tied else vocab * hidden
    window, windowed = _sliding(cfg, n_layers)
    return Architecture(
        model_type=family,
        hidden=hidden,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=attention.n_kv_heads,
        head_dim=attention.head_dim,
        intermediate=intermediate,
        vocab=vocab,
        max_positions=cfg.optional("max_position_embeddings"),
        is_decoder=True,
        gated_mlp=True,
        has_dropout=False,
        params=params,
        matmul_params=n_layers * attention.matmul() + mlps.matmul() + vocab * hidden,
        active_intermediate=mlps.active_width(),
        n_experts=mlps.n_experts,
        experts_per_token=mlps.per_token,
        sliding_window=window,
        sliding_layers=windowed,
    )


def _attention(cfg: ConfigKeys, hidden: int, n_heads: int) -> Attention:
    """The family's attention, with biases as ``transformers`` places them."""
    family = cfg.model_type
    bias = family in _ATTENTION_BIAS and cfg.flag("attention_bias", default=False)
    qkv_bias = {"qwen2": True, "qwen2_moe": cfg.flag("qkv_bias", default=True)}.get(family, bias)
    return Attention(
        hidden=hidden,
        n_heads=n_heads,
        n_kv_heads=cfg.kv_heads(n_heads),
        head_dim=head_dim(
            cfg, "num_attention_heads", "hidden_size", _HEAD_DIM_DEFAULTS.get(family)
        ),
        qkv_bias=qkv_bias,
        o_bias=bias,
    )


def _mlps(cfg: ConfigKeys, hidden: int, n_layers: int, intermediate: int) -> MLPStack:
    """Dense MLPs, or mixtral's / qwen's mixtures of experts on the layers that have them."""
    family = cfg.model_type
    if family == "mixtral":
        n_experts, per_token = mixture(cfg, "num_local_experts")
        return MLPStack(hidden=hidden, n_dense=0, dense_width=intermediate, n_sparse=n_layers,
                        n_experts=n_experts, per_token=per_token, expert_width=intermediate)
    if family in ("qwen2_moe", "qwen3_moe"):
        n_sparse = _qwen_sparse_layers(cfg, n_layers)
        n_experts, per_token = mixture(cfg, "num_experts") if n_sparse else (1, 1)
        shared = cfg.integer("shared_expert_intermediate_size") if family == "qwen2_moe" else 0
        return MLPStack(
            hidden=hidden, n_dense=n_layers - n_sparse, dense_width=intermediate,
            n_sparse=n_sparse, n_experts=n_experts, per_token=per_token,
            expert_width=cfg.integer("moe_intermediate_size") if n_sparse else 0,
            shared_width=shared if n_sparse else 0, shared_gate=bool(shared and n_sparse))
    bias = family == "llama" and cfg.flag("mlp_bias", default=False)
    return MLPStack(hidden=hidden, n_dense=n_layers, dense_width=intermediate, bias=bias)


def _qwen_sparse_layers(cfg: ConfigKeys, n_layers: int) -> int:
    """Layers with experts: ``(i + 1) % decoder_sparse_step == 0`` and not ``mlp_only_layers``.

    ``num_experts: 0`` makes every layer dense, as in ``transformers``.
    """
    if cfg.integer("num_experts", allow_zero=True) == 0:
        return 0
    step = cfg.integer("decoder_sparse_step", 1)
    dense = cfg.indices("mlp_only_layers", below=n_layers, what=f"{cfg.model_type}")
    return sum(1 for i in range(n_layers) if (i + 1) % step == 0 and i not in dense)


def _sliding(cfg: ConfigKeys, n_layers: int) -> tuple[int | None, int]:
    """The attention window and how many layers use it, as ``transformers`` applies them.

    mistral, mixtral and phi3: ``sliding_window`` on every layer when set (Mistral-7B v0.1:
    4096; later versions null). qwen2, qwen2_moe, qwen3 and qwen3_moe: only with
    ``use_sliding_window``, on the layers from ``max_window_layers`` on. gemma2: every
    other layer (the even ones), the rest global. llama and gemma have none.
    """
    family = cfg.model_type
    if family in ("llama", "gemma") or not cfg.is_set("sliding_window"):
        return None, 0
    window = cfg.integer("sliding_window")
    if family.startswith("qwen"):
        if not cfg.flag("use_sliding_window", default=False):
            return None, 0
        first = min(cfg.integer("max_window_layers", n_layers), n_layers)
        return window, n_layers - first
    if family == "gemma2":
        return window, (n_layers + 1) // 2
    return window, n_layers
