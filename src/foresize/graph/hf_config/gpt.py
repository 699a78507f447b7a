"""Decoders with LayerNorm (scale and bias) and a plain two-matrix MLP: gpt2, phi, falcon.

- gpt2: learned positions, biases in every linear, tied head; ``n_inner`` defaults to
  ``4 x n_embd``. KV cache per token and layer: ``2 x n_embd``.
- phi (phi-1, phi-1.5, phi-2): attention and MLP in parallel off one LayerNorm; q/k/v/dense
  and fc1/fc2 biased; an optional LayerNorm of ``head_dim`` on queries and keys
  (``qk_layernorm``); the LM head has a bias. KV cache per token and layer:
  ``2 x num_key_value_heads x head_dim``.
- falcon: one fused query_key_value projection whose key/value heads are
  ``num_kv_heads`` with ``new_decoder_architecture``, 1 with ``multi_query`` (falcon-7b),
  else ``num_attention_heads``; biases with ``bias``; one LayerNorm per block with
  ``parallel_attn`` (two with the new architecture, ``ln_attn`` and ``ln_mlp``), two
  otherwise; MLP of ``ffn_hidden_size`` (default ``4 x hidden_size``); tied head by
  default. KV cache per token and layer: ``2 x kv_heads x head_dim`` (falcon-7b: 128).

FLOPs per token: ``2 x matmul_params`` plus attention (see ``architecture``).
"""

from __future__ import annotations

from foresize.graph.hf_config.architecture import Architecture
from foresize.graph.hf_config.blocks import Attention, MLPStack
from foresize.graph.hf_config.keys import ConfigKeys


def read_gpt2(cfg: ConfigKeys) -> Architecture:
    """gpt2: learned positions, LayerNorm, biases everywhere, tied LM head."""
    hidden, n_layers, vocab = (
        cfg.integer("n_embd"),
        cfg.integer("n_layer"),
        cfg.integer("vocab_size"),
    )
    n_positions, n_heads = cfg.integer("n_positions"), cfg.integer("n_head")
    head_dim = cfg.divide("n_embd", "n_head")
    intermediate = cfg.integer("n_inner", 4 * hidden)
    # c_attn is one (hidden -> 3 hidden) matrix; it is split evenly into q, k and v here.
    attention = Attention(hidden=hidden, n_heads=n_heads, n_kv_heads=n_heads, head_dim=head_dim,
                          qkv_bias=True, o_bias=True)
    mlps = MLPStack(hidden=hidden, n_dense=n_layers, dense_width=intermediate, gated=False,
                    bias=True)
    params = {"embeddings": (vocab + n_positions) * hidden}
    params |= {name: n_layers * count for name, count in attention.params().items()}
    params |= mlps.params()
    params["norms"] = (2 * n_layers + 1) * 2 * hidden
    params["lm_head"] = 0
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
        has_dropout=cfg.rate("resid_pdrop", 0.1) > 0,
        params=params,
        matmul_params=n_layers * attention.matmul() + mlps.matmul() + vocab * hidden,
        active_intermediate=intermediate,
    )


def read_phi(cfg: ConfigKeys) -> Architecture:
    """phi: parallel attention and MLP off one LayerNorm, biases everywhere, biased head."""
    hidden, n_layers, vocab = (
        cfg.integer("hidden_size"),
        cfg.integer("num_hidden_layers"),
        cfg.integer("vocab_size"),
    )
    n_heads, intermediate = cfg.integer("num_attention_heads"), cfg.integer("intermediate_size")
    head_dim = cfg.divide("hidden_size", "num_attention_heads")
    attention = Attention(hidden=hidden, n_heads=n_heads, n_kv_heads=cfg.kv_heads(n_heads),
                          head_dim=head_dim, qkv_bias=True, o_bias=True)
    mlps = MLPStack(hidden=hidden, n_dense=n_layers, dense_width=intermediate, gated=False,
                    bias=True)
    qk_norms = 2 * 2 * head_dim if cfg.flag("qk_layernorm", default=False) else 0
    tied = cfg.flag("tie_word_embeddings", default=False)
    params = {"embeddings": vocab * hidden}
    params |= {name: n_layers * count for name, count in attention.params().items()}
    params |= mlps.params()
    params["norms"] = n_layers * (2 * hidden + qk_norms) + 2 * hidden
    params["lm_head"] = (0 if tied else vocab * hidden) + vocab  # the head's bias is its own
    dropout = max(cfg.rate(key, 0.0) for key in ("resid_pdrop", "embd_pdrop", "attention_dropout"))
    return Architecture(
        model_type="phi",
        hidden=hidden,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=attention.n_kv_heads,
        head_dim=head_dim,
        intermediate=intermediate,
        vocab=vocab,
        max_positions=cfg.optional("max_position_embeddings"),
        is_decoder=True,
        gated_mlp=False,
        has_dropout=dropout > 0,
        params=params,
        matmul_params=n_layers * attention.matmul() + mlps.matmul() + vocab * hidden,
        active_intermediate=intermediate,
    )


def read_falcon(cfg: ConfigKeys) -> Architecture:
    """falcon: fused QKV with multi-query or grouped heads, parallel blocks, tied head.

    The original falcon configs spell the sizes ``n_head`` and ``n_layer``; both are read.
    """
    hidden_key = cfg.spelling(("hidden_size", "n_embed"))
    heads_key = cfg.spelling(("num_attention_heads", "n_head"))
    hidden, vocab = cfg.integer(hidden_key), cfg.integer("vocab_size")
    n_layers = cfg.integer(cfg.spelling(("num_hidden_layers", "n_layer")))
    n_heads, head_dim = cfg.integer(heads_key), cfg.divide(hidden_key, heads_key)
    new_architecture = cfg.flag("new_decoder_architecture", default=False)
    if new_architecture:
        n_kv_heads = cfg.kv_heads(n_heads, "num_kv_heads")
    else:
        n_kv_heads = 1 if cfg.flag("multi_query", default=True) else n_heads
    bias = cfg.flag("bias", default=False)
    intermediate = cfg.integer("ffn_hidden_size", 4 * hidden)
    attention = Attention(hidden=hidden, n_heads=n_heads, n_kv_heads=n_kv_heads,
                          head_dim=head_dim, qkv_bias=bias, o_bias=bias)
    mlps = MLPStack(hidden=hidden, n_dense=n_layers, dense_width=intermediate, gated=False,
                    bias=bias)
    parallel = cfg.flag("parallel_attn", default=True)
    two_norms = cfg.integer("num_ln_in_parallel_attn", 2 if new_architecture else 1) == 2
    norms_per_layer = 2 if two_norms or not parallel else 1
    tied = cfg.flag("tie_word_embeddings", default=True)
    params = {"embeddings": vocab * hidden}
    params |= {name: n_layers * count for name, count in attention.params().items()}
    params |= mlps.params()
    params["norms"] = (n_layers * norms_per_layer + 1) * 2 * hidden
    params["lm_head"] = 0 if tied else vocab * hidden
    return Architecture(
        model_type="falcon",
        hidden=hidden,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=n_kv_heads,
        head_dim=head_dim,
        intermediate=intermediate,
        vocab=vocab,
        max_positions=cfg.integer("max_position_embeddings", 2048),
        is_decoder=True,
        gated_mlp=False,
        has_dropout=cfg.rate("hidden_dropout", 0.0) > 0,
        params=params,
        matmul_params=n_layers * attention.matmul() + mlps.matmul() + vocab * hidden,
        active_intermediate=intermediate,
    )
