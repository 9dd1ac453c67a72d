"""The VIF builder: Neutron v2.0 port, network, subnets and floating IPs -> `VIF`.

Owns: `build_vif`, the pure function that turns the dicts the Neutron API returns into the
VIF that Nova would put in its network-info cache (as `nova.network.neutron.API`
`_build_vif_model`, `_nw_info_build_network`, `_get_subnets_from_port` and
`_nw_info_get_ips` do), and `vif_revision`, the port revision a VIF is stamped with.

Must never: do I/O. Nova's builder queries Neutron along the way (subnets by id, the DHCP
port of each subnet, floating IPs per fixed IP, the network's segments); this one is given
everything and looks nothing up. In particular it does NOT set a subnet's
`meta["dhcp_server"]`: Nova takes it from the subnet's DHCP port (which needs a lookup) or
else guesses the gateway address; hotport omits it rather than guess.

Concurrency: pure function of its arguments (which it never mutates): call it from any
task or thread.

How each field is made (Nova's rules):

- `active`: the port's `status` is `ACTIVE`, or its `admin_state_up` is false (such a
  port never becomes ACTIVE, so nobody should wait for it), unless `active` is given.
- subnets: only those the port's `fixed_ips` reference (in the order the port first
  references them), each with the port's IPs on it (in the port's order); the floating IPs
  whose `fixed_ip_address` is one of them hang under that fixed IP.
- subnet: `cidr`, `version` (from the CIDR), `gateway` (`gateway_ip`, Nova's null-address
  form when there is none), `dns` (`dns_nameservers`), `routes` (`host_routes`:
  destination via nexthop), meta `ipv6_address_mode` when set.
- network: `id`, `label` (the network's `name`), `bridge` (below), meta `injected`
  (False), `tenant_id`, `mtu` (the network's), `physical_network` and `tunneled`
  (`provider:network_type` in vxlan/gre/geneve; from the first segment with a physical
  network when the network has `segments`), and `should_create_bridge` (top level, as
  Nova writes it) for Linux-bridge ports.
- bridge: `binding:vif_details["bridge_name"]`, else `ovs_bridge` ("br-int") for ovs,
  agilio_ovs and OVS-plugged vhostuser ports; else `"brq" + network_id` for bridge and
  fast-path vhostuser ports; the network id for dvs; None otherwise (tap, hw_veb, ...);
  cut to 14 characters (except dvs).
- `ovs_interfaceid`: the port id for ovs, agilio_ovs and OVS-plugged vhostuser ports.
- `details` and `profile`: `binding:vif_details` and `binding:profile`, every key kept.
- `devname`: `"tap" + port_id[:11]`; `meta`: `{"tag": tag}` when tagged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from hotport.model.errors import ModelError, join_path
from hotport.model.frozen import json_kind
from hotport.model.values import IP, FixedIP, Network, Route, Subnet
from hotport.model.vif import NIC_NAME_LEN, VIF, devname

__all__ = ["PORT_FIELDS", "TUNNELED_NETWORK_TYPES", "build_vif", "vif_revision"]

PORT_FIELDS = (
    "id",
    "network_id",
    "mac_address",
    "status",
    "admin_state_up",
    "fixed_ips",
    "binding:vif_type",
    "binding:vif_details",
    "binding:vnic_type",
    "binding:profile",
)
"""Every key of a Neutron port that `build_vif` reads (a list with `fields=` may ask for
just these)."""

TUNNELED_NETWORK_TYPES = frozenset({"vxlan", "gre", "geneve"})
"""Network types whose traffic is tunneled (Nova's `L3_NETWORK_TYPES`)."""

_OVS_TYPES = frozenset({"ovs", "agilio_ovs"})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def vif_revision(port: Mapping[str, Any]) -> int:
    """The port's Neutron `revision_number`, which its VIF row is stamped with."""
    if not isinstance(port, Mapping):
        raise ModelError(f"expected a port (a JSON object), got {json_kind(port)}", "port")
    if "revision_number" not in port:
        raise ModelError("missing: the port has no revision", "port.revision_number")
    value = port["revision_number"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ModelError(
            f"expected a revision (an integer >= 0), got {value!r}", "port.revision_number"
        )
    return value


def build_vif(
    port: Mapping[str, Any],
    network: Mapping[str, Any],
    subnets: Sequence[Mapping[str, Any]],
    floating_ips: Sequence[Mapping[str, Any]],
    *,
    preserve_on_delete: bool,
    tag: str | None = None,
    active: bool | None = None,
    delegate_create: bool = False,
    ovs_bridge: str = "br-int",
) -> VIF:
    """The VIF of `port` on `network`, from Neutron v2.0 objects as the API returns them.

    `subnets` may hold more than the port's (e.g. all subnets of the network) and
    `floating_ips` more than the port's (those of other ports are ignored). `ModelError`
    (naming the field) when the port is not on `network`, references a subnet that is not
    given, or any field is malformed. A port without fixed IPs gives a VIF without subnets.
    """
    p = _Source(port, "port")
    port_id = p.text("id")
    network_id = p.text("network_id")
    n = _Source(network, "network")
    given_network = n.text("id")
    if given_network != network_id:
        raise ModelError(
            f"port {port_id} is on network {network_id}, not on the network given "
            f"({given_network})",
            "network.id",
        )
    vif_type = p.text("binding:vif_type", nonempty=False)
    details = p.obj("binding:vif_details")
    fixed = _fixed_ips(p)
    floats = _floating_ips(floating_ips, port_id)
    built_subnets = _subnets(p, fixed, subnets, floats, network_id)
    bridge, ovs_interfaceid, create_bridge = _bridge(
        vif_type, details, port_id, network_id, ovs_bridge
    )
    physnet, tunneled = _physnet_tunneled(n)
    mtu = network.get("mtu")
    if mtu is not None and (isinstance(mtu, bool) or not isinstance(mtu, int)):
        raise ModelError(f"expected an integer or null, got {json_kind(mtu)}", "network.mtu")
    tenant_id = network.get("tenant_id", network.get("project_id"))
    name = network.get("name")
    net = Network(
        id=network_id,
        label="" if name is None else n.text("name", nonempty=False),
        bridge=bridge,
        subnets=built_subnets,
        meta={
            "injected": False,
            "tenant_id": tenant_id,
            "mtu": mtu,
            "physical_network": physnet,
            "tunneled": tunneled,
        },
        extra={"should_create_bridge": True} if create_bridge else {},
    )
    if active is None:
        active = port.get("status") == "ACTIVE" or port.get("admin_state_up") is False
    vnic_type = port.get("binding:vnic_type")
    mac = p.text("mac_address")
    vnic = "normal" if vnic_type is None else p.text("binding:vnic_type")
    profile = p.obj("binding:profile")
    try:
        return VIF(
            id=port_id,
            address=mac,
            network=net,
            type=vif_type,
            details=details,
            devname=devname(port_id),
            ovs_interfaceid=ovs_interfaceid,
            vnic_type=vnic,
            active=active,
            preserve_on_delete=preserve_on_delete,
            profile=profile,
            meta={} if tag is None else {"tag": tag},
            delegate_create=delegate_create,
        )
    except ModelError as err:
        raise err.under("vif") from None


class _Source:
    """A Neutron object being read: typed getters whose errors name `<what>.<key>`."""

    __slots__ = ("data", "what")

    def __init__(self, data: Any, what: str) -> None:
        if not isinstance(data, Mapping):
            raise ModelError(f"expected a JSON object, got {json_kind(data)}", what)
        self.data: Mapping[str, Any] = data
        self.what = what

    def at(self, key: str) -> str:
        return join_path(self.what, key)

    def get(self, key: str) -> Any:
        if key not in self.data:
            raise ModelError("missing", self.at(key))
        return self.data[key]

    def text(self, key: str, *, nonempty: bool = True) -> str:
        value = self.get(key)
        if not isinstance(value, str):
            raise ModelError(f"expected a string, got {json_kind(value)}", self.at(key))
        if nonempty and not value:
            raise ModelError("must not be empty", self.at(key))
        return value

    def obj(self, key: str) -> Mapping[str, Any]:
        """An optional object (absent or null: empty)."""
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ModelError(f"expected a JSON object, got {json_kind(value)}", self.at(key))
        return value

    def array(self, key: str) -> Sequence[Any]:
        """An optional array (absent or null: empty)."""
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, (list, tuple)):
            raise ModelError(f"expected an array, got {json_kind(value)}", self.at(key))
        return value


def _address(value: Any, where: str) -> IPAddress:
    if not isinstance(value, str):
        raise ModelError(f"expected an IP address, got {json_kind(value)}", where)
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ModelError(f"{value!r} is not an IP address", where) from None


def _ip(value: Any, kind: str, where: str) -> IP:
    parsed = _address(value, where)
    return IP(address=value, type=kind, version=parsed.version)


def _fixed_ips(p: _Source) -> list[tuple[str, str, IPAddress, str]]:
    """(subnet id, address, parsed address, path) of each of the port's fixed IPs."""
    out = []
    for i, item in enumerate(p.array("fixed_ips")):
        entry = _Source(item, p.at(f"fixed_ips[{i}]"))
        address = entry.text("ip_address")
        out.append(
            (
                entry.text("subnet_id"),
                address,
                _address(address, entry.at("ip_address")),
                entry.what,
            )
        )
    return out


def _floating_ips(
    floating_ips: Sequence[Mapping[str, Any]], port_id: str
) -> dict[IPAddress, list[IP]]:
    """The port's floating IPs by the fixed address they map to (others are ignored)."""
    if not isinstance(floating_ips, (list, tuple)):
        raise ModelError(f"expected an array, got {json_kind(floating_ips)}", "floating_ips")
    out: dict[IPAddress, list[IP]] = {}
    for i, item in enumerate(floating_ips):
        fip = _Source(item, f"floating_ips[{i}]")
        if "port_id" in fip.data and fip.data["port_id"] != port_id:
            continue
        fixed = fip.data.get("fixed_ip_address")
        if fixed is None:
            continue
        key = _address(fixed, fip.at("fixed_ip_address"))
        ip = _ip(fip.get("floating_ip_address"), "floating", fip.at("floating_ip_address"))
        mapped = out.setdefault(key, [])
        if all(known.address != ip.address for known in mapped):
            mapped.append(ip)
    return out


def _subnets(
    p: _Source,
    fixed: list[tuple[str, str, IPAddress, str]],
    subnets: Sequence[Mapping[str, Any]],
    floats: dict[IPAddress, list[IP]],
    network_id: str,
) -> tuple[Subnet, ...]:
    if not isinstance(subnets, (list, tuple)):
        raise ModelError(f"expected an array, got {json_kind(subnets)}", "subnets")
    by_id: dict[str, _Source] = {}
    for i, item in enumerate(subnets):
        source = _Source(item, f"subnets[{i}]")
        by_id.setdefault(source.text("id"), source)
    order: list[str] = []
    for subnet_id, address, _, where in fixed:
        if subnet_id not in by_id:
            raise ModelError(
                f"port {p.data['id']}'s fixed IP {address} is on subnet {subnet_id}, "
                "which is not among the subnets given",
                join_path(where, "subnet_id"),
            )
        if subnet_id not in order:
            order.append(subnet_id)
    return tuple(_subnet(by_id[sid], fixed, floats, network_id) for sid in order)


def _subnet(
    s: _Source,
    fixed: list[tuple[str, str, IPAddress, str]],
    floats: dict[IPAddress, list[IP]],
    network_id: str,
) -> Subnet:
    subnet_id = s.text("id")
    owner = s.data.get("network_id")
    if owner is not None and owner != network_id:
        raise ModelError(
            f"subnet {subnet_id} is on network {owner}, not on the port's ({network_id})",
            s.at("network_id"),
        )
    cidr = s.text("cidr")
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise ModelError(f"{cidr!r} is not a CIDR", s.at("cidr")) from None
    stated = s.data.get("ip_version", net.version)
    if stated != net.version or isinstance(stated, bool):
        raise ModelError(f"{stated!r} does not match {cidr}", s.at("ip_version"))
    gateway_ip = s.data.get("gateway_ip")
    gateway = None if gateway_ip is None else _ip(gateway_ip, "gateway", s.at("gateway_ip"))
    dns: list[IP] = []
    for i, server in enumerate(s.array("dns_nameservers")):
        ip = _ip(server, "dns", s.at(f"dns_nameservers[{i}]"))
        if ip not in dns:
            dns.append(ip)
    routes: list[Route] = []
    for i, item in enumerate(s.array("host_routes")):
        hop = _Source(item, s.at(f"host_routes[{i}]"))
        route = Route(
            cidr=hop.text("destination"),
            gateway=_ip(hop.get("nexthop"), "gateway", hop.at("nexthop")),
        )
        if route not in routes:
            routes.append(route)
    ips: list[FixedIP] = []
    for subnet_ref, address, parsed, where in fixed:
        if subnet_ref != subnet_id:
            continue
        if parsed not in net:
            raise ModelError(
                f"{address} is not in subnet {subnet_id} ({cidr})", join_path(where, "ip_address")
            )
        if any(known.address == address for known in ips):
            continue
        ips.append(
            FixedIP(
                address=address, version=parsed.version, floating_ips=tuple(floats.get(parsed, ()))
            )
        )
    meta: dict[str, Any] = {}
    mode = s.data.get("ipv6_address_mode")
    if mode:
        meta["ipv6_address_mode"] = mode
    try:
        return Subnet(
            cidr=cidr,
            version=net.version,
            gateway=gateway,
            dns=tuple(dns),
            routes=tuple(routes),
            ips=tuple(ips),
            meta=meta,
        )
    except ModelError as err:
        raise err.under(s.what) from None


def _bridge(
    vif_type: str, details: Mapping[str, Any], port_id: str, network_id: str, ovs_bridge: str
) -> tuple[str | None, str | None, bool]:
    """(bridge, ovs_interfaceid, should_create_bridge) as Nova derives them."""
    named = details.get("bridge_name")
    bridge_name = named if isinstance(named, str) and named else None
    bridge: str | None = None
    ovs_interfaceid: str | None = None
    create = False
    if vif_type in _OVS_TYPES:
        bridge = bridge_name or ovs_bridge
        ovs_interfaceid = port_id
    elif vif_type == "bridge":
        bridge = bridge_name or "brq" + network_id
        create = True
    elif vif_type == "dvs":
        return network_id, None, False
    elif vif_type == "vhostuser" and details.get("vhostuser_ovs_plug") is True:
        bridge = bridge_name or ovs_bridge
        ovs_interfaceid = port_id
    elif vif_type == "vhostuser" and details.get("vhostuser_fp_plug") is True:
        bridge = bridge_name or "brq" + network_id
    if bridge is not None:
        bridge = bridge[:NIC_NAME_LEN]
    return bridge, ovs_interfaceid, create


def _physnet_tunneled(n: _Source) -> tuple[str | None, bool]:
    """(physical network, tunneled) of a network, as Nova reads them: the first segment
    with a physical network when the network has segments (multi-provider), else the
    network's `provider:*` attributes. Unlike Nova, a segmented network none of whose
    segments has a physical network is not an error: (None, whether any is tunneled)."""
    segments = n.array("segments")
    if segments:
        kinds = []
        for i, item in enumerate(segments):
            segment = _Source(item, n.at(f"segments[{i}]"))
            physnet = segment.data.get("provider:physical_network")
            if isinstance(physnet, str) and physnet:
                return physnet, False
            kinds.append(segment.data.get("provider:network_type"))
        return None, any(kind in TUNNELED_NETWORK_TYPES for kind in kinds)
    physnet = n.data.get("provider:physical_network")
    if physnet is not None and not isinstance(physnet, str):
        raise ModelError(
            f"expected a string or null, got {json_kind(physnet)}",
            n.at("provider:physical_network"),
        )
    return physnet, n.data.get("provider:network_type") in TUNNELED_NETWORK_TYPES
