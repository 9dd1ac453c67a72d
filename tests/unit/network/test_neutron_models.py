"""Typed models keep every field a real neutron-server sends and give it back unchanged."""

from __future__ import annotations

import copy
from typing import Any

import pydantic
import pytest
from neutron_unit_fakes import MakeClient, Reply, Script, sample

from hotport.network import (
    FloatingIP,
    MalformedResponse,
    Network,
    PartialPort,
    Port,
    Subnet,
)
from hotport.network.models import FixedIP


def _port(label: str) -> dict[str, Any]:
    body: dict[str, Any] = sample(label)["body"]["port"]
    return body


def test_port_typed_attributes_from_a_bound_port() -> None:
    raw = _port("bind port If-Match ok")
    port = Port.from_neutron(raw)

    assert port.id == raw["id"]
    assert port.network_id == raw["network_id"]
    assert port.mac_address == raw["mac_address"]
    assert port.status == raw["status"]
    assert port.device_id == raw["device_id"]
    assert port.device_owner == "compute:nova"
    assert port.host == raw["binding:host_id"] == "compute-1"
    assert port.vif_type == raw["binding:vif_type"] == "ovs"
    assert port.vif_details == raw["binding:vif_details"]
    assert port.vif_details["bridge_name"] == "br-int"
    assert port.vnic_type == "normal"
    assert port.profile == {}
    assert port.revision_number == raw["revision_number"]
    assert port.project_id == raw["project_id"]
    assert port.name == raw["name"]
    assert port.security_groups == tuple(raw["security_groups"])
    assert port.fixed_ips == tuple(FixedIP.from_neutron(ip) for ip in raw["fixed_ips"])
    assert port.fixed_ips[0].ip_address == raw["fixed_ips"][0]["ip_address"]
    assert port.fixed_ips[0].subnet_id == raw["fixed_ips"][0]["subnet_id"]
    assert port.is_bound


def test_unbound_port_as_real_neutron_shows_it() -> None:
    port = Port.from_neutron(_port("show port after unbind"))
    assert port.host == ""
    assert port.vif_type == "unbound"
    assert port.vif_details == {}
    assert not port.is_bound


@pytest.mark.parametrize(
    "label",
    [
        "show port",
        "bind port If-Match ok",
        "create bound port",
        "unbind port",
        "create port (unbound)",
    ],
)
def test_port_keeps_every_field_and_round_trips(label: str) -> None:
    raw = _port(label)
    port = Port.from_neutron(raw)

    assert port.to_neutron() == raw
    assert port.raw == raw
    # nothing dropped: every key is a typed attribute (by alias) or an extra
    aliases = {f.alias or name for name, f in Port.model_fields.items()}
    assert set(raw) <= aliases | set(port.extra)
    for key in ("allowed_address_pairs", "extra_dhcp_opts", "tenant_id", "created_at", "tags"):
        assert port.extra[key] == raw[key]


def test_unknown_fields_of_future_extensions_are_kept() -> None:
    raw = {**_port("show port"), "qos_policy_id": "q1", "hints": {"openvswitch": {"x": 1}}}
    raw["fixed_ips"] = [{**raw["fixed_ips"][0], "future": True}]
    port = Port.from_neutron(raw)
    assert port.extra["qos_policy_id"] == "q1"
    assert port.extra["hints"] == {"openvswitch": {"x": 1}}
    assert port.fixed_ips[0].extra == {"future": True}
    assert port.to_neutron() == raw


def test_to_neutron_is_a_copy() -> None:
    raw = _port("bind port If-Match ok")
    original = copy.deepcopy(raw)
    port = Port.from_neutron(raw)

    out = port.to_neutron()
    out["binding:vif_details"]["bridge_name"] = "changed"
    raw["name"] = "changed too"

    assert port.to_neutron() == original
    assert port.vif_details["bridge_name"] == "br-int"


def test_models_are_frozen() -> None:
    port = Port.from_neutron(_port("show port"))
    with pytest.raises(pydantic.ValidationError):
        port.device_id = "x"  # type: ignore[misc]
    assert hash(port.fixed_ips[0]) == hash(port.fixed_ips[0])


