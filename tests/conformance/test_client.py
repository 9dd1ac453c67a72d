"""hotport's Neutron client held to both servers: every call, one request, typed results and errors.

The same client calls run against the simulator and a real neutron-server 29
(see conftest.py); each call must cost exactly one HTTP request and map the
server's answers to the same typed results and errors.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from hotport.network import (
    IpAddressInUse,
    MacAddressInUse,
    NetworkNotFound,
    NeutronClient,
    NoAuth,
    PortNotFound,
    RevisionMismatch,
)

from .conftest import HOST, PROJECT_ID, Target


@pytest.fixture
async def client(target: Target) -> AsyncIterator[NeutronClient]:
    async with NeutronClient(NoAuth(target.url)) as c:
        yield c


def one_request(client: NeutronClient, call: str) -> None:
    """The client sent exactly one request since the last check, for `call`."""
    assert client.counters == {call: 1}, client.counters
    client.reset_counters()


async def test_port_lifecycle(target: Target, client: NeutronClient) -> None:
    net, sub = await target.network()
    server = str(uuid.uuid4())

    port = await client.create_port(
        net["id"], device_id=server, host=HOST, project_id=PROJECT_ID, name="c1"
    )
    one_request(client, "create_port")
    target.created.append(("ports", port.id))
    assert port.device_id == server
    assert port.host == HOST
    assert port.vif_type == "ovs"
    assert port.fixed_ips[0].subnet_id == sub["id"]
    assert port.to_neutron()["binding:vif_details"]["bridge_name"] == "br-int"

    shown = await client.show_port(port.id)
    one_request(client, "show_port")
    assert shown.revision_number == port.revision_number
    assert shown.to_neutron() == {
        **port.to_neutron(),
        "updated_at": shown.to_neutron()["updated_at"],
    }

    unbound = await client.unbind_port(port.id, revision=shown.revision_number)
    one_request(client, "unbind_port")
    assert (unbound.device_id, unbound.host, unbound.vif_type) == ("", "", "unbound")
    assert unbound.revision_number > shown.revision_number

    with pytest.raises(RevisionMismatch) as stale:
        await client.bind_port(port.id, device_id=server, host=HOST, revision=shown.revision_number)
    one_request(client, "bind_port")
    assert stale.value.status == 412

    bound = await client.bind_port(
        port.id, device_id=server, host=HOST, revision=unbound.revision_number
    )
    one_request(client, "bind_port")
    assert bound.device_id == server
    assert bound.revision_number > unbound.revision_number

    assert await client.delete_port(port.id) is True
    one_request(client, "delete_port")
    assert await client.delete_port(port.id) is False  # idempotent: already gone
    one_request(client, "delete_port")
    with pytest.raises(PortNotFound):
        await client.show_port(port.id)
    one_request(client, "show_port")


async def test_lists_by_many_ids_one_request_each(target: Target, client: NeutronClient) -> None:
    net_a, sub_a = await target.network()
    net_b, sub_b = await target.network()
    server = str(uuid.uuid4())
    ports = [
        await client.create_port(n["id"], device_id=server, host=HOST, project_id=PROJECT_ID)
        for n in (net_a, net_b, net_a)
    ]
    target.created.extend(("ports", p.id) for p in ports)
    client.reset_counters()

    listed = await client.list_ports(device_id=server)
    one_request(client, "list_ports")
    assert sorted(p.id for p in listed) == sorted(p.id for p in ports)

    partial = await client.list_ports(
        host=HOST, ids=[p.id for p in ports], fields=["id", "revision_number"]
    )
    one_request(client, "list_ports")
    assert {p.id for p in partial} == {p.id for p in ports}

    nets = await client.list_networks([net_a["id"], net_b["id"], str(uuid.uuid4())])
    one_request(client, "list_networks")
    assert {n.id: n.mtu for n in nets} == {net_a["id"]: 1500, net_b["id"]: 1500}

    subs = await client.list_subnets(network_ids=[net_a["id"], net_b["id"]])
    one_request(client, "list_subnets")
    assert {s.id for s in subs} == {sub_a["id"], sub_b["id"]}
    assert all(s.gateway_ip is not None for s in subs)

    fips = await client.list_floating_ips([p.id for p in ports])
    one_request(client, "list_floating_ips")
    assert fips == []

    assert await client.list_networks([]) == []
    assert client.counters == {}  # an empty id list sends nothing


async def test_typed_conflicts(target: Target, client: NeutronClient) -> None:
    net, _ = await target.network()
    server = str(uuid.uuid4())
    port = await client.create_port(net["id"], device_id=server, host=HOST, project_id=PROJECT_ID)
    target.created.append(("ports", port.id))
    ip = port.fixed_ips[0].ip_address

    with pytest.raises(IpAddressInUse) as in_use:
        await client.create_port(
            net["id"],
            device_id=server,
            host=HOST,
            project_id=PROJECT_ID,
            fixed_ips=[{"ip_address": ip}],
        )
    assert in_use.value.status == 409
    with pytest.raises(NetworkNotFound):
        await client.create_port(
            str(uuid.uuid4()), device_id=server, host=HOST, project_id=PROJECT_ID
        )
    r = await target.http.post(
        "/v2.0/ports",
        json={
            "port": {
                "network_id": net["id"],
                "project_id": PROJECT_ID,
                "mac_address": port.mac_address,
            }
        },
    )
    assert r.status_code == 409
    assert r.json()["NeutronError"]["type"] == MacAddressInUse.__name__
    # nothing was created by the refused requests
    assert [p.id for p in await client.list_ports(network_id=net["id"])] == [port.id]
