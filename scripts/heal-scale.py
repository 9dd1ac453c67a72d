"""One heal of H instances x P ports: requests, wall time, hotport's CPU, memory, rows/s.

    .venv/bin/python scripts/heal-scale.py --instances 10000 --ports 10 --repeat 3
    .venv/bin/python scripts/heal-scale.py --instances 1000 --ops 200    # + attach/detach

Set-up (not measured): the simulator's state is seeded in bulk (`hotport.sim.bulk`:
networks, subnets, bound ACTIVE ports, optionally floating IPs), saved as a state file,
and served by a simulator in ANOTHER PROCESS (uvicorn, `instant` profile) over a real
socket; hotport's store is loaded in bulk with the VIF rows hotport would hold
(`SqlStore.bulk_load`), and the in-memory hypervisor gets one domain per instance with
its NICs. So the cache starts in line with Neutron (the steady state), unless `--drift`
changes some ports first.

What is counted:
- requests: the heal's network-service requests (its trace);
- wall: `time.perf_counter` around `manager.heal()`;
- hotport CPU: `time.process_time` of THIS process around `manager.heal()`: the engine,
  the HTTP client (JSON decoding and parsing of the answers), the store (SQLAlchemy and
  SQLite, whose aiosqlite thread is in this process) and the in-memory hypervisor. The
  simulator's CPU is NOT in it (it runs in its own process); it is shown beside it
  (`sim CPU`, from /proc/<pid>/stat) for reference;
- memory: a separate heal run under `tracemalloc` (Python allocations only; SQLite's own
  page cache is C memory and not traced): the peak above what was allocated before the
  heal, and what the heal left allocated after it (`retained`; the engine keeps no VIF
  in memory: the rows stay in SQLite). The peak RSS growth during a heal without
  tracemalloc (VmHWM after resetting it through /proc/self/clear_refs) is shown too;
- rows/s: VIF rows reconciled per second of wall time.
- `--ops N`: N attach+detach pairs of fresh ports on a fresh instance (ports created
  beforehand, not counted): hotport CPU per pair, same rule (simulator excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from hotport.compose import build_manager
from hotport.engine.context import EngineConfig
from hotport.engine.manager import InterfaceManager
from hotport.network import NeutronClient, NoAuth
from hotport.sim.bulk import seed_host
from hotport.sim.seed import Seeder
from hotport.sim.state import SimState
from hotport.store.sql import open_store
from hotport.virt.memory import MemoryDriver

HOST = "compute-1"
MB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimProcess:
    """The simulator, serving a state file from another process."""

    def __init__(self, state_file: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        code = (
            "from hotport.sim.config import SimConfig\n"
            "from hotport.sim.server import serve\n"
            f"serve(SimConfig(profile='instant', active_delay=None, workers=64, seed=1,"
            f" state_file={str(state_file)!r}), '127.0.0.1', {self.port}, log_level='warning')\n"
        )
        self.proc = subprocess.Popen([sys.executable, "-c", code])

    async def ready(self, within: float = 300.0) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as http:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the simulator exited with {self.proc.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(self.url + "/")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError("the simulator did not start")
                await asyncio.sleep(0.2)

    def cpu(self) -> float:
        """The simulator process's CPU seconds so far (user + system)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.kill()  # ours; its state file is scratch
        self.proc.wait(30)


def file_mb(folder: Path, pattern: str) -> float:
    return sum(f.stat().st_size for f in folder.glob(pattern)) / MB


