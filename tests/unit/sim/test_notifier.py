"""The batching event notifier, driven by a FakeClock and an httpx.MockTransport (no sockets)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from hotport.sim.latency import FakeClock
from hotport.sim.notifier import (
    BatchNotifier,
    network_changed,
    vif_deleted,
    vif_plugged,
    vif_unplugged,
)

URL = "http://127.0.0.1:8774/v2.1"
S = "0f2eaac5-e230-48ed-8899-f3da56857d1e"


def ev(n: int) -> dict[str, str]:
    return network_changed(S, f"port-{n}")


@dataclass
class Received:
    time: float
    request: httpx.Request

    @property
    def events(self) -> list[dict[str, Any]]:
        body: dict[str, Any] = json.loads(self.request.content)
        assert list(body) == ["events"]
        events: list[dict[str, Any]] = body["events"]
        return events


Responder = Callable[[httpx.Request], Awaitable[httpx.Response] | httpx.Response]


def nova_ok(request: httpx.Request) -> httpx.Response:
    events = json.loads(request.content)["events"]
    answer = [{**e, "status": e.get("status", "completed"), "code": 200} for e in events]
    return httpx.Response(200, json={"events": answer})


@dataclass
class FakeNova:
    clock: FakeClock
    responders: list[Responder] = field(default_factory=list)  # consumed one per request
    received: list[Received] = field(default_factory=list)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.received.append(Received(self.clock.monotonic(), request))
        responder: Responder = self.responders.pop(0) if self.responders else nova_ok
        result = responder(request)
        if isinstance(result, httpx.Response):
            return result
        return await result

    @property
    def batches(self) -> list[tuple[float, list[str]]]:
        return [(r.time, [e["tag"] for e in r.events]) for r in self.received]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def nova(clock: FakeClock) -> FakeNova:
    return FakeNova(clock)


def make(
    clock: FakeClock, nova: FakeNova, url: str | None = URL, interval: float = 2.0
) -> BatchNotifier:
    return BatchNotifier(url, interval, clock, transport=httpx.MockTransport(nova.handle))


# -- event shapes ---------------------------------------------------------------------------


def test_event_helpers_have_exactly_neutrons_keys() -> None:
    assert network_changed(S, "p") == {"name": "network-changed", "server_uuid": S, "tag": "p"}
    assert vif_plugged(S, "p") == {
        "name": "network-vif-plugged",
        "server_uuid": S,
        "status": "completed",
        "tag": "p",
    }
    assert vif_plugged(S, "p", "failed")["status"] == "failed"
    assert vif_unplugged(S, "p") == {
        "name": "network-vif-unplugged",
        "server_uuid": S,
        "status": "completed",
        "tag": "p",
    }
    assert vif_deleted(S, "p") == {"name": "network-vif-deleted", "server_uuid": S, "tag": "p"}


# -- batching -------------------------------------------------------------------------------


async def test_batching_like_neutron(clock: FakeClock, nova: FakeNova) -> None:
    notifier = make(clock, nova)
    notifier.emit([ev(1)])
    await clock.run_until_idle()
    assert nova.batches == [(0.0, ["port-1"])]  # the first event goes out at once

    await clock.advance(0.5)
    notifier.emit([ev(2)])
    await clock.advance(0.5)
    notifier.emit([ev(3), ev(4)])
    await clock.advance(0.99)
    assert len(nova.received) == 1  # still inside the interval
    await clock.advance(0.01)
    assert nova.batches[1] == (2.0, ["port-2", "port-3", "port-4"])  # one request

    await clock.advance(1.0)
    notifier.emit([ev(5)])  # during the second interval (2 .. 4)
    await clock.advance(1.0)
    assert nova.batches[2] == (4.0, ["port-5"])

    await clock.advance(2.0)  # interval 4 .. 6 passes with nothing queued: idle
    assert clock.pending_sleepers == 0
    await clock.advance(3.5)
    notifier.emit([ev(6)])
    await clock.run_until_idle()
    assert nova.batches[3] == (9.5, ["port-6"])  # immediate again

    snap = notifier.snapshot()
    assert snap["events_emitted"] == 6
    assert snap["events_sent"] == 6
    assert snap["batches_sent"] == 4
    assert snap["batches_failed"] == 0
    assert [(b["time"], b["events"], b["status"]) for b in snap["last_batches"]] == [
        (0.0, 1, 200),
        (2.0, 3, 200),
        (4.0, 1, 200),
        (9.5, 1, 200),
    ]
    await notifier.aclose()


async def test_two_emits_in_one_step_before_the_sender_runs(
    clock: FakeClock, nova: FakeNova
) -> None:
    notifier = make(clock, nova)
    notifier.emit([ev(1)])
    notifier.emit([ev(2)])  # the sender task has not run yet: both go in the first POST
    await clock.run_until_idle()
    assert nova.batches == [(0.0, ["port-1", "port-2"])]
    await notifier.aclose()


async def test_request_shape_is_novaclients(clock: FakeClock, nova: FakeNova) -> None:
    notifier = make(clock, nova, url=URL + "/")
    events = [vif_plugged(S, "p1"), network_changed(S, "p1")]
    notifier.emit(events)
    await clock.run_until_idle()
    notifier.emit([vif_deleted(S, "p2")])
    await clock.advance(2.0)
    first, second = nova.received
    req = first.request
    assert req.method == "POST"
    assert str(req.url) == "http://127.0.0.1:8774/v2.1/os-server-external-events"
    assert json.loads(req.content) == {"events": events}
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["X-Auth-Token"] == "notused"
    assert req.headers["X-OpenStack-Nova-API-Version"] == "2.1"
    assert req.headers["User-Agent"] == "python-novaclient"
    request_id = req.headers["X-OpenStack-Request-ID"]
    assert re.fullmatch(
        r"req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", request_id
    )
    assert uuid.UUID(request_id[4:]).version == 4
    assert second.request.headers["X-OpenStack-Request-ID"] != request_id
    assert second.events == [vif_deleted(S, "p2")]
    await notifier.aclose()


# -- failures are dropped, never retried ----------------------------------------------------


async def test_http_500_is_counted_and_dropped_sender_continues(
    clock: FakeClock, nova: FakeNova, caplog: pytest.LogCaptureFixture
) -> None:
    nova.responders = [lambda r: httpx.Response(500, json={"computeFault": {}})]
    notifier = make(clock, nova)
    notifier.emit([ev(1), ev(2)])
    await clock.run_until_idle()
    notifier.emit([ev(3)])
    await clock.advance(2.0)
    assert nova.batches == [(0.0, ["port-1", "port-2"]), (2.0, ["port-3"])]  # no retry of 1, 2
    snap = notifier.snapshot()
    assert snap["batches_failed"] == 1
    assert snap["events_dropped"] == 2
    assert snap["batches_sent"] == 1
    assert snap["events_sent"] == 1
    assert snap["last_batches"][0]["status"] == 500
    assert snap["last_batches"][0]["error"] == "HTTP 500"
    assert any(r.levelname == "WARNING" and "answered 500" in r.message for r in caplog.records)
    await notifier.aclose()


async def test_connect_error_is_tried_once_more_then_dropped(
    clock: FakeClock, nova: FakeNova, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    nova.responders = [refuse, refuse]
    notifier = make(clock, nova)
    notifier.emit([ev(1)])
    await clock.run_until_idle()
    assert len(nova.received) == 2  # the first try and one immediate reconnect
    snap = notifier.snapshot()
    assert snap["batches_failed"] == 1
    assert snap["events_dropped"] == 1
    assert snap["last_batches"][0]["status"] is None
    assert "ConnectError" in snap["last_batches"][0]["error"]
    assert any(r.levelname == "WARNING" and "dropping 1 event" in r.message for r in caplog.records)

    notifier.emit([ev(2)])  # the sender is still alive: sent after the interval
    await clock.advance(2.0)
    assert nova.batches[-1] == (2.0, ["port-2"])
    assert notifier.snapshot()["events_sent"] == 1
    await notifier.aclose()


async def test_connect_error_then_success_on_the_reconnect(
    clock: FakeClock, nova: FakeNova
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    nova.responders = [refuse]
    notifier = make(clock, nova)
    notifier.emit([ev(1)])
    await clock.run_until_idle()
    assert len(nova.received) == 2
    assert notifier.snapshot()["events_sent"] == 1
    assert notifier.snapshot()["batches_failed"] == 0
    await notifier.aclose()


async def test_read_timeout_is_not_retried(clock: FakeClock, nova: FakeNova) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    nova.responders = [slow]
    notifier = make(clock, nova)
    notifier.emit([ev(1)])
    await clock.run_until_idle()
    assert len(nova.received) == 1
    assert notifier.snapshot()["events_dropped"] == 1
    assert "ReadTimeout" in notifier.snapshot()["last_batches"][0]["error"]
    await notifier.aclose()


async def test_event_codes_other_than_200_are_counted(
    clock: FakeClock, nova: FakeNova, caplog: pytest.LogCaptureFixture
) -> None:
    def partial(request: httpx.Request) -> httpx.Response:
        events = json.loads(request.content)["events"]
        answer = [{**events[0], "code": 200}, {**events[1], "code": 404}]
        return httpx.Response(207, json={"events": answer})

    nova.responders = [partial, lambda r: httpx.Response(200, text="not json")]
    notifier = make(clock, nova)
    notifier.emit([ev(1), ev(2)])
    await clock.run_until_idle()
    snap = notifier.snapshot()
    assert snap["events_sent"] == 2
    assert snap["events_rejected"] == 1
    assert any("answered 404" in r.message for r in caplog.records)
    notifier.emit([ev(3)])
    await clock.advance(2.0)
    assert notifier.snapshot()["events_sent"] == 3  # a bad body is logged, not fatal
    assert any(r.levelname == "ERROR" for r in caplog.records)
    await notifier.aclose()


# -- disabled, reconfigured, flush, close ---------------------------------------------------


async def test_url_none_records_only(clock: FakeClock, nova: FakeNova) -> None:
    notifier = make(clock, nova, url=None)
    notifier.emit([ev(1), ev(2)])
    await clock.advance(5.0)
    assert nova.received == []
    assert [e["tag"] for _, e in notifier.recorded()] == ["port-1", "port-2"]
    snap = notifier.snapshot()
    assert snap["enabled"] is False
    assert snap["events_emitted"] == 2
    assert snap["events_unsent"] == 2
    assert snap["events_sent"] == 0

    notifier.set_url(URL)
    notifier.emit([ev(3)])
    await clock.run_until_idle()
    assert nova.batches == [(5.0, ["port-3"])]
    await notifier.aclose()


async def test_disabling_drops_what_is_queued(clock: FakeClock, nova: FakeNova) -> None:
    notifier = make(clock, nova)
    notifier.emit([ev(1)])
    await clock.run_until_idle()
    notifier.emit([ev(2)])
    notifier.set_url(None)
    await clock.advance(2.0)
    assert len(nova.received) == 1
    snap = notifier.snapshot()
    assert snap["events_dropped"] == 1
    assert snap["last_batches"][-1]["error"] == "notifier disabled"
    await notifier.aclose()


async def test_set_interval(clock: FakeClock, nova: FakeNova) -> None:
    notifier = make(clock, nova, interval=2.0)
    notifier.set_interval(0.5)
    assert notifier.interval == 0.5
    notifier.emit([ev(1)])
    await clock.run_until_idle()
    notifier.emit([ev(2)])
    await clock.advance(0.5)
    assert nova.batches == [(0.0, ["port-1"]), (0.5, ["port-2"])]
    with pytest.raises(ValueError, match="interval"):
        notifier.set_interval(-1.0)
    await notifier.aclose()


async def test_flush_waits_for_the_interval_batch(clock: FakeClock, nova: FakeNova) -> None:
    notifier = make(clock, nova)
    await notifier.flush()  # nothing queued: returns at once
    notifier.emit([ev(1)])
    await clock.run_until_idle()
    await notifier.flush()  # sent, sender now sleeping with an empty queue: returns
    notifier.emit([ev(2)])
    flushing = asyncio.create_task(notifier.flush())
    await clock.advance(1.9)
    assert not flushing.done()
    await clock.advance(0.1)
    assert flushing.done()
    await flushing
    assert nova.batches == [(0.0, ["port-1"]), (2.0, ["port-2"])]
    await notifier.aclose()


async def test_aclose_sends_the_pending_batch_at_once(clock: FakeClock, nova: FakeNova) -> None:
    notifier = make(clock, nova)
    notifier.emit([ev(1)])
    await clock.run_until_idle()
    await clock.advance(0.5)
    notifier.emit([ev(2), ev(3)])
    await notifier.aclose()
    assert nova.batches == [(0.0, ["port-1"]), (0.5, ["port-2", "port-3"])]
    assert clock.pending_sleepers == 0

    notifier.emit([ev(4)])  # after close: recorded and dropped
    await clock.advance(5.0)
    assert len(nova.received) == 2
    snap = notifier.snapshot()
    assert snap["events_dropped"] == 1
    assert snap["events_emitted"] == 4
    assert snap["enabled"] is False
    await notifier.aclose()  # idempotent


async def test_aclose_lets_an_inflight_post_finish(clock: FakeClock, nova: FakeNova) -> None:
    gate = asyncio.Event()

    async def slow_nova(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return nova_ok(request)

    nova.responders = [slow_nova]
    notifier = make(clock, nova)
    notifier.emit([ev(1)])
    await clock.run_until_idle()
    assert notifier.snapshot()["sending"] is True
    notifier.emit([ev(2)])
    closing = asyncio.create_task(notifier.aclose())
    await clock.run_until_idle()
    assert not closing.done()
    gate.set()
    await closing
    assert nova.batches == [(0.0, ["port-1"]), (0.0, ["port-2"])]
    snap = notifier.snapshot()
    assert snap["events_sent"] == 2
    assert snap["batches_failed"] == 0
    assert snap["sending"] is False


async def test_aclose_before_the_sender_ever_ran(clock: FakeClock, nova: FakeNova) -> None:
    notifier = make(clock, nova)
    notifier.emit([ev(1)])
    await notifier.aclose()
    assert nova.batches == [(0.0, ["port-1"])]


def test_constructor_validates_interval(clock: FakeClock, nova: FakeNova) -> None:
    with pytest.raises(ValueError, match="interval"):
        make(clock, nova, interval=float("nan"))


async def test_empty_emit_does_nothing(clock: FakeClock, nova: FakeNova) -> None:
    notifier = make(clock, nova)
    notifier.emit([])
    await clock.run_until_idle()
    assert nova.received == []
    assert notifier.snapshot()["events_emitted"] == 0
    await notifier.aclose()
