"""One registry shape for every stable name detinit takes from configs and the CLI.

Models, initialisation schemes, datasets and symmetry-breaking mechanisms are
each a :class:`Registry`: names in registration order, a one-line
description each, the same decorator to add one, and the same error for an
unknown name (the close matches and everything available).

>>> colours = Registry("colour")
>>> @colours.register("red", "the colour of blood")
... def red() -> str:
...     return "#f00"
>>> colours.get("red")()
'#f00'
>>> colours.get("rde")
Traceback (most recent call last):
...
ValueError: unknown colour 'rde'; available: red. Did you mean red?
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Names of one kind of thing, each with a value and a one-line description."""

    def __init__(self, kind: str) -> None:
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"Registry: kind must be a non-empty string (what its names name), got {kind!r}")
        self.kind = kind
        self._entries: dict[str, tuple[T, str]] = {}

    def add(self, name: str, value: T, description: str = "") -> T:
        """Register ``value`` under ``name`` (a name is registered once); returns ``value``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        if not isinstance(description, str):
            raise ValueError(f"the description of {self.kind} {name!r} must be a string, got {description!r}")
        self._entries[name] = (value, description)
        return value

    def register(self, name: str, description: str = "") -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def wrap(value: T) -> T:
            return self.add(name, value, description)

        return wrap

    def get(self, name: str) -> T:
        """The value of ``name``; a ``ValueError`` naming the close matches and all names if unknown."""
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), list(self._entries), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown {self.kind} {name!r}; available: {', '.join(self._entries)}.{hint}")
        return self._entries[name][0]

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._entries)

    def descriptions(self) -> dict[str, str]:
        """``{name: description}`` in registration order."""
        return {name: description for name, (_, description) in self._entries.items()}

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"
