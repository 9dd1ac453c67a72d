"""The composition root: the one place where concrete backends are chosen and wired.

Owns: building an `InterfaceManager` from its parts (`build_manager`: hotport's own
policy gets the coalescing one-port reads of `hotport.network.coalesce`, attributed to
the operations' traces; the reference designs `legacy` and `article` reproduce upstream
Nova's requests and never coalesce), and the
in-process stack used by the tests, the demo and the benchmarks (`InProcessStack`): the
Neutron simulator reached through httpx's ASGI transport (no sockets), its event
notifier delivering straight into the engine (the same JSON, batching included), a SQL
store, in-process locks and the in-memory hypervisor.

Must never: be imported by the engine or by a backend (dependencies point inward).

Concurrency: building is sequential; the stack is then used from one event loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from hotport.engine.context import Engine, EngineConfig
from hotport.engine.contracts import NetworkAPI
from hotport.engine.manager import InterfaceManager
from hotport.engine.policy import POLICIES
from hotport.engine.trace import TraceSharing, observe_request
from hotport.engine.waiters import ExternalEvent
from hotport.locks.base import LockBackend
from hotport.locks.facade import Locks
from hotport.locks.local import LocalLocks
from hotport.network import NeutronClient, NoAuth
from hotport.network.coalesce import Coalescer
from hotport.sim.app import create_app
from hotport.sim.config import SimConfig
from hotport.store.base import Store
from hotport.store.sql import open_store
from hotport.virt.base import VirtDriver
from hotport.virt.memory import MemoryDriver

SIM_URL = "http://neutron.sim"
ENGINE_EVENTS_URL = "http://hotport.local/v2.1"


def build_manager(
    *,
    config: EngineConfig,
    network: NetworkAPI,
    store: Store,
    virt: VirtDriver,
    policy: str = "hotport",
    locks: LockBackend | None = None,
    coalesce: bool = True,
) -> InterfaceManager:
    """The manager for `policy`. `coalesce` (hotport's policy only) shares one list
    request among concurrent one-port reads (`hotport.network.coalesce`)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose from {sorted(POLICIES)}")
    network.add_observer(observe_request)
    reads = (
        Coalescer(network, attribution=TraceSharing()) if coalesce and policy == "hotport" else None
    )
    engine = Engine(
        config=config,
        network=network,
        store=store,
        locks=Locks(locks if locks is not None else LocalLocks()),
        virt=virt,
        policy=POLICIES[policy],
        port_reads=reads,
    )
    manager = InterfaceManager(engine)
    listen = getattr(virt, "add_lifecycle_listener", None)
    if callable(listen):
        listen(manager.domain_event)  # libvirt's domain lifecycle events reach the engine
    return manager


@dataclass
class InProcessStack:
    """Simulator + engine + SQLite + memory driver in one process, no sockets."""

    manager: InterfaceManager
    client: NeutronClient
    store: Store
    virt: VirtDriver
    sim_app: Any
    admin: httpx.AsyncClient  # raw HTTP to the simulator (fixtures, /_sim endpoints)
    events_delivered: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sim(self) -> Any:
        return self.sim_app.state.sim

    async def close(self) -> None:
        # the simulator first: its notifier's last events must not start engine work
        # after the engine has stopped
        await self.sim.agent.aclose()
        await self.sim.notifier.aclose()
        await self.manager.drain()
        await self.manager.close()  # (and the coalescer's batches)
        await self.client.aclose()
        await self.admin.aclose()
        await self.store.close()
        await self.virt.close()


async def in_process_stack(
    db_path: Path | str,
    *,
    host: str = "compute-1",
    policy: str = "hotport",
    sim: SimConfig | None = None,
    engine: EngineConfig | None = None,
    virt: VirtDriver | None = None,
    deliver_events: bool = True,
    wrap_transport: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None,
) -> InProcessStack:
    """Build the whole stack in this process. `deliver_events=False` keeps the
    simulator's events from reaching the engine (the heal must then find the drift)."""
    sim_config = (sim or SimConfig(profile="instant")).model_copy(
        update={"notify_url": ENGINE_EVENTS_URL if deliver_events else None}
    )
    holder: dict[str, InterfaceManager] = {}
    delivered: list[dict[str, Any]] = []

    async def to_engine(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        delivered.extend(body["events"])
        answers = await holder["manager"].events(
            [
                ExternalEvent(
                    e["name"], e["server_uuid"], e.get("tag"), e.get("status", "completed")
                )
                for e in body["events"]
            ]
        )
        return httpx.Response(
            200,
            json={
                "events": [
                    {**e, "code": a.code} for e, a in zip(body["events"], answers, strict=True)
                ]
            },
        )

    app = create_app(sim_config, notifier_transport=httpx.MockTransport(to_engine))
    transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=app)
    if wrap_transport is not None:
        transport = wrap_transport(transport)  # e.g. a test's gate that counts round trips
    client = NeutronClient(NoAuth(SIM_URL), transport=transport)
    store = await open_store(f"sqlite+aiosqlite:///{db_path}")
    driver: VirtDriver = virt if virt is not None else MemoryDriver()
    config = engine if engine is not None else EngineConfig(host=host)
    config = replace(config, host=host)
    manager = build_manager(config=config, network=client, store=store, virt=driver, policy=policy)
    holder["manager"] = manager
    admin = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SIM_URL)
    return InProcessStack(manager, client, store, driver, app, admin, delivered)


