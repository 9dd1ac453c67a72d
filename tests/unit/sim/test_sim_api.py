"""The simulator over HTTP, in-process (httpx.ASGITransport): shapes, errors, queries, admin."""

# ruff: noqa: E501  (request/response tables read better unwrapped)

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from hotport.sim.app import Simulator, create_app, parse_if_match
from hotport.sim.config import SimConfig
from hotport.sim.errors import SimError
from hotport.sim.latency import FakeClock

P = "6b1f0ad4a1b24c4f8d6f0c0d0d0d0d0d"
SERVER = "cbdaac4d-6b0a-472c-be0f-61630c91d774"
SAMPLES = json.loads(
    (Path(__file__).parents[3] / "tests/conformance/samples/neutron-29.json").read_text()
)["samples"]


def sample(label: str) -> dict[str, Any]:
    return next(s for s in SAMPLES if s["label"] == label)


def sample_keys(label: str, key: str) -> set[str]:
    obj = sample(label)["body"][key]
    return set(obj[0] if isinstance(obj, list) else obj)


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim")


def sim_of(app: Starlette) -> Simulator:
    sim: Simulator = app.state.sim
    return sim


@pytest.fixture
async def c() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(SimConfig(profile="instant", seed=7, active_delay=None))
    async with client(app) as http:
        yield http


