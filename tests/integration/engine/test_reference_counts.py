"""The reference designs `legacy` and `article` send exactly upstream Nova's requests.

ANCHORS.md measured upstream Nova 34's network code: with N ports on the VM before the
operation and S subnets (and as many fixed IPs) per port, one VIF rebuilt costs
v = F + 1 + S + P = 2S + 3 requests, and

| operation | requests | under `refresh_cache-{instance}` |
|---|---|---|
| attach a pre-created port | 6 + 1 + v(N+1)   (5N+12; 7N+14 with S=2) | 1 + v(N+1) |
| attach by network | 5 + 1 + v(N+1)   (5N+11) | 1 + v(N+1) |
| detach (unbind) | 4 + 2 + v(N-1)   (5N+1; 7N-1 with S=2) | 2 + v(N-1) |
| detach (delete a created port) | 2 + 2 + v(N-1)   (5N-1) | 2 + v(N-1) |
| network-changed, tagged | 2 + v   (7) | all |
| network-changed, untagged | 2 + vN   (5N+2) | all |
| heal, one instance | 3 + vN   (5N+3; 7N+3 with S=2) | 2 + vN |

The legacy design must send exactly these, one after another (the gate of conftest parks
concurrent requests together: every round must hold ONE request), the rebuild while
holding the instance lock. The article design sends the attach/detach requests minus the
rebuild (building only the new VIF) and no instance lock on attach/detach, and keeps the
full rebuild for events and the heal. hotport's own budgets are
test_engine_budgets.py's, untouched.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hotport.compose import InProcessStack
from hotport.engine import reference
from hotport.engine.heal import HealReport
from hotport.engine.policy import POLICIES
from hotport.engine.reference import ReferenceHealReport, ReferenceOperations
from hotport.engine.trace import OperationTrace
from hotport.engine.waiters import ExternalEvent
from hotport.model import VIF
from hotport.service.config import ServiceConfig
from hotport.service.server import check

from .conftest import HOST, Neutron, make_stack, new_instance

N_VALUES = [1, 5, 10, 20, 50]


# -------------------------------------------------------------------- expected counts
def vifs(k: int, s: int) -> Counter[str]:
    """The requests of k VIFs built one by one (F = S fixed IPs per port, P = 2)."""
    return Counter(
        {"list_floating_ips": k * s, "list_subnets": k, "list_ports": k * s, "show_network": 2 * k}
    )


def rebuild(k: int, s: int, *, networks: bool = True) -> Counter[str]:
    """Under the lock: list the instance's ports, (its networks), build k VIFs."""
    return Counter({"list_ports": 1, **({"list_networks": 1} if networks else {})}) + vifs(k, s)


def legacy_attach(n: int, s: int) -> Counter[str]:
    before = Counter({"show_port": 2, "show_network": 2, "list_networks": 1, "bind_port": 1})
    return before + rebuild(n + 1, s, networks=False)


def legacy_attach_network(n: int, s: int) -> Counter[str]:
    before = Counter({"show_network": 2, "list_networks": 1, "create_port": 1, "bind_port": 1})
    return before + rebuild(n + 1, s, networks=False)


def release(created: bool) -> Counter[str]:
    if created:
        return Counter({"show_port": 1, "delete_port": 1})
    return Counter({"show_port": 2, "show_network": 1, "unbind_port": 1})


def total(c: Counter[str]) -> int:
    return sum(c.values())


# -------------------------------------------------------------------- set-up helpers
class Watch:
    """Every request the engine sends, and whether the instance lock was held then."""

    def __init__(self, stack: InProcessStack) -> None:
        self.locks = stack.manager.engine.locks
        self.instance: str | None = None
        self.seen: list[tuple[str, bool]] = []
        stack.client.add_observer(self._saw)

    def _saw(self, record: Any) -> None:
        held = self.instance is not None and self.locks.refresh_held(self.instance)
        self.seen.append((record.call, held))

    @contextmanager
    def on(self, instance: str) -> Iterator[list[tuple[str, bool]]]:
        self.instance, self.seen = instance, []
        yield self.seen

    @staticmethod
    def locked(seen: list[tuple[str, bool]]) -> int:
        return sum(1 for _, held in seen if held)


