"""Typed, frozen views of the Neutron v2.0 resources hotport reads.

Owns: `Port`, `PartialPort`, `FixedIP`, `Network`, `Subnet`, `HostRoute`,
`AllocationPool`, `FloatingIP`. Each model is built from the JSON object the service sent
(`Model.from_neutron(obj)` / `model_validate`), keeps EVERY key of it (`extra="allow"`:
`mtu`, `binding:vif_details`, `binding:profile`, `provider:*`, `host_routes`, keys of
extensions hotport has never heard of), gives typed attributes for what hotport uses
(Neutron's `binding:host_id` is `Port.host`, and so on), and returns the original
object unchanged from `to_neutron()` / `raw` (a deep copy, so callers cannot alter it).

Must never: do I/O, coerce a missing value into a plausible one (a field the service did
not send stays None, or empty for lists), or be built by Python attribute names — the
wire (alias) names are the only way in, so `to_neutron()` is always Neutron-shaped.

Concurrency: models are frozen values, safe to share between tasks.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator
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
    "Subnet",
]


class NeutronResource(BaseModel):
    """Base: frozen, keeps unknown fields, remembers the object it was built from."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=False)

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        model = handler(data)
        if isinstance(data, Mapping) and isinstance(model, NeutronResource):
            model._raw = copy.deepcopy(dict(data))
        return model

    @classmethod
    def from_neutron(cls, obj: Mapping[str, Any]) -> Self:
        """Build from one JSON object as the service sent it (wire key names)."""
        return cls.model_validate(obj)

    @property
    def raw(self) -> dict[str, Any]:
        """The object as the service sent it (a deep copy)."""
        return copy.deepcopy(self._raw)

    def to_neutron(self) -> dict[str, Any]:
        """The object as the service sent it, unchanged (a deep copy)."""
        return copy.deepcopy(self._raw)

    @property
    def extra(self) -> dict[str, Any]:
        """The keys hotport has no typed attribute for."""
        return dict(self.model_extra or {})


class FixedIP(NeutronResource):
    subnet_id: str
    ip_address: str


class Port(NeutronResource):
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
    """A port listed with `fields=...`: only the requested keys are present."""

    id: str | None = None
    network_id: str | None = None
    mac_address: str | None = None
    status: str | None = None
    device_id: str | None = None
    device_owner: str | None = None
    revision_number: int | None = None
    host: str | None = Field(default=None, alias="binding:host_id")
    vif_type: str | None = Field(default=None, alias="binding:vif_type")


class Network(NeutronResource):
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


class Subnet(NeutronResource):
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


class FloatingIP(NeutronResource):
    id: str
    floating_ip_address: str
    fixed_ip_address: str | None = None
    port_id: str | None = None
    floating_network_id: str | None = None
    router_id: str | None = None
    status: str | None = None
    project_id: str | None = None
    revision_number: int | None = None