async def network(
    c: httpx.AsyncClient, cidr: str = "192.0.2.0/24", **extra: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    r = await c.post("/v2.0/networks", json={"network": {"name": "n", "project_id": P, **extra}})
    assert r.status_code == 201, r.text
    net = r.json()["network"]
    body = {"network_id": net["id"], "cidr": cidr, "ip_version": 4, "project_id": P}
    r = await c.post("/v2.0/subnets", json={"subnet": body})
    assert r.status_code == 201, r.text
    return net, r.json()["subnet"]


async def new_port(c: httpx.AsyncClient, net_id: str, **extra: Any) -> dict[str, Any]:
    r = await c.post("/v2.0/ports", json={"port": {"network_id": net_id, "project_id": P, **extra}})
    assert r.status_code == 201, r.text
    port: dict[str, Any] = r.json()["port"]
    return port


def bound(**extra: Any) -> dict[str, Any]:
    return {"device_id": SERVER, "device_owner": "compute:nova", "binding:host_id": "compute-1",
            **extra}  # fmt: skip


def assert_error(r: httpx.Response, label: str | None, status: int, etype: str, msg: str) -> None:
    assert r.status_code == status, r.text
    assert r.json() == {"NeutronError": {"type": etype, "message": msg, "detail": ""}}
    if label is not None:  # same status and type as the recorded real server
        s = sample(label)
        assert (s["status"], s["body"]["NeutronError"]["type"]) == (status, etype)


# ------------------------------------------------------------------ documents and shapes
async def test_versions_and_resources(c: httpx.AsyncClient) -> None:
    r = await c.get("/")
    assert r.json() == {
        "versions": [
            {
                "id": "v2.0",
                "status": "CURRENT",
                "links": [{"rel": "self", "href": "http://sim/v2.0/"}],
            }
        ]
    }
    r = await c.get("/v2.0/")
    assert [x["collection"] for x in r.json()["resources"]] == [
        "networks", "subnets", "subnetpools", "ports"
    ]  # fmt: skip
    assert (await c.get("/v2.0")).status_code == 404
    r = await c.get("/v2.0/bogus")
    assert r.json()["NeutronError"]["type"] == "HTTPNotFound"


async def test_shapes_match_the_recorded_real_server(c: httpx.AsyncClient) -> None:
    net, _sub = await network(c)
    assert set((await c.get(f"/v2.0/networks/{net['id']}")).json()["network"]) == sample_keys(
        "show network", "network"
    )
    r = await c.get("/v2.0/networks", params=[("id", net["id"]), ("id", str(uuid.uuid4()))])
    assert set(r.json()) == {"networks"}
    assert set(r.json()["networks"][0]) == sample_keys("list networks many ids", "networks")
    r = await c.get("/v2.0/subnets", params={"network_id": net["id"]})
    assert set(r.json()["subnets"][0]) == sample_keys("list subnets by network", "subnets")
    r = await c.post(
        "/v2.0/ports", json={"port": {"network_id": net["id"], "project_id": P, "name": "p1"}}
    )
    assert r.status_code == 201
    port = r.json()["port"]
    assert set(port) == sample_keys("create port (unbound)", "port")
    assert port["status"] == "DOWN"
    assert port["binding:vif_type"] == "unbound"
    assert (
        port["revision_number"]
        == sample("create port (unbound)")["body"]["port"]["revision_number"]
    )
    assert port["mac_address"].startswith("fa:16:3e:")
    assert set((await c.get(f"/v2.0/ports/{port['id']}")).json()["port"]) == sample_keys(
        "show port", "port"
    )
    stale = sample("bind port If-Match stale")["request"]
    r = await c.put(f"/v2.0/ports/{port['id']}", json=stale["body"], headers=stale["headers"])
    assert_error(r, "bind port If-Match stale", 412, "RevisionNumberConstraintFailed",
                 "Constrained to 6, but current revision is 1")  # fmt: skip
    ok = sample("bind port If-Match ok")
    r = await c.put(
        f"/v2.0/ports/{port['id']}",
        json=ok["request"]["body"],
        headers={"If-Match": "revision_number=1"},
    )
    got = r.json()["port"]
    want = ok["body"]["port"]
    assert set(got) == set(want)
    assert set(got["binding:vif_details"]) == set(want["binding:vif_details"])
    assert got["revision_number"] == want["revision_number"] == 4
    bad = sample("If-Match bad format")
    r = await c.put(
        f"/v2.0/ports/{port['id']}", json=bad["request"]["body"], headers={"If-Match": "garbage"}
    )
    assert r.status_code == 200
    assert set(r.json()["port"]["binding:vif_details"]) == set(
        bad["body"]["port"]["binding:vif_details"]
    )
    unbind = sample("unbind port")
    r = await c.put(f"/v2.0/ports/{port['id']}", json=unbind["request"]["body"])
    assert set(r.json()["port"]) == set(unbind["body"]["port"])
    assert r.json()["port"]["binding:vif_details"] == {}
    r = await c.post(
        "/v2.0/ports", json={"port": {"network_id": net["id"], "project_id": P, **bound()}}
    )
    assert set(r.json()["port"]) == sample_keys("create bound port", "port")
    assert r.json()["port"]["revision_number"] == 3
    r = await c.get("/v2.0/ports", params={"device_id": SERVER})
    assert set(r.json()["ports"][0]) == sample_keys("list ports by device_id", "ports")
    r = await c.get("/v2.0/floatingips", params=[("port_id", port["id"])])
    assert r.json() == sample("list floatingips by port")["body"]
    r = await c.delete(f"/v2.0/ports/{port['id']}")
    assert (r.status_code, r.content) == (204, b"")
    assert "content-type" not in r.headers
    assert r.headers["x-openstack-request-id"].startswith("req-")


@pytest.mark.parametrize(
    ("label", "body", "status", "etype", "message"),
    [
        ("create port no body key", {"prt": {}}, 400, "HTTPBadRequest",
         "Unable to find 'port' in request body"),
        ("create port unknown attr", {"port": {"network_id": "NET", "project_id": P, "bogus": 1}},
         400, "HTTPBadRequest", "Unrecognized attribute(s) 'bogus'"),
        ("create port bad mac", {"port": {"network_id": "NET", "project_id": P, "mac_address": "zz"}},
         400, "HTTPBadRequest", "Invalid input for mac_address. Reason: 'zz' is not a valid MAC address."),
        ("create port bad network", "SAMPLE", 404, "NetworkNotFound",
         "Network {} could not be found."),
        ("bad json", None, 400, "HTTPBadRequest", "Unable to find 'port' in request body"),
    ],
)  # fmt: skip
async def test_port_create_errors_like_the_samples(
    c: httpx.AsyncClient, label: str, body: Any, status: int, etype: str, message: str
) -> None:
    net, _ = await network(c)
    if body == "SAMPLE":
        body = sample(label)["request"]["body"]
        message = message.format(body["port"]["network_id"])
    if body is not None and "port" in body and body["port"].get("network_id") == "NET":
        body["port"]["network_id"] = net["id"]
    r = await c.post("/v2.0/ports", content=b"" if body is None else json.dumps(body).encode())
    assert_error(r, label, status, etype, message)
    assert sample(label)["body"]["NeutronError"]["message"] == message


async def test_conflicts_and_not_found(c: httpx.AsyncClient) -> None:
    net, sub = await network(c)
    p = await new_port(c, net["id"])
    r = await c.post("/v2.0/ports", json={"port": {"network_id": net["id"], "project_id": P,
                                                    "mac_address": p["mac_address"]}})  # fmt: skip
    assert_error(r, "create port mac in use", 409, "MacAddressInUse",
                 f"Unable to complete operation for network {net['id']}. The mac address "
                 f"{p['mac_address']} is in use.")  # fmt: skip
    ip = p["fixed_ips"][0]["ip_address"]
    r = await c.post("/v2.0/ports", json={"port": {"network_id": net["id"], "project_id": P,
                                                    "fixed_ips": [{"ip_address": ip}]}})  # fmt: skip
    assert_error(r, "create port ip in use", 409, "IpAddressAlreadyAllocated",
                 f"IP address {ip} already allocated in subnet {sub['id']}")  # fmt: skip
    missing = str(uuid.uuid4())
    assert_error(await c.get(f"/v2.0/ports/{missing}"), "show port 404", 404, "PortNotFound",
                 f"Port {missing} could not be found.")  # fmt: skip
    assert_error(await c.get(f"/v2.0/networks/{missing}"), "show network 404", 404,
                 "NetworkNotFound", f"Network {missing} could not be found.")  # fmt: skip
    assert_error(await c.put(f"/v2.0/ports/{missing}", json={"port": {"name": "x"}}),
                 "update port 404", 404, "PortNotFound", f"Port {missing} could not be found.")  # fmt: skip
    assert_error(await c.delete(f"/v2.0/ports/{missing}"), "delete port 404", 404,
                 "PortNotFound", f"Port {missing} could not be found.")  # fmt: skip
    r = await c.post("/v2.0/ports", content=b"{not json")
    assert_error(r, None, 400, "HTTPBadRequest", "Body contains invalid data")


# ------------------------------------------------------------------ If-Match parsing
@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None), ("", None), ("*", None), ("garbage", None), ('W/"revision_number=3"', None),
        ("revision_number = 2", None), ("revision_number=4", 4), ('"revision_number=5"', 5),
        ("revision_number= 7", 7),
    ],
)  # fmt: skip
def test_if_match_parsing(header: str | None, expected: int | None) -> None:
    assert parse_if_match(header) == expected


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("revision_number=abc", "Bad if-match request: Revision number etag must be in the "
         "format of revision_number=<int>."),
        ("revision_number=1,revision_number=2", "Bad if-match request: Revision number etag "
         "must be in the format of revision_number=<int>."),
        ('"revision_number=1", "revision_number=2"', "Bad if-match request: Multiple "
         "revision_number etags are not supported.."),
    ],
)  # fmt: skip
def test_if_match_errors(header: str, message: str) -> None:
    with pytest.raises(SimError) as e:
        parse_if_match(header)
    assert (e.value.status, e.value.type, e.value.message) == (400, "BadRequest", message)


