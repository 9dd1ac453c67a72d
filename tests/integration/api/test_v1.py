"""The native /v1 API over HTTP (in-process ASGI), against the simulator."""

from __future__ import annotations

import logging
import uuid

import pytest

from hotport.compose import ServiceStack
from hotport.sim.seed import Seeder

from .conftest import new_instance


async def test_attach_detach_round_trip_with_trace(stack: ServiceStack, neutron: Seeder) -> None:
    instance = await new_instance(stack)
    net = await neutron.network("10.0.0.0/24")
    port = await neutron.show(await neutron.port(net))
    r = await stack.api.post(f"/v1/instances/{instance}/interfaces", json={"port_id": port["id"]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["interface"]["id"] == port["id"]
    assert body["created_port"] is False
    assert body["trace"]["kind"] == "attach"
    assert body["trace"]["network_request_total"] >= 3
    assert any(p["name"] == "plug" for p in body["trace"]["phases"]), body["trace"]["phases"]

    r = await stack.api.get(f"/v1/instances/{instance}")
    assert r.status_code == 200
    detail = r.json()
    assert [i["id"] for i in detail["interfaces"]] == [port["id"]]
    assert [n["mac"] for n in detail["nics"]] == [port["mac_address"]]

    r = await stack.api.get(f"/v1/instances/{instance}/interfaces/{port['id']}")
    assert r.status_code == 200
    assert r.json()["interface"]["address"] == port["mac_address"]

    r = await stack.api.delete(f"/v1/instances/{instance}/interfaces/{port['id']}")
    assert r.status_code == 200, r.text
    assert r.json()["trace"]["kind"] == "detach"
    r = await stack.api.get(f"/v1/instances/{instance}/interfaces")
    assert r.json() == {"interfaces": []}
    r = await stack.api.get("/v1/operations", params={"instance": instance})
    kinds = [(o["kind"], o["state"]) for o in r.json()["operations"]]
    assert ("attach", "done") in kinds, kinds
    assert ("detach", "done") in kinds, kinds


async def test_bad_input_is_a_400_that_changes_nothing(
    stack: ServiceStack, neutron: Seeder
) -> None:
    instance = await new_instance(stack)
    net = await neutron.network("10.0.0.0/24")
    port = await neutron.show(await neutron.port(net))
    url = f"/v1/instances/{instance}/interfaces"
    cases = [
        ({"port_id": port["id"], "network_id": net}, "exactly one"),
        ({}, "exactly one"),
        ({"port_id": "nope"}, "port_id"),
        ({"port_id": port["id"], "colour": "red"}, "colour"),
    ]
    for body, words in cases:
        r = await stack.api.post(url, json=body)
        assert r.status_code == 400, (body, r.text)
        assert words in r.json()["error"]["message"], r.text
    r = await stack.api.post(
        url, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert "JSON" in r.json()["error"]["message"]
    assert (await stack.api.get(url)).json() == {"interfaces": []}
    assert (await neutron.show(port["id"]))["device_id"] == ""


async def test_unknown_instance_and_interface_are_404(stack: ServiceStack) -> None:
    missing = str(uuid.uuid4())
    r = await stack.api.get(f"/v1/instances/{missing}")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "InstanceNotFound"
    r = await stack.api.get("/v1/instances/not-a-uuid")
    assert r.status_code == 400
    assert "not a valid UUID" in r.json()["error"]["message"]
    instance = await new_instance(stack)
    r = await stack.api.delete(f"/v1/instances/{instance}/interfaces/{missing}")
    assert r.status_code == 404, r.text


async def test_instance_create_conflict_and_delete(stack: ServiceStack) -> None:
    instance = await new_instance(stack)
    r = await stack.api.post("/v1/instances", json={"uuid": instance, "name": "again"})
    assert r.status_code == 409
    r = await stack.api.get("/v1/instances")
    assert [i["uuid"] for i in r.json()["instances"]] == [instance]
    r = await stack.api.delete(f"/v1/instances/{instance}")
    assert r.status_code == 204
    assert (await stack.api.get("/v1/instances")).json() == {"instances": []}


async def test_heal_reports_what_it_found(stack: ServiceStack, neutron: Seeder) -> None:
    await new_instance(stack)
    r = await stack.api.post("/v1/heal")
    assert r.status_code == 200, r.text
    assert r.json()["instances"] == 1
    assert r.json()["drift"] == 0


async def test_stopping_service_refuses_new_operations(stack: ServiceStack) -> None:
    stack.service._accepting = False  # what stop() does first
    r = await stack.api.post("/v1/instances", json={"uuid": str(uuid.uuid4()), "name": "x"})
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "5"
    r = await stack.api.get("/readyz")
    assert r.status_code == 503
    stack.service._accepting = True
    assert (await stack.api.get("/readyz")).status_code == 200


async def test_request_id_is_returned_and_kept(stack: ServiceStack) -> None:
    r = await stack.api.get("/healthz")
    assert r.headers["X-Openstack-Request-Id"].startswith("req-")
    rid = f"req-{uuid.uuid4()}"
    r = await stack.api.get("/v1/instances", headers={"X-Openstack-Request-Id": rid})
    assert r.headers["X-Openstack-Request-Id"] == rid


async def test_405_names_every_method_of_the_path(stack: ServiceStack) -> None:
    r = await stack.api.put("/v1/instances")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, POST"
    assert "use GET, POST" in r.json()["error"]["message"]


async def test_path_ids_that_are_not_uuids_say_so(stack: ServiceStack) -> None:
    instance = await new_instance(stack)
    r = await stack.api.get(f"/v1/instances/{instance}/interfaces/0")
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "path.port_id: '0' is not a valid UUID"


async def test_null_for_an_optional_field_is_refused(stack: ServiceStack, neutron: Seeder) -> None:
    instance = await new_instance(stack)
    port = await neutron.port(await neutron.network("10.0.0.0/24"))
    r = await stack.api.post(
        f"/v1/instances/{instance}/interfaces", json={"port_id": port, "tag": None}
    )
    assert r.status_code == 400
    assert "tag must not be null" in r.json()["error"]["message"]
    assert (await neutron.show(port))["device_id"] == ""


async def test_openapi_says_exactly_one_of_port_id_and_network_id(stack: ServiceStack) -> None:
    schema = (await stack.api.get("/openapi.json")).json()
    attach = schema["components"]["schemas"]["AttachRequest"]
    assert [sorted(branch["required"]) for branch in attach["oneOf"]] == [
        ["port_id"],
        ["network_id"],
    ]
    assert all("anyOf" not in prop for prop in attach["properties"].values())


async def test_each_request_is_logged_once_with_its_request_id(
    stack: ServiceStack, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="hotport.access"):
        r = await stack.api.get("/v1/instances")
    lines = [rec for rec in caplog.records if rec.name == "hotport.access"]
    assert len(lines) == 1
    assert lines[0].request_id == r.headers["X-Openstack-Request-Id"]  # type: ignore[attr-defined]
    assert '"GET /v1/instances" 200' in lines[0].getMessage()
