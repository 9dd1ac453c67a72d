"""The simulated L2 agent: wires bound ports and reports them ACTIVE after a delay.

Owns: one sleeping task per port binding to be wired; when its delay (through the `Clock`)
has passed, it asks the state to set the port ACTIVE (`SimState.agent_port_up`, which refuses
if the port was unbound, rebound or deleted meanwhile) and hands the resulting events
(``network-vif-plugged``) to the emit callback.

Never: decides port status rules (state.py does), sends events itself, or touches HTTP.

Concurrency: one asyncio event loop. Tasks are created on the running loop by `port_bound`,
called from the request handler. `aclose` cancels what is pending.

Unbinding is not the agent's business here: the state sets an ACTIVE port DOWN in the same
request that unbinds it (what ML2 does), and that sends ``network-vif-unplugged`` only if the
port is still a compute port after the update (clearing device_id at the same time sends
nothing but, as for any update, no ``network-changed`` either).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from .latency import Clock
from .state import Event, SimState

__all__ = ["Agent"]

log = logging.getLogger(__name__)


class Agent:
    def __init__(
        self,
        state: SimState,
        clock: Clock,
        emit: Callable[[Sequence[Event]], None],
        delay: float | None,
    ) -> None:
        self._state = state
        self._clock = clock
        self._emit = emit
        self.delay = delay
        self._tasks: set[asyncio.Task[None]] = set()
        self.activated = 0
        self.skipped = 0

    def set_state(self, state: SimState) -> None:
        self._state = state

    def port_bound(self, port_id: str, generation: int) -> None:
        """A port was (re)bound to a host: wire it after the delay (never if delay is None)."""
        if self.delay is None:
            return
        task = asyncio.get_running_loop().create_task(
            self._wire(port_id, generation, self.delay), name=f"hotport-sim-agent-{port_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wire(self, port_id: str, generation: int, delay: float) -> None:
        await self._clock.sleep(delay)
        change = self._state.agent_port_up(port_id, generation)
        if change.items:
            self.activated += 1
            self._emit(change.events)
        else:
            self.skipped += 1

    @property
    def pending(self) -> int:
        return sum(1 for t in self._tasks if not t.done())

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def snapshot(self) -> dict[str, Any]:
        return {
            "active_delay": self.delay,
            "pending": self.pending,
            "activated": self.activated,
            "skipped": self.skipped,
        }