async def second_subnet(neutron: Neutron, net: str) -> None:
    body = {"subnet": {"network_id": net, "cidr": "198.51.100.0/24", "ip_version": 4}}
    r = await neutron.http.post("/v2.0/subnets", json=body)
    assert r.status_code == 201, r.text


async def subnet_ids(neutron: Neutron, net: str) -> list[str]:
    r = await neutron.http.get("/v2.0/subnets", params={"network_id": net})
    return sorted(str(s["id"]) for s in r.json()["subnets"])


async def vm_with_ports(
    stack: InProcessStack, neutron: Neutron, n: int, s: int
) -> tuple[str, str, list[dict[str, str]]]:
    """A VM whose cache holds n ports with s fixed IPs each (the ports are bound at the
    network service, one heal tick records them, their NICs are plugged)."""
    net = await neutron.network("192.0.2.0/24")
    if s == 2:
        await second_subnet(neutron, net)
    fixed = [{"subnet_id": sid} for sid in await subnet_ids(neutron, net)]
    assert len(fixed) == s
    inst = await new_instance(stack)
    for _ in range(n):
        await neutron.port(
            net,
            fixed_ips=fixed,
            device_id=inst,
            device_owner="compute:nova",
            **{"binding:host_id": HOST},
        )
    report = await stack.manager.heal()
    assert isinstance(report, ReferenceHealReport)
    assert report.healed_instance == inst
    assert len(report.added) == n
    for row in await stack.store.vifs(inst):
        await stack.virt.plug(inst, VIF.from_json(row.vif))
    return inst, net, fixed


def ops(stack: InProcessStack) -> ReferenceOperations:
    assert stack.manager.reference is not None
    return stack.manager.reference


async def run(stack: InProcessStack, coro: Any, kind: str) -> tuple[Any, OperationTrace]:
    traces: list[OperationTrace] = []
    stack.manager.engine.on_trace.append(traces.append)
    try:
        result = await stack.gate.run(coro, kind)
    finally:
        stack.manager.engine.on_trace.remove(traces.append)
    [trace] = [t for t in traces if t.kind == kind]
    return result, trace


def sequential(stack: InProcessStack, trace: OperationTrace) -> None:
    """Every request waited for the one before it: one per gate round."""
    assert stack.gate.rounds == [1] * trace.request_count
    assert trace.round_trips == trace.request_count


