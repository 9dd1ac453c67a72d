"""Targets for the Neutron conformance suite: the simulator and a real neutron-server.

Every test in tests/conformance runs the SAME requests against each target:

- ``sim``: hotport's simulator (``hotport.sim``), served by uvicorn on an
  ephemeral loopback port, profile ``instant``, agent off (ports stay DOWN like
  the agent-less real server), notifier pointed at this suite's event capture.
- ``neutron``: a real neutron-server 29 at ``$HOTPORT_NEUTRON_URL`` (default
  http://127.0.0.1:9696), started by ``scripts/neutron/neutron-server.sh``, its
  notifier posting to ``$HOTPORT_NEUTRON_NOTIFY_URL`` (default
  http://127.0.0.1:18774/v2.1), where this suite listens. When no server answers
  the tests SKIP with a loud reason, or FAIL when ``HOTPORT_E2E=required``.

Concurrency: each test gets its own network (unique name) and deletes what it
created, so the suite can run against a long-lived server.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from neutron_peer import NEUTRON_URL, NOTIFY_URL, PROJECT_ID, require_neutron

HOST = "compute-1"
SAMPLES = Path(__file__).parent / "samples" / "neutron-29.json"


# --------------------------------------------------------------------- helpers
def sample(label: str) -> dict[str, Any]:
    """The recorded real-server exchange with this label."""
    for s in json.loads(SAMPLES.read_text())["samples"]:
        if s["label"] == label:
            return dict(s)
    raise KeyError(label)


class ServerThread:
    """Runs an ASGI app under uvicorn on a loopback port, in a thread of its own."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        self.sock = sock
        self.port = sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        cfg = uvicorn.Config(app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


@dataclass
class EventCapture:
    """A Nova stand-in: records os-server-external-events and answers like nova-api."""

    events: list[dict[str, Any]] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def external_events(request: Request) -> JSONResponse:
            body = await request.json()
            with self.lock:
                self.posts.append({"headers": dict(request.headers), "body": body})
                self.events.extend(body.get("events", []))
            echoed = [
                {**e, "status": e.get("status", "completed"), "code": 200} for e in body["events"]
            ]
            return JSONResponse({"events": echoed})

        return Starlette(
            routes=[Route("/v2.1/os-server-external-events", external_events, methods=["POST"])]
        )

    def for_port(self, port_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e.get("tag") == port_id]

    async def wait_for(self, port_id: str, name: str, within: float = 20.0) -> dict[str, Any]:
        """Poll (bounded) until an event `name` for `port_id` was received."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for e in self.for_port(port_id):
                if e["name"] == name:
                    return e
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {name} event for port {port_id} in {within}s: {self.events}")


@dataclass
class Target:
    """One server under test, with the few operations whose mechanism differs."""

    name: str
    url: str
    capture: EventCapture
    http: httpx.AsyncClient
    created: list[tuple[str, str]] = field(default_factory=list)

    async def make_port_active(self, port_id: str) -> None:
        """Play the L2 agent: DOWN -> ACTIVE (the server then sends vif-plugged)."""
        if self.name == "sim":
            r = await self.http.post(f"/_sim/ports/{port_id}/status", json={"status": "ACTIVE"})
        else:
            # The anchor_loopback ML2 driver sets the status asked for in
            # binding:profile when it (re)binds; writing binding:profile needs
            # the service role (README of the peer).
            r = await self.http.put(
                f"/v2.0/ports/{port_id}",
                json={"port": {"binding:profile": {"anchor_status": "ACTIVE"}}},
                headers={"X-Roles": "service"},
            )
        assert r.status_code == 200, r.text

    # -- resource helpers used by the tests (each is one plain API request) --
    async def create(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        resource = collection[:-1]
        r = await self.http.post(f"/v2.0/{collection}", json={resource: body})
        assert r.status_code == 201, r.text
        obj: dict[str, Any] = r.json()[resource]
        self.created.append((collection, obj["id"]))
        return obj

    async def port(self, net_id: str) -> dict[str, Any]:
        """A fresh unbound port on `net_id`."""
        return await self.create("ports", {"network_id": net_id, "project_id": PROJECT_ID})

    async def network(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """A fresh network with one IPv4 subnet 192.0.2.0/24."""
        net = await self.create(
            "networks", {"name": f"conf-{uuid.uuid4().hex[:8]}", "project_id": PROJECT_ID}
        )
        sub = await self.create(
            "subnets",
            {
                "network_id": net["id"],
                "cidr": "192.0.2.0/24",
                "ip_version": 4,
                "project_id": PROJECT_ID,
            },
        )
        return net, sub

    async def cleanup(self) -> None:
        """Delete what the test created, in the order Neutron accepts."""
        by_kind: dict[str, list[str]] = {}
        for collection, rid in self.created:
            by_kind.setdefault(collection, []).append(rid)
        for fid in by_kind.get("floatingips", []):
            await self.http.delete(f"/v2.0/floatingips/{fid}")
        for rid in by_kind.get("routers", []):
            ports = await self.http.get("/v2.0/ports", params={"device_id": rid})
            for p in ports.json().get("ports", []):
                if p["device_owner"] == "network:router_interface":
                    for ip in p["fixed_ips"]:
                        await self.http.put(
                            f"/v2.0/routers/{rid}/remove_router_interface",
                            json={"subnet_id": ip["subnet_id"]},
                        )
            await self.http.put(
                f"/v2.0/routers/{rid}", json={"router": {"external_gateway_info": {}}}
            )
            await self.http.delete(f"/v2.0/routers/{rid}")
        for nid in by_kind.get("networks", []):
            ports = await self.http.get("/v2.0/ports", params={"network_id": nid})
            for p in ports.json().get("ports", []):
                await self.http.delete(f"/v2.0/ports/{p['id']}")
        for sid in by_kind.get("subnets", []):
            await self.http.delete(f"/v2.0/subnets/{sid}")
        for nid in by_kind.get("networks", []):
            await self.http.delete(f"/v2.0/networks/{nid}")
        self.created.clear()


# --------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def sim_server() -> Iterator[tuple[str, EventCapture]]:
    from hotport.sim.app import create_app
    from hotport.sim.config import SimConfig

    capture = EventCapture()
    with ServerThread(capture.app()) as cap:
        config = SimConfig(
            profile="instant",
            notify_url=f"{cap.url}/v2.1",
            send_events_interval=0.2,
            active_delay=None,
        )
        with ServerThread(create_app(config)) as sim:
            yield sim.url, capture


@pytest.fixture(scope="package")  # the notify port is free again for tests/e2e/neutron
def neutron_server() -> Iterator[tuple[str, EventCapture]]:
    require_neutron()
    notify = urlsplit(NOTIFY_URL)
    capture = EventCapture()
    try:
        cap = ServerThread(
            capture.app(), host=notify.hostname or "127.0.0.1", port=notify.port or 80
        )
    except OSError as exc:
        pytest.fail(f"cannot listen on {NOTIFY_URL} for neutron's events: {exc}")
    with cap:
        yield NEUTRON_URL, capture


@pytest.fixture(params=["sim", pytest.param("neutron", marks=pytest.mark.e2e)])
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    url, capture = request.getfixturevalue(f"{request.param}_server")
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        t = Target(request.param, url, capture, http)
        try:
            yield t
        finally:
            await t.cleanup()
