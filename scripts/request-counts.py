"""Print the network-service requests of each hotport operation for N = 1, 10, 50.

    .venv/bin/python scripts/request-counts.py

Runs the whole stack in this process (simulator, engine, SQLite in a temporary
directory, in-memory hypervisor) and reads each operation's trace: requests by call,
and the sequential round trips counted by the trace (requests that overlapped in time
count once; the simulator's `lan` profile at 1/10 of its latency, so that concurrent
requests really overlap). The figures to compare with are in docs/anchors (upstream
Nova: attach 5N+12, detach 5N+1, heal 5N+3 per instance).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from pathlib import Path

from hotport.compose import in_process_stack
from hotport.engine.context import EngineConfig
from hotport.engine.events import refresh_instance, refresh_port
from hotport.engine.trace import OperationTrace
from hotport.sim.config import SimConfig
from hotport.sim.seed import Seeder
from hotport.virt.memory import MemoryDriver


def fmt(t: OperationTrace) -> str:
    return f"{t.request_count} ({t.round_trips} RT)"


async def row(n: int, tmp: Path) -> list[str]:
    stack = await in_process_stack(
        tmp / f"n{n}.db",
        sim=SimConfig(profile="lan", time_scale=0.1, active_delay=None, workers=64, seed=1),
        engine=EngineConfig(host="compute-1"),
        virt=MemoryDriver(plug_time=0.0, unplug_time=0.0),
        deliver_events=False,
    )
    try:
        m = stack.manager
        seed = Seeder(stack.admin)
        net = await seed.network("10.0.0.0/16")
        inst = str(uuid.uuid4())
        await m.create_instance(inst, "vm")
        for _ in range(n):
            await m.attach(inst, port_id=await seed.port(net))
        warm = await m.attach(inst, port_id=await seed.port(net))
        cold_net = await seed.network("10.1.0.0/16")
        cold = await m.attach(inst, port_id=await seed.port(cold_net))
        by_net = await m.attach(inst, network_id=net)
        traces: list[OperationTrace] = []
        m.engine.on_trace.append(traces.append)
        await refresh_port(m.engine, inst, warm.vif.id)
        await refresh_instance(m.engine, inst)
        tagged, untagged = traces[0], traces[1]
        heal = await m.heal()
        detach = await m.detach(inst, warm.vif.id)
        delete = await m.detach(inst, by_net.vif.id)
        return [
            str(n),
            fmt(warm.trace),
            fmt(cold.trace),
            fmt(by_net.trace),
            fmt(detach.trace),
            fmt(delete.trace),
            fmt(tagged),
            fmt(untagged),
            f"{heal.network_requests}",
        ]
    finally:
        await stack.close()


async def main() -> None:
    head = [
        "N",
        "attach (warm)",
        "attach (cold network)",
        "attach by network",
        "detach (unbind)",
        "detach (delete)",
        "network-changed, tagged",
        "network-changed, untagged",
        "heal (whole host)",
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 10, 50):
            rows.append(await row(n, Path(tmp)))
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
