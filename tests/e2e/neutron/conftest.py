"""Fixtures for hotport against a REAL neutron-server 29 whose notifier posts to hotport.

`scripts/neutron/neutron-server.sh start` runs the server; its nova notifier posts
`os-server-external-events` to `$HOTPORT_NEUTRON_NOTIFY_URL` (default
http://127.0.0.1:18774/v2.1). Here hotport itself listens there (`LiveService` on that
port, its network service the real server at `$HOTPORT_NEUTRON_URL`), so every cache
change a test sees after a change made directly at Neutron came through a real event:
the periodic heal is off (`heal_interval = 0`), nothing else reads Neutron behind the
test's back.

When no server answers, every test here SKIPS with a loud reason, or FAILS when
`HOTPORT_E2E=required` (as `.ci/run` sets it). The skip/fail rule, the reachability
probe and the settings are shared with tests/conformance (tests/neutron_peer.py).

The notify port is also the conformance suite's (its event capture binds it, session
scoped, for its `neutron` target). One pytest process runs both suites, so:
- each test's hotport is function scoped: the port is released when the test ends;
- the conformance suite's capture is package scoped: it releases the port when that
  suite ends.

Each test gets its own hotport (fresh database, a host name of its own) and its own
Neutron objects, deleted at the end, so the suite can run against a long-lived server.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest

from neutron_peer import NOTIFY_URL, PROJECT_ID, require_neutron

from ..live import LiveService

T = TypeVar("T")

#: how long a change at Neutron may take to show in hotport's cache (the notifier
#: batches every 2 s per API worker; the refresh is a couple of reads)
EVENT_DEADLINE = 30.0


# --------------------------------------------------------------------- the peer
@pytest.fixture(scope="session")
def neutron_url() -> str:
    return require_neutron()


def notify_port() -> int:
    """The loopback port Neutron's notifier posts to; hotport must listen there."""
    u = urlsplit(NOTIFY_URL)
    if u.hostname not in ("127.0.0.1", "localhost") or u.path.rstrip("/") != "/v2.1":
        pytest.fail(
            f"HOTPORT_NEUTRON_NOTIFY_URL={NOTIFY_URL}: hotport can only receive the events "
            "on http://127.0.0.1:<port>/v2.1 (restart the server with NOVA_ENDPOINT set so)",
            pytrace=False,
        )
    return u.port or 80


