"""The benchmark's test bench: one in-process stack per policy, measured operations.

Owns: `PolicyStack` (an `InProcessStack` for one policy with its request meter and the
simulator's CPU meter), `build_stack`, `settle` (wait until the simulated agent, the
notifier and hotport's event work are idle), `fast` (set-up at the instant profile,
with the set-up done through hotport's policy: see below), `Op` (one measured operation)
and `measure_attach` / `measure_detach`.

Set-up is not measured. It runs with the simulator and the in-memory hypervisor at zero
latency, and through hotport's own cache policy whatever the policy under test (the
rows it writes are the same one-row-per-VIF rows every policy keeps in the same store;
going through the old design's full rebuild for every set-up port would only cost
time). The policy under test is back in place before anything is measured.

Must never: measure an operation while event work is still running (`settle` first).

Concurrency: one event loop; a stack is used by one scenario at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from hotport.bench.timing import SimMeter, equivalent, lock_wait
from hotport.compose import InProcessStack, in_process_stack
from hotport.engine.context import EngineConfig
from hotport.engine.errors import EngineError
from hotport.engine.policy import POLICIES
from hotport.engine.trace import OperationTrace
from hotport.sim.config import SimConfig
from hotport.sim.seed import Seeder
from hotport.virt.memory import MemoryDriver

HOST = "compute-1"
#: per-attempt timeout of the bench stacks' network client, seconds (see build_stack)
CLIENT_TIMEOUT = 600.0


class BenchError(RuntimeError):
    """The benchmark could not run a step (the message says which and why)."""


@dataclass
class Op:
    """One measured operation."""

    policy: str
    kind: str
    seconds: float  # measured wall time
    equivalent: float  # article-equivalent seconds
    requests: int
    round_trips: int
    lock_wait: float  # article-equivalent seconds waited for locks
    outcome: str
    calls: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        policy: str,
        trace: OperationTrace,
        meter: SimMeter,
        time_scale: float,
        *,
        real_hypervisor: bool = False,
    ) -> Op:
        return cls(
            policy=policy,
            kind=trace.kind,
            seconds=trace.seconds,
            equivalent=equivalent(
                trace, meter.pop(trace), time_scale, real_hypervisor=real_hypervisor
            ),
            requests=trace.request_count,
            round_trips=trace.round_trips,
            lock_wait=lock_wait(trace) / time_scale,
            outcome=trace.outcome,
            calls=dict(trace.requests),
        )


@dataclass
class PolicyStack:
    policy: str
    stack: InProcessStack
    meter: SimMeter
    virt: MemoryDriver
    profile: str
    time_scale: float
    seeder: Seeder = field(init=False)

    def __post_init__(self) -> None:
        self.seeder = Seeder(self.stack.admin)

    @property
    def manager(self) -> Any:
        return self.stack.manager

    @property
    def sim(self) -> Any:
        return self.stack.sim

    @property
    def cpu(self) -> SimMeter:
        """The simulator's CPU meter (`.cpu`: seconds so far)."""
        return self.meter

    async def close(self) -> None:
        await self.stack.close()


async def build_stack(
    db: Path,
    policy: str,
    *,
    profile: str,
    time_scale: float,
    workers: int = 64,
    seed: int = 7,
    events: bool = True,
    agent: bool = True,
    active_delay: float = 0.5,
    repair: bool = False,
    detach_timeout: float = 60.0,
    plug_time: float = 0.1,
    unplug_time: float = 0.2,
    virt: Any = None,
    vif_type: Literal["ovs", "bridge", "tap"] = "ovs",
) -> PolicyStack:
    if policy not in POLICIES:
        raise BenchError(f"policy {policy!r} is not in this build ({', '.join(sorted(POLICIES))})")
    meters: list[SimMeter] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        meters.append(SimMeter(inner))
        return meters[0]

    driver = (
        virt
        if virt is not None
        else MemoryDriver(plug_time=plug_time, unplug_time=unplug_time, time_scale=time_scale)
    )
    stack = await in_process_stack(
        db,
        host=HOST,
        policy=policy,
        sim=SimConfig(
            profile=profile,
            time_scale=time_scale,
            workers=workers,
            seed=seed,
            vif_type=vif_type,
            active_delay=active_delay if agent else None,
        ),
        engine=EngineConfig(host=HOST, detach_timeout=detach_timeout, repair=repair),
        virt=driver,
        deliver_events=events,
        wrap_transport=wrap,
    )
    meters[0].install(stack.sim)
    # the client's production deadlines are wall seconds; a scaled simulator serving a
    # whole host's port list (100,000 items) or a long queue may take longer than that
    stack.client.read_timeout = stack.client.write_timeout = CLIENT_TIMEOUT
    stack.client.read_deadline = stack.client.write_deadline = 2 * CLIENT_TIMEOUT
    return PolicyStack(policy, stack, meters[0], driver, profile, time_scale)


