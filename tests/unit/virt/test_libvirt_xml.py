"""The libvirt driver's pure XML: interface XML per VIF type, host checks, NIC parsing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from hotport.model import VIF
from hotport.model.values import Network
from hotport.virt.base import NIC, HostLacks
from hotport.virt.libvirt_xml import (
    alias_for,
    check_host,
    interface_element,
    interface_xml,
    parse_nics,
    port_of_alias,
)

PORT = "3f2a9c1e-7b4d-4e0a-9c55-0123456789ab"
MAC = "FA:16:3E:12:34:56"


def vif(
    type: str = "tap",
    *,
    mtu: int | None = 1450,
    bridge: str | None = None,
    details: dict[str, Any] | None = None,
    ovs_interfaceid: str | None = None,
) -> VIF:
    meta = {} if mtu is None else {"mtu": mtu}
    network = Network(id="net-1", label="n", bridge=bridge, meta=meta)
    return VIF(
        id=PORT,
        address=MAC,
        network=network,
        type=type,
        details=details or {},
        ovs_interfaceid=ovs_interfaceid,
    )


def parse(xml: str) -> ET.Element:
    el = ET.fromstring(xml)
    assert el.tag == "interface"
    return el


def children(el: ET.Element) -> list[str]:
    return [c.tag for c in el]


def test_tap_is_an_ethernet_interface_with_a_managed_tap() -> None:
    el = parse(interface_xml(vif("tap")))
    assert el.attrib == {"type": "ethernet"}
    assert children(el) == ["mac", "model", "mtu", "target", "alias"]
    assert el.find("mac").attrib == {"address": MAC.lower()}  # type: ignore[union-attr]
    assert el.find("model").attrib == {"type": "virtio"}  # type: ignore[union-attr]
    assert el.find("mtu").attrib == {"size": "1450"}  # type: ignore[union-attr]
    target = {"dev": "tap" + PORT[:11], "managed": "yes"}
    assert el.find("target").attrib == target  # type: ignore[union-attr]
    assert el.find("alias").attrib == {"name": "ua-" + PORT}  # type: ignore[union-attr]
    assert el.find("source") is None
    assert el.find("virtualport") is None


def test_ethernet_is_served_like_tap() -> None:
    assert interface_xml(vif("ethernet")) == interface_xml(vif("tap"))


def test_bridge_is_a_bridge_interface_with_its_source() -> None:
    el = parse(interface_xml(vif("bridge", bridge="brq-1")))
    assert el.attrib == {"type": "bridge"}
    assert children(el) == ["source", "mac", "model", "mtu", "target", "alias"]
    assert el.find("source").attrib == {"bridge": "brq-1"}  # type: ignore[union-attr]
    assert el.find("target").attrib == {"dev": "tap" + PORT[:11]}  # type: ignore[union-attr]
    assert el.find("virtualport") is None


def test_bridge_name_from_the_binding_details_wins() -> None:
    el = parse(interface_xml(vif("bridge", bridge="brq-1", details={"bridge_name": "brq-x"})))
    assert el.find("source").attrib == {"bridge": "brq-x"}  # type: ignore[union-attr]


def test_ovs_is_a_bridge_with_an_openvswitch_virtualport() -> None:
    el = parse(interface_xml(vif("ovs", bridge="br-int", ovs_interfaceid="iface-1")))
    assert el.attrib == {"type": "bridge"}
    assert children(el) == ["source", "mac", "virtualport", "model", "mtu", "target", "alias"]
    assert el.find("source").attrib == {"bridge": "br-int"}  # type: ignore[union-attr]
    vp = el.find("virtualport")
    assert vp is not None
    assert vp.attrib == {"type": "openvswitch"}
    params = vp.find("parameters")
    assert params is not None
    assert params.attrib == {"interfaceid": "iface-1"}
    assert el.find("target").attrib == {"dev": "tap" + PORT[:11]}  # type: ignore[union-attr]


def test_ovs_interfaceid_defaults_to_the_port_and_bridge_to_br_int() -> None:
    el = parse(interface_xml(vif("ovs")))
    assert el.find("source").attrib == {"bridge": "br-int"}  # type: ignore[union-attr]
    params = el.find("virtualport/parameters")
    assert params is not None
    assert params.get("interfaceid") == PORT


@pytest.mark.parametrize("type_", ["tap", "bridge", "ovs"])
def test_no_mtu_element_when_the_mtu_is_unknown(type_: str) -> None:
    el = parse(interface_xml(vif(type_, mtu=None, bridge="br0")))
    assert el.find("mtu") is None
    assert el.find("mac") is not None
    assert el.find("alias") is not None


def test_unknown_vif_types_are_refused_clearly() -> None:
    with pytest.raises(HostLacks, match=r"'vhostuser'.*not supported"):
        interface_xml(vif("vhostuser"))
    with pytest.raises(HostLacks, match=r"'hw_veb'.*not supported"):
        check_host(vif("hw_veb"))


def test_aliases_map_back_to_ports() -> None:
    assert alias_for(PORT) == "ua-" + PORT
    assert port_of_alias("ua-" + PORT) == PORT
    assert port_of_alias("net0") is None
    assert port_of_alias("ua-") is None
    assert port_of_alias(None) is None
    with pytest.raises(ValueError, match="cannot be part of a libvirt alias"):
        alias_for("a port")


# -- the host checks ---------------------------------------------------------------------


@pytest.fixture
def host(tmp_path: Path) -> Path:
    (tmp_path / "sys/class/net/eth0").mkdir(parents=True)
    (tmp_path / "sys/class/net/brq-1/bridge").mkdir(parents=True)  # a Linux bridge
    (tmp_path / "sys/class/net/br-int").mkdir(parents=True)  # an OVS bridge
    (tmp_path / "dev/net").mkdir(parents=True)
    (tmp_path / "dev/net/tun").touch()
    return tmp_path


def test_the_host_serves_what_it_has(host: Path) -> None:
    check_host(vif("tap"), root=host)
    check_host(vif("bridge", bridge="brq-1"), root=host)
    check_host(vif("ovs", bridge="br-int"), root=host)


def test_a_missing_linux_bridge_is_host_lacks(host: Path) -> None:
    with pytest.raises(HostLacks, match="Linux bridge 'brq-2'"):
        check_host(vif("bridge", bridge="brq-2"), root=host)


def test_a_bridge_that_is_no_linux_bridge_is_host_lacks(host: Path) -> None:
    with pytest.raises(HostLacks, match="'eth0' to be a Linux bridge"):
        check_host(vif("bridge", bridge="eth0"), root=host)


def test_a_missing_ovs_bridge_is_host_lacks(host: Path) -> None:
    with pytest.raises(HostLacks, match="OVS bridge 'br-ex'"):
        check_host(vif("ovs", bridge="br-ex"), root=host)


def test_a_linux_bridge_does_not_serve_ovs(host: Path) -> None:
    with pytest.raises(HostLacks, match="it is a Linux bridge"):
        check_host(vif("ovs", bridge="brq-1"), root=host)


def test_a_bridge_vif_without_a_bridge_is_host_lacks(host: Path) -> None:
    with pytest.raises(HostLacks, match="names no bridge"):
        check_host(vif("bridge", bridge=None), root=host)


def test_tap_without_dev_net_tun_is_host_lacks(host: Path) -> None:
    (host / "dev/net/tun").unlink()
    with pytest.raises(HostLacks, match="dev/net/tun"):
        check_host(vif("tap"), root=host)


# -- parsing a domain ---------------------------------------------------------------------

DOMAIN = f"""
<domain type='qemu' id='3'>
  <name>vm</name>
  <uuid>6b1b2c3d-0000-4000-8000-000000000001</uuid>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='ethernet'>
      <mac address='FA:16:3E:12:34:56'/>
      <target dev='tap{PORT[:11]}' managed='yes'/>
      <model type='virtio'/>
      <mtu size='1450'/>
      <alias name='ua-{PORT}'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </interface>
    <interface type='bridge'>
      <mac address='fa:16:3e:00:00:02'/>
      <source bridge='br-int'/>
      <virtualport type='openvswitch'>
        <parameters interfaceid='11111111-2222-3333-4444-555555555555'/>
      </virtualport>
      <target dev='tap11111111-22'/>
      <alias name='net1'/>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:cc'/>
      <source network='default'/>
      <alias name='net2'/>
    </interface>
    <serial type='file'><source path='/tmp/x'/></serial>
  </devices>
