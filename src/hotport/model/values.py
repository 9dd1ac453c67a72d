"""The addressing values of a VIF's network: `IP`, `FixedIP`, `Route`, `Subnet`, `Network`.

Owns: these immutable values and their exact JSON round trip in the layout that OpenStack
Nova stores in its instance network-info cache (`nova/network/model.py`): every object
has its known keys plus a free-form `meta` object, and any key this module does not know
is kept in the value's `extra` mapping and written back beside the known ones, so that
`to_json(from_json(j)) == j` for any JSON of the layout. Nothing is dropped.

Must never: do I/O, talk to Neutron, import other hotport packages, or normalise what it
reads (addresses and CIDRs are validated, never rewritten).

Concurrency: every value is a frozen dataclass holding tuples and read-only mappings, so
values are safe to share between tasks and threads; "changing" one makes a new value
(`dataclasses.replace`).

Nova's layout, per object (keys in the order Nova writes them):

- IP: `address`, `type` (`fixed`, `floating`, `gateway`, `dns`), `version`, `meta`
- FixedIP: the IP keys (`type` is `fixed`) and `floating_ips` (IPs of type `floating`)
- Route: `cidr`, `gateway` (an IP or null), `interface` (null in practice), `meta`
- Subnet: `cidr`, `dns`, `gateway`, `ips` (FixedIPs), `routes`, `version`, `meta`
  (`dhcp_server`, `ipv6_address_mode` when known)
- Network: `id`, `bridge`, `label`, `subnets`, `meta` (`injected`, `tenant_id`, `mtu`,
  `physical_network`, `tunneled`); Nova writes `should_create_bridge` at the top level
  for Linux-bridge ports.

A subnet without a gateway: Nova's builder writes the gateway as an IP whose address is
null (`{"address": null, "type": "gateway", "version": null, "meta": {}}`), other writers
write `null`. `Subnet.gateway` is `None` for both; `Subnet.absent_gateway` remembers which
form to write back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from hotport.model._fields import (
    JSONObject,
    check_address,
    cidr_version,
    freeze_extra,
    need_opt_str,
    need_str,
    need_tuple,
    need_version,
)
from hotport.model.errors import ModelError
from hotport.model.frozen import EMPTY, FrozenDict, freeze_mapping, thaw

__all__ = ["IP", "NO_GATEWAY", "FixedIP", "Network", "Route", "Subnet"]

NO_GATEWAY = FrozenDict({"address": None, "type": "gateway", "version": None, "meta": {}})
"""How Nova's builder writes the gateway of a subnet that has none (the default form)."""


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True, slots=True)
class IP:
    """An address of a given `type`: `gateway`, `dns`, `floating` (see `FixedIP` for fixed)."""

    address: str
    type: str
    version: int
    meta: Mapping[str, Any] = EMPTY
    extra: Mapping[str, Any] = EMPTY

    KEYS: ClassVar[frozenset[str]] = frozenset({"address", "type", "version", "meta"})

    def __post_init__(self) -> None:
        need_str(self.address, "address", nonempty=True)
        need_str(self.type, "type")
        need_version(self.version, "version")
        check_address(self.address, self.version, "address")
        _set(self, "meta", freeze_mapping(self.meta, "meta"))
        _set(self, "extra", freeze_extra(self.extra, IP.KEYS))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "address": self.address,
            "type": self.type,
            "version": self.version,
            "meta": thaw(self.meta),
        }
        out.update(thaw(self.extra))
        return out

    @classmethod
    def from_json(cls, data: Any, path: str = "") -> IP:
        """Read one IP object; `path` (where it sits) prefixes the field in errors."""
        obj = JSONObject(data, path, "an IP")
        return obj.build(
            cls,
            address=obj.get("address"),
            type=obj.get("type"),
            version=obj.get("version"),
            meta=obj.get("meta"),
            extra=obj.extra(cls.KEYS),
        )