API_URL = "http://hotport.local"


@dataclass
class ServiceStack:
    """The simulator + the whole service (API included) in one process, no sockets.

    The simulator's notifier posts its events to the API's
    `/v2.1/os-server-external-events`, as a real neutron-server's nova notifier does.
    """

    service: Any  # hotport.service.runtime.Service
    api_app: Any  # the FastAPI app
    api: httpx.AsyncClient  # HTTP to the API
    sim_app: Any
    admin: httpx.AsyncClient  # raw HTTP to the simulator (fixtures, /_sim endpoints)

    @property
    def sim(self) -> Any:
        return self.sim_app.state.sim

    @property
    def manager(self) -> InterfaceManager:
        manager: InterfaceManager = self.service.require_manager()
        return manager

    async def close(self) -> None:
        await self.sim.agent.aclose()
        await self.sim.notifier.aclose()
        await self.service.stop()
        await self.api.aclose()
        await self.admin.aclose()


async def service_stack(
    db_path: Path | str,
    *,
    sim: SimConfig | None = None,
    virt: VirtDriver | None = None,
    authenticator: Any = None,
    deliver_events: bool = True,
    **settings: Any,
) -> ServiceStack:
    """Build and start the service against an in-process simulator. `settings` are
    `ServiceConfig` fields (host, policy, heal_interval, ...; the heal loop is off
    unless `heal_interval` is given)."""
    from hotport.api.app import create_api
    from hotport.service.config import ServiceConfig
    from hotport.service.runtime import Service

    holder: dict[str, Any] = {}

    class _ToApi(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            transport = httpx.ASGITransport(app=holder["api"])
            return await transport.handle_async_request(request)

    sim_config = (sim or SimConfig(profile="instant")).model_copy(
        update={"notify_url": f"{API_URL}/v2.1" if deliver_events else None}
    )
    sim_app = create_app(sim_config, notifier_transport=_ToApi())
    config = ServiceConfig(
        **{
            "db": f"sqlite+aiosqlite:///{db_path}",
            "neutron_url": SIM_URL,
            "heal_interval": 0,
            **settings,
        }
    )
    service = Service(config, network_transport=httpx.ASGITransport(app=sim_app), virt=virt)
    api_app = create_api(service, authenticator=authenticator, manage_lifecycle=False)
    holder["api"] = api_app
    await service.start()
    api = httpx.AsyncClient(transport=httpx.ASGITransport(app=api_app), base_url=API_URL)
    admin = httpx.AsyncClient(transport=httpx.ASGITransport(app=sim_app), base_url=SIM_URL)
    return ServiceStack(service, api_app, api, sim_app, admin)
