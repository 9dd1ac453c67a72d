"""hotport.logs: the request id on every record (whatever the handler), JSON lines, text."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Iterator

import pytest

from hotport import logs

RID = "req-0b7ac1c4-6a3c-4f4e-9a53-0e8d2b1f2a10"


@pytest.fixture
def restore_loggers() -> Iterator[None]:
    """configure() rewires loggers; put them back so other tests' caplog still works."""
    names = ("hotport", "hotport.test.also")
    saved = {
        n: (
            list(logging.getLogger(n).handlers),
            logging.getLogger(n).level,
            logging.getLogger(n).propagate,
        )
        for n in names
    }
    try:
        yield
    finally:
        for n, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(n)
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def test_every_record_carries_the_request_id_of_its_context() -> None:
    log = logging.getLogger("hotport.test")
    outside = log.makeRecord(log.name, logging.INFO, __file__, 1, "m", None, None)
    assert getattr(outside, "request_id", None) == "-"
    token = logs.request_id.set(RID)
    try:
        inside = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
        made = logging.getLogRecordFactory()("x", logging.INFO, __file__, 1, "m", None, None)
    finally:
        logs.request_id.reset(token)
    assert getattr(made, "request_id", None) == RID
    # a record built by hand skips the factory: the handler's filter fills it in
    assert not hasattr(inside, "request_id")
    assert logs.RequestIdFilter().filter(inside)
    assert getattr(inside, "request_id", None) == "-"


def test_the_factory_is_installed_once() -> None:
    factory = logging.getLogRecordFactory()
    logs.install_record_factory()
    logs.install_record_factory()
    assert logging.getLogRecordFactory() is factory


async def test_the_id_follows_tasks_and_threads_an_operation_spawns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("hotport.test")

    async def child() -> None:
        await asyncio.sleep(0)
        log.info("in a child task")

    def blocking() -> None:
        log.info("in a worker thread")

    with caplog.at_level(logging.INFO, logger="hotport.test"):
        token = logs.request_id.set(RID)
        try:
            task = asyncio.create_task(child())
            await asyncio.to_thread(blocking)
        finally:
            logs.request_id.reset(token)
        await task
        log.info("after the request")
    ids = {r.getMessage(): getattr(r, "request_id", None) for r in caplog.records}
    assert ids == {
        "in a child task": RID,
        "in a worker thread": RID,
        "after the request": "-",
    }


def test_json_lines(restore_loggers: None, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("debug", json_lines=True)
    log = logging.getLogger("hotport.engine")
    token = logs.request_id.set(RID)
    try:
        log.debug("attach %s ok", "port-1", extra={"port_id": "port-1", "seconds": 0.25})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("it failed")
    finally:
        logs.request_id.reset(token)
    log.info("no request")
    logging.getLogger("elsewhere").warning("not ours")  # only hotport's loggers are set up
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3, lines
    first, failed, outside = (json.loads(line) for line in lines)
    assert first["level"] == "debug"
    assert first["logger"] == "hotport.engine"
    assert first["request_id"] == RID
    assert first["message"] == "attach port-1 ok"
    assert (first["port_id"], first["seconds"]) == ("port-1", 0.25)
    ts = dt.datetime.fromisoformat(first["ts"])
    assert ts.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - ts).total_seconds()) < 60
    assert first["ts"].endswith("+00:00")
    assert len(first["ts"].split(".")[1]) == len("123+00:00")  # milliseconds
    assert "exc" not in first
    assert failed["level"] == "error"
    assert "ValueError: boom" in failed["exc"]
    assert outside["request_id"] == "-"
    assert set(outside) == {"ts", "level", "logger", "request_id", "message"}


def test_text_lines_and_more_loggers(
    restore_loggers: None, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = logs.configure("info", also=["hotport.test.also"])
    assert logging.getLogger("hotport").handlers == [handler]
    token = logs.request_id.set(RID)
    try:
        logging.getLogger("hotport.api").info("hello")
        logging.getLogger("hotport.api").debug("below the level")
        logging.getLogger("hotport.test.also").warning("from a library")
    finally:
        logs.request_id.reset(token)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith(f" INFO hotport.api [{RID}] hello")
    assert lines[1].endswith(f" WARNING hotport.test.also [{RID}] from a library")


def test_an_extra_value_that_is_not_json_is_shown_as_text(
    restore_loggers: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("info", json_lines=True)
    logging.getLogger("hotport.x").info("odd", extra={"thing": {1, 2}.__class__})
    line = json.loads(capsys.readouterr().err)
    assert line["thing"] == "<class 'set'>"
