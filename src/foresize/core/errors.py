"""Typed errors: the library raises these, the CLI maps them to one line and an exit code.

The exit codes are part of the CLI contract (see ``cli.md``): scripts branch on them,
so each error family owns exactly one code.
"""

from __future__ import annotations

from typing import ClassVar


class ForesizeError(Exception):
    """Base class of every error foresize raises on purpose."""

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InputError(ForesizeError, ValueError):
    """A file, a column, a value or a name inside the input is not what it must be."""

    exit_code: ClassVar[int] = 3


class SchemaMismatchError(InputError):
    """A frame or file lacks a column or holds one of the wrong type."""


class UsageError(InputError):
    """A flag or a flag's value is wrong (``--horizon banana``, ``-f yaml``): exit 2, as
    click's own usage errors, so a script tells "called wrongly" from "bad data" (3).

    It is an ``InputError`` (and a ``ValueError``) so that library callers catching bad
    input keep catching it; a reader that finds such a value inside a file re-raises it
    as a plain ``InputError`` naming the file.
    """

    exit_code: ClassVar[int] = 2


class UnknownNameError(UsageError):
    """A registry lookup missed; the message lists the valid names and the closest one.

    Names come from flags (``--model``, ``--device``, ``-f``), hence a usage error.
    """

    def __init__(self, kind: str, name: str, valid: list[str], *, hint: str | None = None) -> None:
        import difflib

        close = difflib.get_close_matches(name, valid, n=1)
        suggestion = f" Did you mean {close[0]!r}?" if close else ""
        super().__init__(
            f"unknown {kind} {name!r}; valid: {', '.join(valid)}.{suggestion}", hint=hint
        )
        self.kind = kind
        self.name = name
        self.valid = valid
        self.suggestion = close[0] if close else None


class ChecksumError(InputError):
    """A downloaded or mirrored file does not have the sha256 the registry lists."""


class InsufficientDataError(ForesizeError, ValueError):
    """Nothing could be produced from the data given (or, under --strict, something was skipped)."""

    exit_code: ClassVar[int] = 4


class NotFittedError(ForesizeError, ValueError, AttributeError):
    """A model was used before ``fit``."""


class CheckFailedError(ForesizeError):
    """A quality gate such as ``--fail-under`` was not met."""

    exit_code: ClassVar[int] = 5


class PartialInterrupt(KeyboardInterrupt):
    """Ctrl-C that carries the work finished before it, for a caller that keeps it.

    A ``KeyboardInterrupt``, so code that does not keep partial work stops as before.
    """

    def __init__(self, partial: object) -> None:
        super().__init__()
        self.partial = partial


class ForesizeWarning(UserWarning):
    """Base class of foresize's warnings."""


class DataDroppedWarning(ForesizeWarning):
    """Rows were dropped while canonicalising input; the ingest report has the counts."""
