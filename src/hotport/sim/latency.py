"""Latency and capacity model of the Neutron simulator.

Owns: the clocks (`SystemClock`, and `FakeClock` for deterministic tests), the latency
profiles, the service-time arithmetic (`LatencyModel`) and the worker pool that turns
service times into queueing (`Capacity`).

Never: does HTTP, touches simulator state, or reads the wall clock except through a
`Clock`. Tests must never assert wall-clock timing: they drive `FakeClock` instead.

Concurrency: everything runs on one asyncio event loop and is not thread-safe. `Capacity`
hands workers over FIFO; a cancelled waiter takes nothing, a cancelled holder releases its
worker. `FakeClock.advance` must not run concurrently with another `advance`.

Calibration (nominal service time = (base + per_item * items) * time_scale; jitter multiplies
it by a uniform factor in [1 - jitter, 1 + jitter]):

* ``lan``: the real neutron-server 29 on this machine (peers/neutron/README.md, warm medians).
  read_base = 34 ms, per_item = 0.6 ms:
    GET /ports/{id}      1 item    34 + 0.6      = 34.6 ms  (measured 28 ms, range 21-53)
    GET /ports?device_id 10 items  34 + 6.0      = 40.0 ms  (measured 39 ms, range 30-69)
    GET /networks?id x3  3 items   34 + 1.8      = 35.8 ms  (measured 48 ms, range 35-56)
  One linear model cannot tell a network row (which joins subnets) from a port row, so the
  network list is under-estimated; all three stay inside the measured ranges, around the
  "reads ~40 ms" of the README. write_base = 300 ms: a one-item write costs 300.6 ms, against
  PUT unbind 200 ms, POST port 362 ms, DELETE 301 ms (mean 288 ms, median 301 ms).
  jitter = 0.25 (reads then spread 26-43 ms, writes 225-376 ms, like the measured spread).
* ``article``: the loaded service of the original report (ANCHORS.md), where the OLD design's
  attach at N = 10 issues 62 requests one after another, essentially all reads plus 1-3 writes,
  and takes about 71 s. read_base = 1.08 s, write_base = 2.18 s, per_item = 0.02 s, so a
  one-item read costs 1.10 s and a one-item write 2.20 s:
    59 reads x 1.10 + 3 writes x 2.20 = 64.9 + 6.6 = 71.5 s  (+0.7 % of 71 s)
    61 reads x 1.10 + 1 write  x 2.20 = 67.1 + 2.2 = 69.3 s  (-2.4 % of 71 s)
  (71 s / 62 requests = 1.15 s per request on average.) jitter = 0.2.
* ``instant``: all zeros, for tests.

``time_scale`` multiplies every delay (0.01 = 100x faster, same ratios).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

__all__ = [
    "PROFILES",
    "Capacity",
    "Clock",
    "FakeClock",
    "LatencyModel",
    "Profile",
    "RequestKind",
    "ServiceRecord",
    "SystemClock",
    "get_profile",
]

T = TypeVar("T")

RequestKind = Literal["read", "write"]


class Clock(Protocol):
    """Monotonic time and sleeping; the only way this package observes time."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: `time.monotonic` (the asyncio loop's default clock) and `asyncio.sleep`."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A manual clock for tests.

    `monotonic()` returns the manual time. `sleep(s)` suspends until `advance()` moves the
    time to or past its deadline. `advance()` wakes sleepers one at a time in deadline order
    (ties in the order they went to sleep), setting the time to each deadline and letting the
    loop run (`settle_steps` yields) before the next, so woken tasks run, and may go back to
    sleep, deterministically.
    """

    def __init__(self, start: float = 0.0, *, settle_steps: int = 100) -> None:
        if settle_steps < 1:
            raise ValueError("settle_steps must be >= 1")
        self._now = float(start)
        self._settle_steps = settle_steps
        self._seq = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        await fut  # a cancelled sleeper leaves a cancelled future, skipped by advance()

    @property
    def pending_sleepers(self) -> int:
        """Number of tasks currently sleeping on this clock."""
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    @property
    def next_deadline(self) -> float | None:
        """The earliest deadline of a current sleeper, or None."""
        deadlines = [d for d, _, fut in self._sleepers if not fut.done()]
        return min(deadlines) if deadlines else None

    async def run_until_idle(self) -> None:
        """Yield to the loop `settle_steps` times without moving time."""
        for _ in range(self._settle_steps):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, waking every sleeper whose deadline is reached."""
        if seconds < 0 or not math.isfinite(seconds):
            raise ValueError(f"cannot advance by {seconds!r}")
        target = self._now + seconds
        await self.run_until_idle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            if fut.done():
                continue
            self._now = max(self._now, deadline)
            fut.set_result(None)
            await self.run_until_idle()
        self._now = target
        await self.run_until_idle()

    async def advance_to_next(self) -> float | None:
        """Advance exactly to the next deadline (waking its sleepers); return it, or None."""
        deadline = self.next_deadline
        if deadline is None:
            return None
        await self.advance(max(0.0, deadline - self._now))
        return deadline


