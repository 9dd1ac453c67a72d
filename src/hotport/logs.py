"""Logging set-up: structured lines carrying the request id that follows an operation.

Owns: the `request_id` context variable (set by the API's middleware, inherited by the
tasks an operation spawns), the filter that stamps it on every record, and
`configure(level, json=...)` for `hotport serve`.

Must never: log a secret (no module logs tokens or passwords; this one adds nothing but
the request id).

Concurrency: the context variable is per task; configure() runs once at start.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("hotport_request_id", default=None)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def configure(level: str = "info", *, json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    root = logging.getLogger("hotport")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
