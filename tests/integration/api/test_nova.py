"""The Nova-compatible /v2.1 facade over HTTP (in-process ASGI), against the simulator.

The stack here is deterministic: the simulator's agent never sets a port ACTIVE on its
own (`active_delay=None`; a test that wants ACTIVE says so through `/_sim/ports/.../status`)
and its notifier sends each event at once (`send_events_interval=0`), to this facade's
`/v2.1/os-server-external-events`, as a real neutron-server's nova notifier does.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hotport.api.auth import Caller
from hotport.compose import ServiceStack, service_stack
from hotport.sim.config import SimConfig
from hotport.sim.seed import Seeder

from .conftest import new_instance

SIM = SimConfig(profile="instant", send_events_interval=0, active_delay=None)
V = {"OpenStack-API-Version": "compute 2.70"}  # tag shown in interface answers
V249 = {"OpenStack-API-Version": "compute 2.49"}  # tag accepted in an attach body
STAMP_2_1 = {
    "openstack-api-version": "compute 2.1",
    "x-openstack-nova-api-version": "2.1",
    "vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[ServiceStack]:
    s = await service_stack(tmp_path / "hotport.db", sim=SIM)
    try:
        yield s
    finally:
        await s.close()


async def settle(stack: ServiceStack) -> None:
    """Every event the simulator queued has reached the facade and its work is done."""
    await stack.sim.notifier.flush()
    await stack.manager.drain()


def expected_attachment(port: dict[str, Any], *, tag: Any = ..., state: str = "DOWN") -> dict:
    out: dict[str, Any] = {
        "net_id": port["network_id"],
        "port_id": port["id"],
        "mac_addr": port["mac_address"],
        "port_state": state,
        "fixed_ips": [
            {"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]}
            for ip in port["fixed_ips"]
        ],
    }
    if tag is not ...:
        out["tag"] = tag
    return out


def fault(r: httpx.Response, name: str, code: int) -> str:
    """The message of a Nova fault body, after checking its exact shape."""
    assert r.status_code == code, r.text
    body = r.json()
    assert list(body) == [name], body
    assert set(body[name]) == {"code", "message"}, body
    assert body[name]["code"] == code
    message: str = body[name]["message"]
    return message


# -- version documents and microversions ------------------------------------------------


async def test_version_documents_are_novas(stack: ServiceStack) -> None:
    r = await stack.api.get("/")
    assert r.status_code == 200
    assert r.json() == {
        "versions": [
            {
                "id": "v2.1",
                "status": "CURRENT",
                "version": "2.96",
                "min_version": "2.1",
                "updated": "2013-07-23T11:33:21Z",
                "links": [{"href": "http://hotport.local/v2.1/", "rel": "self"}],
            }
        ]
    }
    for path in ("/v2.1", "/v2.1/"):
        r = await stack.api.get(path)
        assert r.status_code == 200
        assert r.json() == {
            "version": {
                "id": "v2.1",
                "links": [
                    {"href": "http://hotport.local/v2.1/", "rel": "self"},
                    {
                        "href": "http://docs.openstack.org/",
                        "rel": "describedby",
                        "type": "text/html",
                    },
                ],
                "media-types": [
                    {
                        "base": "application/json",
                        "type": "application/vnd.openstack.compute+json;version=2.1",
                    }
                ],
                "status": "CURRENT",
                "version": "2.96",
                "min_version": "2.1",
                "updated": "2013-07-23T11:33:21Z",
            }
        }
        assert {k: r.headers[k] for k in STAMP_2_1} == STAMP_2_1


@pytest.mark.parametrize(
    ("headers", "served"),
    [
        ({}, "2.1"),
        ({"OpenStack-API-Version": "compute 2.70"}, "2.70"),
        ({"OpenStack-API-Version": "COMPUTE 2.49"}, "2.49"),
        ({"X-OpenStack-Nova-API-Version": "2.5"}, "2.5"),
        ({"OpenStack-API-Version": "identity 3.0, compute 2.60"}, "2.60"),
        # the new header wins over the legacy one; another service's entry is not ours
        ({"OpenStack-API-Version": "compute 2.3", "X-OpenStack-Nova-API-Version": "2.9"}, "2.3"),
        ({"OpenStack-API-Version": "identity 3.0", "X-OpenStack-Nova-API-Version": "2.9"}, "2.9"),
        ({"OpenStack-API-Version": "compute latest"}, "2.96"),
        ({"X-OpenStack-Nova-API-Version": "2.96"}, "2.96"),
    ],
)
async def test_microversion_is_negotiated_and_stamped(
    stack: ServiceStack, headers: dict[str, str], served: str
) -> None:
    r = await stack.api.get("/v2.1/servers", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["OpenStack-API-Version"] == f"compute {served}"
    assert r.headers["X-OpenStack-Nova-API-Version"] == served
    assert r.headers["Vary"] == "OpenStack-API-Version, X-OpenStack-Nova-API-Version"


@pytest.mark.parametrize("asked", ["2.0", "2.97", "3.0", "1.1"])
async def test_unsupported_microversion_is_406_as_nova(stack: ServiceStack, asked: str) -> None:
    r = await stack.api.get("/v2.1/servers", headers={"OpenStack-API-Version": f"compute {asked}"})
    message = fault(r, "computeFault", 406)
    assert message == (
        f"Version {asked} is not supported by the API. Minimum is 2.1 and maximum is 2.96."
    )


@pytest.mark.parametrize("asked", ["2", "2.x", "v2.1", "2.01", "02.1", ""])
async def test_malformed_microversion_is_400_as_nova(stack: ServiceStack, asked: str) -> None:
    r = await stack.api.get("/v2.1/servers", headers={"X-OpenStack-Nova-API-Version": asked})
    message = fault(r, "badRequest", 400)
    assert message == (
        f"API Version String {asked} is of invalid format. Must be of format MajorNum.MinorNum."
    )


async def test_a_bad_microversion_is_refused_before_anything_else(
    stack: ServiceStack, neutron: Seeder
) -> None:
    instance = await new_instance(stack)
    port = await neutron.port(await neutron.network())
    r = await stack.api.post(
        f"/v2.1/servers/{instance}/os-interface",
        json={"interfaceAttachment": {"port_id": port}},
        headers={"OpenStack-API-Version": "compute 2.200"},
    )
    fault(r, "computeFault", 406)
    assert (await neutron.show(port))["device_id"] == ""
    r = await stack.api.get(f"/v2.1/servers/{instance}/os-interface")
    assert r.json() == {"interfaceAttachments": []}


async def test_errors_are_stamped_with_the_version_too(stack: ServiceStack) -> None:
    r = await stack.api.get(f"/v2.1/servers/{uuid.uuid4()}", headers=V)
    fault(r, "itemNotFound", 404)
    assert r.headers["OpenStack-API-Version"] == "compute 2.70"


# -- servers ---------------------------------------------------------------------------


async def test_servers_list_detail_and_show(stack: ServiceStack, neutron: Seeder) -> None:
    instance = await new_instance(stack, "web-1")
    other = await new_instance(stack, "db-1")
    net = await neutron.network("10.0.0.0/24", name="private")
    port = await neutron.show(await neutron.port(net))
    r = await stack.api.post(
        f"/v2.1/servers/{instance}/os-interface",
        json={"interfaceAttachment": {"port_id": port["id"]}},
    )
    assert r.status_code == 200, r.text

    r = await stack.api.get("/v2.1/servers")
    assert r.status_code == 200
    servers = r.json()["servers"]
    assert list(r.json()) == ["servers"]
    assert {s["id"]: s["name"] for s in servers} == {instance: "web-1", other: "db-1"}
    assert next(s for s in servers if s["id"] == instance) == {
        "id": instance,
        "links": [{"href": f"http://hotport.local/v2.1/servers/{instance}", "rel": "self"}],
        "name": "web-1",
    }

    r = await stack.api.get(f"/v2.1/servers/{instance}")
    assert r.status_code == 200
    server = r.json()["server"]
    created = server.pop("created")
    assert server.pop("updated") == created
    assert created.endswith("Z")
    assert server == {
        "id": instance,
        "name": "web-1",
        "status": "ACTIVE",
        "OS-EXT-SRV-ATTR:host": "compute-1",
        "addresses": {
            "private": [
                {
                    "version": 4,
                    "addr": port["fixed_ips"][0]["ip_address"],
                    "OS-EXT-IPS:type": "fixed",
                    "OS-EXT-IPS-MAC:mac_addr": port["mac_address"],
                }
            ]
        },
        "links": [{"href": f"http://hotport.local/v2.1/servers/{instance}", "rel": "self"}],
        "metadata": {},
        "image": "",
        "flavor": {},
    }

    r = await stack.api.get("/v2.1/servers/detail", params={"name": "web"})
    assert r.status_code == 200
    [detail] = r.json()["servers"]
    assert detail["id"] == instance
    assert detail["addresses"] == server["addresses"]


async def test_servers_name_filter_and_pages(stack: ServiceStack) -> None:
    made = [await new_instance(stack, f"vm-{i}") for i in range(3)]
    await new_instance(stack, "other")
    r = await stack.api.get("/v2.1/servers", params={"name": "vm-"})
    newest_first = [s["id"] for s in r.json()["servers"]]
    assert sorted(newest_first) == sorted(made)

    r = await stack.api.get("/v2.1/servers", params={"name": "vm-", "limit": 2})
    page = r.json()
    assert [s["id"] for s in page["servers"]] == newest_first[:2]
    [link] = page["servers_links"]
    assert link["rel"] == "next"
    nxt = httpx.URL(link["href"])
    assert nxt.path == "/v2.1/servers"
    assert dict(nxt.params) == {"name": "vm-", "limit": "2", "marker": newest_first[1]}
    r = await stack.api.get(nxt.path, params=nxt.params)
    assert [s["id"] for s in r.json()["servers"]] == newest_first[2:]
    assert "servers_links" not in r.json()

    r = await stack.api.get("/v2.1/servers", params={"marker": str(uuid.uuid4())})
    assert "marker" in fault(r, "badRequest", 400)
    r = await stack.api.get("/v2.1/servers", params={"limit": -1})
    fault(r, "badRequest", 400)
    r = await stack.api.get("/v2.1/servers", params={"name": "(a+)+$"})  # never a regex
    assert r.json() == {"servers": []}


async def test_server_lookups_that_find_nothing_are_404(stack: ServiceStack) -> None:
    missing = str(uuid.uuid4())
    message = fault(await stack.api.get(f"/v2.1/servers/{missing}"), "itemNotFound", 404)
    assert missing in message
    # a name is not an id: 404 as Nova (clients then look the name up in the list)
    message = fault(await stack.api.get("/v2.1/servers/web-1"), "itemNotFound", 404)
    assert "web-1" in message
    assert "UUID" in message


# -- os-interface ----------------------------------------------------------------------


async def test_attach_list_show_detach_port_as_nova(stack: ServiceStack, neutron: Seeder) -> None:
    instance = await new_instance(stack)
    net = await neutron.network("10.0.0.0/24")
    port_id = await neutron.port(net)
    base = f"/v2.1/servers/{instance}/os-interface"

    r = await stack.api.post(
        base, json={"interfaceAttachment": {"port_id": port_id, "tag": "data"}}, headers=V
    )
    assert r.status_code == 200, r.text
    port = await neutron.show(port_id)
    assert port["device_id"] == instance
    assert port["binding:host_id"] == "compute-1"
    assert r.json() == {"interfaceAttachment": expected_attachment(port, tag="data")}

    r = await stack.api.get(base, headers=V)
    assert r.status_code == 200
    assert r.json() == {"interfaceAttachments": [expected_attachment(port, tag="data")]}
    r = await stack.api.get(f"{base}/{port_id}", headers=V)
    assert r.status_code == 200
    assert r.json() == {"interfaceAttachment": expected_attachment(port, tag="data")}
    # before 2.70 there is no tag key at all
    r = await stack.api.get(f"{base}/{port_id}")
    assert r.json() == {"interfaceAttachment": expected_attachment(port)}
    r = await stack.api.get(base, headers={"OpenStack-API-Version": "compute 2.69"})
    assert r.json() == {"interfaceAttachments": [expected_attachment(port)]}

    r = await stack.api.delete(f"{base}/{port_id}")
    assert r.status_code == 202
    assert r.content == b""
    assert (await neutron.show(port_id))["device_id"] == ""
    assert (await stack.api.get(base)).json() == {"interfaceAttachments": []}
    r = await stack.api.get(f"{base}/{port_id}")
    assert port_id in fault(r, "itemNotFound", 404)
    r = await stack.api.delete(f"{base}/{port_id}")
    fault(r, "itemNotFound", 404)


async def test_attach_on_a_network_with_a_fixed_ip(stack: ServiceStack, neutron: Seeder) -> None:
    instance = await new_instance(stack)
    net = await neutron.network("10.1.0.0/24")
    base = f"/v2.1/servers/{instance}/os-interface"
    r = await stack.api.post(
        base,
        json={"interfaceAttachment": {"net_id": net, "fixed_ips": [{"ip_address": "10.1.0.42"}]}},
    )
    assert r.status_code == 200, r.text
    attachment = r.json()["interfaceAttachment"]
    port = await neutron.show(attachment["port_id"])
    assert port["device_id"] == instance
    assert [ip["ip_address"] for ip in port["fixed_ips"]] == ["10.1.0.42"]
    assert attachment == expected_attachment(port)
    # the port hotport created is deleted on detach
    r = await stack.api.delete(f"{base}/{port['id']}")
    assert r.status_code == 202
    gone = await stack.admin.get(f"/v2.0/ports/{port['id']}")
    assert gone.status_code == 404


async def test_port_state_follows_the_port_status_events(
    stack: ServiceStack, neutron: Seeder
) -> None:
    instance = await new_instance(stack)
    port_id = await neutron.port(await neutron.network())
    url = f"/v2.1/servers/{instance}/os-interface"
    r = await stack.api.post(url, json={"interfaceAttachment": {"port_id": port_id}})
    assert r.json()["interfaceAttachment"]["port_state"] == "DOWN"
    r = await stack.admin.post(f"/_sim/ports/{port_id}/status", json={"status": "ACTIVE"})
    assert r.status_code == 200, r.text
    await settle(stack)  # network-vif-plugged went through the facade's events endpoint
    r = await stack.api.get(f"{url}/{port_id}")
    assert r.json()["interfaceAttachment"]["port_state"] == "ACTIVE"
    notifier = stack.sim.notifier.snapshot()
    assert notifier["events_rejected"] == 0
    assert notifier["batches_failed"] == 0


BAD_BODIES: list[tuple[Any, dict[str, str], str]] = [
    ({}, {}, "port_id"),
    ({"interfaceAttachment": {}}, {}, "port_id"),
    ({"interfaceAttachment": {"port_id": "PORT", "net_id": "NET"}}, {}, "not both"),
    ({"interfaceAttachment": {"port_id": "PORT", "colour": "red"}}, {}, "colour"),
    ({"interfaceAttachment": {"port_id": "PORT"}, "extra": 1}, {}, "extra"),
    ({"interfaceAttachment": {"port_id": None}}, {}, "null"),
    ({"interfaceAttachment": {"port_id": "not-a-uuid"}}, {}, "port_id"),
    ({"interfaceAttachment": {"net_id": "not-a-uuid"}}, {}, "net_id"),
    ({"interfaceAttachment": {"port_id": "PORT", "tag": "t"}}, {}, "2.49"),
    ({"interfaceAttachment": {"port_id": "PORT", "tag": "a/b"}}, V249, "tag"),
    ({"interfaceAttachment": {"port_id": "PORT", "tag": ""}}, V249, "tag"),
    ({"interfaceAttachment": {"port_id": "PORT", "tag": "x" * 61}}, V249, "tag"),
    (
        {"interfaceAttachment": {"port_id": "PORT", "fixed_ips": [{"ip_address": "10.0.0.5"}]}},
        {},
        "net_id",
    ),
    (
        {"interfaceAttachment": {"net_id": "NET", "fixed_ips": [{"ip_address": "10.0.0.999"}]}},
        {},
        "ip_address",
    ),
    (
        {
            "interfaceAttachment": {
                "net_id": "NET",
                "fixed_ips": [{"ip_address": "10.0.0.5"}, {"ip_address": "10.0.0.6"}],
            }
        },
        {},
        "fixed_ips",
    ),
    ({"interfaceAttachment": {"net_id": "NET", "fixed_ips": [{"subnet_id": "x"}]}}, {}, "subnet"),
    ({"interfaceAttachment": "PORT"}, {}, "interfaceAttachment"),
    (["PORT"], {}, ""),
]


async def test_bad_attach_bodies_are_400_and_change_nothing(
    stack: ServiceStack, neutron: Seeder
) -> None:
    instance = await new_instance(stack)
    net = await neutron.network("10.0.0.0/24")
    port_id = await neutron.port(net)
    url = f"/v2.1/servers/{instance}/os-interface"

    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return {"PORT": port_id, "NET": net}.get(value, value) if isinstance(value, str) else value

    for body, headers, words in BAD_BODIES:
        r = await stack.api.post(url, json=fill(body), headers=headers)
        message = fault(r, "badRequest", 400)
        assert words in message, (body, message)
    r = await stack.api.post(
        url, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert "JSON" in fault(r, "badRequest", 400)
    r = await stack.api.post(url, content=b"", headers={"content-type": "application/json"})
    fault(r, "badRequest", 400)

    assert (await stack.api.get(url)).json() == {"interfaceAttachments": []}
    assert (await neutron.show(port_id))["device_id"] == ""
    ports = (await stack.admin.get("/v2.0/ports")).json()["ports"]
    assert [p["id"] for p in ports] == [port_id]  # no port was created on the network either


async def test_a_port_of_another_server_is_409_and_stays_there(
    stack: ServiceStack, neutron: Seeder
) -> None:
    instance = await new_instance(stack)
    owner = str(uuid.uuid4())
    port_id = await neutron.port(
        await neutron.network(), device_id=owner, device_owner="compute:nova"
    )
    r = await stack.api.post(
        f"/v2.1/servers/{instance}/os-interface",
        json={"interfaceAttachment": {"port_id": port_id}},
    )
    assert port_id in fault(r, "conflictingRequest", 409)
    port = await neutron.show(port_id)
    assert port["device_id"] == owner
    r = await stack.api.get(f"/v2.1/servers/{instance}/os-interface")
    assert r.json() == {"interfaceAttachments": []}


async def test_unknown_servers_and_ports_are_404(stack: ServiceStack, neutron: Seeder) -> None:
    missing = str(uuid.uuid4())
    port_id = await neutron.port(await neutron.network())
    body = {"interfaceAttachment": {"port_id": port_id}}
    for r in (
        await stack.api.get(f"/v2.1/servers/{missing}/os-interface"),
        await stack.api.post(f"/v2.1/servers/{missing}/os-interface", json=body),
        await stack.api.get(f"/v2.1/servers/{missing}/os-interface/{port_id}"),
        await stack.api.delete(f"/v2.1/servers/{missing}/os-interface/{port_id}"),
        await stack.api.post("/v2.1/servers/not-a-uuid/os-interface", json=body),
    ):
        fault(r, "itemNotFound", 404)
    assert (await neutron.show(port_id))["device_id"] == ""

    instance = await new_instance(stack)
    r = await stack.api.post(
        f"/v2.1/servers/{instance}/os-interface",
        json={"interfaceAttachment": {"port_id": missing}},
    )
    assert missing in fault(r, "itemNotFound", 404)
    r = await stack.api.get(f"/v2.1/servers/{instance}/os-interface/not-a-port")
    assert "not-a-port" in fault(r, "itemNotFound", 404)
    r = await stack.api.delete(f"/v2.1/servers/{instance}/os-interface/{port_id}")
    fault(r, "itemNotFound", 404)


async def test_stopping_service_answers_503(stack: ServiceStack, neutron: Seeder) -> None:
    instance = await new_instance(stack)
    port_id = await neutron.port(await neutron.network())
    stack.service._accepting = False  # what stop() does first
    try:
        r = await stack.api.post(
            f"/v2.1/servers/{instance}/os-interface",
            json={"interfaceAttachment": {"port_id": port_id}},
        )
        fault(r, "serviceUnavailable", 503)
        assert r.headers["Retry-After"] == "5"
    finally:
        stack.service._accepting = True
    assert (await neutron.show(port_id))["device_id"] == ""


# -- os-server-external-events ---------------------------------------------------------


async def test_events_as_neutron_sends_them(stack: ServiceStack, neutron: Seeder) -> None:
    instance = await new_instance(stack)
    port_id = await neutron.port(await neutron.network())
    url = f"/v2.1/servers/{instance}/os-interface"
    r = await stack.api.post(url, json={"interfaceAttachment": {"port_id": port_id}})
    assert r.status_code == 200, r.text
    await settle(stack)
    # the port goes ACTIVE while the simulator's notifier is off: only the events posted
    # below can tell hotport
    r = await stack.admin.put("/_sim/config", json={"notify_url": None})
    assert r.status_code == 200, r.text
    r = await stack.admin.post(f"/_sim/ports/{port_id}/status", json={"status": "ACTIVE"})
    assert r.status_code == 200, r.text
    await settle(stack)
    r = await stack.api.get(f"{url}/{port_id}")
    assert r.json()["interfaceAttachment"]["port_state"] == "DOWN"

    # what a real neutron-server's notifier posts (python-novaclient, microversion 2.1)
    events = [
        {
            "name": "network-vif-plugged",
            "server_uuid": instance,
            "status": "completed",
            "tag": port_id,
        },
        {"name": "network-changed", "server_uuid": instance, "tag": port_id},
    ]
    r = await stack.api.post(
        "/v2.1/os-server-external-events",
        json={"events": events},
        headers={"X-OpenStack-Nova-API-Version": "2.1", "X-Auth-Token": "notused"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "events": [
            {**events[0], "code": 200},
            {**events[1], "status": "completed", "code": 200},
        ]
    }
    assert r.headers["X-OpenStack-Nova-API-Version"] == "2.1"
    await stack.manager.drain()
    r = await stack.api.get(f"{url}/{port_id}")
    assert r.json()["interfaceAttachment"]["port_state"] == "ACTIVE"


async def test_events_for_unknown_servers_are_207_then_404(stack: ServiceStack) -> None:
    instance = await new_instance(stack)
    stranger = str(uuid.uuid4())
    port = str(uuid.uuid4())
    mixed = [
        {"name": "network-changed", "server_uuid": instance},
        {"name": "network-vif-deleted", "server_uuid": stranger, "tag": port},
    ]
    r = await stack.api.post("/v2.1/os-server-external-events", json={"events": mixed})
    assert r.status_code == 207, r.text
    assert r.json() == {
        "events": [
            {**mixed[0], "status": "completed", "code": 200},
            {**mixed[1], "status": "failed", "code": 404},
        ]
    }
    r = await stack.api.post("/v2.1/os-server-external-events", json={"events": mixed[1:]})
    message = fault(r, "itemNotFound", 404)
    assert message.startswith("No instances found for any event")
    assert stranger in message


async def test_event_names_follow_the_microversion(stack: ServiceStack) -> None:
    instance = await new_instance(stack)
    extended = {"name": "volume-extended", "server_uuid": instance, "tag": "vol"}
    changed = {"name": "network-changed", "server_uuid": instance}
    url = "/v2.1/os-server-external-events"
    r = await stack.api.post(url, json={"events": [extended, changed]})
    assert "volume-extended" in fault(r, "badRequest", 400)
    # from 2.51 the name is valid; hotport only handles network events: that one fails
    r = await stack.api.post(
        url,
        json={"events": [extended, changed]},
        headers={"OpenStack-API-Version": "compute 2.51"},
    )
    assert r.status_code == 207, r.text
    assert [(e["name"], e["status"], e["code"]) for e in r.json()["events"]] == [
        ("volume-extended", "failed", 400),
        ("network-changed", "completed", 200),
    ]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "events"),
        ({"events": []}, "events"),
        ({"events": [{"name": "network-changed"}]}, "server_uuid"),
        ({"events": [{"server_uuid": "SERVER"}]}, "name"),
        ({"events": [{"name": "network-changed", "server_uuid": "nope"}]}, "server_uuid"),
        ({"events": [{"name": "network-exploded", "server_uuid": "SERVER"}]}, "network-exploded"),
        ({"events": [{"name": "network-changed", "server_uuid": "SERVER", "x": 1}]}, "x"),
        (
            {"events": [{"name": "network-changed", "server_uuid": "SERVER", "status": "ok"}]},
            "status",
        ),
        (
            {"events": [{"name": "network-changed", "server_uuid": "SERVER", "tag": "t" * 256}]},
            "tag",
        ),
        ({"events": [{"name": "network-changed", "server_uuid": "SERVER"}], "more": []}, "more"),
        ({"events": {"name": "network-changed"}}, "events"),
    ],
)
async def test_malformed_events_are_400(stack: ServiceStack, body: Any, words: str) -> None:
    instance = await new_instance(stack)
    text = str(body).replace("SERVER", instance).replace("'", '"')
    r = await stack.api.post(
        "/v2.1/os-server-external-events",
        content=text.encode(),
        headers={"content-type": "application/json"},
    )
    assert words in fault(r, "badRequest", 400)


class MemberOnly:
    """A caller with a valid token but no admin or service role."""

    mode = "static"
    admin_roles = frozenset({"admin", "service"})

    async def authenticate(self, token: str | None) -> Caller:
        return Caller(user="alice", project_id="p", roles=frozenset({"member"}))

    async def aclose(self) -> None:
        return None


async def test_events_need_the_admin_or_service_role(tmp_path: Path) -> None:
    s = await service_stack(tmp_path / "hotport.db", sim=SIM, authenticator=MemberOnly())
    try:
        instance = str(uuid.uuid4())
        r = await s.api.post("/v1/instances", json={"uuid": instance, "name": "vm"})
        assert r.status_code == 201, r.text
        r = await s.api.post(
            "/v2.1/os-server-external-events",
            json={"events": [{"name": "network-changed", "server_uuid": instance}]},
        )
        assert "admin" in fault(r, "forbidden", 403)
        # the other routes need only a valid token
        r = await s.api.get(f"/v2.1/servers/{instance}/os-interface")
        assert r.status_code == 200, r.text
    finally:
        await s.close()
