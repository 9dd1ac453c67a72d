"""Test data of the model's unit tests: recorded Neutron samples, hand-written Nova-shaped
network_info JSON and hypothesis strategies generating any valid VIF JSON."""

from __future__ import annotations

import copy
import ipaddress
import json
from functools import cache
from pathlib import Path
from typing import Any, Literal

from hypothesis import strategies as st

from hotport.model import IP, VIF, FixedIP, Network, Route, Subnet

SAMPLES = Path(__file__).resolve().parents[2] / "conformance" / "samples" / "neutron-29.json"


@cache
def _samples() -> dict[str, Any]:
    data = json.loads(SAMPLES.read_text())
    return {sample["label"]: sample["body"] for sample in data["samples"]}


def sample(label: str, key: str) -> Any:
    """A deep copy of the recorded response body `label`, unwrapped from `key`."""
    return copy.deepcopy(_samples()[label][key])


def recorded_port() -> dict[str, Any]:
    port: dict[str, Any] = sample("create bound port", "port")
    return port


def recorded_network() -> dict[str, Any]:
    network: dict[str, Any] = sample("show network", "network")
    return network


def recorded_subnets() -> list[dict[str, Any]]:
    subnets: list[dict[str, Any]] = sample("list subnets by network", "subnets")
    return subnets


def recorded_floating_ip() -> dict[str, Any]:
    fip: dict[str, Any] = sample("create floatingip (port_id of a compute port)", "floatingip")
    return fip


# -- hand-written Nova-shaped JSON ------------------------------------------------------


def nova_vif_json() -> dict[str, Any]:
    """A dual-stack OVS VIF as Nova writes it, with unknown keys at every level."""
    return {
        "id": "5e1a9a3c-0b7e-4c1d-9f0a-6f3b2d1c0e9a",
        "address": "fa:16:3e:12:34:56",
        "network": {
            "id": "0d9c6f6e-2b5a-4d7e-8a3c-1f2e3d4c5b6a",
            "bridge": "br-int",
            "label": "private",
            "subnets": [
                {
                    "cidr": "10.0.0.0/24",
                    "dns": [
                        {"address": "10.0.0.2", "type": "dns", "version": 4, "meta": {}},
                        {
                            "address": "9.9.9.9",
                            "type": "dns",
                            "version": 4,
                            "meta": {"note": "public"},
                            "x_dns_extra": [1, 2, {"deep": None}],
                        },
                    ],
                    "gateway": {
                        "address": "10.0.0.1",
                        "type": "gateway",
                        "version": 4,
                        "meta": {},
                        "x_gw_extra": "kept",
                    },
                    "ips": [
                        {
                            "address": "10.0.0.5",
                            "type": "fixed",
                            "version": 4,
                            "meta": {},
                            "floating_ips": [
                                {
                                    "address": "203.0.113.7",
                                    "type": "floating",
                                    "version": 4,
                                    "meta": {},
                                    "x_fip_extra": {"a": True},
                                },
                                {
                                    "address": "203.0.113.8",
                                    "type": "floating",
                                    "version": 4,
                                    "meta": {},
                                },
                            ],
                        },
                        {
                            "address": "10.0.0.6",
                            "type": "fixed",
                            "version": 4,
                            "meta": {"x": 1},
                            "floating_ips": [],
                            "x_fixed_extra": 3.5,
                        },
                    ],
                    "routes": [
                        {
                            "cidr": "172.16.0.0/16",
                            "gateway": {
                                "address": "10.0.0.254",
                                "type": "gateway",
                                "version": 4,
                                "meta": {},
                            },
                            "interface": None,
                            "meta": {},
                            "x_route_extra": None,
                        }
                    ],
                    "version": 4,
                    "meta": {"dhcp_server": "10.0.0.2"},
                    "x_subnet_extra": {"k": ["v"]},
                },
                {
                    "cidr": "2001:db8:1::/64",
                    "dns": [{"address": "2001:db8:1::53", "type": "dns", "version": 6, "meta": {}}],
                    "gateway": {
                        "address": "2001:db8:1::1",
                        "type": "gateway",
                        "version": 6,
                        "meta": {},
                    },
                    "ips": [
                        {
                            "address": "2001:db8:1::f816:3eff:fe12:3456",
                            "type": "fixed",
                            "version": 6,
                            "meta": {},
                            "floating_ips": [],
                        }
                    ],
                    "routes": [
                        {
                            "cidr": "2001:db8:ffff::/48",
                            "gateway": {
                                "address": "2001:db8:1::fe",
                                "type": "gateway",
                                "version": 6,
                                "meta": {},
                            },
                            "interface": "eth0",
                            "meta": {"m": 1},
                        }
                    ],
                    "version": 6,
                    "meta": {"ipv6_address_mode": "slaac", "dhcp_server": "2001:db8:1::2"},
                },
                {
                    "cidr": "192.168.50.0/24",
                    "dns": [],
                    "gateway": {"address": None, "type": "gateway", "version": None, "meta": {}},
                    "ips": [
                        {
                            "address": "192.168.50.9",
                            "type": "fixed",
                            "version": 4,
                            "meta": {},
                            "floating_ips": [],
                        }
                    ],
                    "routes": [],
                    "version": 4,
                    "meta": {},
                },
            ],
            "meta": {
                "injected": False,
                "tenant_id": "6b1f0ad4a1b24c4f8d6f0c0d0d0d0d0d",
                "mtu": 1450,
                "physical_network": None,
                "tunneled": True,
                "x_net_meta": "kept",
            },
            "should_create_bridge": False,
            "x_net_extra": [None, False, 0],
        },
        "type": "ovs",
        "details": {
            "port_filter": True,
            "ovs_hybrid_plug": False,
            "connectivity": "l2",
            "bridge_name": "br-int",
            "datapath_type": "system",
            "bound_drivers": {"0": "openvswitch"},
        },
        "devname": "tap5e1a9a3c-0b",
        "ovs_interfaceid": "5e1a9a3c-0b7e-4c1d-9f0a-6f3b2d1c0e9a",
        "qbh_params": None,
        "qbg_params": None,
        "active": True,
        "vnic_type": "normal",
        "profile": {"trusted": "true", "capabilities": ["switchdev"]},
        "preserve_on_delete": True,
        "delegate_create": False,
        "meta": {"tag": "nic1", "hotport_note": {"nested": [1, {"x": None}]}},
        "x_vif_extra": "kept at the top",
    }


