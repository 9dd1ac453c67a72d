"""`NetworkInfo`: the ordered VIFs of one VM (Nova's `network_info`: a JSON array of VIFs).

Owns: the ordered, immutable sequence of a VM's VIFs, its invariant (no two VIFs with the
same port id) and its edits (`with_vif`, `without`), each returning a new value.

Must never: do I/O or import other hotport packages; it does not decide *whether* an edit
is allowed (revisions, tombstones: the store and the engine do); it only keeps the
sequence well-formed.

Concurrency: immutable (a tuple of immutable VIFs): safe to share between tasks and
threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

from hotport.model._fields import need_tuple
from hotport.model.errors import ModelError
from hotport.model.frozen import json_kind
from hotport.model.vif import VIF

__all__ = ["NetworkInfo"]


@dataclass(frozen=True, slots=True, init=False, repr=False)
class NetworkInfo(Sequence[VIF]):
    """The VIFs of one VM, in attach order; port ids are unique (`ModelError` otherwise)."""

    vifs: tuple[VIF, ...] = ()

    def __init__(self, vifs: Iterable[VIF] = ()) -> None:
        items = need_tuple(tuple(vifs), VIF, "vifs")
        seen: dict[str, int] = {}
        for i, vif in enumerate(items):
            if vif.id in seen:
                raise ModelError(
                    f"port {vif.id} appears twice (also at [{seen[vif.id]}])", f"[{i}].id"
                )
            seen[vif.id] = i
        object.__setattr__(self, "vifs", items)

    # -- sequence ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.vifs)

    @overload
    def __getitem__(self, index: int) -> VIF: ...

    @overload
    def __getitem__(self, index: slice) -> NetworkInfo: ...

    def __getitem__(self, index: int | slice) -> VIF | NetworkInfo:
        if isinstance(index, slice):
            return NetworkInfo(self.vifs[index])
        return self.vifs[index]

    def __iter__(self) -> Iterator[VIF]:
        return iter(self.vifs)

    def __repr__(self) -> str:
        return f"NetworkInfo({list(self.port_ids())!r})"

    # -- lookups -------------------------------------------------------------------------

    def get(self, port_id: str) -> VIF | None:
        """The VIF of `port_id`, None if the VM has none."""
        for vif in self.vifs:
            if vif.id == port_id:
                return vif
        return None

    def port_ids(self) -> tuple[str, ...]:
        """The port ids, in order."""
        return tuple(vif.id for vif in self.vifs)

    def fixed_ips(self) -> list[str]:
        return [ip for vif in self.vifs for ip in vif.fixed_ips()]

    def floating_ips(self) -> list[str]:
        return [ip for vif in self.vifs for ip in vif.floating_ips()]

    # -- edits ---------------------------------------------------------------------------

    def with_vif(self, vif: VIF) -> NetworkInfo:
        """`vif` in place of the VIF of the same port (same position), or appended."""
        if not isinstance(vif, VIF):
            raise ModelError(f"expected a VIF, got {type(vif).__name__}", "vif")
        for i, current in enumerate(self.vifs):
            if current.id == vif.id:
                return NetworkInfo((*self.vifs[:i], vif, *self.vifs[i + 1 :]))
        return NetworkInfo((*self.vifs, vif))

    def without(self, port_id: str) -> NetworkInfo:
        """Without the VIF of `port_id` (the same value if there is none: idempotent)."""
        kept = tuple(vif for vif in self.vifs if vif.id != port_id)
        return self if len(kept) == len(self.vifs) else NetworkInfo(kept)

    # -- JSON ----------------------------------------------------------------------------

    def to_json(self) -> list[dict[str, Any]]:
        """Nova's network_info: a JSON array of VIFs (fresh plain JSON)."""
        return [vif.to_json() for vif in self.vifs]

    @classmethod
    def from_json(cls, data: Any) -> NetworkInfo:
        """Read Nova's network_info (an array of VIFs); `ModelError` names the field
        (`[2].network.subnets[0].cidr`)."""
        if not isinstance(data, (list, tuple)):
            raise ModelError(f"expected an array of VIFs, got {json_kind(data)}")
        return cls(VIF.from_json(item, f"[{i}]") for i, item in enumerate(data))
