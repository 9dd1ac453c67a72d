"""The running service: the engine and its backends, built from a `ServiceConfig`, and its
life: start (recovery first), accept operations, stop gracefully.

Owns: `Service` (build, `start`, `stop`, readiness, the in-flight operation count, and
`operation()`, the gate every mutating API request passes through), and the hooks the
API's metrics attach to (`on_trace`, lock waits, network requests).

Must never: know HTTP (the API module maps `ServiceStopping` to 503); hold a lock.

Concurrency: one event loop. `operation()` may be entered concurrently; `stop()` closes
the gate first, then waits for the operations already inside (up to
`shutdown_timeout`), then cancels what is left: every operation journals its intent
before it acts, so what a cancelled operation left half-done is finished or rolled back
by recovery at the next start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from hotport.compose import build_manager
from hotport.engine.context import EngineConfig
from hotport.engine.manager import InterfaceManager
from hotport.engine.recovery import RecoveryReport
from hotport.network import NeutronClient
from hotport.network.factory import from_config
from hotport.service.config import ServiceConfig
from hotport.store.base import Store
from hotport.store.sql import open_store
from hotport.virt.base import VirtDriver

log = logging.getLogger("hotport.service")


class ServiceStopping(Exception):
    """The service is stopping (or not started): no new operation is accepted."""


@dataclass
class Parts:
    """What `Service.start` built (kept so `stop` can close each)."""

    network: NeutronClient
    store: Store
    virt: VirtDriver


def make_virt(config: ServiceConfig) -> VirtDriver:
    if config.driver == "libvirt":
        from hotport.virt.libvirt import LibvirtDriver

        return LibvirtDriver(config.libvirt_uri)
    from hotport.virt.memory import MemoryDriver

    return MemoryDriver()


def _ensure_sqlite_dir(url: str) -> None:
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)


class Service:
    """See the module docstring. Build with `Service(config)`, then `await start()`."""

    def __init__(
        self,
        config: ServiceConfig,
        *,
        network_transport: httpx.AsyncBaseTransport | None = None,
        virt: VirtDriver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._network_transport = network_transport
        self._virt = virt
        self._clock = clock
        self.manager: InterfaceManager | None = None
        self.parts: Parts | None = None
        self.recovery: RecoveryReport | None = None
        self.started_at: float | None = None
        self._accepting = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[Any]] = set()
        #: called with the manager once it exists (the API's metrics hook in here)
        self.on_manager: list[Callable[[InterfaceManager], None]] = []

    # -- state -------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._accepting and self.manager is not None

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def require_manager(self) -> InterfaceManager:
        if self.manager is None:
            raise ServiceStopping("hotport is not running yet; retry in a moment")
        return self.manager

    # -- life --------------------------------------------------------------------------
    async def start(self) -> RecoveryReport:
        """Build the parts, run recovery, start the heal loop, then accept operations."""
        c = self.config
        _ensure_sqlite_dir(c.db)
        store = await open_store(c.db)
        network = from_config(c.network_config, transport=self._network_transport)
        virt = self._virt if self._virt is not None else make_virt(c)
        self.parts = Parts(network, store, virt)
        engine_config = EngineConfig(
            host=c.host,
            device_owner=c.device_owner,
            detach_timeout=c.detach_timeout,
            repair=c.repair,
            tombstone_age=c.tombstone_age,
        )
        manager = build_manager(
            config=engine_config, network=network, store=store, virt=virt, policy=c.policy
        )
        self.manager = manager
        for hook in self.on_manager:
            hook(manager)
        t0 = self._clock()
        self.recovery = await manager.recover()
        log.info("recovery done in %.3fs: %s", self._clock() - t0, self.recovery.to_dict())
        if c.heal_interval > 0:
            manager.start_heal_loop(c.heal_interval)
        self.started_at = self._clock()
        self._accepting = True
        log.info(
            "hotport ready: host=%s driver=%s policy=%s db=%s network=%s",
            c.host,
            c.driver,
            c.policy,
            make_url(c.db).render_as_string(hide_password=True),
            c.network_config.endpoint if c.network_config.auth == "none" else "keystone",
        )
        return self.recovery

    async def stop(self) -> None:
        """Stop accepting, let in-flight operations finish (up to `shutdown_timeout`),
        cancel the rest (their journal entries are left for recovery), close the parts."""
        self._accepting = False
        if self._in_flight:
            log.info("stopping: waiting for %d in-flight operation(s)", self._in_flight)
            try:
                await asyncio.wait_for(self._idle.wait(), self.config.shutdown_timeout)
            except TimeoutError:
                log.warning(
                    "stopping: %d operation(s) still running after %.0fs are cancelled; "
                    "recovery finishes them at the next start",
                    self._in_flight,
                    self.config.shutdown_timeout,
                )
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.manager is not None:
            await self.manager.drain()
            await self.manager.close()
        if self.parts is not None:
            await self.parts.network.aclose()
            await self.parts.store.close()
            await self.parts.virt.close()
        self.manager = None
        self.parts = None
        log.info("hotport stopped")

    @asynccontextmanager
    async def operation(self) -> AsyncIterator[InterfaceManager]:
        """The gate of every mutating request: refuses when stopping, counts the rest."""
        if not self.ready:
            raise ServiceStopping(
                "hotport is stopping or not started; retry on another host or later"
            )
        manager = self.require_manager()
        task = asyncio.current_task()
        self._in_flight += 1
        self._idle.clear()
        if task is not None:
            self._tasks.add(task)
        try:
            yield manager
        finally:
            self._in_flight -= 1
            if task is not None:
                self._tasks.discard(task)
            if self._in_flight == 0:
                self._idle.set()
