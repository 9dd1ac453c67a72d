"""Coalesced one-port reads through the whole in-process stack (simulator, SQLite, the
in-memory hypervisor): concurrent attaches and per-port refreshes send fewer read
requests than operations, every operation gets its own port, and the invariants hold
(`hotport.engine.audit.audit`). Only hotport's policy coalesces.

Concurrency is forced, not hoped for: the reads are held at the transport until every
operation has queued in the coalescer. No timing is asserted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from hotport.compose import InProcessStack, in_process_stack
from hotport.engine.audit import audit
from hotport.engine.context import DirectReads, EngineConfig
from hotport.engine.events import refresh_port
from hotport.engine.trace import OperationTrace
from hotport.network.coalesce import Coalescer
from hotport.sim.config import SimConfig
from hotport.virt.memory import MemoryDriver

from .conftest import HOST, Neutron, new_instance

READS = ("/v2.0/ports", "/v2.0/floatingips")


class HoldReads(httpx.AsyncBaseTransport):
    """Holds GETs of ports and floating IPs while `holding`; records every request."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.holding = False
        self.held: list[asyncio.Event] = []
        self.sent: list[str] = []

    def release(self) -> None:
        self.holding = False
        held, self.held = self.held, []
        for go in held:
            go.set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path.startswith(READS):
            self.sent.append(f"{path}?{request.url.query.decode()}")
            if self.holding:
                go = asyncio.Event()
                self.held.append(go)
                await go.wait()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def make(tmp_path: Path, *, policy: str = "hotport", events: bool = True) -> InProcessStack:
    holders: list[HoldReads] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        holders.append(HoldReads(inner))
        return holders[0]

    stack = await in_process_stack(
        tmp_path / "hotport.db",
        host=HOST,
        policy=policy,
        sim=SimConfig(profile="instant", active_delay=None, seed=11),
        engine=EngineConfig(host=HOST, detach_timeout=0.5, repair=True),
        virt=MemoryDriver(plug_time=0.0, unplug_time=0.0),
        deliver_events=events,
        wrap_transport=wrap,
    )
    stack.hold = holders[0]  # type: ignore[attr-defined]
    return stack


