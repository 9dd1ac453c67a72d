"""Attach and detach latency through the engine on a real libvirt guest (not a test).

    bash scripts/libvirt/libvirt-host.sh start
    .venv/bin/python scripts/libvirt/measure.py --ops 100 --attached 1,10

For each N in --attached: N ports are attached to the guest (and stay), then one more
port is attached and detached --ops times through the engine (simulator, instant profile,
vif_type tap; a real LibvirtDriver; the detach waits for the guest's device-removed
event). Prints median and p95 of each, in milliseconds, and the driver-only plug/unplug
share (the engine trace's "plug"/"unplug" phases where available).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from hotport.compose import in_process_stack
from hotport.engine.context import EngineConfig
from hotport.sim.config import SimConfig
from hotport.virt.libvirt import LibvirtDriver

SCRIPT = Path(__file__).resolve().parent / "libvirt-host.sh"
HOST = "compute-1"


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def line(what: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"{what:<28} n={len(ms):<4} median {statistics.median(ms):7.1f} ms   "
        f"p95 {pct(ms, 95):7.1f} ms   max {max(ms):7.1f} ms"
    )


async def main(args: argparse.Namespace) -> int:
    name = f"hp-measure-{uuid.uuid4().hex[:8]}"
    started = await asyncio.to_thread(
        subprocess.run,
        ["bash", str(SCRIPT), "guest", name],
        capture_output=True,
        text=True,
        check=True,
    )
    dom = started.stdout.strip()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stack = await in_process_stack(
                Path(tmp) / "hotport.db",
                host=HOST,
                sim=SimConfig(profile="instant", vif_type="tap", active_delay=None, seed=1),
                engine=EngineConfig(host=HOST, detach_timeout=30.0),
                virt=LibvirtDriver(args.uri),
            )
            try:
                await stack.manager.adopt_instance(dom, name)
                r = await stack.admin.post("/v2.0/networks", json={"network": {"name": "m"}})
                net = r.json()["network"]["id"]
                await stack.admin.post(
                    "/v2.0/subnets",
                    json={"subnet": {"network_id": net, "cidr": "10.9.0.0/16", "ip_version": 4}},
                )

                async def port() -> str:
                    r = await stack.admin.post("/v2.0/ports", json={"port": {"network_id": net}})
                    return str(r.json()["port"]["id"])

                background = 0
                print(f"guest {name} ({dom}), {args.ops} attach + detach per N", flush=True)
                for n in sorted(args.attached):
                    while background < n:
                        await stack.manager.attach(dom, port_id=await port())
                        background += 1
                    p = await port()
                    att: list[float] = []
                    det: list[float] = []
                    plug: list[float] = []
                    unplug: list[float] = []
                    for _ in range(args.ops):
                        t = time.perf_counter()
                        a = await stack.manager.attach(dom, port_id=p)
                        att.append(time.perf_counter() - t)
                        t = time.perf_counter()
                        d = await stack.manager.detach(dom, p)
                        det.append(time.perf_counter() - t)
                        for trace, phase, out in (
                            (a.trace, "plug", plug),
                            (d.trace, "unplug", unplug),
                        ):
                            out.extend(ph.seconds for ph in trace.phases if ph.name == phase)
                    nics = len(await stack.virt.nics(dom))
                    print(f"\nN = {n} ports already attached (guest has {nics} NICs between ops)")
                    print(line("attach (engine)", att))
                    print(line("detach (engine)", det))
                    if plug:
                        print(line("  of which plug (libvirt)", plug))
                    if unplug:
                        print(line("  of which unplug (libvirt)", unplug))
            finally:
                await stack.manager.drain()
                await stack.close()
    finally:
        await asyncio.to_thread(subprocess.run, ["bash", str(SCRIPT), "rm", name], check=False)
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ops", type=int, default=100, help="attach+detach cycles per N")
    ap.add_argument(
        "--attached",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 10],
        help="comma-separated N: ports already attached",
    )
    ap.add_argument("--uri", default="qemu:///system")
    sys.exit(asyncio.run(main(ap.parse_args())))
