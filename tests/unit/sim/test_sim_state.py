"""The simulator's pure core: state.py (and schema.py) driven directly, no HTTP."""

# ruff: noqa: E501  (request/response tables read better unwrapped)

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotport.sim.errors import SimError
from hotport.sim.schema import parse_body
from hotport.sim.state import SimState, is_compute_port, vif_details_for

P = "6b1f0ad4a1b24c4f8d6f0c0d0d0d0d0d"
SERVER = "cbdaac4d-6b0a-472c-be0f-61630c91d774"


def make(vif_type: str = "ovs", seed: int = 1) -> SimState:
    return SimState(vif_type=vif_type, seed=seed, now=lambda: "2026-01-01T00:00:00Z")


def body(state: SimState, kind: str, create: bool = True, **attrs: Any) -> dict[str, Any]:
    attrs.setdefault("project_id", P) if create else None
    return parse_body(kind, {kind: attrs}, create=create, default_project=state.default_project)


def net_and_subnet(s: SimState, cidr: str = "192.0.2.0/24", **net: Any) -> tuple[str, str]:
    n, _ = s.create_network(body(s, "network", **net))
    version = ipaddress.ip_network(cidr).version
    sub, _ = s.create_subnet(body(s, "subnet", network_id=n["id"], cidr=cidr, ip_version=version))
    return n["id"], sub["id"]


def port(s: SimState, net_id: str, **attrs: Any) -> tuple[dict[str, Any], Any]:
    return s.create_port(body(s, "port", network_id=net_id, **attrs))


def compute_attrs(host: str = "compute-1") -> dict[str, Any]:
    return {"device_id": SERVER, "device_owner": "compute:nova", "binding:host_id": host}


def err(exc: pytest.ExceptionInfo[SimError]) -> tuple[int, str, str]:
    return exc.value.status, exc.value.type, exc.value.message


# ------------------------------------------------------------------ networks / subnets
def test_network_revision_and_subnet_list_follow_subnets() -> None:
    s = make()
    n, _ = s.create_network(body(s, "network", name="n"))
    assert n["revision_number"] == 1
    assert n["subnets"] == []
    assert n["mtu"] == 1500
    assert n["provider:network_type"] == "vlan"
    assert 1000 <= n["provider:segmentation_id"] < 2000
    sub, _ = s.create_subnet(
        body(s, "subnet", network_id=n["id"], cidr="192.0.2.0/24", ip_version=4)
    )
    assert sub["revision_number"] == 0
    assert sub["gateway_ip"] == "192.0.2.1"
    assert sub["allocation_pools"] == [{"start": "192.0.2.2", "end": "192.0.2.254"}]
    got = s.get("network", n["id"])
    assert got["subnets"] == [sub["id"]]
    assert got["revision_number"] == 2
    assert "is_default" not in got  # only external networks (and create responses) show it
    s.delete_subnet(sub["id"])
    assert s.get("network", n["id"])["subnets"] == []


def test_ipv6_subnet_defaults_like_neutron() -> None:
    s = make()
    _net, _ = net_and_subnet(s, "2001:db8::/64")
    sub = s.list_all("subnet")[0]
    assert sub["gateway_ip"] == "2001:db8::"
    assert sub["allocation_pools"] == [
        {"start": "2001:db8::1", "end": "2001:db8::ffff:ffff:ffff:ffff"}
    ]


def test_subnet_errors() -> None:
    s = make()
    net, _ = net_and_subnet(s)
    with pytest.raises(SimError) as e:
        s.create_subnet(body(s, "subnet", network_id=net, cidr="192.0.2.0/25", ip_version=4))
    assert err(e)[:2] == (400, "InvalidInput")
    assert "overlaps with another subnet" in err(e)[2]
    with pytest.raises(SimError) as e:
        s.create_subnet(body(s, "subnet", network_id=net, cidr="10.0.0.0/24", ip_version=6))
    assert err(e)[2] == (
        "Invalid input for operation: cidr '10.0.0.0/24' does not match the ip_version '6'."
    )
    with pytest.raises(SimError) as e:
        s.create_subnet(body(s, "subnet", network_id=net, ip_version=4))
    assert err(e) == (
        400,
        "BadRequest",
        "Bad subnets request: a subnetpool must be specified in the absence of a cidr.",
    )


