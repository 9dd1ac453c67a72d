"""Prometheus metrics: what the engine, the network client, the locks and the API did.

Owns: `Metrics` (one `CollectorRegistry` per app, so two apps in one process never share
or collide) and `install(app, service)`, which mounts `GET /metrics` (a valid token is
needed outside auth mode `none`, like every other route but the health checks), adds
the HTTP middleware, and hooks into each manager the service builds
(`service.on_manager`):

- `Engine.on_trace`: every operation (attach, detach, event refresh, heal, recovery):
  counted by kind and outcome, its latency and each phase's, its network requests;
- the network client's observer: every HTTP attempt to the network service, counted
  once per request by call (retries apart), with its latency and error class;
- `Locks.on_wait`: every lock acquisition's wait, by kind (port, refresh);
- `InterfaceManager.on_heal` (API and periodic heals alike): the drift each heal found,
  by what;
- at scrape time: in-flight operations and readiness (the service), the journal (entries
  by state: one aggregate query), and
  the manager's in-memory counters (network cache, background refreshes, lock tries,
  refused store writes).

The names, labels and meanings are listed in docs/operations.md.

Must never: put an id, a token or a URL's variable part into a label (routes are
templates, calls are names: the label sets stay bounded); let a hook's failure break an
operation (each hook logs and swallows its own errors); block a scrape on a stuck store
(the journal query has a deadline; on failure its gauges are left out of that scrape).

Concurrency: one event loop. Hooks run synchronously on it; prometheus_client's metrics
are themselves thread-safe. Scrapes are serialized by an `asyncio.Lock` (the journal
snapshot is taken, then rendered, by one scrape at a time).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, get_args

from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hotport import __version__
from hotport.api.auth import authenticated
from hotport.engine.heal import HealReport
from hotport.engine.manager import InterfaceManager
from hotport.engine.trace import OperationTrace
from hotport.locks.base import LockKind
from hotport.service.runtime import Service
from hotport.store.base import JournalState

__all__ = ["Metrics", "install"]

log = logging.getLogger("hotport.api.metrics")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: seconds: operations and HTTP requests (in-process: ms; libvirt: 0.1-2 s; detach waits)
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)
#: seconds: one HTTP attempt to the network service
NETWORK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: seconds: a lock wait; "0" counts acquisitions that never queued (the Locks facade's rule)
LOCK_BUCKETS = (0.0, 0.001, 0.01, 0.1, 1.0, 10.0, 30.0)
#: network requests per operation (the design's budget: attach 3-5, heal 4)
REQUEST_COUNT_BUCKETS = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 50.0)

#: a scrape gives up on the journal after this long
JOURNAL_DEADLINE = 2.0
JOURNAL_STATES: tuple[str, ...] = get_args(JournalState)

UNMATCHED_ROUTE = "(unmatched)"


class Metrics:
    """The app's metrics and the hooks that feed them (see the module docstring)."""

    def __init__(self, service: Service, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # -- operations (Engine.on_trace) ------------------------------------------
        self.operations = Counter(
            "hotport_operations",
            "Operations finished, by kind (attach, detach, refresh, heal, recovery) and "
            "outcome (ok, error).",
            ["kind", "outcome"],
            registry=r,
        )
        self.operation_errors = Counter(
            "hotport_operation_errors",
            "Operations that failed, by kind and error class.",
            ["kind", "error"],
            registry=r,
        )
        self.operation_seconds = Histogram(
            "hotport_operation_seconds",
            "Operation latency, by kind.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.phase_seconds = Histogram(
            "hotport_operation_phase_seconds",
            "Latency of each phase of an operation (lock-port, plug, list, ...), by kind and "
            "phase.",
            ["kind", "phase"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.operation_requests = Histogram(
            "hotport_operation_network_requests",
            "Network-service requests (attempts) one operation sent, by kind.",
            ["kind"],
            buckets=REQUEST_COUNT_BUCKETS,
            registry=r,
        )
        # -- the network client's observer ---------------------------------------
        self.network_requests = Counter(
            "hotport_network_requests",
            "Requests to the network service, by call (show_port, bind_port, ...); each "
            "request once, whatever its retries.",
            ["call"],
            registry=r,
        )
        self.network_retries = Counter(
            "hotport_network_retries",
            "Further attempts of a network-service request (transient retries, the 401 "
            "re-authentication), by call.",
            ["call"],
            registry=r,
        )
        self.network_errors = Counter(
            "hotport_network_request_errors",
            "Network-service attempts that failed, by call and error class.",
            ["call", "error"],
            registry=r,
        )
        self.network_seconds = Histogram(
            "hotport_network_request_seconds",
            "Latency of one network-service attempt, by call.",
            ["call"],
            buckets=NETWORK_BUCKETS,
            registry=r,
        )
        # -- locks (Locks.on_wait) -------------------------------------------------
        self.lock_wait = Histogram(
            "hotport_lock_wait_seconds",
            "Wait to acquire a lock, by kind (port: port-<id>; refresh: "
            "refresh_cache-<instance>); le=0 counts acquisitions that never queued.",
            ["kind"],
            buckets=LOCK_BUCKETS,
            registry=r,
        )
        # -- heal (InterfaceManager.heal) ----------------------------------------
        self.heal_drift = Counter(
            "hotport_heal_drift",
            "Drift the heals found, by what (added, updated, removed: cache entries; "
            "orphan_nic, missing_nic: the hypervisor).",
            ["what"],
            registry=r,
        )
        self.heal_last_drift = Gauge(
            "hotport_heal_last_drift", "Drift the last completed heal found.", registry=r
        )
        self.heal_last_success = Gauge(
            "hotport_heal_last_success_timestamp_seconds",
            "When the last heal completed (unix seconds).",
            registry=r,
        )
        # -- HTTP (the middleware) --------------------------------------------------
        self.http_requests = Counter(
            "hotport_http_requests",
            "API requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "hotport_http_request_seconds",
            "API request latency, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.http_in_flight = Gauge(
            "hotport_http_requests_in_flight", "API requests being served.", registry=r
        )
        # -- the service, at scrape time -------------------------------------------
        in_flight = Gauge(
            "hotport_operations_in_flight",
            "Mutating operations inside the service's gate (attach, detach, heal, ...).",
            registry=r,
        )
        in_flight.set_function(lambda: service.in_flight)
        ready = Gauge("hotport_ready", "1 when operations are accepted, else 0.", registry=r)
        ready.set_function(lambda: 1.0 if service.ready else 0.0)
        Info("hotport_build", "hotport's version.", registry=r).info({"version": __version__})
        self.collect_errors = Counter(
            "hotport_metrics_collect_errors",
            "Scrapes that could not read a source (journal), by source.",
            ["source"],
            registry=r,
        )
        self._journal = _JournalCollector()
        r.register(self._journal)
        r.register(_ManagerCollector(service))
        self._scrape_lock = asyncio.Lock()

    # -- hooks -------------------------------------------------------------------------
    def hook(self, manager: InterfaceManager) -> None:
        """Attach to a manager the service just built (before its recovery runs)."""
        engine = manager.engine
        engine.on_trace.append(self.on_trace)
        engine.network.add_observer(self.on_request)
        locks = engine.locks
        previous = locks.on_wait

        def on_wait(kind: LockKind, seconds: float) -> None:
            self.on_lock_wait(kind, seconds)
            if previous is not None:
                previous(kind, seconds)

        locks.on_wait = on_wait
        manager.on_heal.append(self.on_heal)

    def on_trace(self, trace: OperationTrace) -> None:
        try:
            kind = trace.kind
            self.operations.labels(kind, trace.outcome).inc()
            if trace.outcome == "error" and trace.error:
                self.operation_errors.labels(kind, trace.error.split(":", 1)[0]).inc()
            self.operation_seconds.labels(kind).observe(trace.seconds)
            for phase in trace.phases:
                self.phase_seconds.labels(kind, phase.name).observe(phase.seconds)
            self.operation_requests.labels(kind).observe(trace.request_count)
        except Exception:
            log.exception("metrics: recording a %s trace failed", trace.kind)

    def on_request(self, record: Any) -> None:
        """A network-client observer (`hotport.network.RequestRecord`)."""
        try:
            call = str(record.call)
            if record.attempt == 1:
                self.network_requests.labels(call).inc()
            else:
                self.network_retries.labels(call).inc()
            if record.error is not None:
                self.network_errors.labels(call, str(record.error)).inc()
            self.network_seconds.labels(call).observe(record.duration)
        except Exception:
            log.exception("metrics: recording a network request failed")

    def on_lock_wait(self, kind: str, seconds: float) -> None:
        self.lock_wait.labels(kind).observe(seconds)

    def on_heal(self, report: HealReport) -> None:
        try:
            for what, items in (
                ("added", report.added),
                ("updated", report.updated),
                ("removed", report.removed),
                ("orphan_nic", report.orphan_nics),
                ("missing_nic", report.missing_nics),
            ):
                self.heal_drift.labels(what).inc(len(items))
            self.heal_last_drift.set(report.drift)
            self.heal_last_success.set(time.time())
        except Exception:
            log.exception("metrics: recording a heal report failed")

    # -- scrape ------------------------------------------------------------------------
    async def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition (text format, or OpenMetrics when `accept` asks for it)."""
        encoder, content_type = choose_encoder(accept)
        async with self._scrape_lock:
            await self._snapshot_journal()
            return encoder(self.registry), content_type

    async def _snapshot_journal(self) -> None:
        manager = self.service.manager
        if manager is None:
            self._journal.snapshot = None
            return
        store = manager.engine.store
        try:
            async with asyncio.timeout(JOURNAL_DEADLINE):
                counts = await store.journal_counts()
        except Exception as exc:  # a scrape must still answer with everything else
            log.warning("metrics: cannot read the journal: %s", type(exc).__name__)
            self.collect_errors.labels("journal").inc()
            self._journal.snapshot = None
            return
        self._journal.snapshot = Tally(counts)


class _JournalCollector(Collector):
    """The journal gauges, from the snapshot the scrape just took (none: left out)."""

    def __init__(self) -> None:
        self.snapshot: Tally[str] | None = None

    def collect(self) -> Iterable[Metric]:
        snapshot = self.snapshot
        if snapshot is None:
            return []
        states = GaugeMetricFamily(
            "hotport_journal_entries",
            "Journal entries by state (started = running, or left half-done for recovery).",
            labels=["state"],
        )
        for state in JOURNAL_STATES:
            states.add_metric([state], snapshot.get(state, 0))
        return [
            GaugeMetricFamily(
                "hotport_journal_open_entries",
                "Journal entries still open (state started): operations running, or left "
                "half-done for recovery.",
                value=snapshot.get("started", 0),
            ),
            states,
        ]


class _ManagerCollector(Collector):
    """The running manager's in-memory counters (reset when the service restarts)."""

    def __init__(self, service: Service) -> None:
        self._service = service

    def collect(self) -> Iterable[Metric]:
        manager = self._service.manager
        if manager is None:
            return []
        stats = manager.stats()
        cache, background = stats["netcache"], stats["background"]
        out: list[Metric] = [
            GaugeMetricFamily(
                "hotport_netcache_entries", "Networks in the network cache.", cache["entries"]
            ),
            CounterMetricFamily(
                "hotport_netcache_hits", "Network-cache lookups answered.", cache["hits"]
            ),
            CounterMetricFamily(
                "hotport_netcache_misses", "Network-cache lookups missed.", cache["misses"]
            ),
            GaugeMetricFamily(
                "hotport_background_busy", "Event refreshes running.", background["busy"]
            ),
            CounterMetricFamily(
                "hotport_background_coalesced",
                "Event refreshes folded into one already queued for the port.",
                background["coalesced"],
            ),
            CounterMetricFamily(
                "hotport_background_failed", "Event refreshes that failed.", background["failed"]
            ),
        ]
        busy = CounterMetricFamily(
            "hotport_lock_busy",
            "Lock tries (heal) that found the lock held, by kind.",
            labels=["kind"],
        )
        abandoned = CounterMetricFamily(
            "hotport_lock_abandoned",
            "Lock acquisitions abandoned while waiting (cancelled or failed), by kind.",
            labels=["kind"],
        )
        for kind, s in stats["locks"].items():
            busy.add_metric([kind], s["busy"])
            abandoned.add_metric([kind], s["abandoned"])
        refused = CounterMetricFamily(
            "hotport_store_refused_writes",
            "Cache writes the store refused (stale revision, conflict, missing row), by reason.",
            labels=["reason"],
        )
        for reason, n in stats["refused_writes"].items():
            refused.add_metric([reason], n)
        return [*out, busy, abandoned, refused, *_read_metrics(stats.get("reads") or {})]


def _read_metrics(reads: dict[str, dict[str, int]]) -> list[Metric]:
    """The coalescer's counters (`hotport.network.coalesce.LaneStats`), by kind of
    one-port read (`show_port`, `floating_ips`); none under the reference policies."""
    requests = CounterMetricFamily(
        "hotport_port_reads_requests",
        "One-port reads sent to the network service, by kind and how: direct (alone, "
        "as asked) or batch (for queued callers, one list request).",
        labels=["kind", "how"],
    )
    shared = CounterMetricFamily(
        "hotport_port_reads_shared",
        "Batch requests that answered two or more operations at once, by kind.",
        labels=["kind"],
    )
    callers = CounterMetricFamily(
        "hotport_port_reads_batched_callers",
        "Operations answered by a batch request, by kind.",
        labels=["kind"],
    )
    queued = GaugeMetricFamily(
        "hotport_port_reads_queued", "Operations waiting for a batch, by kind.", labels=["kind"]
    )
    for kind, s in sorted(reads.items()):
        requests.add_metric([kind, "direct"], s.get("direct", 0))
        requests.add_metric([kind, "batch"], s.get("batches", 0))
        shared.add_metric([kind], s.get("shared", 0))
        callers.add_metric([kind], s.get("batched_callers", 0))
        queued.add_metric([kind], s.get("queued", 0))
    return [requests, shared, callers, queued]


class _HttpMetrics:
    """ASGI middleware: counts and times each API request by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless an answer starts: an exception escaping is answered 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        m = self.metrics
        m.http_in_flight.inc()
        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            m.http_in_flight.dec()
            route = getattr(scope.get("route"), "path", None)
            template = route if isinstance(route, str) else UNMATCHED_ROUTE
            method = str(scope.get("method", ""))
            m.http_requests.labels(method, template, str(status)).inc()
            m.http_seconds.labels(method, template).observe(time.perf_counter() - t0)


def install(app: FastAPI, service: Service) -> Any:
    """Mount `/metrics` on `app`, add the HTTP middleware, hook into the service's
    managers. Returns the `Metrics` (the app keeps it as `app.state.metrics`)."""
    metrics = Metrics(service)
    service.on_manager.append(metrics.hook)
    if service.manager is not None:  # already started: hook in now
        metrics.hook(service.manager)
    app.add_middleware(_HttpMetrics, metrics=metrics)

    async def scrape(request: Request) -> Response:
        body, content_type = await metrics.render(request.headers.get("accept", ""))
        return Response(body, media_type=content_type)

    app.add_api_route(
        "/metrics",
        scrape,
        methods=["GET"],
        tags=["health"],
        summary="Prometheus metrics (docs/operations.md lists them).",
        dependencies=[Depends(authenticated)],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "the exposition"}},
    )
    return metrics
