"""Exact parameter counts and FLOPs from Hugging Face configs (written here, no network).

``configs/`` holds one config.json per published checkpoint, with the keys (and the
explicit nulls) its public config carries; ``configs/published.csv`` their parameter
counts, as built by ``benchmarks/count_hf_params.py`` (see datasets/hf-config-parameters.md).
"""

import csv
import json
from pathlib import Path

import pytest

from foresize.core.errors import InputError
from foresize.graph.hf_config import SUPPORTED_FAMILIES, read_hf_config
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
CONFIGS = Path(__file__).parent / "configs"
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


def _published() -> list[dict[str, str]]:
    with (CONFIGS / "published.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("row", _published(), ids=lambda row: row["config"])
def test_published_parameter_counts(row):
    """Every family's fixture config gives the count its published checkpoint has."""
    assert read_hf_config(CONFIGS / f"{row['config']}.json").n_params == int(row["parameters"])


def test_every_family_has_a_published_fixture():
    families = {json.loads((CONFIGS / f"{row['config']}.json").read_text())["model_type"]
                for row in _published()}
    assert families == set(SUPPORTED_FAMILIES)


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
    assert ", ".join(SUPPORTED_FAMILIES) in message
    assert "deepseek_v3, falcon, gemma" in message
    assert "\n" not in message


def test_missing_key_is_named():
    config = {k: v for k, v in LLAMA2_7B.items() if k != "intermediate_size"}
    with pytest.raises(InputError, match="required key 'intermediate_size' is missing"):
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
    assert moe.params["experts"] == 32 * 8 * expert
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
        ({"num_local_experts": None}, "required key 'num_local_experts' is missing"),
    ],
)
def test_bad_mixtral_configs_are_named(change, match):
    config = {k: v for k, v in {**MIXTRAL_8X7B, **change}.items() if v is not None}
    with pytest.raises(InputError, match=match):
        read_hf_config(config)


def test_a_mixtral_decode_step_reads_only_the_experts_its_tokens_use():
    moe = read_hf_config(MIXTRAL_8X7B)
    total, experts = weight_bytes(moe, "bf16"), 2 * moe.params["experts"]
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


def _fixture(name: str) -> dict[str, object]:
    return json.loads((CONFIGS / f"{name}.json").read_text())


# ------------------------------------------------------------ nulls, as save_pretrained writes


def test_a_null_key_means_the_default():
    """save_pretrained writes unset attributes as null; they are not missing."""
    assert read_hf_config({**GPT2_SMALL, "n_inner": None}).intermediate == 4 * 768
    assert read_hf_config({**MIXTRAL_8X7B, "head_dim": None}).head_dim == 128
    assert read_hf_config({**QWEN2_05B, "sliding_window": None}).sliding_window is None
    assert read_hf_config({**LLAMA2_7B, "num_key_value_heads": None}).n_kv_heads == 32
    assert read_hf_config({**LLAMA2_7B, "tie_word_embeddings": None}).params["lm_head"] > 0
    assert read_hf_config({**GEMMA_7B, "head_dim": None}).head_dim == 256  # gemma's default
    phi2 = _fixture("phi_2")
    assert phi2["num_key_value_heads"] is None
    assert read_hf_config(phi2).n_kv_heads == 32


def test_a_null_required_key_says_null():
    with pytest.raises(InputError, match="required key 'vocab_size' is null for model_type 'gpt2'"):
        read_hf_config({**GPT2_SMALL, "vocab_size": None})


# ------------------------------------------------------------ contradicting sizes