def _check_free(port: int) -> None:
    """uvicorn exits the whole loop thread on a bind error; find out first."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            pytest.fail(
                f"cannot listen on 127.0.0.1:{port} for Neutron's events ({exc}); another "
                "process (or the conformance suite's capture) holds it",
                pytrace=False,
            )


# --------------------------------------------------------------------- Neutron itself
@dataclass
class Neutron:
    """Plain Neutron v2.0 requests made directly at the real server (noauth: no
    X-Project-Id, the project in the body), and the clean-up of what was made."""

    http: httpx.Client
    created: list[tuple[str, str]] = field(default_factory=list)

    def create(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        resource = collection[:-1]
        r = self.http.post(f"/v2.0/{collection}", json={resource: body})
        assert r.status_code == 201, f"POST {collection}: {r.status_code} {r.text}"
        obj: dict[str, Any] = r.json()[resource]
        self.created.append((collection, obj["id"]))
        return obj

    def network(self, cidr: str = "192.0.2.0/24") -> tuple[dict[str, Any], dict[str, Any]]:
        net = self.create(
            "networks", {"name": f"e2e-{uuid.uuid4().hex[:8]}", "project_id": PROJECT_ID}
        )
        return net, self.subnet(net["id"], cidr)

    def subnet(self, network_id: str, cidr: str, **extra: Any) -> dict[str, Any]:
        return self.create(
            "subnets",
            {
                "network_id": network_id,
                "cidr": cidr,
                "ip_version": 4,
                "project_id": PROJECT_ID,
                **extra,
            },
        )

    def port(self, network_id: str, **extra: Any) -> dict[str, Any]:
        return self.create("ports", {"network_id": network_id, "project_id": PROJECT_ID, **extra})

    def show(self, port_id: str) -> dict[str, Any]:
        r = self.http.get(f"/v2.0/ports/{port_id}")
        assert r.status_code == 200, r.text
        return dict(r.json()["port"])

    def update(self, port_id: str, roles: str | None = None, **attrs: Any) -> dict[str, Any]:
        """PUT the port; `roles` as `X-Roles` (binding:profile needs `service`)."""
        headers = {"X-Roles": roles} if roles else {}
        r = self.http.put(f"/v2.0/ports/{port_id}", json={"port": attrs}, headers=headers)
        assert r.status_code == 200, f"PUT port {port_id}: {r.status_code} {r.text}"
        return dict(r.json()["port"])

    def delete(self, port_id: str) -> None:
        r = self.http.delete(f"/v2.0/ports/{port_id}")
        assert r.status_code == 204, f"DELETE port {port_id}: {r.status_code} {r.text}"

    def external_network(self) -> dict[str, Any]:
        ext = self.create(
            "networks",
            {
                "name": f"e2e-ext-{uuid.uuid4().hex[:6]}",
                "project_id": PROJECT_ID,
                "router:external": True,
            },
        )
        self.subnet(ext["id"], "203.0.113.0/24", enable_dhcp=False)
        return ext

    def router(self, external_network_id: str, subnet_id: str) -> dict[str, Any]:
        router = self.create(
            "routers",
            {
                "name": "e2e-r",
                "project_id": PROJECT_ID,
                "external_gateway_info": {"network_id": external_network_id},
            },
        )
        r = self.http.put(
            f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet_id}
        )
        assert r.status_code == 200, r.text
        return router

    def set_floating_ip_port(self, fip_id: str, port_id: str | None) -> dict[str, Any]:
        r = self.http.put(f"/v2.0/floatingips/{fip_id}", json={"floatingip": {"port_id": port_id}})
        assert r.status_code == 200, r.text
        return dict(r.json()["floatingip"])

    def cleanup(self) -> None:
        """Delete what the test created, in the order Neutron accepts (best effort)."""
        by_kind: dict[str, list[str]] = {}
        for collection, rid in self.created:
            by_kind.setdefault(collection, []).append(rid)
        for fid in by_kind.get("floatingips", []):
            self.http.delete(f"/v2.0/floatingips/{fid}")
        for rid in by_kind.get("routers", []):
            ports = self.http.get("/v2.0/ports", params={"device_id": rid}).json()["ports"]
            for p in ports:
                if p["device_owner"] == "network:router_interface":
                    for ip in p["fixed_ips"]:
                        self.http.put(
                            f"/v2.0/routers/{rid}/remove_router_interface",
                            json={"subnet_id": ip["subnet_id"]},
                        )
            self.http.put(f"/v2.0/routers/{rid}", json={"router": {"external_gateway_info": {}}})
            self.http.delete(f"/v2.0/routers/{rid}")
        for nid in by_kind.get("networks", []):
            ports = self.http.get("/v2.0/ports", params={"network_id": nid}).json()["ports"]
            for p in ports:
                self.http.delete(f"/v2.0/ports/{p['id']}")
        for sid in by_kind.get("subnets", []):
            self.http.delete(f"/v2.0/subnets/{sid}")
        for nid in by_kind.get("networks", []):
            self.http.delete(f"/v2.0/networks/{nid}")
        self.created.clear()


@pytest.fixture
def neutron(neutron_url: str) -> Iterator[Neutron]:
    with httpx.Client(base_url=neutron_url, timeout=60) as http:
        n = Neutron(http)
        try:
            yield n
        finally:
            n.cleanup()


# --------------------------------------------------------------------- hotport
@dataclass
class Hotport:
    """A live hotport listening on the notify URL, and a client for its API."""

    live: LiveService
    api: httpx.Client
    host: str

    def create_instance(self, name: str = "vm") -> str:
        instance = str(uuid.uuid4())
        r = self.api.post("/v1/instances", json={"uuid": instance, "name": name})
        assert r.status_code == 201, r.text
        return instance

    def interfaces(self, instance: str) -> list[dict[str, Any]]:
        r = self.api.get(f"/v1/instances/{instance}/interfaces")
        assert r.status_code == 200, r.text
        return list(r.json()["interfaces"])

    def vif(self, instance: str, port_id: str) -> dict[str, Any] | None:
        return next((v for v in self.interfaces(instance) if v["id"] == port_id), None)

    def nics(self, instance: str) -> list[dict[str, Any]]:
        r = self.api.get(f"/v1/instances/{instance}")
        assert r.status_code == 200, r.text
        return list(r.json()["nics"])


def wait_until(
    probe: Callable[[], T], ok: Callable[[T], bool], what: str, within: float = EVENT_DEADLINE
) -> T:
    """Poll `probe` until `ok(value)`, at most `within` seconds; the last value is in the
    failure message. Polling, not sleeping: the test goes on as soon as the event did."""
    deadline = time.monotonic() + within
    value = probe()
    while not ok(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within:.0f}s; last seen: {value!r}")
        time.sleep(0.1)
        value = probe()
    return value


@pytest.fixture
def hotport(neutron_url: str, tmp_path: Path) -> Iterator[Hotport]:
    port = notify_port()
    _check_free(port)
    host = f"e2e-{uuid.uuid4().hex[:8]}"
    with (
        LiveService(
            tmp_path, with_sim=False, port=port, neutron_url=neutron_url, host=host
        ) as live,
        httpx.Client(base_url=live.url, timeout=60) as api,
    ):
        yield Hotport(live, api, host)
    # the port is free again for the next test, or for the conformance suite's capture
