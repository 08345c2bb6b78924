"""One registry type for everything a user names: input kinds, encoders, models, splitters...

Why one type: the CLI's ``--help`` and choices, the web UI's dropdowns and the Python API
all list the same names from the same place, so a new encoder or splitter appears in all
three at once and the lists cannot drift apart. Each entry carries a description and tags
(``"molecule"``, ``"structure"``, ``"pretrained"``...) that front ends filter on.

Registries fill lazily: a registry may name a ``loader`` (a module path) whose import
registers the built-in entries, so that ``import matfuse`` stays cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import import_module
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = ["Entry", "Registry", "UnknownNameError", "parse_value"]


def parse_value(value: str) -> bool | int | float | str:
    """A parameter value from a command line or spec string: bool, int, float or text."""
    low = value.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value.strip()


class UnknownNameError(KeyError, ValueError):
    """A name that is not registered; carries the registry's kind and the valid choices.

    Both a ``KeyError`` (a failed lookup) and a ``ValueError`` (a bad argument), so that
    callers catching either see it; prints as a plain sentence (``KeyError`` would quote it).
    """

    def __init__(self, what: str, name: str, choices: Iterable[str]) -> None:
        self.what = what
        self.name = name
        self.choices = sorted(choices)
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown {self.what} {self.name!r}; choose from {', '.join(self.choices)}"


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered object (a class, a factory or an instance) and what it is."""

    name: str
    obj: T
    description: str = ""
    tags: frozenset[str] = field(default_factory=frozenset)


class Registry(Generic[T]):
    """Names mapped to objects, with descriptions and tags.

    >>> colours: Registry[str] = Registry("colour")
    >>> _ = colours.add("red", "#f00", description="warm", tags={"warm"})
    >>> colours.get("red"), colours.names(tag="warm")
    ('#f00', ['red'])
    """

    def __init__(
        self,
        what: str,
        loader: str | None = None,
        aliases: dict[str, str] | None = None,
    ) -> None:
        self.what = what
        self._loader = loader
        self._loaded = loader is None
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = dict(aliases or {})

    # -- filling ----------------------------------------------------------------------
    def add(
        self,
        name: str,
        obj: T,
        *,
        description: str = "",
        tags: Iterable[str] = (),
        aliases: Iterable[str] = (),
        overwrite: bool = False,
    ) -> Entry[T]:
        """Register ``obj`` under ``name`` (``ValueError`` if taken, unless ``overwrite``)."""
        key = self._key(name)
        if key in self._entries and not overwrite:
            raise ValueError(f"{self.what} {name!r} is already registered")
        entry = Entry(key, obj, description, frozenset(tags))
        self._entries[key] = entry
        for alias in aliases:
            self._aliases[self._key(alias)] = key
        logger.debug("registered %s %r", self.what, key)
        return entry

    def register(
        self, name: str, *, description: str = "", tags: Iterable[str] = ()
    ) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def decorate(obj: T) -> T:
            self.add(name, obj, description=description, tags=tags)
            return obj

        return decorate

    def remove(self, name: str) -> None:
        """Forget an entry (used by tests that register toy entries)."""
        self._entries.pop(self._key(name), None)
        self._aliases = {a: k for a, k in self._aliases.items() if k != self._key(name)}

    # -- reading ----------------------------------------------------------------------
    def _key(self, name: str) -> str:
        return str(name).strip().lower()

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._loaded = True
            import_module(self._loader)  # type: ignore[arg-type]

    def resolve(self, name: str) -> str:
        """The registered name for ``name`` or one of its aliases."""
        self._ensure_loaded()
        key = self._key(name)
        key = self._aliases.get(key, key)
        if key not in self._entries:
            raise UnknownNameError(self.what, str(name), self._entries)
        return key

    def entry(self, name: str) -> Entry[T]:
        return self._entries[self.resolve(name)]

    def get(self, name: str) -> T:
        """The registered object (``UnknownNameError`` listing the choices otherwise)."""
        return self.entry(name).obj

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        key = self._key(str(name))
        return self._aliases.get(key, key) in self._entries

    def entries(self, tag: str | None = None, *, sort: bool = True) -> list[Entry[T]]:
        """Entries in name order (registration order with ``sort=False``), optionally only
        those carrying ``tag``."""
        self._ensure_loaded()
        found = list(self._entries.values())
        if sort:
            found.sort(key=lambda e: e.name)
        return [e for e in found if tag is None or tag in e.tags]

    def names(self, tag: str | None = None, *, sort: bool = True) -> list[str]:
        return [e.name for e in self.entries(tag, sort=sort)]

    def tags(self) -> list[str]:
        """Every tag some entry carries, sorted (what a front end can filter on)."""
        return sorted({t for e in self.entries() for t in e.tags})

    # -- read-only mapping view: ``registry[name]``, ``dict(registry)`` -----------------
    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def keys(self) -> list[str]:
        return self.names()

    def items(self) -> list[tuple[str, T]]:
        return [(e.name, e.obj) for e in self.entries()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def help(self, tag: str | None = None) -> str:
        """``name|name|...`` for a CLI option's help text."""
        return "|".join(self.names(tag))