def test_mtu_limits() -> None:
    s = make()
    assert s.create_network(body(s, "network", mtu=1400))[0]["mtu"] == 1400
    with pytest.raises(SimError) as e:
        s.create_network(body(s, "network", mtu=9000))
    assert err(e) == (
        400,
        "InvalidInput",
        "Invalid input for operation: Requested MTU is too big, maximum is 1500.",
    )


# ------------------------------------------------------------------ ports: addresses
def test_default_allocation_one_v4_one_v6_and_slaac() -> None:
    s = make()
    n, _ = s.create_network(body(s, "network"))
    for cidr, ver in (("192.0.2.0/24", 4), ("198.51.100.0/24", 4), ("2001:db8::/64", 6)):
        s.create_subnet(body(s, "subnet", network_id=n["id"], cidr=cidr, ip_version=ver))
    s.create_subnet(
        body(
            s,
            "subnet",
            network_id=n["id"],
            cidr="2001:db8:1::/64",
            ip_version=6,
            ipv6_address_mode="slaac",
            ipv6_ra_mode="slaac",
        )
    )
    p, _ = port(s, n["id"], mac_address="fa:16:3e:00:00:01")
    ips = [ipaddress.ip_address(ip["ip_address"]) for ip in p["fixed_ips"]]
    assert [ip.version for ip in ips] == [4, 6, 6]
    assert ips[0] in ipaddress.ip_network("192.0.2.0/24")  # first IPv4 subnet only
    assert str(ips[2]) == "2001:db8:1:0:f816:3eff:fe00:1"  # EUI-64 from the MAC


def test_requested_addresses_and_conflicts() -> None:
    s = make()
    net, sub = net_and_subnet(s)
    p, _ = port(s, net, fixed_ips=[{"ip_address": "192.0.2.77"}])
    assert p["fixed_ips"] == [{"subnet_id": sub, "ip_address": "192.0.2.77"}]
    with pytest.raises(SimError) as e:
        port(s, net, fixed_ips=[{"ip_address": "192.0.2.77"}])
    assert err(e) == (
        409,
        "IpAddressAlreadyAllocated",
        f"IP address 192.0.2.77 already allocated in subnet {sub}",
    )
    with pytest.raises(SimError) as e:
        port(s, net, fixed_ips=[{"ip_address": "10.1.1.1"}])
    assert err(e)[:2] == (400, "InvalidIpForNetwork")
    with pytest.raises(SimError) as e:
        port(s, net, fixed_ips=[{"ip_address": "192.0.2.255"}])
    assert err(e)[:2] == (400, "InvalidIpForNetwork")
    with pytest.raises(SimError) as e:
        port(s, net, fixed_ips=[{"subnet_id": str(uuid.uuid4())}])
    assert err(e)[:2] == (404, "SubnetNotFound")
    with pytest.raises(SimError) as e:
        port(s, net, fixed_ips=[{"foo": "x"}])
    assert err(e)[2] == (
        "Invalid input for operation: IP allocation requires subnet_id or ip_address."
    )
    # the gateway address may be asked for explicitly, as on the real server
    assert (
        port(s, net, fixed_ips=[{"ip_address": "192.0.2.1"}])[0]["fixed_ips"][0]["ip_address"]
        == "192.0.2.1"
    )


def test_pool_exhaustion() -> None:
    s = make()
    net, _ = net_and_subnet(s, "192.0.2.0/29")  # pool .2 - .6: 5 addresses
    for _ in range(5):
        port(s, net)
    with pytest.raises(SimError) as e:
        port(s, net)
    assert err(e) == (
        409,
        "IpAddressGenerationFailure",
        f"No more IP addresses available on network {net}.",
    )


def test_mac_in_use_and_normalized() -> None:
    s = make()
    net, _ = net_and_subnet(s)
    p, _ = port(s, net, mac_address="FA:16:3E:AA:BB:CC")
    assert p["mac_address"] == "fa:16:3e:aa:bb:cc"
    with pytest.raises(SimError) as e:
        port(s, net, mac_address="fa:16:3e:aa:bb:cc")
    assert err(e) == (
        409,
        "MacAddressInUse",
        f"Unable to complete operation for network {net}. The mac address fa:16:3e:aa:bb:cc "
        "is in use.",
    )


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(1, 40))
def test_allocated_addresses_and_macs_are_unique(seed: int, n: int) -> None:
    s = make(seed=seed)
    net, _ = net_and_subnet(s, "192.0.2.0/26")  # 61 addresses
    ports = [port(s, net)[0] for _ in range(n)]
    ips = [p["fixed_ips"][0]["ip_address"] for p in ports]
    assert len(set(ips)) == n
    assert len({p["mac_address"] for p in ports}) == n
    pool = ipaddress.ip_network("192.0.2.0/26")
    for ip in map(ipaddress.ip_address, ips):
        assert ip in pool
        assert ip not in (pool.network_address + 1, pool.broadcast_address)


