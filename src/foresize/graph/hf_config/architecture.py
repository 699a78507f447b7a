"""What a config fixes about a transformer: its shapes and exact parameter counts.

FLOP convention: one multiply-accumulate (MAC) = 2 FLOPs. A forward pass costs, per token,
2 FLOPs per matmul weight it touches (Kaplan et al. 2020, "Scaling Laws for Neural Language
Models", section 2.1), plus, per attended position and layer, ``2 x heads x head_dim``
FLOPs for the score (Q.K^T) and ``2 x heads x value_head_dim`` for the weighted sum of
values; with equal widths that is ``4 x context x attention_width`` per layer. Biases,
norms and activations are element-wise and left out; embedding lookups are gathers, not
matmuls, but the LM head's projection onto the vocabulary is a matmul even when its weight
is tied to the embedding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from foresize.core.errors import InputError


@dataclass(frozen=True, slots=True)
class Architecture:
    """Shapes and exact parameter counts of one transformer, as read from its config.

    ``params`` maps a component to its parameter count, biases included: ``embeddings``
    (token, position and relative-position tables), ``attention_q``, ``attention_k``,
    ``attention_v`` and ``attention_o`` (``attention_kv`` for multi-head latent attention,
    whose keys and values share one compressed projection), ``mlp`` (dense MLPs and shared
    experts), ``experts`` and ``router`` for a mixture of experts, ``norms``, ``lm_head``
    and, for bert, ``pooler``. A tied LM head counts 0 there: it shares the embedding matrix.

    ``matmul_params`` is the number of matmul weights one (decoder) token passes through,
    which sets the FLOPs: with experts, only the ``experts_per_token`` it is routed to and
    the shared ones. ``active_intermediate`` is the MLP width a token's activations span,
    averaged over layers (routed plus shared experts in a sparse layer, the dense width in
    a dense one).

    Encoder-decoder models (t5, bart) describe their decoder in ``n_layers`` and
    ``matmul_params``; ``n_encoder_layers``, ``encoder_matmul_params`` (per source token,
    including the decoder's cross-attention keys and values, computed once per source
    token) and ``encoder_params`` (weights only the encoder uses) describe the rest.
    """

    model_type: str
    hidden: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    max_positions: int | None
    is_decoder: bool
    gated_mlp: bool
    has_dropout: bool
    params: Mapping[str, int]
    matmul_params: int
    active_intermediate: int
    n_experts: int = 1
    experts_per_token: int = 1
    sliding_window: int | None = None
    sliding_layers: int = 0
    value_head_dim: int | None = None
    cache_width: int | None = None
    n_encoder_layers: int = 0
    encoder_matmul_params: int = 0
    encoder_params: int = 0

    def attended_tokens(self, context: int) -> int:
        """Cached (and attended) positions summed over decoder layers for a ``context`` prefix.

        A sliding-window layer keeps only the last ``sliding_window`` positions; the
        others keep all of them. An encoder-decoder's decoder layer also attends to (and
        caches the keys and values of) a source as long as the context.
        """
        window = context if self.sliding_window is None else min(context, self.sliding_window)
        own = self.sliding_layers * window + (self.n_layers - self.sliding_layers) * context
        return own + (self.n_layers * context if self.is_encoder_decoder else 0)

    @property
    def is_encoder_decoder(self) -> bool:
        """Whether a separate encoder reads the source once (t5, bart)."""
        return self.n_encoder_layers > 0

    @property
    def n_params(self) -> int:
        """Total parameter count (a tied LM head counted once)."""
        return sum(self.params.values())

    @property
    def n_active_params(self) -> int:
        """Parameters one token uses: all but the routed experts it is not sent to.

        This is the "active" count MoE papers quote (Mixtral 8x7B: 12.9B of 46.7B).
        """
        experts = self.params.get("experts", 0)
        unused = experts * (self.n_experts - self.experts_per_token) // self.n_experts
        return self.n_params - unused

    @property
    def attention_width(self) -> int:
        """Width of the concatenated query heads, ``n_heads x head_dim`` (= hidden usually)."""
        return self.n_heads * self.head_dim

    @property
    def kv_width(self) -> int:
        """Width of the keys: ``n_kv_heads x head_dim``."""
        return self.n_kv_heads * self.head_dim

    @property
    def kv_cache_width(self) -> int:
        """Elements one layer caches per position: keys and values, or MLA's latent."""
        if self.cache_width is not None:
            return self.cache_width
        return self.n_kv_heads * (self.head_dim + (self.value_head_dim or self.head_dim))

    def _attention_flops(self, positions: int) -> int:
        """Score and weighted-sum FLOPs of one token over ``positions`` (summed over layers)."""
        widths = self.head_dim + (self.value_head_dim or self.head_dim)
        return 2 * positions * self.n_heads * widths

    def forward_flops_per_token(self, *, context: int) -> int:
        """Forward FLOPs for one (decoder) token attending to ``context`` tokens."""
        _check_context(context)
        return 2 * self.matmul_params + self._attention_flops(self.attended_tokens(context))

    def encoder_flops_per_token(self, *, context: int) -> int:
        """FLOPs of one source token through the encoder (0 without one)."""
        _check_context(context)
        return 2 * self.encoder_matmul_params + self._attention_flops(
            self.n_encoder_layers * context
        )

    def prefill_flops_per_token(self, *, context: int) -> int:
        """FLOPs per prompt token before the first output: the encoder's, if there is one."""
        if self.is_encoder_decoder:
            return self.encoder_flops_per_token(context=context)
        return self.forward_flops_per_token(context=context)

    def train_flops_per_token(self, *, context: int) -> int:
        """Forward FLOPs per training token: source and target both ``context`` long."""
        return self.forward_flops_per_token(context=context) + self.encoder_flops_per_token(
            context=context
        )


def _check_context(context: int) -> None:
    if context < 0:
        raise InputError(f"context must be >= 0 tokens, got {context}")
