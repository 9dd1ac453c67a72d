"""Field checks shared by the model values and their JSON readers (private).

Owns: the small validators every value's `__post_init__` runs (strings, booleans, IP
versions, addresses, CIDRs, tuples of values, `extra` mappings) and `JSONObject`, the
reader that `from_json` uses to fetch required keys with a JSON path for errors.

Must never: do I/O or import anything outside the standard library and this package.

Concurrency: pure functions; `JSONObject` is a short-lived local helper, never shared.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from hotport.model.errors import ModelError, join_path
from hotport.model.frozen import FrozenDict, freeze_mapping, json_kind

T = TypeVar("T")


def need_str(value: Any, field: str, *, nonempty: bool = False) -> str:
    if not isinstance(value, str):
        raise ModelError(f"expected a string, got {json_kind(value)}", field)
    if nonempty and not value:
        raise ModelError("must not be empty", field)
    return value


def need_opt_str(value: Any, field: str) -> str | None:
    if value is None:
        return None
    return need_str(value, field)


def need_bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise ModelError(f"expected a boolean, got {json_kind(value)}", field)
    return value


def need_version(value: Any, field: str) -> int:
    if isinstance(value, bool) or value not in (4, 6):
        raise ModelError(f"expected IP version 4 or 6, got {value!r}", field)
    return int(value)


def check_address(address: str, version: int, field: str) -> None:
    """`address` is an IP address of `version`."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise ModelError(f"{address!r} is not an IP address", field) from None
    if parsed.version != version:
        raise ModelError(f"{address!r} is IPv{parsed.version}, not IPv{version}", field)


def cidr_version(cidr: str, field: str) -> int:
    """The IP version of `cidr` (host bits may be set, as in a route's destination)."""
    try:
        return ipaddress.ip_network(cidr, strict=False).version
    except ValueError:
        raise ModelError(f"{cidr!r} is not a CIDR", field) from None


def need_opt_mapping(value: Any, field: str) -> FrozenDict | None:
    if value is None:
        return None
    return freeze_mapping(value, field)


def need_tuple(value: Any, kind: type[T], field: str) -> tuple[T, ...]:
    """`value` (a tuple or list of `kind`) as a tuple."""
    if not isinstance(value, (tuple, list)):
        raise ModelError(f"expected a sequence of {kind.__name__}, got {json_kind(value)}", field)
    for i, item in enumerate(value):
        if not isinstance(item, kind):
            raise ModelError(
                f"expected a {kind.__name__}, got {type(item).__name__}", f"{field}[{i}]"
            )
    return tuple(value)


def freeze_extra(value: Any, known: Collection[str]) -> FrozenDict:
    """The `extra` mapping frozen; its keys sit beside the known ones in JSON, so they
    must not be known keys. Errors name the key as it sits in JSON."""
    if not isinstance(value, Mapping):
        raise ModelError(f"expected a mapping, got {json_kind(value)}", "extra")
    clash = sorted(key for key in value if key in known)
    if clash:
        raise ModelError(f"{clash[0]!r} is a known field, not an extra key", "extra")
    return freeze_mapping(value, "")


class JSONObject:
    """One JSON object being read by a `from_json`: required keys, the keys it does not
    know (its `extra`), and the JSON path of each key for error messages."""

    __slots__ = ("data", "path")

    def __init__(self, data: Any, path: str, what: str) -> None:
        if not isinstance(data, Mapping):
            raise ModelError(f"expected {what} (a JSON object), got {json_kind(data)}", path)
        self.data: Mapping[str, Any] = data
        self.path = path

    def at(self, key: str) -> str:
        return join_path(self.path, key)

    def get(self, key: str) -> Any:
        try:
            return self.data[key]
        except KeyError:
            raise ModelError("missing", self.at(key)) from None

    def array(self, key: str) -> list[Any] | tuple[Any, ...]:
        value = self.get(key)
        if not isinstance(value, (list, tuple)):
            raise ModelError(f"expected an array, got {json_kind(value)}", self.at(key))
        return value

    def items(self, key: str, read: Callable[[Any, str], T]) -> tuple[T, ...]:
        """Each element of the array at `key`, read by `read(element, path)`."""
        base = self.at(key)
        return tuple(read(item, f"{base}[{i}]") for i, item in enumerate(self.array(key)))

    def extra(self, known: Collection[str]) -> dict[str, Any]:
        return {key: value for key, value in self.data.items() if key not in known}

    def build(self, make: Callable[..., T], **fields: Any) -> T:
        """`make(**fields)`, its `ModelError`s placed under this object's path."""
        try:
            return make(**fields)
        except ModelError as err:
            raise err.under(self.path) from None
