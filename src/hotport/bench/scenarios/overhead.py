"""Scenario 6, engine overhead: hotport's own CPU and memory, with the network free.

CPU: per policy, one VM with P ports, the simulator at the instant profile, the
in-memory hypervisor with no delay, no events; attach+detach cycles of one port,
interleaved in rounds across policies. `time.process_time()` over the cycles (every
thread: aiosqlite's too) minus the CPU spent inside the in-process simulator
(`SimCpuMeter`) is hotport's own: engine, store, network client. Reported per
attach+detach, and as operations per second on one core (2 / CPU per cycle).

Memory (hotport's policy only): a host of H instances x P ports seeded and cached, then,
under `tracemalloc` (the Python heap: objects allocated by Python code, including
SQLAlchemy's and the JSON parser's; not SQLite's own C page cache, which is bounded by
its cache_size), one heal of the whole host and one attach+detach. Reported: the peak
above what was allocated before (hotport + the simulator answering in the same process),
the simulator's own peak for serving the same port list (measured alone the same way),
their difference (hotport's estimate), what stays allocated afterwards, the database file
size, and the process's peak RSS.
"""

from __future__ import annotations

import gc
import resource
import time
import tracemalloc
from typing import Any

from hotport.bench.context import Ctx
from hotport.bench.seeding import can_seed, seed_host
from hotport.bench.stacks import HOST, PolicyStack, build_stack, fast, make_vm, settle

ROUNDS = 5
MB = 1024 * 1024


async def _cpu(ctx: Ctx) -> list[dict[str, Any]]:
    s = ctx.settings
    stacks: list[PolicyStack] = []
    vms = {}
    totals = {p: [0.0, 0.0, 0.0, 0] for p in s.policies}  # cpu, sim, wall, cycles
    try:
        for policy in s.policies:
            ps = await build_stack(
                ctx.db(policy),
                policy,
                profile="instant",
                time_scale=1.0,
                seed=s.seed,
                events=False,
                agent=False,
                plug_time=0.0,
                unplug_time=0.0,
            )
            stacks.append(ps)
            async with fast(ps):
                vms[policy] = await make_vm(ps, s.overhead_ports, 1)
            # warm-up: first-use costs (statement compilation, imports) are not overhead
            vm = vms[policy]
            for _ in range(3):
                await ps.manager.attach(vm.uuid, port_id=vm.spare[0])
                await ps.manager.detach(vm.uuid, vm.spare[0])
        per_round = max(1, s.overhead_cycles // ROUNDS)
        for r in range(ROUNDS):
            for ps in stacks:
                ctx.say(f"CPU: {ps.policy} round {r + 1}/{ROUNDS}")
                vm = vms[ps.policy]
                port = vm.spare[0]
                gc.collect()
                sim0, cpu0, t0 = ps.cpu.cpu, time.process_time(), time.perf_counter()
                for _ in range(per_round):
                    await ps.manager.attach(vm.uuid, port_id=port)
                    await ps.manager.detach(vm.uuid, port)
                t = totals[ps.policy]
                t[0] += time.process_time() - cpu0
                t[1] += ps.cpu.cpu - sim0
                t[2] += time.perf_counter() - t0
                t[3] += per_round
                ctx.advance()
    finally:
        for ps in stacks:
            await ps.close()
    rows = []
    for policy, (cpu, sim, wall, cycles) in totals.items():
        own = (cpu - sim) / cycles
        rows.append(
            {
                "policy": policy,
                "cycles": cycles,
                "cpu_per_cycle": own,
                "process_cpu_per_cycle": cpu / cycles,
                "sim_cpu_per_cycle": sim / cycles,
                "wall_per_cycle": wall / cycles,
                "ops_per_cpu_second": 2 / own if own > 0 else 0.0,
                "process_ops_per_cpu_second": 2 * cycles / cpu if cpu > 0 else 0.0,
            }
        )
    return rows


async def _memory(ctx: Ctx) -> dict[str, Any]:
    s = ctx.settings
    h, p = s.overhead_hosts, s.overhead_ports
    problem = can_seed(h, p)
    if problem is not None:
        return {"instances": h, "ports": p, "skipped": problem}
    ctx.say(f"memory: seeding {h:,} x {p}")
    db = ctx.db("memory")
    ps = await build_stack(
        db,
        "hotport",
        profile="instant",
        time_scale=1.0,
        seed=s.seed,
        events=False,
        agent=False,
        plug_time=0.0,
        unplug_time=0.0,
    )
    try:
        ids = await seed_host(ps, h, p)
        async with fast(ps):
            net = await ps.seeder.network(cidr="172.16.0.0/12", name="mem")
            extra = await ps.seeder.port(net)
        await settle(ps)
        ctx.advance()
        ctx.say(f"memory: heal of {h:,} x {p} under tracemalloc")
        gc.collect()
        tracemalloc.start()
        try:
            # the simulator alone, answering the heal's big list
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            r = await ps.stack.admin.get("/v2.0/ports", params={"binding:host_id": HOST})
            assert r.status_code == 200
            del r
            sim_peak = tracemalloc.get_traced_memory()[1] - base
            gc.collect()
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            report = await ps.manager.heal()
            await ps.manager.attach(ids[0], port_id=extra)
            await ps.manager.detach(ids[0], extra)
            _current, peak = tracemalloc.get_traced_memory()
            gc.collect()
            retained = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        ctx.advance()
        rows = len(await ps.manager.engine.store.all_vifs())
    finally:
        await ps.close()
    return {
        "instances": h,
        "ports": p,
        "cached_vifs": rows,
        "heal_ports_seen": report.ports_seen,
        "peak_mb": (peak - base) / MB,
        "sim_peak_mb": sim_peak / MB,
        "hotport_peak_mb": max(0.0, (peak - base - sim_peak)) / MB,
        "retained_mb": retained / MB,
        "db_mb": db.stat().st_size / MB if db.exists() else None,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "measure": "tracemalloc (Python heap)",
    }


async def run(ctx: Ctx) -> dict[str, Any]:
    s = ctx.settings
    ctx.total(ROUNDS * len(s.policies) + 2)
    cpu = await _cpu(ctx)
    memory = await _memory(ctx)
    return {"cpu": cpu, "memory": memory, "ports": s.overhead_ports}
