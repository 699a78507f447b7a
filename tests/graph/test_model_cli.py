from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from foresize.cli.main import main

CONFIGS = Path(__file__).parent / "configs"
LLAMA2_7B = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 32, "intermediate_size": 11008,
             "vocab_size": 32000, "max_position_embeddings": 4096,
             "tie_word_embeddings": False}


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def mlp(path: Path) -> Path:
    """x[batch, 4] -> MatMul 4x8 -> Relu -> MatMul 8x2: per row 32 + 16 MACs."""
    w1 = numpy_helper.from_array(np.ones((4, 8), dtype=np.float32), "w1")
    w2 = numpy_helper.from_array(np.ones((8, 2), dtype=np.float32), "w2")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["y"])],
        "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])], [w1, w2])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_config_json_sizes_llama2_7b(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA2_7B))
    code, out, err = run(["profile", "model", str(tmp_path), "--context", "4096", "-f", "json"],
                         capsys)
    assert code == 0, err
    report = json.loads(out)["model"]
    assert report["parameters"]["total"] == 6_738_415_616
    assert report["inference"]["components_bytes"]["kv_cache"] == 2 * 2**30
    assert report["inference"]["decode_bound"] == "memory"
    code, out, _ = run(["profile", "model", str(tmp_path / "config.json"), "--train", "--zero",
                        "3", "--dp", "8"], capsys)
    assert code == 0
    assert "training.total_bytes" in out


def _published() -> dict[str, int]:
    with (CONFIGS / "published.csv").open(newline="") as handle:
        return {row["config"]: int(row["parameters"]) for row in csv.DictReader(handle)}


@pytest.mark.parametrize(("name", "expected"), sorted(_published().items()))
def test_every_family_config_profiles(name: str, expected: int,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`foresize profile model` sizes each family's published config, training included."""
    code, out, err = run(["profile", "model", str(CONFIGS / f"{name}.json"), "--context", "2048",
                          "--train", "-f", "json"], capsys)
    assert code == 0, err
    report = json.loads(out)["model"]
    assert report["parameters"]["total"] == expected
    assert report["inference"]["components_bytes"]["weights"] == 2 * expected  # bf16
    # timed over the devices it needs
    assert report["inference"]["tensor_parallel"] == report["inference"]["devices_needed"]
    assert report["training"]["step_flops"] > 6 * report["parameters"]["active"] * 2048 * 0.5


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"num_attention_heads": 48},
         "hidden_size=4096 is not divisible by num_attention_heads=48"),
        ({"num_experts_per_tok": 9}, "num_experts_per_tok=9 exceeds num_local_experts=8"),
        ({"hidden_size": None}, "'hidden_size' is null"),
    ],
)
def test_contradicting_config_is_one_line_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, object], key: str
) -> None:
    config = json.loads((CONFIGS / "mixtral_8x7b.json").read_text()) | change
    (tmp_path / "config.json").write_text(json.dumps(config))
    code, out, err = run(["profile", "model", str(tmp_path)], capsys)
    assert code == 3
    assert out == ""
    first = err.splitlines()[0]
    assert key in first
    assert first.startswith(f"Error: {tmp_path / 'config.json'}: ")
    assert "Traceback" not in err


def test_onnx_flops_by_hand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = mlp(tmp_path / "mlp.onnx")
    code, out, err = run(["profile", "model", str(path), "--dim", "batch=8", "-f", "json"], capsys)
    assert code == 0, err
    report = json.loads(out)["model"]
    assert report["parameters"] == 4 * 8 + 8 * 2
    assert report["macs"] == 8 * (4 * 8 + 8 * 2)
    assert report["flops"] == 2 * report["macs"] + 8 * 8  # Relu: one FLOP per element
    assert report["coverage_pct"] == 100.0


def test_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                    monkeypatch: pytest.MonkeyPatch) -> None:
    # without transformers, a family with no closed form is an error naming the families
    monkeypatch.setattr("foresize.cli.model.transformers_available", lambda: False)
    path = mlp(tmp_path / "mlp.onnx")
    code, _, err = run(["profile", "model", str(path)], capsys)
    assert code == 3
    assert "--dim batch=" in err
    (tmp_path / "t5.json").write_text(json.dumps({"model_type": "mamba"}))
    code, _, err = run(["profile", "model", str(tmp_path / "t5.json")], capsys)
    assert code == 3
    assert "mamba" in err
    assert "supported: bart, bert, deepseek_v2, deepseek_v3, falcon, gemma" in err
    (tmp_path / "config.json").write_text(json.dumps(LLAMA2_7B))
    code, _, err = run(["profile", "model", str(tmp_path), "--device", "h100_sxn"], capsys)
    assert code == 2  # a flag's value: a usage error
    assert "Did you mean 'h100_sxm'?" in err
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(path.read_bytes()[:40])
    code, _, err = run(["profile", "model", str(broken), "--dim", "batch=1"], capsys)
    assert code == 3
    assert "broken.onnx" in err.splitlines()[0]
    assert "Traceback" not in err


def test_by_layer_groups_scoped_node_names(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Two 4x4 blocks and a 4x2 head, scoped as a torch exporter names them."""
    inits = [numpy_helper.from_array(np.ones(shape, dtype=np.float32), name)
             for name, shape in (("w0", (4, 4)), ("w1", (4, 4)), ("wh", (4, 2)))]
    nodes = [helper.make_node("MatMul", ["x", "w0"], ["h0"], name="/layers.0/mlp/MatMul"),
             helper.make_node("Relu", ["h0"], ["r0"], name="/layers.0/act/Relu"),
             helper.make_node("MatMul", ["r0", "w1"], ["h1"], name="/layers.1/mlp/MatMul"),
             helper.make_node("MatMul", ["h1", "wh"], ["y"], name="/head/MatMul")]
    graph = helper.make_graph(nodes, "scoped",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2])],
                              inits)
    path = tmp_path / "scoped.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    code, out, err = run(["profile", "model", str(path), "--by-layer", "-f", "json"], capsys)
    assert code == 0, err
    layers = {row["layer"]: row for row in json.loads(out)["layers"]}
    assert list(layers) == ["layers.0", "layers.1", "head"]
    assert layers["layers.0"]["macs"] == 3 * 4 * 4
    assert layers["layers.0"]["flops"] == 2 * 3 * 4 * 4 + 3 * 4  # plus the Relu
    assert layers["layers.0"]["n_ops"] == 2
    assert layers["head"]["macs"] == 3 * 4 * 2


def test_pipeline_stages_on_a_config_and_not_on_a_graph(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA2_7B))
    args = ["profile", "model", str(tmp_path), "--train", "--batch", "8", "--pp", "4"]
    code, out, err = run([*args, "-f", "json"], capsys)
    assert code == 0, err
    report = json.loads(out)["model"]
    assert report["path"].startswith("closed form")
    assert report["inference"]["pipeline_parallel"] == 4
    assert report["training"]["bubble_fraction"] == pytest.approx(3 / 11)
    code, _, err = run(["profile", "model", str(mlp(tmp_path / "mlp.onnx")), "--dim",
                        "batch=1", "--pp", "2"], capsys)  # fmt: skip
    assert code == 2
    assert "splits heads and MLP columns or layers" in err
