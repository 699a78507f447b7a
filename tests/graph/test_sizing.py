from __future__ import annotations

import pytest

from foresize.graph.devices import get_device
from foresize.graph.hf_config import read_hf_config
from foresize.graph.sizing import SizingRequest, size_architecture

LLAMA2_7B = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 32, "intermediate_size": 11008,
             "vocab_size": 32000, "max_position_embeddings": 4096,
             "tie_word_embeddings": False}


def test_llama2_7b_inference_on_h100_by_hand() -> None:
    report = size_architecture(read_hf_config(LLAMA2_7B),
                               SizingRequest(batch=1, context=4096, device="h100_sxm"))
    assert report["parameters"]["total"] == 6_738_415_616
    inference = report["inference"]
    assert inference["components_bytes"]["weights"] == 2 * 6_738_415_616
    assert inference["components_bytes"]["kv_cache"] == 2 * 2**30
    h100 = get_device("h100_sxm")
    # a decode step reads every weight and the whole KV cache once: memory-bound
    step_bytes = 2 * 6_738_415_616 + 2 * 2**30
    assert inference["decode_bound"] == "memory"
    assert inference["decode_step_s"] == pytest.approx(step_bytes / h100.bandwidth_bytes_per_s)
    # prefill of 4096 tokens is compute-bound
    assert inference["prefill_bound"] == "compute"
    assert inference["prefill_s"] == pytest.approx(
        report["flops"]["forward_per_token"] * 4096 / h100.peak("bf16"))
    assert inference["devices_needed"] == 1


def test_training_step_with_zero3_and_recompute() -> None:
    arch = read_hf_config(LLAMA2_7B)
    plain = size_architecture(arch, SizingRequest(batch=1, context=2048, train=True))
    sharded = size_architecture(arch, SizingRequest(batch=1, context=2048, train=True,
                                                    zero_stage=3, data_parallel=8,
                                                    recompute="full"))
    state = ("weights", "gradients", "master_weights", "optimizer_state")
    full = sum(plain["training"]["components_bytes"][k] for k in state)
    assert full == 16 * 6_738_415_616  # AdamW, mixed precision: 16 bytes per parameter
    assert sum(sharded["training"]["components_bytes"][k] for k in state) == full // 8
    assert not plain["training"]["fits_on_device"]  # 108 GB of state > 80 GiB
    assert sharded["training"]["fits_on_device"]
    tokens_flops = plain["flops"]["forward_per_token"] * 2048
    assert plain["training"]["step_flops"] == 3 * tokens_flops
    assert sharded["training"]["step_flops"] == 4 * tokens_flops  # forward recomputed


def test_encoders_have_no_decode_step() -> None:
    bert = {"model_type": "bert", "hidden_size": 768, "num_hidden_layers": 12,
            "num_attention_heads": 12, "intermediate_size": 3072, "vocab_size": 30522,
            "max_position_embeddings": 512, "type_vocab_size": 2}
    report = size_architecture(read_hf_config(bert), SizingRequest(batch=8, context=128))
    assert "decode_step_s" not in report["inference"]
    assert report["parameters"]["total"] == 109_482_240


def test_a_model_that_needs_two_devices_is_timed_on_two():
    """LLaMA-3.1-70B in bf16 needs two H200s; each streams half the weights per token, and
    two all-reduces per layer cross NVLink (900 GB/s both ways)."""
    from pathlib import Path

    from foresize.graph.memory import decode_weight_bytes, kv_cache_bytes

    arch = read_hf_config(Path(__file__).parent / "configs" / "llama3.1_70b.json")
    report = size_architecture(arch, SizingRequest(context=8192, device="h200"))
    inference = report["inference"]
    assert (inference["devices_needed"], inference["tensor_parallel"]) == (2, 2)
    h200 = get_device("h200")
    step_bytes = decode_weight_bytes(arch, "bf16", batch=1) + kv_cache_bytes(
        arch, batch=1, context=8192, dtype="bf16")
    # 2 per layer of 8192 x bf16, each NCCL's 8.4 us base and 2 ring steps of 3.4 us
    allreduce = 2 * 80 * (8.4e-6 + 2 * 3.4e-6 + 2 * 1 / 2 * 8192 * 2 / (900e9 / 2))
    assert inference["decode_allreduce_s"] == pytest.approx(allreduce)
    assert inference["decode_step_s"] == pytest.approx(
        step_bytes / 2 / h200.bandwidth_bytes_per_s + allreduce)
    alone = size_architecture(arch, SizingRequest(context=8192, device="h200", tensor_parallel=4))
    assert alone["inference"]["tensor_parallel"] == 4
    assert alone["inference"]["decode_step_s"] < inference["decode_step_s"]


def test_pipeline_stages_hold_a_share_and_run_one_after_another():
    """LLaMA-3.1-70B in bf16 on two H200s as two pipeline stages instead of tensor parallel."""
    from pathlib import Path

    from foresize.graph.memory import decode_weight_bytes, kv_cache_bytes, training_memory

    arch = read_hf_config(Path(__file__).parent / "configs" / "llama3.1_70b.json")
    request = SizingRequest(context=8192, device="h200", pipeline_parallel=2)
    inference = size_architecture(arch, request)["inference"]
    assert (inference["tensor_parallel"], inference["pipeline_parallel"]) == (1, 2)
    h200 = get_device("h200")
    step_bytes = decode_weight_bytes(arch, "bf16", batch=1) + kv_cache_bytes(
        arch, batch=1, context=8192, dtype="bf16")
    # each stage streams its half in turn, then hands 8192 bf16 values to the next
    send = 3.4e-6 + 8192 * 2 / (900e9 / 2)
    assert inference["decode_step_s"] == pytest.approx(step_bytes / h200.bandwidth_bytes_per_s
                                                       + send)
    train = SizingRequest(batch=8, context=4096, device="h200", train=True, pipeline_parallel=4)
    step = size_architecture(arch, train)["training"]
    assert step["microbatches"] == 8
    assert step["bubble_fraction"] == pytest.approx(3 / 11)
    # stage 1 holds 4 microbatches in flight; every component is a quarter of that
    whole = training_memory(arch, batch=4, seq=4096, precision="bf16", optimizer="adamw")
    assert step["total_bytes"] == sum(-(-v // 4) for v in whole.components.values())
