"""What the engine needs from the network service: the `NetworkAPI` protocol.

Owns: the small protocol the engine calls (a subset of `hotport.network.NeutronClient`,
which satisfies it structurally). The other backends' protocols live beside their data
types: `hotport.store.base.Store`, `hotport.locks.base.LockBackend`,
`hotport.virt.base.VirtDriver`.

Must never: import a concrete backend (the composition root wires them).

Concurrency: implementations are called concurrently from one event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, overload

from hotport.network.models import FloatingIP, Network, PartialPort, Port, Subnet


class NetworkAPI(Protocol):
    async def show_port(self, port_id: str) -> Port: ...

    @overload
    async def list_ports(
        self,
        *,
        ids: Sequence[str] | None = ...,
        device_id: str | None = ...,
        host: str | None = ...,
        fields: None = ...,
    ) -> list[Port]: ...

    @overload
    async def list_ports(
        self,
        *,
        ids: Sequence[str] | None = ...,
        device_id: str | None = ...,
        host: str | None = ...,
        fields: Sequence[str],
    ) -> list[PartialPort]:
        """Only the `fields` asked for (the heal: what the VIF builder reads, a third
        less to send and parse)."""
        ...

    async def bind_port(
        self,
        port_id: str,
        *,
        device_id: str,
        host: str,
        device_owner: str = ...,
        revision: int | None = None,
    ) -> Port: ...

    async def unbind_port(self, port_id: str, *, revision: int | None = None) -> Port: ...

    async def create_port(
        self,
        network_id: str,
        *,
        device_id: str,
        host: str,
        device_owner: str = ...,
        fixed_ips: Sequence[Mapping[str, str]] | None = None,
        name: str | None = None,
    ) -> Port: ...

    async def delete_port(self, port_id: str, *, missing_ok: bool = True) -> bool: ...

    async def list_networks(self, ids: Sequence[str]) -> list[Network]: ...

    async def list_subnets(
        self, *, ids: Sequence[str] | None = None, network_ids: Sequence[str] | None = None
    ) -> list[Subnet]: ...

    async def list_floating_ips(self, port_ids: Sequence[str] | None) -> list[FloatingIP]: ...

    def add_observer(self, fn: Callable[[Any], None]) -> None: ...

    @property
    def id_chunk(self) -> int: ...