@pytest.mark.parametrize(
    ("name", "change", "match"),
    [
        ("qwen3_30b_a3b", {"num_experts_per_tok": 129},
         "num_experts_per_tok=129 exceeds num_experts=128"),
        ("qwen1.5_moe_a2.7b", {"num_experts_per_tok": 61},
         "num_experts_per_tok=61 exceeds num_experts=60"),
        ("deepseek_v3", {"num_experts_per_tok": 257},
         "num_experts_per_tok=257 exceeds n_routed_experts=256"),
        ("deepseek_v3", {"first_k_dense_replace": 62},
         "first_k_dense_replace=62 exceeds num_hidden_layers=61"),
        ("qwen3_30b_a3b", {"mlp_only_layers": [3, 48]}, "'mlp_only_layers' lists layer 48"),
        ("qwen3_30b_a3b", {"head_dim": None, "num_attention_heads": 24,
                           "num_key_value_heads": 4},
         "hidden_size=2048 is not divisible by num_attention_heads=24"),
        ("phi3_mini_4k", {"num_attention_heads": 40, "num_key_value_heads": 40},
         "hidden_size=3072 is not divisible by num_attention_heads=40"),
        ("falcon_7b", {"num_attention_heads": 70}, "hidden_size=4544 is not divisible"),
        ("falcon_40b", {"num_kv_heads": 7}, "num_attention_heads=128 is not divisible by "
                                            "num_kv_heads=7"),
        ("bart_base", {"encoder_attention_heads": 7}, "d_model=768 is not divisible by "
                                                      "encoder_attention_heads=7"),
        ("t5_small", {"d_kv": 0}, "'d_kv' must be a positive integer, got 0"),
        ("gpt2", {"resid_pdrop": 2}, "'resid_pdrop' must be a number in \\[0, 1\\]"),
        ("flan_t5_base", {"feed_forward_proj": 3}, "'feed_forward_proj' must be a string"),
    ],
)
def test_contradicting_sizes_name_the_keys(name, change, match):
    with pytest.raises(InputError, match=match) as info:
        read_hf_config(_fixture(name) | change)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------ families, by hand


def test_phi3_fuses_projections_without_changing_counts():
    arch = read_hf_config(_fixture("phi3_mini_4k"))
    assert arch.params["attention_q"] == 32 * 3072 * 3072
    assert arch.params["mlp"] == 32 * 3 * 3072 * 8192
    assert (arch.sliding_window, arch.sliding_layers) == (2047, 32)
    assert arch.matmul_params == 32 * (4 * 3072**2 + 3 * 3072 * 8192) + 32064 * 3072


def test_phi_has_biases_everywhere_and_a_biased_head():
    arch = read_hf_config(_fixture("phi_2"))
    assert arch.params["lm_head"] == 51200 * 2560 + 51200
    assert arch.params["attention_q"] == 32 * (2560 * 2560 + 2560)
    assert arch.has_dropout  # resid_pdrop 0.1
    with_qk = read_hf_config(_fixture("phi_2") | {"qk_layernorm": True})
    assert with_qk.n_params - arch.n_params == 32 * 2 * 2 * 80  # two LayerNorms of head_dim


def test_falcon_multi_query_caches_one_kv_head():
    seven = read_hf_config(_fixture("falcon_7b"))
    assert seven.n_kv_heads == 1
    assert seven.kv_cache_width == 2 * 64
    assert seven.params["norms"] == (32 + 1) * 2 * 4544  # parallel block: one LayerNorm
    assert kv_cache_bytes(seven, batch=1, context=2048) == 32 * 2048 * 128 * 2
    forty = read_hf_config(_fixture("falcon_40b"))
    assert forty.n_kv_heads == 8
    assert forty.params["norms"] == (2 * 60 + 1) * 2 * 8192  # ln_attn and ln_mlp
    old_spelling = {k: v for k, v in _fixture("falcon_7b").items()
                    if k not in ("num_attention_heads", "num_hidden_layers")}
    assert read_hf_config(old_spelling | {"n_head": 71, "n_layer": 32}).n_params == seven.n_params


def test_qwen3_norms_each_query_and_key_head():
    arch = read_hf_config(_fixture("qwen3_0.6b"))
    assert arch.params["norms"] == 28 * (2 * 1024 + 2 * 128) + 1024
    assert arch.head_dim == 128  # 16 heads x 128 = 2048 != hidden 1024
    assert arch.attention_width == 2048


def test_qwen_moe_layers_follow_the_sparse_step_and_dense_list():
    config = _fixture("qwen3_30b_a3b")
    arch = read_hf_config(config)
    expert = 3 * 2048 * 768
    assert arch.params["experts"] == 48 * 128 * expert
    assert arch.params["router"] == 48 * 2048 * 128
    assert arch.active_intermediate == 8 * 768
    half = read_hf_config(config | {"decoder_sparse_step": 2, "mlp_only_layers": [1]})
    # layers 1, 3, ..., 47 are sparse by the step; layer 1 is listed dense: 23 sparse
    assert half.params["experts"] == 23 * 128 * expert
    assert half.params["mlp"] == 25 * 3 * 2048 * 6144
    qwen2 = read_hf_config(_fixture("qwen1.5_moe_a2.7b"))
    # the shared expert (5632 wide) and its 1-wide gate run for every token
    assert qwen2.params["mlp"] == 24 * 3 * 2048 * 5632
    assert qwen2.params["router"] == 24 * 2048 * (60 + 1)
    assert qwen2.active_intermediate == 4 * 1408 + 5632


