"""Scenario 4, heal cost: one heal of a whole host of H instances x P ports.

Per H and policy: a host seeded with H instances with P ports each (cache, bindings and
NICs in line), then one call of the policy's heal, measured: network-service requests,
article-equivalent seconds, and CPU time (the process's, and the in-process simulator's
share of it, told apart: hotport's own = the process's - the simulator's). A policy
whose heal covers only some instances per call (the old design heals one instance per
periodic tick) is measured over a few calls and extrapolated to the calls needed to
cover every instance.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from hotport.bench.context import Ctx
from hotport.bench.seeding import can_seed, seed_host
from hotport.bench.stacks import Op, build_stack, settle
from hotport.engine.trace import OperationTrace


def _collect_heals(into: list[OperationTrace]) -> Callable[[OperationTrace], None]:
    def collect(trace: OperationTrace) -> None:
        if trace.kind == "heal":
            into.append(trace)

    return collect


async def run(ctx: Ctx) -> dict[str, Any]:
    s = ctx.settings
    p = s.heal_ports
    ctx.total(len(s.heal_hosts) * len(s.policies))
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for h in s.heal_hosts:
        problem = can_seed(h, p)
        if problem is not None:
            skipped.append({"instances": h, "ports": p, "reason": problem})
            ctx.advance(len(s.policies))
            continue
        for policy in s.policies:
            ctx.say(f"{policy}: seeding {h:,} x {p}")
            ps = await build_stack(
                ctx.db(f"{policy}-{h}"),
                policy,
                profile=s.profile,
                time_scale=s.time_scale,
                seed=s.seed,
                agent=False,
                events=False,
            )
            try:
                t0 = time.perf_counter()
                await seed_host(ps, h, p)
                await settle(ps)
                seeded = time.perf_counter() - t0
                traces: list[OperationTrace] = []
                ps.manager.engine.on_trace.append(_collect_heals(traces))
                calls: list[dict[str, Any]] = []
                ctx.say(f"{policy}: heal of {h:,} x {p}")
                # per-instance heals cost the same each call: one is enough on a big host
                for _ in range(max(1, s.heal_legacy_ticks if h < 1000 else 1)):
                    cpu0, sim0 = time.process_time(), ps.cpu.cpu
                    report = await ps.manager.heal()
                    cpu = time.process_time() - cpu0
                    sim = ps.cpu.cpu - sim0
                    op = Op.of(policy, traces[-1], ps.meter, ps.time_scale)
                    calls.append(
                        {
                            "instances": report.instances,
                            "requests": report.network_requests,
                            "equivalent": op.equivalent,
                            "round_trips": op.round_trips,
                            "cpu": cpu,
                            "sim_cpu": sim,
                            "drift": report.drift,
                        }
                    )
                    if report.instances >= h:
                        break  # one call covers the host
            finally:
                await ps.close()
            covered = max(1, min(c["instances"] for c in calls))
            needed = math.ceil(h / covered)
            n = len(calls)
            mean = {
                k: sum(c[k] for c in calls) / n
                for k in ("requests", "equivalent", "cpu", "sim_cpu")
            }
            rows.append(
                {
                    "policy": policy,
                    "instances": h,
                    "ports": p,
                    "calls_measured": n,
                    "instances_per_call": covered,
                    "calls_for_host": needed,
                    "extrapolated": needed > n,
                    "requests": round(mean["requests"] * needed),
                    "requests_per_call": mean["requests"],
                    "equivalent_seconds": mean["equivalent"] * needed,
                    "round_trips_per_call": calls[0]["round_trips"],
                    "cpu_seconds": (mean["cpu"] - mean["sim_cpu"]) * needed,
                    "process_cpu_seconds": mean["cpu"] * needed,
                    "sim_cpu_seconds": mean["sim_cpu"] * needed,
                    "drift": calls[0]["drift"],
                    "seed_seconds": seeded,
                }
            )
            ctx.advance()
    return {"rows": rows, "skipped": skipped, "ports": p}