async def test_if_match_on_delete_and_revisions_over_http(c: httpx.AsyncClient) -> None:
    net, _ = await network(c)
    p = await new_port(c, net["id"])
    r = await c.delete(f"/v2.0/ports/{p['id']}", headers={"If-Match": "revision_number=9"})
    assert r.status_code == 412
    for _ in range(2):
        assert (await c.get(f"/v2.0/ports/{p['id']}")).json()["port"]["revision_number"] == 1
    r = await c.put(f"/v2.0/ports/{p['id']}", json={"port": {"name": ""}})  # no-op
    assert r.json()["port"]["revision_number"] == 1
    r = await c.delete(f"/v2.0/ports/{p['id']}", headers={"If-Match": "revision_number=1"})
    assert r.status_code == 204


# ------------------------------------------------------------------ queries
async def test_filters_fields_and_sorting(c: httpx.AsyncClient) -> None:
    net, sub = await network(c)
    other, _ = await network(c, "198.51.100.0/24")
    mine = [await new_port(c, net["id"], **bound()) for _ in range(3)]
    stray = await new_port(c, other["id"], **bound(device_id=str(uuid.uuid4())))
    loose = await new_port(c, net["id"], name="zz")

    async def ids(params: Any) -> list[str]:
        r = await c.get("/v2.0/ports", params=params)
        assert r.status_code == 200, r.text
        return [p["id"] for p in r.json()["ports"]]

    assert await ids({"device_id": SERVER}) == sorted(p["id"] for p in mine)
    assert await ids([("binding:host_id", "compute-1"), ("network_id", other["id"])]) == [
        stray["id"]
    ]
    assert await ids([("id", loose["id"]), ("id", stray["id"])]) == sorted(
        [loose["id"], stray["id"]]
    )
    assert await ids({"name": ""}) == []  # empty value: matches nothing, like Neutron
    assert await ids({"network_id": "not-a-uuid"}) == []
    ip = loose["fixed_ips"][0]["ip_address"]
    assert await ids({"fixed_ips": f"ip_address={ip}"}) == [loose["id"]]
    assert len(await ids({"fixed_ips": f"subnet_id={sub['id']}"})) == 4
    assert len(await ids({"admin_state_up": "True", "network_id": net["id"]})) == 4
    assert await ids({"revision_number": "1"}) == [loose["id"]]
    r = await c.get("/v2.0/ports", params={"admin_state_up": "maybe"})
    assert_error(r, None, 400, "InvalidInput",
                 "Invalid input for operation: 'maybe' cannot be converted to boolean.")  # fmt: skip
    for bad in ("bogus", "binding:vif_type", "created_at"):
        r = await c.get("/v2.0/ports", params={bad: "1", "fields": "id"})
        label = "list ports unknown filter" if bad == "bogus" else None
        assert_error(
            r, label, 400, "HTTPBadRequest", f"['{bad}'] is invalid attribute for filtering"
        )
    r = await c.get("/v2.0/ports", params=[("device_id", SERVER), ("fields", "id"),
                                           ("fields", "status"), ("fields", "bogus")])  # fmt: skip
    assert all(set(p) == {"id", "status"} for p in r.json()["ports"])
    r = await c.get("/v2.0/ports", params={"fields": ""})
    assert all(p == {} for p in r.json()["ports"])
    r = await c.get(f"/v2.0/ports/{loose['id']}", params=[("fields", "id"), ("fields", "name")])
    assert r.json() == {"port": {"id": loose["id"], "name": "zz"}}
    names = await c.get(
        "/v2.0/ports", params=[("sort_key", "name"), ("sort_dir", "desc"), ("fields", "name")]
    )
    assert names.json()["ports"][0] == {"name": "zz"}
    r = await c.get("/v2.0/ports", params={"sort_key": "name"})
    assert_error(
        r, None, 400, "HTTPBadRequest", "The number of sort_keys and sort_dirs must be same"
    )
    r = await c.get("/v2.0/ports", params={"sort_key": "name", "sort_dir": "up"})
    assert_error(r, None, 400, "HTTPBadRequest",
                 "['up'] is invalid value for sort_dirs, valid value is 'asc' and 'desc'")  # fmt: skip
    r = await c.get("/v2.0/ports", params={"sort_key": "created_at", "sort_dir": "asc"})
    assert_error(
        r, None, 400, "HTTPBadRequest", "['created_at'] is invalid attribute for sort_keys"
    )


