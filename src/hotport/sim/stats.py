"""Request statistics of the Neutron simulator: a bounded request log and counters.

Owns: `RequestLog` (the last N requests: time, method, path template, status, queued and
service seconds, injected fault) and its counters by method, by endpoint ("METHOD /template",
UUIDs replaced by ``{id}``) and by status; `path_template`.

Never: does I/O or reads a clock (the caller passes the time).

Concurrency: one asyncio event loop; every method is synchronous, so records never interleave.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["RequestLog", "RequestRecord", "path_template"]

_UUID_SEGMENT = re.compile(
    r"(?<=/)[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}(?=/|$)"
)


def path_template(path: str) -> str:
    """The path with every UUID segment replaced by ``{id}`` (query string dropped)."""
    return _UUID_SEGMENT.sub("{id}", path.split("?", 1)[0])


@dataclass(frozen=True)
class RequestRecord:
    time: float  # monotonic time at arrival
    method: str
    path: str  # template
    status: int
    queued: float
    service: float
    fault: str | None


class RequestLog:
    """The last `maxlen` requests, plus counters since the last reset."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._log: deque[RequestRecord] = deque(maxlen=maxlen)
        self.reset()

    def reset(self) -> None:
        """Zero the counters and empty the log."""
        self._log.clear()
        self.by_method: Counter[str] = Counter()
        self.by_endpoint: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.faults: Counter[str] = Counter()
        self.total = 0
        self.errors = 0
        self.queued_total = 0.0
        self.service_total = 0.0

    def record(
        self,
        *,
        time: float,
        method: str,
        path: str,
        status: int,
        queued: float = 0.0,
        service: float = 0.0,
        fault: str | None = None,
    ) -> RequestRecord:
        rec = RequestRecord(time, method, path_template(path), status, queued, service, fault)
        self._log.append(rec)
        self.total += 1
        self.by_method[method] += 1
        self.by_endpoint[f"{method} {rec.path}"] += 1
        self.by_status[status] += 1
        if status >= 400:
            self.errors += 1
        if fault:
            self.faults[fault] += 1
        self.queued_total += queued
        self.service_total += service
        return rec

    def tail(self, n: int) -> list[dict[str, Any]]:
        if n <= 0:
            return []
        return [asdict(r) for r in list(self._log)[-n:]]

    def snapshot(self, log: int = 0) -> dict[str, Any]:
        return {
            "total": self.total,
            "errors": self.errors,
            "by_method": dict(sorted(self.by_method.items())),
            "by_endpoint": dict(sorted(self.by_endpoint.items())),
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "faults": dict(sorted(self.faults.items())),
            "queued_seconds": self.queued_total,
            "service_seconds": self.service_total,
            "log": self.tail(log),
        }
