"""Size a transformer from its Hugging Face ``config.json`` alone: no weights, no network.

This is how a user sizes a 70B model on a laptop: the config fixes every weight shape,
so parameter counts are exact and per-token FLOPs follow from them. Each family's module
says what it builds, its FLOPs per token and its KV cache per token:

- ``llama``: llama, mistral, mixtral, qwen2, qwen2_moe, qwen3, qwen3_moe, gemma, gemma2,
  phi3 (grouped-query attention, gated MLPs, RMSNorm; dense or mixture-of-experts);
- ``gpt``: gpt2, phi, falcon (LayerNorm, a plain MLP);
- ``deepseek``: deepseek_v2, deepseek_v3 (latent attention, shared and routed experts);
- ``encoders``: bert, t5, bart.

A key present as ``null`` means the family's default, as in ``transformers``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from foresize.core.errors import InputError
from foresize.core.io import read_json_object
from foresize.graph.hf_config.architecture import Architecture
from foresize.graph.hf_config.deepseek import read_deepseek
from foresize.graph.hf_config.encoders import read_bart, read_bert, read_t5
from foresize.graph.hf_config.gpt import read_falcon, read_gpt2, read_phi
from foresize.graph.hf_config.keys import ConfigKeys
from foresize.graph.hf_config.llama import LLAMA_FAMILIES, read_llama

__all__ = ["SUPPORTED_FAMILIES", "Architecture", "read_hf_config"]

_BUILDERS: dict[str, Callable[[ConfigKeys], Architecture]] = {
    **dict.fromkeys(LLAMA_FAMILIES, read_llama),
    "bart": read_bart,
    "bert": read_bert,
    "deepseek_v2": read_deepseek,
    "deepseek_v3": read_deepseek,
    "falcon": read_falcon,
    "gpt2": read_gpt2,
    "phi": read_phi,
    "t5": read_t5,
}
SUPPORTED_FAMILIES = tuple(sorted(_BUILDERS))


def read_hf_config(
    source: str | Path | Mapping[str, Any], *, include_pooler: bool = True
) -> Architecture:
    """Read a Hugging Face ``config.json`` (a path, or the parsed dict) into an Architecture.

    ``include_pooler`` only matters for bert: ``BertModel`` has a pooler, the MLM and
    token-classification heads do not.
    """
    where, config = _load(source)
    model_type = config.get("model_type")
    builder = _BUILDERS.get(model_type) if isinstance(model_type, str) else None
    if builder is None:
        raise InputError(
            f"{where}: model_type {model_type!r} is not supported; "
            f"supported: {', '.join(SUPPORTED_FAMILIES)} (any other model_type that "
            "transformers knows is sized on fake tensors once torch and transformers are "
            "installed)"
        )
    return builder(ConfigKeys(where, config, include_pooler))


def _load(source: str | Path | Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """Return a name for messages and the parsed config."""
    if isinstance(source, Mapping):
        return "config", source
    path = Path(source)
    return str(path), read_json_object(path, what="config")
