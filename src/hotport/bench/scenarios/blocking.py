"""Scenario 2, blocking: attaches and detaches on a VM while its cache is being rebuilt.

One VM with N ports per policy. Each repetition, for each trigger and each policy
(interleaved): a trigger starts (`heal`: one heal; `network-changed`: an untagged
network-changed event for the VM, whose work runs in the background; `none`: nothing,
the baseline), and half a request's latency later an attach and a detach (two other
ports of the same VM) arrive at once. Measured per operation: the wait for locks held by
somebody else (article-equivalent seconds: what the operation spent blocked behind the
rebuild) and its whole latency; the extra latency is the median latency minus the
baseline's median.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hotport.bench.context import Ctx
from hotport.bench.stacks import (
    Op,
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
from hotport.engine.waiters import ExternalEvent
from hotport.sim.latency import PROFILES, LatencyModel

TRIGGERS = ("none", "heal", "network-changed")


async def _trigger(ps: PolicyStack, vm: str, trigger: str) -> None:
    if trigger == "heal":
        await ps.manager.heal()
    elif trigger == "network-changed":
        answers = await ps.manager.events([ExternalEvent("network-changed", vm, None)])
        assert answers[0].code == 200, answers
        await ps.manager.drain()


async def run(ctx: Ctx) -> dict[str, Any]:
    s = ctx.settings
    n = s.blocking_ports
    one_request = LatencyModel(PROFILES[s.profile]).nominal("read")  # model seconds
    ctx.total(len(s.policies) + s.blocking_reps * len(TRIGGERS) * len(s.policies))
    stacks: list[PolicyStack] = []
    ops: dict[tuple[str, str], list[Op]] = {}
    failed: dict[tuple[str, str], int] = {}
    try:
        vms = {}
        for policy in s.policies:
            ctx.say(f"setting up {policy}")
            ps = await build_stack(
                ctx.db(policy), policy, profile=s.profile, time_scale=s.time_scale, seed=s.seed
            )
            stacks.append(ps)
            async with fast(ps):
                vms[policy] = await make_vm(ps, n + 1, 0)  # + 1: the port to detach
            ctx.advance()
        for rep in range(s.blocking_reps):
            for trigger in TRIGGERS:
                for ps in stacks:
                    ctx.say(f"{trigger}: {ps.policy} {rep + 1}/{s.blocking_reps}")
                    vm = vms[ps.policy]
                    # a fresh port to attach each time (a reference design's detach may
                    # delete the port it was given); to detach: one the cache has (a racy
                    # policy may have lost one of the set-up ports from it)
                    await settle(ps)
                    to_attach = await ps.seeder.port(vm.network)
                    cached = [v.id for v in await ps.manager.interfaces(vm.uuid)]
                    to_detach = cached[-1]
                    task = asyncio.create_task(_trigger(ps, vm.uuid, trigger))
                    await asyncio.sleep(one_request * s.time_scale / 2)
                    done = await asyncio.gather(
                        attempt(measure_attach(ps, vm.uuid, to_attach)),
                        attempt(measure_detach(ps, vm.uuid, to_detach)),
                    )
                    await task
                    await settle(ps)
                    ops.setdefault((ps.policy, trigger), []).extend(
                        o for o in done if o is not None
                    )
                    failed[(ps.policy, trigger)] = failed.get((ps.policy, trigger), 0) + sum(
                        1 for o in done if o is None
                    )
                    ctx.advance()
    finally:
        for ps in stacks:
            await ps.close()
    rows = []
    for policy in s.policies:
        base = summary([o.equivalent for o in ops.get((policy, "none"), [])])["median"]
        for trigger in TRIGGERS:
            got = ops.get((policy, trigger), [])
            lat = summary([o.equivalent for o in got])
            rows.append(
                {
                    "policy": policy,
                    "trigger": trigger,
                    "operations": len(got),
                    "lock_wait": summary([o.lock_wait for o in got]),
                    "latency": lat,
                    "extra_latency_median": lat["median"] - base,
                    "errors": failed.get((policy, trigger), 0)
                    + sum(1 for o in got if o.outcome != "ok"),
                }
            )
    return {"rows": rows, "ports": n, "one_request": one_request}
