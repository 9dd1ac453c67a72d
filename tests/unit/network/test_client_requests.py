"""Each client call is exactly one HTTP request of the exact shape Neutron expects."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from neutron_unit_fakes import ENDPOINT, MakeClient, Reply, Script, sample

from hotport.network import (
    BadRequest,
    FloatingIP,
    MalformedResponse,
    Network,
    NetworkNotFound,
    NoAuth,
    PartialPort,
    Port,
    PortNotFound,
    Subnet,
)

# ids come from the recorded samples (they change whenever the samples are re-recorded)
PORT_ID = sample("show port")["body"]["port"]["id"]
NET_ID = sample("show port")["body"]["port"]["network_id"]
DEVICE = sample("bind port If-Match ok")["request"]["body"]["port"]["device_id"]
PROJECT = sample("create bound port")["request"]["body"]["port"]["project_id"]


def _query_ids(label: str, key: str) -> list[str]:
    query = sample(label)["request"]["path"].split("?", 1)[1]
    return [v for k, v in parse_qsl(query) if k == key]


def _body(request: httpx.Request) -> Any:
    return json.loads(request.content)


async def test_show_port_is_one_get(make_client: MakeClient) -> None:
    script = Script(Reply.of("show port"))
    client = make_client(script)

    port = await client.show_port(PORT_ID)

    assert isinstance(port, Port)
    assert port.id == PORT_ID
    assert len(script.requests) == 1
    req = script.last
    assert req.method == "GET"
    assert str(req.url) == f"{ENDPOINT}/v2.0/ports/{PORT_ID}"
    assert req.content == b""
    assert "if-match" not in req.headers
    assert client.counters == {"show_port": 1}


async def test_noauth_sends_no_token_and_no_project_header(make_client: MakeClient) -> None:
    script = Script(Reply.of("show port"))
    await make_client(script).show_port(PORT_ID)

    headers = {k.lower() for k in script.last.headers}
    assert "x-auth-token" not in headers
    assert "x-project-id" not in headers
    assert script.last.headers["accept"] == "application/json"


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://n.test:9696", "http://n.test:9696/v2.0/ports/p"),
        ("http://n.test:9696/", "http://n.test:9696/v2.0/ports/p"),
        ("http://n.test:9696/v2.0", "http://n.test:9696/v2.0/ports/p"),
        ("https://n.test/networking/", "https://n.test/networking/v2.0/ports/p"),
    ],
)
async def test_endpoint_forms(make_client: MakeClient, endpoint: str, expected: str) -> None:
    script = Script(Reply(200, {"port": {"id": "p", "network_id": "n", "mac_address": "m"}}))
    await make_client(script, auth=NoAuth(endpoint)).show_port("p")
    assert str(script.last.url) == expected


async def test_ids_are_quoted_into_one_path_segment(make_client: MakeClient) -> None:
    script = Script(Reply.of("show port 404"))
    with pytest.raises(PortNotFound):
        await make_client(script).show_port("../networks/x?y")
    assert script.last.url.raw_path == b"/v2.0/ports/..%2Fnetworks%2Fx%3Fy"


@pytest.mark.parametrize("bad", ["", "   "])
async def test_empty_id_is_refused_without_a_request(make_client: MakeClient, bad: str) -> None:
    script = Script(Reply.of("show port"))
    client = make_client(script)
    with pytest.raises(ValueError, match="non-empty"):
        await client.show_port(bad)
    with pytest.raises(ValueError, match="non-empty"):
        await client.delete_port(bad)
    with pytest.raises(ValueError, match="non-empty"):
        await client.unbind_port(bad)
    assert script.requests == []


async def test_list_ports_by_host_and_fields(make_client: MakeClient) -> None:
    script = Script(Reply.of("list ports by host + fields"))
    client = make_client(script)

    ports = await client.list_ports(host="compute-1", fields=["id", "status", "revision_number"])

    assert len(script.requests) == 1
    req = script.last
    assert req.method == "GET"
    assert req.url.path == "/v2.0/ports"
    assert req.url.params.multi_items() == [
        ("binding:host_id", "compute-1"),
        ("fields", "id"),
        ("fields", "status"),
        ("fields", "revision_number"),
    ]
    assert ports
    assert all(isinstance(p, PartialPort) for p in ports)
    assert all(p.id and p.revision_number is not None for p in ports)


async def test_list_ports_all_filters(make_client: MakeClient) -> None:
    script = Script(Reply(200, {"ports": []}))
    await make_client(script).list_ports(
        ids=["a", "b"],
        device_id=DEVICE,
        device_owner="compute:nova",
        network_id=NET_ID,
        host="compute-1",
    )
    assert script.last.url.params.multi_items() == [
        ("id", "a"),
        ("id", "b"),
        ("device_id", DEVICE),
        ("device_owner", "compute:nova"),
        ("network_id", NET_ID),
        ("binding:host_id", "compute-1"),
    ]


async def test_list_ports_repeated_id_parses_full_ports(make_client: MakeClient) -> None:
    script = Script(Reply.of("list ports by device_id"))
    ports = await make_client(script).list_ports(device_id=DEVICE)
    assert ports
    assert all(isinstance(p, Port) for p in ports)
    assert script.last.url.params.get_list("device_id") == [DEVICE]


async def test_list_ports_without_filters_lists_all(make_client: MakeClient) -> None:
    script = Script(Reply(200, {"ports": []}))
    assert await make_client(script).list_ports() == []
    assert str(script.last.url) == f"{ENDPOINT}/v2.0/ports"


async def test_list_ports_rejects_a_bare_string_as_ids(make_client: MakeClient) -> None:
    script = Script(Reply(200, {"ports": []}))
    with pytest.raises(TypeError):
        await make_client(script).list_ports(ids="abc")
    assert script.requests == []


async def test_bind_port_is_one_put_with_if_match(make_client: MakeClient) -> None:
    script = Script(Reply.of("bind port If-Match ok"))
    client = make_client(script)

    recorded = sample("bind port If-Match ok")
    port_id = recorded["body"]["port"]["id"]

    port = await client.bind_port(port_id, device_id=DEVICE, host="compute-1", revision=1)

    assert len(script.requests) == 1
    req = script.last
    assert req.method == "PUT"
    assert req.url.path == recorded["request"]["path"]
    assert recorded["request"]["headers"] == {"If-Match": "revision_number=1"}
    assert req.headers["if-match"] == "revision_number=1"
    assert _body(req) == sample("bind port If-Match ok")["request"]["body"]
    assert _body(req) == {
        "port": {
            "device_id": DEVICE,
            "device_owner": "compute:nova",
            "binding:host_id": "compute-1",
        }
    }
    assert port.host == "compute-1"
    assert port.vif_type == "ovs"
    assert port.revision_number == recorded["body"]["port"]["revision_number"]
    assert client.counters == {"bind_port": 1}


async def test_bind_port_without_revision_sends_no_if_match(make_client: MakeClient) -> None:
    script = Script(Reply.of("bind port If-Match ok"))
    await make_client(script).bind_port(
        PORT_ID, device_id=DEVICE, host="compute-1", device_owner="compute:az1"
    )
    assert "if-match" not in script.last.headers
    assert _body(script.last)["port"]["device_owner"] == "compute:az1"


@pytest.mark.parametrize("revision", [-1, True, "3"])
async def test_bind_port_refuses_a_bad_revision(make_client: MakeClient, revision: Any) -> None:
    script = Script(Reply.of("bind port If-Match ok"))
    with pytest.raises(ValueError, match="revision"):
        await make_client(script).bind_port(PORT_ID, device_id=DEVICE, host="h", revision=revision)
    assert script.requests == []


async def test_unbind_port_is_one_put(make_client: MakeClient) -> None:
    script = Script(Reply.of("unbind port"))
    port = await make_client(script).unbind_port(PORT_ID, revision=5)

    req = script.last
    assert len(script.requests) == 1
    assert req.method == "PUT"
    assert req.url.path == f"/v2.0/ports/{PORT_ID}"
    assert req.headers["if-match"] == "revision_number=5"
    assert _body(req) == {"port": {"device_id": "", "device_owner": "", "binding:host_id": None}}
    assert _body(req) == sample("unbind port")["request"]["body"]
    # what a real neutron-server answers
    assert port.host == ""
    assert port.vif_type == "unbound"
    assert port.device_id == ""
    assert not port.is_bound


async def test_unbind_of_an_unbound_port_succeeds_and_costs_one_request(
    make_client: MakeClient,
) -> None:
    script = Script(Reply.of("show port after unbind"))
    client = make_client(script)
    port = await client.unbind_port(PORT_ID)
    assert port.vif_type == "unbound"
    assert client.counters == {"unbind_port": 1}
    assert "if-match" not in script.last.headers


async def test_create_port_is_one_post_creating_it_bound(make_client: MakeClient) -> None:
    script = Script(Reply.of("create bound port"))
    client = make_client(script)

    recorded = sample("create bound port")["request"]["body"]["port"]
    port = await client.create_port(
        recorded["network_id"],
        device_id=recorded["device_id"],
        host=recorded["binding:host_id"],
        project_id=recorded["project_id"],
    )

    req = script.last
    assert len(script.requests) == 1
    assert req.method == "POST"
    assert str(req.url) == f"{ENDPOINT}/v2.0/ports"
    assert _body(req) == sample("create bound port")["request"]["body"]
    assert port.host == "compute-1"
    assert port.device_owner == "compute:nova"
    assert client.counters == {"create_port": 1}


async def test_create_port_optional_fields(make_client: MakeClient) -> None:
    script = Script(Reply.of("create bound port"))
    await make_client(script).create_port(
        NET_ID,
        device_id=DEVICE,
        host="compute-1",
        fixed_ips=[{"subnet_id": "s1", "ip_address": "192.0.2.9"}],
        name="eth1",
    )
    assert _body(script.last) == {
        "port": {
            "network_id": NET_ID,
            "device_id": DEVICE,
            "device_owner": "compute:nova",
            "binding:host_id": "compute-1",
            "fixed_ips": [{"subnet_id": "s1", "ip_address": "192.0.2.9"}],
            "name": "eth1",
        }
    }


async def test_delete_port(make_client: MakeClient) -> None:
    script = Script(Reply.of("delete port"))
    client = make_client(script)
    assert await client.delete_port(PORT_ID) is True
    assert script.last.method == "DELETE"
    assert script.last.url.path == f"/v2.0/ports/{PORT_ID}"
    assert client.counters == {"delete_port": 1}


async def test_delete_missing_port_is_ok_by_default(make_client: MakeClient) -> None:
    script = Script(Reply.of("delete port again"))
    client = make_client(script)
    assert await client.delete_port(PORT_ID) is False
    with pytest.raises(PortNotFound):
        await client.delete_port(PORT_ID, missing_ok=False)
    assert client.counters == {"delete_port": 2}
    assert client.retry_counters == {}


async def test_list_networks_many_ids_one_request(make_client: MakeClient) -> None:
    s = sample("list networks many ids")
    script = Script(Reply.of("list networks many ids"))
    ids = _query_ids("list networks many ids", "id")

    networks = await make_client(script).list_networks(ids)

    assert len(script.requests) == 1
    assert script.last.url.path == "/v2.0/networks"
    assert script.last.url.params.get_list("id") == ids
    assert str(script.last.url).endswith(s["request"]["path"])
    assert [n.id for n in networks] == [n["id"] for n in s["body"]["networks"]]
    assert isinstance(networks[0], Network)
    assert networks[0].mtu == 1500


async def test_show_network_is_one_get(make_client: MakeClient) -> None:
    s = sample("show network")
    net_id = s["body"]["network"]["id"]
    script = Script(Reply.of("show network"))
    client = make_client(script)

    network = await client.show_network(net_id)

    assert isinstance(network, Network)
    assert network.id == net_id
    assert str(script.last.url) == f"{ENDPOINT}/v2.0/networks/{net_id}"
    assert client.counters == {"show_network": 1}


async def test_show_network_with_fields_returns_the_object_as_sent(
    make_client: MakeClient,
) -> None:
    # a single-segment network has no `segments`: Neutron answers an empty object
    script = Script(Reply(200, {"network": {}}), Reply(200, {"network": {"mtu": 1450}}))
    client = make_client(script)

    assert await client.show_network("n1", fields=["segments"]) == {}
    assert script.last.url.params.multi_items() == [("fields", "segments")]
    shown = await client.show_network("n1", fields=["mtu", "provider:network_type"])
    assert shown == {"mtu": 1450}
    assert script.last.url.params.get_list("fields") == ["mtu", "provider:network_type"]
    assert client.counters == {"show_network": 2}


async def test_show_network_404_is_network_not_found(make_client: MakeClient) -> None:
    script = Script(Reply.of("show network 404"))
    with pytest.raises(NetworkNotFound):
        await make_client(script).show_network("a3bac773-ab5d-4363-b122-ef67a10ff530")


async def test_list_networks_of_a_project_and_shared_ones(make_client: MakeClient) -> None:
    script = Script(Reply.of("list networks many ids"))
    client = make_client(script)

    await client.list_networks(None, project_id="p1", shared=False)
    assert script.last.url.path == "/v2.0/networks"
    assert script.last.url.params.multi_items() == [("tenant_id", "p1"), ("shared", "False")]
    await client.list_networks(shared=True)
    assert script.last.url.params.multi_items() == [("shared", "True")]
    assert client.counters == {"list_networks": 2}


async def test_list_subnets_by_network(make_client: MakeClient) -> None:
    recorded = sample("list subnets by network")
    script = Script(Reply.of("list subnets by network"))
    net_ids = _query_ids("list subnets by network", "network_id")
    subnets = await make_client(script).list_subnets(network_ids=net_ids)
    assert script.last.url.params.multi_items() == [("network_id", net_ids[0])]
    assert str(script.last.url).endswith(recorded["request"]["path"])
    assert isinstance(subnets[0], Subnet)
    assert subnets[0].cidr == recorded["body"]["subnets"][0]["cidr"]


async def test_list_subnets_by_ids_and_networks(make_client: MakeClient) -> None:
    script = Script(Reply(200, {"subnets": []}))
    await make_client(script).list_subnets(ids=["s1", "s2"], network_ids=["n1"])
    assert script.last.url.params.multi_items() == [
        ("id", "s1"),
        ("id", "s2"),
        ("network_id", "n1"),
    ]


async def test_list_floating_ips_by_ports(make_client: MakeClient) -> None:
    fip = sample("create floatingip (port_id of a compute port)")["body"]["floatingip"]
    script = Script(Reply(200, {"floatingips": [fip]}))
    ids = _query_ids("list floatingips by port", "port_id")

    fips = await make_client(script).list_floating_ips(ids)

    assert len(script.requests) == 1
    assert script.last.url.path == "/v2.0/floatingips"
    assert script.last.url.params.get_list("port_id") == ids
    assert str(script.last.url).endswith(sample("list floatingips by port")["request"]["path"])
    assert isinstance(fips[0], FloatingIP)
    assert fips[0].floating_ip_address == fip["floating_ip_address"]


async def test_list_floating_ips_of_one_fixed_ip(make_client: MakeClient) -> None:
    script = Script(Reply(200, {"floatingips": []}))
    client = make_client(script)

    await client.list_floating_ips(["p1"], fixed_ip_address="10.0.0.5")

    assert script.last.url.params.multi_items() == [
        ("port_id", "p1"),
        ("fixed_ip_address", "10.0.0.5"),
    ]
    with pytest.raises(ValueError, match="fixed_ip_address"):
        await client.list_floating_ips(["p1"], fixed_ip_address="")
    assert client.counters == {"list_floating_ips": 1}


async def test_list_all_floating_ips_in_one_request(make_client: MakeClient) -> None:
    fip = sample("create floatingip (port_id of a compute port)")["body"]["floatingip"]
    script = Script(Reply(200, {"floatingips": [fip]}))

    fips = await make_client(script, id_chunk=2).list_floating_ips(None)

    assert len(script.requests) == 1
    assert script.last.url.params.multi_items() == []
    assert [f.id for f in fips] == [fip["id"]]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.list_networks([]),
        lambda c: c.list_subnets(ids=[]),
        lambda c: c.list_subnets(network_ids=[]),
        lambda c: c.list_subnets(ids=["a"], network_ids=[]),
        lambda c: c.list_floating_ips([]),
        lambda c: c.list_ports(ids=[]),
        lambda c: c.list_ports(ids=[], host="compute-1"),
    ],
)
async def test_empty_id_list_makes_no_request(make_client: MakeClient, call: Any) -> None:
    script = Script(Reply(500))
    client = make_client(script)
    assert await call(client) == []
    assert script.requests == []
    assert client.counters == {}


async def test_long_id_lists_are_chunked(make_client: MakeClient) -> None:
    def answer(request: httpx.Request) -> Reply:
        ids = request.url.params.get_list("port_id")
        return Reply(
            200,
            {
                "floatingips": [
                    {"id": f"fip-{i}", "floating_ip_address": "203.0.113.1", "port_id": i}
                    for i in ids
                ]
            },
        )

    script = Script(answer)
    client = make_client(script, id_chunk=3)
    ids = [f"p{i}" for i in range(7)]

    fips = await client.list_floating_ips([*ids, "p0", "p1"])  # duplicates are dropped

    chunks = [r.url.params.get_list("port_id") for r in script.requests]
    assert chunks == [["p0", "p1", "p2"], ["p3", "p4", "p5"], ["p6"]]
    assert [f.port_id for f in fips] == ids
    assert client.counters == {"list_floating_ips": 3}


async def test_default_chunk_is_100_ids(make_client: MakeClient) -> None:
    script = Script(Reply(200, {"networks": []}))
    client = make_client(script)
    assert client.id_chunk == 100
    await client.list_networks([f"n{i}" for i in range(250)])
    assert [len(r.url.params.get_list("id")) for r in script.requests] == [100, 100, 50]


async def test_chunks_run_concurrently(make_client: MakeClient) -> None:
    in_flight = 0
    peak = 0

    async def answer(request: httpx.Request) -> Reply:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(3):
            await asyncio.sleep(0)
        in_flight -= 1
        return Reply(200, {"networks": []})

    client = make_client(Script(answer), id_chunk=2)
    await client.list_networks(["a", "b", "c", "d", "e", "f"])
    assert peak == 3


async def test_a_failing_chunk_raises_its_own_typed_error(make_client: MakeClient) -> None:
    def answer(request: httpx.Request) -> Reply:
        if "c" in request.url.params.get_list("id"):
            return Reply.of("list ports unknown filter")
        return Reply(200, {"networks": []})

    client = make_client(Script(answer), id_chunk=2)
    with pytest.raises(BadRequest) as info:  # not an ExceptionGroup
        await client.list_networks(["a", "b", "c", "d"])
    assert type(info.value) is BadRequest


async def test_list_subnets_chunks_both_filters(make_client: MakeClient) -> None:
    script = Script(Reply(200, {"subnets": []}))
    client = make_client(script, id_chunk=2)
    await client.list_subnets(ids=["s1", "s2", "s3"], network_ids=["n1", "n2", "n3"])
    seen = {
        (tuple(r.url.params.get_list("id")), tuple(r.url.params.get_list("network_id")))
        for r in script.requests
    }
    assert seen == {
        (("s1", "s2"), ("n1", "n2")),
        (("s1", "s2"), ("n3",)),
        (("s3",), ("n1", "n2")),
        (("s3",), ("n3",)),
    }


async def test_next_page_links_are_followed_and_counted(make_client: MakeClient) -> None:
    first = sample("list ports limit 2")["body"]
    assert first["ports_links"][0]["rel"] == "next"
    last = {"ports": [{"id": "p3", "network_id": NET_ID, "mac_address": "fa:16:3e:00:00:03"}]}
    script = Script(Reply(200, first), Reply(200, last))
    client = make_client(script)

    ports = await client.list_ports(device_id=DEVICE)

    assert len(script.requests) == 2
    second = script.requests[1]
    # the link names the server's own host; the request still goes to our endpoint
    assert second.url.host == "neutron.test"
    assert second.url.path == "/v2.0/ports"
    href = first["ports_links"][0]["href"]
    assert second.url.params["marker"] == dict(parse_qsl(href.split("?", 1)[1]))["marker"]
    assert second.url.params["device_id"] == DEVICE
    assert [p.id for p in ports] == [p["id"] for p in first["ports"]] + ["p3"]
    assert client.counters == {"list_ports": 2}


async def test_a_looping_next_link_is_refused(make_client: MakeClient) -> None:
    page = sample("list ports marker")["body"]
    script = Script(Reply(200, page))
    client = make_client(script)
    with pytest.raises(MalformedResponse, match="loop"):
        await client.list_ports(device_id=DEVICE, fields=["id"])
    assert len(script.requests) == 2


async def test_a_previous_link_alone_is_not_followed(make_client: MakeClient) -> None:
    page = {
        "ports": [],
        "ports_links": [{"rel": "previous", "href": f"{ENDPOINT}/v2.0/ports?marker=x"}],
    }
    script = Script(Reply(200, page))
    assert await make_client(script).list_ports() == []
    assert len(script.requests) == 1


async def test_one_pool_for_many_calls(make_client: MakeClient) -> None:
    script = Script(Reply.of("show port"))
    client = make_client(script)
    pool = client._http
    await asyncio.gather(*(client.show_port(PORT_ID) for _ in range(5)))
    assert client._http is pool
    assert client.counters == {"show_port": 5}
