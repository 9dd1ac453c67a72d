"""The engine's small parts with fakes: network cache, coalescing, traces, waiters."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from hotport.engine.background import Background
from hotport.engine.errors import NetworkNotFound
from hotport.engine.netcache import NetworkCache
from hotport.engine.trace import OperationTrace
from hotport.engine.waiters import EventWaiters, ExternalEvent
from hotport.network.models import Network, Subnet


class FakeNetwork:
    """Counts list_networks / list_subnets calls; `gate` holds them until released."""

    def __init__(self, networks: dict[str, list[str]]) -> None:
        self.networks = networks  # network id -> subnet ids
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def list_networks(self, ids: Sequence[str]) -> list[Network]:
        self.calls.append(("networks", tuple(ids)))
        await self.gate.wait()
        return [Network.from_neutron({"id": i, "mtu": 1500}) for i in ids if i in self.networks]

    async def list_subnets(
        self, *, ids: Sequence[str] | None = None, network_ids: Sequence[str] | None = None
    ) -> list[Subnet]:
        self.calls.append(("subnets", tuple(network_ids or ())))
        await self.gate.wait()
        return [
            Subnet.from_neutron({"id": s, "network_id": n, "cidr": "192.0.2.0/24", "ip_version": 4})
            for n in network_ids or ()
            for s in self.networks.get(n, [])
        ]


def cache(net: FakeNetwork) -> NetworkCache:
    return NetworkCache(net)  # type: ignore[arg-type]


async def test_misses_of_one_call_cost_one_request_each_kind() -> None:
    net = FakeNetwork({"a": ["sa"], "b": ["sb"], "c": []})
    c = cache(net)
    got = await c.get(["a", "b", "c"])
    assert set(got) == {"a", "b", "c"}
    assert net.calls == [("networks", ("a", "b", "c")), ("subnets", ("a", "b", "c"))]
    await c.get(["a", "b"])
    assert len(net.calls) == 2  # warm: nothing sent
    assert (c.hits, c.misses, c.fetches) == (2, 3, 1)


async def test_concurrent_misses_share_one_fetch() -> None:
    net = FakeNetwork({"a": ["sa"]})
    net.gate.clear()
    c = cache(net)
    tasks = [asyncio.ensure_future(c.get(["a"])) for _ in range(10)]
    for _ in range(5):
        await asyncio.sleep(0)
    net.gate.set()
    results = await asyncio.gather(*tasks)
    assert all(r["a"].network["id"] == "a" for r in results)
    assert len(net.calls) == 2


async def test_a_subnet_the_cache_lacks_is_a_miss() -> None:
    net = FakeNetwork({"a": ["s1"]})
    c = cache(net)
    await c.get(["a"])
    net.networks["a"].append("s2")  # a subnet added since
    got = await c.get(["a"], need_subnets={"a": ["s2"]})
    assert got["a"].subnet_ids == {"s1", "s2"}
    assert len(net.calls) == 4


async def test_unknown_network_and_invalidation() -> None:
    net = FakeNetwork({"a": []})
    c = cache(net)
    with pytest.raises(NetworkNotFound):
        await c.get(["missing"])
    await c.get(["a"])
    c.invalidate(["a"])
    await c.get(["a"])
    assert len(net.calls) == 6


async def test_a_failed_fetch_reaches_every_waiter_and_caches_nothing() -> None:
    class Boom(FakeNetwork):
        async def list_networks(self, ids: Sequence[str]) -> list[Network]:
            await self.gate.wait()
            raise RuntimeError("down")

    net = Boom({"a": []})
    net.gate.clear()
    c = cache(net)
    tasks = [asyncio.ensure_future(c.get(["a"])) for _ in range(3)]
    for _ in range(5):
        await asyncio.sleep(0)
    net.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert c.peek("a") is None


async def test_background_coalesces_per_key() -> None:
    bg = Background()
    hold = asyncio.Event()
    runs: list[str] = []

    def work(name: str) -> Any:
        async def run(started: Any) -> None:
            await hold.wait()  # stands for waiting on the port lock
            started()
            runs.append(name)

        return run

    assert bg.submit("k", work("first")) is True
    assert all(bg.submit("k", work("dup")) is False for _ in range(5))
    assert bg.submit("other", work("other")) is True
    hold.set()
    await bg.drain()
    assert sorted(runs) == ["first", "other"]
    assert bg.coalesced == 5
    assert bg.submit("k", work("again")) is True  # nothing waiting any more
    await bg.drain()


async def test_round_trips_count_overlapping_requests_once() -> None:
    clock = iter([0.0, 1.0, 1.0, 2.0, 3.0]).__next__
    t = OperationTrace("attach", clock=clock)  # started at 0.0
    t.add_request("show_port", 1.0)  # ends at 1.0: [0, 1]
    t.add_request("list_floating_ips", 1.0)  # ends at 1.0: [0, 1] -> same wave
    t.add_request("bind_port", 1.0)  # ends at 2.0: [1, 2] -> second wave
    assert t.round_trips == 2
    assert t.request_count == 3


async def test_waiters_register_before_acting() -> None:
    w = EventWaiters()
    fut = w.expect("vm", "p", "network-vif-plugged")
    ev = ExternalEvent("network-vif-plugged", "vm", "p")
    assert w.resolve(ev) == 1
    assert (await fut) == ev
    assert w.resolve(ev) == 0  # nobody waits any more
    assert len(w) == 0
