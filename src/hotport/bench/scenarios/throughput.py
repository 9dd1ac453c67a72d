"""Scenario 3, throughput: many VMs, many concurrent operations, a capacity-limited
network service.

Per policy: V VMs with P ports each, and as many spare ports; the simulator serves W
requests at once (the rest queue). Then all operations start at once: half attach a
spare port, half detach a set-up port, spread evenly over the VMs. Measured: the time
until the last one is done (article-equivalent: wall time / time_scale, the local work
included and so scaled up too: conservative for the faster policy), operations per
second, the p99 of the operations' latencies, and the network service's own load
(requests served, busy time, time requests queued) over that window (the event work the
operations cause included: Neutron sends the same events to every policy).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hotport.bench.context import Ctx
from hotport.bench.stacks import (
    VM,
    PolicyStack,
    attempt,
    build_stack,
    fast,
    make_vm,
    measure_attach,
    measure_detach,
    settle,
)
from hotport.bench.timing import summary


async def _vms(ps: PolicyStack, count: int, ports: int, per_vm: int) -> list[VM]:
    async with fast(ps):
        net = await ps.seeder.network(cidr="10.0.0.0/8", name="tp")
        return list(
            await asyncio.gather(
                *(make_vm(ps, ports, per_vm, network=net, name=f"tp{i}") for i in range(count))
            )
        )


async def run(ctx: Ctx) -> dict[str, Any]:
    s = ctx.settings
    scale = s.tp_time_scale
    per_vm = max(1, s.tp_ops // s.tp_vms)
    attaches = per_vm // 2 + per_vm % 2
    detaches = per_vm - attaches
    if detaches > s.tp_ports:
        raise ValueError("more detaches per VM than ports")
    ctx.total(s.tp_reps * len(s.policies) * 2)
    rows: list[dict[str, Any]] = []
    for rep in range(s.tp_reps):
        for policy in s.policies:
            ctx.say(f"{policy}: {s.tp_vms} VMs x {s.tp_ports} ports ({rep + 1}/{s.tp_reps})")
            ps = await build_stack(
                ctx.db(policy),
                policy,
                profile=s.profile,
                time_scale=scale,
                workers=s.tp_workers,
                seed=s.seed,
            )
            try:
                vms = await _vms(ps, s.tp_vms, s.tp_ports, attaches)
                await settle(ps)
                ctx.advance()
                ctx.say(
                    f"{policy}: {per_vm * len(vms)} operations at once ({s.tp_workers} workers)"
                )
                coros = []
                for vm in vms:
                    coros += [attempt(measure_attach(ps, vm.uuid, p)) for p in vm.spare]
                    coros += [
                        attempt(measure_detach(ps, vm.uuid, p)) for p in vm.attached[:detaches]
                    ]
                cap0 = ps.sim.capacity.snapshot()
                cpu0 = time.process_time()
                t0 = time.perf_counter()
                done = await asyncio.gather(*coros)
                wall = time.perf_counter() - t0
                cpu = time.process_time() - cpu0
                cap1 = ps.sim.capacity.snapshot()
                await settle(ps)
            finally:
                await ps.close()
            ok = [o for o in done if o is not None and o.outcome == "ok"]
            equiv = wall / scale
            busy = (cap1["busy_time"] - cap0["busy_time"]) / scale
            rows.append(
                {
                    "policy": policy,
                    "rep": rep,
                    "operations": len(coros),
                    "ok": len(ok),
                    "failed": len(coros) - len(ok),
                    "seconds": wall,
                    "equivalent_seconds": equiv,
                    "ops_per_second": len(ok) / equiv if equiv > 0 else 0.0,
                    "latency": summary([o.equivalent for o in ok]),
                    "requests": cap1["served"] - cap0["served"],
                    "requests_by_ops": sum(o.requests for o in ok),
                    "service_busy_seconds": busy,
                    "service_utilisation": busy / (s.tp_workers * equiv) if equiv else 0.0,
                    "queued_seconds": (cap1["total_queued_time"] - cap0["total_queued_time"])
                    / scale,
                    "max_queue_depth": cap1["max_queue_depth"],
                    "cpu_seconds": cpu,
                    "loop_busy": cpu / wall if wall else 0.0,
                }
            )
            ctx.advance()
    return {
        "rows": rows,
        "vms": s.tp_vms,
        "ports": s.tp_ports,
        "workers": s.tp_workers,
        "operations": per_vm * s.tp_vms,
        "time_scale": scale,
    }
