"""A registry of lazily imported entries, with did-you-mean errors.

Entries point at ``"module:attr"`` strings (or zero-argument loaders), so listing names and
descriptions never imports heavy modules such as torch.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from mg5bench.core.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """One registered name: where to load it from, and what to show in ``mg5bench ls``."""

    name: str
    target: str | Callable[[], Any]
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def resolve_target(target: str | Callable[[], Any]) -> Any:
    """Import ``"module:attr"`` (attr may be dotted) or call a zero-argument loader."""
    if callable(target):
        return target()
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"registry target must look like 'module:attr', got {target!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Named, lazily loaded objects of one kind (tasks, models, metrics)."""

    def __init__(self, kind: str, *, names_classes: bool = False) -> None:
        """``names_classes``: a loaded class gets its registered name as its ``name`` attribute, so the name is
        written once (in the catalog) and the class still knows it (error messages, run records)."""
        self.kind = kind
        self.names_classes = names_classes
        self._entries: dict[str, Entry] = {}
        self._loaded: dict[str, T] = {}

    def register(
        self,
        name: str,
        target: str | Callable[[], Any],
        description: str = "",
        *,
        overwrite: bool = False,
        **meta: Any,
    ) -> None:
        if name in self._entries and not overwrite:
            raise ConfigError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, target, description, dict(meta))
        self._loaded.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, name: str) -> Entry:
        """The entry for ``name``; unknown names raise with the closest matches."""
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(self._unknown_message(name)) from None

    def get(self, name: str) -> T:
        """Load (once) and return the object registered as ``name``."""
        entry = self.entry(name)
        if name not in self._loaded:
            obj = resolve_target(entry.target)
            if self.names_classes and isinstance(obj, type):
                obj.name = name  # type: ignore[attr-defined]
            self._loaded[name] = obj
        return self._loaded[name]

    def _unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        msg = f"unknown {self.kind} {name!r}"
        if close:
            msg += f"; did you mean {' or '.join(repr(c) for c in close)}?"
        known = ", ".join(self.names()) or "(none registered)"
        return f"{msg} Known {self.kind}s: {known}."