async def floating_ip(admin: httpx.AsyncClient, net: str, port: str) -> str:
    """An external network routed to `net`, and a floating IP of it on `port`."""

    async def post(path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
        r = await admin.request("PUT" if status == 200 else "POST", path, json=body)
        assert r.status_code == status, r.text
        out: dict[str, Any] = r.json()
        return out

    ext = (await post("/v2.0/networks", {"network": {"name": "ext", "router:external": True}}))[
        "network"
    ]["id"]
    await post(
        "/v2.0/subnets",
        {"subnet": {"network_id": ext, "cidr": "203.0.113.0/24", "ip_version": 4}},
    )
    router = await post(
        "/v2.0/routers",
        {"router": {"name": "r", "external_gateway_info": {"network_id": ext}}},
    )
    subnet = (await admin.get("/v2.0/subnets", params={"network_id": net})).json()["subnets"][0]
    await post(
        f"/v2.0/routers/{router['router']['id']}/add_router_interface",
        {"subnet_id": subnet["id"]},
        200,
    )
    fip = await post(
        "/v2.0/floatingips", {"floatingip": {"floating_network_id": ext, "port_id": port}}
    )
    return str(fip["floatingip"]["floating_ip_address"])


def coalescer(stack: InProcessStack) -> Coalescer:
    reads = stack.manager.engine.reads
    assert isinstance(reads, Coalescer)
    return reads


async def until(cond: Callable[[], bool], what: str) -> None:
    """Let the operations run until `cond` holds (a bound on loop turns, not on time)."""
    for _ in range(5000):
        if cond():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never reached: {what}")


def port_reads(t: OperationTrace) -> int:
    """The port reads an operation waited for: its own or shared with others."""
    return (
        t.requests["show_port"]
        + t.requests["list_ports"]
        + t.shared["show_port"]
        + t.shared["list_ports"]
    )


async def test_concurrent_attaches_share_their_reads_and_the_invariants_hold(
    tmp_path: Path,
) -> None:
    stack = await make(tmp_path, events=False)
    try:
        neutron = Neutron(stack)
        net = await neutron.network()
        vms = [await new_instance(stack, f"vm{i}") for i in range(3)]
        plan = [(vm, await neutron.port(net)) for vm in vms for _ in range(4)]  # 12 attaches
        fip_port = plan[5][1]
        fip_address = await floating_ip(stack.admin, net, fip_port)
        macs = {p: (await neutron.show(p))["mac_address"] for _, p in plan}
        # warm the network cache so that only the reads under test are GETs of ports
        await stack.manager.engine.netcache.get([net])
        hold: HoldReads = stack.hold  # type: ignore[attr-defined]
        stack.client.reset_counters()
        hold.sent.clear()
        hold.holding = True
        tasks = [asyncio.ensure_future(stack.manager.attach(vm, port_id=p)) for vm, p in plan]
        c = coalescer(stack)
        # the first attach's two reads are in flight (held); the 11 others queue
        await until(
            lambda: (
                c.stats()["show_port"]["queued"] == 11 and c.stats()["floating_ips"]["queued"] == 11
            ),
            "11 attaches queued behind the first",
        )
        hold.release()
        results = await asyncio.gather(*tasks)
        await stack.manager.drain()

        # fewer read requests than operations: 1 direct + 1 shared list, per kind
        counters = dict(stack.client.counters)
        assert counters["show_port"] == 1
        assert counters["list_ports"] == 1
        assert counters["list_floating_ips"] == 2
        assert counters["bind_port"] == 12
        assert counters["show_port"] + counters["list_ports"] < len(plan)
        shared_list = [s for s in hold.sent if s.startswith("/v2.0/ports?")]
        assert len(shared_list) == 1
        assert shared_list[0].count("id=") == 11
        stats = c.stats()
        assert stats["show_port"]["batched_callers"] == 11
        assert stats["show_port"]["shared"] == 1

        # every attach got its own port, MAC and floating IP (nobody else's)
        for (vm, port), result in zip(plan, results, strict=True):
            assert result.vif.id == port
            assert result.vif.address == macs[port]
            assert result.vif.floating_ips() == ([fip_address] if port == fip_port else [])
            rows = {v.id for v in await stack.manager.interfaces(vm)}
            assert port in rows
        # each attach waited for exactly one port read; 11 of them shared one
        traces = [r.trace for r in results]
        assert all(port_reads(t) == 1 for t in traces)
        assert sum(t.shared["list_ports"] for t in traces) == 11
        assert sum(t.requests["show_port"] for t in traces) == 1
        waited = [t for t in traces if any(p.name == "wait-coalesce" for p in t.phases)]
        assert len(waited) == 11

        report = await audit(stack.manager.engine)
        assert report.ok, report.to_dict()
        assert report.bound_ports == len(plan)
    finally:
        await stack.close()


async def test_concurrent_refreshes_share_their_reads(tmp_path: Path) -> None:
    stack = await make(tmp_path, events=False)
    try:
        neutron = Neutron(stack)
        net = await neutron.network()
        vm = await new_instance(stack)
        ports = [await neutron.port(net) for _ in range(6)]
        for p in ports:
            await stack.manager.attach(vm, port_id=p)
        await neutron.update(ports[2], name="renamed")  # the refresh must see it
        await neutron.delete(ports[4])  # the refresh must forget it
        engine = stack.manager.engine
        traces: list[OperationTrace] = []
        engine.on_trace.append(traces.append)
        hold: HoldReads = stack.hold  # type: ignore[attr-defined]
        stack.client.reset_counters()
        hold.holding = True
        tasks = [asyncio.ensure_future(refresh_port(engine, vm, p)) for p in ports]
        c = coalescer(stack)
        await until(lambda: c.stats()["show_port"]["queued"] == 5, "5 refreshes queued")
        hold.release()
        await asyncio.gather(*tasks)
        counters = dict(stack.client.counters)
        assert counters["show_port"] + counters["list_ports"] == 2 < len(ports)
        rows = {v.id for v in await stack.manager.interfaces(vm)}
        assert rows == set(ports) - {ports[4]}  # not found in the shared list: forgotten
        renamed = await engine.store.vif(ports[2])
        assert renamed is not None
        assert renamed.revision == (await neutron.show(ports[2]))["revision_number"]
        refreshed = [t for t in traces if t.kind == "refresh"]
        assert len(refreshed) == 6
        assert all(t.outcome == "ok" for t in refreshed)
        report = await audit(engine)
        assert report.ok, report.to_dict()
    finally:
        await stack.close()


async def test_a_storm_with_events_keeps_every_invariant(tmp_path: Path) -> None:
    """Attaches and detaches at once, the simulator's events refreshing rows through the
    same coalescer; then the invariants, before and after one heal."""
    stack = await make(tmp_path, events=True)
    try:
        neutron = Neutron(stack)
        net = await neutron.network()
        vms = [await new_instance(stack, f"vm{i}") for i in range(4)]
        attached: list[tuple[str, str]] = []
        spare: list[tuple[str, str]] = []
        for vm in vms:
            for i in range(6):
                p = await neutron.port(net)
                if i < 3:
                    await stack.manager.attach(vm, port_id=p)
                    attached.append((vm, p))
                else:
                    spare.append((vm, p))
        await stack.manager.drain()
        c = coalescer(stack)
        before_stats = c.stats()["show_port"]
        stack.client.reset_counters()
        hold: HoldReads = stack.hold  # type: ignore[attr-defined]
        hold.holding = True
        ops: list[Any] = [stack.manager.attach(vm, port_id=p) for vm, p in spare]
        ops += [stack.manager.detach(vm, p) for vm, p in attached]
        tasks = [asyncio.ensure_future(op) for op in ops]
        await until(lambda: c.stats()["show_port"]["queued"] >= 11, "attaches queued")
        hold.release()
        results = await asyncio.gather(*tasks)
        await stack.manager.drain()
        assert len(results) == 24
        stats = c.stats()["show_port"]
        counters = dict(stack.client.counters)
        reads = counters.get("show_port", 0) + counters.get("list_ports", 0)
        # every port read went out as a direct request or a batch, and some were shared
        sent = (stats["direct"] - before_stats["direct"]) + (
            stats["batches"] - before_stats["batches"]
        )
        assert reads == sent
        assert stats["shared"] > before_stats["shared"]
        assert all(port_reads(r.trace) == 1 for r in results[: len(spare)])
        for vm in vms:
            assert {v.id for v in await stack.manager.interfaces(vm)} == {
                p for v, p in spare if v == vm
            }
        before = await audit(stack.manager.engine)
        assert before.ok, before.to_dict()
        await stack.manager.heal()
        after = await audit(stack.manager.engine)
        assert after.ok, after.to_dict()
    finally:
        await stack.close()


@pytest.mark.parametrize("policy", ["legacy", "article"])
async def test_the_reference_designs_never_coalesce(tmp_path: Path, policy: str) -> None:
    stack = await make(tmp_path, policy=policy)
    try:
        assert isinstance(stack.manager.engine.reads, DirectReads)
    finally:
        await stack.close()