def _check_nonneg(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class Profile:
    """Service times of one kind of network service (all in seconds)."""

    name: str
    read_base: float  # service time of a read (GET) returning no item
    write_base: float  # service time of a write (POST/PUT/DELETE) changing no item
    per_item: float  # added per item in the response (reads) or changed (writes)
    jitter: float  # relative: the time is multiplied by uniform [1 - jitter, 1 + jitter]

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("profile name must not be empty")
        for field in ("read_base", "write_base", "per_item"):
            _check_nonneg(field, getattr(self, field))
        if not (0.0 <= self.jitter <= 1.0):
            raise ValueError(f"jitter must be in [0, 1], got {self.jitter!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "read_base": self.read_base,
            "write_base": self.write_base,
            "per_item": self.per_item,
            "jitter": self.jitter,
        }


PROFILES: dict[str, Profile] = {
    "instant": Profile("instant", read_base=0.0, write_base=0.0, per_item=0.0, jitter=0.0),
    "lan": Profile("lan", read_base=0.034, write_base=0.300, per_item=0.0006, jitter=0.25),
    "article": Profile("article", read_base=1.08, write_base=2.18, per_item=0.02, jitter=0.2),
}


def get_profile(name: str) -> Profile:
    """The profile called `name`; ValueError naming the known profiles otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown latency profile {name!r} (known: {known})") from None


class LatencyModel:
    """Service time of one request: pure arithmetic plus a seeded jitter draw."""

    def __init__(self, profile: Profile, time_scale: float = 1.0, seed: int | None = None) -> None:
        self.profile = profile
        self.time_scale = time_scale
        self._rng = random.Random(seed)

    @property
    def time_scale(self) -> float:
        return self._time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        _check_nonneg("time_scale", value)
        self._time_scale = float(value)

    def _raw(self, kind: RequestKind, items: int) -> float:
        if items < 0:
            raise ValueError(f"items must be >= 0, got {items}")
        if kind == "read":
            base = self.profile.read_base
        elif kind == "write":
            base = self.profile.write_base
        else:
            raise ValueError(f"unknown request kind {kind!r} (expected 'read' or 'write')")
        return base + self.profile.per_item * items

    def nominal(self, kind: RequestKind, items: int = 1) -> float:
        """Service time without jitter, time_scale applied."""
        return self._raw(kind, items) * self._time_scale

    def service_time(self, kind: RequestKind, items: int = 1) -> float:
        """Service time with jitter and time_scale applied."""
        raw = self._raw(kind, items)
        jitter = self.profile.jitter
        if jitter > 0 and raw > 0:
            raw = raw * self._rng.uniform(1.0 - jitter, 1.0 + jitter)
        return raw * self._time_scale


@dataclass(frozen=True)
class ServiceRecord:
    queued: float  # seconds waited for a free worker
    service: float  # seconds of service time


class Capacity:
    """W workers; a request waits for a free worker (FIFO), then holds it for its service time.

    `run()` calls the handler when it gets a worker (so its effect is visible at the start of
    service, as in a real server where the database commit precedes the response), then holds
    the worker for the service time. A request cancelled while holding a worker (the client gave
    up) releases it; the handler's effect stays applied.
    """

    def __init__(self, model: LatencyModel, workers: int, clock: Clock) -> None:
        self._check_workers(workers)
        self._model = model
        self._workers = workers
        self._clock = clock
        self._free = workers  # may go negative after `workers` is lowered while busy
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._served = 0
        self._errors = 0
        self._cancelled = 0
        self._in_flight = 0
        self._busy_time = 0.0
        self._total_queued_time = 0.0
        self._max_queue_depth = 0

    @staticmethod
    def _check_workers(workers: int) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")

    # -- worker hand-over -------------------------------------------------------------------

    async def _acquire(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._max_queue_depth = max(self._max_queue_depth, self.queue_depth)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                # A worker was handed to us, but we were cancelled before resuming: give it back.
                self._release()
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(fut)
            raise

    def _release(self) -> None:
        self._free += 1
        self._wake()

    def _wake(self) -> None:
        while self._free > 0 and self._waiters:
            fut = self._waiters.popleft()
            if fut.done():  # cancelled waiter
                continue
            self._free -= 1
            fut.set_result(None)

    # -- the request path -------------------------------------------------------------------

    async def run(
        self, kind: RequestKind, handler: Callable[[], tuple[T, int]]
    ) -> tuple[T, ServiceRecord]:
        """Wait for a worker, call `handler()` -> (result, items), hold the worker, return.

        If the handler raises, the worker is still held for a one-item service time (a real
        server spends time on errors too), then the exception propagates.
        """
        t0 = self._clock.monotonic()
        await self._acquire()
        queued = self._clock.monotonic() - t0
        self._total_queued_time += queued
        self._in_flight += 1
        try:
            try:
                result, items = handler()
            except Exception:
                await self._hold(self._model.service_time(kind, 1))
                self._errors += 1
                raise
            service = self._model.service_time(kind, items)
            await self._hold(service)
            return result, ServiceRecord(queued=queued, service=service)
        finally:
            self._in_flight -= 1
            self._release()

    async def _hold(self, service: float) -> None:
        start = self._clock.monotonic()
        try:
            await self._clock.sleep(service)
        except asyncio.CancelledError:
            self._cancelled += 1
            self._busy_time += min(service, self._clock.monotonic() - start)
            raise
        self._busy_time += service
        self._served += 1

    # -- runtime configuration and counters ---------------------------------------------------

    def reconfigure(
        self,
        *,
        profile: Profile | None = None,
        time_scale: float | None = None,
        workers: int | None = None,
    ) -> None:
        """Change the profile, time scale or worker count at runtime.

        New service times apply to requests that start service afterwards. Raising `workers`
        immediately hands the new workers to waiting requests (FIFO); lowering it lets the
        requests in service finish, and only then does the pool shrink. Nothing is dropped.
        """
        if workers is not None:
            self._check_workers(workers)
        if time_scale is not None:
            _check_nonneg("time_scale", time_scale)
        if profile is not None:
            self._model.profile = profile
        if time_scale is not None:
            self._model.time_scale = time_scale
        if workers is not None:
            self._free += workers - self._workers
            self._workers = workers
            self._wake()

    @property
    def model(self) -> LatencyModel:
        return self._model

    @property
    def workers(self) -> int:
        return self._workers

    @property
    def served(self) -> int:
        """Requests that completed their service time (including handler errors)."""
        return self._served

    @property
    def errors(self) -> int:
        return self._errors

    @property
    def cancelled(self) -> int:
        """Requests cancelled while holding a worker."""
        return self._cancelled

    @property
    def in_flight(self) -> int:
        """Requests holding a worker now."""
        return self._in_flight

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a worker now."""
        return sum(1 for fut in self._waiters if not fut.done())

    @property
    def max_queue_depth(self) -> int:
        return self._max_queue_depth

    @property
    def busy_time(self) -> float:
        """Sum of service times held (the elapsed part for cancelled requests)."""
        return self._busy_time

    @property
    def total_queued_time(self) -> float:
        return self._total_queued_time

    def snapshot(self) -> dict[str, Any]:
        return {
            "profile": self._model.profile.to_dict(),
            "time_scale": self._model.time_scale,
            "workers": self._workers,
            "in_flight": self._in_flight,
            "queue_depth": self.queue_depth,
            "max_queue_depth": self._max_queue_depth,
            "served": self._served,
            "errors": self._errors,
            "cancelled": self._cancelled,
            "busy_time": self._busy_time,
            "total_queued_time": self._total_queued_time,
        }