@dataclass(frozen=True, slots=True)
class FixedIP:
    """A fixed IP of the port, with the floating IPs that map to it."""

    address: str
    version: int
    floating_ips: tuple[IP, ...] = ()
    meta: Mapping[str, Any] = EMPTY
    type: str = "fixed"
    extra: Mapping[str, Any] = EMPTY

    KEYS: ClassVar[frozenset[str]] = frozenset(
        {"address", "type", "version", "meta", "floating_ips"}
    )

    def __post_init__(self) -> None:
        need_str(self.address, "address", nonempty=True)
        need_str(self.type, "type")
        need_version(self.version, "version")
        check_address(self.address, self.version, "address")
        _set(self, "floating_ips", need_tuple(self.floating_ips, IP, "floating_ips"))
        _set(self, "meta", freeze_mapping(self.meta, "meta"))
        _set(self, "extra", freeze_extra(self.extra, FixedIP.KEYS))

    def floating_ip_addresses(self) -> list[str]:
        return [ip.address for ip in self.floating_ips]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "address": self.address,
            "type": self.type,
            "version": self.version,
            "meta": thaw(self.meta),
            "floating_ips": [ip.to_json() for ip in self.floating_ips],
        }
        out.update(thaw(self.extra))
        return out

    @classmethod
    def from_json(cls, data: Any, path: str = "") -> FixedIP:
        obj = JSONObject(data, path, "a fixed IP")
        return obj.build(
            cls,
            address=obj.get("address"),
            version=obj.get("version"),
            floating_ips=obj.items("floating_ips", IP.from_json),
            meta=obj.get("meta"),
            type=obj.get("type"),
            extra=obj.extra(cls.KEYS),
        )


@dataclass(frozen=True, slots=True)
class Route:
    """A host route of a subnet: `cidr` via `gateway`."""

    cidr: str
    gateway: IP | None
    interface: str | None = None
    meta: Mapping[str, Any] = EMPTY
    extra: Mapping[str, Any] = EMPTY

    KEYS: ClassVar[frozenset[str]] = frozenset({"cidr", "gateway", "interface", "meta"})

    def __post_init__(self) -> None:
        need_str(self.cidr, "cidr", nonempty=True)
        cidr_version(self.cidr, "cidr")
        if self.gateway is not None and not isinstance(self.gateway, IP):
            raise ModelError(
                f"expected an IP or None, got {type(self.gateway).__name__}", "gateway"
            )
        need_opt_str(self.interface, "interface")
        _set(self, "meta", freeze_mapping(self.meta, "meta"))
        _set(self, "extra", freeze_extra(self.extra, Route.KEYS))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "cidr": self.cidr,
            "gateway": None if self.gateway is None else self.gateway.to_json(),
            "interface": self.interface,
            "meta": thaw(self.meta),
        }
        out.update(thaw(self.extra))
        return out

    @classmethod
    def from_json(cls, data: Any, path: str = "") -> Route:
        obj = JSONObject(data, path, "a route")
        gateway = obj.get("gateway")
        return obj.build(
            cls,
            cidr=obj.get("cidr"),
            gateway=None if gateway is None else IP.from_json(gateway, obj.at("gateway")),
            interface=obj.get("interface"),
            meta=obj.get("meta"),
            extra=obj.extra(cls.KEYS),
        )


