"""Traces of coalesced reads (`hotport.engine.trace.TraceSharing`) and the benchmark's
attribution of a shared request (`hotport.bench.timing.SimMeter`), with fakes.

A request the coalescer sends for several operations must show in each one's trace (as
a shared request, with its round trip) and its simulated delay must count in each one's
article-equivalent time; a request sent for one operation stays that operation's own.
"""

from __future__ import annotations

import asyncio
import contextvars
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from hotport.bench.timing import SimMeter, equivalent
from hotport.engine.trace import (
    OperationTrace,
    TraceSharing,
    current_trace,
    observe_request,
    request_traces,
    tracing,
)
from hotport.network import Backoff, NeutronClient, NoAuth
from hotport.network.coalesce import Coalescer


def record(call: str, duration: float = 0.0) -> Any:
    return SimpleNamespace(call=call, duration=duration)


def in_context(fn: Any, *args: Any) -> Any:
    ctx = contextvars.Context()
    return ctx, ctx.run(fn, *args)


def test_a_request_sent_for_several_traces_is_shared_by_each() -> None:
    a, b = OperationTrace("attach"), OperationTrace("refresh")
    ctx, _ = in_context(TraceSharing().sending_for, [a, b, a])  # a twice: counted once
    assert ctx.run(current_trace) is None
    assert ctx.run(request_traces) == (a, b)
    ctx.run(observe_request, record("list_ports"))
    for t in (a, b):
        assert dict(t.shared) == {"list_ports": 1}
        assert t.request_count == 0  # `requests` stays what it sent for itself
        assert t.shared_count == 1
        assert t.round_trips == 1  # it waited for that request
        assert t.to_dict()["network_requests_shared"] == {"list_ports": 1}


def test_a_request_sent_for_one_trace_is_its_own() -> None:
    a = OperationTrace("attach")
    ctx, _ = in_context(TraceSharing().sending_for, [a, "not a trace"])
    assert ctx.run(current_trace) is a
    assert ctx.run(request_traces) == (a,)
    ctx.run(observe_request, record("show_port"))
    assert dict(a.requests) == {"show_port": 1}
    assert not a.shared


def test_outside_any_sharing_the_current_trace_is_the_one() -> None:
    a = OperationTrace("attach")
    assert request_traces() == ()
    with tracing(a):
        assert request_traces() == (a,)
        assert TraceSharing().caller() is a
        observe_request(record("bind_port"))
    assert dict(a.requests) == {"bind_port": 1}


def test_a_coalesce_wait_is_a_phase() -> None:
    now = [10.0]
    a = OperationTrace("attach", clock=lambda: now[0])
    now[0] = 10.5
    TraceSharing().waited(a, 0.25)
    TraceSharing().waited("not a trace", 1.0)  # ignored
    [phase] = a.phases
    assert (phase.name, phase.start, phase.seconds) == ("wait-coalesce", 0.25, 0.25)


def test_a_coalesce_wait_counts_as_scaled_time_like_a_lock_wait() -> None:
    a = OperationTrace("attach", clock=lambda: 100.0)
    a.started, a.ended = 100.0, 100.011
    a.add_wait("coalesce", 0.010)
    assert equivalent(a, [], time_scale=0.01) == pytest.approx(1.0 + 0.001)


class FakeSim:
    """What `SimMeter.install` hooks: the simulator's request log."""

    def __init__(self) -> None:
        self.stats = SimpleNamespace(record=self._record)

    @staticmethod
    def _record(**kw: Any) -> Any:
        return SimpleNamespace(queued=kw["queued"], service=kw["service"])


class HeldSim(httpx.AsyncBaseTransport):
    """Answers like Neutron after the test releases each request; logs a simulated delay."""

    def __init__(self, sim: FakeSim) -> None:
        self.sim = sim
        self.held: list[asyncio.Event] = []
        self.paths: list[str] = []

    def release(self) -> None:
        held, self.held = self.held, []
        for go in held:
            go.set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        go = asyncio.Event()
        self.held.append(go)
        await go.wait()
        self.sim.stats.record(queued=0.5, service=1.0)
        if request.url.path == "/v2.0/ports":
            ids = request.url.params.get_list("id")
            return httpx.Response(200, json={"ports": [port(i) for i in ids]})
        return httpx.Response(200, json={"port": port(request.url.path.rsplit("/", 1)[1])})


def port(port_id: str) -> dict[str, Any]:
    return {"id": port_id, "network_id": "n", "mac_address": "fa:16:3e:00:00:01"}


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


async def test_the_meter_gives_a_shared_requests_delay_to_every_operation_sharing_it() -> None:
    sim = FakeSim()
    inner = HeldSim(sim)
    meter = SimMeter(inner)
    meter.install(sim)
    client = NeutronClient(
        NoAuth("http://neutron.test"), transport=meter, retries=0, backoff=Backoff(jitter=0)
    )
    client.add_observer(observe_request)
    reads = Coalescer(client, attribution=TraceSharing())
    traces = [OperationTrace("attach", port_id=f"p{i}") for i in range(3)]

    async def op(i: int) -> None:
        with tracing(traces[i]):
            assert (await reads.show_port(f"p{i}")).id == f"p{i}"
            traces[i].finish("ok")

    try:
        first = asyncio.ensure_future(op(0))
        await settle()
        rest = [asyncio.ensure_future(op(i)) for i in (1, 2)]
        await settle()
        inner.release()
        await settle()
        inner.release()
        await asyncio.gather(first, *rest)
    finally:
        await client.aclose()
    assert inner.paths == ["/v2.0/ports/p0", "/v2.0/ports"]
    alone, *sharing = traces
    assert dict(alone.requests) == {"show_port": 1}
    assert not alone.shared
    [own] = meter.pop(alone)
    assert own[2] > 0
    shared = [meter.pop(t) for t in sharing]
    assert shared[0] == shared[1]
    assert len(shared[0]) == 1
    (start, end, delay) = shared[0][0]
    assert 0 < delay <= end - start
    for t in sharing:
        assert dict(t.shared) == {"list_ports": 1}
        assert t.request_count == 0
        assert t.round_trips == 1
        assert [p.name for p in t.phases] == ["wait-coalesce"]
        # its article-equivalent time holds the shared request's delay, scaled back up
        assert equivalent(t, shared[0], time_scale=0.001) >= delay / 0.001
    assert meter.pop(traces[1]) == []  # popped: forgotten