# ------------------------------------------------------------------ ports: updates
def test_revision_rules() -> None:
    s = make()
    net, _sub = net_and_subnet(s)
    p, _ = port(s, net, name="a")
    assert p["revision_number"] == 1
    p, _ = s.update_port(p["id"], {"name": "a"})  # no-op: no bump
    assert p["revision_number"] == 1
    p, _ = s.update_port(p["id"], {})
    assert p["revision_number"] == 1
    p, _ = s.update_port(p["id"], {"name": "b"})
    assert p["revision_number"] == 2
    p, _ = s.update_port(p["id"], compute_attrs())  # bind: +3 like ML2
    assert p["revision_number"] == 5
    assert p["binding:vif_details"]["bound_drivers"] == {"0": "openvswitch"}
    p, _ = s.update_port(p["id"], {"name": "c"})  # no rebind: bound_drivers not in response
    assert p["revision_number"] == 6
    assert "bound_drivers" not in p["binding:vif_details"]
    assert s.get("port", p["id"])["binding:vif_details"]["bound_drivers"] == {"0": "openvswitch"}
    p, _ = s.update_port(p["id"], {"binding:host_id": "compute-1"})  # same host: no-op
    assert p["revision_number"] == 6
    p, _ = s.update_port(p["id"], {"binding:host_id": ""})  # unbind: +1
    assert p["revision_number"] == 7
    assert (p["binding:vif_type"], p["binding:vif_details"]) == ("unbound", {})
    created_bound, _ = port(s, net, **compute_attrs())
    assert created_bound["revision_number"] == 3


def test_if_match() -> None:
    s = make()
    net, _ = net_and_subnet(s)
    p, _ = port(s, net)
    with pytest.raises(SimError) as e:
        s.update_port(p["id"], {"name": "x"}, if_match=6)
    assert err(e) == (
        412,
        "RevisionNumberConstraintFailed",
        "Constrained to 6, but current revision is 1",
    )
    assert s.get("port", p["id"])["name"] == ""
    with pytest.raises(SimError):
        s.delete_port(p["id"], if_match=0)
    assert s.update_port(p["id"], {"name": "x"}, if_match=1)[0]["revision_number"] == 2
    s.delete_port(p["id"], if_match=2)
    assert not s.exists("port", p["id"])


def test_mac_update_of_bound_port_is_refused() -> None:
    s = make()
    net, _ = net_and_subnet(s)
    p, _ = port(s, net)
    assert s.update_port(p["id"], {"mac_address": "fa:16:3e:00:11:22"})[0]["revision_number"] == 2
    s.update_port(p["id"], compute_attrs())
    with pytest.raises(SimError) as e:
        s.update_port(p["id"], {"mac_address": "fa:16:3e:00:11:23"})
    assert err(e)[:2] == (409, "PortBound")
    assert "old_mac fa:16:3e:00:11:22, new_mac fa:16:3e:00:11:23." in err(e)[2]


def test_fixed_ips_update_replaces_the_list() -> None:
    s = make()
    net, sub = net_and_subnet(s)
    p, _ = port(s, net)
    old = p["fixed_ips"][0]["ip_address"]
    p, _ = s.update_port(p["id"], {"fixed_ips": [{"subnet_id": sub, "ip_address": "192.0.2.50"}]})
    assert p["fixed_ips"] == [{"subnet_id": sub, "ip_address": "192.0.2.50"}]
    other, _ = port(s, net, fixed_ips=[{"ip_address": old}])  # the old address is free again
    assert other["fixed_ips"][0]["ip_address"] == old
    with pytest.raises(SimError) as e:
        s.update_port(p["id"], {"fixed_ips": [{"ip_address": old}]})
    assert err(e)[:2] == (409, "IpAddressAlreadyAllocated")