async def test_pagination_and_links(c: httpx.AsyncClient) -> None:
    net, _ = await network(c)
    ids = sorted([(await new_port(c, net["id"], **bound()))["id"] for _ in range(5)])
    r = await c.get(f"/v2.0/ports?device_id={SERVER}&limit=2&fields=id")
    body = r.json()
    assert [p["id"] for p in body["ports"]] == ids[:2]
    recorded = sample("list ports limit")["body"]["ports_links"]
    assert [link["rel"] for link in body["ports_links"]] == [link["rel"] for link in recorded]
    nxt, prev = (link["href"] for link in body["ports_links"])
    assert nxt == f"http://sim/v2.0/ports?device_id={SERVER}&limit=2&fields=id&marker={ids[1]}"
    assert prev == (
        f"http://sim/v2.0/ports?device_id={SERVER}&limit=2&fields=id&marker={ids[0]}"
        "&page_reverse=True"
    )
    # the recorded shape: query order kept, marker re-appended last
    r = await c.get(f"/v2.0/ports?device_id={SERVER}&limit=2&marker={ids[1]}&fields=id")
    assert [p["id"] for p in r.json()["ports"]] == ids[2:4]
    assert r.json()["ports_links"][0]["href"].endswith(f"limit=2&fields=id&marker={ids[3]}")
    r = await c.get(f"/v2.0/ports?device_id={SERVER}&limit=2&marker={ids[3]}")
    assert [p["id"] for p in r.json()["ports"]] == ids[4:]
    assert [link["rel"] for link in r.json()["ports_links"]] == ["previous"]
    r = await c.get(f"/v2.0/ports?device_id={SERVER}&limit=2&page_reverse=true&fields=id")
    assert [p["id"] for p in r.json()["ports"]] == ids[3:]
    r = await c.get(f"/v2.0/ports?device_id={SERVER}&page_reverse=True&fields=id")
    assert [p["id"] for p in r.json()["ports"]] == ids[::-1]
    r = await c.get(f"/v2.0/ports?device_id={SERVER}&limit=0")
    assert "ports_links" not in r.json()
    assert len(r.json()["ports"]) == 5
    r = await c.get("/v2.0/ports?binding:host_id=compute-1&limit=1")
    q = dict(parse_qsl(urlsplit(r.json()["ports_links"][0]["href"]).query))
    assert q["binding:host_id"] == "compute-1"
    assert "binding%3Ahost_id=compute-1" in r.json()["ports_links"][0]["href"]  # urlencode
    assert_error(await c.get("/v2.0/ports?limit=abc"), "list ports bad limit", 400, "BadRequest",
                 "Bad limit request: Limit must be an integer 0 or greater and not 'abc'.")  # fmt: skip
    assert (await c.get("/v2.0/ports?limit=-1")).status_code == 400
    missing = str(uuid.uuid4())
    assert_error(await c.get(f"/v2.0/ports?limit=2&marker={missing}"), "list ports marker 404",
                 404, "PortNotFound", f"Port {missing} could not be found.")  # fmt: skip


