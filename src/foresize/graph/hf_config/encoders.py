"""Models with an encoder: bert (encoder only), t5 and bart (encoder-decoder).

- bert: the ``BertModel`` encoder with word, position and token-type embeddings, an
  embedding LayerNorm, post-norm blocks and, by default, the pooler (a ``hidden x hidden``
  layer on the first token: parameters, no per-token FLOPs). No KV cache.
- t5: a shared embedding, relative-position biases (``relative_attention_num_buckets x
  num_heads``) in the first block of each stack, bias-free projections of width
  ``num_heads x d_kv``, scale-only LayerNorms, a ReLU MLP or, with
  ``feed_forward_proj: gated-*`` (t5 v1.1, flan-t5), a gated one; the LM head is tied
  unless ``tie_word_embeddings`` is false (v1.1 and flan-t5 store their own).
- bart: a shared embedding, learned positions for each stack (``max_position_embeddings +
  2`` rows: fairseq's offset), an embedding LayerNorm per stack, biased projections,
  post-norm blocks; tied LM head (``final_logits_bias`` is a buffer, not a parameter).

Encoder-decoder FLOPs: the encoder runs once per source token (``2 x
encoder_matmul_params`` plus self-attention over the source), including the keys and values
every decoder layer's cross-attention reads; each generated token runs the decoder (``2 x
matmul_params``: self-attention, cross-attention's query and output, the MLP, the head)
plus attention over its own prefix and over the source. KV cache per token: per decoder
layer, ``2 x heads x head_dim`` for self-attention and the same per source token for
cross-attention (sized here with the source as long as the context).
"""

from __future__ import annotations

from foresize.graph.hf_config.architecture import Architecture
from foresize.graph.hf_config.blocks import linear, mlp_params
from foresize.graph.hf_config.keys import ConfigKeys


def read_bert(cfg: ConfigKeys) -> Architecture:
    """bert: word, position and token-type embeddings with a LayerNorm; post-norm blocks."""
    hidden, n_layers, vocab = (
        cfg.integer("hidden_size"),
        cfg.integer("num_hidden_layers"),
        cfg.integer("vocab_size"),
    )
    n_heads, intermediate = cfg.integer("num_attention_heads"), cfg.integer("intermediate_size")
    n_positions, n_types = cfg.integer("max_position_embeddings"), cfg.integer("type_vocab_size", 2)
    head_dim = cfg.divide("hidden_size", "num_attention_heads")
    proj = linear(hidden, hidden, bias=True)
    params = {
        "embeddings": (vocab + n_positions + n_types) * hidden,
        "attention_q": n_layers * proj,
        "attention_k": n_layers * proj,
        "attention_v": n_layers * proj,
        "attention_o": n_layers * proj,
        "mlp": n_layers * mlp_params(hidden, intermediate, gated=False, bias=True),
        "norms": (2 * n_layers + 1) * 2 * hidden,  # + the embedding LayerNorm
        "lm_head": 0,
        "pooler": proj if cfg.include_pooler else 0,
    }
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
        has_dropout=cfg.rate("hidden_dropout_prob", 0.1) > 0,
        params=params,
        matmul_params=n_layers * (4 * hidden * hidden + 2 * hidden * intermediate),
        active_intermediate=intermediate,
    )


