"""Typed, frozen views of the Neutron v2.0 resources hotport reads.

Owns: `Port`, `PartialPort`, `FixedIP`, `Network`, `Subnet`, `HostRoute`,
`AllocationPool`, `FloatingIP`. Each model is built from the JSON object the service sent
(`Model.from_neutron(obj)` / `model_validate`), keeps EVERY key of it (`extra="allow"`:
`mtu`, `binding:vif_details`, `binding:profile`, `provider:*`, `host_routes`, keys of
extensions hotport has never heard of), gives typed attributes for what hotport uses
(Neutron's `binding:host_id` is `Port.host`, and so on), and gives the object back from
`to_neutron()` / `raw` (a deep copy, so callers cannot alter it): `Port`, `Network`,
`Subnet` and `FloatingIP` remember it and return it unchanged (`RememberedResource`);
the objects nested in them (`FixedIP`, `HostRoute`, `AllocationPool`) and `PartialPort`
(the heal lists 100,000 at a time) rebuild it from their fields and extra keys: the same
keys and values, the typed ones first.

Must never: do I/O, coerce a missing value into a plausible one (a field the service did
not send stays None, or empty for lists), or be built by Python attribute names — the
wire (alias) names are the only way in, so `to_neutron()` is always Neutron-shaped.

Concurrency: models are frozen values, safe to share between tasks.
"""

from __future__ import annotations

import copy
import marshal
from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core.core_schema import ValidatorFunctionWrapHandler

__all__ = [
    "AllocationPool",
    "FixedIP",
    "FloatingIP",
    "HostRoute",
    "Network",
    "NeutronResource",
    "PartialPort",
    "Port",
    "RememberedResource",
    "Subnet",
]


def _freeze_raw(data: Mapping[str, Any]) -> bytes | dict[str, Any]:
    obj = data if type(data) is dict else dict(data)
    try:
        return marshal.dumps(obj)
    except ValueError:  # something marshal cannot encode (a dict subclass, an object...)
        return copy.deepcopy(obj)


def _thaw_raw(raw: bytes | dict[str, Any]) -> dict[str, Any]:
    if isinstance(raw, bytes):
        out: dict[str, Any] = marshal.loads(raw)
        return out
    return copy.deepcopy(raw)


class NeutronResource(BaseModel):
    """Base: frozen, keeps unknown fields. `to_neutron()` gives the object back: this base
    REBUILDS it from the typed fields (by wire name) and the extra keys: the same keys and
    values, typed keys first. `RememberedResource` remembers the object as sent instead."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=False)

    @classmethod
    def from_neutron(cls, obj: Mapping[str, Any]) -> Self:
        """Build from one JSON object as the service sent it (wire key names)."""
        return cls.model_validate(obj)

    @property
    def raw(self) -> dict[str, Any]:
        """The object as the service sent it (a deep copy)."""
        return self.to_neutron()

    def to_neutron(self) -> dict[str, Any]:
        """The object as the service sent it (a deep copy)."""
        private = self.__pydantic_private__
        raw = None if private is None else private.get(_RAW)
        if raw is None:
            return self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return _thaw_raw(raw)

    @property
    def extra(self) -> dict[str, Any]:
        """The keys hotport has no typed attribute for."""
        return dict(self.model_extra or {})


class RememberedResource(NeutronResource):
    """A resource that remembers the object it was built from: `to_neutron()` returns it
    unchanged (key order and spelling of every value included).

    It is kept in the instance's `__pydantic_private__` (pydantic copies, pickles and
    compares it with the model), as `marshal` bytes: a copy in and a copy out each cost
    one C call (a tenth of `copy.deepcopy`), and the bytes take a third of the memory of
    the dict they stand for. A value marshal cannot encode (not plain JSON data) is kept
    as a deep-copied dict instead. (Not a declared PrivateAttr: pydantic would run a
    Python initialiser per instance, a quarter of the cost of parsing a port.)"""

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        model = handler(data)
        if isinstance(data, Mapping) and isinstance(model, NeutronResource):
            object.__setattr__(model, "__pydantic_private__", {_RAW: _freeze_raw(data)})
        return model


_RAW = "hotport_raw"


class FixedIP(NeutronResource):
    """(Rebuilt, not remembered: nested in a port, which remembers it whole.)"""

    subnet_id: str
    ip_address: str


class Port(RememberedResource):
    """A full port, as `GET /v2.0/ports/{id}` or a list without `fields` returns it."""

    id: str
    network_id: str
    mac_address: str
    name: str = ""
    status: str | None = None
    admin_state_up: bool | None = None
    device_id: str = ""
    device_owner: str = ""
    fixed_ips: tuple[FixedIP, ...] = ()
    project_id: str | None = None
    revision_number: int | None = None
    security_groups: tuple[str, ...] = ()
    port_security_enabled: bool | None = None
    description: str | None = None
    # binding extension (admin-only by default policy: None when not visible)
    host: str | None = Field(default=None, alias="binding:host_id")
    vif_type: str | None = Field(default=None, alias="binding:vif_type")
    vif_details: dict[str, Any] = Field(default_factory=dict, alias="binding:vif_details")
    vnic_type: str | None = Field(default=None, alias="binding:vnic_type")
    profile: dict[str, Any] = Field(default_factory=dict, alias="binding:profile")

    @property
    def is_bound(self) -> bool:
        """Bound to a host by a mechanism driver (not `unbound` / `binding_failed`)."""
        return bool(self.host) and self.vif_type not in (None, "", "unbound", "binding_failed")


class PartialPort(NeutronResource):
    """A port listed with `fields=...`: only the requested keys are present. Rebuilt, not
    remembered: the heal lists 100,000 of them at a time."""

    id: str | None = None
    network_id: str | None = None
    mac_address: str | None = None
    status: str | None = None
    device_id: str | None = None
    device_owner: str | None = None
    revision_number: int | None = None
    host: str | None = Field(default=None, alias="binding:host_id")
    vif_type: str | None = Field(default=None, alias="binding:vif_type")


class Network(RememberedResource):
    id: str
    name: str = ""
    mtu: int | None = None
    status: str | None = None
    admin_state_up: bool | None = None
    subnets: tuple[str, ...] = ()
    shared: bool | None = None
    project_id: str | None = None
    revision_number: int | None = None
    port_security_enabled: bool | None = None
    router_external: bool | None = Field(default=None, alias="router:external")
    network_type: str | None = Field(default=None, alias="provider:network_type")
    physical_network: str | None = Field(default=None, alias="provider:physical_network")
    segmentation_id: int | None = Field(default=None, alias="provider:segmentation_id")


class HostRoute(NeutronResource):
    destination: str
    nexthop: str


class AllocationPool(NeutronResource):
    start: str
    end: str


class Subnet(RememberedResource):
    id: str
    network_id: str
    cidr: str
    ip_version: int
    name: str = ""
    gateway_ip: str | None = None
    enable_dhcp: bool | None = None
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[HostRoute, ...] = ()
    allocation_pools: tuple[AllocationPool, ...] = ()
    ipv6_ra_mode: str | None = None
    ipv6_address_mode: str | None = None
    subnetpool_id: str | None = None
    project_id: str | None = None
    revision_number: int | None = None


class FloatingIP(RememberedResource):
    id: str
    floating_ip_address: str
    fixed_ip_address: str | None = None
    port_id: str | None = None
    floating_network_id: str | None = None
    router_id: str | None = None
    status: str | None = None
    project_id: str | None = None
    revision_number: int | None = None
