"""Fixtures for the engine tests: the whole stack in one process (no sockets).

The Neutron simulator (instant profile) is reached through httpx's ASGI transport, its
events are delivered straight into the engine, the store is a real SQLite file, the
hypervisor the in-memory driver.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hotport.compose import InProcessStack, in_process_stack
from hotport.engine.context import EngineConfig
from hotport.engine.trace import current_trace
from hotport.sim.config import SimConfig
from hotport.sim.seed import Seeder
from hotport.virt.memory import MemoryDriver

HOST = "compute-1"


class Neutron(Seeder):
    """Set-up helpers that talk to the simulator directly (not counted as hotport's)."""

    def __init__(self, stack: InProcessStack) -> None:
        super().__init__(stack.admin)


async def make_stack(tmp_path: Path, **kwargs: Any) -> InProcessStack:
    kwargs.setdefault("sim", SimConfig(profile="instant", active_delay=None, seed=7))
    kwargs.setdefault("engine", EngineConfig(host=HOST, detach_timeout=0.5, repair=True))
    kwargs.setdefault("virt", MemoryDriver(plug_time=0.0, unplug_time=0.0))
    gates: list[Gate] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        gates.append(Gate(inner))
        return gates[0]

    stack = await in_process_stack(
        tmp_path / "hotport.db", host=HOST, wrap_transport=wrap, **kwargs
    )
    stack.gate = gates[0]  # type: ignore[attr-defined]
    return stack


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[InProcessStack]:
    s = await make_stack(tmp_path)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def neutron(stack: InProcessStack) -> Neutron:
    return Neutron(stack)


async def new_instance(stack: InProcessStack, name: str = "vm") -> str:
    inst = str(uuid.uuid4())
    await stack.manager.create_instance(inst, name)
    return inst


class Gate(httpx.AsyncBaseTransport):
    """Parks every request until the test opens the gate: counts sequential round trips.

    `run(coro)` drives an operation: it lets the loop settle, opens the gate for every
    parked request at once (one round trip), and repeats until the operation is done.
    Requests sent concurrently are parked together, so they cost one round; a request
    that depends on another's answer needs a round of its own. Deterministic: no clock.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.parked: list[asyncio.Event] = []
        self.enabled = False
        self.kind = ""
        self.rounds: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        trace = current_trace()
        if self.enabled and trace is not None and trace.kind == self.kind:
            go = asyncio.Event()
            self.parked.append(go)
            await go.wait()
        return await self.inner.handle_async_request(request)

    async def run(self, coro: Any, kind: str) -> Any:
        """Drive `coro`; only requests of operations of this `kind` (their trace) are
        parked and counted (background work such as event refreshes passes freely)."""
        self.enabled, self.rounds, self.kind = True, [], kind
        task = asyncio.ensure_future(coro)
        try:
            while not task.done():
                for _ in range(200):  # let everything runnable run
                    await asyncio.sleep(0)
                if self.parked:
                    self.rounds.append(len(self.parked))
                    parked, self.parked = self.parked, []
                    for go in parked:
                        go.set()
            return task.result()
        finally:
            self.enabled = False

    async def aclose(self) -> None:
        await self.inner.aclose()