async def settle(ps: PolicyStack, *, rounds: int = 100_000) -> None:
    """Wait until the simulated agent has set every bound port ACTIVE, the notifier has
    delivered its events and hotport has done their work."""
    stack = ps.stack
    for _ in range(rounds):
        await stack.sim.notifier.flush()
        await stack.manager.drain()
        if not stack.sim.agent.pending and not stack.manager.engine.background.busy:
            await stack.sim.notifier.flush()
            if not stack.manager.engine.background.busy:
                ps.meter.clear()
                return
        await asyncio.sleep(0.002)
    raise BenchError(f"{ps.policy}: the simulator's events and the event work did not settle")


@contextlib.asynccontextmanager
async def fast(ps: PolicyStack) -> AsyncIterator[None]:
    """Zero latency and hotport's cache policy for set-up; restored (and settled) after."""
    manager = ps.manager
    engine = manager.engine
    policy = engine.policy
    # the reference designs' operations, chosen by the manager (None: hotport's own)
    reference = getattr(manager, "reference", None)
    ps.sim.reconfigure({"profile": "instant", "time_scale": 0.0})
    ps.virt.time_scale = 0.0
    engine.policy = POLICIES["hotport"]
    if reference is not None:
        manager.reference = None
    try:
        yield
        await settle(ps)
    finally:
        engine.policy = policy
        if reference is not None:
            manager.reference = reference
        ps.sim.reconfigure({"profile": ps.profile, "time_scale": ps.time_scale})
        ps.virt.time_scale = ps.time_scale


@dataclass
class VM:
    uuid: str
    network: str
    attached: list[str]  # port ids attached at set-up (stay)
    spare: list[str]  # port ids created, not attached


async def make_vm(
    ps: PolicyStack, ports: int, spare: int, *, network: str | None = None, name: str = "vm"
) -> VM:
    """A VM with `ports` ports attached one after another, and `spare` more created
    (call inside `fast`)."""
    vm = str(uuid.uuid4())
    await ps.manager.create_instance(vm, name)
    if network is None:
        network = await ps.seeder.network(cidr="10.0.0.0/8", name=f"{name}-net")
    ids = await asyncio.gather(*(ps.seeder.port(network) for _ in range(ports + spare)))
    for port in ids[:ports]:
        await ps.manager.attach(vm, port_id=port)
    return VM(vm, network, list(ids[:ports]), list(ids[ports:]))


async def timed(ps: PolicyStack, call: Callable[[], Any], *, real_hypervisor: bool = False) -> Op:
    """Run one attach or detach (`call` returns its result, which has a `trace`)."""
    result = await call()
    return Op.of(ps.policy, result.trace, ps.meter, ps.time_scale, real_hypervisor=real_hypervisor)


async def attempt(coro: Awaitable[Op], errors: list[str] | None = None) -> Op | None:
    """The operation measured, or None if the engine refused it (a racy policy may have
    lost the port it was asked to detach from its cache: counted, not fatal); the
    refusal is appended to `errors` when given."""
    try:
        return await coro
    except EngineError as exc:
        if errors is not None:
            errors.append(f"{type(exc).__name__}: {exc}")
        return None


async def measure_attach(ps: PolicyStack, vm: str, port: str, **kw: Any) -> Op:
    return await timed(ps, lambda: ps.manager.attach(vm, port_id=port), **kw)


async def measure_detach(ps: PolicyStack, vm: str, port: str, **kw: Any) -> Op:
    return await timed(ps, lambda: ps.manager.detach(vm, port), **kw)
