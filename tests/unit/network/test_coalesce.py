"""The one-port read coalescer (`hotport.network.coalesce`) with fakes: no sockets, no
clock. Requests are held by gates the tests open, so "concurrently" is deterministic.

What is held: a lone call is the uncoalesced request; callers that queue while a request
is in flight leave together as one list request; each caller gets its own port (or its
own not-found), never another's; a request's error reaches all its callers; a cancelled
caller stops waiting and breaks nobody; ids per request and requests in flight are
bounded.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from neutron_unit_fakes import ENDPOINT

from hotport.engine import errors as E
from hotport.engine.context import translate_errors
from hotport.network import Backoff, NeutronClient, NoAuth
from hotport.network import errors as net
from hotport.network.coalesce import Coalescer
from hotport.network.models import FloatingIP, Port


def port_json(port_id: str) -> dict[str, Any]:
    return {
        "id": port_id,
        "network_id": "net-1",
        "mac_address": f"fa:16:3e:00:00:{len(port_id):02x}",
        "device_id": f"device-of-{port_id}",
        "revision_number": 3,
    }


def fip_json(fip_id: str, port_id: str | None) -> dict[str, Any]:
    return {"id": fip_id, "floating_ip_address": "203.0.113.9", "port_id": port_id}


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


class FakeSource:
    """A `PortSource` that records its calls and holds each one until `release()`.

    `ports` are the ports that exist; `extra` are rows every list answer adds (ports or
    floating IPs nobody asked for); `fail` makes the next request raise it.
    """

    def __init__(self, ports: Sequence[str], *, id_chunk: int = 100) -> None:
        self.ports = set(ports)
        self.fips: dict[str, list[str]] = {}  # port id -> floating IP ids
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.held: list[asyncio.Event] = []
        self.hold = True
        self.fail: BaseException | None = None
        self.extra_port: str | None = None
        self.extra_fip: tuple[str, str] | None = None
        self._id_chunk = id_chunk

    @property
    def id_chunk(self) -> int:
        return self._id_chunk

    async def _wait(self) -> None:
        if self.hold:
            go = asyncio.Event()
            self.held.append(go)
            await go.wait()
        else:
            await asyncio.sleep(0)  # a request always yields to the loop
        if self.fail is not None:
            exc, self.fail = self.fail, None
            raise exc

    def release(self) -> int:
        held, self.held = self.held, []
        for go in held:
            go.set()
        return len(held)

    async def show_port(self, port_id: str) -> Port:
        self.calls.append(("show_port", (port_id,)))
        await self._wait()
        if port_id not in self.ports:
            raise net.PortNotFound(f"Port {port_id} could not be found.", status=404)
        return Port.from_neutron(port_json(port_id))

    async def list_ports(self, *, ids: Sequence[str] | None = None) -> list[Port]:
        assert ids is not None
        self.calls.append(("list_ports", tuple(ids)))
        await self._wait()
        found = [i for i in ids if i in self.ports]
        if self.extra_port is not None:
            found.append(self.extra_port)
        return [Port.from_neutron(port_json(i)) for i in found]

    async def list_floating_ips(self, port_ids: Sequence[str] | None) -> list[FloatingIP]:
        assert port_ids is not None
        self.calls.append(("list_floating_ips", tuple(port_ids)))
        await self._wait()
        out = [
            FloatingIP.from_neutron(fip_json(f, p)) for p in port_ids for f in self.fips.get(p, [])
        ]
        if self.extra_fip is not None:
            out.append(FloatingIP.from_neutron(fip_json(*self.extra_fip)))
        return out


async def run_queued(
    c: Coalescer, source: FakeSource, ids: Sequence[str], read: str = "show_port"
) -> tuple[asyncio.Task[Any], list[asyncio.Task[Any]]]:
    """A first call in flight (held), then `ids` queued behind it."""
    first = asyncio.ensure_future(getattr(c, read)("p0"))
    await settle()
    rest = [asyncio.ensure_future(getattr(c, read)(i)) for i in ids]
    await settle()
    return first, rest


# -- the alone path ----------------------------------------------------------------------


async def test_a_lone_call_is_the_uncoalesced_request() -> None:
    source = FakeSource(["p1"])
    source.hold = False
    c = Coalescer(source)
    port = await c.show_port("p1")
    fips = await c.port_floating_ips("p1")
    assert port.id == "p1"
    assert fips == []
    assert source.calls == [("show_port", ("p1",)), ("list_floating_ips", ("p1",))]
    stats = c.stats()
    assert stats["show_port"]["direct"] == 1
    assert stats["show_port"]["batches"] == 0
    assert stats["floating_ips"]["direct"] == 1
    assert stats["floating_ips"]["batches"] == 0


async def test_sequential_calls_never_batch() -> None:
    source = FakeSource([f"p{i}" for i in range(5)])
    source.hold = False
    c = Coalescer(source)
    for i in range(5):
        assert (await c.show_port(f"p{i}")).id == f"p{i}"
    assert [name for name, _ in source.calls] == ["show_port"] * 5


async def test_the_two_kinds_do_not_wait_for_each_other() -> None:
    source = FakeSource(["p1"])
    c = Coalescer(source)
    both = asyncio.ensure_future(asyncio.gather(c.show_port("p1"), c.port_floating_ips("p1")))
    await settle()
    # both sent at once, each as its own single-port request (one round trip)
    assert sorted(source.calls) == [("list_floating_ips", ("p1",)), ("show_port", ("p1",))]
    assert source.release() == 2
    port, fips = await both
    assert (port.id, fips) == ("p1", [])


# -- batching under concurrency -----------------------------------------------------------


async def test_callers_queued_behind_a_request_leave_as_one_list() -> None:
    ids = [f"p{i}" for i in range(1, 6)]
    source = FakeSource(["p0", *ids])
    c = Coalescer(source)
    first, rest = await run_queued(c, source, ids)
    assert source.calls == [("show_port", ("p0",))]  # the others wait for it
    assert c.stats()["show_port"]["queued"] == 5
    source.release()
    await settle()
    assert source.calls[1:] == [("list_ports", tuple(ids))]
    source.release()
    ports = await asyncio.gather(*rest)
    assert [p.id for p in ports] == ids  # each its own port
    assert (await first).id == "p0"
    s = c.stats()["show_port"]
    assert (s["direct"], s["batches"], s["shared"], s["batched_callers"], s["max_ids"]) == (
        1,
        1,
        1,
        5,
        5,
    )
    assert (s["in_flight"], s["queued"]) == (0, 0)


async def test_callers_of_the_same_loop_iteration_go_together_after_the_first() -> None:
    ids = ["a", "b", "c", "d"]
    source = FakeSource(ids)
    source.hold = False
    c = Coalescer(source)
    ports = await asyncio.gather(*(c.show_port(i) for i in ids))
    assert [p.id for p in ports] == ids
    assert source.calls == [("show_port", ("a",)), ("list_ports", ("b", "c", "d"))]


async def test_a_queue_of_one_port_is_sent_as_the_single_port_request() -> None:
    source = FakeSource(["p0", "p1"])
    c = Coalescer(source)
    first, rest = await run_queued(c, source, ["p1", "p1"])  # two callers, one port
    source.release()
    await settle()
    assert source.calls == [("show_port", ("p0",)), ("show_port", ("p1",))]
    source.release()
    a, b = await asyncio.gather(*rest)
    assert a.id == b.id == "p1"
    await first
    assert c.stats()["show_port"]["shared"] == 1  # one request, two callers


async def test_duplicate_ids_are_asked_once_and_answered_to_each() -> None:
    source = FakeSource(["p0", "p1", "p2"])
    c = Coalescer(source)
    first, rest = await run_queued(c, source, ["p1", "p2", "p1"])
    source.release()
    await settle()
    assert source.calls[1] == ("list_ports", ("p1", "p2"))
    source.release()
    assert [p.id for p in await asyncio.gather(*rest)] == ["p1", "p2", "p1"]
    await first


async def test_ids_per_request_are_bounded_by_the_clients_id_chunk() -> None:
    ids = [f"p{i}" for i in range(1, 8)]
    source = FakeSource(["p0", *ids], id_chunk=3)
    c = Coalescer(source)
    first, rest = await run_queued(c, source, ids)
    for _ in range(4):
        source.release()
        await settle()
    sent = [call for call in source.calls[1:]]
    # one request in flight at a time, at most 3 ids each, oldest callers first
    assert sent == [
        ("list_ports", ("p1", "p2", "p3")),
        ("list_ports", ("p4", "p5", "p6")),
        ("show_port", ("p7",)),
    ]
    assert [p.id for p in await asyncio.gather(*rest)] == ids
    await first


async def test_requests_in_flight_are_bounded_per_kind() -> None:
    ids = [f"p{i}" for i in range(1, 7)]
    source = FakeSource(["p0", *ids], id_chunk=2)
    c = Coalescer(source, max_in_flight=2)
    calls = [asyncio.ensure_future(c.show_port(i)) for i in ["p0", *ids]]
    await settle()
    # two sent at once (each alone), the others queued
    assert source.calls == [("show_port", ("p0",)), ("show_port", ("p1",))]
    assert c.stats()["show_port"]["in_flight"] == 2
    while not all(t.done() for t in calls):
        assert c.stats()["show_port"]["in_flight"] <= 2
        assert len(source.held) <= 2
        source.release()
        await settle()
    assert [t.result().id for t in calls] == ["p0", *ids]
    assert all(len(ids_) <= 2 for _, ids_ in source.calls)


async def test_floating_ips_are_handed_out_by_port() -> None:
    source = FakeSource(["p0", "p1", "p2", "p3"])
    source.fips = {"p1": ["f1", "f1b"], "p3": ["f3"]}
    source.extra_fip = ("f-other", "p-not-asked")  # a row nobody asked for
    c = Coalescer(source)
    first, rest = await run_queued(c, source, ["p1", "p2", "p3"], read="port_floating_ips")
    source.release()
    await settle()
    assert source.calls[1] == ("list_floating_ips", ("p1", "p2", "p3"))
    source.release()
    answers = await asyncio.gather(*rest)
    assert [[f.id for f in a] for a in answers] == [["f1", "f1b"], [], ["f3"]]
    assert all(f.port_id == p for a, p in zip(answers, ["p1", "p2", "p3"], strict=False) for f in a)
    await first


async def test_each_caller_gets_its_own_list() -> None:
    source = FakeSource(["p0", "p1"])
    source.fips = {"p1": ["f1"]}
    c = Coalescer(source)
    first, rest = await run_queued(c, source, ["p1", "p1"], read="port_floating_ips")
    for _ in range(2):
        source.release()
        await settle()
    a, b = await asyncio.gather(*rest)
    assert a == b
    assert a is not b
    a.clear()
    assert [f.id for f in b] == ["f1"]
    await first


# -- semantics: not found, errors, other ports' rows ---------------------------------------


async def test_a_port_missing_from_the_list_is_not_found_for_its_caller_only() -> None:
    source = FakeSource(["p0", "p1", "p3"])
    c = Coalescer(source)
    first, rest = await run_queued(c, source, ["p1", "gone", "p3"])
    for _ in range(2):
        source.release()
        await settle()
    p1, gone, p3 = await asyncio.gather(*rest, return_exceptions=True)
    assert isinstance(p1, Port)
    assert p1.id == "p1"
    assert isinstance(p3, Port)
    assert p3.id == "p3"
    assert isinstance(gone, net.PortNotFound)
    assert (gone.status, gone.neutron_type, gone.call, gone.method, gone.path) == (
        404,
        "PortNotFound",
        "show_port",
        "GET",
        "/v2.0/ports/gone",
    )
    assert "gone" in gone.message
    await first


async def test_a_row_nobody_asked_for_is_never_handed_out() -> None:
    source = FakeSource(["p0", "p1"])
    source.extra_port = "intruder"  # the answer carries a port that was not asked for
    c = Coalescer(source)
    first, rest = await run_queued(c, source, ["p1", "missing"])
    for _ in range(2):
        source.release()
        await settle()
    p1, missing = await asyncio.gather(*rest, return_exceptions=True)
    assert isinstance(p1, Port)
    assert p1.id == "p1"
    assert isinstance(missing, net.PortNotFound)
    await first


@pytest.mark.parametrize(
    "error",
    [
        net.Unavailable("503 after 4 attempts", status=503, attempts=4),
        net.DeadlineExceeded("the 30s deadline passed"),
        net.MalformedResponse("the answer has no 'ports' list of objects"),
    ],
)
async def test_an_error_of_the_request_reaches_every_caller(error: Exception) -> None:
    source = FakeSource(["p0", "p1", "p2", "p3"])
    c = Coalescer(source)
    first, rest = await run_queued(c, source, ["p1", "p2", "p3"])
    source.release()
    await settle()
    source.fail = error
    source.release()
    results = await asyncio.gather(*rest, return_exceptions=True)
    assert results == [error, error, error]
    await first
    # and the next request is not affected
    source.hold = False
    assert (await c.show_port("p1")).id == "p1"


async def test_an_error_of_a_direct_request_stays_with_its_caller() -> None:
    source = FakeSource(["p0", "p1"])
    c = Coalescer(source)
    first, rest = await run_queued(c, source, ["p1"])
    source.fail = net.Unavailable("boom", status=500)
    source.release()
    await settle()
    source.release()
    with pytest.raises(net.Unavailable):
        await first
    assert (await rest[0]).id == "p1"


async def test_a_bad_id_is_refused_at_the_call_and_never_joins_a_batch() -> None:
    source = FakeSource(["p0"])
    c = Coalescer(source)
    with pytest.raises(ValueError, match="non-empty"):
        await c.show_port("")
    with pytest.raises(ValueError, match="non-empty"):
        await c.port_floating_ips("  ")
    assert source.calls == []


# -- cancellation ------------------------------------------------------------------------


async def test_a_caller_cancelled_before_the_batch_leaves_is_left_out() -> None:
    source = FakeSource(["p0", "p1", "p2", "p3"])
    c = Coalescer(source)
    first, rest = await run_queued(c, source, ["p1", "p2", "p3"])
    rest[1].cancel()
    await settle()
    source.release()
    await settle()
    assert source.calls[1] == ("list_ports", ("p1", "p3"))
    source.release()
    assert rest[1].cancelled()
    assert [p.id for p in await asyncio.gather(rest[0], rest[2])] == ["p1", "p3"]
    assert c.stats()["show_port"]["abandoned"] == 1
    await first


async def test_a_caller_cancelled_while_its_batch_is_in_flight_breaks_nobody() -> None:
    source = FakeSource(["p0", "p1", "p2"])
    c = Coalescer(source)
    first, rest = await run_queued(c, source, ["p1", "p2"])
    source.release()
    await settle()
    assert source.calls[1] == ("list_ports", ("p1", "p2"))
    rest[0].cancel()  # a deadline of its own: it stops waiting
    await settle()
    assert c.stats()["show_port"]["in_flight"] == 1  # the request goes on for the other
    source.release()
    assert (await rest[1]).id == "p2"
    assert rest[0].cancelled()
    await first


async def test_a_caller_with_a_deadline_gives_up_alone() -> None:
    source = FakeSource(["p0", "p1", "p2"])
    c = Coalescer(source)
    first = asyncio.ensure_future(c.show_port("p0"))
    await settle()

    async def impatient() -> Port:
        async with asyncio.timeout(0):  # already due: it gives up at its first wait
            return await c.show_port("p1")

    short = asyncio.ensure_future(impatient())
    patient = asyncio.ensure_future(c.show_port("p2"))
    await settle()
    with pytest.raises(TimeoutError):
        await short
    source.release()
    await settle()
    assert source.calls[1] == ("show_port", ("p2",))  # p1 left the queue
    source.release()
    assert (await patient).id == "p2"
    await first


async def test_a_cancelled_direct_caller_lets_the_queue_go() -> None:
    source = FakeSource(["p0", "p1"])
    c = Coalescer(source)
    first, rest = await run_queued(c, source, ["p1"])
    first.cancel()
    await settle()
    assert source.calls[1] == ("show_port", ("p1",))  # its slot went to the queue
    source.release()
    source.release()
    assert (await rest[0]).id == "p1"


async def test_aclose_fails_the_waiting_callers_as_unavailable() -> None:
    source = FakeSource(["p0", "p1", "p2", "p3"])
    c = Coalescer(source)
    first, rest = await run_queued(c, source, ["p1", "p2"])
    source.release()
    await settle()  # p1, p2 in flight as one list
    later = asyncio.ensure_future(c.show_port("p3"))  # queued behind it
    await settle()
    await c.aclose()
    results = await asyncio.gather(*rest, later, return_exceptions=True)
    assert all(isinstance(r, net.Unavailable) for r in results)
    await first


# -- attribution -------------------------------------------------------------------------


class Recorder:
    """Attribution that records what the coalescer told it."""

    def __init__(self) -> None:
        self.var: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="?")
        self.waits: list[tuple[object, float]] = []
        self.sent_for: list[list[object]] = []
        self.seen_in_request: list[tuple[str, ...]] = []

    def caller(self) -> object | None:
        return self.var.get()

    def waited(self, caller: object, seconds: float) -> None:
        self.waits.append((caller, seconds))

    def sending_for(self, callers: Sequence[object]) -> None:
        self.sent_for.append(list(callers))
        self.var.set("+".join(str(c) for c in callers))


async def test_a_batch_is_sent_in_a_context_of_its_own_naming_all_its_callers() -> None:
    source = FakeSource(["p0", "p1", "p2"])
    rec = Recorder()
    c = Coalescer(source, attribution=rec)
    seen: list[str] = []
    original = source.list_ports

    async def list_ports(*, ids: Sequence[str] | None = None) -> list[Port]:
        seen.append(rec.var.get())  # what an observer of the request would see
        return await original(ids=ids)

    source.list_ports = list_ports  # type: ignore[method-assign]

    async def as_(who: str, port_id: str) -> Port:
        rec.var.set(who)
        return await c.show_port(port_id)

    first = asyncio.ensure_future(as_("op0", "p0"))
    await settle()
    rest = [asyncio.ensure_future(as_(w, p)) for w, p in (("op1", "p1"), ("op2", "p2"))]
    await settle()
    source.release()
    await settle()
    source.release()
    await asyncio.gather(first, *rest)
    assert rec.sent_for == [["op1", "op2"]]  # the direct request needs no hook
    assert [w for w, _ in rec.waits] == ["op1", "op2"]
    assert all(s >= 0 for _, s in rec.waits)
    assert seen == ["op1+op2"]


# -- through the real client (MockTransport): request shapes and error translation --------


class Gated:
    """An httpx MockTransport handler answering like Neutron, each request held until
    `release()`."""

    def __init__(self, ports: Sequence[str], fail_lists: int | None = None) -> None:
        self.ports = set(ports)
        self.fail_lists = fail_lists
        self.requests: list[httpx.Request] = []
        self.held: list[asyncio.Event] = []

    def release(self) -> None:
        held, self.held = self.held, []
        for go in held:
            go.set()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        go = asyncio.Event()
        self.held.append(go)
        await go.wait()
        path = request.url.path
        if path.startswith("/v2.0/ports/"):
            pid = path.rsplit("/", 1)[1]
            if pid not in self.ports:
                return httpx.Response(
                    404,
                    json={
                        "NeutronError": {
                            "type": "PortNotFound",
                            "message": f"Port {pid} could not be found.",
                            "detail": "",
                        }
                    },
                )
            return httpx.Response(200, json={"port": port_json(pid)})
        if path == "/v2.0/ports":
            if self.fail_lists is not None:
                return httpx.Response(self.fail_lists, json={"NeutronError": "overloaded"})
            ids = request.url.params.get_list("id")
            return httpx.Response(
                200, json={"ports": [port_json(i) for i in ids if i in self.ports]}
            )
        if path == "/v2.0/floatingips":
            return httpx.Response(200, json={"floatingips": []})
        return httpx.Response(404)


def client_on(handler: Gated) -> NeutronClient:
    return NeutronClient(
        NoAuth(ENDPOINT),
        transport=httpx.MockTransport(handler),
        retries=0,
        backoff=Backoff(jitter=0),
    )


def shape(request: httpx.Request) -> str:
    query = f"?{request.url.query.decode()}" if request.url.query else ""
    return f"{request.method} {request.url.path}{query}"


async def test_with_the_client_a_lone_read_is_get_port_and_a_batch_is_a_port_list() -> None:
    handler = Gated(["p0", "p1", "p2"])
    async with client_on(handler) as client:
        c = Coalescer(client)
        first = asyncio.ensure_future(c.show_port("p0"))
        await settle()
        rest = [asyncio.ensure_future(c.show_port(i)) for i in ("p1", "p2")]
        lone_fip = asyncio.ensure_future(c.port_floating_ips("p0"))
        await settle()
        handler.release()
        await settle()
        handler.release()
        assert [p.id for p in await asyncio.gather(first, *rest)] == ["p0", "p1", "p2"]
        assert await lone_fip == []
    assert [shape(r) for r in handler.requests] == [
        "GET /v2.0/ports/p0",
        "GET /v2.0/floatingips?port_id=p0",
        "GET /v2.0/ports?id=p1&id=p2",
    ]
    assert client.counters == {"show_port": 1, "list_floating_ips": 1, "list_ports": 1}


async def test_with_the_client_not_found_translates_as_a_real_404_does() -> None:
    handler = Gated(["p0", "p1"])
    async with client_on(handler) as client:
        c = Coalescer(client)
        first = asyncio.ensure_future(c.show_port("p0"))
        await settle()
        batched = [asyncio.ensure_future(c.show_port(i)) for i in ("p1", "gone")]
        await settle()
        handler.release()
        await settle()
        handler.release()
        await first
        assert (await batched[0]).id == "p1"
        with pytest.raises(net.PortNotFound) as from_batch:
            await batched[1]
        alone = asyncio.ensure_future(c.show_port("gone"))  # nothing in flight: GET /ports/gone
        await settle()
        handler.release()
        with pytest.raises(net.PortNotFound) as from_get:
            await alone
    assert shape(handler.requests[-1]) == "GET /v2.0/ports/gone"
    assert (from_batch.value.status, from_batch.value.neutron_type) == (
        from_get.value.status,
        from_get.value.neutron_type,
    )
    assert (from_batch.value.call, from_batch.value.path) == (
        from_get.value.call,
        from_get.value.path,
    )
    translated = []
    for exc in (from_batch.value, from_get.value):
        with pytest.raises(E.PortNotFound) as t, translate_errors("attach"):
            raise exc
        translated.append(str(t.value))
    assert translated[0] == translated[1]


async def test_with_the_client_a_5xx_of_the_batch_reaches_every_caller_translated_alike() -> None:
    handler = Gated(["p0", "p1", "p2"], fail_lists=503)
    async with client_on(handler) as client:
        c = Coalescer(client)
        first = asyncio.ensure_future(c.show_port("p0"))
        await settle()
        batched = [asyncio.ensure_future(c.show_port(i)) for i in ("p1", "p2")]
        await settle()
        handler.release()
        await settle()
        handler.release()
        await first
        results = await asyncio.gather(*batched, return_exceptions=True)
    assert all(isinstance(r, net.Unavailable) and r.status == 503 for r in results)
    for r in results:
        assert isinstance(r, Exception)
        with pytest.raises(E.NetworkServiceUnavailable), translate_errors("attach"):
            raise r
