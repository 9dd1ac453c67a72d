"""Scenario 7, real hypervisor: attach/detach latency on the tiny real guest.

Needs a libvirt host (`bash scripts/libvirt/libvirt-host.sh start` and
`make sync EXTRAS="--extra libvirt"`); without one the scenario is skipped with the
reason. One tiny guest (it acknowledges hot-unplug) serves every policy in turn: per
policy, a stack with the real `LibvirtDriver` and the simulator at the instant profile
(vif_type tap: libvirt makes the tap), then for each N: the guest gets N ports, and C
cycles of attach+detach of one more port are measured (wall seconds: nothing is scaled,
the network is instant, so this is the hypervisor and hotport). The policy's ports are
detached afterwards, so that the next policy finds the guest as it came.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from typing import Any

from hotport.bench.context import Ctx
from hotport.bench.stacks import (
    Op,
    attempt,
    build_stack,
    fast,
    measure_attach,
    measure_detach,
    settle,
)
from hotport.bench.timing import summary
from hotport.engine import errors as E


def problem(uri: str) -> str | None:
    from hotport.demo import libvirt_problem

    return libvirt_problem(uri)


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    from hotport.demo import LIBVIRT_SCRIPT

    return subprocess.run(
        ["bash", str(LIBVIRT_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def run(ctx: Ctx) -> dict[str, Any]:
    s = ctx.settings
    why = await asyncio.to_thread(problem, s.libvirt_uri)
    if why is not None:
        return {
            "skipped": f"no libvirt host: {why}; bash scripts/libvirt/libvirt-host.sh start "
            '&& make sync EXTRAS="--extra libvirt"'
        }
    from hotport.virt.libvirt import LibvirtDriver

    ctx.total(1 + len(s.policies) * len(s.libvirt_ports))
    ctx.say("booting a tiny guest")
    name = f"hp-bench-{uuid.uuid4().hex[:8]}"
    dom = str(uuid.uuid4())
    r = await asyncio.to_thread(_script, "guest", name, dom)
    if r.returncode != 0:
        await asyncio.to_thread(_script, "rm", name)
        return {"skipped": f"libvirt-host.sh guest failed: {r.stderr.strip()[-300:]}"}
    ctx.advance()
    rows = []
    try:
        for index, policy in enumerate(s.policies):
            ps = await build_stack(
                ctx.db(policy),
                policy,
                profile="instant",
                # no latency to scale at the instant profile; this only shortens Neutron's
                # event batching (2 s) so that settling between operations is quick
                time_scale=0.01,
                seed=s.seed + index,  # other MACs per policy
                agent=False,
                virt=LibvirtDriver(s.libvirt_uri),
                vif_type="tap",
            )
            attached: list[str] = []
            try:
                await ps.manager.adopt_instance(dom, name)
                async with fast(ps):
                    net = await ps.seeder.network(cidr="10.9.0.0/16", name="lv")
                for n in sorted(s.libvirt_ports):
                    ctx.say(f"{policy}: N={n}")
                    while len(attached) < n:
                        port = await ps.seeder.port(net)
                        await ps.manager.attach(dom, port_id=port)
                        attached.append(port)
                    await settle(ps)
                    att: list[Op] = []
                    det: list[Op] = []
                    failed = 0
                    refusals: list[str] = []
                    for _ in range(s.libvirt_cycles):
                        extra = await ps.seeder.port(net)  # fresh: a detach may delete it
                        for measure, into in ((measure_attach, att), (measure_detach, det)):
                            await settle(ps)  # each measured alone, events handled
                            op = await attempt(
                                measure(ps, dom, extra, real_hypervisor=True), refusals
                            )
                            if op is None:
                                failed += 1  # a racy policy lost the row: counted
                            else:
                                into.append(op)
                    for kind, ops in (("attach", att), ("detach", det)):
                        hv = "plug" if kind == "attach" else "unplug"
                        rows.append(
                            {
                                "policy": policy,
                                "ports": n,
                                "operation": kind,
                                "seconds": summary([o.seconds for o in ops]),
                                # every cycle can be refused (a racy design lost the row)
                                "requests": (
                                    sorted(o.requests for o in ops)[len(ops) // 2] if ops else None
                                ),
                                "hypervisor_phase": hv,
                                "errors": sum(1 for o in ops if o.outcome != "ok"),
                                "refused": failed,
                                "first_refusal": refusals[0] if refusals else None,
                            }
                        )
                    ctx.advance()
            finally:
                for port in attached:  # leave the guest as it came for the next policy
                    with contextlib.suppress(E.EngineError):
                        await ps.manager.detach(dom, port)
                await ps.close()
    finally:
        await asyncio.to_thread(_script, "rm", name)
    return {"rows": rows, "guest": name, "uri": s.libvirt_uri, "cycles": s.libvirt_cycles}