</domain>
"""


def test_nics_are_parsed_in_device_order() -> None:
    assert parse_nics(DOMAIN) == [
        NIC(
            mac="fa:16:3e:12:34:56",
            dev="tap" + PORT[:11],
            port_id=PORT,
            alias="ua-" + PORT,
        ),
        NIC(
            mac="fa:16:3e:00:00:02",
            dev="tap11111111-22",
            port_id="11111111-2222-3333-4444-555555555555",
            alias="net1",
        ),
        NIC(mac="52:54:00:aa:bb:cc", dev=None, port_id=None, alias="net2"),
    ]


def test_a_domain_without_nics_has_none() -> None:
    assert parse_nics("<domain><devices/></domain>") == []
    assert parse_nics("<domain/>") == []


def test_interface_element_finds_one_mac_case_insensitively() -> None:
    el = interface_element(DOMAIN, "fa:16:3e:12:34:56")
    assert el is not None
    parsed = parse(el)
    assert parsed.find("alias").get("name") == "ua-" + PORT  # type: ignore[union-attr]
    assert interface_element(DOMAIN, "FA:16:3E:00:00:02") is not None
    assert interface_element(DOMAIN, "fa:16:3e:99:99:99") is None


def test_the_generated_xml_parses_back_to_the_nic() -> None:
    domain = f"<domain><devices>{interface_xml(vif('tap'))}</devices></domain>"
    assert parse_nics(domain) == [
        NIC(mac=MAC.lower(), dev="tap" + PORT[:11], port_id=PORT, alias="ua-" + PORT)
    ]