# -- hypothesis strategies --------------------------------------------------------------

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=5,
)
json_object = st.dictionaries(st.text(max_size=8), json_value, max_size=3)
versions: st.SearchStrategy[Literal[4, 6]] = st.sampled_from([4, 6])


def extra_keys(known: frozenset[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Unknown keys (not among `known`) with any JSON values."""
    return st.dictionaries(
        st.text(min_size=1, max_size=10).filter(lambda key: key not in known),
        json_value,
        max_size=2,
    )


@st.composite
def addresses(draw: st.DrawFn, version: Literal[4, 6] | None = None) -> tuple[str, int]:
    v = version if version is not None else draw(versions)
    return str(draw(st.ip_addresses(v=v))), v


@st.composite
def cidrs(draw: st.DrawFn, version: Literal[4, 6] | None = None) -> tuple[str, int]:
    address, v = draw(addresses(version))
    prefix = draw(st.integers(min_value=0, max_value=32 if v == 4 else 128))
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False)), v


@st.composite
def ip_json(draw: st.DrawFn, kind: str | None = None) -> dict[str, Any]:
    address, version = draw(addresses())
    return {
        "address": address,
        "type": kind if kind is not None else draw(st.text(max_size=8)),
        "version": version,
        "meta": draw(json_object),
        **draw(extra_keys(IP.KEYS)),
    }


@st.composite
def fixed_ip_json(draw: st.DrawFn) -> dict[str, Any]:
    address, version = draw(addresses())
    return {
        "address": address,
        "type": draw(st.just("fixed") | st.text(max_size=5)),
        "version": version,
        "meta": draw(json_object),
        "floating_ips": draw(st.lists(ip_json("floating"), max_size=2)),
        **draw(extra_keys(FixedIP.KEYS)),
    }


@st.composite
def route_json(draw: st.DrawFn) -> dict[str, Any]:
    cidr, _ = draw(cidrs())
    return {
        "cidr": cidr,
        "gateway": draw(st.none() | ip_json("gateway")),
        "interface": draw(st.none() | st.text(max_size=6)),
        "meta": draw(json_object),
        **draw(extra_keys(Route.KEYS)),
    }


@st.composite
def absent_gateway_json(draw: st.DrawFn) -> dict[str, Any] | None:
    """A missing gateway: JSON null or Nova's null-address IP (possibly with more keys)."""
    if draw(st.booleans()):
        return None
    return {
        "address": None,
        "type": "gateway",
        "version": draw(st.none() | versions),
        "meta": draw(json_object),
        **draw(extra_keys(IP.KEYS)),
    }


@st.composite
def subnet_json(draw: st.DrawFn) -> dict[str, Any]:
    cidr, version = draw(cidrs())
    return {
        "cidr": cidr,
        "dns": draw(st.lists(ip_json("dns"), max_size=2)),
        "gateway": draw(ip_json("gateway") | absent_gateway_json()),
        "ips": draw(st.lists(fixed_ip_json(), max_size=2)),
        "routes": draw(st.lists(route_json(), max_size=2)),
        "version": version,
        "meta": draw(json_object),
        **draw(extra_keys(Subnet.KEYS)),
    }


@st.composite
def network_json(draw: st.DrawFn) -> dict[str, Any]:
    meta = draw(json_object)
    if draw(st.booleans()):
        meta["mtu"] = draw(st.none() | st.integers(min_value=68, max_value=9216))
    return {
        "id": draw(st.uuids()).hex if draw(st.booleans()) else str(draw(st.uuids())),
        "bridge": draw(st.none() | st.text(max_size=14)),
        "label": draw(st.text(max_size=10)),
        "subnets": draw(st.lists(subnet_json(), max_size=2)),
        "meta": meta,
        **draw(extra_keys(Network.KEYS)),
    }


@st.composite
def vif_json(draw: st.DrawFn, port_id: str | None = None) -> dict[str, Any]:
    pid = port_id if port_id is not None else str(draw(st.uuids()))
    return {
        "id": pid,
        "address": draw(st.sampled_from(["fa:16:3e:00:00:01", "52:54:00:ab:cd:ef"])),
        "network": draw(network_json()),
        "type": draw(st.sampled_from(["ovs", "bridge", "tap", "vhostuser", "unbound", ""])),
        "details": draw(json_object),
        "devname": draw(st.just("tap" + pid[:11]) | st.text(min_size=1, max_size=14)),
        "ovs_interfaceid": draw(st.none() | st.just(pid)),
        "qbh_params": draw(st.none() | json_object),
        "qbg_params": draw(st.none() | json_object),
        "active": draw(st.booleans()),
        "vnic_type": draw(st.sampled_from(["normal", "direct", "macvtap"])),
        "profile": draw(json_object),
        "preserve_on_delete": draw(st.booleans()),
        "delegate_create": draw(st.booleans()),
        "meta": draw(json_object | st.builds(lambda tag: {"tag": tag}, st.text(max_size=8))),
        **draw(extra_keys(VIF.KEYS)),
    }