@pytest.mark.parametrize("vif_type", ["ovs", "bridge", "tap"])
def test_vif_types(vif_type: str) -> None:
    s = make(vif_type)
    net, _ = net_and_subnet(s)
    p, _ = port(s, net, **compute_attrs())
    details, driver = vif_details_for(vif_type)
    assert p["binding:vif_type"] == vif_type
    assert p["binding:vif_details"] == {**details, "bound_drivers": {"0": driver}}
    unbound, _ = port(s, net)
    assert (unbound["binding:vif_type"], unbound["binding:vif_details"]) == ("unbound", {})


def test_ovs_vif_details_are_the_recorded_keys() -> None:
    details, driver = vif_details_for("ovs")
    assert set(details) | {"bound_drivers"} == {
        "port_filter",
        "ovs_hybrid_plug",
        "connectivity",
        "bridge_name",
        "datapath_type",
        "bound_drivers",
    }
    assert driver == "openvswitch"


# ------------------------------------------------------------------ events
def test_is_compute_port() -> None:
    assert is_compute_port({"device_id": SERVER, "device_owner": "compute:nova"})
    assert not is_compute_port({"device_id": "not-a-uuid", "device_owner": "compute:nova"})
    assert not is_compute_port({"device_id": SERVER, "device_owner": "network:dhcp"})
    assert not is_compute_port({"device_id": "", "device_owner": ""})


def test_events_of_port_updates() -> None:
    s = make()
    net, _ = net_and_subnet(s)
    p, change = port(s, net)
    assert change.events == []
    assert change.bound == []
    p, change = s.update_port(p["id"], compute_attrs())
    assert change.events == [{"name": "network-changed", "server_uuid": SERVER, "tag": p["id"]}]
    assert change.bound == [(p["id"], 1)]
    _, change = s.update_port(p["id"], {"name": "renamed"})  # even a rename
    assert [e["name"] for e in change.events] == ["network-changed"]
    _, change = s.update_port(p["id"], {"name": "renamed"})  # and a no-op update
    assert [e["name"] for e in change.events] == ["network-changed"]
    _, change = s.set_port_status(p["id"], "ACTIVE")
    assert change.events == [
        {
            "name": "network-vif-plugged",
            "server_uuid": SERVER,
            "tag": p["id"],
            "status": "completed",
        }
    ]
    _, change = s.set_port_status(p["id"], "ACTIVE")  # no change, no event
    assert change.events == []
    # host change on an ACTIVE port: unplugged (ML2 unbinds to DOWN), then network-changed
    q, change = s.update_port(p["id"], {"binding:host_id": "compute-2"})
    assert [e["name"] for e in change.events] == ["network-vif-unplugged", "network-changed"]
    assert change.events[0]["status"] == "completed"
    assert q["status"] == "DOWN"
    assert change.bound == [(p["id"], 2)]
    _, change = s.set_port_status(p["id"], "ERROR")
    assert change.events[0]["name"] == "network-vif-plugged"
    assert change.events[0]["status"] == "failed"
    # clearing device_id sends nothing (the port is no longer a compute port afterwards)
    _, change = s.update_port(p["id"], {"device_id": "", "device_owner": ""})
    assert change.events == []
    s.update_port(p["id"], {"device_id": SERVER, "device_owner": "compute:nova"})
    assert [e["name"] for e in s.delete_port(p["id"]).events] == ["network-vif-deleted"]


def test_unbind_of_active_compute_port_sends_unplugged_only_if_still_compute() -> None:
    s = make()
    net, _ = net_and_subnet(s)
    p, _ = port(s, net, **compute_attrs())
    s.set_port_status(p["id"], "ACTIVE")
    q, change = s.update_port(p["id"], {"binding:host_id": None})
    assert q["status"] == "DOWN"
    assert [e["name"] for e in change.events] == ["network-vif-unplugged", "network-changed"]
    r, _ = port(s, net, **compute_attrs())
    s.set_port_status(r["id"], "ACTIVE")
    _, change = s.update_port(
        r["id"], {"binding:host_id": None, "device_id": "", "device_owner": ""}
    )
    assert change.events == []


def test_agent_port_up_respects_the_binding_generation() -> None:
    s = make()
    net, _ = net_and_subnet(s)
    _p, change = port(s, net, **compute_attrs())
    (port_id, gen) = change.bound[0]
    s.update_port(port_id, {"binding:host_id": "compute-2"})  # rebound meanwhile
    assert s.agent_port_up(port_id, gen).items == 0
    assert s.get("port", port_id)["status"] == "DOWN"
    change = s.agent_port_up(port_id, s.binding_generation(port_id) or 0)
    assert [e["name"] for e in change.events] == ["network-vif-plugged"]
    assert s.get("port", port_id)["status"] == "ACTIVE"
    with pytest.raises(SimError) as e:
        s.set_port_status(port_id, "BOGUS")
    assert e.value.status == 400