# ------------------------------------------------------------------ routers and floating IPs
async def test_router_and_floating_ip_over_http(c: httpx.AsyncClient) -> None:
    net, sub = await network(c)
    ext, _ = await network(c, "203.0.113.0/24", **{"router:external": True})
    r = await c.post("/v2.0/routers", json={"router": {"name": "r", "project_id": P,
                                                        "external_gateway_info": {"network_id": ext["id"]}}})  # fmt: skip
    assert r.status_code == 201
    router = r.json()["router"]
    r = await c.put(
        f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]}
    )
    assert r.status_code == 200
    assert r.json()["subnet_ids"] == [sub["id"]]
    r = await c.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={})
    assert_error(r, None, 400, "BadRequest",
                 "Bad router request: Either subnet_id or port_id must be specified.")  # fmt: skip
    port = await new_port(c, net["id"], **bound())
    r = await c.post("/v2.0/floatingips", json={"floatingip": {"floating_network_id": ext["id"],
                                                                "port_id": port["id"], "project_id": P}})  # fmt: skip
    assert r.status_code == 201
    fip = r.json()["floatingip"]
    label = "create floatingip (port_id of a compute port)"
    assert set(fip) == sample_keys(label, "floatingip")
    assert set(fip["port_details"]) == set(sample(label)["body"]["floatingip"]["port_details"])
    r = await c.put(f"/v2.0/floatingips/{fip['id']}", json={"floatingip": {"port_id": None}})
    assert r.json()["floatingip"]["fixed_ip_address"] is None
    assert (await c.get("/v2.0/floatingips", params={"port_id": port["id"]})).json() == {
        "floatingips": []
    }
    assert (await c.delete(f"/v2.0/floatingips/{fip['id']}")).status_code == 204
    r = await c.put(
        f"/v2.0/routers/{router['id']}/remove_router_interface", json={"subnet_id": sub["id"]}
    )
    assert r.status_code == 200
    r = await c.put(f"/v2.0/routers/{router['id']}", json={"router": {"external_gateway_info": {}}})
    assert r.json()["router"]["external_gateway_info"] is None
    assert (await c.delete(f"/v2.0/routers/{router['id']}")).status_code == 204
    sgs = (await c.get("/v2.0/security-groups")).json()["security_groups"]
    assert [sg["name"] for sg in sgs] == ["default"]
    assert port["security_groups"] == [sgs[0]["id"]]


