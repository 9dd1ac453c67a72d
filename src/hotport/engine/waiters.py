"""Waiting for the network service's external events (network-vif-plugged, ...).

Owns: `ExternalEvent` (one event as Neutron's notifier sends it) and `EventWaiters`, where
an operation registers the events it expects BEFORE it acts (vif-plugged can reach us
before the PUT that caused it returns), then awaits them with a deadline.

Must never: block: `resolve` is synchronous and cheap, called for every event.

Concurrency: one event loop; futures are resolved at most once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

EventName = Literal[
    "network-changed", "network-vif-plugged", "network-vif-unplugged", "network-vif-deleted"
]
EVENT_NAMES: tuple[str, ...] = (
    "network-changed",
    "network-vif-plugged",
    "network-vif-unplugged",
    "network-vif-deleted",
)


@dataclass(frozen=True, slots=True)
class ExternalEvent:
    name: str
    server_uuid: str
    tag: str | None = None
    status: str = "completed"


_Key = tuple[str, str | None, str]


class EventWaiters:
    def __init__(self) -> None:
        self._waiting: dict[_Key, list[asyncio.Future[ExternalEvent]]] = {}

    def expect(
        self, instance_uuid: str, port_id: str | None, name: str
    ) -> asyncio.Future[ExternalEvent]:
        """Register interest now; await the future (with a deadline) later."""
        fut: asyncio.Future[ExternalEvent] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault((instance_uuid, port_id, name), []).append(fut)
        return fut

    def discard(self, instance_uuid: str, port_id: str | None, name: str) -> None:
        for fut in self._waiting.pop((instance_uuid, port_id, name), []):
            fut.cancel()

    def resolve(self, event: ExternalEvent) -> int:
        """Wake whoever waits for this event; returns how many were woken."""
        futs = self._waiting.pop((event.server_uuid, event.tag, event.name), [])
        woken = 0
        for fut in futs:
            if not fut.done():
                fut.set_result(event)
                woken += 1
        return woken

    def __len__(self) -> int:
        return sum(len(v) for v in self._waiting.values())