def test_deepseek_mla_caches_the_latent():
    arch = read_hf_config(_fixture("deepseek_v3"))
    assert arch.kv_cache_width == 512 + 64
    assert kv_cache_bytes(arch, batch=1, context=4096) == 61 * 4096 * 576 * 2
    assert (arch.head_dim, arch.value_head_dim) == (192, 128)
    # per attended position and layer: 2 x 128 heads x (192 + 128)
    extra = arch.forward_flops_per_token(context=1) - arch.forward_flops_per_token(context=0)
    assert extra == 61 * 2 * 128 * (192 + 128)
    q = 7168 * 1536 + 1536 * 128 * 192
    kv = 7168 * 576 + 512 * 128 * 256
    assert arch.params["attention_q"] == 61 * q
    assert arch.params["attention_kv"] == 61 * kv
    # 3 dense layers, 58 with 256 routed experts and one shared one, all 2048 wide
    assert arch.params["experts"] == 58 * 256 * 3 * 7168 * 2048
    assert arch.params["mlp"] == 3 * 3 * 7168 * 18432 + 58 * 3 * 7168 * 2048


def test_deepseek_null_q_lora_rank_means_no_compression():
    lite = _fixture("deepseek_v2_lite")
    assert lite["q_lora_rank"] is None
    arch = read_hf_config(lite)
    assert arch.params["attention_q"] == 27 * 2048 * 16 * 192
    absent = {k: v for k, v in lite.items() if k != "q_lora_rank"}
    compressed = read_hf_config(absent)  # the class default, 1536
    assert compressed.params["attention_q"] == 27 * (2048 * 1536 + 1536 * 16 * 192)


def test_moe_active_parameters_match_the_published_active_counts():
    mixtral = read_hf_config(MIXTRAL_8X7B)
    assert mixtral.n_active_params == mixtral.n_params - 32 * 6 * 3 * 4096 * 14336
    # published to one decimal, rounded (Mistral) or truncated (Qwen)
    assert mixtral.n_active_params / 1e9 == pytest.approx(12.9, abs=0.06)
    assert read_hf_config(_fixture("qwen3_30b_a3b")).n_active_params / 1e9 == pytest.approx(
        3.3, abs=0.06)
    assert read_hf_config(_fixture("qwen1.5_moe_a2.7b")).n_active_params / 1e9 == pytest.approx(
        2.7, abs=0.06)
    assert read_hf_config(LLAMA2_7B).n_active_params == 6_738_415_616


def test_t5_runs_the_encoder_once_and_the_decoder_per_token():
    arch = read_hf_config(_fixture("t5_small"))
    d, inner, ff = 512, 512, 2048
    assert arch.encoder_matmul_params == 6 * (4 * d * inner + 2 * d * ff) + 6 * 2 * d * inner
    assert arch.matmul_params == 6 * (6 * d * inner + 2 * d * ff) + 32128 * d
    assert arch.encoder_flops_per_token(context=100) == (
        2 * arch.encoder_matmul_params + 6 * 100 * 4 * inner
    )
    # decoder: self-attention over the prefix and cross-attention over the source
    assert arch.forward_flops_per_token(context=100) == (
        2 * arch.matmul_params + 2 * 6 * 100 * 4 * inner
    )
    assert arch.prefill_flops_per_token(context=100) == arch.encoder_flops_per_token(context=100)
    # self and cross keys and values, per decoder layer and position
    assert kv_cache_bytes(arch, batch=1, context=100, dtype="fp32") == 2 * 6 * 100 * 2 * 512 * 4
    assert arch.encoder_params == 6 * (4 * d * inner + 2 * d * ff + 2 * d) + 32 * 8 + d


def test_an_encoder_decoder_decode_step_reads_only_the_decoder():
    arch = read_hf_config(_fixture("bart_base"))
    assert decode_weight_bytes(arch, "fp32", batch=1) == 4 * (arch.n_params - arch.encoder_params)
    assert arch.encoder_params == 6 * 7_087_872 + 1026 * 768 + 2 * 768


def test_flan_t5_stores_its_own_head_and_gates_its_mlp():
    arch = read_hf_config(_fixture("flan_t5_base"))
    assert arch.gated_mlp
    assert arch.params["lm_head"] == 32128 * 768
    assert arch.params["mlp"] == 24 * 3 * 768 * 2048
