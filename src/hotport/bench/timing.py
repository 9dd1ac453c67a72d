"""Article-equivalent seconds, and the small statistics the benchmark reports.

Owns: `SimMeter`, the transport between hotport's network client and the in-process
simulator, which records, per operation trace (child tasks included), every request's
interval and the simulated delay inside it (the time it queued for a worker plus its
service time, as the simulator itself recorded them), and adds up the CPU time spent
while a request is inside the simulator (so that the simulator's CPU can be told apart
from hotport's own); `equivalent` (one operation's time with the simulated peers at full
scale); the percentiles.

Article-equivalent seconds (the approach of `hotport demo`: scale back up only what the
simulation scaled down, keep the local work as measured): the simulator's delays and the
in-memory hypervisor's are divided by `time_scale`; SQLite, hotport's and the
simulator's own CPU, and the event loop are not. An operation's *scaled* time is the
union of the intervals in which it waited for a simulated delay of one of its own
requests (a coalesced request sent for several operations at once is each one's own
here: `request_traces()` names them all, and each gets its interval and delay), for a
lock (the holder's work is mostly scaled time too), in the queue of a coalesced read
(phase `wait-coalesce`: the request ahead of it is mostly scaled time too), or for the
in-memory hypervisor's plug/unplug (a real hypervisor is not scaled). Then

    equivalent = scaled / time_scale + (seconds - scaled)

Must never: change what it observes (the simulator's request log is only read).

Concurrency: one event loop; the simulator runs in the calling task (httpx's ASGI
transport), so the delay a request met is handed back through a context variable.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from typing import Any

import httpx

from hotport.engine.trace import OperationTrace, request_traces

__all__ = [
    "SimMeter",
    "equivalent",
    "percentile",
    "summary",
    "union_length",
]

#: phases whose time is the in-memory hypervisor's (scaled like the network)
HYPERVISOR_PHASES = frozenset({"plug", "unplug"})
#: phase prefixes of waits for others' (mostly scaled) work: locks, coalesced reads
WAIT_PHASE_PREFIXES = ("lock-", "wait-")

#: (start, end, simulated delay) of one request, perf_counter seconds
Request = tuple[float, float, float]

_delays: ContextVar[list[float] | None] = ContextVar("hotport_bench_sim_delays", default=None)


def _hook_request_log(sim: Any) -> None:
    """Have the simulator's request log hand each request's queued + service seconds to
    the `SimMeter` call that sent it (idempotent)."""
    log = sim.stats
    if getattr(log, "_bench_hooked", False):
        return
    original = log.record

    def record(**kw: Any) -> Any:
        rec = original(**kw)
        slot = _delays.get()
        if slot is not None:
            slot.append(float(rec.queued) + float(rec.service))
        return rec

    log.record = record
    log._bench_hooked = True


class SimMeter(httpx.AsyncBaseTransport):
    """Wraps the transport to the in-process simulator (see the module docstring)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.cpu = 0.0
        self._depth = 0
        self._since = 0.0
        self._by_trace: dict[int, tuple[OperationTrace, list[Request]]] = {}

    def install(self, sim: Any) -> None:
        _hook_request_log(sim)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._depth == 0:
            self._since = time.process_time()
        self._depth += 1
        slot: list[float] = []
        token = _delays.set(slot)
        start = time.perf_counter()
        try:
            response = await self.inner.handle_async_request(request)
            await response.aread()  # the body is produced inside the simulator
            return response
        finally:
            end = time.perf_counter()
            _delays.reset(token)
            self._depth -= 1
            if self._depth == 0:
                self.cpu += time.process_time() - self._since
            # every operation the request was sent for: one, or all sharing a coalesced read
            for trace in request_traces():
                entry = self._by_trace.get(id(trace))
                if entry is None or entry[0] is not trace:
                    entry = (trace, [])
                    self._by_trace[id(trace)] = entry
                entry[1].append((start, end, min(sum(slot), end - start)))

    def pop(self, trace: OperationTrace) -> list[Request]:
        """The requests `trace`'s operation sent (forgotten here)."""
        entry = self._by_trace.pop(id(trace), None)
        if entry is None or entry[0] is not trace:
            return []
        return entry[1]

    def clear(self) -> None:
        self._by_trace.clear()

    async def aclose(self) -> None:
        await self.inner.aclose()


def union_length(spans: Iterable[tuple[float, float]]) -> float:
    total = 0.0
    end = float("-inf")
    for start, stop in sorted(spans):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def scaled_spans(
    trace: OperationTrace, requests: Sequence[Request], *, real_hypervisor: bool
) -> list[tuple[float, float]]:
    # a request's simulated delay ends just before its answer is rendered and sent back
    spans = [(max(start, end - delay), end) for start, end, delay in requests if delay > 0]
    for p in trace.phases:
        if p.name.startswith(WAIT_PHASE_PREFIXES) or (
            p.name in HYPERVISOR_PHASES and not real_hypervisor
        ):
            start = trace.started + p.start
            spans.append((start, start + p.seconds))
    return spans


def equivalent(
    trace: OperationTrace,
    requests: Sequence[Request],
    time_scale: float,
    *,
    real_hypervisor: bool = False,
) -> float:
    """The operation's seconds with the simulated peers at full scale (module docstring)."""
    total = trace.seconds
    spans = scaled_spans(trace, requests, real_hypervisor=real_hypervisor)
    scaled = min(union_length(spans), total)
    return scaled / time_scale + (total - scaled)


def lock_wait(trace: OperationTrace) -> float:
    return sum(trace.lock_wait.values())


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "median": float("nan"), "p95": float("nan"), "p99": float("nan")}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "mean": statistics.fmean(values),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "min": min(values),
        "max": max(values),
    }