async def test_bulk_create_is_all_or_nothing(c: httpx.AsyncClient) -> None:
    net, _ = await network(c)
    r = await c.post(
        "/v2.0/ports", json={"ports": [{"network_id": net["id"], "project_id": P}] * 2}
    )
    assert r.status_code == 201
    assert len(r.json()["ports"]) == 2
    r = await c.post("/v2.0/ports", json={"ports": [
        {"network_id": net["id"], "project_id": P},
        {"network_id": net["id"], "project_id": P, "mac_address": r.json()["ports"][0]["mac_address"]},
    ]})  # fmt: skip
    assert r.status_code == 409
    assert len((await c.get("/v2.0/ports", params={"network_id": net["id"]})).json()["ports"]) == 2


# ------------------------------------------------------------------ events, agent, faults, capacity
class Recorder:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            body = json.loads(request.content)
            self.posts.append({"url": str(request.url), "body": body})
            return httpx.Response(
                200, json={"events": [{**e, "code": 200} for e in body["events"]]}
            )

        return httpx.MockTransport(handle)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for p in self.posts for e in p["body"]["events"]]


async def settle(clock: FakeClock) -> None:
    for _ in range(5):
        await clock.run_until_idle()


async def test_agent_activates_after_delay_and_events_reach_the_notifier() -> None:
    clock = FakeClock()
    rec = Recorder()
    config = SimConfig(profile="instant", seed=3, active_delay=0.5, time_scale=2.0,
                       notify_url="http://nova.test/v2.1", send_events_interval=2.0)  # fmt: skip
    app = create_app(config, clock=clock, notifier_transport=rec.transport())
    async with client(app) as c:
        net, _ = await network(c)
        port = await new_port(c, net["id"], **bound())
        await settle(clock)
        assert (await c.get(f"/v2.0/ports/{port['id']}")).json()["port"]["status"] == "DOWN"
        await clock.advance(0.9)  # 0.5 s x time_scale 2 = 1.0 s
        assert (await c.get(f"/v2.0/ports/{port['id']}")).json()["port"]["status"] == "DOWN"
        await clock.advance(0.1)
        await settle(clock)
        assert (await c.get(f"/v2.0/ports/{port['id']}")).json()["port"]["status"] == "ACTIVE"
        plugged = {"name": "network-vif-plugged", "server_uuid": SERVER, "status": "completed",
                   "tag": port["id"]}  # fmt: skip
        assert plugged in rec.events
        assert rec.posts[0]["url"] == "http://nova.test/v2.1/os-server-external-events"
        r = await c.put(f"/v2.0/ports/{port['id']}", json={"port": {"name": "x"}})
        assert r.status_code == 200
        await clock.advance(4.0)  # the batching interval (2 s x 2)
        await settle(clock)
        changed = {"name": "network-changed", "server_uuid": SERVER, "tag": port["id"]}
        assert changed in rec.events
        assert (await c.get("/_sim/events")).json()["events"] == [plugged, changed]
        await sim_of(app).notifier.aclose()


