"""Filling a host with instances and their ports, for the heal and overhead scenarios.

Owns: `seed_host`, which uses the bulk set-up of `hotport.sim.bulk` when this build has
it (10,000 instances x 10 ports in seconds: `seed_state` writes the simulator's ports
straight into its state, `cached_vifs` + `SqlStore.bulk_load` the rows hotport would
hold for them, and the in-memory hypervisor gets each instance's NICs: all three
consistent), and otherwise attaches through the engine (at the instant profile, through
hotport's policy: `stacks.fast`), which is only practical up to `API_SEED_LIMIT` ports.

Must never: be used for anything measured.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from hotport.bench.stacks import HOST, PolicyStack, fast, make_vm
from hotport.virt.base import NIC

#: the most ports `seed_host` attaches through the engine when there is no bulk helper
API_SEED_LIMIT = 1_000


def bulk_helper() -> Any | None:
    """`hotport.sim.bulk` when this build has its bulk set-up (`seed_state`,
    `cached_vifs`), else None."""
    try:
        module = importlib.import_module("hotport.sim.bulk")
    except ImportError:
        return None
    if not all(hasattr(module, name) for name in ("seed_state", "cached_vifs")):
        return None
    from hotport.store.sql import SqlStore

    if not hasattr(SqlStore, "bulk_load"):
        return None
    return module


def can_seed(instances: int, ports: int) -> str | None:
    """Why a host of this size cannot be seeded here (None: it can)."""
    if instances * ports <= API_SEED_LIMIT or bulk_helper() is not None:
        return None
    return (
        f"{instances:,} x {ports} needs the bulk set-up of hotport.sim.bulk (seed_state, "
        f"cached_vifs; not in this build); without it only hosts up to {API_SEED_LIMIT:,} "
        "ports are seeded (through the engine)"
    )


async def _bulk(ps: PolicyStack, module: Any, instances: int, ports: int) -> list[str]:
    state = ps.sim.state
    store: Any = ps.stack.store
    if hasattr(module, "seed_host"):  # the three in one call
        done = await module.seed_host(
            state, store, ps.virt, host=HOST, instances=instances, ports_per_instance=ports
        )
        return [str(i) for i in done.instances]
    layout = module.seed_state(state, host=HOST, instances=instances, ports_per_instance=ports)
    await store.bulk_load(HOST, module.cached_vifs(state, layout))
    for inst in layout.instances:
        await ps.virt.create_domain(inst, inst)
        for port_id in layout.ports[inst]:
            port = state.ports[port_id]
            await ps.virt.add_nic_behind_back(
                inst, NIC(mac=port["mac_address"], dev="tap" + port_id[:11], port_id=port_id)
            )
    return [str(i) for i in layout.instances]


async def seed_host(ps: PolicyStack, instances: int, ports: int) -> list[str]:
    """`instances` instances with `ports` bound, plugged and cached ports each; their ids."""
    module = bulk_helper()
    if module is not None and hasattr(ps.manager.engine.store, "bulk_load"):
        return await _bulk(ps, module, instances, ports)
    problem = can_seed(instances, ports)
    if problem is not None:
        raise RuntimeError(problem)
    async with fast(ps):
        net = await ps.seeder.network(cidr="10.0.0.0/8", name="host")
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> str:
            async with sem:
                return (await make_vm(ps, ports, 0, network=net, name=f"h{i}")).uuid

        return list(await asyncio.gather(*(one(i) for i in range(instances))))
