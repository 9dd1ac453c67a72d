"""Request budgets per operation (DESIGN.md, issue 3), counted, never timed.

Each operation's trace counts the network-service requests it sent and the sequential
round trips; the budgets must hold whatever the number of ports the VM already has.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hotport.compose import InProcessStack
from hotport.engine.events import refresh_port
from hotport.engine.waiters import ExternalEvent

from .conftest import Neutron, make_stack, new_instance


async def vm_with_ports(stack: InProcessStack, neutron: Neutron, n: int) -> tuple[str, str]:
    net = await neutron.network()
    inst = await new_instance(stack)
    for _ in range(n):
        await stack.manager.attach(inst, port_id=await neutron.port(net))
    await stack.manager.drain()
    return inst, net


@pytest.mark.parametrize("n", [1, 10, 50])
async def test_attach_detach_budgets_do_not_grow_with_ports(
    stack: InProcessStack, neutron: Neutron, n: int
) -> None:
    inst, net = await vm_with_ports(stack, neutron, n)

    port = await neutron.port(net)
    warm = await stack.gate.run(stack.manager.attach(inst, port_id=port), "attach")
    assert dict(warm.trace.requests) == {"show_port": 1, "list_floating_ips": 1, "bind_port": 1}
    assert stack.gate.rounds == [2, 1]  # port + floating IPs together, then the bind
    assert warm.trace.lock_wait.keys() == {"port"}

    by_net = await stack.manager.attach(inst, network_id=net)
    assert dict(by_net.trace.requests) == {"create_port": 1}

    await stack.manager.drain()
    detached = await stack.manager.detach(inst, warm.vif.id)
    assert dict(detached.trace.requests) == {"unbind_port": 1}
    deleted = await stack.manager.detach(inst, by_net.vif.id)
    assert dict(deleted.trace.requests) == {"delete_port": 1}
    assert stack.manager.engine.locks.stats()["refresh"]["count"] == 0


async def test_cold_network_costs_two_more_reads_in_the_same_round_trips(
    stack: InProcessStack, neutron: Neutron
) -> None:
    inst = await new_instance(stack)
    net = await neutron.network()
    port = await neutron.port(net)
    cold = await stack.gate.run(stack.manager.attach(inst, port_id=port), "attach")
    assert dict(cold.trace.requests) == {
        "show_port": 1,
        "list_floating_ips": 1,
        "bind_port": 1,
        "list_networks": 1,
        "list_subnets": 1,
    }
    assert stack.gate.rounds == [2, 3]  # the network reads go with the bind
    other = await neutron.network("198.51.100.0/24")
    by_net = await stack.manager.attach(inst, network_id=other)
    assert sum(by_net.trace.requests.values()) == 3  # 1 write + networks + subnets


async def test_a_revision_mismatch_on_detach_costs_one_reread(
    stack: InProcessStack, neutron: Neutron
) -> None:
    inst, net = await vm_with_ports(stack, neutron, 1)
    port = await neutron.port(net)
    await stack.manager.attach(inst, port_id=port)
    await neutron.update(port, name="renamed behind hotport's back")  # revision + 1
    result = await stack.manager.detach(inst, port)
    assert dict(result.trace.requests) == {"unbind_port": 2, "show_port": 1}


async def test_tagged_network_changed_reads_the_port_once(
    stack: InProcessStack, neutron: Neutron
) -> None:
    inst, _ = await vm_with_ports(stack, neutron, 10)
    port = (await stack.manager.interfaces(inst))[3].id
    traces = []
    stack.manager.engine.on_trace.append(traces.append)
    await stack.gate.run(refresh_port(stack.manager.engine, inst, port), "refresh")
    [trace] = [t for t in traces if t.kind == "refresh"]
    # the port and its floating IPs, concurrently: one round trip, whatever N is
    assert dict(trace.requests) == {"show_port": 1, "list_floating_ips": 1}
    assert stack.gate.rounds == [2]


async def test_a_burst_of_events_for_one_port_coalesces(
    stack: InProcessStack, neutron: Neutron
) -> None:
    inst, _ = await vm_with_ports(stack, neutron, 3)
    port = (await stack.manager.interfaces(inst))[0].id
    traces = []
    stack.manager.engine.on_trace.append(traces.append)
    async with stack.manager.engine.locks.port(port):  # the first refresh waits here
        answers = await stack.manager.events(
            [ExternalEvent("network-changed", inst, port) for _ in range(20)]
        )
        await asyncio.sleep(0)
    assert [a.code for a in answers] == [200] * 20
    await stack.manager.drain()
    refreshes = [t for t in traces if t.kind == "refresh" and t.port_id == port]
    assert len(refreshes) == 1


@pytest.mark.parametrize(("instances", "ports"), [(1, 1), (5, 10), (20, 3)])
async def test_heal_of_the_host_costs_at_most_four_requests(
    tmp_path: Path, instances: int, ports: int
) -> None:
    stack = await make_stack(tmp_path)
    try:
        neutron = Neutron(stack)
        net = await neutron.network("10.0.0.0/16")
        for _ in range(instances):
            inst = await new_instance(stack)
            for _ in range(ports):
                await stack.manager.attach(inst, port_id=await neutron.port(net))
        await stack.manager.drain()
        report = await stack.gate.run(stack.manager.heal(), "heal")
        assert report.network_requests <= 4
        assert stack.gate.rounds == [1, 3]  # ports; then floating IPs, networks, subnets
        assert report.ports_seen == instances * ports
        assert report.drift == 0
    finally:
        await stack.close()


async def test_heal_with_more_ports_than_one_url_lists_all_floating_ips(
    tmp_path: Path,
) -> None:
    stack = await make_stack(tmp_path)
    try:
        stack.client.id_chunk = 5
        neutron = Neutron(stack)
        net = await neutron.network()
        inst = await new_instance(stack)
        for _ in range(12):
            await stack.manager.attach(inst, port_id=await neutron.port(net))
        report = await stack.manager.heal()
        assert report.network_requests == 4
    finally:
        await stack.close()
