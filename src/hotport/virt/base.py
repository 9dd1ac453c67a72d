"""The hypervisor contract: what the engine may ask of a virt driver, and its errors.

Owns: `VirtDriver` (plug, unplug-and-wait, list the NICs a domain really has, list and
create/remove domains), the `NIC` and `Domain` values, and the exception tree of the virt
boundary. Drivers (`hotport.virt.memory`, later `hotport.virt.libvirt`) implement it.

Must never: import the engine, the store or the network client.

Concurrency: drivers are used from one event loop; calls for different domains may run
concurrently, and so may calls for different NICs of one domain.

Errors::

    VirtError
    ├── VirtPermanent
    │   ├── DomainNotFound          no such domain
    │   ├── HostLacks               the VIF type needs something the host lacks (a bridge)
    │   ├── NotSupported            e.g. creating domains on a driver that cannot
    │   └── DeviceDetachFailed      the guest refused the unplug (device-removal-failed)
    ├── VirtConflict
    │   └── DomainExists
    └── VirtTransient
        ├── DeviceDetachTimeout     the guest did not release the NIC in time; the NIC
        │                           is still there and nothing else changed
        └── HypervisorUnavailable   the hypervisor connection is down
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from hotport.model import VIF

DomainState = Literal["running", "paused", "shutoff", "crashed", "other"]


class VirtError(Exception):
    """Base of the virt boundary's errors."""


class VirtPermanent(VirtError):
    pass


class VirtConflict(VirtError):
    pass


class VirtTransient(VirtError):
    pass


class DomainNotFound(VirtPermanent):
    pass


class HostLacks(VirtPermanent):
    pass


class NotSupported(VirtPermanent):
    pass


class DeviceDetachFailed(VirtPermanent):
    pass


class DomainExists(VirtConflict):
    pass


class DeviceDetachTimeout(VirtTransient):
    pass


class HypervisorUnavailable(VirtTransient):
    pass


@dataclass(frozen=True, slots=True)
class NIC:
    """A network interface a domain really has."""

    mac: str
    dev: str | None = None  # host-side target device, e.g. "tap" + port_id[:11]
    port_id: str | None = None  # when the driver can tell (OVS interfaceid, alias)
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class Domain:
    uuid: str
    name: str
    state: DomainState


class VirtDriver(Protocol):
    name: str

    async def plug(self, instance_uuid: str, vif: VIF) -> None:
        """Attach the NIC for `vif` (live, and persistent where the driver has config).
        Idempotent: a NIC with that MAC already present is success."""
        ...

    async def unplug(self, instance_uuid: str, vif: VIF, *, within: float) -> None:
        """Detach the NIC and wait until it is gone, at most `within` seconds.
        Idempotent: no NIC with that MAC is success. On `DeviceDetachTimeout` the NIC is
        still there and nothing was changed that a retry could not redo."""
        ...

    async def nics(self, instance_uuid: str) -> list[NIC]: ...

    async def domains(self) -> list[Domain]: ...

    async def create_domain(self, instance_uuid: str, name: str) -> Domain:
        """Raises `NotSupported` on drivers that do not create domains."""
        ...

    async def remove_domain(self, instance_uuid: str) -> None: ...

    async def close(self) -> None: ...
