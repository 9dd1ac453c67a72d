"""The builder on recorded neutron-server 29 responses: every field as Nova maps it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from model_testdata import (
    recorded_floating_ip,
    recorded_network,
    recorded_port,
    recorded_subnets,
    sample,
)

from hotport.model import NO_GATEWAY, VIF, ModelError, build_vif, vif_revision

NET_ID = "145d2f10-cd42-43a8-a231-557b07a1ea41"
SUBNET_ID = "861c050b-49f9-42dc-b30a-f10df4948d91"
V6_SUBNET_ID = "5b0c3a52-7e8d-4f1a-9b6c-2d3e4f5a6b7c"


def _v6_subnet() -> dict[str, Any]:
    """An IPv6 SLAAC subnet of the recorded network, shaped like the recorded v4 one."""
    subnet = recorded_subnets()[0]
    subnet.update(
        {
            "id": V6_SUBNET_ID,
            "ip_version": 6,
            "cidr": "2001:db8:a::/64",
            "gateway_ip": "2001:db8:a::1",
            "ipv6_ra_mode": "slaac",
            "ipv6_address_mode": "slaac",
            "allocation_pools": [{"start": "2001:db8:a::2", "end": "2001:db8:a::ffff"}],
            "dns_nameservers": ["2001:db8:a::53", "2001:db8:a::54"],
            "host_routes": [{"destination": "2001:db8:f::/48", "nexthop": "2001:db8:a::fe"}],
        }
    )
    return subnet


def _build(port: dict[str, Any] | None = None, **kwargs: Any) -> VIF:
    args: dict[str, Any] = {
        "port": recorded_port() if port is None else port,
        "network": recorded_network(),
        "subnets": recorded_subnets(),
        "floating_ips": [],
        "preserve_on_delete": True,
    }
    args.update(kwargs)
    return build_vif(**args)


def test_recorded_bound_port_maps_every_field() -> None:
    port = recorded_port()
    vif = _build(port, tag="nic-1")
    assert vif.id == vif.port_id == port["id"] == "a9724781-8bee-4815-94cf-468fba6a1111"
    assert vif.address == vif.mac == "fa:16:3e:3d:d0:33"
    assert vif.type == "ovs"
    assert vif.vnic_type == "normal"
    assert vif.devname == "tapa9724781-8b"
    assert vif.ovs_interfaceid == port["id"]
    assert vif.active is False  # status DOWN
    assert vif.preserve_on_delete is True
    assert vif.delegate_create is False
    assert vif.qbh_params is None
    assert vif.qbg_params is None
    assert vif.profile == {}
    assert vif.tag == "nic-1"
    assert vif.meta == {"tag": "nic-1"}
    assert vif.extra == {}
    net = vif.network
    assert net.id == NET_ID
    assert net.label == "rec"
    assert net.bridge == "br-int"
    assert net.meta == {
        "injected": False,
        "tenant_id": "6b1f0ad4a1b24c4f8d6f0c0d0d0d0d0d",
        "mtu": 1500,
        "physical_network": "physnet1",
        "tunneled": False,
    }
    assert net.extra == {}
    (subnet,) = net.subnets
    assert subnet.cidr == "192.0.2.0/24"
    assert subnet.version == 4
    assert subnet.gateway is not None
    assert subnet.gateway.to_json() == {
        "address": "192.0.2.1",
        "type": "gateway",
        "version": 4,
        "meta": {},
    }
    assert subnet.dns == ()
    assert subnet.routes == ()
    assert "dhcp_server" not in subnet.meta  # not looked up, not guessed
    assert subnet.meta == {}
    assert [ip.to_json() for ip in subnet.ips] == [
        {"address": "192.0.2.157", "type": "fixed", "version": 4, "meta": {}, "floating_ips": []}
    ]
    assert vif.fixed_ips() == ["192.0.2.157"]
    assert vif.floating_ips() == []


def test_mtu_is_kept() -> None:
    vif = _build()
    assert vif.mtu == 1500
    assert vif.to_json()["network"]["meta"]["mtu"] == 1500
    network = recorded_network()
    network["mtu"] = 8950
    assert _build(network=network).mtu == 8950
    network.pop("mtu")
    assert _build(network=network).mtu is None


def test_vif_details_and_profile_are_kept_whole() -> None:
    port = recorded_port()
    port["binding:profile"] = {"pci_slot": "0000:81:00.1", "capabilities": ["switchdev"]}
    vif = _build(port)
    assert vif.to_json()["details"] == recorded_port()["binding:vif_details"]
    assert vif.details["bound_drivers"] == {"0": "anchor_loopback"}
    assert vif.to_json()["profile"] == {"pci_slot": "0000:81:00.1", "capabilities": ["switchdev"]}


def test_built_vifs_round_trip_through_json() -> None:
    port = recorded_port()
    port["fixed_ips"].append({"subnet_id": V6_SUBNET_ID, "ip_address": "2001:db8:a::10"})
    vif = _build(port, subnets=[*recorded_subnets(), _v6_subnet()], tag="t")
    text = json.dumps(vif.to_json())
    assert VIF.from_json(json.loads(text)) == vif
    assert VIF.from_json(vif.to_json()).to_json() == vif.to_json()


def test_the_bind_response_builds_the_same_shape() -> None:
    port = sample("bind port If-Match ok", "port")
    vif = _build(port, preserve_on_delete=False)
    assert vif.fixed_ips() == ["192.0.2.148"]
    assert vif.devname == "tapfb823b05-c5"
    assert vif.preserve_on_delete is False


def test_an_unbound_port_builds_without_bridge() -> None:
    vif = _build(sample("create port (unbound)", "port"))
    assert vif.type == "unbound"
    assert vif.network.bridge is None
    assert vif.ovs_interfaceid is None
    assert vif.details == {}


@pytest.mark.parametrize(
    ("vif_type", "details", "bridge", "ovs_interfaceid", "create_bridge"),
    [
        ("ovs", {"bridge_name": "br-int"}, "br-int", True, False),
        ("ovs", {}, "br-int", True, False),
        ("ovs", {"bridge_name": "br-a-very-long-bridge-name"}, "br-a-very-long", True, False),
        ("agilio_ovs", {}, "br-int", True, False),
        ("bridge", {}, "brq" + NET_ID[:11], False, True),
        ("bridge", {"bridge_name": "br-provider"}, "br-provider", False, True),
        ("tap", {"mac_address": "fe:16:3e:00:00:01"}, None, False, False),
        ("hw_veb", {"vlan": "100"}, None, False, False),
        ("dvs", {}, NET_ID, False, False),
        ("vhostuser", {"vhostuser_ovs_plug": True}, "br-int", True, False),
        ("vhostuser", {"vhostuser_fp_plug": True}, "brq" + NET_ID[:11], False, False),
        ("vhostuser", {}, None, False, False),
        ("binding_failed", {}, None, False, False),
    ],
)
def test_bridge_and_ovs_interfaceid_per_vif_type(
    vif_type: str,
    details: dict[str, Any],
    bridge: str | None,
    ovs_interfaceid: bool,
    create_bridge: bool,
) -> None:
    port = recorded_port()
    port["binding:vif_type"] = vif_type
    port["binding:vif_details"] = details
    vif = _build(port)
    assert vif.type == vif_type
    assert vif.network.bridge == bridge
    assert vif.ovs_interfaceid == (port["id"] if ovs_interfaceid else None)
    assert vif.network.should_create_bridge is create_bridge
    if create_bridge:  # where Nova writes it: the network's top level
        assert vif.to_json()["network"]["should_create_bridge"] is True
    assert vif.details == details


def test_ovs_bridge_default_is_configurable() -> None:
    port = recorded_port()
    port["binding:vif_details"] = {}
    assert _build(port, ovs_bridge="br-ex").network.bridge == "br-ex"


def test_floating_ip_hangs_under_the_fixed_ip_it_maps_to() -> None:
    fip = recorded_floating_ip()
    port = recorded_port()
    port["id"] = fip["port_id"]
    port["fixed_ips"] = [
        {"subnet_id": SUBNET_ID, "ip_address": "192.0.2.200"},
        {"subnet_id": SUBNET_ID, "ip_address": fip["fixed_ip_address"]},
    ]
    other_port = copy.deepcopy(fip) | {
        "port_id": "someone-else",
        "floating_ip_address": "203.0.113.9",
    }
    unassociated = copy.deepcopy(fip) | {"port_id": None, "fixed_ip_address": None}
    vif = _build(port, floating_ips=[other_port, fip, unassociated, copy.deepcopy(fip)])
    first, second = vif.network.subnets[0].ips
    assert first.address == "192.0.2.200"
    assert first.floating_ips == ()
    assert second.address == "192.0.2.225"
    assert [ip.to_json() for ip in second.floating_ips] == [
        {"address": "203.0.113.243", "type": "floating", "version": 4, "meta": {}}
    ]
    assert vif.floating_ips() == ["203.0.113.243"]


def test_floating_ip_without_port_id_field_maps_by_fixed_address() -> None:
    port = recorded_port()
    fip = {"floating_ip_address": "203.0.113.50", "fixed_ip_address": "192.0.2.157"}
    assert _build(port, floating_ips=[fip]).floating_ips() == ["203.0.113.50"]


def test_dual_stack_subnets_follow_the_ports_order_and_only_the_ports_subnets() -> None:
    port = recorded_port()
    port["fixed_ips"] = [
        {"subnet_id": V6_SUBNET_ID, "ip_address": "2001:db8:a::10"},
        {"subnet_id": SUBNET_ID, "ip_address": "192.0.2.157"},
        {"subnet_id": SUBNET_ID, "ip_address": "192.0.2.158"},
    ]
    unrelated = recorded_subnets()[0] | {"id": "unrelated", "cidr": "198.51.100.0/24"}
    vif = _build(port, subnets=[unrelated, *recorded_subnets(), _v6_subnet()])
    v6, v4 = vif.network.subnets
    assert (v6.cidr, v6.version, v4.cidr, v4.version) == ("2001:db8:a::/64", 6, "192.0.2.0/24", 4)
    assert [ip.address for ip in v4.ips] == ["192.0.2.157", "192.0.2.158"]
    assert v6.to_json() == {
        "cidr": "2001:db8:a::/64",
        "dns": [
            {"address": "2001:db8:a::53", "type": "dns", "version": 6, "meta": {}},
            {"address": "2001:db8:a::54", "type": "dns", "version": 6, "meta": {}},
        ],
        "gateway": {"address": "2001:db8:a::1", "type": "gateway", "version": 6, "meta": {}},
        "ips": [
            {
                "address": "2001:db8:a::10",
                "type": "fixed",
                "version": 6,
                "meta": {},
                "floating_ips": [],
            }
        ],
        "routes": [
            {
                "cidr": "2001:db8:f::/48",
                "gateway": {
                    "address": "2001:db8:a::fe",
                    "type": "gateway",
                    "version": 6,
                    "meta": {},
                },
                "interface": None,
                "meta": {},
            }
        ],
        "version": 6,
        "meta": {"ipv6_address_mode": "slaac"},
    }
    assert vif.fixed_ips() == ["2001:db8:a::10", "192.0.2.157", "192.0.2.158"]


def test_dns_and_host_routes_of_a_v4_subnet() -> None:
    subnets = recorded_subnets()
    subnets[0]["dns_nameservers"] = ["192.0.2.53", "192.0.2.53", "9.9.9.9"]
    subnets[0]["host_routes"] = [{"destination": "10.10.0.0/16", "nexthop": "192.0.2.254"}]
    (subnet,) = _build(subnets=subnets).network.subnets
    assert [ip.address for ip in subnet.dns] == ["192.0.2.53", "9.9.9.9"]
    assert all(ip.type == "dns" for ip in subnet.dns)
    (route,) = subnet.routes
    assert route.cidr == "10.10.0.0/16"
    assert route.interface is None
    assert route.gateway is not None
    assert route.gateway.address == "192.0.2.254"
    assert route.gateway.type == "gateway"


def test_a_subnet_without_gateway_is_written_as_nova_does() -> None:
    subnets = recorded_subnets()
    subnets[0]["gateway_ip"] = None
    vif = _build(subnets=subnets)
    subnet = vif.network.subnets[0]
    assert subnet.gateway is None
    assert subnet.absent_gateway == NO_GATEWAY
    assert vif.to_json()["network"]["subnets"][0]["gateway"] == {
        "address": None,
        "type": "gateway",
        "version": None,
        "meta": {},
    }
    assert VIF.from_json(vif.to_json()) == vif


def test_a_port_without_fixed_ips_is_valid() -> None:
    port = recorded_port()
    port["fixed_ips"] = []
    vif = _build(port, subnets=[])
    assert vif.network.subnets == ()
    assert vif.fixed_ips() == []
    assert vif.mtu == 1500


@pytest.mark.parametrize(
    ("status", "admin_state_up", "given", "active"),
    [
        ("ACTIVE", True, None, True),
        ("DOWN", True, None, False),
        ("BUILD", True, None, False),
        ("DOWN", False, None, True),  # Nova: an admin-down port never goes ACTIVE
        ("DOWN", True, True, True),
        ("ACTIVE", True, False, False),
    ],
)
def test_active(status: str, admin_state_up: bool, given: bool | None, active: bool) -> None:
    port = recorded_port()
    port["status"] = status
    port["admin_state_up"] = admin_state_up
    assert _build(port, active=given).active is active


def test_tunneled_and_physical_network() -> None:
    network = recorded_network()
    network.update({"provider:network_type": "vxlan", "provider:physical_network": None})
    meta = _build(network=network).network.meta
    assert (meta["physical_network"], meta["tunneled"]) == (None, True)
    network["provider:network_type"] = "geneve"
    assert _build(network=network).network.tunneled is True
    network["provider:network_type"] = "flat"
    network["provider:physical_network"] = "public"
    built = _build(network=network).network
    assert (built.physical_network, built.tunneled) == ("public", False)
    for key in ("provider:network_type", "provider:physical_network", "provider:segmentation_id"):
        network.pop(key)
    network["segments"] = [
        {"provider:network_type": "vxlan", "provider:physical_network": None},
        {"provider:network_type": "vlan", "provider:physical_network": "physnet2"},
    ]
    built = _build(network=network).network
    assert (built.physical_network, built.tunneled) == ("physnet2", False)
    network["segments"] = [{"provider:network_type": "vxlan", "provider:physical_network": None}]
    built = _build(network=network).network
    assert (built.physical_network, built.tunneled) == (None, True)


def test_tenant_id_falls_back_to_project_id() -> None:
    network = recorded_network()
    network.pop("tenant_id")
    assert _build(network=network).network.meta["tenant_id"] == network["project_id"]


def test_untagged_vif_has_empty_meta_and_delegate_create_is_passed() -> None:
    vif = _build(delegate_create=True)
    assert vif.meta == {}
    assert vif.tag is None
    assert vif.delegate_create is True


def test_inputs_are_not_mutated() -> None:
    port, network, subnets = recorded_port(), recorded_network(), recorded_subnets()
    fips = [recorded_floating_ip()]
    before = copy.deepcopy((port, network, subnets, fips))
    build_vif(port, network, subnets, fips, preserve_on_delete=False)
    assert (port, network, subnets, fips) == before


# -- errors ----------------------------------------------------------------------------


def test_network_mismatch_is_refused() -> None:
    network = recorded_network()
    network["id"] = "another-network"
    with pytest.raises(ModelError, match="not on the network given") as caught:
        _build(network=network)
    assert caught.value.field == "network.id"


def test_missing_subnet_is_refused() -> None:
    with pytest.raises(ModelError, match="not among the subnets given") as caught:
        _build(subnets=[])
    assert caught.value.field == "port.fixed_ips[0].subnet_id"
    assert SUBNET_ID in str(caught.value)


def test_subnet_of_another_network_is_refused() -> None:
    subnets = recorded_subnets()
    subnets[0]["network_id"] = "another-network"
    with pytest.raises(ModelError, match="is on network another-network"):
        _build(subnets=subnets)


def test_fixed_ip_outside_its_subnet_is_refused() -> None:
    port = recorded_port()
    port["fixed_ips"][0]["ip_address"] = "198.51.100.7"
    with pytest.raises(ModelError, match="not in subnet") as caught:
        _build(port)
    assert caught.value.field == "port.fixed_ips[0].ip_address"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p.pop("binding:vif_type"), "port.binding:vif_type"),
        (lambda p: p.pop("mac_address"), "port.mac_address"),
        (lambda p: p.__setitem__("id", ""), "port.id"),
        (lambda p: p.__setitem__("binding:vif_details", ["x"]), "port.binding:vif_details"),
        (lambda p: p.__setitem__("fixed_ips", "x"), "port.fixed_ips"),
        (lambda p: p["fixed_ips"][0].pop("ip_address"), "port.fixed_ips[0].ip_address"),
        (
            lambda p: p["fixed_ips"][0].__setitem__("ip_address", "x"),
            "port.fixed_ips[0].ip_address",
        ),
    ],
)
def test_malformed_port_names_the_field(change: Any, field: str) -> None:
    port = recorded_port()
    change(port)
    with pytest.raises(ModelError) as caught:
        _build(port)
    assert caught.value.field == field


def test_malformed_network_and_subnet_name_the_field() -> None:
    network = recorded_network()
    network["mtu"] = "1500"
    with pytest.raises(ModelError) as caught:
        _build(network=network)
    assert caught.value.field == "network.mtu"
    subnets = recorded_subnets()
    subnets[0]["dns_nameservers"] = ["dns.example"]
    with pytest.raises(ModelError) as caught:
        _build(subnets=subnets)
    assert caught.value.field == "subnets[0].dns_nameservers[0]"
    fip = recorded_floating_ip() | {"port_id": recorded_port()["id"], "floating_ip_address": 5}
    with pytest.raises(ModelError) as caught:
        _build(floating_ips=[fip])
    assert caught.value.field == "floating_ips[0].floating_ip_address"


def test_vif_revision() -> None:
    assert vif_revision(recorded_port()) == 3
    assert vif_revision(sample("bind port If-Match ok", "port")) == 4
    port = recorded_port()
    port.pop("revision_number")
    with pytest.raises(ModelError, match="no revision") as caught:
        vif_revision(port)
    assert caught.value.field == "port.revision_number"
    for bad in (True, "3", -1, None):
        with pytest.raises(ModelError):
            vif_revision(recorded_port() | {"revision_number": bad})
