"""Background work of the engine: event refreshes, coalesced per key, and their tasks.

Owns: the set of background tasks (so that `drain` can wait for quiet and `close` can
stop them) and the coalescing rule of event work: per key (a port), at most one task
waiting to start and one running. A burst of events for one port while a refresh is
waiting yields that one refresh; an event arriving while it runs queues exactly one more
(the running refresh may have read the port before the change the event announces).

Must never: know what the work is (it receives coroutine factories).

Concurrency: one event loop; no awaits between checking and updating `_pending`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger("hotport.engine.background")

#: a unit of keyed work: called with `started`, which it must call once it holds the
#: key's lock (from then on, new submissions for the key make a new task)
Work = Callable[[Callable[[], None]], Awaitable[None]]


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending: dict[str, asyncio.Task[Any]] = {}
        self.submitted = 0
        self.coalesced = 0
        self.failed = 0

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def submit(self, key: str, work: Work) -> bool:
        """Run `work` for `key` unless a task for it is already waiting to start.
        Returns False when coalesced into the waiting one."""
        self.submitted += 1
        if key in self._pending:
            self.coalesced += 1
            return False

        async def run() -> None:
            def started() -> None:
                if self._pending.get(key) is task:
                    del self._pending[key]

            try:
                await work(started)
            finally:
                started()

        task = self.spawn(run(), f"hotport-{key}")
        self._pending[key] = task
        return True

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.failed += 1
            log.warning(
                "background task %s failed: %s: %s", task.get_name(), type(exc).__name__, exc
            )

    @property
    def busy(self) -> int:
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait until no background work is left (work may spawn more work)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._pending.clear()
