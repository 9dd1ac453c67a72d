"""Scenario 5, consistency: the engine's concurrency storm, driven through each policy.

The storm of tests/integration/engine/test_engine_concurrency.py: I instances x P ports;
every port has two actors doing random attach / detach / attach-by-network on it at once
(same port: they serialize on its lock; different ports of one instance race for the
instance's network info), the simulated agent brings ports up (vif-plugged events
refresh the rows), and a heal loop runs throughout. When everything has settled, BEFORE
any final heal, `hotport.engine.audit` compares the network service's bindings, the
cache rows and the domains' NICs; `RevisionWatch` has seen every applied write. Counted
per policy: lost VIFs (bound, no row), ghost rows (a row, not bound), orphan NICs,
missing NICs, duplicate NICs, rows older than their port, and writes that put an older
port revision over a newer one; then what one heal leaves.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any, cast

from hotport.bench.context import Ctx
from hotport.bench.stacks import PolicyStack, build_stack, settle
from hotport.engine import errors as E
from hotport.engine.audit import AuditReport, RevisionWatch, audit
from hotport.store.base import Store

OPS_PER_ACTOR = 3
KINDS = (
    "lost_vifs",
    "ghost_rows",
    "orphan_nics",
    "missing_nics",
    "duplicate_nics",
    "stale_rows",
)


def counts(report: AuditReport) -> dict[str, int]:
    data = report.to_dict()
    return {k: len(data[k]) for k in KINDS}


async def storm(ps: PolicyStack, rng: random.Random, n_instances: int, n_ports: int) -> int:
    m = ps.manager
    net = await ps.seeder.network(cidr="10.0.0.0/8", name="storm")
    instances = []
    for i in range(n_instances):
        inst = str(uuid.uuid4())
        await m.create_instance(inst, f"vm{i}")
        instances.append(inst)
    ports = {inst: [await ps.seeder.port(net) for _ in range(n_ports)] for inst in instances}
    expected = (E.InterfaceNotAttached, E.PortInUse, E.ConcurrentUpdate, E.ConflictError)
    operations = 0

    async def actor(inst: str, port: str, r: random.Random) -> None:
        nonlocal operations
        for _ in range(OPS_PER_ACTOR):
            await asyncio.sleep(r.random() * 0.001)
            operations += 1
            try:
                choice = r.random()
                if choice < 0.45:
                    await m.attach(inst, port_id=port)
                elif choice < 0.9:
                    await m.detach(inst, port)
                else:
                    created = await m.attach(inst, network_id=net)
                    if r.random() < 0.5:
                        operations += 1
                        await m.detach(inst, created.vif.id)
            except expected:
                pass

    stop = asyncio.Event()

    async def healer() -> None:
        while not stop.is_set():
            await m.heal()
            await asyncio.sleep(0)

    heal_task = asyncio.create_task(healer())
    actors = [
        actor(inst, port, random.Random(rng.random()))
        for inst in instances
        for port in ports[inst]
        for _ in range(2)
    ]
    rng.shuffle(actors)
    try:
        await asyncio.gather(*actors)
    finally:
        stop.set()
        await heal_task
    return operations


async def run(ctx: Ctx) -> dict[str, Any]:
    s = ctx.settings
    ctx.total(len(s.storm_seeds) * len(s.policies))
    rows = []
    for seed in s.storm_seeds:
        for policy in s.policies:
            ctx.say(f"{policy}: {s.storm_instances} x {s.storm_ports} (seed {seed})")
            ps = await build_stack(
                ctx.db(policy),
                policy,
                profile="instant",
                time_scale=s.storm_time_scale,
                seed=seed,
                active_delay=0.0,
                repair=True,
                detach_timeout=0.5,
                plug_time=0.0,
                unplug_time=0.0,
            )
            watch = RevisionWatch(ps.manager.engine.store)
            ps.manager.engine.store = cast(Store, watch)
            try:
                operations = await storm(ps, random.Random(seed), s.storm_instances, s.storm_ports)
                await settle(ps)
                before = await audit(ps.manager.engine)
                await ps.manager.heal()
                await ps.manager.drain()
                after = await audit(ps.manager.engine)
            finally:
                await ps.close()
            found = counts(before)
            rows.append(
                {
                    "policy": policy,
                    "seed": seed,
                    "operations": operations,
                    "bound_ports": before.bound_ports,
                    **found,
                    "stale_revision_writes": len(watch.backwards),
                    "violations": before.violations + len(watch.backwards),
                    "after_heal": after.violations,
                }
            )
            ctx.advance()
    return {"rows": rows, "instances": s.storm_instances, "ports": s.storm_ports}
