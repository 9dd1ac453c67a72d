"""LocalLocks: on-demand entries dropped on release, FIFO hand-over, cancellation, no lost
wake-ups. Ordering is proved with events and queue depths, never with wall-clock time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotport.locks.base import LockBackend
from hotport.locks.local import LocalLocks

T = TypeVar("T")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def settle(done: Callable[[], bool], rounds: int = 10_000) -> None:
    """Let the loop run until `done()` (deterministic: counts loop turns, not seconds)."""
    for _ in range(rounds):
        if done():
            return
        await asyncio.sleep(0)
    raise AssertionError("the loop did not reach the expected state")


async def finish(*tasks: asyncio.Task[T]) -> list[T]:
    """Results of `tasks` once all are done; a lost wake-up fails instead of hanging."""
    await settle(lambda: all(t.done() for t in tasks))
    return [t.result() for t in tasks]


async def cancelled(task: asyncio.Task[object]) -> None:
    await settle(task.done)
    assert task.cancelled()


async def queued(locks: LocalLocks, name: str, n: int) -> None:
    await settle(lambda: locks.waiters(name) == n)


def test_is_a_lock_backend() -> None:
    backend: LockBackend = LocalLocks()
    assert not backend.held("port-a")


async def test_uncontended_lock_yields_zero_and_leaves_nothing() -> None:
    locks = LocalLocks()
    async with locks.lock("port-a") as waited:
        assert waited == 0.0
        assert locks.held("port-a")
        assert locks.tracked == 1
    assert not locks.held("port-a")
    assert locks.tracked == 0


async def test_a_million_distinct_names_sequentially_leave_the_map_empty() -> None:
    locks = LocalLocks()
    peak = 0
    for i in range(1_000_000):
        async with locks.lock(f"port-{i}"):
            peak = max(peak, locks.tracked)
    assert peak == 1
    assert locks.tracked == 0
    assert locks._entries == {}


async def test_a_hundred_thousand_held_at_once_then_released_leave_the_map_empty() -> None:
    locks = LocalLocks()
    async with contextlib.AsyncExitStack() as stack:
        for i in range(100_000):
            await stack.enter_async_context(locks.lock(f"port-{i}"))
        assert locks.tracked == 100_000
    assert locks.tracked == 0
    assert locks._entries == {}


async def test_different_names_never_wait_for_each_other() -> None:
    locks = LocalLocks()
    a_in, b_in, go = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def hold(name: str, inside: asyncio.Event) -> float:
        async with locks.lock(name) as waited:
            inside.set()
            await go.wait()
            return waited

    ta = asyncio.create_task(hold("port-a", a_in))
    tb = asyncio.create_task(hold("port-b", b_in))
    await a_in.wait()
    await b_in.wait()  # both inside at once: neither waited for the other
    assert locks.held("port-a")
    assert locks.held("port-b")
    go.set()
    assert await finish(ta, tb) == [0.0, 0.0]
    assert locks.tracked == 0


async def test_waiters_are_served_in_arrival_order_and_newcomers_do_not_barge() -> None:
    locks = LocalLocks()
    order: list[str] = []

    async def worker(tag: str) -> None:
        async with locks.lock("k"):
            order.append(tag)
            await asyncio.sleep(0)

    async with locks.lock("k"):
        tasks = []
        for i, tag in enumerate("abcde"):
            tasks.append(asyncio.create_task(worker(tag)))
            await queued(locks, "k", i + 1)
    # Released: handed to "a" directly. A newcomer can neither take it nor jump the queue.
    async with locks.try_lock("k") as taken:
        assert not taken
    late = asyncio.create_task(worker("late"))
    await finish(*tasks, late)
    assert order == ["a", "b", "c", "d", "e", "late"]
    assert locks.tracked == 0


async def test_a_cancelled_waiter_leaves_no_trace_and_keeps_the_order() -> None:
    locks = LocalLocks()
    order: list[str] = []

    async def worker(tag: str) -> None:
        async with locks.lock("k"):
            order.append(tag)

    async with locks.lock("k"):
        ta = asyncio.create_task(worker("a"))
        await queued(locks, "k", 1)
        tb = asyncio.create_task(worker("b"))
        await queued(locks, "k", 2)
        tc = asyncio.create_task(worker("c"))
        await queued(locks, "k", 3)
        tb.cancel()
        await cancelled(tb)
        assert locks.waiters("k") == 2  # gone from the queue at once
        assert locks.held("k")
    await finish(ta, tc)
    assert order == ["a", "c"]
    assert locks.tracked == 0


async def test_the_only_waiter_cancelled_leaves_the_map_empty_after_release() -> None:
    locks = LocalLocks()
    async with locks.lock("k"):
        t = asyncio.create_task(locks.lock("k").__aenter__())
        await queued(locks, "k", 1)
        t.cancel()
        await cancelled(t)
        assert locks.waiters("k") == 0
    assert locks.tracked == 0


async def test_a_waiter_cancelled_after_the_hand_over_passes_the_lock_on() -> None:
    locks = LocalLocks()
    got: list[str] = []

    async def worker(tag: str) -> None:
        async with locks.lock("k"):
            got.append(tag)

    holder = locks.lock("k")
    await holder.__aenter__()
    ta = asyncio.create_task(worker("a"))
    await queued(locks, "k", 1)
    tb = asyncio.create_task(worker("b"))
    await queued(locks, "k", 2)
    await holder.__aexit__(None, None, None)  # hands the lock to "a" (not yet running)
    assert locks.waiters("k") == 1
    ta.cancel()  # before "a" ever resumes
    await cancelled(ta)
    await finish(tb)
    assert got == ["b"]
    assert locks.tracked == 0


async def test_hand_over_to_a_cancelled_last_waiter_drops_the_entry() -> None:
    locks = LocalLocks()
    holder = locks.lock("k")
    await holder.__aenter__()
    t = asyncio.create_task(locks.lock("k").__aenter__())
    await queued(locks, "k", 1)
    await holder.__aexit__(None, None, None)
    t.cancel()
    await cancelled(t)
    assert locks.tracked == 0


async def test_a_waiter_cancelled_but_not_yet_resumed_is_skipped_by_the_release() -> None:
    locks = LocalLocks()
    got: list[str] = []

    async def worker(tag: str) -> None:
        async with locks.lock("k"):
            got.append(tag)

    holder = locks.lock("k")
    await holder.__aenter__()
    ta = asyncio.create_task(worker("a"))
    await queued(locks, "k", 1)
    tb = asyncio.create_task(worker("b"))
    await queued(locks, "k", 2)
    ta.cancel()  # its future is cancelled now; the task has not resumed yet
    await holder.__aexit__(None, None, None)  # must skip "a" and hand to "b"
    await cancelled(ta)
    await finish(tb)
    assert got == ["b"]
    assert locks.tracked == 0


async def test_a_holder_cancelled_inside_the_block_releases() -> None:
    locks = LocalLocks()
    inside = asyncio.Event()

    async def holder() -> None:
        async with locks.lock("k"):
            inside.set()
            await asyncio.Event().wait()

    t = asyncio.create_task(holder())
    await inside.wait()
    waiter = asyncio.create_task(locks.lock("k").__aenter__())
    await queued(locks, "k", 1)
    t.cancel()
    await cancelled(t)
    await finish(waiter)  # the waiter got it
    assert locks.held("k")


async def test_an_exception_inside_the_block_releases() -> None:
    locks = LocalLocks()
    with pytest.raises(ZeroDivisionError):
        async with locks.lock("k"):
            _ = 1 / 0
    assert locks.tracked == 0


async def test_the_wait_is_measured_with_the_injected_clock() -> None:
    clock = FakeClock()
    locks = LocalLocks(clock=clock)

    async def waiter() -> float:
        async with locks.lock("k") as waited:
            return waited

    async with locks.lock("k") as first:
        assert first == 0.0
        t = asyncio.create_task(waiter())
        await queued(locks, "k", 1)
        clock.now += 2.5
    assert await finish(t) == [2.5]


async def test_try_lock_takes_a_free_name_and_never_waits_for_a_held_one() -> None:
    locks = LocalLocks()
    async with locks.try_lock("k") as taken:
        assert taken
        assert locks.held("k")
        async with locks.try_lock("k") as again:
            assert not again  # busy: the block still runs
        assert locks.held("k")  # a failed try released nothing
    assert locks.tracked == 0


async def test_a_failed_try_does_not_disturb_the_holder_or_the_queue() -> None:
    locks = LocalLocks()
    async with locks.lock("k"):
        t = asyncio.create_task(locks.lock("k").__aenter__())
        await queued(locks, "k", 1)
        async with locks.try_lock("k") as taken:
            assert not taken
        assert locks.waiters("k") == 1
    await finish(t)
    assert locks.held("k")


async def test_a_context_manager_cannot_be_entered_twice() -> None:
    locks = LocalLocks()
    cm = locks.lock("k")
    async with cm:
        with pytest.raises(RuntimeError):
            await cm.__aenter__()


# -- randomized interleavings ---------------------------------------------------------------

Step = tuple[str, int]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("spawn"), st.integers(0, 2)),  # key index
        st.tuples(st.just("cancel"), st.integers(0, 40)),  # task index (mod spawned)
        st.tuples(st.just("release"), st.integers(0, 40)),
        st.tuples(st.just("try"), st.integers(0, 2)),
        st.tuples(st.just("tick"), st.integers(0, 3)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_random_interleavings_keep_exclusion_order_and_leave_nothing(program: list[Step]) -> None:
    asyncio.run(_run_program(program))


async def _run_program(program: list[Step]) -> None:
    locks = LocalLocks()
    keys = ["port-a", "port-b", "refresh_cache-x"]
    inside = dict.fromkeys(keys, 0)
    acquired: dict[str, list[int]] = {k: [] for k in keys}
    tasks: list[asyncio.Task[None]] = []
    releases: list[asyncio.Event] = []

    def make(idx: int, key: str) -> Callable[[], Coroutine[Any, Any, None]]:
        async def run() -> None:
            async with locks.lock(key):
                inside[key] += 1
                assert inside[key] == 1, "mutual exclusion broken"
                assert locks.held(key)
                acquired[key].append(idx)
                try:
                    await releases[idx].wait()
                finally:
                    inside[key] -= 1

        return run

    for op, arg in program:
        if op == "spawn":
            idx = len(tasks)
            releases.append(asyncio.Event())
            tasks.append(asyncio.create_task(make(idx, keys[arg])()))
        elif op == "cancel" and tasks:
            tasks[arg % len(tasks)].cancel()
        elif op == "release" and tasks:
            releases[arg % len(tasks)].set()
        elif op == "try":
            key = keys[arg]
            free = not locks.held(key)
            async with locks.try_lock(key) as taken:
                assert taken == free
                if taken:
                    assert inside[key] == 0
        else:
            for _ in range(arg):
                await asyncio.sleep(0)

    for ev in releases:
        ev.set()
    await settle(lambda: all(t.done() for t in tasks))  # no lost wake-up: everyone finishes
    for t in tasks:
        if not t.cancelled():
            assert t.exception() is None
    for key in keys:
        # FIFO: tasks start (and queue) in spawn order, so acquisitions per key are too.
        assert acquired[key] == sorted(acquired[key])
        assert inside[key] == 0
    assert locks.tracked == 0
    assert locks._entries == {}
