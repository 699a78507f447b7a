"""The transformers path: any model_type sized on fake tensors (needs torch and transformers).

Marked ``torch``: run with ``python -m pytest -m torch`` after ``pip install -e ".[torch]"``
(which brings transformers too).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from foresize.graph.hf_config import read_hf_config

NEOX = {
    "model_type": "gpt_neox", "hidden_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 4, "intermediate_size": 256, "vocab_size": 100,
    "max_position_embeddings": 32,
}  # fmt: skip


@pytest.mark.torch
def test_a_family_without_closed_form_is_sized_on_fake_tensors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from foresize.cli.main import main

    (tmp_path / "config.json").write_text(json.dumps(NEOX))
    args = ["profile", "model", str(tmp_path), "--dtype", "fp32", "--batch", "2", "--train"]
    assert main([*args, "-f", "json"]) == 0
    report = json.loads(capsys.readouterr().out)["model"]
    assert report["path"].startswith("transformers on fake tensors")
    assert report["class"] == "GPTNeoXForCausalLM"
    # embeddings in and out 2 x 100 x 64; per layer two LayerNorms 256, qkv 64 x 192 + 192,
    # dense 64 x 64 + 64, MLP 64 x 256 + 256 and 256 x 64 + 64; the final LayerNorm 128
    per_layer = 256 + 64 * 192 + 192 + 64 * 64 + 64 + 64 * 256 + 256 + 256 * 64 + 64
    assert report["parameters"]["total"] == 2 * 100 * 64 + 2 * per_layer + 128
    # 2 x 32 tokens; every weight matrix once per token at least
    assert report["flops"]["forward"] > 2 * 64 * (2 * per_layer + 100 * 64)
    assert report["inference"]["weight_bytes"] >= 4 * report["parameters"]["total"]
    training = report["training"]
    assert sum(training["components_bytes"].values()) == training["total_bytes"]
    assert 0 < training["components_bytes"]["gradients"] <= 4 * report["parameters"]["total"]
    assert main([*args, "--tp", "2"]) == 2  # no closed form: nothing to split by


@pytest.mark.torch
def test_the_fake_tensor_path_agrees_with_a_closed_form() -> None:
    from foresize.graph.hf_meta import size_with_transformers

    llama = {
        "model_type": "llama", "hidden_size": 64, "intermediate_size": 176,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "vocab_size": 100, "max_position_embeddings": 64,
    }  # fmt: skip
    report = size_with_transformers(llama, batch=1, context=64, dtype="fp32")
    arch = read_hf_config(llama)
    assert report["parameters"]["total"] == arch.n_params
    per_token = arch.forward_flops_per_token(context=64)
    assert report["flops"]["forward_per_token"] == pytest.approx(per_token, rel=0.05)
