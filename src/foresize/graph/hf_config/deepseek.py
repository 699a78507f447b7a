"""deepseek_v2 and deepseek_v3: multi-head latent attention (MLA) and fine-grained experts.

Attention (DeepSeek-V2 paper, section 2.1): queries go through a low-rank bottleneck
``hidden -> q_lora_rank -> heads x (qk_nope_head_dim + qk_rope_head_dim)`` with an RMSNorm
between (or one ``q_proj`` when ``q_lora_rank`` is null: DeepSeek-V2-Lite); keys and values
share ``kv_a_proj_with_mqa`` (``hidden -> kv_lora_rank + qk_rope_head_dim``), an RMSNorm,
and ``kv_b_proj`` (``kv_lora_rank -> heads x (qk_nope_head_dim + v_head_dim)``); the output
projection reads ``heads x v_head_dim``. Biases with ``attention_bias``.

``q_lora_rank`` is the one key where null differs from absent, as in ``transformers``:
absent takes the config class default (1536), null means no query compression.

MLP: the first ``first_k_dense_replace`` layers are dense (``intermediate_size``); the
others, on every ``moe_layer_freq``-th layer, hold ``n_routed_experts`` experts of
``moe_intermediate_size`` (``num_experts_per_tok`` run per token), a router
(``n_routed_experts x hidden``; deepseek_v3's score-correction bias is a buffer, not a
parameter) and ``n_shared_experts`` shared experts fused into one MLP that every token runs.
DeepSeek-V3's multi-token-prediction module (``num_nextn_predict_layers``) is not part of
the model ``transformers`` builds, nor of the 671B the paper counts; it is left out.

FLOPs per token: ``2 x matmul_params`` (each token projects its own latent through
``kv_b_proj`` once) plus attention over ``heads x (qk_nope + qk_rope)`` for scores and
``heads x v_head_dim`` for values. KV cache per token and layer: the compressed latent,
``kv_lora_rank + qk_rope_head_dim`` elements (576 for V2 and V3), as MLA-aware engines
(vLLM, SGLang) store it; ``transformers``' eager cache holds the decompressed keys and
values instead, ``heads x (qk_nope + qk_rope + v_head_dim)``: 71 times more for V3.
"""

from __future__ import annotations

from foresize.graph.hf_config.architecture import Architecture
from foresize.graph.hf_config.blocks import MLPStack, linear, mixture
from foresize.graph.hf_config.keys import ConfigKeys

_Q_LORA_DEFAULT = 1536
_DEFAULT_DENSE_LAYERS = {"deepseek_v2": 0, "deepseek_v3": 3}
_DEFAULT_SHARED = {"deepseek_v2": 2, "deepseek_v3": 1}


def read_deepseek(cfg: ConfigKeys) -> Architecture:
    """An Architecture for deepseek_v2 or deepseek_v3."""
    hidden, n_layers, vocab = (
        cfg.integer("hidden_size"),
        cfg.integer("num_hidden_layers"),
        cfg.integer("vocab_size"),
    )
    n_heads, intermediate = cfg.integer("num_attention_heads"), cfg.integer("intermediate_size")
    nope, rope = cfg.integer("qk_nope_head_dim", 128), cfg.integer("qk_rope_head_dim", 64)
    v_dim, kv_rank = cfg.integer("v_head_dim", 128), cfg.integer("kv_lora_rank", 512)
    q_rank = _q_lora_rank(cfg)
    bias = cfg.flag("attention_bias", default=False)
    qk_dim = nope + rope
    if q_rank is None:
        q_params = q_matmul = hidden * n_heads * qk_dim
    else:
        q_params = linear(hidden, q_rank, bias=bias) + q_rank * n_heads * qk_dim
        q_matmul = (hidden + n_heads * qk_dim) * q_rank
    kv_a, kv_b = (hidden, kv_rank + rope), (kv_rank, n_heads * (nope + v_dim))
    attention = {
        "attention_q": q_params,
        "attention_kv": linear(*kv_a, bias=bias) + linear(*kv_b, bias=False),
        "attention_o": linear(n_heads * v_dim, hidden, bias=bias),
    }
    attention_matmul = q_matmul + kv_a[0] * kv_a[1] + kv_b[0] * kv_b[1] + n_heads * v_dim * hidden
    mlps = _mlps(cfg, hidden, n_layers, intermediate)
    tied = cfg.flag("tie_word_embeddings", default=False)
    params = {"embeddings": vocab * hidden}
    params |= {name: n_layers * count for name, count in attention.items()}
    params |= mlps.params()
    params["norms"] = n_layers * (2 * hidden + kv_rank + (q_rank or 0)) + hidden
    params["lm_head"] = 0 if tied else vocab * hidden
    return Architecture(
        model_type=cfg.model_type,
        hidden=hidden,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=n_heads,
        head_dim=qk_dim,
        intermediate=intermediate,
        vocab=vocab,
        max_positions=cfg.optional("max_position_embeddings"),
        is_decoder=True,
        gated_mlp=True,
        has_dropout=False,
        params=params,
        matmul_params=n_layers * attention_matmul + mlps.matmul() + vocab * hidden,
        active_intermediate=mlps.active_width(),
        n_experts=mlps.n_experts,
        experts_per_token=mlps.per_token,
        value_head_dim=v_dim,
        cache_width=kv_rank + rope,
    )


def _q_lora_rank(cfg: ConfigKeys) -> int | None:
    """The query bottleneck: absent -> 1536, null -> none (as ``transformers`` reads it)."""
    if "q_lora_rank" not in cfg.data:
        return _Q_LORA_DEFAULT
    return cfg.optional("q_lora_rank")


def _mlps(cfg: ConfigKeys, hidden: int, n_layers: int, intermediate: int) -> MLPStack:
    """Dense first layers, then routed and shared experts on every ``moe_layer_freq``-th."""
    family = cfg.model_type
    first_dense = cfg.integer(
        "first_k_dense_replace", _DEFAULT_DENSE_LAYERS[family], allow_zero=True
    )
    cfg.check_at_most("first_k_dense_replace", first_dense, "num_hidden_layers", n_layers)
    freq = cfg.integer("moe_layer_freq", 1)
    n_sparse = sum(1 for i in range(first_dense, n_layers) if i % freq == 0)
    if n_sparse == 0:
        return MLPStack(hidden=hidden, n_dense=n_layers, dense_width=intermediate)
    n_experts, per_token = mixture(cfg, "n_routed_experts")
    width = cfg.integer("moe_intermediate_size")
    shared = cfg.integer("n_shared_experts", _DEFAULT_SHARED[family], allow_zero=True)
    return MLPStack(hidden=hidden, n_dense=n_layers - n_sparse, dense_width=intermediate,
                    n_sparse=n_sparse, n_experts=n_experts, per_token=per_token,
                    expert_width=width, shared_width=shared * width)
