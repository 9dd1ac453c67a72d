"""The simulator's Neutron-to-compute event notifier, batched like the real one.

Owns: the four event shapes Neutron sends to Nova (`network_changed`, `vif_plugged`,
`vif_unplugged`, `vif_deleted`), the batching sender (`BatchNotifier`) and its counters.

Never: retries a delivered batch, re-sends a lost event, blocks the caller of `emit`, or
decides WHEN an event is due (the simulator's handlers do, following peers/neutron/README.md).

Concurrency: one asyncio event loop, not thread-safe. `emit` is synchronous and must be called
on the loop; it starts at most one sender task. The sender runs the loop of neutron's
``BatchNotifier`` (neutron/notifiers/batch_notifier.py)::

    while queue not empty:
        POST everything queued as ONE request
        sleep send_events_interval (through the Clock)

so the first event after an idle period is POSTed at once, events queued during the interval
go out together when it ends, and after an interval with nothing queued the sender goes idle.
Unlike the real one (a thread that sees the lock still held exits and strands its event until
the next one), checking the queue and going idle happen in one loop step, so nothing strands.
One notifier is one API worker's stream; the real server has one per worker process.

Delivery: ``POST {url}/os-server-external-events`` with ``{"events": [...]}`` and the headers
python-novaclient sends with keystoneauth's ``none`` auth plugin. Nothing is retried, as in
Neutron: a non-2xx answer, a timeout or any other error is logged at WARNING and the batch is
dropped. The one exception is a connection failure (the request never reached the server),
which is tried once more immediately; real Neutron retries the connection for about 1 s with
tenacity and then drops the batch. A 2xx answer whose per-event ``code`` is not 200 is logged at
WARNING and counted in ``events_rejected``, as Neutron does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import httpx

from hotport.sim.latency import Clock

__all__ = [
    "NOVA_HEADERS",
    "BatchNotifier",
    "network_changed",
    "vif_deleted",
    "vif_plugged",
    "vif_unplugged",
]

log = logging.getLogger(__name__)

EVENTS_PATH = "/os-server-external-events"

# What neutron-server 29 sends (python-novaclient over keystoneauth1, auth_type = none),
# recorded verbatim by peers/neutron/fake_nova.py; X-OpenStack-Request-ID is added per batch.
NOVA_HEADERS: dict[str, str] = {
    "Content-Type": "application/json",
    "User-Agent": "python-novaclient",
    "X-Auth-Token": "notused",
    "X-OpenStack-Nova-API-Version": "2.1",
}


def network_changed(server_uuid: str, port_id: str) -> dict[str, str]:
    return {"name": "network-changed", "server_uuid": server_uuid, "tag": port_id}


def vif_plugged(
    server_uuid: str, port_id: str, status: Literal["completed", "failed"] = "completed"
) -> dict[str, str]:
    return {
        "name": "network-vif-plugged",
        "server_uuid": server_uuid,
        "status": status,
        "tag": port_id,
    }


def vif_unplugged(server_uuid: str, port_id: str) -> dict[str, str]:
    return {
        "name": "network-vif-unplugged",
        "server_uuid": server_uuid,
        "status": "completed",
        "tag": port_id,
    }


def vif_deleted(server_uuid: str, port_id: str) -> dict[str, str]:
    return {"name": "network-vif-deleted", "server_uuid": server_uuid, "tag": port_id}


def _check_interval(seconds: float) -> float:
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"send_events_interval must be a finite number >= 0, got {seconds!r}")
    return float(seconds)


class BatchNotifier:
    """Posts compute events like Neutron's nova notifier (see the module docstring)."""

    def __init__(
        self,
        url: str | None,
        interval: float,
        clock: Clock,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        history: int = 50,
    ) -> None:
        self._url = url
        self._interval = _check_interval(interval)
        self._clock = clock
        self._transport = transport
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._pending: list[dict[str, str]] = []
        self._sending = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()  # replaced (after being set) on every state change
        self._batches: deque[dict[str, Any]] = deque(maxlen=history)
        self._recent: deque[tuple[float, dict[str, str]]] = deque(maxlen=1000)
        self._events_emitted = 0
        self._events_unsent = 0
        self._batches_sent = 0
        self._events_sent = 0
        self._batches_failed = 0
        self._events_dropped = 0
        self._events_rejected = 0

    # -- configuration ---------------------------------------------------------------------

    @property
    def url(self) -> str | None:
        return self._url

    @property
    def interval(self) -> float:
        return self._interval

    def set_url(self, url: str | None) -> None:
        """Change the target; None disables sending (queued events are then dropped)."""
        self._url = url

    def set_interval(self, seconds: float) -> None:
        """Change send_events_interval; a sleep already in progress keeps its length."""
        self._interval = _check_interval(seconds)

    # -- emitting --------------------------------------------------------------------------

    def emit(self, events: Sequence[Mapping[str, str]]) -> None:
        """Queue events for the next batch; never blocks. Must be called on the event loop."""
        batch = [dict(event) for event in events]
        if not batch:
            return
        now = self._clock.monotonic()
        self._events_emitted += len(batch)
        self._recent.extend((now, event) for event in batch)
        if self._closed:
            log.warning("event notifier closed: dropping %d event(s)", len(batch))
            self._events_dropped += len(batch)
            return
        if self._url is None:
            self._events_unsent += len(batch)  # recorded only: the notifier is disabled
            return
        self._pending.extend(batch)
        self._poke()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="hotport-sim-event-notifier"
            )

    def recorded(self) -> list[tuple[float, dict[str, str]]]:
        """The last emitted events (sent or not) with their monotonic emit time."""
        return [(t, dict(event)) for t, event in self._recent]

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- the sender ------------------------------------------------------------------------

    def _poke(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _run(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            self._sending = True
            self._poke()
            try:
                await self._send(batch)
            finally:
                self._sending = False
                self._poke()
            await self._clock.sleep(self._interval)

    async def _send(self, batch: list[dict[str, str]]) -> None:
        url = self._url
        if url is None:
            self._record(batch, status=None, error="notifier disabled")
            log.warning("event notifier disabled: dropping %d queued event(s)", len(batch))
            return
        endpoint = url.rstrip("/") + EVENTS_PATH
        headers = {**NOVA_HEADERS, "X-OpenStack-Request-ID": f"req-{uuid.uuid4()}"}
        content = json.dumps({"events": batch}).encode()
        if self._client is None:
            self._client = httpx.AsyncClient(transport=self._transport, timeout=self._timeout)
        response: httpx.Response | None = None
        error: str | None = None
        for attempt in (1, 2):
            try:
                response = await self._client.post(endpoint, content=content, headers=headers)
                break
            except httpx.ConnectError as exc:
                error = f"ConnectError: {exc}"
                if attempt == 1:
                    log.info("event notifier: cannot connect to %s, trying once more", endpoint)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
            except Exception as exc:
                log.exception("event notifier: unexpected error posting to %s", endpoint)
                error = f"{type(exc).__name__}: {exc}"
                break
        if response is None:
            log.warning(
                "event notifier: POST %s failed (%s); dropping %d event(s)",
                endpoint,
                error,
                len(batch),
            )
            self._record(batch, status=None, error=error)
            return
        if not response.is_success:
            log.warning(
                "event notifier: POST %s answered %d; dropping %d event(s)",
                endpoint,
                response.status_code,
                len(batch),
            )
            self._record(batch, status=response.status_code, error=f"HTTP {response.status_code}")
            return
        self._record(batch, status=response.status_code, error=None)
        self._check_codes(response)

    def _check_codes(self, response: httpx.Response) -> None:
        try:
            answered = response.json()["events"]
        except (ValueError, KeyError, TypeError):
            log.error("event notifier: answer is not {'events': [...]}: %r", response.text[:200])
            return
        if not isinstance(answered, list):
            log.error("event notifier: answer's 'events' is not a list: %r", answered)
            return
        for event in answered:
            code = event.get("code") if isinstance(event, dict) else None
            if code != 200:
                self._events_rejected += 1
                log.warning("event notifier: compute answered %r for event %r", code, event)

    def _record(
        self, batch: list[dict[str, str]], *, status: int | None, error: str | None
    ) -> None:
        if error is None:
            self._batches_sent += 1
            self._events_sent += len(batch)
        else:
            self._batches_failed += 1
            self._events_dropped += len(batch)
        self._batches.append(
            {
                "time": self._clock.monotonic(),
                "events": len(batch),
                "status": status,
                "error": error,
            }
        )

    # -- waiting and shutdown --------------------------------------------------------------

    async def flush(self) -> None:
        """Wait until nothing is queued and no POST is in flight.

        Events queued while the sender sleeps its interval are sent when the interval ends, so
        with a `FakeClock` advance the clock (from another task) for this to return.
        """
        while self._pending or self._sending:
            await self._changed.wait()

    async def aclose(self) -> None:
        """Stop the sender; send what is still queued once, right away, then close the client.

        A POST in flight is allowed to finish (it is bounded by `timeout`). Events emitted
        after this are recorded and counted as dropped.
        """
        if self._closed:
            return
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            while self._sending:
                await self._changed.wait()
            task.cancel()
            await asyncio.wait([task])
        self._task = None
        if self._pending:
            batch, self._pending = self._pending, []
            self._sending = True
            try:
                await self._send(batch)
            finally:
                self._sending = False
                self._poke()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "url": self._url,
            "enabled": self._url is not None and not self._closed,
            "interval": self._interval,
            "pending": len(self._pending),
            "sending": self._sending,
            "events_emitted": self._events_emitted,
            "events_unsent": self._events_unsent,
            "batches_sent": self._batches_sent,
            "events_sent": self._events_sent,
            "batches_failed": self._batches_failed,
            "events_dropped": self._events_dropped,
            "events_rejected": self._events_rejected,
            "last_batches": list(self._batches),
        }
