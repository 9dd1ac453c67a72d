"""Request coalescing for one-port reads: concurrent `show_port(id)` calls become one
`GET /v2.0/ports?id=a&id=b...`, concurrent floating-IP lookups one
`GET /v2.0/floatingips?port_id=a&port_id=b...`, each caller handed its own part.

Owns: `Coalescer` (it satisfies the engine's `PortReads` protocol structurally: the
composition root gives it to hotport's own policy only; the reference designs keep
upstream Nova's one request per read), its `Attribution` hooks, and its counters.

The policy (per kind of read, each kind on its own):

- A call finds fewer than `max_in_flight` requests of its kind in flight and nobody of
  its kind queued: it is sent at once, in the caller's own task, as exactly the request
  it is without coalescing (`GET /ports/{id}`, `GET /floatingips?port_id={id}`). A lone
  operation therefore keeps its request count, its round trips and its latency.
- Otherwise the caller queues. When a request of that kind ends (any outcome) and a slot
  is free, the queue leaves as ONE request of at most `id_chunk` distinct ids (the
  client's `id_chunk`, so a batch is never split again by the client), oldest callers
  first; several such requests while slots are free. Callers arriving in the same loop
  iteration as a request already sent, or while it is in flight, go together next.
  A queue of one distinct id is sent as the single-port request.
- `max_in_flight` defaults to 1: under load the network service is the bottleneck, and
  every request it serves costs a fixed share (the article profile: 1.08 s per request
  plus 0.02 s per item) whatever its number of ids, so one outstanding request per kind
  folds everything that arrives meanwhile into the next one. A queued caller waits at
  most for the request ahead of it; a lone caller never waits (first rule). Measured in
  docs/network.md, "Coalescing".

Why not join a request already in flight: it was sent before the caller asked, so its
answer may predate a write the caller has seen complete. Only callers that asked before
a request is sent share it.

Semantics (the same as the uncoalesced calls): a port missing from a list answer raises,
for its callers only, the `PortNotFound` that `GET /ports/{id}` raises (404, type
PortNotFound, call show_port); an error of a request (deadline, 5xx, retries exhausted,
malformed answer) is raised to every caller of that request, the same exception the
client raised (so `translate_errors` maps it the same way); rows whose id was not asked
for are never handed to anybody; floating IPs are handed out by their `port_id`. Ids are
checked at the call (an empty id raises `ValueError`, as the client's calls do), so one
caller's bad id cannot fail a batch.

Attribution: a batch is sent by a task of its own, in a fresh context, so that no
caller's cancellation can cancel it. `Attribution.sending_for(callers)` runs in that
context first (hotport wires `hotport.engine.trace.TraceSharing`: the request is then
counted and timed in every caller's trace), and `Attribution.waited(caller, seconds)`
reports, when the batch leaves, how long each caller queued.

Must never: hand a caller data of another port; share a request sent before a caller
asked; let one caller's cancellation or deadline reach another caller; retry on its own
(the client's retry policy applies to every request); import the engine.

Concurrency: one event loop; state is mutated only between awaits (no lock). A cancelled
caller just stops waiting: its slot in a batch not yet sent is dropped, and the answer
of a batch already sent is dropped for it. `aclose()` cancels the batches in flight; their
callers get `Unavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote

from hotport.network.client import API_PREFIX
from hotport.network.errors import PortNotFound, Unavailable
from hotport.network.models import FloatingIP, Port

__all__ = ["Attribution", "Coalescer", "LaneStats", "NoAttribution", "PortSource"]

log = logging.getLogger("hotport.network.coalesce")

T = TypeVar("T")


class PortSource(Protocol):
    """What the coalescer needs from the network client (`NeutronClient` has it)."""

    async def show_port(self, port_id: str) -> Port: ...

    async def list_ports(self, *, ids: Sequence[str] | None = ...) -> list[Port]: ...

    async def list_floating_ips(self, port_ids: Sequence[str] | None) -> list[FloatingIP]: ...

    @property
    def id_chunk(self) -> int: ...


class Attribution(Protocol):
    """Who a request is for (see the module docstring)."""

    def caller(self) -> object | None:
        """The caller's identity, taken in the caller's task when it queues."""
        ...

    def waited(self, caller: object, seconds: float) -> None:
        """`caller` queued `seconds`; its request is being sent now."""
        ...

    def sending_for(self, callers: Sequence[object]) -> None:
        """Run inside the fresh context of the task about to send for `callers`."""
        ...


class NoAttribution:
    """Attribution that records nothing."""

    def caller(self) -> object | None:
        return None

    def waited(self, caller: object, seconds: float) -> None:
        pass

    def sending_for(self, callers: Sequence[object]) -> None:
        pass


@dataclass
class LaneStats:
    """What one kind of read did (monotonic counters, except `in_flight`/`queued`)."""

    #: requests sent at once in the caller's task (nothing of the kind queued, a slot free)
    direct: int = 0
    #: requests sent for queued callers (single-port or list)
    batches: int = 0
    #: of those, requests that served two or more callers
    shared: int = 0
    #: callers served by `batches` (cancelled callers left out)
    batched_callers: int = 0
    #: distinct ids asked for in `batches`
    batched_ids: int = 0
    #: the most distinct ids one request carried
    max_ids: int = 0
    #: queued callers that stopped waiting (cancelled) before their answer
    abandoned: int = 0
    in_flight: int = 0
    queued: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "direct": self.direct,
            "batches": self.batches,
            "shared": self.shared,
            "batched_callers": self.batched_callers,
            "batched_ids": self.batched_ids,
            "max_ids": self.max_ids,
            "abandoned": self.abandoned,
            "in_flight": self.in_flight,
            "queued": self.queued,
        }


@dataclass(eq=False)
class _Waiter(Generic[T]):
    port_id: str
    future: asyncio.Future[T]
    caller: object | None
    since: float


@dataclass(eq=False)
class _Lane(Generic[T]):
    """One kind of read: its queue, its requests in flight, its counters."""

    name: str
    one: Callable[[str], Awaitable[T]]  # the single-port request
    many: Callable[[list[str]], Awaitable[dict[str, T | BaseException]]]  # one list request
    owner: Coalescer
    stats: LaneStats = field(default_factory=LaneStats)
    queue: deque[_Waiter[T]] = field(default_factory=deque)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def call(self, port_id: str) -> T:
        _check_id(port_id)
        self._prune()
        if self.stats.in_flight < self.owner.max_in_flight and not self.queue:
            self.stats.in_flight += 1
            self.stats.direct += 1
            try:
                return await self.one(port_id)
            finally:
                self.stats.in_flight -= 1
                self._flush()
        loop = asyncio.get_running_loop()
        waiter: _Waiter[T] = _Waiter(
            port_id, loop.create_future(), self.owner.attribution.caller(), time.monotonic()
        )
        self.queue.append(waiter)
        self.stats.queued = len(self.queue)
        self._flush()  # a slot may be free (the queue held only abandoned callers)
        try:
            return await waiter.future  # cancelling the caller cancels only its own future
        except asyncio.CancelledError:
            if waiter.future.cancelled():
                self.stats.abandoned += 1
            raise

    def _prune(self) -> None:
        """Drop abandoned callers from the head of the queue."""
        while self.queue and self.queue[0].future.done():
            self.queue.popleft()
        self.stats.queued = len(self.queue)

    def _take(self, limit: int) -> dict[str, list[_Waiter[T]]]:
        """The oldest live callers, up to `limit` distinct ids (FIFO: stops at the first
        caller whose id would make one too many)."""
        batch: dict[str, list[_Waiter[T]]] = {}
        while self.queue:
            w = self.queue[0]
            if w.future.done():
                self.queue.popleft()
                continue
            if w.port_id not in batch and len(batch) >= limit:
                break
            self.queue.popleft()
            batch.setdefault(w.port_id, []).append(w)
        self.stats.queued = len(self.queue)
        return batch

    def _flush(self) -> None:
        """Send queued callers while slots are free (synchronous: no await)."""
        limit = max(1, int(self.owner.source.id_chunk))
        while self.stats.in_flight < self.owner.max_in_flight:
            batch = self._take(limit)
            if not batch:
                return
            self._send(batch)

    def _send(self, batch: dict[str, list[_Waiter[T]]]) -> None:
        attribution = self.owner.attribution
        now = time.monotonic()
        waiters = [w for ws in batch.values() for w in ws]
        callers: list[object] = []
        for w in waiters:
            if w.caller is not None:
                callers.append(w.caller)
                with _hook_errors("waited"):
                    attribution.waited(w.caller, max(0.0, now - w.since))
        ctx = contextvars.Context()  # the batch belongs to none of its callers' tasks
        with _hook_errors("sending_for"):
            ctx.run(attribution.sending_for, callers)
        s = self.stats
        s.in_flight += 1
        s.batches += 1
        s.shared += int(len(waiters) > 1)
        s.batched_callers += len(waiters)
        s.batched_ids += len(batch)
        s.max_ids = max(s.max_ids, len(batch))
        task = asyncio.get_running_loop().create_task(
            self._run(batch), name=f"coalesce-{self.name}", context=ctx
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, batch: dict[str, list[_Waiter[T]]]) -> None:
        ids = list(batch)
        try:
            try:
                if len(ids) == 1:  # the single-port request, exactly as sent uncoalesced
                    answers: dict[str, T | BaseException] = {ids[0]: await self.one(ids[0])}
                else:
                    answers = await self.many(ids)
            except Exception as exc:  # the request failed: every caller gets its error
                _fail(batch, exc)
                return
            except BaseException:  # cancelled (aclose) or the process is going down
                _fail(batch, _abandoned())
                raise
            for port_id, waiters in batch.items():
                answer = answers.get(port_id)
                if answer is None:  # cannot happen: `many` answers every id
                    answer = Unavailable(f"no answer for {port_id} in a coalesced read")
                for w in waiters:
                    if w.future.done():
                        continue  # that caller stopped waiting
                    if isinstance(answer, BaseException):
                        w.future.set_exception(answer)
                    else:
                        w.future.set_result(self.owner.copy(answer))
        finally:
            self.stats.in_flight -= 1
            self._flush()


class Coalescer:
    """Coalesced `show_port` and floating-IP reads over `source` (module docstring).

    `max_in_flight` bounds the requests of each kind in flight at once (direct and
    batched alike); `attribution` names the callers a batch is sent for.
    """

    def __init__(
        self,
        source: PortSource,
        *,
        max_in_flight: int = 1,
        attribution: Attribution | None = None,
    ) -> None:
        if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int):
            raise TypeError("max_in_flight must be an int")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        self.source = source
        self.max_in_flight = max_in_flight
        self.attribution: Attribution = attribution if attribution is not None else NoAttribution()
        self._ports: _Lane[Port] = _Lane("show_port", self._one_port, self._many_ports, self)
        self._fips: _Lane[list[FloatingIP]] = _Lane(
            "floating_ips", self._one_fips, self._many_fips, self
        )

    # -- PortReads ---------------------------------------------------------------------

    async def show_port(self, port_id: str) -> Port:
        """The port, as `show_port(port_id)` answers it."""
        return await self._ports.call(port_id)

    async def port_floating_ips(self, port_id: str) -> list[FloatingIP]:
        """The port's floating IPs, as `list_floating_ips([port_id])` answers them."""
        return await self._fips.call(port_id)

    # -- counters, life ----------------------------------------------------------------

    def stats(self) -> dict[str, dict[str, int]]:
        """Per kind (`show_port`, `floating_ips`): see `LaneStats`."""
        return {lane.name: lane.stats.to_dict() for lane in (self._ports, self._fips)}

    async def aclose(self) -> None:
        """Cancel the batches in flight (their callers get `Unavailable`) and fail the
        queued callers likewise."""
        gone = _abandoned()
        tasks: list[asyncio.Task[None]] = []
        for lane in (self._ports, self._fips):
            tasks.extend(lane.tasks)
            while lane.queue:
                w = lane.queue.popleft()
                if not w.future.done():
                    w.future.set_exception(gone)
            lane.stats.queued = 0
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    @staticmethod
    def copy(answer: T) -> T:
        """What one caller gets: its own list (ports are frozen: shared as they are)."""
        if isinstance(answer, list):
            return list(answer)  # type: ignore[return-value]
        return answer

    # -- the requests --------------------------------------------------------------------

    async def _one_port(self, port_id: str) -> Port:
        return await self.source.show_port(port_id)

    async def _many_ports(self, ids: list[str]) -> dict[str, Port | BaseException]:
        by_id: dict[str, Port] = {}
        asked = set(ids)
        for port in await self.source.list_ports(ids=ids):
            if port.id in asked:
                by_id.setdefault(port.id, port)
        return {i: by_id[i] if i in by_id else _port_not_found(i) for i in ids}

    async def _one_fips(self, port_id: str) -> list[FloatingIP]:
        return await self.source.list_floating_ips([port_id])

    async def _many_fips(self, ids: list[str]) -> dict[str, list[FloatingIP] | BaseException]:
        out: dict[str, list[FloatingIP] | BaseException] = {i: [] for i in ids}
        for fip in await self.source.list_floating_ips(ids):
            mine = out.get(fip.port_id) if fip.port_id is not None else None
            if isinstance(mine, list):
                mine.append(fip)
        return out


def _check_id(port_id: Any) -> None:
    if not isinstance(port_id, str) or not port_id.strip():
        raise ValueError(f"an id must be a non-empty string, got {port_id!r}")


def _port_not_found(port_id: str) -> PortNotFound:
    """What `GET /v2.0/ports/{id}` raises for a port that does not exist."""
    return PortNotFound(
        f"Port {port_id} could not be found.",
        status=404,
        neutron_type="PortNotFound",
        call="show_port",
        method="GET",
        path=f"{API_PREFIX}/ports/{quote(port_id, safe='')}",
    )


def _abandoned() -> Unavailable:
    return Unavailable("the coalesced read was abandoned (hotport is stopping)")


def _fail(batch: dict[str, list[_Waiter[Any]]], exc: BaseException) -> None:
    for waiters in batch.values():
        for w in waiters:
            if not w.future.done():
                w.future.set_exception(exc)


@contextlib.contextmanager
def _hook_errors(hook: str) -> Iterator[None]:
    """An attribution hook's failure is logged; it never fails a read."""
    try:
        yield
    except Exception:
        log.exception("coalesce: the attribution hook %s failed", hook)