# -------------------------------------------------------------------- legacy
@pytest.mark.parametrize("s", [1, 2])
@pytest.mark.parametrize("n", N_VALUES)
async def test_legacy_sends_upstream_novas_requests(tmp_path: Path, n: int, s: int) -> None:
    stack = await make_stack(tmp_path, policy="legacy", deliver_events=False)
    try:
        neutron = Neutron(stack)
        watch = Watch(stack)
        inst, net, fixed = await vm_with_ports(stack, neutron, n, s)
        v = 2 * s + 3
        m = stack.manager

        # network-changed with a tag: that one VIF, under the lock
        port = (await m.interfaces(inst))[n // 2].id
        with watch.on(inst) as seen:
            _, trace = await run(stack, ops(stack).refresh_port(inst, port), "refresh")
        assert trace.requests == rebuild(1, s)
        assert total(trace.requests) == 2 + v
        assert watch.locked(seen) == 2 + v
        sequential(stack, trace)

        # network-changed without a tag: the N cached ports, under the lock
        with watch.on(inst) as seen:
            _, trace = await run(stack, ops(stack).refresh_instance(inst), "refresh-instance")
        assert trace.requests == rebuild(n, s)
        assert watch.locked(seen) == 2 + v * n
        sequential(stack, trace)

        # one heal tick: this instance (the only one), Neutron's N ports
        with watch.on(inst) as seen:
            report, trace = await run(stack, m.heal(), "heal")
        assert isinstance(report, ReferenceHealReport)
        assert report.healed_instance == inst
        assert trace.requests == Counter({"list_ports": 1}) + rebuild(n, s)
        assert report.network_requests == 3 + v * n
        assert watch.locked(seen) == 2 + v * n
        assert report.drift == 0
        sequential(stack, trace)

        # attach a pre-created port: 6 requests, then the rebuild of N+1 under the lock
        new = await neutron.port(net, fixed_ips=fixed)
        with watch.on(inst) as seen:
            attached, trace = await run(stack, m.attach(inst, port_id=new), "attach")
        assert trace.requests == legacy_attach(n, s)
        assert watch.locked(seen) == 1 + v * (n + 1)
        assert [held for _, held in seen[:6]] == [False] * 6
        assert trace.lock_wait.keys() == {"port", "refresh"}
        sequential(stack, trace)
        assert attached.vif.id == new
        assert attached.vif.preserve_on_delete

        # detach it (unbind): N+1 ports before
        with watch.on(inst) as seen:
            detached, trace = await run(stack, m.detach(inst, new), "detach")
        assert trace.requests == release(False) + rebuild(n, s)
        assert watch.locked(seen) == 2 + v * n
        assert not detached.deleted_port
        sequential(stack, trace)

        # attach by network: 5 requests, then the rebuild of N+1
        with watch.on(inst) as seen:
            created, trace = await run(
                stack, m.attach(inst, network_id=net, fixed_ips=fixed), "attach"
            )
        assert trace.requests == legacy_attach_network(n, s)
        assert watch.locked(seen) == 1 + v * (n + 1)
        sequential(stack, trace)

        # detach the port Nova created (delete): N+1 ports before
        with watch.on(inst) as seen:
            deleted, trace = await run(stack, m.detach(inst, created.vif.id), "detach")
        assert trace.requests == release(True) + rebuild(n, s)
        assert deleted.deleted_port
        sequential(stack, trace)
        assert len(await m.interfaces(inst)) == n
    finally:
        await stack.close()


@pytest.mark.parametrize("n", [1, 10, 50])
def test_the_formulas_are_anchorsmd(n: int) -> None:
    """The expectations above are ANCHORS.md's table (S=1) and its dual-stack line (S=2)."""
    assert total(legacy_attach(n, 1)) == 5 * n + 12
    assert total(legacy_attach_network(n, 1)) == 5 * n + 11
    assert total(release(False) + rebuild(n - 1, 1)) == 5 * n + 1
    assert total(release(True) + rebuild(n - 1, 1)) == 5 * n - 1
    assert total(rebuild(1, 1)) == 7
    assert total(rebuild(n, 1)) == 5 * n + 2
    assert total(Counter({"list_ports": 1}) + rebuild(n, 1)) == 5 * n + 3
    assert total(legacy_attach(n, 2)) == 7 * n + 14
    assert total(release(False) + rebuild(n - 1, 2)) == 7 * n - 1
    assert total(Counter({"list_ports": 1}) + rebuild(n, 2)) == 7 * n + 3
    if n == 10:  # "56 of attach's 62 requests run while holding refresh_cache, 47 of 51..."
        assert total(rebuild(n + 1, 1, networks=False)) == 56
        assert total(rebuild(n - 1, 1)) == 47
        assert total(rebuild(n, 1)) == 52


async def test_legacy_heal_heals_one_instance_per_call_round_robin(tmp_path: Path) -> None:
    stack = await make_stack(tmp_path, policy="legacy", deliver_events=False)
    try:
        neutron = Neutron(stack)
        net = await neutron.network()
        instances = [await new_instance(stack, f"vm{i}") for i in range(3)]
        for inst in instances:  # two ports each, bound behind the cache's back
            for _ in range(2):
                await neutron.port(
                    net, device_id=inst, device_owner="compute:nova", **{"binding:host_id": HOST}
                )
        reports = [await stack.manager.heal() for _ in range(4)]
        healed = [r.healed_instance for r in reports if isinstance(r, ReferenceHealReport)]
        assert sorted(healed[:3]) == sorted(instances)  # each once, one per call
        assert healed[3] == healed[0]  # then a new round
        assert [r.queued for r in reports if isinstance(r, ReferenceHealReport)] == [2, 1, 0, 2]
        for r in reports[:3]:
            assert r.instances == 1
            assert len(r.added) == 2
            assert r.network_requests == 3 + 5 * 2
            assert r.to_dict()["healed_instance"] in instances
        assert stack.manager.last_heal is reports[-1]
    finally:
        await stack.close()


# -------------------------------------------------------------------- article
@pytest.mark.parametrize("s", [1, 2])
async def test_article_builds_only_the_new_vif(tmp_path: Path, s: int) -> None:
    stack = await make_stack(tmp_path, policy="article", deliver_events=False)
    try:
        neutron = Neutron(stack)
        watch = Watch(stack)
        n = 10
        inst, net, fixed = await vm_with_ports(stack, neutron, n, s)
        v = 2 * s + 3
        m = stack.manager

        refreshes = m.engine.locks.stats()["refresh"]["count"]  # the set-up's heal
        new = await neutron.port(net, fixed_ips=fixed)
        with watch.on(inst) as seen:
            attached, trace = await run(stack, m.attach(inst, port_id=new), "attach")
        # Nova's 6 requests before the rebuild, then only the new VIF: 11 (13 with S=2)
        before = Counter({"show_port": 2, "show_network": 2, "list_networks": 1, "bind_port": 1})
        assert trace.requests == before + vifs(1, s)
        assert total(trace.requests) == 6 + v
        assert watch.locked(seen) == 0
        assert trace.lock_wait.keys() == {"port"}
        sequential(stack, trace)
        assert len(await m.interfaces(inst)) == n + 1

        _, trace = await run(stack, m.detach(inst, new), "detach")
        assert trace.requests == release(False)  # 4: no rebuild
        assert trace.lock_wait.keys() == {"port"}
        sequential(stack, trace)
        assert attached.vif.id not in {vif.id for vif in await m.interfaces(inst)}

        created, trace = await run(stack, m.attach(inst, network_id=net, fixed_ips=fixed), "attach")
        by_net = Counter({"show_network": 2, "list_networks": 1, "create_port": 1, "bind_port": 1})
        assert trace.requests == by_net + vifs(1, s)  # 10 (12 with S=2)
        _, trace = await run(stack, m.detach(inst, created.vif.id), "detach")
        assert trace.requests == release(True)  # 2
        assert m.engine.locks.stats()["refresh"]["count"] == refreshes

        # the events and the heal are Nova's: the full rebuild under the instance lock
        port = (await m.interfaces(inst))[0].id
        _, trace = await run(stack, ops(stack).refresh_port(inst, port), "refresh")
        assert trace.requests == rebuild(1, s)
        assert "refresh" in trace.lock_wait
        _, trace = await run(stack, ops(stack).refresh_instance(inst), "refresh-instance")
        assert trace.requests == rebuild(n, s)
        assert "refresh" in trace.lock_wait
        report, trace = await run(stack, m.heal(), "heal")
        assert trace.requests == Counter({"list_ports": 1}) + rebuild(n, s)
        assert report.network_requests == 3 + v * n
    finally:
        await stack.close()


async def test_article_keeps_the_lost_update_race(tmp_path: Path) -> None:
    """Two attaches on one VM: each read the VM's network info when it started and
    writes it back whole with its own VIF added: one of the two is lost."""
    stack = await make_stack(tmp_path, policy="article", deliver_events=False)
    try:
        neutron = Neutron(stack)
        net = await neutron.network()
        inst = await new_instance(stack)
        a, b = await neutron.port(net), await neutron.port(net)
        # the race, made certain: neither attach reads the VM's network info until both
        # are about to (left to the scheduler, one attach sometimes wrote before the
        # other read, and nothing was lost)
        policy = stack.manager.engine.policy
        read = policy.snapshot
        both = asyncio.Barrier(2)
        calls = 0

        async def snapshot(store: Any, instance_uuid: str) -> Any:
            nonlocal calls
            calls += 1
            if calls <= 2:  # (the two attaches' reads)
                await both.wait()
            return await read(store, instance_uuid)

        policy.snapshot = snapshot
        await asyncio.gather(
            stack.manager.attach(inst, port_id=a), stack.manager.attach(inst, port_id=b)
        )
        cached = {vif.id for vif in await stack.manager.interfaces(inst)}
        assert len(cached) == 1
        assert cached < {a, b}
        assert len(await stack.virt.nics(inst)) == 2
        policy.snapshot = read
        report = await stack.manager.heal()  # Nova's heal puts it back
        assert report.added == sorted({a, b} - cached)
    finally:
        await stack.close()


# -------------------------------------------------------------------- events
@pytest.mark.parametrize("policy", ["legacy", "article"])
async def test_events_reach_the_reference_handlers(tmp_path: Path, policy: str) -> None:
    stack = await make_stack(tmp_path, policy=policy, deliver_events=False)
    try:
        neutron = Neutron(stack)
        inst, _, _ = await vm_with_ports(stack, neutron, 3, 1)
        first, second, third = [v.id for v in await stack.manager.interfaces(inst)]
        traces: list[OperationTrace] = []
        stack.manager.engine.on_trace.append(traces.append)
        answers = await stack.manager.events(
            [
                ExternalEvent("network-vif-plugged", inst, first),
                ExternalEvent("network-changed", inst, first),
                ExternalEvent("network-changed", inst, first),  # not coalesced
                ExternalEvent("network-changed", inst),
            ]
        )
        assert [a.code for a in answers] == [200] * 4
        await stack.manager.drain()
        kinds = Counter(t.kind for t in traces)
        assert kinds == {"refresh": 2, "refresh-instance": 1}  # vif-plugged: waiters only
        for t in traces:
            assert "refresh" in t.lock_wait
            assert t.request_count == (7 if t.kind == "refresh" else 5 * 3 + 2)

        # network-vif-deleted: no request, no lock; the VIF leaves the cache and the NIC
        await neutron.delete(second)
        traces.clear()
        await stack.manager.events([ExternalEvent("network-vif-deleted", inst, second)])
        await stack.manager.drain()
        [trace] = traces
        assert trace.kind == "vif-deleted"
        assert trace.request_count == 0
        assert trace.lock_wait == {}
        assert [v.id for v in await stack.manager.interfaces(inst)] == [first, third]
        assert len(await stack.virt.nics(inst)) == 2
    finally:
        await stack.close()


# -------------------------------------------------------------------- selection
async def test_every_policy_is_selectable_by_name(tmp_path: Path) -> None:
    assert set(POLICIES) == {"hotport", "article", "legacy"}
    for name in POLICIES:
        check(ServiceConfig(policy=name))  # `hotport serve --policy NAME` is accepted
        stack = await make_stack(tmp_path / name, policy=name)
        try:
            assert stack.manager.stats()["policy"] == name
            chosen = stack.manager.reference
            if name == "hotport":
                assert chosen is None
                assert isinstance(await stack.manager.heal(), HealReport)
            else:
                assert chosen is not None
                assert chosen.design is reference.DESIGNS[name]
                assert isinstance(await stack.manager.heal(), ReferenceHealReport)
        finally:
            await stack.close()
