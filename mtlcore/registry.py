"""A tiny name -> factory registry, in the style of timm's.

Datasets (``data.DATASETS``), architectures (``models.ARCHITECTURES``),
trunks (``models.TRUNKS``), weighting methods (``weighting.WEIGHTINGS``),
optimisers and schedules (``optim.OPTIMIZERS``, ``optim.SCHEDULES``) each have
one, next to what its entries build. The app lists its choices from these
registries, never from a hand-kept copy, and an unknown name raises an error
that lists the valid ones. Each registry also checks its own part of a config
(``mtlcore.validation`` asks them all). This module imports nothing.
"""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownNameError(ValueError):
    """Raised for a name that is not registered; the message lists valid names."""


class Registry(Generic[T]):
    """Maps names to objects (usually classes or factories)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register("name")`` above a class or function."""

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries))
            raise UnknownNameError(
                f"Unknown {self.kind} {name!r}; choose one of: {valid}."
            ) from None

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
