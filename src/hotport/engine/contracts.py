"""What the engine needs from the network service: the `NetworkAPI` and `PortReads`
protocols.

Owns: the small protocols the engine calls. `NetworkAPI` is a subset of
`hotport.network.NeutronClient`, which satisfies it structurally. `PortReads` is the
one-port read of attach and of the per-port refresh (the port and its floating IPs):
`hotport.engine.context.DirectReads` sends each as its own request, and the composition
root gives hotport's own policy `hotport.network.coalesce.Coalescer`, which sends
concurrent reads of one kind as one request. The other backends' protocols live beside
their data types: `hotport.store.base.Store`, `hotport.locks.base.LockBackend`,
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


class PortReads(Protocol):
    """One port's state and its floating IPs, as `show_port(id)` and
    `list_floating_ips([id])` answer them (same results, same errors: a port that does
    not exist raises `PortNotFound`)."""

    async def show_port(self, port_id: str) -> Port: ...

    async def port_floating_ips(self, port_id: str) -> list[FloatingIP]: ...