# ------------------------------------------------------------------ routers and floating IPs
def external(s: SimState) -> tuple[str, str]:
    return net_and_subnet(s, "203.0.113.0/24", **{"router:external": True})


def test_router_and_floating_ip_lifecycle_with_events() -> None:
    s = make()
    net, sub = net_and_subnet(s)
    ext, ext_sub = external(s)
    r, _ = s.create_router(body(s, "router", name="r", external_gateway_info={"network_id": ext}))
    assert r["revision_number"] == 2
    gw = r["external_gateway_info"]
    assert gw["network_id"] == ext
    assert gw["enable_snat"] is True
    assert gw["external_fixed_ips"][0]["subnet_id"] == ext_sub
    p, _ = port(s, net, **compute_attrs())
    fip_body = body(s, "floatingip", floating_network_id=ext, port_id=p["id"])
    with pytest.raises(SimError) as e:
        s.create_floatingip(fip_body)
    assert err(e)[:2] == (404, "ExternalGatewayForFloatingIPNotFound")
    info, _ = s.add_router_interface(r["id"], {"subnet_id": sub})
    assert set(info) == {"id", "project_id", "port_id", "network_id", "subnet_id", "subnet_ids"}
    assert s.get("port", info["port_id"])["fixed_ips"][0]["ip_address"] == "192.0.2.1"
    with pytest.raises(SimError) as e:
        s.add_router_interface(r["id"], {"subnet_id": sub})
    assert err(e)[2] == f"Bad router request: Router already has a port on subnet {sub}."
    fip, change = s.create_floatingip(fip_body)
    assert fip["fixed_ip_address"] == p["fixed_ips"][0]["ip_address"]
    assert fip["router_id"] == r["id"]
    assert fip["status"] == "DOWN"
    assert fip["revision_number"] == 0
    assert fip["port_details"]["device_id"] == SERVER
    assert ipaddress.ip_address(fip["floating_ip_address"]) in ipaddress.ip_network(
        "203.0.113.0/24"
    )
    assert [e["name"] for e in change.events] == ["network-changed"]
    fip2, _ = s.create_floatingip(body(s, "floatingip", floating_network_id=ext))
    with pytest.raises(SimError) as e:
        s.update_floatingip(fip2["id"], {"port_id": p["id"]})
    assert err(e)[:2] == (409, "FloatingIPPortAlreadyAssociated")
    with pytest.raises(SimError) as e:
        s.remove_router_interface(r["id"], {"subnet_id": sub})
    assert err(e)[:2] == (409, "RouterInterfaceInUseByFloatingIP")
    f, change = s.update_floatingip(fip["id"], {"port_id": None})
    assert (f["port_id"], f["fixed_ip_address"], f["router_id"], f["port_details"]) == (
        None,
        None,
        None,
        None,
    )
    assert [e["tag"] for e in change.events] == [p["id"]]
    f, _ = s.update_floatingip(fip["id"], {"port_id": None})  # repeated: still bumps
    assert f["revision_number"] == 2
    with pytest.raises(SimError) as e:
        s.delete_router(r["id"])
    assert err(e)[:2] == (409, "RouterInUse")
    with pytest.raises(SimError) as e:
        s.delete_port(info["port_id"])
    assert err(e)[:2] == (409, "ServicePortInUse")
    s.remove_router_interface(r["id"], {"subnet_id": sub})
    with pytest.raises(SimError) as e:
        s.remove_router_interface(r["id"], {"subnet_id": sub})
    assert err(e)[:2] == (404, "RouterInterfaceNotFoundForSubnet")
    s.delete_router(r["id"])
    s.delete_floatingip(fip["id"])
    s.delete_floatingip(fip2["id"])
    assert [q["device_owner"] for q in s.list_all("port")] == ["compute:nova"]


def test_floating_ip_on_internal_network_is_refused() -> None:
    s = make()
    net, _ = net_and_subnet(s)
    with pytest.raises(SimError) as e:
        s.create_floatingip(body(s, "floatingip", floating_network_id=net))
    assert err(e) == (
        400,
        "BadRequest",
        f"Bad floatingip request: Network {net} is not a valid external network.",
    )


