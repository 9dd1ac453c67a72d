"""Real OpenStack clients against hotport's Nova-compatible `/v2.1` facade.

One live hotport per test module (uvicorn on a loopback socket, in a thread; see
`tests/e2e/live.py`) with the Neutron simulator on another socket: the compute endpoint
is hotport's `/v2.1`, the network endpoint is the simulator, and the simulator's nova
notifier posts its events to hotport's `/v2.1/os-server-external-events` over HTTP, as a
real neutron-server does. No Keystone: the clients use keystoneauth's `none` plugin with
per-service endpoint overrides (what docs/nova-api.md tells users to do).

The simulator runs the `instant` profile, sends each event at once and sets a bound port
ACTIVE at once, so a test never sleeps for the network side; the few eventual checks poll
(`eventually`) with a short deadline.

Needs no external peer, so nothing here ever skips.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from hotport.sim.config import SimConfig
from hotport.sim.seed import Seeder

from ..live import LiveService

T = TypeVar("T")

SIM = SimConfig(profile="instant", send_events_interval=0, active_delay=0)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with LiveService(tmp_path_factory.mktemp("clients"), sim=SIM) as live:
        yield live


class Neutron:
    """Set-up requests to the live simulator (a `Seeder` run on the service's loop)."""

    def __init__(self, live: LiveService) -> None:
        assert live.sim_url is not None
        self.live = live
        self.url: str = live.sim_url

    def _run(self, fn: Callable[[Seeder], Any]) -> Any:
        async def call() -> Any:
            async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
                return await fn(Seeder(http))

        return self.live.call(call)

    def network(self, cidr: str = "192.0.2.0/24", name: str = "n") -> str:
        net: str = self._run(lambda s: s.network(cidr, name=name))
        return net

    def port(self, network_id: str, **extra: Any) -> str:
        port: str = self._run(lambda s: s.port(network_id, **extra))
        return port

    def show(self, port_id: str) -> dict[str, Any]:
        port: dict[str, Any] = self._run(lambda s: s.show(port_id))
        return port

    def exists(self, port_id: str) -> bool:
        r = httpx.get(f"{self.url}/v2.0/ports/{port_id}", timeout=30)
        return r.status_code == 200


@pytest.fixture
def neutron(live: LiveService) -> Neutron:
    return Neutron(live)


def new_instance(live: LiveService, name: str) -> str:
    """An instance on the live hotport (the native API: Nova has no per-host create)."""
    instance = str(uuid.uuid4())
    r = httpx.post(f"{live.url}/v1/instances", json={"uuid": instance, "name": name}, timeout=30)
    assert r.status_code == 201, r.text
    return instance


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def eventually(check: Callable[[], T], *, timeout: float = 10.0) -> T:
    """`check()` once it stops raising AssertionError (events travel asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
