"""Regenerate the bundled example inputs under examples/ (run from the repository root).

    FORESIZE_DATA_MIRROR=../shared/datasets/alibaba-clusterdata python examples/make_examples.py

Every file is either copied from foresize's own bundled references, built with a public
API (onnx.helper), or a small extract of a public trace read through foresize's own
dataset registry (sha256-checked), so the examples are the data the README describes
and stay a few hundred KB in all. examples/README.md says what each file is.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import polars as pl
from onnx import TensorProto, helper, numpy_helper

from foresize.ingest.datasets import extracted_path
from foresize.ingest.sources import TelemetrySource, read_canonical

HERE = Path(__file__).resolve().parent
REFERENCE = HERE.parent / "src" / "foresize" / "graph" / "reference"
PRICES = HERE.parent / "src" / "foresize" / "recommend" / "prices.toml"

# GenTD26 pod_memory_util: the 8 containers with the most varied day, split at noon UTC
# into the history a plan is made from and the telemetry it is replayed on.
MEMORY_CONTAINERS = 8
SPLIT = "2022-09-11T12:00:00"
# GenTD26 pod_gpu_duty_cycle, raw CSV: the first 6 hours of the 3 busiest containers.
DUTY_CONTAINERS = 3
DUTY_SECONDS = 6 * 3600

# GPT-NeoX-20B's published config.json (EleutherAI/gpt-neox-20b, Apache-2.0): a
# model_type foresize sizes through transformers (the torch extra), not natively.
GPT_NEOX_20B = """{
  "architectures": ["GPTNeoXForCausalLM"],
  "bos_token_id": 0,
  "eos_token_id": 2,
  "hidden_act": "gelu_fast",
  "hidden_size": 6144,
  "initializer_range": 0.02,
  "intermediate_size": 24576,
  "layer_norm_eps": 1e-05,
  "max_position_embeddings": 2048,
  "model_type": "gpt_neox",
  "num_attention_heads": 64,
  "num_hidden_layers": 44,
  "rotary_emb_base": 10000,
  "rotary_pct": 0.25,
  "tie_word_embeddings": false,
  "torch_dtype": "float16",
  "use_cache": true,
  "use_parallel_residual": true,
  "vocab_size": 50432
}
"""

# A small price table in the default table's layout: the entries it names are merged
# over the defaults, field by field (here: a negotiated H100 and A100 price).
PRICES_EXAMPLE = """\
# Prices merged over foresize's default table (src/foresize/recommend/prices.toml),
# field by field: USD per GPU-hour. Illustrative numbers, not a quote.
[gpu.h100_sxm]
on_demand = 6.50
spot = 2.40

[gpu.a100_80gb]
on_demand = 3.40
"""


def configs() -> None:
    """The llama-2 configs from the bundled references; GPT-NeoX-20B's published one."""
    for name in ("llama-2-7b", "llama-2-70b"):
        (HERE / name).mkdir(exist_ok=True)
        shutil.copyfile(REFERENCE / f"{name}.json", HERE / name / "config.json")
    (HERE / "gpt-neox-20b").mkdir(exist_ok=True)
    (HERE / "gpt-neox-20b" / "config.json").write_text(GPT_NEOX_20B)
    (HERE / "prices.toml").write_text(PRICES_EXAMPLE)


def tiny_onnx() -> None:
    """A two-layer MLP block with symbolic ``batch`` and ``seq``: MatMul, Add, Relu."""
    rng = np.random.default_rng(0)
    width, hidden = 32, 128
    weights = {
        "w1": rng.normal(0, 0.02, (width, hidden)).astype(np.float32),
        "b1": np.zeros(hidden, np.float32),
        "w2": rng.normal(0, 0.02, (hidden, width)).astype(np.float32),
        "b2": np.zeros(width, np.float32),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"], name="fc1"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="fc1_bias"),
        helper.make_node("Relu", ["h1"], ["h2"], name="act"),
        helper.make_node("MatMul", ["h2", "w2"], ["h3"], name="fc2"),
        helper.make_node("Add", ["h3", "b2"], ["h4"], name="fc2_bias"),
        helper.make_node("Add", ["h4", "x"], ["y"], name="residual"),
    ]
    shape = ["batch", "seq", width]
    graph = helper.make_graph(
        nodes, "mlp_block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        initializer=[numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="foresize examples/make_examples.py")
    onnx.checker.check_model(model)
    onnx.save(model, HERE / "model.onnx")


def memory_halves() -> None:
    """GenTD26 memory of a few containers: the morning and the afternoon of its day."""
    frame = read_canonical(TelemetrySource(("gentd26:memory_util",))).frame
    varied = (frame.group_by("workload").agg(pl.col("value").std().alias("sd"), pl.len())
              .filter(pl.col("len") == pl.col("len").max())
              .sort("sd", "workload", descending=[True, False]).head(MEMORY_CONTAINERS))
    kept = frame.filter(pl.col("workload").is_in(varied["workload"].implode())).sort(
        "workload", "ts")
    split = pl.lit(SPLIT).str.to_datetime(time_zone="UTC")
    kept.filter(pl.col("ts") < split).write_parquet(HERE / "memory-am.parquet")
    kept.filter(pl.col("ts") >= split).write_parquet(HERE / "memory-pm.parquet")


def duty_cycle_csv() -> None:
    """The raw GenTD26 duty-cycle CSV (as inside its tar.gz), cut to a few containers."""
    raw = pl.read_csv(extracted_path("gentd26:gpu_duty_cycle"))
    start = raw["timestamp_anon"].min()
    early = raw.filter(pl.col("timestamp_anon") < start + DUTY_SECONDS)
    busiest = (early.group_by("container_ip").agg(pl.col("value").mean(), pl.len())
               .filter(pl.col("len") == pl.col("len").max())
               .sort("value", "container_ip", descending=[True, False]).head(DUTY_CONTAINERS))
    early.filter(pl.col("container_ip").is_in(busiest["container_ip"].implode())).write_csv(
        HERE / "pod_gpu_duty_cycle_anon.csv")


if __name__ == "__main__":
    configs()
    tiny_onnx()
    memory_halves()
    duty_cycle_csv()
