"""Exact parameter counts and FLOPs from Hugging Face configs (written here, no network)."""

import json

import pytest

from foresize.core.errors import InputError
from foresize.graph.hf_config import read_hf_config
from foresize.graph.memory import (
    decode_weight_bytes,
    kv_cache_bytes,
    layer_activation_bytes,
    weight_bytes,
)

LLAMA2_7B = {
    "model_type": "llama",
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "intermediate_size": 11008,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": False,
}
MISTRAL_7B = {
    "model_type": "mistral",
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 32000,
}
QWEN2_05B = {
    "model_type": "qwen2",
    "hidden_size": 896,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "intermediate_size": 4864,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
}
MIXTRAL_8X7B = {
    **MISTRAL_7B,
    "model_type": "mixtral",
    "num_local_experts": 8,
    "num_experts_per_tok": 2,
}
GEMMA_7B = {
    "model_type": "gemma",
    "hidden_size": 3072,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
    "head_dim": 256,
    "intermediate_size": 24576,
    "vocab_size": 256000,
}
GEMMA2_9B = {
    "model_type": "gemma2",
    "hidden_size": 3584,
    "num_hidden_layers": 42,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 256,
    "intermediate_size": 14336,
    "vocab_size": 256000,
}
GPT2_SMALL = {
    "model_type": "gpt2",
    "n_embd": 768,
    "n_layer": 12,
    "n_head": 12,
    "n_positions": 1024,
    "vocab_size": 50257,
}
BERT_BASE_UNCASED = {
    "model_type": "bert",
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "vocab_size": 30522,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (LLAMA2_7B, 6_738_415_616),
        (MISTRAL_7B, 7_241_732_096),
        (MIXTRAL_8X7B, 46_702_792_704),
        (GEMMA_7B, 8_537_680_896),
        (GEMMA2_9B, 9_241_705_984),
        (QWEN2_05B, 494_032_768),
        (GPT2_SMALL, 124_439_808),
        (BERT_BASE_UNCASED, 109_482_240),
    ],
    ids=["llama2_7b", "mistral_7b", "mixtral_8x7b", "gemma_7b", "gemma2_9b", "qwen2_0.5b",
         "gpt2_small", "bert_base_uncased"],
)
def test_published_parameter_counts(config, expected):
    assert read_hf_config(config).n_params == expected


def test_llama_components_by_hand():
    arch = read_hf_config(LLAMA2_7B)
    assert arch.params == {
        "embeddings": 32000 * 4096,
        "attention_q": 32 * 4096 * 4096,
        "attention_k": 32 * 4096 * 4096,
        "attention_v": 32 * 4096 * 4096,
        "attention_o": 32 * 4096 * 4096,
        "mlp": 32 * 3 * 4096 * 11008,
        "norms": (2 * 32 + 1) * 4096,
        "lm_head": 32000 * 4096,
    }
    assert (arch.head_dim, arch.kv_width) == (128, 4096)


def test_gqa_shrinks_k_and_v_only():
    arch = read_hf_config(MISTRAL_7B)
    assert arch.params["attention_k"] == 32 * 4096 * 1024
    assert arch.params["attention_q"] == 32 * 4096 * 4096
    assert arch.n_kv_heads == 8


def test_qwen2_has_qkv_biases_and_tied_head():
    arch = read_hf_config(QWEN2_05B)
    assert arch.params["attention_k"] == 24 * (896 * 128 + 128)
    assert arch.params["attention_o"] == 24 * 896 * 896
    assert arch.params["lm_head"] == 0


def test_bert_without_pooler():
    arch = read_hf_config(BERT_BASE_UNCASED, include_pooler=False)
    assert arch.n_params == 109_482_240 - (768 * 768 + 768)
    assert not arch.is_decoder


def test_forward_flops_per_token_by_hand():
    arch = read_hf_config(LLAMA2_7B)
    matmul = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008) + 32000 * 4096
    assert arch.forward_flops_per_token(context=0) == 2 * matmul
    assert arch.forward_flops_per_token(context=2048) == 2 * matmul + 4 * 2048 * 4096 * 32


def test_tied_head_still_costs_flops():
    arch = read_hf_config(GPT2_SMALL)
    assert arch.matmul_params == 12 * (4 * 768 * 768 + 2 * 768 * 3072) + 50257 * 768


def test_bert_pooler_adds_no_per_token_flops():
    arch = read_hf_config(BERT_BASE_UNCASED)
    assert arch.matmul_params == 12 * (4 * 768 * 768 + 2 * 768 * 3072)


def test_negative_context_rejected():
    with pytest.raises(InputError, match="context"):
        read_hf_config(GPT2_SMALL).forward_flops_per_token(context=-1)


def test_reads_a_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(GPT2_SMALL))
    assert read_hf_config(path).n_params == 124_439_808
    assert read_hf_config(str(path)).n_params == 124_439_808


