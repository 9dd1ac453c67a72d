"""`VIF`: one port plugged into one VM, as one entry of Nova's network-info cache.

Owns: the `VIF` value, its exact JSON round trip in Nova's layout (`nova/network/model.py`
`VIF`: `id`, `address`, `network`, `type`, `details`, `devname`, `ovs_interfaceid`,
`qbh_params`, `qbg_params`, `active`, `vnic_type`, `profile`, `preserve_on_delete`,
`delegate_create`, `meta`; unknown keys kept in `extra`), and `devname(port_id)`, the
deterministic tap device name.

Must never: do I/O, talk to Neutron or the hypervisor, or import other hotport packages.

Concurrency: a `VIF` is a frozen dataclass of immutable parts: safe to share between tasks
and threads. `with_active` and `dataclasses.replace` make new values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from hotport.model._fields import (
    JSONObject,
    freeze_extra,
    need_bool,
    need_opt_mapping,
    need_opt_str,
    need_str,
)
from hotport.model.errors import ModelError
from hotport.model.frozen import EMPTY, freeze_mapping, thaw
from hotport.model.values import Network

__all__ = ["NIC_NAME_LEN", "VIF", "devname"]

NIC_NAME_LEN = 14
"""Linux interface names are at most 14 characters here (Nova's `NIC_NAME_LEN`)."""


def devname(port_id: str) -> str:
    """The tap device of a port: `"tap" + port_id[:11]` (14 characters, as Nova names it)."""
    need_str(port_id, "port_id", nonempty=True)
    return ("tap" + port_id)[:NIC_NAME_LEN]


@dataclass(frozen=True, slots=True)
class VIF:
    """One port of a VM: the Neutron port (`id`, MAC `address`, binding) and its network.

    `devname` left empty (the default) is derived from the port id (`devname(id)`).
    `meta` holds hotport's per-VIF data beside Nova's: `tag` (the device tag).
    """

    id: str
    address: str
    network: Network
    type: str
    details: Mapping[str, Any] = EMPTY
    devname: str = ""
    ovs_interfaceid: str | None = None
    vnic_type: str = "normal"
    active: bool = False
    preserve_on_delete: bool = False
    profile: Mapping[str, Any] = EMPTY
    meta: Mapping[str, Any] = EMPTY
    qbh_params: Mapping[str, Any] | None = None
    qbg_params: Mapping[str, Any] | None = None
    delegate_create: bool = False
    extra: Mapping[str, Any] = EMPTY

    KEYS: ClassVar[frozenset[str]] = frozenset(
        {
            "id",
            "address",
            "network",
            "type",
            "details",
            "devname",
            "ovs_interfaceid",
            "qbh_params",
            "qbg_params",
            "active",
            "vnic_type",
            "profile",
            "preserve_on_delete",
            "delegate_create",
            "meta",
        }
    )

    def __post_init__(self) -> None:
        need_str(self.id, "id", nonempty=True)
        need_str(self.address, "address", nonempty=True)
        if not isinstance(self.network, Network):
            raise ModelError(f"expected a Network, got {type(self.network).__name__}", "network")
        need_str(self.type, "type")
        _set(self, "details", freeze_mapping(self.details, "details"))
        need_str(self.devname, "devname")
        if not self.devname:
            _set(self, "devname", devname(self.id))
        need_opt_str(self.ovs_interfaceid, "ovs_interfaceid")
        need_str(self.vnic_type, "vnic_type")
        need_bool(self.active, "active")
        need_bool(self.preserve_on_delete, "preserve_on_delete")
        _set(self, "profile", freeze_mapping(self.profile, "profile"))
        _set(self, "meta", freeze_mapping(self.meta, "meta"))
        _set(self, "qbh_params", need_opt_mapping(self.qbh_params, "qbh_params"))
        _set(self, "qbg_params", need_opt_mapping(self.qbg_params, "qbg_params"))
        need_bool(self.delegate_create, "delegate_create")
        _set(self, "extra", freeze_extra(self.extra, VIF.KEYS))

    # -- views -------------------------------------------------------------------------

    @property
    def port_id(self) -> str:
        return self.id

    @property
    def mac(self) -> str:
        return self.address

    @property
    def mtu(self) -> int | None:
        """The MTU of the VIF's network, None if unknown."""
        return self.network.mtu

    @property
    def tag(self) -> str | None:
        """The device tag (`meta["tag"]`), None if untagged."""
        value = self.meta.get("tag")
        return value if isinstance(value, str) else None

    def fixed_ips(self) -> list[str]:
        """The port's fixed IP addresses, subnet by subnet."""
        return [ip.address for subnet in self.network.subnets for ip in subnet.ips]

    def floating_ips(self) -> list[str]:
        """The floating IP addresses mapped to the port's fixed IPs."""
        return [
            fip.address
            for subnet in self.network.subnets
            for ip in subnet.ips
            for fip in ip.floating_ips
        ]

    # -- changes -----------------------------------------------------------------------

    def with_active(self, active: bool) -> VIF:
        """The same VIF with its link status `active` (self if unchanged)."""
        need_bool(active, "active")
        return self if active == self.active else replace(self, active=active)

    # -- JSON --------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The VIF in Nova's network_info layout (fresh plain JSON: safe to mutate)."""
        out: dict[str, Any] = {
            "id": self.id,
            "address": self.address,
            "network": self.network.to_json(),
            "type": self.type,
            "details": thaw(self.details),
            "devname": self.devname,
            "ovs_interfaceid": self.ovs_interfaceid,
            "qbh_params": thaw(self.qbh_params),
            "qbg_params": thaw(self.qbg_params),
            "active": self.active,
            "vnic_type": self.vnic_type,
            "profile": thaw(self.profile),
            "preserve_on_delete": self.preserve_on_delete,
            "delegate_create": self.delegate_create,
            "meta": thaw(self.meta),
        }
        out.update(thaw(self.extra))
        return out

    @classmethod
    def from_json(cls, data: Any, path: str = "") -> VIF:
        """Read one VIF of Nova's layout; every key of it is required (`devname` must not
        be empty). `ModelError` names the field (a JSON path under `path`)."""
        obj = JSONObject(data, path, "a VIF")
        devname_value = obj.get("devname")
        if devname_value == "":
            raise ModelError("must not be empty", obj.at("devname"))
        return obj.build(
            cls,
            id=obj.get("id"),
            address=obj.get("address"),
            network=Network.from_json(obj.get("network"), obj.at("network")),
            type=obj.get("type"),
            details=obj.get("details"),
            devname=devname_value,
            ovs_interfaceid=obj.get("ovs_interfaceid"),
            vnic_type=obj.get("vnic_type"),
            active=obj.get("active"),
            preserve_on_delete=obj.get("preserve_on_delete"),
            profile=obj.get("profile"),
            meta=obj.get("meta"),
            qbh_params=obj.get("qbh_params"),
            qbg_params=obj.get("qbg_params"),
            delegate_create=obj.get("delegate_create"),
            extra=obj.extra(cls.KEYS),
        )


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)
