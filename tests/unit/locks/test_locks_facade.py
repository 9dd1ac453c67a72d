"""Locks (the engine's facade): names, independence of ports and refreshes, serialization of
one port, and wait accounting with a fake clock. No wall-clock timing anywhere."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from hotport.locks.base import LockKind, port_lock_name, refresh_lock_name
from hotport.locks.facade import DEFAULT_BUCKETS, Locks
from hotport.locks.local import LocalLocks

T = TypeVar("T")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def settle(done: Callable[[], bool], rounds: int = 10_000) -> None:
    for _ in range(rounds):
        if done():
            return
        await asyncio.sleep(0)
    raise AssertionError("the loop did not reach the expected state")


async def finish(*tasks: asyncio.Task[T]) -> list[T]:
    await settle(lambda: all(t.done() for t in tasks))
    return [t.result() for t in tasks]


def make() -> tuple[Locks, LocalLocks, FakeClock]:
    clock = FakeClock()
    backend = LocalLocks(clock=clock)
    return Locks(backend, clock), backend, clock


async def test_names_come_from_the_contract() -> None:
    locks, backend, _ = make()
    async with locks.port("p1"):
        assert backend.held(port_lock_name("p1"))
        assert locks.port_held("p1")
        assert not locks.refresh_held("p1")
    async with locks.instance_refresh("i1"):
        assert backend.held(refresh_lock_name("i1"))
        assert locks.refresh_held("i1")
    assert backend.tracked == 0


@pytest.mark.parametrize("bad", ["", None, 5])
def test_an_empty_or_non_string_id_is_refused(bad: Any) -> None:
    locks, _, _ = make()
    with pytest.raises(ValueError, match="non-empty id"):
        locks.port(bad)
    with pytest.raises(ValueError, match="non-empty id"):
        locks.instance_refresh(bad)
    with pytest.raises(ValueError, match="non-empty id"):
        locks.port_held(bad)


async def test_two_different_ports_are_held_at_the_same_time() -> None:
    locks, _, _ = make()
    in_a, in_b, go = asyncio.Event(), asyncio.Event(), asyncio.Event()
    both_seen: list[bool] = []

    async def op(port: str, mine: asyncio.Event, other: asyncio.Event) -> float:
        async with locks.port(port) as waited:
            mine.set()
            await other.wait()  # only completes if the other port's holder is inside too
            both_seen.append(locks.port_held("a") and locks.port_held("b"))
            await go.wait()
            return waited

    ta = asyncio.create_task(op("a", in_a, in_b))
    tb = asyncio.create_task(op("b", in_b, in_a))
    await settle(lambda: len(both_seen) == 2)
    assert both_seen == [True, True]
    go.set()
    assert await finish(ta, tb) == [0.0, 0.0]
    assert locks.stats()["port"]["count"] == 2
    assert locks.stats()["port"]["max_wait"] == 0.0


async def test_the_same_port_serializes() -> None:
    locks, backend, _ = make()
    events: list[str] = []
    release_first = asyncio.Event()

    async def op(tag: str, hold: asyncio.Event | None) -> None:
        async with locks.port("p"):
            events.append(f"{tag}-in")
            if hold is not None:
                await hold.wait()
            events.append(f"{tag}-out")

    t1 = asyncio.create_task(op("one", release_first))
    await settle(lambda: events == ["one-in"])
    t2 = asyncio.create_task(op("two", None))
    await settle(lambda: backend.waiters(port_lock_name("p")) == 1)
    assert events == ["one-in"]  # "two" is queued, not inside
    release_first.set()
    await finish(t1, t2)
    assert events == ["one-in", "one-out", "two-in", "two-out"]


async def test_a_port_lock_never_waits_for_a_held_refresh_of_its_instance() -> None:
    locks, _, _ = make()
    refreshing, done = asyncio.Event(), asyncio.Event()

    async def heal() -> None:
        async with locks.instance_refresh("inst-1"):
            refreshing.set()
            await done.wait()

    healer = asyncio.create_task(heal())
    await refreshing.wait()
    # The refresh of inst-1 is held; an operation on one of its ports goes straight in.
    async with locks.port("port-of-inst-1") as waited:
        assert waited == 0.0
        assert locks.refresh_held("inst-1")
    async with locks.try_port("port-of-inst-1") as taken:
        assert taken
    done.set()
    await finish(healer)


async def test_a_refresh_does_not_wait_for_held_ports() -> None:
    locks, _, _ = make()
    async with locks.port("p1"), locks.port("p2"), locks.instance_refresh("inst") as waited:
        assert waited == 0.0


async def test_try_variants_never_wait_and_are_counted() -> None:
    locks, _, _ = make()
    async with locks.port("p"):
        async with locks.try_port("p") as taken:
            assert not taken
        assert locks.port_held("p")
    async with locks.try_port("p") as taken:
        assert taken
    async with locks.instance_refresh("i"), locks.try_instance_refresh("i") as taken:
        assert not taken
    stats = locks.stats()
    assert (stats["port"]["tries"], stats["port"]["busy"]) == (2, 1)
    assert (stats["refresh"]["tries"], stats["refresh"]["busy"]) == (1, 1)
    assert stats["port"]["count"] == 1  # tries are not waits


async def test_wait_accounting_with_a_fake_clock() -> None:
    locks, backend, clock = make()
    seen: list[tuple[LockKind, float]] = []
    locks.on_wait = lambda kind, s: seen.append((kind, s))

    async def op(port: str) -> float:
        async with locks.port(port) as waited:
            return waited

    async with locks.port("p"):
        t = asyncio.create_task(op("p"))
        await settle(lambda: backend.waiters(port_lock_name("p")) == 1)
        clock.now += 0.05
    assert await finish(t) == [pytest.approx(0.05)]

    async with locks.instance_refresh("i"):
        r = asyncio.create_task(_refresh(locks, "i"))
        await settle(lambda: backend.waiters(refresh_lock_name("i")) == 1)
        clock.now += 3.0
    assert await finish(r) == [pytest.approx(3.0)]

    stats = locks.stats()
    port = stats["port"]
    assert port["count"] == 2
    assert port["total_wait"] == pytest.approx(0.05)
    assert port["max_wait"] == pytest.approx(0.05)
    assert port["mean_wait"] == pytest.approx(0.025)
    assert port["buckets"] == {
        "0": 1,
        "0.001": 1,
        "0.01": 1,
        "0.1": 2,
        "1": 2,
        "10": 2,
        "+Inf": 2,
    }
    refresh = stats["refresh"]
    assert (refresh["count"], refresh["max_wait"]) == (2, pytest.approx(3.0))
    assert refresh["buckets"]["1"] == 1
    assert refresh["buckets"]["10"] == 2
    assert [k for k, _ in seen] == ["port", "port", "refresh", "refresh"]
    assert [s for _, s in seen] == [0.0, pytest.approx(0.05), 0.0, pytest.approx(3.0)]


async def _refresh(locks: Locks, uuid: str) -> float:
    async with locks.instance_refresh(uuid) as waited:
        return waited


async def test_a_wait_beyond_the_last_bound_lands_in_inf() -> None:
    locks, backend, clock = make()
    async with locks.port("p"):
        t = asyncio.create_task(_port(locks, "p"))
        await settle(lambda: backend.waiters(port_lock_name("p")) == 1)
        clock.now += 60.0
    await finish(t)
    buckets = locks.stats()["port"]["buckets"]
    assert buckets["10"] == 1  # only the first, uncontended acquisition
    assert buckets["+Inf"] == 2


async def _port(locks: Locks, port_id: str) -> float:
    async with locks.port(port_id) as waited:
        return waited


async def test_a_waiter_cancelled_while_waiting_is_counted_as_abandoned() -> None:
    locks, backend, _ = make()
    async with locks.port("p"):
        t = asyncio.create_task(_port(locks, "p"))
        await settle(lambda: backend.waiters(port_lock_name("p")) == 1)
        t.cancel()
        await settle(t.done)
        assert t.cancelled()
    stats = locks.stats()["port"]
    assert (stats["count"], stats["abandoned"]) == (1, 1)
    assert backend.tracked == 0


async def test_a_failing_observer_neither_breaks_nor_leaks_the_lock(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(kind: LockKind, seconds: float) -> None:
        raise RuntimeError("observer down")

    backend = LocalLocks()
    locks = Locks(backend, on_wait=boom)
    async with locks.port("p") as waited:
        assert waited == 0.0
        assert locks.port_held("p")
    assert backend.tracked == 0
    assert "observer failed" in caplog.text


def test_custom_buckets_are_validated_and_used() -> None:
    with pytest.raises(ValueError, match="increasing"):
        Locks(LocalLocks(), buckets=(1.0, 0.5))
    with pytest.raises(ValueError, match="finite"):
        Locks(LocalLocks(), buckets=(-1.0,))
    locks = Locks(LocalLocks(), buckets=(0.5,))
    assert list(locks.stats()["port"]["buckets"]) == ["0.5", "+Inf"]
    assert list(Locks(LocalLocks()).stats()["refresh"]["buckets"]) == [
        *(format(b, "g") for b in DEFAULT_BUCKETS),
        "+Inf",
    ]


async def test_an_exception_in_the_block_releases_through_the_facade() -> None:
    locks, backend, _ = make()
    with pytest.raises(KeyError):
        async with locks.port("p"):
            raise KeyError("x")
    assert not locks.port_held("p")
    assert backend.tracked == 0
