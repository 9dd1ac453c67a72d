"""Logging set-up: structured lines carrying the request id that follows an operation.

Owns: the `request_id` context variable (set by the API's middleware, inherited by the
tasks an operation spawns and by `asyncio.to_thread` calls), the log record factory that
stamps it on EVERY record when the record is made (so any handler sees it: ours, pytest's
caplog, an operator's), the JSON and text formatters, and `configure(level,
json_lines=...)` for `hotport serve`.

A record made outside any request (the periodic heal, start-up) has request id `-`; a
background refresh started by an event carries the id of the request that posted the
event. Do not pass `extra={"request_id": ...}` to a log call: the factory has set it.

Must never: log a secret (no module logs tokens or passwords; this one adds nothing but
the request id, and a JSON line's extra fields are only what a call passed in `extra`).

Concurrency: the context variable is per task; the record factory is installed once, at
import (idempotent, chained to the factory it found); configure() runs once at start.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

__all__ = [
    "TEXT_FORMAT",
    "JsonFormatter",
    "RequestIdFilter",
    "configure",
    "install_record_factory",
    "request_id",
]

request_id: ContextVar[str | None] = ContextVar("hotport_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

#: a LogRecord's own attributes: everything else on a record came from `extra=`
_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "taskName", "color_message"}  # uvicorn's
)


def install_record_factory() -> None:
    """Make every log record carry `request_id` (`-` outside a request). Idempotent."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_hotport_request_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = request_id.get() or "-"
        return record

    factory._hotport_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


install_record_factory()


class RequestIdFilter(logging.Filter):
    """Sets `request_id` on a record that lacks it (one made before the factory was
    installed, or by a library's own factory)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ms), level, logger, request_id, message, the
    `extra=` fields of the call, and exc/stack when present."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str)


def configure(
    level: str = "info", *, json_lines: bool = False, also: Iterable[str] = ()
) -> logging.Handler:
    """Send hotport's logs (and those of the loggers named in `also`, e.g.
    `uvicorn.error`) to stderr, as JSON lines or as text with the request id in
    brackets. Returns the handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    for name in ("hotport", *also):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    return handler