async def test_admin_status_endpoint_sends_events(c: httpx.AsyncClient) -> None:
    net, _ = await network(c)
    port = await new_port(c, net["id"], **bound())
    r = await c.post(f"/_sim/ports/{port['id']}/status", json={"status": "ACTIVE"})
    assert r.status_code == 200
    assert r.json()["port"]["status"] == "ACTIVE"
    r = await c.post(f"/_sim/ports/{port['id']}/status", json={"status": "DOWN"})
    r = await c.post(f"/_sim/ports/{port['id']}/status", json={"status": "ERROR"})
    names = [(e["name"], e.get("status")) for e in (await c.get("/_sim/events")).json()["events"]]
    assert names == [("network-vif-plugged", "completed"), ("network-vif-unplugged", "completed"),
                     ("network-vif-plugged", "failed")]  # fmt: skip
    assert (
        await c.post(f"/_sim/ports/{port['id']}/status", json={"status": "UP"})
    ).status_code == 400
    assert (
        await c.post(f"/_sim/ports/{uuid.uuid4()}/status", json={"status": "UP"})
    ).status_code == 400
    r = await c.post(f"/_sim/ports/{uuid.uuid4()}/status", json={"status": "DOWN"})
    assert r.status_code == 404


async def test_faults_500_503_and_timeout() -> None:
    clock = FakeClock()
    config = SimConfig(profile="instant", seed=1, active_delay=None, faults=[
        "GET /v2.0/networks: 500=1", "GET /v2.0/subnets: 503=100%",
        "POST /v2.0/networks: timeout=1, hang=30",
    ])  # fmt: skip
    app = create_app(config, clock=clock)
    async with client(app) as c:
        r = await c.get("/v2.0/networks")
        assert r.status_code == 500
        assert r.json()["NeutronError"]["type"] == "HTTPInternalServerError"
        r = await c.get("/v2.0/subnets")
        assert r.status_code == 503
        assert r.json()["NeutronError"]["type"] == "ServiceUnavailable"
        task = asyncio.create_task(c.post("/v2.0/networks", json={"network": {"project_id": P}}))
        await settle(clock)
        assert not task.done()
        await clock.advance(29.0)
        assert not task.done()
        await clock.advance(1.0)
        r = await task
        assert r.status_code == 504
        sim = sim_of(app)
        assert sim.state.count()["networks"] == 0  # never applied
        stats = (await c.get("/_sim/stats?log=5")).json()
        assert stats["requests"]["faults"] == {"500": 1, "503": 1, "timeout": 1}
        assert stats["faults"]["by_kind"] == {"500": 1, "503": 1, "timeout": 1}
        assert [x["status"] for x in stats["requests"]["log"]] == [500, 503, 504]


async def test_capacity_queueing_is_visible_in_stats() -> None:
    clock = FakeClock()
    app = create_app(SimConfig(profile="lan", workers=1, seed=5, active_delay=None), clock=clock)
    async with client(app) as c:
        tasks = [asyncio.create_task(c.get("/v2.0/networks")) for _ in range(3)]
        while not all(t.done() for t in tasks):
            await settle(clock)
            if await clock.advance_to_next() is None:
                await settle(clock)
        assert all(t.result().status_code == 200 for t in tasks)
        stats = (await c.get("/_sim/stats?log=10")).json()
        log = stats["requests"]["log"]
        assert [x["path"] for x in log] == ["/v2.0/networks"] * 3
        assert sorted(x["queued"] > 0 for x in log) == [False, True, True]
        assert all(x["service"] > 0 for x in log)
        assert stats["capacity"]["max_queue_depth"] == 2
        assert stats["requests"]["by_endpoint"] == {"GET /v2.0/networks": 3}


