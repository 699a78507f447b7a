"""Typed reads of a config's keys, whose errors name the file, the key and the value.

``transformers``' ``save_pretrained`` writes every attribute, unset ones as ``null``
(``"n_inner": null`` for gpt2, ``"head_dim": null`` for mixtral). A key present as
``null`` therefore reads exactly like an absent key: the family's default applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from foresize.core.errors import InputError


@dataclass(frozen=True, slots=True)
class ConfigKeys:
    """A parsed config with accessors; ``where`` (the file) prefixes every message."""

    where: str
    data: Mapping[str, Any]
    include_pooler: bool = True

    @property
    def model_type(self) -> str:
        """The family, as the config names it."""
        return str(self.data["model_type"])

    def is_set(self, key: str) -> bool:
        """Whether ``key`` holds a value (absent and ``null`` both mean unset)."""
        return self.data.get(key) is not None

    def integer(self, key: str, default: int | None = None, *, allow_zero: bool = False) -> int:
        """A positive (or, with ``allow_zero``, non-negative) integer; ``default`` when unset.

        Without a default an unset key is an error that says whether it was absent or null.
        """
        value = self.data.get(key)
        if value is None:
            if default is not None:
                return default
            state = "is null" if key in self.data else "is missing"
            raise InputError(
                f"{self.where}: required key {key!r} {state} for model_type {self.model_type!r}"
            )
        low = 0 if allow_zero else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            kind = "a non-negative" if allow_zero else "a positive"
            raise InputError(f"{self.where}: key {key!r} must be {kind} integer, got {value!r}")
        return value

    def optional(self, key: str) -> int | None:
        """A positive integer that may be unset (e.g. a context limit used for defaults)."""
        return self.integer(key) if self.is_set(key) else None

    def spelling(self, keys: tuple[str, ...]) -> str:
        """The first of ``keys`` (a current name, then older spellings) that is set.

        When none is, the current name, so that an error names the key to add.
        """
        return next((key for key in keys if self.is_set(key)), keys[0])

    def flag(self, key: str, *, default: bool) -> bool:
        """A boolean that defaults to the Hugging Face default for this family."""
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise InputError(f"{self.where}: key {key!r} must be true or false, got {value!r}")
        return value

    def rate(self, key: str, default: float) -> float:
        """A probability such as a dropout rate."""
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise InputError(f"{self.where}: key {key!r} must be a number in [0, 1], got {value!r}")
        return float(value)

    def text(self, key: str, default: str) -> str:
        """A string setting such as an activation name."""
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise InputError(f"{self.where}: key {key!r} must be a string, got {value!r}")
        return value

    def indices(self, key: str, *, below: int, what: str) -> frozenset[int]:
        """A list of layer indices, each in ``[0, below)``; unset means none."""
        value = self.data.get(key)
        if value is None:
            return frozenset()
        if not isinstance(value, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in value
        ):
            raise InputError(f"{self.where}: key {key!r} must be a list of integers, got {value!r}")
        outside = sorted(i for i in value if not 0 <= i < below)
        if outside:
            raise InputError(
                f"{self.where}: key {key!r} lists layer {outside[0]}, outside the "
                f"{below} layers of {what}"
            )
        return frozenset(value)

    def divide(self, numerator: str, denominator: str) -> int:
        """``numerator / denominator`` when it divides exactly (head sizes must)."""
        top, bottom = self.integer(numerator), self.integer(denominator)
        if top % bottom:
            raise InputError(
                f"{self.where}: {numerator}={top} is not divisible by {denominator}={bottom}"
            )
        return top // bottom

    def check_at_most(self, small: str, small_value: int, big: str, big_value: int) -> None:
        """Two sizes that contradict each other (``small`` above ``big``) are an error."""
        if small_value > big_value:
            raise InputError(
                f"{self.where}: {small}={small_value} exceeds {big}={big_value}"
            )

    def kv_heads(self, n_heads: int, key: str = "num_key_value_heads") -> int:
        """Key/value heads (grouped-query attention); unset means one per query head."""
        n_kv = self.integer(key, n_heads)
        if n_heads % n_kv:
            raise InputError(
                f"{self.where}: num_attention_heads={n_heads} is not divisible by "
                f"{key}={n_kv}"
            )
        return n_kv
