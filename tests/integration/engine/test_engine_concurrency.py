"""Storms of real asyncio tasks racing on shared ports, with heals running all the time.

50 instances x 10 ports: every port has two actors doing random attach / detach /
attach-by-network on it at once (same port: they serialize on its lock; different ports
of one instance: they race for the instance's network info), the agent brings ports up
(vif-plugged events refresh the rows), and a heal loop runs throughout. When everything
has settled the invariants must hold BEFORE any final heal (hotport never loses an
update, so it needs none), and again after one heal.

The same storm through the `article` policy (read-modify-write of the instance blob
under only the port lock) must be caught: lost VIFs, or writes of an older revision
over a newer one.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import cast

import pytest

from hotport.compose import InProcessStack
from hotport.engine import errors as E
from hotport.engine.audit import AuditReport, RevisionWatch, audit
from hotport.sim.config import SimConfig
from hotport.store.base import Store

from .conftest import Neutron, make_stack, new_instance

INSTANCES = 50
PORTS = 10
OPS_PER_ACTOR = 3


async def run_storm(
    tmp_path: Path,
    policy: str,
    seed: int,
    instances: int = INSTANCES,
    ports: int = PORTS,
) -> tuple[AuditReport, AuditReport, RevisionWatch]:
    stack = await make_stack(
        tmp_path, policy=policy, sim=SimConfig(profile="instant", active_delay=0.0, seed=seed)
    )
    watch = RevisionWatch(stack.manager.engine.store)
    stack.manager.engine.store = cast(Store, watch)
    try:
        return await _storm(stack, Neutron(stack), random.Random(seed), watch, instances, ports)
    finally:
        await stack.close()


async def _storm(
    stack: InProcessStack,
    neutron: Neutron,
    rng: random.Random,
    watch: RevisionWatch,
    n_instances: int,
    n_ports: int,
) -> tuple[AuditReport, AuditReport, RevisionWatch]:
    m = stack.manager
    net = await neutron.network("10.0.0.0/16")
    instances = [await new_instance(stack, f"vm{i}") for i in range(n_instances)]
    ports = {inst: [await neutron.port(net) for _ in range(n_ports)] for inst in instances}
    expected = (E.InterfaceNotAttached, E.PortInUse, E.ConcurrentUpdate, E.ConflictError)

    async def actor(inst: str, port: str, r: random.Random) -> None:
        for _ in range(OPS_PER_ACTOR):
            await asyncio.sleep(r.random() * 0.001)
            try:
                choice = r.random()
                if choice < 0.45:
                    await m.attach(inst, port_id=port)
                elif choice < 0.9:
                    await m.detach(inst, port)
                else:
                    created = await m.attach(inst, network_id=net)
                    if r.random() < 0.5:
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
    await asyncio.gather(*actors)
    stop.set()
    await heal_task
    for _ in range(3):  # let the agent's and the notifier's last events land
        await stack.sim.notifier.flush()
        await m.drain()
    before_heal = await audit(m.engine)
    await m.heal()
    await m.drain()
    after_heal = await audit(m.engine)
    return before_heal, after_heal, watch


async def test_hotport_keeps_every_invariant_under_a_storm(tmp_path: Path) -> None:
    before, after, watch = await run_storm(tmp_path, "hotport", seed=11)
    assert before.bound_ports > 0
    assert before.ok, before.to_dict()
    assert after.ok, after.to_dict()
    assert watch.backwards == []


async def test_the_article_design_is_caught_by_the_same_storm(tmp_path: Path) -> None:
    before, _after, watch = await run_storm(tmp_path, "article", seed=11, instances=10)
    assert not before.ok or watch.backwards, "the racy design went unnoticed"


@pytest.mark.parametrize("seed", [1, 2])
async def test_more_seeds_on_smaller_hosts(tmp_path: Path, seed: int) -> None:
    before, after, watch = await run_storm(tmp_path, "hotport", seed=seed, instances=10)
    assert before.ok, before.to_dict()
    assert after.ok, after.to_dict()
    assert watch.backwards == []
