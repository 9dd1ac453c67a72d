"""The in-process `LockBackend`: named, FIFO-fair asyncio locks created on demand.

Owns: `LocalLocks`, a map from lock name to a small entry (a "held" mark and a FIFO of
waiting futures). An entry exists exactly while someone holds the name or waits for it;
the last release drops it, so a million distinct port ids cost nothing once released.

Must never: know what a name protects, do I/O, sleep, or read the clock except through the
injected `clock` (and only when a caller really had to wait).

Concurrency: one event loop, not thread-safe. The locks are not re-entrant: a task that
takes a name it already holds waits for itself forever. Ownership is handed over on
release directly to the first waiter (no barging: a newcomer never overtakes a queued
waiter, and no wake-up can be lost between "released" and "taken"). A waiter cancelled
while queued leaves the queue at once and takes nothing; a waiter cancelled after the lock
was handed to it passes the lock on; a holder cancelled inside the block releases on exit.
`held()` is a snapshot and may be stale at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType

__all__ = ["LocalLocks"]


class _Entry:
    """One name that is held; `waiters` are queued in arrival order."""

    __slots__ = ("waiters",)

    def __init__(self) -> None:
        self.waiters: deque[asyncio.Future[None]] = deque()


class LocalLocks:
    """Keyed asyncio locks for one process (the default `LockBackend`)."""

    __slots__ = ("_clock", "_entries")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # name -> entry; a name is in the map if and only if it is held (a holder exists
        # or the lock is being handed to a waiter).
        self._entries: dict[str, _Entry] = {}

    # -- LockBackend --------------------------------------------------------------------

    def lock(self, name: str) -> _Hold:
        """Wait for `name` and hold it for the block; the value is the seconds waited
        (0.0 when it was free; otherwise measured with the injected clock)."""
        return _Hold(self, name)

    def try_lock(self, name: str) -> _TryHold:
        """Take `name` only if it is free, never waiting; the value says whether it was
        taken. The block runs either way; the release happens only if it was taken."""
        return _TryHold(self, name)

    def held(self, name: str) -> bool:
        return name in self._entries

    # -- introspection (tests, metrics) ---------------------------------------------------

    @property
    def tracked(self) -> int:
        """How many names have an entry (held, or being handed over) right now."""
        return len(self._entries)

    def waiters(self, name: str) -> int:
        """How many tasks are queued for `name` (not counting the holder)."""
        entry = self._entries.get(name)
        return 0 if entry is None else len(entry.waiters)

    # -- the mechanics --------------------------------------------------------------------

    def _take_if_free(self, name: str) -> bool:
        if name in self._entries:
            return False
        self._entries[name] = _Entry()
        return True

    async def _acquire(self, name: str) -> float:
        entry = self._entries.get(name)
        if entry is None:
            self._entries[name] = _Entry()
            return 0.0
        started = self._clock()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry.waiters.append(fut)
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                # The lock was handed to us, but we were cancelled before we could run:
                # pass it on as if we had held it for an instant.
                self._release(name)
            else:
                # Still queued (or already skipped by a release): leave no trace.
                if fut in entry.waiters:
                    entry.waiters.remove(fut)
            raise
        return max(0.0, self._clock() - started)

    def _release(self, name: str) -> None:
        entry = self._entries.get(name)
        if entry is None:
            raise RuntimeError(f"release of lock {name!r} that is not held")
        waiters = entry.waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():  # skip waiters cancelled but not yet resumed
                fut.set_result(None)  # hand over: the entry stays, now owned by the waiter
                return
        del self._entries[name]


class _Hold:
    """`async with locks.lock(name) as waited:` (single use)."""

    __slots__ = ("_locks", "_name", "_taken")

    def __init__(self, locks: LocalLocks, name: str) -> None:
        self._locks = locks
        self._name = name
        self._taken = False

    async def __aenter__(self) -> float:
        if self._taken:
            raise RuntimeError("a lock context manager cannot be entered twice")
        waited = await self._locks._acquire(self._name)
        self._taken = True
        return waited

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._taken:
            self._taken = False
            self._locks._release(self._name)


class _TryHold:
    """`async with locks.try_lock(name) as taken:` (single use)."""

    __slots__ = ("_locks", "_name", "_taken")

    def __init__(self, locks: LocalLocks, name: str) -> None:
        self._locks = locks
        self._name = name
        self._taken = False

    async def __aenter__(self) -> bool:
        self._taken = self._locks._take_if_free(self._name)
        return self._taken

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._taken:
            self._taken = False
            self._locks._release(self._name)
