"""`VifTemplate`: its text is exactly the builder's JSON text, and `matches` never says
"in line" where decoding and building would not."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_testdata import recorded_floating_ip, recorded_network, recorded_port, recorded_subnets

from hotport.model import ModelError, build_vif
from hotport.model.build import PORT_FIELDS
from hotport.model.vifcheck import VifTemplate

SUBNET_ID = "861c050b-49f9-42dc-b30a-f10df4948d91"
V6_SUBNET_ID = "5b0c3a52-7e8d-4f1a-9b6c-2d3e4f5a6b7c"


def _v6_subnet() -> dict[str, Any]:
    subnet = recorded_subnets()[0]
    subnet.update(
        {
            "id": V6_SUBNET_ID,
            "ip_version": 6,
            "cidr": "2001:db8:a::/64",
            "gateway_ip": "2001:db8:a::1",
            "ipv6_address_mode": "slaac",
            "dns_nameservers": ["2001:db8:a::53"],
            "host_routes": [{"destination": "2001:db8:f::/48", "nexthop": "2001:db8:a::fe"}],
        }
    )
    return subnet


def _args(port: dict[str, Any], fips: list[dict[str, Any]]) -> tuple[Any, ...]:
    """`VifTemplate.parts` arguments for a Neutron port, as the heal passes them."""
    return (
        port["id"],
        port.get("mac_address"),
        port.get("binding:vif_type"),
        port.get("binding:vif_details") or {},
        port.get("binding:vnic_type"),
        port.get("binding:profile") or {},
        [(ip["subnet_id"], ip["ip_address"]) for ip in port.get("fixed_ips") or ()],
        fips,
    )


def _built_text(
    port: dict[str, Any],
    network: dict[str, Any],
    subnets: list[dict[str, Any]],
    fips: list[dict[str, Any]],
    *,
    preserve: bool,
    tag: str | None,
) -> str | None:
    try:
        vif = build_vif(port, network, subnets, fips, preserve_on_delete=preserve, tag=tag)
    except ModelError:
        return None
    return json.dumps(vif.to_json())


# -- what varies -----------------------------------------------------------------------

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(-2, 2), text)
json_obj = st.dictionaries(text, st.one_of(json_scalar, st.lists(json_scalar, max_size=2)))
vif_type = st.sampled_from(
    ["ovs", "agilio_ovs", "bridge", "tap", "hw_veb", "dvs", "vhostuser", "unbound", ""]
)
details = st.fixed_dictionaries(
    {},
    optional={
        "bridge_name": st.sampled_from(["br-int", "br-a-very-long-bridge-name", "", 5]),
        "vhostuser_ovs_plug": st.sampled_from([True, False, 1]),
        "vhostuser_fp_plug": st.sampled_from([True, 1]),
        "port_filter": st.booleans(),
        "extra": json_obj,
    },
)
fixed = st.lists(
    st.sampled_from(
        [
            (SUBNET_ID, "192.0.2.157"),
            (SUBNET_ID, "192.0.2.225"),
            (SUBNET_ID, "192.0.2.157"),  # the same address twice: listed once
            (V6_SUBNET_ID, "2001:db8:a::10"),
            (V6_SUBNET_ID, "2001:DB8:A::10"),
            (SUBNET_ID, "198.51.100.1"),  # not in its subnet: the builder refuses
            ("no-such-subnet", "192.0.2.9"),
        ]
    ),
    max_size=4,
)


@st.composite
def case(draw: st.DrawFn) -> dict[str, Any]:
    port = recorded_port()
    port["binding:vif_type"] = draw(vif_type)
    port["binding:vif_details"] = draw(st.one_of(st.none(), details))
    port["binding:profile"] = draw(st.one_of(st.none(), json_obj))
    port["binding:vnic_type"] = draw(st.sampled_from([None, "normal", "direct"]))
    port["fixed_ips"] = [{"subnet_id": s, "ip_address": a} for s, a in draw(fixed)]
    if draw(st.booleans()):
        port.pop("binding:vnic_type")
    network = recorded_network()
    network["mtu"] = draw(st.sampled_from([None, 1450, 9000]))
    network["name"] = draw(st.one_of(st.none(), text))
    if draw(st.booleans()):
        network["segments"] = [
            {"provider:network_type": "vxlan", "provider:physical_network": None},
            {"provider:network_type": "vlan", "provider:physical_network": draw(text) or None},
        ]
    subnets = [recorded_subnets()[0], _v6_subnet()]
    subnets[0]["gateway_ip"] = draw(st.sampled_from(["192.0.2.1", None]))
    subnets[0]["dns_nameservers"] = draw(st.sampled_from([[], ["192.0.2.53", "9.9.9.9"]]))
    fip = recorded_floating_ip()
    fip["port_id"] = port["id"]
    fips = draw(
        st.lists(
            st.sampled_from(
                [
                    fip,
                    {**fip, "floating_ip_address": "203.0.113.9"},
                    {**fip, "fixed_ip_address": "192.0.2.157"},
                    {**fip, "port_id": "someone-else"},
                    {**fip, "fixed_ip_address": "2001:db8:a:0::10"},
                ]
            ),
            max_size=3,
        )
    )
    return {
        "port": port,
        "network": network,
        "subnets": subnets,
        "fips": copy.deepcopy(fips),
        "preserve": draw(st.booleans()),
        "tag": draw(st.one_of(st.none(), text)),
        "active": draw(st.booleans()),
    }


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case())
def test_the_template_text_is_the_builders_text(c: dict[str, Any]) -> None:
    built = _built_text(
        c["port"], c["network"], c["subnets"], c["fips"], preserve=c["preserve"], tag=c["tag"]
    )
    template = VifTemplate(c["network"], c["subnets"])
    args = _args(c["port"], c["fips"])
    if built is None:
        return  # the builder refuses: the heal skips the port whatever the template says
    active = json.loads(built)["active"]
    assert template.text(*args, active=active, preserve_on_delete=c["preserve"], tag=c["tag"]) == (
        built
    )
    assert template.matches(built, *args)
    # the link status is free; everything else is compared
    flipped = json.dumps({**json.loads(built), "active": not active})
    assert template.matches(flipped, *args)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case(), case())
def test_a_match_implies_the_heal_would_find_the_row_in_line(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    """A row built from one state, checked against another: `matches` may only say yes
    when the VIF built from the second state equals it (up to `active`)."""
    stored = _built_text(
        a["port"], a["network"], a["subnets"], a["fips"], preserve=a["preserve"], tag=a["tag"]
    )
    if stored is None:
        return
    row = json.loads(stored)
    now = _built_text(
        b["port"],
        b["network"],
        b["subnets"],
        b["fips"],
        preserve=row["preserve_on_delete"],
        tag=(row["meta"] or {}).get("tag"),
    )
    template = VifTemplate(b["network"], b["subnets"])
    if template.matches(stored, *_args(b["port"], b["fips"])) and now is not None:
        assert {**json.loads(now), "active": None} == {**row, "active": None}


def _in_line() -> tuple[VifTemplate, tuple[Any, ...], dict[str, Any]]:
    port, network, subnets = recorded_port(), recorded_network(), recorded_subnets()
    vif = build_vif(port, network, subnets, [], preserve_on_delete=True, tag="nic-1").to_json()
    return VifTemplate(network, subnets), _args(port, []), vif


def test_drift_that_keeps_the_port_revision_is_seen() -> None:
    template, args, vif = _in_line()
    assert template.matches(json.dumps(vif), *args)
    # a new MTU (the network's revision, not the port's)
    network = recorded_network() | {"mtu": 1400}
    assert not VifTemplate(network, recorded_subnets()).matches(json.dumps(vif), *args)
    # a floating IP associated meanwhile
    fip = recorded_floating_ip() | {"port_id": args[0], "fixed_ip_address": "192.0.2.157"}
    assert not template.matches(json.dumps(vif), *args[:-1], [fip])
    # a new DNS server on the subnet
    subnets = recorded_subnets()
    subnets[0]["dns_nameservers"] = ["192.0.2.53"]
    assert not VifTemplate(recorded_network(), subnets).matches(json.dumps(vif), *args)


@pytest.mark.parametrize(
    "change",
    [
        lambda v: {**v, "unknown": 1},  # a key the builder does not write
        lambda v: {**v, "meta": {"tag": "nic-1", "other": 2}},
        lambda v: {**v, "meta": {"tag": None}},
        lambda v: {**v, "preserve_on_delete": None},
        lambda v: {**v, "active": None},
        lambda v: dict(reversed(list(v.items()))),  # other key order: decode to know
        lambda v: {**v, "devname": "tap-other"},
    ],
)
def test_anything_unusual_is_left_to_the_builder(change: Any) -> None:
    template, args, vif = _in_line()
    assert not template.matches(json.dumps(change(vif)), *args)


def test_preserve_and_tag_come_from_the_row() -> None:
    template, args, vif = _in_line()
    for preserve in (True, False):
        for tag in (None, "x", 'a", "b', "ünï", "\\"):
            row = {
                **vif,
                "preserve_on_delete": preserve,
                "meta": {} if tag is None else {"tag": tag},
            }
            assert template.matches(json.dumps(row), *args)


def test_an_equal_details_value_spelt_otherwise_is_still_in_line() -> None:
    """The heal compares decoded VIFs ({"a": 1} == {"a": 1.0}): so does the memo of the
    last `binding:vif_details` matched."""
    port, network, subnets = recorded_port(), recorded_network(), recorded_subnets()
    port["binding:vif_details"] = {"port_filter": True, "weight": 1}
    vif = build_vif(port, network, subnets, [], preserve_on_delete=True).to_json()
    template = VifTemplate(network, subnets)
    assert template.matches(json.dumps(vif), *_args(port, []))
    other = copy.deepcopy(port)
    other["binding:vif_details"] = {"port_filter": True, "weight": 1.0}
    assert template.matches(json.dumps(vif), *_args(other, []))
    assert not template.matches(
        json.dumps(vif), *_args(other | {"binding:vif_details": {"port_filter": False}}, [])
    )


def test_a_network_the_builder_refuses_never_matches() -> None:
    _, args, vif = _in_line()
    assert not VifTemplate({"id": 5}, recorded_subnets()).matches(json.dumps(vif), *args)
    assert not VifTemplate(recorded_network() | {"mtu": "big"}, []).matches(json.dumps(vif), *args)


def test_port_fields_are_all_the_builder_reads() -> None:
    port, network, subnets = recorded_port(), recorded_network(), recorded_subnets()
    fip = recorded_floating_ip() | {"port_id": port["id"], "fixed_ip_address": "192.0.2.157"}
    listed = {k: v for k, v in port.items() if k in PORT_FIELDS}
    whole = build_vif(port, network, subnets, [fip], preserve_on_delete=False, tag="t")
    assert build_vif(listed, network, subnets, [fip], preserve_on_delete=False, tag="t") == whole
