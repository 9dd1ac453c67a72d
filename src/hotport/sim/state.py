"""In-memory Neutron resources: the pure core of the simulator.

Owns: networks, subnets, ports, routers, floating IPs and default security groups as plain
dicts in Neutron's wire shape; IP and MAC allocation; port binding (vif type and details);
revision numbers and timestamps; the If-Match revision constraint; and the compute-service
events each mutation causes (returned, never sent).

Never: does I/O, knows HTTP, sleeps, reads a clock other than the injected ``now``, or sends
events. Every mutation returns ``(result, Change)``; the caller (app.py) emits
``Change.events`` to the notifier after the state change and hands ``Change.bound`` to the
agent. Request-body validation that needs no state lives in `schema.py`.

Concurrency: not thread-safe and never awaits. The app calls it from one asyncio event loop
only, one call at a time, so every method runs atomically with respect to the others.

Behaviour copied from a real neutron-server 29.0.0 (ML2, noauth), checked with curl:

* Revision numbers (standard attributes). Create: network 1, subnet 0, port 1 (3 when created
  bound to a host: ML2 commits the binding twice), router 1 (2 with a gateway), floating IP 0.
  An update that changes at least one value: +1; an update that binds the port to a new host,
  or changes binding:profile / binding:vnic_type of a bound port (ML2 rebinds): +3; an unbind:
  +1; a status change (agent, admin endpoint): +1. A subnet created or deleted bumps its
  network by 1, and so does a router interface added on it. An update whose every given value
  equals the current one is a no-op: no bump, ``updated_at`` unchanged (neutron-server does
  the same for ports, networks and subnets). Floating IP updates always bump (the real server
  bumps even a repeated disassociate). Reads never bump.
* ``binding:vif_details.bound_drivers`` is shown by reads and by the response of the request
  that bound the port, but NOT by the response of an update that did not (re)bind it (the real
  server builds that response from a port context without binding levels).
* Default fixed IPs: one IPv4 address (from the first IPv4 subnet with room), one IPv6
  address from the first stateful IPv6 subnet with room, and an EUI-64 address from every
  SLAAC / DHCPv6-stateless subnet, as ``ipam_pluggable_backend`` does. Addresses are drawn at
  random from the allocation pools (seeded), like Neutron's IPAM. An IPv4 subnet's gateway is
  the first host and its pool the rest minus broadcast; an IPv6 subnet's default gateway is
  the network address itself (``2001:db8::``) and its pool starts at ``::1``, as observed.
* Events follow ``neutron/notifiers/nova.py``: ``network-changed`` for every port update whose
  RESULT is a compute port (device_id UUID-like, device_owner ``compute:*``), no-op updates
  included; for a floating IP create/update/delete whose (new or old) port is a compute port
  (an update that moves a FIP from port A to B: A then B); ``network-vif-plugged`` when a
  compute port goes DOWN/BUILD/new -> ACTIVE (completed) or -> ERROR (failed);
  ``network-vif-unplugged`` ACTIVE -> DOWN; ``network-vif-deleted`` when a compute port is
  deleted. Status events come first (the real server queues them at flush time), then
  ``network-changed`` (queued before the response). server_uuid = device_id, tag = port id.
"""

from __future__ import annotations

import copy
import ipaddress
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from .errors import BadRequest, Conflict, NotFound, PreconditionFailed, SimError, bad_request
from .errors import invalid_input as _invalid_input
from .schema import is_uuid_like, normalize_mac

__all__ = [
    "PORT_STATUSES",
    "VIF_TYPES",
    "Change",
    "Event",
    "SimState",
    "is_compute_port",
    "utc_now",
    "vif_details_for",
]

Event = dict[str, str]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PORT_STATUSES = ("ACTIVE", "DOWN", "ERROR", "BUILD")
VIF_TYPES = ("ovs", "bridge", "tap")
VifType = Literal["ovs", "bridge", "tap"]

DEVICE_OWNER_ROUTER_INTF = "network:router_interface"
DEVICE_OWNER_ROUTER_GW = "network:router_gateway"
DEVICE_OWNER_FLOATINGIP = "network:floatingip"
_SERVICE_OWNERS = (DEVICE_OWNER_ROUTER_INTF, DEVICE_OWNER_ROUTER_GW, DEVICE_OWNER_FLOATINGIP)


