"""/metrics end to end, and the request id in the logs: operations through the API of the
whole service (in-process simulator), then the exposition parsed with prometheus_client's
own parser and the samples checked against what the operations did."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import hotport
from hotport.compose import ServiceStack, service_stack
from hotport.sim.seed import Seeder

Key = tuple[str, frozenset[tuple[str, str]]]


class Scrape:
    """One parsed exposition: sample values by name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.values: dict[Key, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                self.values[(s.name, frozenset(s.labels.items()))] = s.value

    def get(self, name: str, **labels: str) -> float:
        return self.values.get((name, frozenset(labels.items())), 0.0)

    def has(self, name: str, **labels: str) -> bool:
        return (name, frozenset(labels.items())) in self.values

    def matching(self, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
        want = set(labels.items())
        return {k[1]: v for k, v in self.values.items() if k[0] == name and want <= k[1]}

    def delta(self, before: Scrape, name: str, **labels: str) -> float:
        return self.get(name, **labels) - before.get(name, **labels)


async def scrape(stack: ServiceStack) -> Scrape:
    r = await stack.api.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape(r.text)


@pytest.fixture
async def quiet(tmp_path: Path) -> AsyncIterator[ServiceStack]:
    """The service with the simulator's events off: every request counted is the API's."""
    s = await service_stack(tmp_path / "hotport.db", deliver_events=False)
    try:
        yield s
    finally:
        await s.close()


async def instance(stack: ServiceStack) -> str:
    uid = str(uuid.uuid4())
    r = await stack.api.post("/v1/instances", json={"uuid": uid, "name": "vm"})
    assert r.status_code == 201, r.text
    return uid


async def attach(stack: ServiceStack, vm: str, port: str) -> dict[str, Any]:
    r = await stack.api.post(f"/v1/instances/{vm}/interfaces", json={"port_id": port})
    assert r.status_code == 201, r.text
    trace: dict[str, Any] = r.json()["trace"]
    return trace


async def test_attach_detach_counts_kinds_phases_calls_and_locks(quiet: ServiceStack) -> None:
    seed = Seeder(quiet.admin)
    vm = await instance(quiet)
    net = await seed.network("10.0.0.0/24")
    first, second = await seed.port(net), await seed.port(net)
    cold = await attach(quiet, vm, first)  # the network is fetched: 5 requests
    assert cold["network_request_total"] == 5, cold

    before = await scrape(quiet)
    warm = await attach(quiet, vm, second)
    after = await scrape(quiet)
    # a warm attach: the port and its floating IPs, then the bind
    calls = after.matching("hotport_network_requests_total")
    grown = {
        dict(k)["call"]: v - before.get("hotport_network_requests_total", **dict(k))
        for k, v in calls.items()
    }
    assert {c: n for c, n in grown.items() if n} == {
        "show_port": 1,
        "list_floating_ips": 1,
        "bind_port": 1,
    }
    assert warm["network_requests"] == {"show_port": 1, "list_floating_ips": 1, "bind_port": 1}
    # one attach alone: its two one-port reads went out as asked, none batched
    for kind in ("show_port", "floating_ips"):
        assert (
            after.delta(before, "hotport_port_reads_requests_total", kind=kind, how="direct") == 1
        )
        assert after.delta(before, "hotport_port_reads_requests_total", kind=kind, how="batch") == 0
        assert after.has("hotport_port_reads_shared_total", kind=kind)
        assert after.get("hotport_port_reads_queued", kind=kind) == 0
    assert after.delta(before, "hotport_operations_total", kind="attach", outcome="ok") == 1
    assert after.get("hotport_operations_total", kind="attach", outcome="ok") == 2
    assert after.delta(before, "hotport_operation_seconds_count", kind="attach") == 1
    assert after.delta(before, "hotport_operation_seconds_sum", kind="attach") == pytest.approx(
        warm["seconds"], abs=1e-5
    )
    assert after.delta(before, "hotport_operation_network_requests_sum", kind="attach") == 3
    assert (
        after.delta(before, "hotport_operation_network_requests_bucket", kind="attach", le="3.0")
        == 1
    )
    assert (
        after.delta(before, "hotport_operation_network_requests_bucket", kind="attach", le="2.0")
        == 0
    )
    phases = [p["name"] for p in warm["phases"]]
    assert {"lock-port", "plug"} <= set(phases), phases
    for name in set(phases):
        assert after.delta(
            before, "hotport_operation_phase_seconds_count", kind="attach", phase=name
        ) == phases.count(name), name
    # one port lock, not contended: it lands in the le=0 bucket
    assert after.delta(before, "hotport_lock_wait_seconds_count", kind="port") == 1
    assert after.delta(before, "hotport_lock_wait_seconds_bucket", kind="port", le="0.0") == 1
    assert after.get("hotport_network_retries_total", call="bind_port") == 0
    assert after.delta(before, "hotport_network_request_seconds_count", call="bind_port") == 1
    assert after.get("hotport_netcache_hits_total") >= 1

    r = await quiet.api.delete(f"/v1/instances/{vm}/interfaces/{second}")
    assert r.status_code == 200, r.text
    detached = await scrape(quiet)
    assert detached.delta(after, "hotport_operations_total", kind="detach", outcome="ok") == 1
    assert detached.delta(after, "hotport_network_requests_total", call="unbind_port") == 1
    assert detached.delta(after, "hotport_operation_network_requests_sum", kind="detach") == 1
    assert detached.delta(after, "hotport_lock_wait_seconds_count", kind="port") == 1


async def test_failed_operations_count_by_error_class(quiet: ServiceStack) -> None:
    vm = await instance(quiet)
    missing = str(uuid.uuid4())
    r = await quiet.api.post(f"/v1/instances/{vm}/interfaces", json={"port_id": missing})
    assert r.status_code == 404, r.text
    m = await scrape(quiet)
    assert m.get("hotport_operations_total", kind="attach", outcome="error") == 1
    assert m.get("hotport_operation_errors_total", kind="attach", error="PortNotFound") == 1
    assert (
        m.get("hotport_network_request_errors_total", call="show_port", error="PortNotFound") == 1
    )


async def test_heal_duration_and_drift(quiet: ServiceStack) -> None:
    seed = Seeder(quiet.admin)
    vm = await instance(quiet)
    net = await seed.network("10.0.0.0/24")
    kept, gone = await seed.port(net), await seed.port(net)
    await attach(quiet, vm, kept)
    await attach(quiet, vm, gone)
    await seed.delete(gone)  # behind hotport's back (events are off): drift
    before = await scrape(quiet)
    r = await quiet.api.post("/v1/heal")
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["drift"] >= 1, report
    after = await scrape(quiet)
    assert after.delta(before, "hotport_operations_total", kind="heal", outcome="ok") == 1
    assert after.delta(before, "hotport_operation_seconds_count", kind="heal") == 1
    assert (
        after.delta(before, "hotport_operation_network_requests_sum", kind="heal")
        == (report["network_requests"])
    )
    for phase in ("read-cache", "list", "diff"):
        assert (
            after.delta(before, "hotport_operation_phase_seconds_count", kind="heal", phase=phase)
            == 1
        )
    for what, field in (
        ("added", "added"),
        ("updated", "updated"),
        ("removed", "removed"),
        ("orphan_nic", "orphan_nics"),
        ("missing_nic", "missing_nics"),
    ):
        assert after.get("hotport_heal_drift_total", what=what) == len(report[field]), what
    assert after.get("hotport_heal_drift_total", what="removed") == 1
    assert after.get("hotport_heal_last_drift") == report["drift"]
    assert time.time() - after.get("hotport_heal_last_success_timestamp_seconds") < 60
    assert after.delta(before, "hotport_network_requests_total", call="list_ports") == 1


async def test_periodic_heals_are_counted_too(tmp_path: Path) -> None:
    s = await service_stack(tmp_path / "hotport.db", deliver_events=False, heal_interval=0.02)
    try:
        for _ in range(200):
            m = await scrape(s)
            if m.get("hotport_operations_total", kind="heal", outcome="ok") >= 2:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("no periodic heal was counted")
        assert m.get("hotport_heal_last_success_timestamp_seconds") > 0
        assert m.has("hotport_heal_last_drift")
        assert m.get("hotport_operation_seconds_count", kind="heal") >= 2
    finally:
        await s.close()


async def test_http_requests_by_route_template_and_status(quiet: ServiceStack) -> None:
    vm = await instance(quiet)
    assert (await quiet.api.get(f"/v1/instances/{vm}")).status_code == 200
    assert (await quiet.api.get(f"/v1/instances/{uuid.uuid4()}")).status_code == 404
    assert (await quiet.api.get("/v1/nowhere/at/all")).status_code == 404
    assert (await quiet.api.post(f"/v1/instances/{vm}/interfaces", json={})).status_code == 400
    m = await scrape(quiet)
    route = "/v1/instances/{uuid}"
    assert m.get("hotport_http_requests_total", method="GET", route=route, status="200") == 1
    assert m.get("hotport_http_requests_total", method="GET", route=route, status="404") == 1
    assert (
        m.get("hotport_http_requests_total", method="GET", route="(unmatched)", status="404") == 1
    )
    assert (
        m.get(
            "hotport_http_requests_total",
            method="POST",
            route="/v1/instances/{uuid}/interfaces",
            status="400",
        )
        == 1
    )
    assert (
        m.get("hotport_http_requests_total", method="POST", route="/v1/instances", status="201")
        == 1
    )
    assert m.get("hotport_http_request_seconds_count", method="GET", route=route) == 2
    assert m.get("hotport_http_requests_in_flight") == 1  # this very scrape
    # no id ever becomes a label
    assert vm not in m.text
    m2 = await scrape(quiet)
    assert m2.get("hotport_http_requests_total", method="GET", route="/metrics", status="200") == 1


async def test_in_flight_ready_journal_and_build(quiet: ServiceStack) -> None:
    seed = Seeder(quiet.admin)
    vm = await instance(quiet)
    port = await seed.port(await seed.network("10.0.0.0/24"))
    await attach(quiet, vm, port)
    r = await quiet.api.delete(f"/v1/instances/{vm}/interfaces/{port}")
    assert r.status_code == 200
    m = await scrape(quiet)
    assert m.get("hotport_ready") == 1
    assert m.get("hotport_operations_in_flight") == 0
    assert m.get("hotport_journal_open_entries") == 0
    assert m.get("hotport_journal_entries", state="done") == 2
    assert m.get("hotport_journal_entries", state="failed") == 0
    assert m.has("hotport_journal_entries", state="rolled-back")
    assert m.has("hotport_build_info", version=hotport.__version__)
    # an operation inside the gate, and an entry left open (as a crash would leave it)
    await quiet.manager.engine.store.journal_start(vm, port, "attach")
    async with quiet.service.operation():
        m = await scrape(quiet)
    assert m.get("hotport_operations_in_flight") == 1
    assert m.get("hotport_journal_open_entries") == 1
    assert m.get("hotport_journal_entries", state="started") == 1


async def test_a_stuck_store_leaves_the_journal_out_not_the_scrape(
    quiet: ServiceStack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = quiet.manager.engine.store

    async def broken(**_: Any) -> Any:
        raise OSError("disk on fire")

    monkeypatch.setattr(store, "journal_counts", broken)
    with caplog.at_level(logging.WARNING, logger="hotport.api.metrics"):
        m = await scrape(quiet)
    assert not m.has("hotport_journal_open_entries")
    assert m.get("hotport_metrics_collect_errors_total", source="journal") == 1
    assert m.get("hotport_ready") == 1
    assert "cannot read the journal: OSError" in caplog.text


async def test_lock_waits_are_timed_by_kind(quiet: ServiceStack) -> None:
    locks = quiet.manager.engine.locks
    port = str(uuid.uuid4())
    async with locks.port(port):
        waiter = asyncio.create_task(_take(locks.port(port)))
        await asyncio.sleep(0.05)
    await waiter
    async with locks.instance_refresh(str(uuid.uuid4())):
        pass
    m = await scrape(quiet)
    assert m.get("hotport_lock_wait_seconds_count", kind="port") == 2
    assert m.get("hotport_lock_wait_seconds_bucket", kind="port", le="0.0") == 1
    assert m.get("hotport_lock_wait_seconds_bucket", kind="port", le="0.01") == 1
    assert m.get("hotport_lock_wait_seconds_bucket", kind="port", le="0.1") == 2
    assert m.get("hotport_lock_wait_seconds_sum", kind="port") >= 0.04
    assert m.get("hotport_lock_wait_seconds_count", kind="refresh") == 1


async def _take(lock: Any) -> None:
    async with lock:
        pass


async def test_each_app_has_its_own_registry(quiet: ServiceStack, tmp_path: Path) -> None:
    other = await service_stack(tmp_path / "other.db", deliver_events=False)
    try:
        await instance(quiet)
        a, b = await scrape(quiet), await scrape(other)
        assert (
            a.get("hotport_http_requests_total", method="POST", route="/v1/instances", status="201")
            == 1
        )
        assert not b.has(
            "hotport_http_requests_total", method="POST", route="/v1/instances", status="201"
        )
    finally:
        await other.close()


async def test_a_failing_metrics_hook_never_breaks_an_operation(
    quiet: ServiceStack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = quiet.api_app.state.metrics

    def boom(*_: Any) -> Any:
        raise RuntimeError("metrics bug")

    monkeypatch.setattr(metrics.operations, "labels", boom)
    monkeypatch.setattr(metrics.network_requests, "labels", boom)
    seed = Seeder(quiet.admin)
    vm = await instance(quiet)
    port = await seed.port(await seed.network("10.0.0.0/24"))
    with caplog.at_level(logging.ERROR, logger="hotport.api.metrics"):
        await attach(quiet, vm, port)
    assert "metrics: recording a attach trace failed" in caplog.text
    assert "metrics: recording a network request failed" in caplog.text


async def test_openmetrics_when_asked(quiet: ServiceStack) -> None:
    r = await quiet.api.get("/metrics", headers={"accept": "application/openmetrics-text"})
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


# -- request ids in the logs --------------------------------------------------------------
async def test_an_attach_engine_log_line_carries_the_request_id(
    quiet: ServiceStack, caplog: pytest.LogCaptureFixture
) -> None:
    seed = Seeder(quiet.admin)
    vm = await instance(quiet)
    port = await seed.port(await seed.network("10.0.0.0/24"))
    rid = f"req-{uuid.uuid4()}"
    with caplog.at_level(logging.DEBUG, logger="hotport"):
        r = await quiet.api.post(
            f"/v1/instances/{vm}/interfaces",
            json={"port_id": port},
            headers={"X-Openstack-Request-Id": rid},
        )
    assert r.status_code == 201, r.text
    assert r.headers["x-openstack-request-id"] == rid
    engine_lines = [
        rec
        for rec in caplog.records
        if rec.name == "hotport.engine" and rec.getMessage().startswith("attach ")
    ]
    assert engine_lines, [rec.getMessage() for rec in caplog.records]
    assert {getattr(rec, "request_id", None) for rec in engine_lines} == {rid}
    network_lines = [rec for rec in caplog.records if rec.name == "hotport.network"]
    assert network_lines
    assert {getattr(rec, "request_id", None) for rec in network_lines} == {rid}
    # a request without an id of its own gets a fresh one, in its answer and its lines
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="hotport"):
        r = await quiet.api.delete(f"/v1/instances/{vm}/interfaces/{port}")
    fresh = r.headers["x-openstack-request-id"]
    assert fresh.startswith("req-")
    assert fresh != rid
    detach_lines = [rec for rec in caplog.records if rec.getMessage().startswith("detach ")]
    assert {getattr(rec, "request_id", None) for rec in detach_lines} == {fresh}
