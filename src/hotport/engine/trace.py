"""Per-operation traces: phases timed, network-service requests counted, lock waits.

Owns: `OperationTrace` (one attach, detach, event refresh, heal or recovery), the
context variables that make the current trace reachable from the network client's
observer (`observe_request`) and from the benchmark's meter (`request_traces`), the
arithmetic of sequential round trips, and `TraceSharing`: the hooks through which
`hotport.network.coalesce` records a request it sent for several operations at once.

Shared requests: a coalesced read is sent by a task of its own for every operation
waiting for it. `TraceSharing.sending_for` marks that task's context with their traces:
a request it sends is counted in each of them as a *shared* request (`shared`, not
`requests`: `requests` stays what the operation sent for itself, so the requests of all
traces still add up to the requests sent), its interval takes part in each one's round
trips, and `request_traces()` names all of them (the benchmark's `SimMeter` gives the
request's simulated delay to each). A request sent for exactly one operation is simply
that operation's own. The time an operation queued before its coalesced read was sent
is the phase `wait-coalesce` (`add_wait`).

Must never: do I/O or decide anything; a trace only records.

Concurrency: a trace belongs to one operation. Child tasks created with
`asyncio.gather`/`create_task` inherit the context, so requests they send are counted
in the operation that spawned them. Everything runs on one event loop; no locking.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol


class RequestObservation(Protocol):
    """What the network client's observers receive (hotport.network.RequestRecord)."""

    @property
    def call(self) -> str: ...

    @property
    def duration(self) -> float: ...


@dataclass(slots=True)
class Phase:
    name: str
    start: float  # seconds since the operation started
    seconds: float


@dataclass
class OperationTrace:
    kind: str
    instance_uuid: str | None = None
    port_id: str | None = None
    clock: Callable[[], float] = time.perf_counter
    started: float = 0.0
    ended: float | None = None
    phases: list[Phase] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    #: requests sent for this operation together with others (coalesced reads)
    shared: Counter[str] = field(default_factory=Counter)
    lock_wait: dict[str, float] = field(default_factory=dict)
    outcome: str = "running"
    error: str | None = None
    _intervals: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.started:
            self.started = self.clock()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = self.clock()
        try:
            yield
        finally:
            self.phases.append(Phase(name, t0 - self.started, self.clock() - t0))

    def add_request(self, call: str, duration: float) -> None:
        end = self.clock()
        self.requests[call] += 1
        self._intervals.append((end - duration, end))

    def add_shared_request(self, call: str, duration: float) -> None:
        """A request sent for this operation and others at once: it waited for it."""
        end = self.clock()
        self.shared[call] += 1
        self._intervals.append((end - duration, end))

    def add_wait(self, kind: str, seconds: float) -> None:
        """Record a wait that just ended (not for a lock) as the phase `wait-<kind>`."""
        now = self.clock() - self.started
        self.phases.append(Phase(f"wait-{kind}", max(0.0, now - seconds), seconds))

    def add_lock_wait(self, kind: str, seconds: float) -> None:
        """Record the wait for a lock just taken (also as a phase, `lock-<kind>`)."""
        self.lock_wait[kind] = self.lock_wait.get(kind, 0.0) + seconds
        now = self.clock() - self.started
        self.phases.append(Phase(f"lock-{kind}", max(0.0, now - seconds), seconds))

    def finish(self, outcome: str, error: str | None = None) -> None:
        self.ended = self.clock()
        self.outcome = outcome
        self.error = error

    @property
    def seconds(self) -> float:
        return (self.ended if self.ended is not None else self.clock()) - self.started

    @property
    def request_count(self) -> int:
        return sum(self.requests.values())

    @property
    def shared_count(self) -> int:
        return sum(self.shared.values())

    @property
    def round_trips(self) -> int:
        """Sequential waves of requests (shared ones included): requests that overlapped
        in time count once."""
        waves = 0
        end = float("-inf")
        for start, stop in sorted(self._intervals):
            if start >= end:
                waves += 1
                end = stop
            else:
                end = max(end, stop)
        return waves

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "instance": self.instance_uuid,
            "port_id": self.port_id,
            "outcome": self.outcome,
            "error": self.error,
            "seconds": round(self.seconds, 6),
            "phases": [
                {"name": p.name, "start": round(p.start, 6), "seconds": round(p.seconds, 6)}
                for p in self.phases
            ],
            "network_requests": dict(self.requests),
            "network_request_total": self.request_count,
            "network_requests_shared": dict(self.shared),
            "network_round_trips": self.round_trips,
            "lock_wait_seconds": {k: round(v, 6) for k, v in self.lock_wait.items()},
        }


_current: ContextVar[OperationTrace | None] = ContextVar("hotport_trace", default=None)
#: the operations a request sent from this context serves together (two or more)
_sharing: ContextVar[tuple[OperationTrace, ...]] = ContextVar("hotport_trace_sharing", default=())


def current_trace() -> OperationTrace | None:
    return _current.get()


def request_traces() -> tuple[OperationTrace, ...]:
    """Every operation a request sent now is sent for: the current one, or all those
    sharing a coalesced request (none outside any operation)."""
    shared = _sharing.get()
    if shared:
        return shared
    trace = _current.get()
    return () if trace is None else (trace,)


@contextmanager
def tracing(trace: OperationTrace) -> Iterator[OperationTrace]:
    """Make `trace` the current one for this task (and the tasks it spawns)."""
    token = _current.set(trace)
    try:
        yield trace
    finally:
        _current.reset(token)


def observe_request(record: RequestObservation) -> None:
    """A network-client observer: count the attempt in the current operation's trace,
    or as a shared request in each of the traces sharing it."""
    shared = _sharing.get()
    if shared:
        for trace in shared:
            trace.add_shared_request(record.call, record.duration)
        return
    current = _current.get()
    if current is not None:
        current.add_request(record.call, record.duration)


class TraceSharing:
    """`hotport.network.coalesce.Attribution` for operation traces (module docstring)."""

    def caller(self) -> OperationTrace | None:
        """The operation calling now (in the caller's task)."""
        return _current.get()

    def waited(self, caller: object, seconds: float) -> None:
        """`caller` queued `seconds` for a coalesced read, which is being sent now."""
        if isinstance(caller, OperationTrace):
            caller.add_wait("coalesce", seconds)

    def sending_for(self, callers: Sequence[object]) -> None:
        """Run in the fresh context of the task that sends a request for `callers`."""
        traces: dict[int, OperationTrace] = {}
        for c in callers:
            if isinstance(c, OperationTrace):
                traces.setdefault(id(c), c)
        unique = tuple(traces.values())
        _current.set(unique[0] if len(unique) == 1 else None)
        _sharing.set(unique if len(unique) > 1 else ())