def test_unknown_model_type_names_file_and_families(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "mamba"}))
    with pytest.raises(InputError) as info:
        read_hf_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "'mamba'" in message
    assert "bert, gemma, gemma2, gpt2, llama, mistral, mixtral, qwen2" in message
    assert "\n" not in message


def test_missing_key_is_named():
    config = {k: v for k, v in LLAMA2_7B.items() if k != "intermediate_size"}
    with pytest.raises(InputError, match="missing required key 'intermediate_size'"):
        read_hf_config(config)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"hidden_size": "4096"}, "'hidden_size' must be a positive integer"),
        ({"num_key_value_heads": 5}, "not divisible by num_key_value_heads=5"),
        ({"tie_word_embeddings": "no"}, "'tie_word_embeddings' must be true or false"),
        ({"num_attention_heads": 3, "num_key_value_heads": 3}, "hidden_size=4096 is not divisible"),
    ],
)
def test_bad_values_are_named(change, match):
    with pytest.raises(InputError, match=match):
        read_hf_config(LLAMA2_7B | change)


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(InputError, match="cannot read config"):
        read_hf_config(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_hf_config(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(InputError, match="expected a JSON object"):
        read_hf_config(bad)


def test_mixtral_holds_every_expert_but_a_token_runs_two():
    dense, moe = read_hf_config(MISTRAL_7B), read_hf_config(MIXTRAL_8X7B)
    expert = 3 * 4096 * 14336
    assert moe.params["mlp"] == 32 * 8 * expert
    assert moe.params["router"] == 32 * 4096 * 8
    assert moe.n_params - dense.n_params == 32 * (7 * expert + 4096 * 8)
    # a token passes through the router and 2 experts: one expert more than mistral
    assert moe.matmul_params - dense.matmul_params == 32 * (expert + 4096 * 8)
    assert moe.matmul_params == 12_748_587_008  # Mixtral's "12.9B active" less embeddings
    assert moe.active_intermediate == 2 * 14336


def test_mixtral_activations_span_the_routed_experts():
    dense, moe = read_hf_config(MISTRAL_7B), read_hf_config(MIXTRAL_8X7B)
    tokens, bf16 = 4 * 1024, 2
    extra = layer_activation_bytes(moe, batch=4, seq=1024) - layer_activation_bytes(
        dense, batch=4, seq=1024
    )
    assert extra == bf16 * tokens * 14336 * 4  # the gated MLP's 4 tensors, one more expert


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"num_experts_per_tok": 9}, "num_experts_per_tok=9 exceeds num_local_experts=8"),
        ({"num_local_experts": None}, "missing required key 'num_local_experts'"),
    ],
)
def test_bad_mixtral_configs_are_named(change, match):
    config = {k: v for k, v in {**MIXTRAL_8X7B, **change}.items() if v is not None}
    with pytest.raises(InputError, match=match):
        read_hf_config(config)


def test_a_mixtral_decode_step_reads_only_the_experts_its_tokens_use():
    moe = read_hf_config(MIXTRAL_8X7B)
    total, experts = weight_bytes(moe, "bf16"), 2 * moe.params["mlp"]
    assert decode_weight_bytes(moe, "bf16", batch=1) == total - experts * 3 // 4
    assert decode_weight_bytes(moe, "bf16", batch=2) == total - experts * 9 // 16
    assert decode_weight_bytes(moe, "bf16", batch=64) == pytest.approx(total, rel=1e-7)
    dense = read_hf_config(MISTRAL_7B)
    assert decode_weight_bytes(dense, "bf16", batch=1) == weight_bytes(dense, "bf16")


def test_a_sliding_window_caps_what_a_layer_caches_and_attends():
    full = read_hf_config(MISTRAL_7B)
    windowed = read_hf_config({**MISTRAL_7B, "sliding_window": 4096})  # Mistral-7B v0.1
    per_position = 2 * 8 * 128 * 2  # k and v, 8 kv heads x 128, fp16
    assert kv_cache_bytes(full, batch=1, context=32768) == 32 * 32768 * per_position
    assert kv_cache_bytes(windowed, batch=1, context=32768) == 32 * 4096 * per_position
    assert kv_cache_bytes(windowed, batch=1, context=1024) == 32 * 1024 * per_position
    extra = full.forward_flops_per_token(context=32768) - windowed.forward_flops_per_token(
        context=32768
    )
    assert extra == 4 * (32768 - 4096) * 4096 * 32
    gemma2 = read_hf_config({**GEMMA2_9B, "sliding_window": 4096})
    assert gemma2.attended_tokens(8192) == 21 * 4096 + 21 * 8192  # even layers are local
    qwen = {**QWEN2_05B, "sliding_window": 4096, "max_window_layers": 20}
    assert read_hf_config(qwen).sliding_layers == 0  # only with use_sliding_window
    assert read_hf_config({**qwen, "use_sliding_window": True}).sliding_layers == 4
    assert read_hf_config({**LLAMA2_7B, "sliding_window": 4096}).sliding_layers == 0
