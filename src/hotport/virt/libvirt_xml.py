"""Pure libvirt XML for the libvirt driver: interface XML from a VIF, NICs from domain XML.

Owns: `interface_xml(vif)` (the `<interface>` element hotport attaches for a VIF),
`check_host(vif)` (what the VIF type needs that the host lacks, as `HostLacks`, checked
before anything is touched), `parse_nics(domain_xml)` (the NICs a domain really has),
`interface_element(domain_xml, mac)` (the live `<interface>` of one MAC, to detach it),
and the `ua-` user-alias convention that maps a NIC back to its port.

Must never: talk to libvirt, or do any I/O except `check_host`, which only looks at
`/sys/class/net` and `/dev/net/tun` (the root is injectable for tests).

Concurrency: pure functions on immutable values; safe from any thread.

VIF types: `ovs` -> `<interface type='bridge'>` + `<virtualport type='openvswitch'>` with
the interfaceid; `bridge` -> `<interface type='bridge'>`; `tap` (and `ethernet`) ->
`<interface type='ethernet'>` with `<target dev=... managed='yes'/>` (libvirt creates the
tap). Always: `<mac>`, `<model type='virtio'/>`, `<mtu>` when known, `<target dev>` =
the VIF's devname, `<alias name='ua-<port id>'/>`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from hotport.virt.base import NIC, HostLacks

if TYPE_CHECKING:
    from hotport.model import VIF

__all__ = [
    "ALIAS_PREFIX",
    "SUPPORTED_VIF_TYPES",
    "alias_for",
    "bridge_of",
    "check_host",
    "interface_element",
    "interface_xml",
    "parse_nics",
    "port_of_alias",
]

ALIAS_PREFIX = "ua-"
"""libvirt accepts user aliases that start with "ua-"; hotport's are "ua-" + port id."""

SUPPORTED_VIF_TYPES: frozenset[str] = frozenset({"ovs", "bridge", "tap", "ethernet"})
DEFAULT_OVS_BRIDGE = "br-int"
_ALIAS_OK = re.compile(r"^[A-Za-z0-9_-]+$")


def alias_for(port_id: str) -> str:
    """The user alias of a port's NIC: "ua-" + port id (libvirt: [A-Za-z0-9_-] only)."""
    if not _ALIAS_OK.match(port_id):
        raise ValueError(f"port id {port_id!r} cannot be part of a libvirt alias")
    return ALIAS_PREFIX + port_id


def port_of_alias(alias: str | None) -> str | None:
    if alias and alias.startswith(ALIAS_PREFIX) and len(alias) > len(ALIAS_PREFIX):
        return alias[len(ALIAS_PREFIX) :]
    return None


def bridge_of(vif: VIF) -> str | None:
    """The host bridge a bridged VIF plugs into (the binding's `bridge_name` first)."""
    name = vif.details.get("bridge_name") or vif.network.bridge
    if vif.type == "ovs" and not name:
        name = DEFAULT_OVS_BRIDGE
    return str(name) if name else None


def check_host(vif: VIF, *, root: Path = Path("/")) -> None:
    """Raise `HostLacks` if the host cannot serve `vif`'s type (nothing is touched)."""
    net = root / "sys" / "class" / "net"
    if vif.type not in SUPPORTED_VIF_TYPES:
        raise HostLacks(
            f"VIF type {vif.type!r} of port {vif.id} is not supported by the libvirt driver "
            f"(supported: {', '.join(sorted(SUPPORTED_VIF_TYPES))})"
        )
    if vif.type in ("ovs", "bridge"):
        bridge = bridge_of(vif)
        if not bridge:
            raise HostLacks(f"port {vif.id} ({vif.type}) names no bridge to plug into")
        if not (net / bridge).exists():
            what = "OVS bridge" if vif.type == "ovs" else "Linux bridge"
            raise HostLacks(
                f"port {vif.id} needs the {what} {bridge!r}, which this host lacks "
                f"(no {net / bridge})"
            )
        if vif.type == "bridge" and not (net / bridge / "bridge").is_dir():
            raise HostLacks(
                f"port {vif.id} needs {bridge!r} to be a Linux bridge; it is not "
                f"(no {net / bridge / 'bridge'})"
            )
        if vif.type == "ovs" and (net / bridge / "bridge").is_dir():
            raise HostLacks(f"port {vif.id} needs the OVS bridge {bridge!r}; it is a Linux bridge")
    else:
        tun = root / "dev" / "net" / "tun"
        if not tun.exists():
            raise HostLacks(f"port {vif.id} ({vif.type}) needs {tun}, which this host lacks")


def interface_xml(vif: VIF) -> str:
    """The `<interface>` element for `vif` (no host check: see `check_host`)."""
    if vif.type not in SUPPORTED_VIF_TYPES:
        raise HostLacks(
            f"VIF type {vif.type!r} of port {vif.id} is not supported by the libvirt driver"
        )
    if vif.type in ("ovs", "bridge"):
        iface = ET.Element("interface", type="bridge")
        bridge = bridge_of(vif)
        if not bridge:
            raise HostLacks(f"port {vif.id} ({vif.type}) names no bridge to plug into")
        ET.SubElement(iface, "source", bridge=bridge)
    else:
        iface = ET.Element("interface", type="ethernet")
    ET.SubElement(iface, "mac", address=vif.address.lower())
    if vif.type == "ovs":
        vp = ET.SubElement(iface, "virtualport", type="openvswitch")
        ET.SubElement(vp, "parameters", interfaceid=vif.ovs_interfaceid or vif.id)
    ET.SubElement(iface, "model", type="virtio")
    if vif.mtu:
        ET.SubElement(iface, "mtu", size=str(int(vif.mtu)))
    target = ET.SubElement(iface, "target", dev=vif.devname)
    if iface.get("type") == "ethernet":
        target.set("managed", "yes")
    ET.SubElement(iface, "alias", name=alias_for(vif.id))
    return ET.tostring(iface, encoding="unicode")


def _interfaces(domain_xml: str) -> list[ET.Element]:
    root = ET.fromstring(domain_xml)
    devices = root.find("devices")
    return [] if devices is None else devices.findall("interface")


def parse_nics(domain_xml: str) -> list[NIC]:
    """The NICs of a domain's XML, in device order; MACs lower-case. The port comes from
    the `ua-` alias, else from an OVS virtualport's interfaceid."""
    nics: list[NIC] = []
    for iface in _interfaces(domain_xml):
        mac_el = iface.find("mac")
        mac = mac_el.get("address") if mac_el is not None else None
        if not mac:
            continue
        target = iface.find("target")
        alias_el = iface.find("alias")
        alias = alias_el.get("name") if alias_el is not None else None
        port_id = port_of_alias(alias)
        if port_id is None:
            params = iface.find("virtualport/parameters")
            if params is not None:
                port_id = params.get("interfaceid")
        nics.append(
            NIC(
                mac=mac.lower(),
                dev=target.get("dev") if target is not None else None,
                port_id=port_id,
                alias=alias,
            )
        )
    return nics


def interface_element(domain_xml: str, mac: str) -> str | None:
    """The `<interface>` element with this MAC in the domain XML (None if absent): what
    to hand to detachDeviceFlags so libvirt matches exactly that device."""
    want = mac.lower()
    for iface in _interfaces(domain_xml):
        mac_el = iface.find("mac")
        if mac_el is not None and (mac_el.get("address") or "").lower() == want:
            iface.tail = None
            return ET.tostring(iface, encoding="unicode")
    return None
