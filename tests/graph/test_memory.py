"""Known-answer tests for inference and training memory."""

import pytest

from foresize.core.errors import InputError, UnknownNameError
from foresize.graph.hf_config import read_hf_config
from foresize.graph.memory import (
    inference_memory,
    inference_workspace_bytes,
    kv_cache_bytes,
    layer_activation_bytes,
    training_memory,
    weight_bytes,
)

from .test_hf_config import BERT_BASE_UNCASED, GPT2_SMALL, LLAMA2_7B, MISTRAL_7B

N_7B = 6_738_415_616
STATE_KINDS = ("weights", "gradients", "master_weights", "optimizer_state")


@pytest.fixture(scope="module")
def llama():
    return read_hf_config(LLAMA2_7B)


def _state(breakdown):
    return sum(breakdown.components[k] for k in STATE_KINDS)


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("fp32", 4 * N_7B),
        ("bf16", 13_476_831_232),
        ("fp16", 2 * N_7B),
        ("int8", N_7B),
        ("int4", N_7B // 2),
    ],
)
def test_weight_bytes_by_dtype(llama, dtype, expected):
    assert weight_bytes(llama, dtype) == expected


def test_unknown_dtype_suggests(llama):
    with pytest.raises(UnknownNameError, match="Did you mean 'bf16'"):
        weight_bytes(llama, "bf61")


def test_kv_cache_llama2_7b_is_2_gib(llama):
    assert kv_cache_bytes(llama, batch=1, context=4096, dtype="fp16") == 2 * 2**30


def test_kv_cache_shrinks_with_gqa():
    mistral = read_hf_config(MISTRAL_7B)
    assert kv_cache_bytes(mistral, batch=1, context=4096) == 2 * 2**30 // 4


def test_encoder_has_no_kv_cache():
    assert kv_cache_bytes(read_hf_config(BERT_BASE_UNCASED), batch=8, context=512) == 0


def test_inference_memory_components(llama):
    memory = inference_memory(llama, dtype="bf16", batch=1, context=4096)
    workspace = 4096 * (2 * 4096 + 2 * 11008) * 2 + 32000 * 4
    assert memory.components == {
        "weights": 13_476_831_232,
        "kv_cache": 2 * 2**30,
        "workspace": workspace,
    }
    assert memory.total_bytes == 13_476_831_232 + 2 * 2**30 + workspace


def test_inference_defaults_and_tensor_parallel(llama):
    default = inference_memory(llama)  # context defaults to max_position_embeddings = 4096
    split = inference_memory(llama, tensor_parallel=2)
    assert split.components["weights"] == default.components["weights"] // 2
    assert split.components["kv_cache"] == 2**30


def test_quantised_weights_keep_a_16_bit_cache(llama):
    memory = inference_memory(llama, dtype="int4", context=4096)
    assert memory.components["kv_cache"] == 2 * 2**30
    assert memory.components["weights"] == N_7B // 2
    assert inference_workspace_bytes(llama, batch=1, context=1, dtype="int4") == (
        (2 * 4096 + 2 * 11008) * 2 + 32000 * 4
    )


def test_context_required_when_config_has_none():
    with pytest.raises(InputError, match="pass a context length"):
        inference_memory(read_hf_config(MISTRAL_7B))


def test_adamw_mixed_precision_is_16_bytes_per_param(llama):
    memory = training_memory(llama, batch=1, seq=4096, precision="bf16", optimizer="adamw")
    assert memory.components["weights"] == 2 * N_7B
    assert memory.components["gradients"] == 2 * N_7B
    assert memory.components["master_weights"] == 4 * N_7B
    assert memory.components["optimizer_state"] == 8 * N_7B
    assert _state(memory) == 107_814_649_856


def test_zero3_over_8_divides_the_state_by_8(llama):
    memory = training_memory(llama, batch=1, seq=4096, zero_stage=3, data_parallel=8)
    assert _state(memory) == 107_814_649_856 // 8


@pytest.mark.parametrize(
    ("stage", "bytes_per_param"),
    [(0, 16), (1, 2 + 2 + 12 / 4), (2, 2 + (2 + 12) / 4), (3, 16 / 4)],
)
def test_zero_stages_shard_progressively(llama, stage, bytes_per_param):
    memory = training_memory(llama, batch=1, seq=1, zero_stage=stage, data_parallel=4)
    assert _state(memory) == bytes_per_param * N_7B


@pytest.mark.parametrize(
    ("optimizer", "precision", "bytes_per_param"),
    [
        ("sgd", "fp32", 8),
        ("sgd_momentum", "fp32", 12),
        ("adam", "fp32", 16),
        ("sgd", "bf16", 8),
        ("adam", "fp16", 16),
    ],
)
def test_optimizer_and_precision_state(llama, optimizer, precision, bytes_per_param):
    memory = training_memory(llama, batch=1, seq=1, optimizer=optimizer, precision=precision)
    assert _state(memory) == bytes_per_param * N_7B


def test_tensor_parallel_divides_state(llama):
    memory = training_memory(llama, batch=1, seq=1, tensor_parallel=4)
    assert _state(memory) == 4 * N_7B


def test_korthikanti_gpt_layer_formula():
    """sbh(34 + 5as/h) bytes per layer, and sbh(10 + 24/t + 5as/(ht)) under tensor parallel t."""
    gpt2 = read_hf_config(GPT2_SMALL)
    s, b, h, a = 1024, 4, 768, 12
    eager = layer_activation_bytes(gpt2, batch=b, seq=s, attention="eager")
    assert eager == s * b * h * 34 + 5 * a * s * s * b
    split = layer_activation_bytes(gpt2, batch=b, seq=s, attention="eager", tensor_parallel=4)
    assert split == s * b * h * (10 + 24 // 4) + 5 * a * s * s * b // 4


def test_llama_layer_activations_by_hand(llama):
    t, h, i = 2 * 4096, 4096, 11008
    expected = 2 * t * (4 * h + 4 * h + 4 * i) + 4 * 2 * 32 * 4096
    assert layer_activation_bytes(llama, batch=2, seq=4096) == expected


def test_training_activations_and_recompute(llama):
    kwargs = {"batch": 1, "seq": 4096}
    plain = training_memory(llama, **kwargs).components
    per_layer = layer_activation_bytes(llama, **kwargs)
    assert plain["activations"] == 32 * per_layer
    assert plain["recompute_workspace"] == 0
    assert plain["logits"] == 4096 * 32000 * 4
    full = training_memory(llama, recompute="full", **kwargs).components
    assert full["activations"] == 32 * 4096 * 4096 * 2
    assert full["recompute_workspace"] == per_layer
    zero = training_memory(llama, zero_stage=3, data_parallel=8, **kwargs).components
    assert zero["activations"] == plain["activations"]  # ZeRO does not shard activations


def test_encoder_training_has_no_logits():
    bert = read_hf_config(BERT_BASE_UNCASED)
    assert training_memory(bert, batch=8, seq=512).components["logits"] == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"optimizer": "adagrad"}, UnknownNameError, "valid: sgd, sgd_momentum, adam, adamw"),
        ({"zero_stage": 4}, InputError, "zero_stage must be 0, 1, 2 or 3"),
        ({"precision": "int8"}, InputError, "training precision"),
        ({"data_parallel": 0}, InputError, "data_parallel must be a positive integer"),
    ],
)
def test_bad_training_options(llama, kwargs, error, match):
    with pytest.raises(error, match=match):
        training_memory(llama, batch=1, seq=1, **kwargs)