def read_t5(cfg: ConfigKeys) -> Architecture:
    """t5 (and t5 v1.1, flan-t5, mt5-shaped configs with ``model_type: t5``)."""
    d_model, d_ff, vocab = cfg.integer("d_model"), cfg.integer("d_ff"), cfg.integer("vocab_size")
    n_heads, d_kv = cfg.integer("num_heads"), cfg.integer("d_kv")
    n_encoder = cfg.integer("num_layers")
    n_decoder = cfg.integer("num_decoder_layers", n_encoder)
    buckets = cfg.integer("relative_attention_num_buckets", 32)
    gated = cfg.text("feed_forward_proj", "relu").startswith("gated-")
    inner = n_heads * d_kv
    projection = d_model * inner  # every T5 projection is bias-free
    mlp = mlp_params(d_model, d_ff, gated=gated, bias=False)
    encoder_only = n_encoder * (4 * projection + mlp + 2 * d_model) + buckets * n_heads + d_model
    tied = cfg.flag("tie_word_embeddings", default=True)
    attention_layers = n_encoder + 2 * n_decoder  # self in both stacks, cross in the decoder
    params = {
        "embeddings": vocab * d_model + 2 * buckets * n_heads,
        **{f"attention_{p}": attention_layers * projection for p in "qkvo"},
        "mlp": (n_encoder + n_decoder) * mlp,
        "norms": (2 * n_encoder + 3 * n_decoder + 2) * d_model,
        "lm_head": 0 if tied else vocab * d_model,
    }
    return Architecture(
        model_type="t5",
        hidden=d_model,
        n_layers=n_decoder,
        n_heads=n_heads,
        n_kv_heads=n_heads,
        head_dim=d_kv,
        intermediate=d_ff,
        vocab=vocab,
        max_positions=cfg.optional("n_positions"),
        is_decoder=True,
        gated_mlp=gated,
        has_dropout=cfg.rate("dropout_rate", 0.1) > 0,
        params=params,
        matmul_params=n_decoder * (6 * projection + mlp) + vocab * d_model,
        active_intermediate=d_ff,
        n_encoder_layers=n_encoder,
        encoder_matmul_params=n_encoder * (4 * projection + mlp) + n_decoder * 2 * projection,
        encoder_params=encoder_only,
    )


def read_bart(cfg: ConfigKeys) -> Architecture:
    """bart: learned positions per stack, biased projections, post-norm, tied LM head."""
    d_model, vocab = cfg.integer("d_model"), cfg.integer("vocab_size")
    n_encoder, n_decoder = cfg.integer("encoder_layers"), cfg.integer("decoder_layers")
    ffn_encoder, ffn_decoder = cfg.integer("encoder_ffn_dim"), cfg.integer("decoder_ffn_dim")
    n_heads = cfg.integer("decoder_attention_heads")
    head_dim = cfg.divide("d_model", "decoder_attention_heads")
    cfg.divide("d_model", "encoder_attention_heads")
    positions = (cfg.integer("max_position_embeddings", 1024) + 2) * d_model
    projection = linear(d_model, d_model, bias=True)
    norm = 2 * d_model
    mlp_encoder = mlp_params(d_model, ffn_encoder, gated=False, bias=True)
    mlp_decoder = mlp_params(d_model, ffn_decoder, gated=False, bias=True)
    tied = cfg.flag("tie_word_embeddings", default=True)
    attention_layers = n_encoder + 2 * n_decoder
    params = {
        "embeddings": vocab * d_model + 2 * positions,
        **{f"attention_{p}": attention_layers * projection for p in "qkvo"},
        "mlp": n_encoder * mlp_encoder + n_decoder * mlp_decoder,
        "norms": (2 * n_encoder + 3 * n_decoder + 2) * norm,  # + each stack's embedding norm
        "lm_head": 0 if tied else vocab * d_model,
    }
    square = d_model * d_model
    return Architecture(
        model_type="bart",
        hidden=d_model,
        n_layers=n_decoder,
        n_heads=n_heads,
        n_kv_heads=n_heads,
        head_dim=head_dim,
        intermediate=ffn_decoder,
        vocab=vocab,
        max_positions=cfg.integer("max_position_embeddings", 1024),
        is_decoder=True,
        gated_mlp=False,
        has_dropout=cfg.rate("dropout", 0.1) > 0,
        params=params,
        matmul_params=n_decoder * (6 * square + 2 * d_model * ffn_decoder) + vocab * d_model,
        active_intermediate=ffn_decoder,
        n_encoder_layers=n_encoder,
        encoder_matmul_params=n_encoder * (4 * square + 2 * d_model * ffn_encoder)
        + n_decoder * 2 * square,
        encoder_params=n_encoder * (4 * projection + mlp_encoder + 2 * norm) + positions + norm,
    )
