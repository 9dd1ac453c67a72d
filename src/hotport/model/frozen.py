"""Frozen JSON: the read-only form of the free-form parts of the network info.

Owns: `FrozenDict` (an immutable, hashable mapping with `str` keys), `freeze` (JSON value
-> frozen value: objects become `FrozenDict`, arrays become tuples) and `thaw` (frozen
value -> fresh plain `dict`/`list` JSON). `details`, `profile`, every `meta` and every
`extra` mapping of the model are stored frozen, so a value can never be changed behind
its owner's back and can be hashed.

Must never: do I/O, or accept anything that is not JSON (non-`str` keys, NaN/infinite
floats, sets, objects): such input raises `ModelError` naming where it was found.

Concurrency: frozen values are immutable and safe to share between tasks and threads;
`thaw` always returns new objects, so callers may mutate what they get.

Equality follows Python's (`1 == 1.0 == True`), as does JSON equality in Python
(`json.loads(a) == json.loads(b)`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from hotport.model.errors import ModelError, join_path

__all__ = ["EMPTY", "FrozenDict", "freeze", "freeze_mapping", "json_kind", "thaw"]


class FrozenDict(Mapping[str, Any]):
    """An immutable, hashable mapping of `str` to frozen JSON values.

    Build it with `FrozenDict(mapping)` (the values are frozen deeply) or `freeze(...)`.
    Compares equal to any mapping whose frozen form has equal items (so a plain `dict`
    with lists compares equal to the `FrozenDict` made from it).
    """

    __slots__ = ("_data", "_hash")

    _data: dict[str, Any]
    _hash: int | None

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        frozen = _freeze_items(data, "") if data else {}
        object.__setattr__(self, "_data", frozen)
        object.__setattr__(self, "_hash", None)

    @classmethod
    def _trusted(cls, data: dict[str, Any]) -> FrozenDict:
        """Wrap `data` (already frozen, owned by the caller no more) without copying."""
        self = cls.__new__(cls)
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_hash", None)
        return self

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenDict):
            return self._data == other._data
        if isinstance(other, Mapping):
            try:
                return self._data == _freeze_items(other, "")
            except ModelError:
                return False
        return NotImplemented

    def __hash__(self) -> int:
        cached = self._hash
        if cached is None:
            cached = hash(frozenset(self._data.items()))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"FrozenDict is immutable (cannot set {name!r})")

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (thaw(self),))

    def thaw(self) -> dict[str, Any]:
        """A fresh plain `dict` (deeply), safe to mutate."""
        return {key: thaw(value) for key, value in self._data.items()}


EMPTY = FrozenDict()
"""The empty frozen mapping (the default of every `meta`, `extra`, `details`, `profile`)."""


def freeze(value: Any, path: str = "") -> Any:
    """The frozen form of a JSON value; `ModelError` (naming `path`) if it is not JSON."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ModelError(f"{value!r} is not a JSON number", path)
        return value
    if isinstance(value, FrozenDict):
        return value
    if isinstance(value, Mapping):
        return FrozenDict._trusted(_freeze_items(value, path))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(item, join_path(path, f"[{i}]")) for i, item in enumerate(value))
    raise ModelError(f"a {type(value).__name__} is not a JSON value", path)


def freeze_mapping(value: Any, path: str = "") -> FrozenDict:
    """`value` (a JSON object) frozen; `ModelError` (naming `path`) if it is not one."""
    if isinstance(value, FrozenDict):
        return value
    if not isinstance(value, Mapping):
        raise ModelError(f"expected a JSON object, got {json_kind(value)}", path)
    return FrozenDict._trusted(_freeze_items(value, path))


def thaw(value: Any) -> Any:
    """The plain JSON form of a frozen value: fresh `dict`s and `list`s all the way down."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [thaw(item) for item in value]
    return value


def _freeze_items(data: Mapping[Any, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in data.items():
        if not isinstance(key, str):
            raise ModelError(f"JSON object keys must be strings, got {key!r}", path)
        out[key] = freeze(item, join_path(path, key))
    return out


def json_kind(value: Any) -> str:
    """How a JSON value is named in error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return f"a {type(value).__name__}"
