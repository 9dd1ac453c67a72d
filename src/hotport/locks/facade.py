"""The locks the engine uses: `port(port_id)` and `instance_refresh(uuid)`, with wait accounting.

Owns: `Locks`, a thin layer over any `LockBackend` that turns ids into the two lock names
of the design (`port_lock_name`, `refresh_lock_name`) and accounts for waits. A wait is
measured with the facade's own injectable monotonic clock, from asking to holding, so it
includes any backend round trip; an acquisition the backend reports as not waited at all
(0.0) counts as exactly 0.0, so the "0" bucket means "never queued". Per kind ("port",
"refresh"): count, total, max, mean, a fixed-bucket histogram, the tries and busy answers
of the non-waiting variants, and acquisitions abandoned while waiting (cancelled or
failed). An optional observer `on_wait(kind, seconds)` sees every completed wait (the hook
for Prometheus).

Must never: know what a lock protects, hold a lock itself, or let an observer's failure
break a lock (observer exceptions are logged and swallowed; the lock is held regardless).

Concurrency: one event loop. Port locks and refresh locks are different names, so a port
operation never waits for a refresh of its instance, and two ports never wait for each
other; only the same name serializes. Statistics are updated without awaiting, so they are
consistent on one loop.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

from hotport.locks.base import LockBackend, LockKind, port_lock_name, refresh_lock_name

__all__ = ["DEFAULT_BUCKETS", "Locks", "WaitObserver", "WaitStats"]

log = logging.getLogger(__name__)

# Upper bounds (seconds, inclusive) of the wait histogram; +Inf is always added.
DEFAULT_BUCKETS: tuple[float, ...] = (0.0, 0.001, 0.01, 0.1, 1.0, 10.0)

WaitObserver = Callable[[LockKind, float], None]


def _label(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else format(bound, "g")


class WaitStats:
    """Wait accounting of one lock kind. Buckets are cumulative (Prometheus `le`)."""

    __slots__ = (
        "_bounds",
        "_counts",
        "abandoned",
        "busy",
        "count",
        "max_wait",
        "total_wait",
        "tries",
    )

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds: tuple[float, ...] = (*bounds, math.inf)
        self._counts = [0] * len(self._bounds)  # per bucket, not cumulative
        self.count = 0
        self.total_wait = 0.0
        self.max_wait = 0.0
        self.abandoned = 0
        self.tries = 0
        self.busy = 0

    def record(self, seconds: float) -> None:
        self.count += 1
        self.total_wait += seconds
        if seconds > self.max_wait:
            self.max_wait = seconds
        for i, bound in enumerate(self._bounds):
            if seconds <= bound:
                self._counts[i] += 1
                break

    def as_dict(self) -> dict[str, Any]:
        buckets: dict[str, int] = {}
        running = 0
        for bound, n in zip(self._bounds, self._counts, strict=True):
            running += n
            buckets[_label(bound)] = running
        return {
            "count": self.count,
            "total_wait": self.total_wait,
            "max_wait": self.max_wait,
            "mean_wait": self.total_wait / self.count if self.count else 0.0,
            "buckets": buckets,
            "abandoned": self.abandoned,
            "tries": self.tries,
            "busy": self.busy,
        }


class Locks:
    """`port()` / `instance_refresh()` over a `LockBackend`, with wait accounting."""

    def __init__(
        self,
        backend: LockBackend,
        clock: Callable[[], float] = time.monotonic,
        *,
        on_wait: WaitObserver | None = None,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        bounds = tuple(float(b) for b in buckets)
        if any(b < 0 or math.isnan(b) or math.isinf(b) for b in bounds):
            raise ValueError(f"bucket bounds must be finite and >= 0: {bounds}")
        if list(bounds) != sorted(set(bounds)):
            raise ValueError(f"bucket bounds must be strictly increasing: {bounds}")
        self.backend = backend
        self.on_wait = on_wait
        self._clock = clock
        self._stats: dict[LockKind, WaitStats] = {
            "port": WaitStats(bounds),
            "refresh": WaitStats(bounds),
        }

    # -- the engine's locks ---------------------------------------------------------------

    def port(self, port_id: str) -> AbstractAsyncContextManager[float]:
        """Hold `port-{port_id}` for the block; the value is the seconds waited."""
        return _Timed(self, "port", self.backend.lock(port_lock_name(_check(port_id))))

    def instance_refresh(self, instance_uuid: str) -> AbstractAsyncContextManager[float]:
        """Hold `refresh_cache-{instance_uuid}` for the block; the value is the seconds
        waited. Port locks never wait for it."""
        name = refresh_lock_name(_check(instance_uuid))
        return _Timed(self, "refresh", self.backend.lock(name))

    def try_port(self, port_id: str) -> AbstractAsyncContextManager[bool]:
        """Take `port-{port_id}` only if free (never waits); the value says if it was."""
        return _Tried(self, "port", self.backend.try_lock(port_lock_name(_check(port_id))))

    def try_instance_refresh(self, instance_uuid: str) -> AbstractAsyncContextManager[bool]:
        """Take `refresh_cache-{instance_uuid}` only if free; the value says if it was."""
        name = refresh_lock_name(_check(instance_uuid))
        return _Tried(self, "refresh", self.backend.try_lock(name))

    def port_held(self, port_id: str) -> bool:
        return self.backend.held(port_lock_name(_check(port_id)))

    def refresh_held(self, instance_uuid: str) -> bool:
        return self.backend.held(refresh_lock_name(_check(instance_uuid)))

    # -- accounting -----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """`{"port": {...}, "refresh": {...}}`: count, total_wait, max_wait, mean_wait,
        cumulative buckets keyed by upper bound ("0", "0.001", ..., "+Inf"), abandoned,
        tries, busy."""
        return {kind: s.as_dict() for kind, s in self._stats.items()}

    def _waited(self, kind: LockKind, started: float, *, queued: bool) -> float:
        seconds = max(0.0, self._clock() - started) if queued else 0.0
        self._stats[kind].record(seconds)
        observer = self.on_wait
        if observer is not None:
            try:
                observer(kind, seconds)
            except Exception:
                log.exception("lock wait observer failed (kind=%s)", kind)
        return seconds


def _check(ident: str) -> str:
    if not isinstance(ident, str) or not ident:
        raise ValueError(f"a lock needs a non-empty id, got {ident!r}")
    return ident


class _Timed:
    """Measures the wait of one backend acquisition and records it (single use)."""

    __slots__ = ("_inner", "_kind", "_locks")

    def __init__(
        self, locks: Locks, kind: LockKind, inner: AbstractAsyncContextManager[float]
    ) -> None:
        self._locks = locks
        self._kind = kind
        self._inner = inner

    async def __aenter__(self) -> float:
        locks = self._locks
        started = locks._clock()
        try:
            backend_waited = await self._inner.__aenter__()
        except BaseException:
            locks._stats[self._kind].abandoned += 1
            raise
        try:
            return locks._waited(self._kind, started, queued=backend_waited > 0.0)
        except BaseException as exc:  # never leave the lock held behind a raised enter
            await self._inner.__aexit__(type(exc), exc, exc.__traceback__)
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._inner.__aexit__(exc_type, exc, tb)


class _Tried:
    """Counts the tries and the busy answers of one non-waiting acquisition."""

    __slots__ = ("_inner", "_kind", "_locks")

    def __init__(
        self, locks: Locks, kind: LockKind, inner: AbstractAsyncContextManager[bool]
    ) -> None:
        self._locks = locks
        self._kind = kind
        self._inner = inner

    async def __aenter__(self) -> bool:
        taken = await self._inner.__aenter__()
        stats = self._locks._stats[self._kind]
        stats.tries += 1
        if not taken:
            stats.busy += 1
        return taken

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._inner.__aexit__(exc_type, exc, tb)
