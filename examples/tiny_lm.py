"""A PyTorch factory for `foresize profile model MODULE:FACTORY` (needs the torch extra).

    PYTHONPATH=examples foresize profile model tiny_lm:build \\
        --input ids:8x512:int64 --input mask:8x512:bool --train

``build()`` returns a two-layer transformer language model small enough to export in
seconds; its forward takes token ids and a padding mask, the inputs the command types.
"""

from __future__ import annotations

import torch
from torch import nn


class TinyLM(nn.Module):
    """Embedding, two encoder layers, a tied-free output head."""

    def __init__(self, vocab: int = 8000, width: int = 256, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        layer = nn.TransformerEncoderLayer(width, nhead=4, dim_feedforward=4 * width,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, vocab)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits per token; ``mask`` is True where a token is real (not padding)."""
        return self.head(self.encoder(self.embed(ids), src_key_padding_mask=~mask))


def build() -> nn.Module:
    """The model ``foresize profile model tiny_lm:build`` sizes."""
    return TinyLM()
