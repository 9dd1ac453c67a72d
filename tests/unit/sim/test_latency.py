"""Latency model arithmetic and the Capacity worker pool, driven by a FakeClock (no wall clock)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotport.sim.latency import (
    PROFILES,
    Capacity,
    FakeClock,
    LatencyModel,
    Profile,
    RequestKind,
    ServiceRecord,
    SystemClock,
    get_profile,
)

MS = 0.001


def fixed(read: float = 1.0, write: float = 2.0, per_item: float = 0.0) -> LatencyModel:
    return LatencyModel(Profile("fixed", read, write, per_item, 0.0))


# -- profiles and arithmetic ----------------------------------------------------------------


def test_lan_profile_matches_measured_neutron() -> None:
    lan = LatencyModel(PROFILES["lan"])
    # peers/neutron/README.md, warm runs: (median, min, max) in ms
    get_port = lan.nominal("read", 1)
    list_10_ports = lan.nominal("read", 10)
    list_3_networks = lan.nominal("read", 3)
    assert 21 * MS <= get_port <= 53 * MS
    assert 30 * MS <= list_10_ports <= 69 * MS
    assert 35 * MS <= list_3_networks <= 56 * MS
    mean_reads = (get_port + list_10_ports + list_3_networks) / 3
    assert mean_reads == pytest.approx((28 + 39 + 48) / 3 * MS, rel=0.10)
    one_write = lan.nominal("write", 1)
    assert 200 * MS <= one_write <= 362 * MS  # PUT unbind 200, DELETE 301, POST 362
    assert one_write == pytest.approx(0.300, rel=0.05)


@pytest.mark.parametrize(("reads", "writes"), [(59, 3), (60, 2), (61, 1)])
def test_article_profile_old_attach_at_n10_is_about_71s(reads: int, writes: int) -> None:
    article = LatencyModel(PROFILES["article"])
    assert reads + writes == 62  # 5N + 12 requests at N = 10 (ANCHORS.md)
    assert article.nominal("read") == pytest.approx(1.1)
    assert article.nominal("write") == pytest.approx(2.2)
    total = reads * article.nominal("read") + writes * article.nominal("write")
    assert total == pytest.approx(71.0, rel=0.05)


def test_article_with_jitter_zero_service_time_equals_nominal() -> None:
    profile = PROFILES["article"]
    model = LatencyModel(
        Profile("article-0", profile.read_base, profile.write_base, profile.per_item, 0.0)
    )
    total = sum(model.service_time("read") for _ in range(59)) + sum(
        model.service_time("write") for _ in range(3)
    )
    assert total == pytest.approx(71.5)


def test_instant_profile_is_all_zero() -> None:
    model = LatencyModel(PROFILES["instant"], seed=1)
    assert model.service_time("read", 50) == 0.0
    assert model.service_time("write", 0) == 0.0
    assert model.nominal("write", 7) == 0.0


def test_per_item_makes_long_lists_cost_more() -> None:
    model = LatencyModel(PROFILES["lan"])
    assert model.nominal("read", 50) > model.nominal("read", 1) > model.nominal("read", 0)
    assert model.nominal("read", 50) - model.nominal("read", 0) == pytest.approx(
        50 * PROFILES["lan"].per_item
    )


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    jitter=st.floats(min_value=0.0, max_value=1.0),
    items=st.integers(min_value=0, max_value=500),
    kind=st.sampled_from(["read", "write"]),
    scale=st.sampled_from([1.0, 0.01, 3.0]),
)
def test_jitter_stays_within_bounds(
    seed: int, jitter: float, items: int, kind: RequestKind, scale: float
) -> None:
    model = LatencyModel(Profile("p", 0.04, 0.3, 0.001, jitter), time_scale=scale, seed=seed)
    nominal = model.nominal(kind, items)
    for _ in range(20):
        t = model.service_time(kind, items)
        assert nominal * (1 - jitter) * (1 - 1e-12) <= t <= nominal * (1 + jitter) * (1 + 1e-12)


def test_jitter_actually_varies_and_is_seeded() -> None:
    a = LatencyModel(PROFILES["lan"], seed=42)
    b = LatencyModel(PROFILES["lan"], seed=42)
    draws_a = [a.service_time("read") for _ in range(100)]
    draws_b = [b.service_time("read") for _ in range(100)]
    assert draws_a == draws_b
    assert len(set(draws_a)) > 90


@pytest.mark.parametrize("scale", [0.01, 0.5, 2.0, 0.0])
def test_time_scale_multiplies_exactly(scale: float) -> None:
    base = LatencyModel(PROFILES["lan"], time_scale=1.0, seed=7)
    scaled = LatencyModel(PROFILES["lan"], time_scale=scale, seed=7)
    for items in (0, 1, 10, 50):
        for kind in ("read", "write"):
            assert scaled.nominal(kind, items) == base.nominal(kind, items) * scale
            assert scaled.service_time(kind, items) == base.service_time(kind, items) * scale


def test_model_validation() -> None:
    model = LatencyModel(PROFILES["lan"])
    with pytest.raises(ValueError, match="items"):
        model.service_time("read", -1)
    with pytest.raises(ValueError, match="kind"):
        model.nominal("patch", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="time_scale"):
        LatencyModel(PROFILES["lan"], time_scale=-1.0)
    with pytest.raises(ValueError, match="jitter"):
        Profile("bad", 0.1, 0.1, 0.0, 1.5)
    with pytest.raises(ValueError, match="read_base"):
        Profile("bad", -0.1, 0.1, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"unknown latency profile 'nope'.*article"):
        get_profile("nope")
    assert get_profile("lan") is PROFILES["lan"]


# -- FakeClock ------------------------------------------------------------------------------


async def test_fake_clock_wakes_sleepers_in_deadline_order() -> None:
    clock = FakeClock(start=100.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in [("c", 3.0), ("a", 1.0), ("b", 2.0)]]
    await clock.run_until_idle()
    assert clock.pending_sleepers == 3
    assert clock.next_deadline == 101.0
    await clock.advance(1.5)
    assert woke == [("a", 101.0)]
    assert clock.monotonic() == 101.5
    await clock.advance(10.0)
    assert woke == [("a", 101.0), ("b", 102.0), ("c", 103.0)]
    assert clock.monotonic() == 111.5
    assert clock.pending_sleepers == 0
    await asyncio.gather(*tasks)


async def test_fake_clock_chained_sleeps_within_one_advance() -> None:
    clock = FakeClock()
    ticks: list[float] = []

    async def ticker() -> None:
        for _ in range(3):
            await clock.sleep(1.0)
            ticks.append(clock.monotonic())

    task = asyncio.create_task(ticker())
    await clock.advance(10.0)
    assert ticks == [1.0, 2.0, 3.0]
    await task


async def test_fake_clock_cancelled_sleeper_and_bad_advance() -> None:
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(5.0))
    await clock.run_until_idle()
    task.cancel()
    await asyncio.wait([task])
    assert clock.pending_sleepers == 0
    await clock.advance(10.0)  # nothing to wake, no error
    assert await clock.advance_to_next() is None
    with pytest.raises(ValueError, match="cannot advance"):
        await clock.advance(-1.0)


async def test_system_clock_is_monotonic() -> None:
    clock = SystemClock()
    a = clock.monotonic()
    await clock.sleep(0)
    assert clock.monotonic() >= a


# -- Capacity -------------------------------------------------------------------------------


async def test_capacity_two_workers_five_requests_exact_queueing() -> None:
    clock = FakeClock()
    cap = Capacity(fixed(read=1.0), workers=2, clock=clock)
    started: list[int] = []
    finished: dict[int, tuple[float, ServiceRecord]] = {}

    async def request(i: int) -> None:
        def handler() -> tuple[int, int]:
            started.append(i)
            return i * 10, 1

        result, record = await cap.run("read", handler)
        assert result == i * 10
        finished[i] = (clock.monotonic(), record)

    tasks = [asyncio.create_task(request(i)) for i in range(5)]
    await clock.run_until_idle()
    assert started == [0, 1]
    assert cap.in_flight == 2
    assert cap.queue_depth == 3
    await clock.advance(10.0)
    await asyncio.gather(*tasks)

    assert started == [0, 1, 2, 3, 4]  # FIFO
    assert {i: t for i, (t, _) in finished.items()} == {0: 1.0, 1: 1.0, 2: 2.0, 3: 2.0, 4: 3.0}
    assert {i: r.queued for i, (_, r) in finished.items()} == {
        0: 0.0,
        1: 0.0,
        2: 1.0,
        3: 1.0,
        4: 2.0,
    }
    assert all(r.service == 1.0 for _, r in finished.values())
    assert cap.served == 5
    assert cap.busy_time == 5.0
    assert cap.total_queued_time == 4.0
    assert cap.max_queue_depth == 3
    assert cap.in_flight == 0
    assert cap.queue_depth == 0


async def test_capacity_service_time_depends_on_items_and_kind() -> None:
    clock = FakeClock()
    cap = Capacity(fixed(read=1.0, write=2.0, per_item=0.5), workers=1, clock=clock)
    results: list[tuple[str, float, ServiceRecord]] = []

    async def request(kind: RequestKind, items: int) -> None:
        _, record = await cap.run(kind, lambda: (None, items))
        results.append((kind, clock.monotonic(), record))

    tasks = [
        asyncio.create_task(request("read", 4)),  # 1 + 2 = 3 s
        asyncio.create_task(request("write", 0)),  # 2 s
    ]
    await clock.advance(100.0)
    await asyncio.gather(*tasks)
    assert results == [
        ("read", 3.0, ServiceRecord(queued=0.0, service=3.0)),
        ("write", 5.0, ServiceRecord(queued=3.0, service=2.0)),
    ]


async def test_capacity_fifo_order_with_one_worker() -> None:
    clock = FakeClock()
    cap = Capacity(fixed(read=0.1), workers=1, clock=clock)
    order: list[int] = []

    async def request(i: int) -> None:
        def handler() -> tuple[None, int]:
            order.append(i)
            return None, 1

        await cap.run("read", handler)

    tasks = []
    for i in range(20):
        tasks.append(asyncio.create_task(request(i)))
        await clock.run_until_idle()
    await clock.advance(10.0)
    await asyncio.gather(*tasks)
    assert order == list(range(20))


async def test_cancelling_a_queued_request_takes_nothing() -> None:
    clock = FakeClock()
    cap = Capacity(fixed(read=1.0), workers=1, clock=clock)
    calls: list[str] = []
    done: dict[str, float] = {}

    async def request(name: str) -> None:
        def handler() -> tuple[None, int]:
            calls.append(name)
            return None, 1

        await cap.run("read", handler)
        done[name] = clock.monotonic()

    a = asyncio.create_task(request("a"))
    await clock.run_until_idle()
    b = asyncio.create_task(request("b"))
    await clock.run_until_idle()
    c = asyncio.create_task(request("c"))
    await clock.run_until_idle()
    assert cap.queue_depth == 2
    b.cancel()
    await asyncio.wait([b])
    assert cap.queue_depth == 1
    await clock.advance(5.0)
    await asyncio.gather(a, c)
    assert calls == ["a", "c"]
    assert done == {"a": 1.0, "c": 2.0}
    assert cap.in_flight == 0
    assert cap.served == 2


async def test_cancelling_a_running_request_frees_its_worker() -> None:
    clock = FakeClock()
    cap = Capacity(fixed(read=1.0), workers=1, clock=clock)
    records: dict[str, ServiceRecord] = {}
    done: dict[str, float] = {}

    async def request(name: str) -> None:
        _, records[name] = await cap.run("read", lambda: (None, 1))
        done[name] = clock.monotonic()

    a = asyncio.create_task(request("a"))
    await clock.run_until_idle()
    b = asyncio.create_task(request("b"))
    await clock.advance(0.5)
    assert cap.in_flight == 1
    a.cancel()
    await asyncio.wait([a])
    await clock.run_until_idle()
    assert cap.in_flight == 1  # b took the worker
    assert cap.queue_depth == 0
    await clock.advance(5.0)
    await b
    assert done == {"b": 1.5}
    assert records["b"] == ServiceRecord(queued=0.5, service=1.0)
    assert cap.cancelled == 1
    assert cap.served == 1
    assert cap.busy_time == 1.5  # 0.5 s of a, 1 s of b


async def test_cancel_after_worker_was_handed_over_gives_it_back() -> None:
    clock = FakeClock()
    cap = Capacity(fixed(read=1.0), workers=1, clock=clock)
    calls: list[str] = []

    async def request(name: str) -> None:
        def handler() -> tuple[None, int]:
            calls.append(name)
            return None, 1

        await cap.run("read", handler)

    a = asyncio.create_task(request("a"))
    await clock.run_until_idle()
    b = asyncio.create_task(request("b"))
    await clock.run_until_idle()
    cap.reconfigure(workers=2)  # hands a worker to b synchronously...
    b.cancel()  # ...and b is cancelled before it could resume
    await asyncio.wait([b])
    assert calls == ["a"]
    c = asyncio.create_task(request("c"))
    d = asyncio.create_task(request("d"))
    await clock.run_until_idle()
    assert calls == ["a", "c"]  # the worker b was given is free again; d waits for a
    await clock.advance(1.0)
    assert calls == ["a", "c", "d"]
    await clock.advance(5.0)
    await asyncio.gather(a, c, d)
    assert cap.in_flight == 0


async def test_reconfigure_workers_up_unblocks_waiters() -> None:
    clock = FakeClock()
    cap = Capacity(fixed(read=1.0), workers=1, clock=clock)
    records: dict[int, tuple[float, ServiceRecord]] = {}

    async def request(i: int) -> None:
        _, rec = await cap.run("read", lambda: (None, 1))
        records[i] = (clock.monotonic(), rec)

    tasks = [asyncio.create_task(request(i)) for i in range(3)]
    await clock.advance(0.5)
    assert cap.queue_depth == 2
    cap.reconfigure(workers=3)
    await clock.run_until_idle()
    assert cap.in_flight == 3
    assert cap.queue_depth == 0
    await clock.advance(5.0)
    await asyncio.gather(*tasks)
    assert records[0] == (1.0, ServiceRecord(0.0, 1.0))
    assert records[1] == (1.5, ServiceRecord(0.5, 1.0))
    assert records[2] == (1.5, ServiceRecord(0.5, 1.0))
    assert cap.snapshot()["workers"] == 3


async def test_reconfigure_workers_down_lets_running_requests_finish() -> None:
    clock = FakeClock()
    cap = Capacity(fixed(read=1.0), workers=3, clock=clock)
    finished: dict[int, float] = {}

    async def request(i: int) -> None:
        await cap.run("read", lambda: (None, 1))
        finished[i] = clock.monotonic()

    tasks = [asyncio.create_task(request(i)) for i in range(3)]
    await clock.run_until_idle()
    cap.reconfigure(workers=1)
    tasks += [asyncio.create_task(request(i)) for i in (3, 4)]
    await clock.advance(10.0)
    await asyncio.gather(*tasks)
    assert finished == {0: 1.0, 1: 1.0, 2: 1.0, 3: 2.0, 4: 3.0}


async def test_reconfigure_profile_and_time_scale() -> None:
    clock = FakeClock()
    cap = Capacity(fixed(read=1.0), workers=1, clock=clock)
    cap.reconfigure(profile=Profile("slow", 4.0, 8.0, 0.0, 0.0), time_scale=0.5)
    task = asyncio.create_task(cap.run("write", lambda: ("ok", 1)))
    await clock.advance(10.0)
    assert await task == ("ok", ServiceRecord(0.0, 4.0))
    snap = cap.snapshot()
    assert snap["profile"]["name"] == "slow"
    assert snap["time_scale"] == 0.5
    with pytest.raises(ValueError, match="workers"):
        cap.reconfigure(workers=0)
    with pytest.raises(ValueError, match="time_scale"):
        cap.reconfigure(time_scale=-2.0)
    assert cap.model.profile.name == "slow"


async def test_handler_exception_still_costs_one_item_then_propagates() -> None:
    clock = FakeClock()
    cap = Capacity(fixed(read=1.0, per_item=1.0), workers=1, clock=clock)

    def boom() -> tuple[None, int]:
        raise KeyError("port")

    failing = asyncio.create_task(cap.run("read", boom))
    after = asyncio.create_task(cap.run("read", lambda: ("next", 0)))
    await clock.advance(1.9)
    assert not failing.done()  # 1 + 1 item = 2 s of service
    await clock.advance(0.1)
    with pytest.raises(KeyError):
        await failing
    await clock.advance(1.0)
    assert await after == ("next", ServiceRecord(queued=2.0, service=1.0))
    assert cap.errors == 1
    assert cap.served == 2
    assert cap.in_flight == 0


def test_capacity_validation_and_snapshot() -> None:
    with pytest.raises(ValueError, match="workers"):
        Capacity(fixed(), workers=0, clock=FakeClock())
    cap = Capacity(fixed(), workers=4, clock=FakeClock())
    assert set(cap.snapshot()) >= {
        "served",
        "busy_time",
        "max_queue_depth",
        "in_flight",
        "total_queued_time",
        "queue_depth",
        "workers",
    }
