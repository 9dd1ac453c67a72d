"""Scenario 1, latency vs ports: one VM with N ports; attach one more, detach it.

For each N, one stack per policy (same simulator settings, same seed), the VM set up
with N ports (not measured); then, interleaved (for each repetition, for each policy),
one attach and one detach of the same extra port, each measured alone (everything
settled before it). Reported per policy, N and operation: article-equivalent median
and p95, network-service requests and round trips.
"""

from __future__ import annotations

from typing import Any

from hotport.bench.context import Ctx
from hotport.bench.stacks import (
    Op,
    PolicyStack,
    build_stack,
    fast,
    make_vm,
    measure_attach,
    measure_detach,
    settle,
)
from hotport.bench.timing import summary


def summarise(policy: str, n: int, kind: str, ops: list[Op]) -> dict[str, Any]:
    eq = [o.equivalent for o in ops]
    reqs = sorted(o.requests for o in ops)
    return {
        "policy": policy,
        "ports": n,
        "operation": kind,
        "equivalent": summary(eq),
        "measured": summary([o.seconds for o in ops]),
        "requests": reqs[len(reqs) // 2],
        "requests_min": reqs[0],
        "requests_max": reqs[-1],
        "round_trips": sorted(o.round_trips for o in ops)[len(ops) // 2],
        "lock_wait": summary([o.lock_wait for o in ops]),
        "calls": ops[0].calls,
        "errors": sum(1 for o in ops if o.outcome != "ok"),
    }


async def run(ctx: Ctx) -> dict[str, Any]:
    s = ctx.settings
    ctx.total(len(s.ports) * (len(s.policies) + s.reps * len(s.policies)))
    rows: list[dict[str, Any]] = []
    for n in s.ports:
        stacks: list[PolicyStack] = []
        vms = {}
        try:
            for policy in s.policies:
                ctx.say(f"N={n}: setting up {policy}")
                ps = await build_stack(
                    ctx.db(f"{policy}-n{n}"),
                    policy,
                    profile=s.profile,
                    time_scale=s.time_scale,
                    seed=s.seed + n,  # the same jitter for every policy at one N
                )
                stacks.append(ps)
                async with fast(ps):
                    vms[policy] = await make_vm(ps, n, 0)
                ctx.advance()
            ops: dict[tuple[str, str], list[Op]] = {}
            for rep in range(s.reps):
                for ps in stacks:
                    ctx.say(f"N={n}: {ps.policy} attach+detach {rep + 1}/{s.reps}")
                    vm = vms[ps.policy]
                    # a fresh port each time: a reference design's detach may delete the
                    # port it was given (when an event's rebuild forgot it was the user's)
                    port = await ps.seeder.port(vm.network)
                    await settle(ps)
                    op = await measure_attach(ps, vm.uuid, port)
                    ops.setdefault((ps.policy, "attach"), []).append(op)
                    await settle(ps)
                    op = await measure_detach(ps, vm.uuid, port)
                    ops.setdefault((ps.policy, "detach"), []).append(op)
                    await settle(ps)
                    ctx.advance()
            for policy in s.policies:
                for kind in ("attach", "detach"):
                    rows.append(summarise(policy, n, kind, ops[(policy, kind)]))
        finally:
            for ps in stacks:
                await ps.close()
    return {"rows": rows, "time_scale": s.time_scale, "profile": s.profile}