def test_network_keeps_mtu_and_provider_fields() -> None:
    raw = sample("show network")["body"]["network"]
    net = Network.from_neutron(raw)
    assert net.id == raw["id"]
    assert net.name == raw["name"]
    assert net.mtu == raw["mtu"]
    assert net.subnets == tuple(raw["subnets"])
    assert net.router_external is False
    assert net.network_type == raw["provider:network_type"]
    assert net.physical_network == raw["provider:physical_network"]
    assert net.segmentation_id == raw["provider:segmentation_id"]
    assert net.port_security_enabled is True
    assert net.extra["availability_zones"] == raw["availability_zones"]
    assert net.to_neutron() == raw


def test_subnet_keeps_routes_and_dns() -> None:
    raw = dict(sample("list subnets by network")["body"]["subnets"][0])
    raw["host_routes"] = [{"destination": "10.0.0.0/8", "nexthop": "192.0.2.254"}]
    raw["dns_nameservers"] = ["192.0.2.53"]
    subnet = Subnet.from_neutron(raw)
    assert subnet.network_id == raw["network_id"]
    assert subnet.cidr == raw["cidr"]
    assert subnet.gateway_ip == raw["gateway_ip"]
    assert subnet.ip_version == 4
    assert subnet.enable_dhcp is True
    assert subnet.dns_nameservers == ("192.0.2.53",)
    assert subnet.host_routes[0].destination == "10.0.0.0/8"
    assert subnet.host_routes[0].nexthop == "192.0.2.254"
    assert subnet.allocation_pools[0].start == raw["allocation_pools"][0]["start"]
    assert subnet.extra["service_types"] == []
    assert subnet.to_neutron() == raw


def test_floating_ip() -> None:
    raw = sample("create floatingip (port_id of a compute port)")["body"]["floatingip"]
    fip = FloatingIP.from_neutron(raw)
    assert fip.id == raw["id"]
    assert fip.floating_ip_address == raw["floating_ip_address"]
    assert fip.fixed_ip_address == raw["fixed_ip_address"]
    assert fip.port_id == raw["port_id"]
    assert fip.router_id == raw["router_id"]
    assert fip.extra["port_details"] == raw["port_details"]
    assert fip.to_neutron() == raw


def test_partial_port_from_a_fields_list() -> None:
    rows = sample("list ports by host + fields")["body"]["ports"]
    ports = [PartialPort.from_neutron(r) for r in rows]
    assert [p.id for p in ports] == [r["id"] for r in rows]
    assert all(p.network_id is None and p.mac_address is None for p in ports)
    assert [p.to_neutron() for p in ports] == rows


def test_a_field_the_service_did_not_send_stays_unset() -> None:
    port = Port.from_neutron({"id": "p", "network_id": "n", "mac_address": "m"})
    assert port.host is None  # binding extension not visible (non-admin policy)
    assert port.revision_number is None
    assert port.fixed_ips == ()
    assert port.to_neutron() == {"id": "p", "network_id": "n", "mac_address": "m"}


async def test_a_port_without_an_id_is_a_malformed_response(make_client: MakeClient) -> None:
    script = Script(Reply(200, {"port": {"name": "x"}}))
    with pytest.raises(MalformedResponse) as info:
        await make_client(script).show_port("p1")
    assert isinstance(info.value.__cause__, pydantic.ValidationError)
    assert info.value.call == "show_port"


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, content=b"<html>ok</html>"),
        Reply(200, ["not", "an", "object"]),
        Reply(200, {"ports": {"not": "a list"}}),
        Reply(200, {"ports": ["not an object"]}),
        Reply(200, {"networks": []}),
    ],
)
async def test_malformed_list_answers(make_client: MakeClient, reply: Reply) -> None:
    with pytest.raises(MalformedResponse):
        await make_client(Script(reply)).list_ports()


async def test_non_json_success_chains_the_decode_error(make_client: MakeClient) -> None:
    with pytest.raises(MalformedResponse) as info:
        await make_client(Script(Reply(200, content=b"{"))).show_port("p1")
    assert isinstance(info.value.__cause__, ValueError)
