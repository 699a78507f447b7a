"""Count the parameters of each fixture config the way transformers builds the model.

Run:  .venv/bin/python benchmarks/count_hf_params.py  (needs the torch extra and transformers)

Each config in tests/graph/configs/ is built with ``AutoConfig.from_pretrained`` on a
folder holding it and ``from_config`` on the meta device (no weights, no download), and
``sum(p.numel() for p in model.parameters())`` (tied weights once) is printed beside
foresize's count and the ``parameters`` column of published.csv. The causal-LM class is
built for decoders, the seq2seq-LM class for t5 and bart, ``AutoModel`` for bert.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM

from foresize.graph.hf_config import read_hf_config

CONFIGS = Path(__file__).resolve().parents[1] / "tests" / "graph" / "configs"


def transformers_count(path: Path) -> int:
    """Parameters of the model transformers builds from ``path`` (meta device)."""
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(path, Path(folder) / "config.json")
        config = AutoConfig.from_pretrained(folder)
    builder = {"t5": AutoModelForSeq2SeqLM, "bart": AutoModelForSeq2SeqLM, "bert": AutoModel}
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = builder.get(config.model_type, AutoModelForCausalLM).from_config(config)
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    with (CONFIGS / "published.csv").open(newline="") as handle:
        published = {row["config"]: int(row["parameters"]) for row in csv.DictReader(handle)}
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    print(f"{'config':20s} {'transformers':>16s} {'foresize':>16s} {'published.csv':>16s}")
    for path in sorted(CONFIGS.glob("*.json")):
        ours = read_hf_config(path).n_params
        theirs = transformers_count(path)
        print(f"{path.stem:20s} {theirs:>16,d} {ours:>16,d} {published[path.stem]:>16,d}")


if __name__ == "__main__":
    main()
