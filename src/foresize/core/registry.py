"""A small generic name -> object registry, one per plug-in kind.

A miss raises ``UnknownNameError`` listing the valid names and the closest match,
so a typo on the command line gets "Did you mean ...?" rather than a KeyError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from foresize.core.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named plug-ins of one kind (formats, datasets, models, policies...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        """Register ``item`` under ``name``; a second registration of a name is a bug."""
        if name in self._items:
            msg = f"{self.kind} {name!r} is registered twice"
            raise ValueError(msg)
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def decorate(item: T) -> T:
            return self.add(name, item)

        return decorate

    def get(self, name: str) -> T:
        """Return the item named ``name`` or raise ``UnknownNameError``."""
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