def rss_peak_reset() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def vm_kb(name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


async def measure(
    fn: Callable[[], Awaitable[Any]], sim: SimProcess
) -> tuple[Any, float, float, float]:
    gc.collect()
    s0 = sim.cpu()
    c0, w0 = time.process_time(), time.perf_counter()
    out = await fn()
    c1, w1 = time.process_time(), time.perf_counter()
    return out, w1 - w0, c1 - c0, sim.cpu() - s0


async def drift(http: httpx.AsyncClient, ports: Iterator[str], count: int) -> None:
    """Change `count` ports at Neutron behind hotport's back (a new name: revision + 1)."""
    for _ in range(count):
        r = await http.put(f"/v2.0/ports/{next(ports)}", json={"port": {"name": "drifted"}})
        r.raise_for_status()


async def run(args: argparse.Namespace) -> None:
    h, p = args.instances, args.ports
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        t0 = time.perf_counter()
        state = SimState(seed=1)
        store = await open_store(f"sqlite+aiosqlite:///{tmp / 'hotport.db'}")
        virt = MemoryDriver(plug_time=0.0, unplug_time=0.0)
        layout = await seed_host(
            state,
            store,
            virt,
            host=HOST,
            instances=h,
            ports_per_instance=p,
            networks=args.networks,
            floating_ips=args.floating_ips,
        )
        state_file = tmp / "sim.json"
        state_file.write_text(json.dumps(state.to_snapshot()))
        all_ports = iter([pid for inst in layout.instances for pid in layout.ports[inst]])
        del state
        gc.collect()
        sim = SimProcess(state_file)
        try:
            await sim.ready()
            setup = time.perf_counter() - t0
            client = NeutronClient(
                NoAuth(sim.url), read_timeout=600.0, read_deadline=1200.0, write_timeout=60.0
            )
            manager = build_manager(
                config=EngineConfig(host=HOST), network=client, store=store, virt=virt
            )
            db_mb = file_mb(tmp, "hotport.db*")
            print(
                f"H={h} x P={p}: {h * p} VIFs, {args.networks} networks, "
                f"{args.floating_ips} floating IPs (set-up {setup:.1f} s, not counted; "
                f"the cache is a {db_mb:.0f} MB SQLite file)"
            )
            admin = httpx.AsyncClient(base_url=sim.url, timeout=600.0)
            try:
                await heals(args, manager, sim, admin, all_ports)
                if args.ops:
                    await ops(args, manager, sim, admin)
            finally:
                await admin.aclose()
                await manager.close()
                await client.aclose()
        finally:
            sim.stop()
            await store.close()


async def heals(
    args: argparse.Namespace,
    manager: InterfaceManager,
    sim: SimProcess,
    admin: httpx.AsyncClient,
    ports: Iterator[str],
) -> None:
    vifs = args.instances * args.ports
    print(
        "| heal | requests | drift | wall s | hotport CPU s | sim CPU s | rows/s (wall) |"
        "\n|---|---|---|---|---|---|---|"
    )
    for i in range(args.repeat):
        if args.drift:
            await drift(admin, ports, args.drift)
        report, wall, cpu, sim_cpu = await measure(manager.heal, sim)
        print(
            f"| {i + 1} | {report.network_requests} | {report.drift} | {wall:.3f} | {cpu:.3f} "
            f"| {sim_cpu:.3f} | {vifs / wall:,.0f} |"
        )
    # memory: one more heal under tracemalloc (it traces what is allocated from its start:
    # the heal's own allocations), then one with the RSS high-water mark reset
    gc.collect()
    tracemalloc.start()
    await manager.heal()
    _, peak = tracemalloc.get_traced_memory()
    gc.collect()
    retained, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    gc.collect()
    rss = ""
    if rss_peak_reset():
        rss0 = vm_kb("VmRSS")
        await manager.heal()
        rss = f"; RSS high-water mark during a heal: +{(vm_kb('VmHWM') - rss0) / 1024:.1f} MB"
    print(
        f"memory (tracemalloc, Python allocations of one heal): peak {peak / MB:.1f} MB, "
        f"still held after it {retained / MB:.1f} MB{rss}"
    )


async def ops(
    args: argparse.Namespace, manager: InterfaceManager, sim: SimProcess, admin: httpx.AsyncClient
) -> None:
    seed = Seeder(admin)
    net = await seed.network("172.16.0.0/16")
    inst = str(uuid.uuid4())
    await manager.create_instance(inst, "ops")
    ports = [await seed.port(net) for _ in range(args.ops + 1)]
    await manager.attach(inst, port_id=ports[0])  # warm: the network is cached
    await manager.detach(inst, ports[0])

    async def pairs() -> None:
        for port in ports[1:]:
            await manager.attach(inst, port_id=port)
            await manager.detach(inst, port)

    _, wall, cpu, sim_cpu = await measure(pairs, sim)
    n = args.ops
    print(
        f"attach+detach x{n}: hotport CPU {cpu / n * 1000:.2f} ms per pair "
        f"(wall {wall / n * 1000:.2f} ms, sim CPU {sim_cpu / n * 1000:.2f} ms per pair)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--ports", type=int, default=10, help="ports per instance")
    ap.add_argument("--repeat", type=int, default=3, help="heals measured")
    ap.add_argument("--networks", type=int, default=10)
    ap.add_argument("--floating-ips", type=int, default=0, help="ports with a floating IP")
    ap.add_argument(
        "--drift", type=int, default=0, help="ports changed at Neutron before each heal"
    )
    ap.add_argument("--ops", type=int, default=0, help="attach+detach pairs to measure")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
