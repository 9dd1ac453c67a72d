"""Neutron v2.0 conformance: the same requests against the simulator and a real neutron-server.

Each test states what a real neutron-server 29 does (checked live in CI, and
recorded in samples/neutron-29.json); the simulator must do the same. Key sets
are compared with the recorded real responses, so even without a live server
the simulator is held to the real shapes.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from .conftest import HOST, PROJECT_ID, Target, sample

MAC_RE = re.compile(r"^fa:16:3e(:[0-9a-f]{2}){3}$")


def keys_of(label: str, resource: str | None = None) -> set[str]:
    body = sample(label)["body"]
    obj = body[resource] if resource else body
    if isinstance(obj, list):
        obj = obj[0]
    return set(obj)


def assert_error(r: Any, status: int, etype: str, message: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["NeutronError"]
    assert set(err) == {"type", "message", "detail"}
    assert err["type"] == etype, err
    if message is not None:
        assert err["message"] == message, err
    return dict(err)


def bind_body(server: str) -> dict[str, Any]:
    """The one PUT body that binds a port to a VM on HOST."""
    return {"port": {"device_id": server, "device_owner": "compute:nova", "binding:host_id": HOST}}


async def compute_port(t: Target, net_id: str, **extra: Any) -> dict[str, Any]:
    body = {
        "network_id": net_id,
        "project_id": PROJECT_ID,
        "device_id": str(uuid.uuid4()),
        "device_owner": "compute:nova",
        "binding:host_id": HOST,
        **extra,
    }
    return await t.create("ports", body)


# ------------------------------------------------------------------ documents
async def test_versions_document(target: Target) -> None:
    r = await target.http.get("/")
    assert r.status_code == 200
    versions = r.json()["versions"]
    assert any(v["id"] == "v2.0" and v["status"] == "CURRENT" for v in versions)


async def test_resources_index(target: Target) -> None:
    r = await target.http.get("/v2.0/")
    assert r.status_code == 200
    collections = {res["collection"] for res in r.json()["resources"]}
    assert {"networks", "subnets", "ports"} <= collections  # extensions (routers...) are not listed


# ------------------------------------------------------------------ networks and subnets
async def test_network_and_subnet_shapes(target: Target) -> None:
    net, sub = await target.network()
    r = await target.http.get(f"/v2.0/networks/{net['id']}")
    assert r.status_code == 200
    shown = r.json()["network"]
    assert set(shown) == keys_of("show network", "network")
    assert shown["mtu"] == 1500
    assert shown["status"] == "ACTIVE"
    assert shown["subnets"] == [sub["id"]]
    assert isinstance(shown["revision_number"], int)
    assert set(sub) == keys_of("list subnets by network", "subnets")
    assert sub["gateway_ip"] == "192.0.2.1"
    assert sub["allocation_pools"] == [{"start": "192.0.2.2", "end": "192.0.2.254"}]
    assert sub["host_routes"] == []
    assert sub["dns_nameservers"] == []


async def test_list_networks_and_subnets_by_many_ids(target: Target) -> None:
    net_a, sub_a = await target.network()
    net_b, sub_b = await target.network()
    missing = str(uuid.uuid4())
    r = await target.http.get(
        "/v2.0/networks", params=[("id", net_a["id"]), ("id", net_b["id"]), ("id", missing)]
    )
    assert r.status_code == 200
    assert {n["id"] for n in r.json()["networks"]} == {net_a["id"], net_b["id"]}
    r = await target.http.get("/v2.0/subnets", params=[("network_id", net_a["id"])])
    assert [s["id"] for s in r.json()["subnets"]] == [sub_a["id"]]
    r = await target.http.get("/v2.0/subnets", params=[("id", sub_a["id"]), ("id", sub_b["id"])])
    assert {s["id"] for s in r.json()["subnets"]} == {sub_a["id"], sub_b["id"]}


async def test_show_missing_network(target: Target) -> None:
    missing = str(uuid.uuid4())
    r = await target.http.get(f"/v2.0/networks/{missing}")
    assert_error(r, 404, "NetworkNotFound", f"Network {missing} could not be found.")


# ------------------------------------------------------------------ ports: shapes
async def test_unbound_port_shape(target: Target) -> None:
    net, sub = await target.network()
    port = await target.port(net["id"])
    assert set(port) == keys_of("create port (unbound)", "port")
    assert port["status"] == "DOWN"
    assert MAC_RE.match(port["mac_address"])
    assert port["device_id"] == ""
    assert port["device_owner"] == ""
    assert port["binding:host_id"] == ""
    assert port["binding:vif_type"] == "unbound"
    assert port["binding:vif_details"] == {}
    assert port["binding:vnic_type"] == "normal"
    [ip] = port["fixed_ips"]
    assert ip["subnet_id"] == sub["id"]
    assert ipaddress.ip_address(ip["ip_address"]) in ipaddress.ip_network("192.0.2.0/24")
    assert ip["ip_address"] not in ("192.0.2.0", "192.0.2.1", "192.0.2.255")
    r = await target.http.get(f"/v2.0/ports/{port['id']}")
    assert set(r.json()["port"]) == keys_of("show port", "port")


async def test_bound_port_created_in_one_request(target: Target) -> None:
    net, _ = await target.network()
    port = await compute_port(target, net["id"])
    assert set(port) == keys_of("create bound port", "port")
    assert port["binding:host_id"] == HOST
    assert port["binding:vif_type"] == "ovs"
    assert set(port["binding:vif_details"]) == set(
        sample("create bound port")["body"]["port"]["binding:vif_details"]
    )
    assert port["binding:vif_details"]["bridge_name"] == "br-int"
    assert port["status"] == "DOWN"  # no agent has wired it yet


async def test_requested_fixed_ip(target: Target) -> None:
    net, sub = await target.network()
    port = await target.create(
        "ports",
        {
            "network_id": net["id"],
            "project_id": PROJECT_ID,
            "fixed_ips": [{"ip_address": "192.0.2.77"}],
        },
    )
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "192.0.2.77"}]


async def test_allocated_addresses_are_unique(target: Target) -> None:
    net, _ = await target.network()
    ports = [await target.port(net["id"]) for _ in range(6)]
    assert len({p["mac_address"] for p in ports}) == 6
    assert len({p["fixed_ips"][0]["ip_address"] for p in ports}) == 6


# ------------------------------------------------------------------ ports: writes, revisions
async def test_bind_with_if_match(target: Target) -> None:
    net, _ = await target.network()
    port = await target.port(net["id"])
    server = str(uuid.uuid4())
    r = await target.http.put(
        f"/v2.0/ports/{port['id']}",
        json=bind_body(server),
        headers={"If-Match": f"revision_number={port['revision_number']}"},
    )
    assert r.status_code == 200, r.text
    bound = r.json()["port"]
    assert set(bound) == keys_of("bind port If-Match ok", "port")
    assert bound["device_id"] == server
    assert bound["binding:host_id"] == HOST
    assert bound["binding:vif_type"] == "ovs"
    assert bound["revision_number"] > port["revision_number"]


async def test_stale_if_match_is_refused_and_changes_nothing(target: Target) -> None:
    net, _ = await target.network()
    port = await target.port(net["id"])
    rev = port["revision_number"]
    r = await target.http.put(
        f"/v2.0/ports/{port['id']}",
        json={"port": {"device_id": str(uuid.uuid4()), "device_owner": "compute:nova"}},
        headers={"If-Match": f"revision_number={rev + 5}"},
    )
    assert_error(
        r,
        412,
        "RevisionNumberConstraintFailed",
        f"Constrained to {rev + 5}, but current revision is {rev}",
    )
    after = (await target.http.get(f"/v2.0/ports/{port['id']}")).json()["port"]
    assert after["revision_number"] == rev
    assert after["device_id"] == ""


async def test_malformed_if_match_is_ignored(target: Target) -> None:
    net, _ = await target.network()
    port = await target.port(net["id"])
    r = await target.http.put(
        f"/v2.0/ports/{port['id']}",
        json={"port": {"name": "renamed"}},
        headers={"If-Match": "garbage"},
    )
    assert r.status_code == 200
    assert r.json()["port"]["name"] == "renamed"


async def test_every_change_bumps_the_revision_and_reads_do_not(target: Target) -> None:
    net, _ = await target.network()
    port = await compute_port(target, net["id"])
    revs = [port["revision_number"]]
    for name in ("a", "b", "c"):
        r = await target.http.put(f"/v2.0/ports/{port['id']}", json={"port": {"name": name}})
        revs.append(r.json()["port"]["revision_number"])
    assert revs == sorted(set(revs)), revs
    r1 = (await target.http.get(f"/v2.0/ports/{port['id']}")).json()["port"]["revision_number"]
    r2 = (await target.http.get(f"/v2.0/ports/{port['id']}")).json()["port"]["revision_number"]
    assert r1 == r2 == revs[-1]


async def test_unbind(target: Target) -> None:
    net, _ = await target.network()
    port = await compute_port(target, net["id"])
    r = await target.http.put(
        f"/v2.0/ports/{port['id']}",
        json={"port": {"device_id": "", "device_owner": "", "binding:host_id": None}},
    )
    assert r.status_code == 200
    p = r.json()["port"]
    assert set(p) == keys_of("unbind port", "port")
    assert (p["device_id"], p["device_owner"], p["binding:host_id"]) == ("", "", "")
    assert p["binding:vif_type"] == "unbound"
    assert p["binding:vif_details"] == {}
    assert p["revision_number"] > port["revision_number"]


async def test_delete_port(target: Target) -> None:
    net, _ = await target.network()
    port = await compute_port(target, net["id"])
    r = await target.http.delete(f"/v2.0/ports/{port['id']}")
    assert r.status_code == 204
    assert r.content == b""
    r = await target.http.delete(f"/v2.0/ports/{port['id']}")
    assert_error(r, 404, "PortNotFound", f"Port {port['id']} could not be found.")
    r = await target.http.get(f"/v2.0/ports/{port['id']}")
    assert_error(r, 404, "PortNotFound")
    r = await target.http.put(f"/v2.0/ports/{port['id']}", json={"port": {"name": "x"}})
    assert_error(r, 404, "PortNotFound")


# ------------------------------------------------------------------ ports: conflicts and bad input
async def test_mac_address_in_use(target: Target) -> None:
    net, _ = await target.network()
    port = await target.port(net["id"])
    r = await target.http.post(
        "/v2.0/ports",
        json={
            "port": {
                "network_id": net["id"],
                "project_id": PROJECT_ID,
                "mac_address": port["mac_address"],
            }
        },
    )
    assert_error(
        r,
        409,
        "MacAddressInUse",
        f"Unable to complete operation for network {net['id']}. "
        f"The mac address {port['mac_address']} is in use.",
    )


async def test_ip_address_in_use(target: Target) -> None:
    net, sub = await target.network()
    port = await target.port(net["id"])
    ip = port["fixed_ips"][0]["ip_address"]
    r = await target.http.post(
        "/v2.0/ports",
        json={
            "port": {
                "network_id": net["id"],
                "project_id": PROJECT_ID,
                "fixed_ips": [{"ip_address": ip}],
            }
        },
    )
    assert_error(
        r,
        409,
        "IpAddressAlreadyAllocated",
        f"IP address {ip} already allocated in subnet {sub['id']}",
    )


async def test_port_on_missing_network(target: Target) -> None:
    missing = str(uuid.uuid4())
    r = await target.http.post(
        "/v2.0/ports", json={"port": {"network_id": missing, "project_id": PROJECT_ID}}
    )
    assert_error(r, 404, "NetworkNotFound", f"Network {missing} could not be found.")


@pytest.mark.parametrize(
    ("label", "body"),
    [
        ("create port no body key", {"prt": {}}),
        (
            "create port unknown attr",
            {"port": {"network_id": "NET", "project_id": PROJECT_ID, "bogus": 1}},
        ),
        (
            "create port bad mac",
            {"port": {"network_id": "NET", "project_id": PROJECT_ID, "mac_address": "zz"}},
        ),
    ],
)
async def test_bad_port_bodies(target: Target, label: str, body: dict[str, Any]) -> None:
    net, _ = await target.network()
    if "port" in body:
        body = {"port": {**body["port"], "network_id": net["id"]}}
    r = await target.http.post("/v2.0/ports", json=body)
    real = sample(label)
    err = real["body"]["NeutronError"]
    assert_error(r, real["status"], err["type"], err["message"])
    listed = await target.http.get("/v2.0/ports", params={"network_id": net["id"]})
    assert listed.json()["ports"] == []


async def test_malformed_json(target: Target) -> None:
    r = await target.http.post(
        "/v2.0/ports", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["NeutronError"]["type"] in {"HTTPBadRequest", "BadRequest"}


# ------------------------------------------------------------------ queries
async def test_list_filters_and_fields(target: Target) -> None:
    net, _ = await target.network()
    other, _ = await target.network()
    server = str(uuid.uuid4())
    mine = [await compute_port(target, net["id"], device_id=server) for _ in range(3)]
    stray = await compute_port(target, other["id"])
    loose = await target.port(net["id"])
    ids = sorted(p["id"] for p in mine)

    async def listed(params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        r = await target.http.get("/v2.0/ports", params=params)
        assert r.status_code == 200, r.text
        return list(r.json()["ports"])

    got = await listed([("device_id", server)])
    assert [p["id"] for p in got] == ids  # sorted by id, as Neutron does
    assert set(got[0]) == keys_of("list ports by device_id", "ports")
    got = await listed([("network_id", net["id"]), ("device_owner", "compute:nova")])
    assert sorted(p["id"] for p in got) == ids
    got = await listed([("binding:host_id", HOST), ("network_id", other["id"])])
    assert [p["id"] for p in got] == [stray["id"]]
    got = await listed([("id", mine[0]["id"]), ("id", loose["id"]), ("fields", "id")])
    assert got == sorted([{"id": mine[0]["id"]}, {"id": loose["id"]}], key=lambda p: p["id"])
    got = await listed([("device_id", server), ("fields", "id"), ("fields", "revision_number")])
    assert all(set(p) == {"id", "revision_number"} for p in got)


async def test_unknown_filter_is_refused(target: Target) -> None:
    r = await target.http.get("/v2.0/ports", params={"bogus": "1", "fields": "id"})
    assert_error(r, 400, "HTTPBadRequest", "['bogus'] is invalid attribute for filtering")


async def test_pagination_with_links(target: Target) -> None:
    net, _ = await target.network()
    server = str(uuid.uuid4())
    ids = sorted(
        [(await compute_port(target, net["id"], device_id=server))["id"] for _ in range(5)]
    )
    seen: list[str] = []
    params: list[tuple[str, str]] = [("device_id", server), ("limit", "2"), ("fields", "id")]
    pages = 0
    while True:
        r = await target.http.get("/v2.0/ports", params=params)
        body = r.json()
        pages += 1
        seen += [p["id"] for p in body["ports"]]
        links = {link["rel"]: link["href"] for link in body.get("ports_links", [])}
        if body["ports"] and len(body["ports"]) == 2:
            assert set(links) == {"next", "previous"}
            q = parse_qs(urlsplit(links["next"]).query)
            assert q["marker"] == [body["ports"][-1]["id"]]
            assert q["limit"] == ["2"]
            assert q["device_id"] == [server]
            assert parse_qs(urlsplit(links["previous"]).query)["page_reverse"] == ["True"]
        if "next" not in links:
            break
        params = [(k, v) for k, vs in parse_qs(urlsplit(links["next"]).query).items() for v in vs]
        assert pages < 10
    assert seen == ids
    assert pages in (3, 4)  # 2 + 2 + 1 (Neutron may add an empty last page)


async def test_bad_limit_and_missing_marker(target: Target) -> None:
    r = await target.http.get("/v2.0/ports", params={"limit": "abc"})
    assert_error(
        r,
        400,
        "BadRequest",
        "Bad limit request: Limit must be an integer 0 or greater and not 'abc'.",
    )
    missing = str(uuid.uuid4())
    r = await target.http.get("/v2.0/ports", params={"limit": "2", "marker": missing})
    assert_error(r, 404, "PortNotFound", f"Port {missing} could not be found.")


# ------------------------------------------------------------------ floating IPs
async def test_floating_ips(target: Target) -> None:
    net, sub = await target.network()
    ext = await target.create(
        "networks",
        {"name": f"ext-{uuid.uuid4().hex[:6]}", "project_id": PROJECT_ID, "router:external": True},
    )
    await target.create(
        "subnets",
        {
            "network_id": ext["id"],
            "cidr": "203.0.113.0/24",
            "ip_version": 4,
            "project_id": PROJECT_ID,
            "enable_dhcp": False,
        },
    )
    router = await target.create(
        "routers",
        {
            "name": "conf-r",
            "project_id": PROJECT_ID,
            "external_gateway_info": {"network_id": ext["id"]},
        },
    )
    r = await target.http.put(
        f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]}
    )
    assert r.status_code == 200, r.text
    port = await compute_port(target, net["id"])
    fip = await target.create(
        "floatingips",
        {"floating_network_id": ext["id"], "port_id": port["id"], "project_id": PROJECT_ID},
    )
    assert set(fip) == keys_of("create floatingip (port_id of a compute port)", "floatingip")
    assert fip["port_id"] == port["id"]
    assert fip["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    assert fip["router_id"] == router["id"]
    assert ipaddress.ip_address(fip["floating_ip_address"]) in ipaddress.ip_network(
        "203.0.113.0/24"
    )
    assert fip["port_details"]["device_id"] == port["device_id"]
    r = await target.http.get(
        "/v2.0/floatingips", params=[("port_id", port["id"]), ("port_id", str(uuid.uuid4()))]
    )
    assert [f["id"] for f in r.json()["floatingips"]] == [fip["id"]]
    r = await target.http.put(
        f"/v2.0/floatingips/{fip['id']}", json={"floatingip": {"port_id": None}}
    )
    assert r.status_code == 200
    assert r.json()["floatingip"]["port_id"] is None
    assert r.json()["floatingip"]["fixed_ip_address"] is None
    r = await target.http.get("/v2.0/floatingips", params={"port_id": port["id"]})
    assert r.json()["floatingips"] == []


# ------------------------------------------------------------------ events to the compute service
async def test_events_for_a_compute_port(target: Target) -> None:
    net, _ = await target.network()
    port = await target.port(net["id"])
    server = str(uuid.uuid4())
    r = await target.http.put(
        f"/v2.0/ports/{port['id']}",
        json=bind_body(server),
    )
    assert r.status_code == 200
    changed = await target.capture.wait_for(port["id"], "network-changed")
    assert changed == {"name": "network-changed", "server_uuid": server, "tag": port["id"]}

    await target.make_port_active(port["id"])
    plugged = await target.capture.wait_for(port["id"], "network-vif-plugged")
    assert plugged == {
        "name": "network-vif-plugged",
        "server_uuid": server,
        "status": "completed",
        "tag": port["id"],
    }
    r = await target.http.get(f"/v2.0/ports/{port['id']}")
    assert r.json()["port"]["status"] == "ACTIVE"

    r = await target.http.delete(f"/v2.0/ports/{port['id']}")
    assert r.status_code == 204
    deleted = await target.capture.wait_for(port["id"], "network-vif-deleted")
    assert deleted == {"name": "network-vif-deleted", "server_uuid": server, "tag": port["id"]}
    post = next(p for p in target.capture.posts if deleted in p["body"]["events"])
    assert post["headers"]["x-openstack-nova-api-version"] == "2.1"
    assert post["headers"]["content-type"] == "application/json"