@dataclass(frozen=True, slots=True)
class Subnet:
    """A subnet of the port (only those its fixed IPs are on), with the port's IPs in it.

    `absent_gateway` is how a missing gateway is written: `NO_GATEWAY` (Nova's form, the
    default) or `None` for JSON `null`. When `gateway` is set it is always `NO_GATEWAY`.
    """

    cidr: str
    version: int
    gateway: IP | None
    dns: tuple[IP, ...] = ()
    routes: tuple[Route, ...] = ()
    ips: tuple[FixedIP, ...] = ()
    meta: Mapping[str, Any] = EMPTY
    extra: Mapping[str, Any] = EMPTY
    absent_gateway: Mapping[str, Any] | None = NO_GATEWAY

    KEYS: ClassVar[frozenset[str]] = frozenset(
        {"cidr", "dns", "gateway", "ips", "routes", "version", "meta"}
    )

    def __post_init__(self) -> None:
        need_str(self.cidr, "cidr", nonempty=True)
        need_version(self.version, "version")
        actual = cidr_version(self.cidr, "cidr")
        if actual != self.version:
            raise ModelError(f"{self.cidr!r} is IPv{actual}, not IPv{self.version}", "cidr")
        if self.gateway is not None and not isinstance(self.gateway, IP):
            raise ModelError(
                f"expected an IP or None, got {type(self.gateway).__name__}", "gateway"
            )
        _set(self, "dns", need_tuple(self.dns, IP, "dns"))
        _set(self, "routes", need_tuple(self.routes, Route, "routes"))
        _set(self, "ips", need_tuple(self.ips, FixedIP, "ips"))
        _set(self, "meta", freeze_mapping(self.meta, "meta"))
        _set(self, "extra", freeze_extra(self.extra, Subnet.KEYS))
        if self.gateway is not None:
            _set(self, "absent_gateway", NO_GATEWAY)
        elif self.absent_gateway is not None:
            absent = freeze_mapping(self.absent_gateway, "gateway")
            if "address" not in absent or absent["address"] is not None:
                raise ModelError("a missing gateway is written with a null address", "gateway")
            _set(self, "absent_gateway", absent)

    def fixed_ip_addresses(self) -> list[str]:
        return [ip.address for ip in self.ips]

    def to_json(self) -> dict[str, Any]:
        if self.gateway is not None:
            gateway: Any = self.gateway.to_json()
        else:
            gateway = thaw(self.absent_gateway)
        out: dict[str, Any] = {
            "cidr": self.cidr,
            "dns": [ip.to_json() for ip in self.dns],
            "gateway": gateway,
            "ips": [ip.to_json() for ip in self.ips],
            "routes": [route.to_json() for route in self.routes],
            "version": self.version,
            "meta": thaw(self.meta),
        }
        out.update(thaw(self.extra))
        return out

    @classmethod
    def from_json(cls, data: Any, path: str = "") -> Subnet:
        obj = JSONObject(data, path, "a subnet")
        raw_gateway = obj.get("gateway")
        gateway: IP | None = None
        absent: Any = NO_GATEWAY
        if raw_gateway is None:
            absent = None
        elif isinstance(raw_gateway, Mapping) and raw_gateway.get("address", "") is None:
            absent = raw_gateway
        else:
            gateway = IP.from_json(raw_gateway, obj.at("gateway"))
        return obj.build(
            cls,
            cidr=obj.get("cidr"),
            version=obj.get("version"),
            gateway=gateway,
            dns=obj.items("dns", IP.from_json),
            routes=obj.items("routes", Route.from_json),
            ips=obj.items("ips", FixedIP.from_json),
            meta=obj.get("meta"),
            extra=obj.extra(cls.KEYS),
            absent_gateway=absent,
        )


@dataclass(frozen=True, slots=True)
class Network:
    """The network of a VIF: its Neutron id, name (`label`), host bridge and subnets."""

    id: str
    label: str
    bridge: str | None
    subnets: tuple[Subnet, ...] = ()
    meta: Mapping[str, Any] = EMPTY
    extra: Mapping[str, Any] = EMPTY

    KEYS: ClassVar[frozenset[str]] = frozenset({"id", "bridge", "label", "subnets", "meta"})

    def __post_init__(self) -> None:
        need_str(self.id, "id", nonempty=True)
        need_str(self.label, "label")
        need_opt_str(self.bridge, "bridge")
        _set(self, "subnets", need_tuple(self.subnets, Subnet, "subnets"))
        _set(self, "meta", freeze_mapping(self.meta, "meta"))
        _set(self, "extra", freeze_extra(self.extra, Network.KEYS))

    @property
    def mtu(self) -> int | None:
        """The network's MTU (`meta["mtu"]`), None if unknown."""
        value = self.meta.get("mtu")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def physical_network(self) -> str | None:
        value = self.meta.get("physical_network")
        return value if isinstance(value, str) else None

    @property
    def tunneled(self) -> bool:
        return self.meta.get("tunneled") is True

    @property
    def should_create_bridge(self) -> bool:
        """Nova's flag for Linux-bridge ports: top level as Nova's builder writes it, or
        in `meta` where Nova puts it when it re-reads a cache."""
        return self.extra.get("should_create_bridge", self.meta.get("should_create_bridge")) is True

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "bridge": self.bridge,
            "label": self.label,
            "subnets": [subnet.to_json() for subnet in self.subnets],
            "meta": thaw(self.meta),
        }
        out.update(thaw(self.extra))
        return out

    @classmethod
    def from_json(cls, data: Any, path: str = "") -> Network:
        obj = JSONObject(data, path, "a network")
        return obj.build(
            cls,
            id=obj.get("id"),
            label=obj.get("label"),
            bridge=obj.get("bridge"),
            subnets=obj.items("subnets", Subnet.from_json),
            meta=obj.get("meta"),
            extra=obj.extra(cls.KEYS),
        )
