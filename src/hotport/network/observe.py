"""Counting and observing the network client's HTTP attempts.

Owns: `RequestRecord` (what one HTTP attempt looked like), the `Observer` callable type,
and `RequestStats` (per-call-name counters of requests and of retries, observer fan-out,
DEBUG logging of each attempt).

Must never: see or log headers, tokens, bodies or query strings (a record carries the
path TEMPLATE, e.g. `/v2.0/ports/{port_id}`, so it is safe to export as a metric label);
let an observer's exception break a request (it is logged and swallowed).

Concurrency: single event loop. Counters are plain dicts mutated between awaits, so no
lock is needed; observers are called synchronously on the loop and must be quick.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Observer", "RequestRecord", "RequestStats"]

log = logging.getLogger("hotport.network")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One HTTP attempt.

    `status` is the HTTP status when an answer came (None otherwise); `error` is the name
    of the hotport error class the attempt maps to (None on success), `transport_error`
    the name of the httpx exception when no answer came. `attempt` starts at 1;
    `will_retry` tells whether the client is going to try again.
    """

    call: str
    method: str
    path: str
    status: int | None
    error: str | None
    attempt: int
    duration: float
    will_retry: bool = False
    transport_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


Observer = Callable[[RequestRecord], None]


class RequestStats:
    """Request and retry counters by call name, and the observers of every attempt."""

    def __init__(self) -> None:
        self._requests: Counter[str] = Counter()
        self._retries: Counter[str] = Counter()
        self._observers: list[Observer] = []

    @property
    def requests(self) -> dict[str, int]:
        """First attempts by call name: one per logical HTTP request (each chunk, each page)."""
        return dict(self._requests)

    @property
    def retries(self) -> dict[str, int]:
        """Further attempts by call name (transient retries and the 401 re-auth retry)."""
        return dict(self._retries)

    @property
    def total_requests(self) -> int:
        """Every HTTP attempt, retries included."""
        return sum(self._requests.values()) + sum(self._retries.values())

    def reset(self) -> None:
        self._requests.clear()
        self._retries.clear()

    def add_observer(self, fn: Observer) -> None:
        self._observers.append(fn)

    def remove_observer(self, fn: Observer) -> None:
        self._observers.remove(fn)

    def count(self, call: str, attempt: int) -> None:
        if attempt == 1:
            self._requests[call] += 1
        else:
            self._retries[call] += 1

    def emit(self, record: RequestRecord) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "network %s %s %s -> %s in %.3fs (attempt %d%s)",
                record.call,
                record.method,
                record.path,
                record.status if record.status is not None else record.transport_error,
                record.duration,
                record.attempt,
                ", will retry" if record.will_retry else "",
            )
        for fn in list(self._observers):
            try:
                fn(record)
            except Exception:
                log.exception("network observer %r failed; ignored", fn)