# ------------------------------------------------------------------ admin endpoints
async def test_stats_reset_and_path_templates(c: httpx.AsyncClient) -> None:
    net, _ = await network(c)
    await c.get(f"/v2.0/networks/{net['id']}")
    stats = (await c.get("/_sim/stats")).json()["requests"]
    assert stats["by_endpoint"]["GET /v2.0/networks/{id}"] == 1
    assert stats["by_method"] == {"GET": 1, "POST": 2}
    assert stats["log"] == []
    assert (await c.delete("/_sim/stats")).status_code == 200
    assert (await c.get("/_sim/stats")).json()["requests"]["total"] == 0
    assert (await c.get("/v2.0/networks")).json()["networks"]  # state kept
    assert (await c.post("/_sim/reset")).status_code == 200
    assert (await c.get("/v2.0/networks")).json() == {"networks": []}
    assert (await c.get("/_sim/stats?log=x")).status_code == 400


async def test_config_get_put_and_bad_input_changes_nothing(c: httpx.AsyncClient) -> None:
    before = (await c.get("/_sim/config")).json()
    assert before["profile"] == "instant"
    assert before["workers"] == 4
    for bad in (
        {"workers": 0},
        {"profile": "nope"},
        {"time_scale": -1},
        {"notify_url": "ftp://x"},
        {"faults": ["garbage"]},
        {"vif_type": "tap"},  # not changeable at runtime
        {"workers": 2, "profile": "nope"},  # all or nothing
        [1, 2],
    ):
        r = await c.put("/_sim/config", json=bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["NeutronError"]["message"]
        assert (await c.get("/_sim/config")).json() == before
    r = await c.put("/_sim/config", json={"workers": 2, "profile": "lan", "time_scale": 0.5,
                                          "faults": [{"method": "GET", "path": "/v2.0/ports", "error_503": 1}],
                                          "notify_url": "http://nova.test/v2.1", "active_delay": None})  # fmt: skip
    assert r.status_code == 200
    after = r.json()
    assert (after["workers"], after["profile"], after["time_scale"]) == (2, "lan", 0.5)
    assert after["effective"]["send_events_interval"] == 1.0
    stats = (await c.get("/_sim/stats")).json()
    assert stats["capacity"]["workers"] == 2
    assert stats["notifier"]["url"] == "http://nova.test/v2.1"
    assert (await c.get("/v2.0/ports")).status_code == 503


async def test_snapshot_save_and_load_through_the_lifespan(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    config = SimConfig(profile="instant", seed=2, active_delay=None, state_file=path)
    app = create_app(config)
    async with app.router.lifespan_context(app), client(app) as c:
        net, _ = await network(c)
        port = await new_port(c, net["id"], **bound())
        r = await c.post("/_sim/snapshot")
        assert r.status_code == 200
        assert path.exists()
    app2 = create_app(config)
    async with app2.router.lifespan_context(app2), client(app2) as c:
        assert (await c.get(f"/v2.0/ports/{port['id']}")).json()["port"] == (
            await c.get(f"/v2.0/ports/{port['id']}")
        ).json()["port"]
        got = (await c.get(f"/v2.0/ports/{port['id']}")).json()["port"]
        assert got["fixed_ips"] == port["fixed_ips"]
        assert got["mac_address"] == port["mac_address"]
        await c.put(f"/v2.0/ports/{port['id']}", json={"port": {"name": "after-restart"}})
    # saved at shutdown
    assert "after-restart" in path.read_text()
    app3 = create_app(SimConfig(profile="instant"))
    async with client(app3) as c:
        assert (await c.post("/_sim/snapshot")).status_code == 400  # no state file configured
