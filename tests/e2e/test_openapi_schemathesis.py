"""Schemathesis against hotport's own OpenAPI document, over a real socket.

A live hotport (uvicorn, in a thread) with the Neutron simulator behind it serves
`/openapi.json`; schemathesis generates requests for every operation from it (valid and
invalid ones) and checks every answer:

- `not_a_server_error`: no 5xx, whatever the input;
- `status_code_conformance`: the status is one the document declares for the operation;
- `content_type_conformance`: the Content-Type is one the document declares;
- `response_schema_conformance`: the body matches the declared schema.

Some generated requests are pointed at real objects (the path parameters and the attach
body are swapped for a seeded instance, an attached port, a free port and a network), so
the checks also cover the answers of real operations, not only the 404s of random ids.

Needs no external peer: it never skips. The number of examples per operation is bounded
(`MAX_EXAMPLES`) so the run stays well under a minute.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hotport.api.app import create_api
from hotport.service.config import ServiceConfig
from hotport.service.runtime import Service
from hotport.sim.seed import Seeder

from .live import LiveService

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass(frozen=True)
class Seeded:
    """Real objects the generated requests may be pointed at."""

    instance: str
    network: str
    attached_port: str
    free_ports: tuple[str, ...]


def _seed(live: LiveService) -> Seeded:
    assert live.sim_url is not None

    async def neutron_side() -> tuple[str, list[str]]:
        async with httpx.AsyncClient(base_url=live.sim_url or "", timeout=30) as http:
            seeder = Seeder(http)
            net = await seeder.network(name="schemathesis")
            ports = [await seeder.port(net) for _ in range(4)]
            return net, ports

    network, ports = live.call(neutron_side)
    instance = str(uuid.uuid4())
    with httpx.Client(base_url=live.url, timeout=30) as api:
        r = api.post("/v1/instances", json={"uuid": instance, "name": "schemathesis"})
        assert r.status_code == 201, r.text
        r = api.post(f"/v1/instances/{instance}/interfaces", json={"port_id": ports[0]})
        assert r.status_code == 201, r.text
    return Seeded(instance, network, ports[0], tuple(ports[1:]))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with LiveService(tmp_path_factory.mktemp("schemathesis"), with_sim=True) as live:
        yield live


@pytest.fixture
def seeded(live: LiveService) -> Seeded:
    """Fresh objects for each operation (an earlier operation may have deleted the last)."""
    return _seed(live)


def _document() -> dict[str, Any]:
    """The OpenAPI document hotport serves (built in-process, so tests can be collected
    without a server; the test checks the live `/openapi.json` is the same document)."""
    config = ServiceConfig(db="sqlite+aiosqlite:///:memory:", heal_interval=0)
    return create_api(Service(config), manage_lifecycle=False).openapi()


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


INSTANCE_PARAMS = ("uuid", "server_id")


def _real_bodies(path: str, seeded: Seeded) -> list[Any]:
    """Bodies that act on the seeded objects, for the operations that take one."""
    ports = [seeded.attached_port, *seeded.free_ports]
    if path == "/v1/instances/{uuid}/interfaces":
        return [{"port_id": p} for p in ports] + [{"network_id": seeded.network}]
    if path == "/v2.1/servers/{server_id}/os-interface":
        return [{"interfaceAttachment": {"port_id": p}} for p in ports] + [
            {"interfaceAttachment": {"net_id": seeded.network}}
        ]
    if path == "/v2.1/os-server-external-events":
        ours = {"server_uuid": seeded.instance, "tag": seeded.attached_port}
        stranger = {"server_uuid": str(uuid.uuid4()), "tag": seeded.attached_port}
        return [
            {"events": [{"name": "network-changed", **ours}]},
            {"events": [{"name": "network-vif-plugged", "status": "completed", **ours}]},
            {
                "events": [
                    {"name": "network-changed", **ours},
                    {"name": "network-changed", **stranger},
                ]
            },
            {"events": [{"name": "network-vif-deleted", **stranger}]},
        ]
    return []


def _point_at_real_objects(case: schemathesis.Case, seeded: Seeded, data: st.DataObject) -> None:
    """Swap some generated ids and bodies for seeded objects, so the checks also see the
    answers of real operations (attach, detach, reads, events), not only the 404 of a
    random id."""
    params = case.path_parameters or {}
    path = case.operation.path
    name = next((n for n in INSTANCE_PARAMS if n in params), None)
    if name is not None and data.draw(st.booleans(), label="real instance"):
        params[name] = seeded.instance
        if "port_id" in params and data.draw(st.booleans(), label="real port"):
            params["port_id"] = data.draw(
                st.sampled_from([seeded.attached_port, *seeded.free_ports]), label="port"
            )
    bodies = _real_bodies(path, seeded)
    ours = name is None or params[name] == seeded.instance
    if bodies and ours and data.draw(st.booleans(), label="real body"):
        case.body = data.draw(st.sampled_from(bodies), label="body")


def test_live_document_is_the_tested_one(live: LiveService) -> None:
    r = httpx.get(f"{live.url}/openapi.json", timeout=10)
    assert r.status_code == 200
    assert r.json() == DOCUMENT


@schema.parametrize()
@schema.given(data=st.data())
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_openapi_conformance(
    case: schemathesis.Case, data: st.DataObject, live: LiveService, seeded: Seeded
) -> None:
    """Every operation: no 5xx, and status, content type and body as the document says."""
    _point_at_real_objects(case, seeded, data)
    case.call_and_validate(base_url=live.url, checks=CHECKS, timeout=30)