def test_network_in_use_and_subnet_in_use() -> None:
    s = make()
    net, sub = net_and_subnet(s)
    p, _ = port(s, net)
    with pytest.raises(SimError) as e:
        s.delete_network(net)
    assert err(e)[:2] == (409, "NetworkInUse")
    assert p["id"] in err(e)[2]
    with pytest.raises(SimError) as e:
        s.delete_subnet(sub)
    assert err(e)[:2] == (409, "SubnetInUse")
    s.delete_port(p["id"])
    s.delete_network(net)
    assert s.list_all("subnet") == []


# ------------------------------------------------------------------ body validation
@pytest.mark.parametrize(
    ("payload", "create", "etype", "message"),
    [
        ({"prt": {}}, True, "HTTPBadRequest", "Unable to find 'port' in request body"),
        ({"port": "x"}, True, "HTTPBadRequest", "Object 'port' contains invalid data"),
        ({"port": {"network_id": str(uuid.UUID(int=1)), "bogus": 1}}, True, "HTTPBadRequest",
         "Unrecognized attribute(s) 'bogus'"),
        ({"port": {}}, True, "HTTPBadRequest",
         "Failed to parse request. Required attribute 'network_id' not specified"),
        ({"port": {"network_id": "zz"}}, True, "HTTPBadRequest",
         "Invalid input for network_id. Reason: 'zz' is not a valid UUID."),
        ({"port": {"network_id": str(uuid.UUID(int=1)), "mac_address": "zz"}}, True,
         "HTTPBadRequest", "Invalid input for mac_address. Reason: 'zz' is not a valid MAC address."),
        ({"port": {"network_id": str(uuid.UUID(int=1)), "admin_state_up": "maybe"}}, True,
         "InvalidInput", "Invalid input for operation: 'maybe' cannot be converted to boolean."),
        ({"port": {"network_id": str(uuid.UUID(int=1)), "status": "ACTIVE"}}, True,
         "HTTPBadRequest", "Attribute 'status' not allowed in POST"),
        ({"port": {"status": "ACTIVE"}}, False, "HTTPBadRequest",
         "Cannot update read-only attribute status"),
        ({"port": {"network_id": str(uuid.UUID(int=1))}}, False, "HTTPBadRequest",
         "Cannot update read-only attribute network_id"),
        ({"port": {"name": None}}, False, "HTTPBadRequest",
         "Invalid input for name. Reason: 'None' is not a valid string."),
        ({"port": {"fixed_ips": [{"ip_address": "300.1.1.1"}]}}, False, "HTTPBadRequest",
         "Invalid input for fixed_ips. Reason: '300.1.1.1' is not a valid IP address."),
        ({"port": {"binding:profile": "x"}}, False, "HTTPBadRequest",
         "Invalid input for binding:profile. Reason: 'x' is not a dictionary."),
        ({"port": {"binding:vnic_type": "zz"}}, False, "HTTPBadRequest",
         "Invalid input for binding:vnic_type. Reason: zz is not in valid_values."),
    ],
)  # fmt: skip
def test_body_validation_messages(
    payload: dict[str, Any], create: bool, etype: str, message: str
) -> None:
    with pytest.raises(SimError) as e:
        parse_body("port", payload, create=create, default_project=P)
    assert (e.value.status, e.value.type, e.value.message) == (400, etype, message)


def test_project_defaults_and_binding_host_null() -> None:
    attrs = parse_body("port", {"port": {"network_id": str(uuid.UUID(int=1))}}, create=True,
                       default_project="fake_project_id")  # fmt: skip
    assert attrs["project_id"] == attrs["tenant_id"] == "fake_project_id"
    attrs = parse_body("port", {"port": {"binding:host_id": None}}, create=False, default_project=P)
    assert attrs == {"binding:host_id": ""}


# ------------------------------------------------------------------ snapshot
def test_snapshot_round_trip() -> None:
    s = make()
    net, _ = net_and_subnet(s)
    p, _ = port(s, net, **compute_attrs())
    data = s.to_snapshot()
    t = make(seed=99)
    t.load_snapshot(data)
    assert t.list_all("port") == s.list_all("port")
    assert t.list_all("network") == s.list_all("network")
    assert t.binding_generation(p["id"]) == 1
    with pytest.raises(ValueError, match="snapshot"):
        t.load_snapshot({"version": 99})