def utc_now() -> str:
    """Neutron's timestamp format: second precision, UTC, trailing Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def vif_details_for(vif_type: str) -> tuple[dict[str, Any], str]:
    """binding:vif_details (without bound_drivers) and the bound driver name for a vif type.

    * ovs: neutron 29 ``mech_openvswitch`` with the iptables-less default firewall and the
      integration bridge br-int; exactly the keys recorded from the real server (whose
      driver there is the ovs-like ``anchor_loopback``; the stock driver is ``openvswitch``).
    * bridge: the linuxbridge driver (``SimpleAgentMechanismDriverBase`` with
      ``{port_filter: True}``, connectivity l2), neutron <= 2025.1 (it was removed later).
    * tap: networking-calico, the common tap-binding driver: ``{port_filter: True,
      mac_address: 00:61:fe:ed:ca:fe}`` through ``SimpleAgentMechanismDriverBase``, which
      puts the base class's connectivity (``legacy``) first.
    """
    if vif_type == "ovs":
        return {
            "port_filter": True,
            "ovs_hybrid_plug": False,
            "connectivity": "l2",
            "bridge_name": "br-int",
            "datapath_type": "system",
        }, "openvswitch"
    if vif_type == "bridge":
        return {"connectivity": "l2", "port_filter": True}, "linuxbridge"
    if vif_type == "tap":
        return {
            "connectivity": "legacy",
            "port_filter": True,
            "mac_address": "00:61:fe:ed:ca:fe",
        }, "calico"
    raise ValueError(f"unknown vif type {vif_type!r} (known: {', '.join(VIF_TYPES)})")


def is_compute_port(port: Mapping[str, Any]) -> bool:
    """neutron.notifiers.nova._is_compute_port."""
    device_id = port.get("device_id")
    owner = port.get("device_owner")
    return bool(
        device_id
        and is_uuid_like(device_id)
        and isinstance(owner, str)
        and owner.startswith("compute:")
    )


def _ev(name: str, port: Mapping[str, Any], status: str | None = None) -> Event:
    e: Event = {"name": name, "server_uuid": str(port["device_id"]), "tag": str(port["id"])}
    if status is not None:
        e["status"] = status
    return e


@dataclass
class Change:
    """What a mutation caused besides its result: events to send, ports the agent must plug."""

    events: list[Event] = field(default_factory=list)
    bound: list[tuple[str, int]] = field(default_factory=list)  # (port_id, binding generation)
    items: int = 1  # resources changed (for the latency model)

    def extend(self, other: Change) -> None:
        self.events.extend(other.events)
        self.bound.extend(other.bound)


def _not_found(kind: str, rid: str) -> NotFound:
    if kind == "network":
        return NotFound("NetworkNotFound", f"Network {rid} could not be found.")
    if kind == "subnet":
        return NotFound("SubnetNotFound", f"Subnet {rid} could not be found.")
    if kind == "port":
        return NotFound("PortNotFound", f"Port {rid} could not be found.")
    if kind == "router":
        return NotFound("RouterNotFound", f"Router {rid} could not be found")
    if kind == "floatingip":
        return NotFound("FloatingIPNotFound", f"Floating IP {rid} could not be found")
    if kind == "security_group":
        return NotFound("SecurityGroupNotFound", f"Security group {rid} does not exist")
    raise ValueError(kind)


def _ip_in_use(ip: str, subnet_id: str) -> Conflict:
    return Conflict(
        "IpAddressAlreadyAllocated", f"IP address {ip} already allocated in subnet {subnet_id}"
    )


def _ip_for_network(ip: str) -> BadRequest:
    return BadRequest(
        "InvalidIpForNetwork",
        f"IP address {ip} is not a valid IP for any of the subnets on the specified network.",
    )


class SimState:
    """All simulated resources. Methods return deep copies; callers may keep or mutate them."""

    def __init__(
        self,
        *,
        vif_type: str = "ovs",
        default_project: str = "fake_project_id",
        seed: int | None = None,
        now: Callable[[], str] = utc_now,
    ) -> None:
        vif_details_for(vif_type)  # validates
        self.vif_type = vif_type
        self.default_project = default_project
        self._rng = random.Random(seed)
        self._now = now
        self.networks: dict[str, dict[str, Any]] = {}
        self.subnets: dict[str, dict[str, Any]] = {}
        self.ports: dict[str, dict[str, Any]] = {}
        self.routers: dict[str, dict[str, Any]] = {}
        self.floatingips: dict[str, dict[str, Any]] = {}
        self.security_groups: dict[str, dict[str, Any]] = {}
        # port id -> binding generation (bumped on every (re)bind; the agent checks it)
        self._bind_seq: dict[str, int] = {}
        # network id -> is_default (only shown for external networks and in create responses)
        self._is_default: dict[str, bool] = {}

    # ================================================================== helpers
    def _store(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            "network": self.networks,
            "subnet": self.subnets,
            "port": self.ports,
            "router": self.routers,
            "floatingip": self.floatingips,
            "security_group": self.security_groups,
        }[kind]

    def _get(self, kind: str, rid: str) -> dict[str, Any]:
        try:
            return self._store(kind)[rid]
        except KeyError:
            raise _not_found(kind, rid) from None

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _stamp(self, res: dict[str, Any], revision: int) -> None:
        now = self._now()
        res["tags"] = res.get("tags") or []
        res["created_at"] = now
        res["updated_at"] = now
        res["revision_number"] = revision

    def _bump(self, res: dict[str, Any], by: int = 1) -> None:
        res["revision_number"] += by
        res["updated_at"] = self._now()

    @staticmethod
    def check_revision(res: Mapping[str, Any], if_match: int | None) -> None:
        """The revision-if-match constraint: 412 unless the current revision equals it."""
        if if_match is not None and res["revision_number"] != if_match:
            raise PreconditionFailed(
                "RevisionNumberConstraintFailed",
                f"Constrained to {if_match}, but current revision is {res['revision_number']}",
            )

    # ================================================================== reads
    def get(self, kind: str, rid: str) -> dict[str, Any]:
        return self.render(kind, self._get(kind, rid))

    def list_all(self, kind: str) -> list[dict[str, Any]]:
        return [self.render(kind, res) for res in self._store(kind).values()]

    def exists(self, kind: str, rid: str) -> bool:
        return rid in self._store(kind)

    def render(self, kind: str, res: Mapping[str, Any], *, fresh: bool = False) -> dict[str, Any]:
        """The wire form of a stored resource (a deep copy).

        ``fresh`` marks the response of a create (networks: ``is_default`` always shown).
        """
        out = copy.deepcopy(dict(res))
        if kind == "network":
            if fresh or out["router:external"]:
                # insert before tags, where the real server puts it
                items = list(out.items())
                idx = [k for k, _ in items].index("tags")
                items.insert(idx, ("is_default", self._is_default.get(out["id"], False)))
                out = dict(items)
        elif kind == "subnet":
            net = self.networks.get(out["network_id"])
            external = bool(net and net["router:external"])
            ordered: dict[str, Any] = {}
            for k, v in out.items():
                ordered[k] = v
                if k == "description":  # the recorded key order
                    ordered["router:external"] = external
            out = ordered
        elif kind == "port" and out["binding:host_id"]:
            details, driver = vif_details_for(out["binding:vif_type"])
            out["binding:vif_details"] = {**details, "bound_drivers": {"0": driver}}
        elif kind == "floatingip":
            out["port_details"] = self._port_details(out["port_id"])
        return out

    def _port_details(self, port_id: str | None) -> dict[str, Any] | None:
        if port_id is None or port_id not in self.ports:
            return None
        p = self.ports[port_id]
        keys = ("name", "network_id", "mac_address", "admin_state_up", "status", "device_id")
        return {**{k: p[k] for k in keys}, "device_owner": p["device_owner"]}

    # ================================================================== security groups
    def default_security_group(self, project_id: str) -> str:
        """The id of the project's default security group, created on first use."""
        for sg in self.security_groups.values():
            if sg["project_id"] == project_id and sg["name"] == "default":
                return str(sg["id"])
        sg_id = self._new_id()
        rules = []
        for direction, ethertype in (
            ("egress", "IPv4"),
            ("egress", "IPv6"),
            ("ingress", "IPv4"),
            ("ingress", "IPv6"),
        ):
            rule: dict[str, Any] = {
                "id": self._new_id(),
                "project_id": project_id,
                "security_group_id": sg_id,
                "ethertype": ethertype,
                "direction": direction,
                "protocol": None,
                "port_range_min": None,
                "port_range_max": None,
                "remote_ip_prefix": None,
                "remote_address_group_id": None,
                "normalized_cidr": None,
                "remote_group_id": sg_id if direction == "ingress" else None,
                "belongs_to_default_sg": True,
                "description": None,
            }
            self._stamp(rule, 0)
            rule["tenant_id"] = project_id
            rules.append(rule)
        group: dict[str, Any] = {
            "id": sg_id,
            "name": "default",
            "stateful": True,
            "tenant_id": project_id,
            "project_id": project_id,
            "description": "Default security group",
            "shared": False,
            "security_group_rules": rules,
        }
        self._stamp(group, 0)
        self.security_groups[sg_id] = group
        return sg_id

    # ================================================================== networks
    def create_network(self, attrs: Mapping[str, Any]) -> tuple[dict[str, Any], Change]:
        mtu = attrs.get("mtu", 1500)
        if mtu > 1500:
            raise _invalid_input("Requested MTU is too big, maximum is 1500")
        if mtu < 68:
            raise _invalid_input(f"Requested MTU is too small, minimum is {68}")
        net_type = attrs.get("provider:network_type") or "vlan"
        physnet = attrs.get("provider:physical_network")
        seg = attrs.get("provider:segmentation_id")
        if net_type == "vlan":
            physnet = physnet or "physnet1"
            if seg is None:
                used = {
                    n["provider:segmentation_id"]
                    for n in self.networks.values()
                    if n["provider:network_type"] == "vlan"
                    and n["provider:physical_network"] == physnet
                }
                free = [s for s in range(1000, 2000) if s not in used]
                if not free:
                    raise Conflict(
                        "NoNetworkAvailable",
                        "Unable to create the network. No tenant network is available for "
                        "allocation.",
                    )
                seg = self._rng.choice(free)
        elif net_type in ("flat", "local"):
            seg = None
            physnet = physnet if net_type == "flat" else None
        project = attrs["project_id"]
        net_id = self._new_id()
        net: dict[str, Any] = {
            "id": net_id,
            "name": attrs.get("name", ""),
            "tenant_id": project,
            "project_id": project,
            "admin_state_up": attrs.get("admin_state_up", True),
            "mtu": mtu,
            "status": "ACTIVE",
            "subnets": [],
            "shared": attrs.get("shared", False),
            "availability_zone_hints": list(attrs.get("availability_zone_hints", [])),
            "availability_zones": [],
            "ipv4_address_scope": None,
            "ipv6_address_scope": None,
            "router:external": attrs.get("router:external", False),
            "qinq": attrs.get("qinq", False),
            "vlan_transparent": attrs.get("vlan_transparent", False),
            "description": attrs.get("description", ""),
            "port_security_enabled": attrs.get("port_security_enabled", True),
            "tags": list(attrs.get("tags", [])),
        }
        self._stamp(net, 1)
        net["provider:network_type"] = net_type
        net["provider:physical_network"] = physnet
        net["provider:segmentation_id"] = seg
        self.networks[net_id] = net
        self._is_default[net_id] = attrs.get("is_default", False)
        self.default_security_group(project)
        return self.render("network", net, fresh=True), Change()

    def update_network(
        self, net_id: str, attrs: Mapping[str, Any], if_match: int | None = None
    ) -> tuple[dict[str, Any], Change]:
        net = self._get("network", net_id)
        self.check_revision(net, if_match)
        if "mtu" in attrs and attrs["mtu"] > 1500:
            raise _invalid_input("Requested MTU is too big, maximum is 1500")
        changed = False
        for key, value in attrs.items():
            if key in ("project_id", "tenant_id"):
                continue
            if key == "is_default":
                if self._is_default.get(net_id, False) != value:
                    self._is_default[net_id] = value
                    changed = True
                continue
            if net.get(key) != value:
                net[key] = value
                changed = True
        if changed:
            self._bump(net)
        return self.render("network", net), Change()

    def delete_network(self, net_id: str, if_match: int | None = None) -> Change:
        net = self._get("network", net_id)
        self.check_revision(net, if_match)
        in_use = [p["id"] for p in self.ports.values() if p["network_id"] == net_id]
        if in_use:
            raise Conflict(
                "NetworkInUse",
                f"Unable to complete operation on network {net_id}. There are one or more "
                f"ports still in use on the network, id for these ports is: {','.join(in_use)}.",
            )
        for sub_id in list(net["subnets"]):
            del self.subnets[sub_id]
        del self.networks[net_id]
        self._is_default.pop(net_id, None)
        return Change()

    # ================================================================== subnets
    def create_subnet(self, attrs: Mapping[str, Any]) -> tuple[dict[str, Any], Change]:
        net = self._get("network", attrs["network_id"])
        if attrs.get("subnetpool_id") is not None:
            pool = attrs["subnetpool_id"]
            raise NotFound("SubnetPoolNotFound", f"Subnet pool {pool} could not be found.")
        if "cidr" not in attrs or attrs["cidr"] is None:
            raise bad_request("subnets", "a subnetpool must be specified in the absence of a cidr")
        raw = attrs["cidr"]
        try:
            cidr: IPNetwork = ipaddress.ip_network(str(raw), strict=False)
        except ValueError:
            raise _invalid_input(f"{raw} is not in a CIDR format") from None
        if not isinstance(raw, str) or "/" not in raw:
            raise _invalid_input(f"{raw} is not in a CIDR format")
        version = attrs["ip_version"]
        if cidr.version != version:
            raise _invalid_input(f"cidr '{cidr}' does not match the ip_version '{version}'")
        for other_id in net["subnets"]:
            if self._cidr(self.subnets[other_id]).overlaps(cidr):
                raise _invalid_input(
                    f"Requested subnet with cidr: {cidr} for network: {net['id']} overlaps "
                    "with another subnet"
                )
        if "gateway_ip" in attrs:
            gateway = attrs["gateway_ip"]
            if gateway is not None:
                gw = ipaddress.ip_address(gateway)
                if gw.version != version:
                    raise _invalid_input(
                        f"Invalid input for gateway_ip. Reason: '{gateway}' is not of ip_version "
                        f"'{version}'"
                    )
                gateway = str(gw)
        else:
            gateway = str(cidr.network_address + 1 if version == 4 else cidr.network_address)
        if "allocation_pools" in attrs and attrs["allocation_pools"] is not None:
            pools = self._check_pools(attrs["allocation_pools"], cidr, gateway)
        else:
            pools = self._default_pools(cidr, gateway)
        project = attrs["project_id"]
        sub_id = self._new_id()
        sub: dict[str, Any] = {
            "id": sub_id,
            "name": attrs.get("name", ""),
            "project_id": project,
            "network_id": net["id"],
            "ip_version": version,
            "subnetpool_id": None,
            "enable_dhcp": attrs.get("enable_dhcp", True),
            "ipv6_ra_mode": attrs.get("ipv6_ra_mode"),
            "ipv6_address_mode": attrs.get("ipv6_address_mode"),
            "gateway_ip": gateway,
            "cidr": str(cidr),
            "allocation_pools": pools,
            "host_routes": list(attrs.get("host_routes", [])),
            "dns_nameservers": list(attrs.get("dns_nameservers", [])),
            "description": attrs.get("description", ""),
            "service_types": list(attrs.get("service_types", [])),
            "tags": list(attrs.get("tags", [])),
        }
        self._stamp(sub, 0)
        sub["tenant_id"] = project
        self.subnets[sub_id] = sub
        net["subnets"] = sorted([*net["subnets"], sub_id])
        self._bump(net)
        return self.render("subnet", sub), Change()

    @staticmethod
    def _cidr(sub: Mapping[str, Any]) -> IPNetwork:
        return ipaddress.ip_network(sub["cidr"])

    @staticmethod
    def _default_pools(cidr: IPNetwork, gateway: str | None) -> list[dict[str, str]]:
        if cidr.version == 4:
            if cidr.num_addresses <= 2:
                first, last = int(cidr.network_address), int(cidr.broadcast_address)
            else:
                first, last = int(cidr.network_address) + 1, int(cidr.broadcast_address) - 1
        else:
            first, last = int(cidr.network_address) + 1, int(cidr.broadcast_address)
        ranges = [(first, last)]
        if gateway is not None:
            gw = int(ipaddress.ip_address(gateway))
            ranges = []
            if first <= gw - 1:
                ranges.append((first, min(last, gw - 1)))
            if gw + 1 <= last:
                ranges.append((max(first, gw + 1), last))
        cls: type[IPAddress] = ipaddress.IPv4Address if cidr.version == 4 else ipaddress.IPv6Address

        def mk(n: int) -> str:
            return str(cls(n))

        return [{"start": mk(a), "end": mk(b)} for a, b in ranges if a <= b]

    @staticmethod
    def _check_pools(
        pools: Iterable[Mapping[str, str]], cidr: IPNetwork, gateway: str | None
    ) -> list[dict[str, str]]:
        out = []
        seen: list[tuple[int, int]] = []
        for pool in pools:
            start, end = ipaddress.ip_address(pool["start"]), ipaddress.ip_address(pool["end"])
            text = f"{start}-{end}"
            if start not in cidr or end not in cidr or int(start) > int(end):
                raise BadRequest(
                    "OutOfBoundsAllocationPool",
                    f"The allocation pool {text} spans beyond the subnet cidr {cidr}.",
                )
            a, b = int(start), int(end)
            if any(a <= y and x <= b for x, y in seen):
                raise BadRequest(
                    "OverlappingAllocationPools",
                    f"Found overlapping allocation pools: {text} and another pool for subnet "
                    f"{cidr}.",
                )
            if gateway is not None and a <= int(ipaddress.ip_address(gateway)) <= b:
                raise Conflict(
                    "GatewayConflictWithAllocationPools",
                    f"Gateway ip {gateway} conflicts with allocation pool {text}.",
                )
            seen.append((a, b))
            out.append({"start": str(start), "end": str(end)})
        return out

    def update_subnet(
        self, sub_id: str, attrs: Mapping[str, Any], if_match: int | None = None
    ) -> tuple[dict[str, Any], Change]:
        sub = self._get("subnet", sub_id)
        self.check_revision(sub, if_match)
        new = dict(attrs)
        new.pop("project_id", None)
        new.pop("tenant_id", None)
        if "allocation_pools" in new:
            new["allocation_pools"] = self._check_pools(
                new["allocation_pools"], self._cidr(sub), new.get("gateway_ip", sub["gateway_ip"])
            )
        changed = False
        for key, value in new.items():
            if sub.get(key) != value:
                sub[key] = value
                changed = True
        if changed:
            self._bump(sub)
        return self.render("subnet", sub), Change()

    def delete_subnet(self, sub_id: str, if_match: int | None = None) -> Change:
        sub = self._get("subnet", sub_id)
        self.check_revision(sub, if_match)
        for p in self.ports.values():
            if any(ip["subnet_id"] == sub_id for ip in p["fixed_ips"]):
                raise Conflict(
                    "SubnetInUse",
                    f"Unable to complete operation on subnet {sub_id}: One or more ports have "
                    "an IP allocation from this subnet.",
                )
        del self.subnets[sub_id]
        net = self.networks[sub["network_id"]]
        net["subnets"] = [s for s in net["subnets"] if s != sub_id]
        self._bump(net)
        return Change()

    # ================================================================== addresses
    def _allocated(self, subnet_id: str) -> set[str]:
        return {
            ip["ip_address"]
            for p in self.ports.values()
            for ip in p["fixed_ips"]
            if ip["subnet_id"] == subnet_id
        }

    def _subnet_kind(self, sub: Mapping[str, Any]) -> str:
        if sub["ip_version"] == 4:
            return "v4"
        if sub["ipv6_address_mode"] in ("slaac", "dhcpv6-stateless") or sub["ipv6_ra_mode"] in (
            "slaac",
            "dhcpv6-stateless",
        ):
            return "v6_stateless"
        return "v6_stateful"

    @staticmethod
    def _eui64(cidr: IPNetwork, mac: str) -> str:
        octets = [int(x, 16) for x in mac.split(":")]
        octets[0] ^= 0x02
        iid = [*octets[:3], 0xFF, 0xFE, *octets[3:]]
        value = int(cidr.network_address) | int.from_bytes(bytes(iid), "big")
        return str(ipaddress.IPv6Address(value))

    def _pick_free(self, sub: Mapping[str, Any], taken: set[str]) -> str | None:
        ranges = [
            (int(ipaddress.ip_address(p["start"])), int(ipaddress.ip_address(p["end"])))
            for p in sub["allocation_pools"]
        ]
        total = sum(b - a + 1 for a, b in ranges)
        if total <= 0:
            return None
        mk: Callable[[int], IPAddress] = (
            ipaddress.IPv4Address if sub["ip_version"] == 4 else ipaddress.IPv6Address
        )
        for _ in range(64):  # random draws first (Neutron's IPAM picks at random)
            n = self._rng.randrange(total)
            for a, b in ranges:
                if n <= b - a:
                    cand = str(mk(a + n))
                    break
                n -= b - a + 1
            if cand not in taken:
                return cand
        if total > 1 << 20:  # a huge pool that random draws could not hit: practically full
            return None
        for a, b in ranges:
            for v in range(a, b + 1):
                cand = str(mk(v))
                if cand not in taken:
                    return cand
        return None

    def _allocate(
        self,
        net: Mapping[str, Any],
        requested: list[Mapping[str, Any]] | None,
        mac: str,
        device_owner: str,
        keep: Mapping[str, str] | None = None,
    ) -> list[dict[str, str]]:
        """Fixed IPs for a port on `net`: the requested ones, or Neutron's default choice.

        `keep` maps ip -> subnet of the port's current addresses (an update may keep them).
        """
        keep = keep or {}
        subnets = [self.subnets[s] for s in self._net_subnets_in_order(net)]
        out: list[dict[str, str]] = []
        chosen: set[tuple[str, str]] = set()
        handled: set[str] = set()
        if requested is not None:
            for req in requested:
                if "subnet_id" not in req and "ip_address" not in req:
                    raise _invalid_input("IP allocation requires subnet_id or ip_address")
                sub: Mapping[str, Any] | None = None
                if "subnet_id" in req:
                    sub = self.subnets.get(req["subnet_id"])
                    if sub is None:
                        raise _not_found("subnet", req["subnet_id"])
                    if sub["network_id"] != net["id"]:
                        raise _invalid_input(
                            f"Failed to create port on network {net['id']}, because fixed_ips "
                            f"included invalid subnet {sub['id']}"
                        )
                if "ip_address" in req:
                    addr = ipaddress.ip_address(req["ip_address"])
                    ip = str(addr)
                    if sub is not None:
                        if not self._valid_for_subnet(addr, sub):
                            raise BadRequest(
                                "InvalidIpForSubnet",
                                f"IP address {ip} is not a valid IP for the specified subnet.",
                            )
                    else:
                        sub = next((s for s in subnets if self._valid_for_subnet(addr, s)), None)
                        if sub is None:
                            raise _ip_for_network(ip)
                    if (keep.get(ip) != sub["id"] and ip in self._allocated(sub["id"])) or (
                        sub["id"],
                        ip,
                    ) in chosen:
                        raise _ip_in_use(ip, sub["id"])
                else:
                    assert sub is not None
                    if self._subnet_kind(sub) == "v6_stateless":
                        ip = self._eui64(self._cidr(sub), mac)
                    else:
                        taken = self._allocated(sub["id"]) | {
                            i for s, i in chosen if s == sub["id"]
                        }
                        picked = self._pick_free(sub, taken)
                        if picked is None:
                            raise Conflict(
                                "IpAddressGenerationFailure",
                                f"No more IP addresses available on network {net['id']}.",
                            )
                        ip = picked
                chosen.add((sub["id"], ip))
                out.append({"subnet_id": sub["id"], "ip_address": ip})
            handled = {s_id for s_id, _ in chosen}
            stateless = [s for s in subnets if self._subnet_kind(s) == "v6_stateless"]
        else:
            for kind in ("v4", "v6_stateful"):
                group = [s for s in subnets if self._subnet_kind(s) == kind]
                if not group:
                    continue
                for s in group:
                    picked = self._pick_free(s, self._allocated(s["id"]))
                    if picked is not None:
                        out.append({"subnet_id": s["id"], "ip_address": picked})
                        break
                else:
                    raise Conflict(
                        "IpAddressGenerationFailure",
                        f"No more IP addresses available on network {net['id']}.",
                    )
            stateless = [s for s in subnets if self._subnet_kind(s) == "v6_stateless"]
        if device_owner != DEVICE_OWNER_ROUTER_INTF:
            for s in stateless:
                if s["id"] not in handled:
                    out.append(
                        {"subnet_id": s["id"], "ip_address": self._eui64(self._cidr(s), mac)}
                    )
        return out

    def _net_subnets_in_order(self, net: Mapping[str, Any]) -> list[str]:
        # creation order (the dict keeps insertion order)
        return [sid for sid, s in self.subnets.items() if s["network_id"] == net["id"]]

    def _valid_for_subnet(self, addr: IPAddress, sub: Mapping[str, Any]) -> bool:
        cidr = self._cidr(sub)
        if addr.version != cidr.version or addr not in cidr:
            return False
        if cidr.version == 4 and cidr.num_addresses > 2:
            return addr not in (cidr.network_address, cidr.broadcast_address)
        if cidr.version == 6:
            return addr != cidr.network_address or sub["gateway_ip"] == str(addr)
        return True

    def _new_mac(self) -> str:
        used = {p["mac_address"] for p in self.ports.values()}
        while True:
            tail = ":".join(f"{self._rng.randrange(256):02x}" for _ in range(3))
            mac = f"fa:16:3e:{tail}"
            if mac not in used:
                return mac

    def _check_mac_free(self, net_id: str, mac: str, port_id: str | None = None) -> None:
        for p in self.ports.values():
            if p["network_id"] == net_id and p["mac_address"] == mac and p["id"] != port_id:
                raise Conflict(
                    "MacAddressInUse",
                    f"Unable to complete operation for network {net_id}. The mac address "
                    f"{mac} is in use.",
                )

    # ================================================================== ports
    def create_port(self, attrs: Mapping[str, Any]) -> tuple[dict[str, Any], Change]:
        net = self._get("network", attrs["network_id"])
        project = attrs["project_id"]
        owner = attrs.get("device_owner", "")
        if attrs.get("mac_address") is not None:
            mac = normalize_mac(attrs["mac_address"]) or attrs["mac_address"]
            self._check_mac_free(net["id"], mac)
        else:
            mac = self._new_mac()
        service = owner.startswith("network:")
        if "security_groups" in attrs:
            sgs = list(attrs["security_groups"])
            for sg in sgs:
                if sg not in self.security_groups:
                    raise _not_found("security_group", sg)
        else:
            sgs = [] if service else [self.default_security_group(project)]
        port_security = attrs.get(
            "port_security_enabled", False if service else net["port_security_enabled"]
        )
        requested = attrs.get("fixed_ips")
        fixed = self._allocate(net, requested, mac, owner)
        host = attrs.get("binding:host_id", "")
        port_id = self._new_id()
        port: dict[str, Any] = {
            "id": port_id,
            "name": attrs.get("name", ""),
            "network_id": net["id"],
            "project_id": project,
            "mac_address": mac,
            "admin_state_up": attrs.get("admin_state_up", True),
            "status": "N/A" if owner == DEVICE_OWNER_FLOATINGIP else "DOWN",
            "device_id": attrs.get("device_id", ""),
            "device_owner": owner,
            "fixed_ips": fixed,
            "allowed_address_pairs": list(attrs.get("allowed_address_pairs", [])),
            "extra_dhcp_opts": list(attrs.get("extra_dhcp_opts", [])),
            "security_groups": sgs,
            "description": attrs.get("description", ""),
            "binding:vnic_type": attrs.get("binding:vnic_type", "normal"),
            "binding:profile": dict(attrs.get("binding:profile", {})),
            "binding:host_id": host,
            "binding:vif_type": self.vif_type if host else "unbound",
            "binding:vif_details": {},
            "port_security_enabled": port_security,
            "tags": list(attrs.get("tags", [])),
        }
        self._stamp(port, 3 if host else 1)
        port["tenant_id"] = project
        self.ports[port_id] = port
        change = Change()
        self._bind_seq[port_id] = 1 if host else 0
        if host:
            change.bound.append((port_id, 1))
        return self.render("port", port), change

    def update_port(
        self, port_id: str, attrs: Mapping[str, Any], if_match: int | None = None
    ) -> tuple[dict[str, Any], Change]:
        port = self._get("port", port_id)
        self.check_revision(port, if_match)
        new = {k: v for k, v in attrs.items() if k not in ("project_id", "tenant_id")}
        bound = port["binding:vif_type"] not in ("unbound", "binding_failed")
        net = self.networks[port["network_id"]]
        # -- checks (nothing changes until all pass)
        if "mac_address" in new:
            if new["mac_address"] is None:
                new["mac_address"] = self._new_mac()
            mac = normalize_mac(new["mac_address"]) or new["mac_address"]
            new["mac_address"] = mac
            if mac != port["mac_address"]:
                if bound:
                    raise Conflict(
                        "PortBound",
                        f"Unable to complete operation on port {port_id}, port is already bound, "
                        f"port type: {port['binding:vif_type']}, old_mac {port['mac_address']}, "
                        f"new_mac {mac}.",
                    )
                self._check_mac_free(net["id"], mac, port_id)
        if "security_groups" in new:
            for sg in new["security_groups"]:
                if sg not in self.security_groups:
                    raise _not_found("security_group", sg)
        if "fixed_ips" in new:
            keep = {ip["ip_address"]: ip["subnet_id"] for ip in port["fixed_ips"]}
            new["fixed_ips"] = self._allocate(
                net,
                new["fixed_ips"],
                new.get("mac_address", port["mac_address"]),
                new.get("device_owner", port["device_owner"]),
                keep=keep,
            )
        # -- apply
        changed = [k for k, v in new.items() if port.get(k) != v]
        if not changed:
            events = [_ev("network-changed", port)] if is_compute_port(port) else []
            return self._render_update(port, rebound=False), Change(events=events)
        was_status = port["status"]
        old_host = port["binding:host_id"]
        for key in changed:
            port[key] = copy.deepcopy(new[key])
        host = port["binding:host_id"]
        rebind = bool(host) and (
            host != old_host
            or (old_host and ("binding:profile" in changed or "binding:vnic_type" in changed))
        )
        unbind = bool(old_host) and not host
        change = Change()
        if rebind:
            port["binding:vif_type"] = self.vif_type
            self._bind_seq[port_id] = self._bind_seq.get(port_id, 0) + 1
            change.bound.append((port_id, self._bind_seq[port_id]))
        elif unbind:
            port["binding:vif_type"] = "unbound"
            port["binding:vif_details"] = {}
            self._bind_seq[port_id] = self._bind_seq.get(port_id, 0) + 1
        if (rebind or unbind) and was_status == "ACTIVE":
            port["status"] = "DOWN"
            change.events.extend(self._status_events(port, was_status, "DOWN"))
        self._bump(port, 3 if rebind else 1)
        if is_compute_port(port):
            change.events.append(_ev("network-changed", port))
        return self._render_update(port, rebound=rebind), change

    def _render_update(self, port: Mapping[str, Any], *, rebound: bool) -> dict[str, Any]:
        out = self.render("port", port)
        if not rebound and out["binding:host_id"]:
            out["binding:vif_details"].pop("bound_drivers", None)
        return out

    def delete_port(
        self, port_id: str, if_match: int | None = None, *, internal: bool = False
    ) -> Change:
        port = self._get("port", port_id)
        self.check_revision(port, if_match)
        if not internal and port["device_owner"] in _SERVICE_OWNERS:
            raise Conflict(
                "ServicePortInUse",
                f"Port {port_id} cannot be deleted directly via the port API: has device owner "
                f"{port['device_owner']}.",
            )
        for fip in self.floatingips.values():
            if fip["port_id"] == port_id:
                fip["port_id"] = fip["fixed_ip_address"] = fip["router_id"] = None
                self._bump(fip)
        del self.ports[port_id]
        self._bind_seq.pop(port_id, None)
        change = Change()
        if is_compute_port(port):
            change.events.append(_ev("network-vif-deleted", port))
        return change

    # ================================================================== port status (agent)
    @staticmethod
    def _status_events(port: Mapping[str, Any], old: str, new: str) -> list[Event]:
        """nova notifier record_port_status_changed."""
        if not is_compute_port(port):
            return []
        if old == "ACTIVE" and new == "DOWN":
            return [_ev("network-vif-unplugged", port, "completed")]
        if old in ("DOWN", "BUILD", "") and new in ("ACTIVE", "ERROR"):
            status = "completed" if new == "ACTIVE" else "failed"
            return [_ev("network-vif-plugged", port, status)]
        return []

    def set_port_status(self, port_id: str, status: str) -> tuple[dict[str, Any], Change]:
        """What an L2 agent's update_device_up/down does (also the admin endpoint)."""
        if status not in PORT_STATUSES:
            raise BadRequest(
                "HTTPBadRequest",
                f"Invalid port status {status!r}: expected one of {', '.join(PORT_STATUSES)}",
            )
        port = self._get("port", port_id)
        old = port["status"]
        change = Change()
        if old != status:
            port["status"] = status
            self._bump(port)
            change.events.extend(self._status_events(port, old, status))
        return self.render("port", port), change

    def agent_port_up(self, port_id: str, bind_seq: int) -> Change:
        """The agent wired a bound port: ACTIVE, unless it was unbound or rebound meanwhile."""
        port = self.ports.get(port_id)
        if port is None or self._bind_seq.get(port_id) != bind_seq:
            return Change(items=0)
        if not port["binding:host_id"] or port["status"] == "ACTIVE":
            return Change(items=0)
        return self.set_port_status(port_id, "ACTIVE")[1]

    def binding_generation(self, port_id: str) -> int | None:
        return self._bind_seq.get(port_id)

    # ================================================================== routers
    def _gateway_port(self, router: Mapping[str, Any], net_id: str) -> dict[str, Any]:
        net = self._get("network", net_id)
        if not net["router:external"]:
            raise bad_request("router", f"Network {net_id} is not an external network")
        port, _ = self.create_port(
            {
                "network_id": net_id,
                "project_id": "",
                "device_id": router["id"],
                "device_owner": DEVICE_OWNER_ROUTER_GW,
            }
        )
        return port

    @staticmethod
    def _gw_info(port: Mapping[str, Any], enable_snat: bool) -> dict[str, Any]:
        return {
            "network_id": port["network_id"],
            "external_fixed_ips": copy.deepcopy(port["fixed_ips"]),
            "enable_snat": enable_snat,
        }

    def create_router(self, attrs: Mapping[str, Any]) -> tuple[dict[str, Any], Change]:
        project = attrs["project_id"]
        router: dict[str, Any] = {
            "id": self._new_id(),
            "name": attrs.get("name", ""),
            "project_id": project,
            "admin_state_up": attrs.get("admin_state_up", True),
            "status": "ACTIVE",
            "external_gateway_info": None,
            "description": attrs.get("description", ""),
            "availability_zones": [],
            "distributed": attrs.get("distributed", False),
            "ha": attrs.get("ha", False),
            "availability_zone_hints": list(attrs.get("availability_zone_hints", [])),
            "routes": [],
            "flavor_id": attrs.get("flavor_id"),
            "tags": list(attrs.get("tags", [])),
        }
        gw = attrs.get("external_gateway_info")
        gw_port = None
        if gw and gw.get("network_id"):
            gw_port = self._gateway_port(router, gw["network_id"])
            router["external_gateway_info"] = self._gw_info(gw_port, gw.get("enable_snat", True))
        self._stamp(router, 2 if gw_port else 1)
        router["tenant_id"] = project
        self.routers[router["id"]] = router
        return self.render("router", router), Change()

    def update_router(
        self, router_id: str, attrs: Mapping[str, Any], if_match: int | None = None
    ) -> tuple[dict[str, Any], Change]:
        router = self._get("router", router_id)
        self.check_revision(router, if_match)
        changed = False
        for key, value in attrs.items():
            if key in ("project_id", "tenant_id"):
                continue
            if key == "external_gateway_info":
                current = router["external_gateway_info"]
                want = value.get("network_id") if value else None
                have = current["network_id"] if current else None
                if want != have:
                    self._drop_gateway(router_id)
                    router["external_gateway_info"] = None
                    if want:
                        port = self._gateway_port(router, want)
                        router["external_gateway_info"] = self._gw_info(
                            port, value.get("enable_snat", True)
                        )
                    changed = True
                elif (
                    current
                    and "enable_snat" in value
                    and current["enable_snat"] != value["enable_snat"]
                ):
                    current["enable_snat"] = value["enable_snat"]
                    changed = True
                continue
            if router.get(key) != value:
                router[key] = value
                changed = True
        if changed:
            self._bump(router)
        return self.render("router", router), Change()

    def _drop_gateway(self, router_id: str) -> None:
        for p in list(self.ports.values()):
            if p["device_id"] == router_id and p["device_owner"] == DEVICE_OWNER_ROUTER_GW:
                self.delete_port(p["id"], internal=True)

    def _router_interfaces(self, router_id: str) -> list[dict[str, Any]]:
        return [
            p
            for p in self.ports.values()
            if p["device_id"] == router_id and p["device_owner"] == DEVICE_OWNER_ROUTER_INTF
        ]

    def delete_router(self, router_id: str, if_match: int | None = None) -> Change:
        router = self._get("router", router_id)
        self.check_revision(router, if_match)
        intfs = self._router_interfaces(router_id)
        if intfs:
            raise Conflict(
                "RouterInUse",
                f"Router {router_id} has ports still attached: {', '.join(p['id'] for p in intfs)}",
            )
        self._drop_gateway(router_id)
        del self.routers[router_id]
        return Change()

    @staticmethod
    def _interface_info(router: Mapping[str, Any], port: Mapping[str, Any]) -> dict[str, Any]:
        subnet_ids = [ip["subnet_id"] for ip in port["fixed_ips"]]
        return {
            "id": router["id"],
            "project_id": router["project_id"],
            "port_id": port["id"],
            "network_id": port["network_id"],
            "subnet_id": subnet_ids[0] if subnet_ids else None,
            "subnet_ids": subnet_ids,
        }

    @staticmethod
    def _interface_body(body: Any) -> tuple[str | None, str | None]:
        if not isinstance(body, Mapping):
            raise bad_request("router", "Either subnet_id or port_id must be specified")
        subnet_id, port_id = body.get("subnet_id"), body.get("port_id")
        if subnet_id and port_id:
            raise bad_request("router", "Cannot specify both subnet-id and port-id")
        if not subnet_id and not port_id:
            raise bad_request("router", "Either subnet_id or port_id must be specified")
        return subnet_id, port_id

    def add_router_interface(self, router_id: str, body: Any) -> tuple[dict[str, Any], Change]:
        router = self._get("router", router_id)
        subnet_id, port_id = self._interface_body(body)
        if port_id is not None:
            port = self._get("port", port_id)
            if port["device_id"]:
                raise Conflict(
                    "PortInUse",
                    f"Unable to complete operation on port {port_id} for network "
                    f"{port['network_id']}. Port already has an attached device "
                    f"{port['device_id']}.",
                )
            if not port["fixed_ips"]:
                raise bad_request("router", "Router port must have at least one fixed IP")
            for intf in self._router_interfaces(router_id):
                for ip in port["fixed_ips"]:
                    if any(i["subnet_id"] == ip["subnet_id"] for i in intf["fixed_ips"]):
                        raise bad_request(
                            "router", f"Router already has a port on subnet {ip['subnet_id']}"
                        )
            port["device_id"] = router_id
            port["device_owner"] = DEVICE_OWNER_ROUTER_INTF
            self._bump(port)
        else:
            assert subnet_id is not None
            sub = self._get("subnet", subnet_id)
            for intf in self._router_interfaces(router_id):
                if any(i["subnet_id"] == subnet_id for i in intf["fixed_ips"]):
                    raise bad_request("router", f"Router already has a port on subnet {subnet_id}")
            if sub["gateway_ip"] is None:
                raise bad_request("router", "Subnet for router interface must have a gateway IP")
            created, _ = self.create_port(
                {
                    "network_id": sub["network_id"],
                    "project_id": router["project_id"],
                    "device_id": router_id,
                    "device_owner": DEVICE_OWNER_ROUTER_INTF,
                    "fixed_ips": [{"subnet_id": subnet_id, "ip_address": sub["gateway_ip"]}],
                }
            )
            port = self.ports[created["id"]]
        self._bump(router)
        self._bump(self.networks[port["network_id"]])
        return self._interface_info(router, port), Change()

    def remove_router_interface(self, router_id: str, body: Any) -> tuple[dict[str, Any], Change]:
        router = self._get("router", router_id)
        subnet_id, port_id = self._interface_body(body)
        intfs = self._router_interfaces(router_id)
        if port_id is not None:
            port = next((p for p in intfs if p["id"] == port_id), None)
            if port is None:
                raise NotFound(
                    "RouterInterfaceNotFound",
                    f"Router {router_id} does not have an interface with id {port_id}",
                )
        else:
            port = next(
                (p for p in intfs if any(i["subnet_id"] == subnet_id for i in p["fixed_ips"])),
                None,
            )
            if port is None:
                raise NotFound(
                    "RouterInterfaceNotFoundForSubnet",
                    f"Router {router_id} has no interface on subnet {subnet_id}",
                )
        for sub in (ip["subnet_id"] for ip in port["fixed_ips"]):
            for fip in self.floatingips.values():
                if fip["router_id"] == router_id and fip["port_id"] in self.ports:
                    fp = self.ports[fip["port_id"]]
                    if any(i["subnet_id"] == sub for i in fp["fixed_ips"]):
                        raise Conflict(
                            "RouterInterfaceInUseByFloatingIP",
                            f"Router interface for subnet {sub} on router {router_id} cannot be "
                            "deleted, as it is required by one or more floating IPs.",
                        )
        info = self._interface_info(router, port)
        self.delete_port(port["id"], internal=True)
        self._bump(router)
        return info, Change()

    # ================================================================== floating IPs
    def _fip_target(
        self, fip: Mapping[str, Any], port_id: str, fixed_ip: str | None
    ) -> tuple[str, str]:
        """(fixed_ip_address, router_id) for associating `fip` with `port_id`."""
        port = self._get("port", port_id)
        v4 = [ip for ip in port["fixed_ips"] if ipaddress.ip_address(ip["ip_address"]).version == 4]
        if fixed_ip is not None:
            match = [ip for ip in port["fixed_ips"] if ip["ip_address"] == fixed_ip]
            if not match:
                raise bad_request(
                    "floatingip",
                    f"Port {port_id} does not have fixed ip {fixed_ip}",
                )
            chosen = match[0]
        elif not v4:
            raise bad_request("floatingip", f"Port {port_id} does not have any IPv4 address")
        else:
            chosen = v4[0]
        ext = fip["floating_network_id"]
        router_id = None
        for router in self.routers.values():
            gw = router["external_gateway_info"]
            if not gw or gw["network_id"] != ext:
                continue
            for intf in self._router_interfaces(router["id"]):
                if any(i["subnet_id"] == chosen["subnet_id"] for i in intf["fixed_ips"]):
                    router_id = router["id"]
                    break
            if router_id:
                break
        if router_id is None:
            raise NotFound(
                "ExternalGatewayForFloatingIPNotFound",
                f"External network {ext} is not reachable from subnet {chosen['subnet_id']}.  "
                f"Therefore, cannot associate Port {port_id} with a Floating IP.",
            )
        for other in self.floatingips.values():
            if (
                other["id"] != fip["id"]
                and other["port_id"] == port_id
                and other["fixed_ip_address"] == chosen["ip_address"]
                and other["floating_network_id"] == ext
            ):
                raise Conflict(
                    "FloatingIPPortAlreadyAssociated",
                    f"Cannot associate floating IP {fip['floating_ip_address']} ({fip['id']}) "
                    f"with port {port_id} using fixed IP {chosen['ip_address']}, as that fixed "
                    f"IP already has a floating IP on external network {ext}.",
                )
        return chosen["ip_address"], router_id

    def _fip_event(self, port_id: str | None) -> list[Event]:
        if port_id is None or port_id not in self.ports:
            return []
        port = self.ports[port_id]
        return [_ev("network-changed", port)] if is_compute_port(port) else []

    def create_floatingip(self, attrs: Mapping[str, Any]) -> tuple[dict[str, Any], Change]:
        net = self._get("network", attrs["floating_network_id"])
        if not net["router:external"]:
            raise bad_request("floatingip", f"Network {net['id']} is not a valid external network")
        project = attrs["project_id"]
        fip: dict[str, Any] = {
            "id": self._new_id(),
            "tenant_id": project,
            "project_id": project,
            "floating_ip_address": None,
            "floating_network_id": net["id"],
            "router_id": None,
            "port_id": None,
            "fixed_ip_address": None,
            "status": "DOWN",
            "description": attrs.get("description", ""),
            "port_details": None,
            "tags": list(attrs.get("tags", [])),
        }
        if attrs.get("port_id"):
            fixed, router_id = self._fip_target(
                fip, attrs["port_id"], attrs.get("fixed_ip_address")
            )
        requested: list[Mapping[str, Any]] | None = None
        if attrs.get("floating_ip_address"):
            requested = [{"ip_address": attrs["floating_ip_address"]}]
            if attrs.get("subnet_id"):
                requested = [{**requested[0], "subnet_id": attrs["subnet_id"]}]
        elif attrs.get("subnet_id"):
            requested = [{"subnet_id": attrs["subnet_id"]}]
        fip_port, _ = self.create_port(
            {
                "network_id": net["id"],
                "project_id": "",
                "device_id": fip["id"],
                "device_owner": DEVICE_OWNER_FLOATINGIP,
                **({"fixed_ips": requested} if requested is not None else {}),
            }
        )
        fip["floating_ip_address"] = next(
            (
                ip["ip_address"]
                for ip in fip_port["fixed_ips"]
                if ipaddress.ip_address(ip["ip_address"]).version == 4
            ),
            fip_port["fixed_ips"][0]["ip_address"] if fip_port["fixed_ips"] else None,
        )
        if attrs.get("port_id"):
            fip["port_id"] = attrs["port_id"]
            fip["fixed_ip_address"] = fixed
            fip["router_id"] = router_id
        self._stamp(fip, 0)
        self.floatingips[fip["id"]] = fip
        return self.render("floatingip", fip), Change(events=self._fip_event(fip["port_id"]))

    def update_floatingip(
        self, fip_id: str, attrs: Mapping[str, Any], if_match: int | None = None
    ) -> tuple[dict[str, Any], Change]:
        fip = self._get("floatingip", fip_id)
        self.check_revision(fip, if_match)
        old_port = fip["port_id"]
        events: list[Event] = []
        if "port_id" in attrs:
            new_port = attrs["port_id"]
            if new_port is None:
                fip["port_id"] = fip["fixed_ip_address"] = fip["router_id"] = None
            else:
                fixed, router_id = self._fip_target(fip, new_port, attrs.get("fixed_ip_address"))
                fip["port_id"], fip["fixed_ip_address"], fip["router_id"] = (
                    new_port,
                    fixed,
                    router_id,
                )
            if new_port is not None and old_port is not None:
                events.extend(self._fip_event(old_port))
            events.extend(self._fip_event(new_port or old_port))
        else:
            events.extend(self._fip_event(fip["port_id"] or old_port))
        if "description" in attrs:
            fip["description"] = attrs["description"]
        self._bump(fip)
        return self.render("floatingip", fip), Change(events=events)

    def delete_floatingip(self, fip_id: str, if_match: int | None = None) -> Change:
        fip = self._get("floatingip", fip_id)
        self.check_revision(fip, if_match)
        for p in list(self.ports.values()):
            if p["device_id"] == fip_id and p["device_owner"] == DEVICE_OWNER_FLOATINGIP:
                self.delete_port(p["id"], internal=True)
        del self.floatingips[fip_id]
        return Change(events=self._fip_event(fip["port_id"]))

    # ================================================================== generic dispatch
    def create(self, kind: str, attrs: Mapping[str, Any]) -> tuple[dict[str, Any], Change]:
        if kind == "network":
            return self.create_network(attrs)
        if kind == "subnet":
            return self.create_subnet(attrs)
        if kind == "port":
            return self.create_port(attrs)
        if kind == "router":
            return self.create_router(attrs)
        if kind == "floatingip":
            return self.create_floatingip(attrs)
        raise SimError("HTTPMethodNotAllowed", "Method not allowed.", status=405)

    def update(
        self, kind: str, rid: str, attrs: Mapping[str, Any], if_match: int | None = None
    ) -> tuple[dict[str, Any], Change]:
        if kind == "network":
            return self.update_network(rid, attrs, if_match)
        if kind == "subnet":
            return self.update_subnet(rid, attrs, if_match)
        if kind == "port":
            return self.update_port(rid, attrs, if_match)
        if kind == "router":
            return self.update_router(rid, attrs, if_match)
        if kind == "floatingip":
            return self.update_floatingip(rid, attrs, if_match)
        raise SimError("HTTPMethodNotAllowed", "Method not allowed.", status=405)

    def delete(self, kind: str, rid: str, if_match: int | None = None) -> Change:
        if kind == "network":
            return self.delete_network(rid, if_match)
        if kind == "subnet":
            return self.delete_subnet(rid, if_match)
        if kind == "port":
            return self.delete_port(rid, if_match)
        if kind == "router":
            return self.delete_router(rid, if_match)
        if kind == "floatingip":
            return self.delete_floatingip(rid, if_match)
        raise SimError("HTTPMethodNotAllowed", "Method not allowed.", status=405)

    # ================================================================== snapshot
    def to_snapshot(self) -> dict[str, Any]:
        """Everything needed to restore this state, as JSON-able data."""
        return {
            "version": 1,
            "vif_type": self.vif_type,
            "networks": list(self.networks.values()),
            "subnets": list(self.subnets.values()),
            "ports": list(self.ports.values()),
            "routers": list(self.routers.values()),
            "floatingips": list(self.floatingips.values()),
            "security_groups": list(self.security_groups.values()),
            "bind_seq": dict(self._bind_seq),
            "is_default": dict(self._is_default),
        }

    def load_snapshot(self, data: Mapping[str, Any]) -> None:
        """Replace all resources with a snapshot's (ValueError if it is not one)."""
        if not isinstance(data, Mapping) or data.get("version") != 1:
            raise ValueError("not a hotport simulator snapshot (version 1)")
        try:
            stores = {
                kind: {r["id"]: copy.deepcopy(r) for r in data[kind]}
                for kind in (
                    "networks",
                    "subnets",
                    "ports",
                    "routers",
                    "floatingips",
                    "security_groups",
                )
            }
            bind_seq = {str(k): int(v) for k, v in data.get("bind_seq", {}).items()}
            is_default = {str(k): bool(v) for k, v in data.get("is_default", {}).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed simulator snapshot: {exc!r}") from None
        self.networks = stores["networks"]
        self.subnets = stores["subnets"]
        self.ports = stores["ports"]
        self.routers = stores["routers"]
        self.floatingips = stores["floatingips"]
        self.security_groups = stores["security_groups"]
        self._bind_seq = bind_seq
        self._is_default = is_default

    def clear(self) -> None:
        """Forget every resource (the configuration and the random stream are kept)."""
        self.networks, self.subnets, self.ports = {}, {}, {}
        self.routers, self.floatingips, self.security_groups = {}, {}, {}
        self._bind_seq, self._is_default = {}, {}

    def count(self) -> dict[str, int]:
        return {
            "networks": len(self.networks),
            "subnets": len(self.subnets),
            "ports": len(self.ports),
            "routers": len(self.routers),
            "floatingips": len(self.floatingips),
            "security_groups": len(self.security_groups),
        }
