"""VIF values and their JSON: Nova's layout, kept whole (unknown keys too), validated."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from model_testdata import nova_vif_json

from hotport.model import (
    IP,
    NO_GATEWAY,
    VIF,
    FixedIP,
    FrozenDict,
    ModelError,
    Network,
    Route,
    Subnet,
    devname,
)


def _net(**overrides: Any) -> Network:
    fields: dict[str, Any] = {"id": "net-1", "label": "private", "bridge": "br-int"}
    fields.update(overrides)
    return Network(**fields)


def test_nova_json_round_trips_exactly_with_unknown_keys_at_every_level() -> None:
    raw = nova_vif_json()
    vif = VIF.from_json(copy.deepcopy(raw))
    assert vif.to_json() == raw
    assert VIF.from_json(vif.to_json()) == vif
    assert json.loads(json.dumps(vif.to_json())) == raw


def test_unknown_keys_land_in_extra_where_they_were() -> None:
    vif = VIF.from_json(nova_vif_json())
    v4, v6, no_gw = vif.network.subnets
    assert vif.extra == {"x_vif_extra": "kept at the top"}
    assert vif.network.extra == {"should_create_bridge": False, "x_net_extra": [None, False, 0]}
    assert v4.extra == {"x_subnet_extra": {"k": ["v"]}}
    assert v4.gateway is not None
    assert v4.gateway.extra == {"x_gw_extra": "kept"}
    assert v4.dns[1].extra == {"x_dns_extra": [1, 2, {"deep": None}]}
    assert v4.ips[0].floating_ips[0].extra == {"x_fip_extra": {"a": True}}
    assert v4.ips[1].extra == {"x_fixed_extra": 3.5}
    assert v4.routes[0].extra == {"x_route_extra": None}
    assert v6.extra == {}
    assert no_gw.extra == {}


def test_typed_views_of_a_nova_vif() -> None:
    vif = VIF.from_json(nova_vif_json())
    assert vif.port_id == vif.id == "5e1a9a3c-0b7e-4c1d-9f0a-6f3b2d1c0e9a"
    assert vif.mac == "fa:16:3e:12:34:56"
    assert vif.mtu == 1450
    assert vif.tag == "nic1"
    assert vif.fixed_ips() == [
        "10.0.0.5",
        "10.0.0.6",
        "2001:db8:1::f816:3eff:fe12:3456",
        "192.168.50.9",
    ]
    assert vif.floating_ips() == ["203.0.113.7", "203.0.113.8"]
    assert vif.network.tunneled is True
    assert vif.network.physical_network is None
    assert vif.network.should_create_bridge is False
    v4, v6, no_gw = vif.network.subnets
    assert (v4.version, v6.version) == (4, 6)
    assert v6.meta["ipv6_address_mode"] == "slaac"
    assert v6.routes[0].interface == "eth0"
    assert v4.ips[0].floating_ip_addresses() == ["203.0.113.7", "203.0.113.8"]
    assert no_gw.gateway is None
    assert no_gw.absent_gateway == NO_GATEWAY


def test_missing_gateway_keeps_the_form_it_was_written_in() -> None:
    raw = nova_vif_json()
    raw["network"]["subnets"][2]["gateway"] = None
    vif = VIF.from_json(copy.deepcopy(raw))
    assert vif.network.subnets[2].gateway is None
    assert vif.network.subnets[2].absent_gateway is None
    assert vif.to_json() == raw
    odd = {"address": None, "type": "gateway", "version": None, "meta": {"m": 1}, "x": 2}
    raw["network"]["subnets"][2]["gateway"] = odd
    assert VIF.from_json(copy.deepcopy(raw)).to_json() == raw


def test_a_subnet_built_without_gateway_writes_novas_null_address_gateway() -> None:
    subnet = Subnet(cidr="192.0.2.0/24", version=4, gateway=None)
    assert subnet.to_json()["gateway"] == {
        "address": None,
        "type": "gateway",
        "version": None,
        "meta": {},
    }
    gw = IP(address="192.0.2.1", type="gateway", version=4)
    with_gateway = Subnet(cidr="192.0.2.0/24", version=4, gateway=gw, absent_gateway=None)
    assert with_gateway.absent_gateway == NO_GATEWAY  # normalised: irrelevant with a gateway
    assert with_gateway == Subnet(cidr="192.0.2.0/24", version=4, gateway=gw)


def test_mtu_is_kept_and_read_from_network_meta() -> None:
    assert _net(meta={"mtu": 9000}).mtu == 9000
    assert _net(meta={"mtu": None}).mtu is None
    assert _net().mtu is None
    assert _net(meta={"mtu": True}).mtu is None
    raw = nova_vif_json()
    assert VIF.from_json(raw).to_json()["network"]["meta"]["mtu"] == 1450


def test_should_create_bridge_is_read_from_the_top_level_or_meta() -> None:
    assert _net(extra={"should_create_bridge": True}).should_create_bridge is True
    assert _net(meta={"should_create_bridge": True}).should_create_bridge is True
    assert _net().should_create_bridge is False


def test_to_json_returns_fresh_objects() -> None:
    vif = VIF.from_json(nova_vif_json())
    out = vif.to_json()
    out["details"]["bound_drivers"]["0"] = "changed"
    out["network"]["subnets"].clear()
    out["meta"]["tag"] = "changed"
    assert vif.to_json() == nova_vif_json()


def test_from_json_does_not_keep_references_to_its_input() -> None:
    raw = nova_vif_json()
    vif = VIF.from_json(raw)
    raw["details"]["bound_drivers"]["0"] = "changed"
    raw["meta"]["hotport_note"]["nested"].append(3)
    assert vif.to_json() == nova_vif_json()


def test_values_are_immutable_and_hashable() -> None:
    vif = VIF.from_json(nova_vif_json())
    with pytest.raises(dataclasses.FrozenInstanceError):
        vif.active = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        vif.details["port_filter"] = False  # type: ignore[index]
    assert isinstance(vif.details, FrozenDict)
    assert isinstance(vif.network.subnets, tuple)
    same = VIF.from_json(nova_vif_json())
    assert same == vif
    assert hash(same) == hash(vif)
    assert len({vif, same}) == 1


def test_equality_sees_every_field_including_extra_and_meta() -> None:
    base = nova_vif_json()
    vif = VIF.from_json(base)
    changes: list[Callable[[dict[str, Any]], object]] = [
        lambda j: j.__setitem__("x_vif_extra", "other"),
        lambda j: j["network"]["meta"].__setitem__("mtu", 1500),
        lambda j: j["network"]["subnets"][0]["ips"][0]["floating_ips"].pop(),
        lambda j: j["details"].__setitem__("port_filter", False),
        lambda j: j.__setitem__("delegate_create", True),
        lambda j: j["network"]["subnets"][2].__setitem__("gateway", None),
    ]
    for change in changes:
        changed = copy.deepcopy(base)
        change(changed)
        assert VIF.from_json(changed) != vif


def test_with_active_returns_a_new_vif() -> None:
    vif = VIF.from_json(nova_vif_json())
    down = vif.with_active(False)
    assert down.active is False
    assert vif.active is True
    assert dataclasses.replace(down, active=True) == vif
    assert vif.with_active(True) is vif


def test_devname_is_tap_plus_eleven_characters_of_the_port_id() -> None:
    assert devname("a9724781-8bee-4815-94cf-468fba6a1111") == "tapa9724781-8b"
    assert len(devname("a9724781-8bee-4815-94cf-468fba6a1111")) == 14
    assert devname("short") == "tapshort"
    with pytest.raises(ModelError):
        devname("")


def test_hand_built_vif_defaults_and_coercions() -> None:
    fixed = FixedIP(address="192.0.2.10", version=4)
    subnet = Subnet(
        cidr="192.0.2.0/24",
        version=4,
        gateway=IP("192.0.2.1", "gateway", 4),
        ips=[fixed],  # type: ignore[arg-type]
    )
    vif = VIF(
        id="port-1",
        address="fa:16:3e:00:00:01",
        network=_net(subnets=(subnet,), meta={"mtu": 1500}),
        type="ovs",
        details={"bridge_name": "br-int", "nested": {"a": [1, 2]}},
        meta={"tag": "t"},
    )
    assert vif.devname == "tapport-1"
    assert vif.vnic_type == "normal"
    assert vif.active is False
    assert vif.preserve_on_delete is False
    assert vif.profile == {}
    assert vif.qbh_params is None
    assert vif.delegate_create is False
    assert isinstance(vif.network.subnets[0].ips, tuple)
    assert isinstance(vif.details["nested"], FrozenDict)
    assert vif.details["nested"]["a"] == (1, 2)
    assert fixed.type == "fixed"
    assert VIF.from_json(vif.to_json()) == vif
    assert vif.to_json()["details"] == {"bridge_name": "br-int", "nested": {"a": [1, 2]}}


def test_ip_route_subnet_network_round_trip_alone() -> None:
    raw = nova_vif_json()
    subnet_raw = raw["network"]["subnets"][0]
    assert Subnet.from_json(subnet_raw).to_json() == subnet_raw
    assert Route.from_json(subnet_raw["routes"][0]).to_json() == subnet_raw["routes"][0]
    assert FixedIP.from_json(subnet_raw["ips"][0]).to_json() == subnet_raw["ips"][0]
    assert IP.from_json(subnet_raw["dns"][1]).to_json() == subnet_raw["dns"][1]
    assert Network.from_json(raw["network"]).to_json() == raw["network"]


# -- validation ------------------------------------------------------------------------


def _broken(change: Any) -> dict[str, Any]:
    raw = nova_vif_json()
    change(raw)
    return raw


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda j: j.pop("devname"), "devname"),
        (lambda j: j.pop("delegate_create"), "delegate_create"),
        (lambda j: j.__setitem__("id", ""), "id"),
        (lambda j: j.__setitem__("id", 7), "id"),
        (lambda j: j.__setitem__("active", "yes"), "active"),
        (lambda j: j.__setitem__("active", 1), "active"),
        (lambda j: j.__setitem__("devname", ""), "devname"),
        (lambda j: j.__setitem__("details", []), "details"),
        (lambda j: j.__setitem__("profile", None), "profile"),
        (lambda j: j.__setitem__("qbh_params", "x"), "qbh_params"),
        (lambda j: j.__setitem__("network", None), "network"),
        (lambda j: j["network"].pop("label"), "network.label"),
        (lambda j: j["network"].__setitem__("subnets", {}), "network.subnets"),
        (lambda j: j["network"]["meta"].__setitem__("bad", float("nan")), "network.meta.bad"),
        (
            lambda j: j["network"]["subnets"][1].__setitem__("cidr", "10.0.0.0/8"),
            "network.subnets[1].cidr",
        ),
        (
            lambda j: j["network"]["subnets"][0].__setitem__("cidr", "nonsense"),
            "network.subnets[0].cidr",
        ),
        (
            lambda j: j["network"]["subnets"][0].__setitem__("version", True),
            "network.subnets[0].version",
        ),
        (
            lambda j: j["network"]["subnets"][0]["ips"][1].__setitem__("address", "10.0.0.300"),
            "network.subnets[0].ips[1].address",
        ),
        (
            lambda j: j["network"]["subnets"][0]["ips"][0]["floating_ips"][1].__setitem__(
                "version", 6
            ),
            "network.subnets[0].ips[0].floating_ips[1].address",
        ),
        (
            lambda j: j["network"]["subnets"][0]["routes"][0]["gateway"].__setitem__(
                "address", None
            ),
            "network.subnets[0].routes[0].gateway.address",
        ),
        (
            lambda j: j["network"]["subnets"][0]["gateway"].pop("meta"),
            "network.subnets[0].gateway.meta",
        ),
        (
            lambda j: j["network"]["subnets"][0]["dns"].__setitem__(0, "10.0.0.2"),
            "network.subnets[0].dns[0]",
        ),
    ],
)
def test_malformed_json_names_the_field(change: Any, field: str) -> None:
    with pytest.raises(ModelError) as caught:
        VIF.from_json(_broken(change), "[4]")
    assert caught.value.field == f"[4].{field}"
    assert str(caught.value).startswith(f"[4].{field}: ")
    assert isinstance(caught.value, ValueError)


def test_a_vif_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ModelError, match="expected a VIF"):
        VIF.from_json(["not", "a", "vif"])


def test_extra_may_not_shadow_a_known_key() -> None:
    with pytest.raises(ModelError, match="known field"):
        IP(address="192.0.2.1", type="dns", version=4, extra={"address": "x"})


def test_hand_built_values_are_validated() -> None:
    with pytest.raises(ModelError, match="IPv4, not IPv6"):
        IP(address="192.0.2.1", type="dns", version=6)
    with pytest.raises(ModelError, match="version"):
        FixedIP(address="192.0.2.1", version=5)
    with pytest.raises(ModelError, match="ips"):
        Subnet(cidr="192.0.2.0/24", version=4, gateway=None, ips=("192.0.2.1",))  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="null address"):
        Subnet(cidr="192.0.2.0/24", version=4, gateway=None, absent_gateway={"type": "gateway"})
    with pytest.raises(ModelError, match="network"):
        VIF(id="p", address="fa:16:3e:00:00:01", network=None, type="ovs")  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="not a JSON value"):
        _net(meta={"s": {1, 2}})
    with pytest.raises(ModelError, match="keys must be strings"):
        _net(meta={1: "x"})


def test_values_survive_pickle_and_deepcopy() -> None:
    vif = VIF.from_json(nova_vif_json())
    assert pickle.loads(pickle.dumps(vif)) == vif
    assert copy.deepcopy(vif) == vif
