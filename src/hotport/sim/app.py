"""The simulator's ASGI app: Neutron v2.0 over HTTP, plus the ``/_sim/`` admin endpoints.

Owns: routing, request parsing (JSON bodies, query strings, the If-Match header, parsed the way
webob does), rendering `SimError` as Neutron's error body, and the request path of every
``/v2.0`` call: count it -> ask the fault injector (500/503 answered at once; a timeout hangs
``hang_seconds`` through the clock and answers 504, state untouched) -> `Capacity.run` (read for
GET, write otherwise; items = resources returned or changed) -> the state call, whose events go
to the `BatchNotifier` right after the state change (so, as on the real server, an event may
reach the compute service before the response) and whose new bindings go to the `Agent`.
Also the lifespan: load the state file at start, save it and stop the notifier and the agent at
shutdown.

Never: implements Neutron semantics itself (state.py / queries.py / schema.py do), or blocks the
event loop (the state calls are synchronous and short).

Concurrency: one asyncio event loop. State calls never await, so each runs atomically; requests
overlap only while they wait for or hold a `Capacity` worker.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .agent import Agent
from .config import RUNTIME_KEYS, SimConfig
from .errors import SimError, bad_request, http_bad_request
from .faults import FaultInjector, neutron_error_body
from .latency import PROFILES, Capacity, Clock, LatencyModel, RequestKind, SystemClock
from .notifier import BatchNotifier
from .queries import (
    not_found_error,
    pagination_links,
    parse_fields,
    parse_list_query,
    run_list,
    select_fields,
)
from .schema import COLLECTIONS, parse_body
from .state import Change, Event, SimState
from .stats import RequestLog

__all__ = ["Simulator", "create_app", "parse_if_match"]

log = logging.getLogger(__name__)

_ETAG = re.compile(r'(?:^|\s)(W/)?"((?:\\"|.)*?)"')  # webob.etag._rx_etag


def parse_if_match(header: str | None) -> int | None:
    """The revision constraint of an If-Match header, as neutron-server 29 reads it.

    webob parses If-Match into strong etags: quoted values (``W/"..."`` weak ones are dropped),
    or, when nothing is quoted, the whole header as one etag; ``*`` means any. Neutron then
    looks at etags starting with ``revision_number=``: none -> no constraint (so ``garbage``,
    ``revision_number = 2`` or ``*`` are ignored); ``int()`` of the rest must parse, else 400
    "Bad if-match request: Revision number etag must be in the format of
    revision_number=<int>."; two of them -> 400 "... Multiple revision_number etags are not
    supported.." (sic, two dots).
    """
    if not header or header == "*":
        return None
    matches = _ETAG.findall(header)
    etags = [tag for weak, tag in matches if not weak] if matches else [header]
    revision: int | None = None
    for etag in etags:
        if etag.startswith("revision_number="):
            if revision is not None:
                raise bad_request("if-match", "Multiple revision_number etags are not supported.")
            try:
                revision = int(etag.split("revision_number=")[1])
            except ValueError:
                raise bad_request(
                    "if-match",
                    "Revision number etag must be in the format of revision_number=<int>",
                ) from None
    return revision


def _request_id() -> str:
    return f"req-{uuid.uuid4()}"


def _json(status: int, body: Any) -> Response:
    return JSONResponse(body, status_code=status, headers={"X-OpenStack-Request-ID": _request_id()})


def _error(exc: SimError) -> Response:
    return _json(exc.status, exc.body())


def _not_found() -> SimError:
    return SimError("HTTPNotFound", "The resource could not be found.", status=404)


def _method_not_allowed() -> SimError:
    return SimError(
        "HTTPMethodNotAllowed",
        "The server could not comply with the request since it is either malformed or "
        "otherwise incorrect.",
        status=405,
    )


class _Reply:
    """A handler's outcome: status, body (None = empty), number of items for the latency."""

    def __init__(self, status: int, body: Any = None, items: int = 1) -> None:
        self.status = status
        self.body = body
        self.items = items


class Simulator:
    """The runtime: config, state, capacity, faults, notifier, agent, stats. One per app."""

    def __init__(
        self,
        config: SimConfig,
        *,
        clock: Clock | None = None,
        notifier_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.state = SimState(
            vif_type=config.vif_type, default_project=config.project_id, seed=config.seed
        )
        self.model = LatencyModel(PROFILES[config.profile], config.time_scale, seed=config.seed)
        self.capacity = Capacity(self.model, config.workers, self.clock)
        self.faults = FaultInjector(config.fault_rules(), seed=config.seed)
        self.notifier = BatchNotifier(
            config.notify_url,
            config.events_interval,
            self.clock,
            transport=notifier_transport,
        )
        self.agent = Agent(self.state, self.clock, self.emit, config.agent_delay)
        self.stats = RequestLog()
        self.events: list[Event] = []  # every event emitted, for tests (GET /_sim/events)

    # ------------------------------------------------------------------ effects
    def emit(self, events: Sequence[Event]) -> None:
        if not events:
            return
        self.events.extend(dict(e) for e in events)
        del self.events[:-10_000]
        self.notifier.emit(events)

    def apply(self, change: Change) -> None:
        """Send a mutation's events and start the agent on its new bindings."""
        self.emit(change.events)
        for port_id, generation in change.bound:
            self.agent.port_bound(port_id, generation)

    # ------------------------------------------------------------------ runtime config
    def reconfigure(self, patch: Any) -> SimConfig:
        """Validate a PUT /_sim/config body completely, then apply it (all or nothing)."""
        if not isinstance(patch, dict):
            raise http_bad_request("the config must be a JSON object")
        unknown = sorted(set(patch) - RUNTIME_KEYS)
        if unknown:
            raise http_bad_request(
                f"cannot change {', '.join(unknown)} at runtime "
                f"(changeable: {', '.join(sorted(RUNTIME_KEYS))})"
            )
        try:
            new = SimConfig.model_validate({**self.config.model_dump(), **patch})
        except ValidationError as exc:
            raise http_bad_request(_validation_message(exc)) from None
        self.capacity.reconfigure(
            profile=PROFILES[new.profile], time_scale=new.time_scale, workers=new.workers
        )
        self.notifier.set_url(new.notify_url)
        self.notifier.set_interval(new.events_interval)
        self.agent.delay = new.agent_delay
        if "faults" in patch:
            self.faults.set_rules(new.fault_rules())
        self.config = new
        return new

    # ------------------------------------------------------------------ snapshot
    def save_snapshot(self, path: Path | None = None) -> Path:
        target = path or self.config.state_file
        if target is None:
            raise http_bad_request("no state file configured (start with --state-file PATH)")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.state.to_snapshot(), indent=1, sort_keys=True))
        tmp.replace(target)
        return target

    def load_snapshot(self, path: Path | None = None) -> bool:
        target = path or self.config.state_file
        if target is None or not target.exists():
            return False
        self.state.load_snapshot(json.loads(target.read_text()))
        return True

    def reset(self) -> None:
        self.agent.cancel_all()
        self.state.clear()
        self.stats.reset()
        self.events.clear()

    def stats_snapshot(self, log_tail: int) -> dict[str, Any]:
        return {
            "requests": self.stats.snapshot(log_tail),
            "capacity": self.capacity.snapshot(),
            "notifier": self.notifier.snapshot(),
            "faults": self.faults.snapshot(),
            "agent": self.agent.snapshot(),
            "resources": self.state.count(),
        }


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "config"
        parts.append(f"{loc}: {err['msg']}")
    return "invalid config: " + "; ".join(parts)


# ====================================================================== Neutron handlers
def _decode_body(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise http_bad_request("Body contains invalid data") from None
    if not isinstance(body, dict):
        raise http_bad_request("Body contains invalid data")
    return body


def _collection_key(collection: str) -> str:
    return collection.replace("-", "_")


class _NeutronAPI:
    """Maps one parsed /v2.0 request to state calls; runs inside Capacity.run."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def handle(
        self,
        method: str,
        parts: list[str],
        params: list[tuple[str, str]],
        raw_body: bytes,
        if_match_header: str | None,
        url: str,
    ) -> tuple[_Reply, Change]:
        state = self.sim.state
        if not parts:
            raise _not_found()
        collection = parts[0]
        resource = COLLECTIONS.get(collection)
        if resource is None:
            raise _not_found()
        if resource == "security_group" and method != "GET":
            raise _method_not_allowed()
        if len(parts) == 1:
            if method == "GET":
                return self._list(resource, collection, params, url), Change()
            if method == "POST":
                return self._create(resource, collection, _decode_body(raw_body))
            raise _method_not_allowed()
        rid = parts[1]
        if len(parts) == 3 and resource == "router" and method == "PUT":
            action = parts[2]
            body = _decode_body(raw_body)
            if action == "add_router_interface":
                info, change = state.add_router_interface(rid, body)
            elif action == "remove_router_interface":
                info, change = state.remove_router_interface(rid, body)
            else:
                raise _not_found()
            return _Reply(200, info), change
        if len(parts) != 2:
            raise _not_found()
        if method == "GET":
            if not state.exists(resource, rid):
                raise not_found_error(resource, rid)
            item = select_fields(state.get(resource, rid), parse_fields(params))
            return _Reply(200, {resource: item}), Change()
        if method == "PUT":
            if_match = parse_if_match(if_match_header)
            attrs = parse_body(
                resource,
                _decode_body(raw_body),
                create=False,
                default_project=self.sim.config.project_id,
            )
            result, change = state.update(resource, rid, attrs, if_match)
            return _Reply(200, {resource: result}), change
        if method == "DELETE":
            if_match = parse_if_match(if_match_header)
            change = state.delete(resource, rid, if_match)
            return _Reply(204), change
        raise _method_not_allowed()

    def _list(
        self, resource: str, collection: str, params: list[tuple[str, str]], url: str
    ) -> _Reply:
        q = parse_list_query(resource, params)
        page = run_list(resource, self.sim.state.list_all(resource), q)
        key = _collection_key(collection)
        body: dict[str, Any] = {key: [select_fields(it, q.fields) for it in page]}
        links = pagination_links(url, params, page, q)
        if links is not None:
            body[f"{key}_links"] = links
        return _Reply(200, body, items=len(page))

    def _create(self, resource: str, collection: str, body: Any) -> tuple[_Reply, Change]:
        state = self.sim.state
        project = self.sim.config.project_id
        if isinstance(body, dict) and resource not in body and collection in body:
            # bulk create: all or nothing
            items = body[collection]
            if not isinstance(items, list):
                raise http_bad_request(f"Object '{collection}' contains invalid data")
            parsed = [
                parse_body(resource, {resource: it}, create=True, default_project=project)
                for it in items
            ]
            saved = state.to_snapshot()
            total = Change(items=len(parsed))
            results = []
            try:
                for attrs in parsed:
                    result, change = state.create(resource, attrs)
                    results.append(result)
                    total.extend(change)
            except SimError:
                state.load_snapshot(saved)
                raise
            return _Reply(201, {_collection_key(collection): results}, len(results)), total
        attrs = parse_body(resource, body, create=True, default_project=project)
        result, change = state.create(resource, attrs)
        return _Reply(201, {resource: result}), change


# ====================================================================== the app
def create_app(
    config: SimConfig,
    *,
    clock: Clock | None = None,
    notifier_transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """The simulator as an ASGI app; ``app.state.sim`` is its `Simulator`."""
    sim = Simulator(config, clock=clock, notifier_transport=notifier_transport)
    api = _NeutronAPI(sim)

    def base_url(request: Request) -> str:
        if sim.config.base_url:
            return sim.config.base_url
        return str(request.base_url).rstrip("/")

    async def versions(request: Request) -> Response:
        href = f"{base_url(request)}/v2.0/"
        return _json(
            200,
            {
                "versions": [
                    {"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": href}]}
                ]
            },
        )

    async def resources_index(request: Request) -> Response:
        base = base_url(request)
        # neutron-server 29 lists only the core resources here (routers, floating IPs and the
        # other extensions are not listed, checked with curl)
        resources = [
            {
                "name": name,
                "collection": coll,
                "links": [{"rel": "self", "href": f"{base}/v2.0/{coll}"}],
            }
            for name, coll in (
                ("network", "networks"),
                ("subnet", "subnets"),
                ("subnetpool", "subnetpools"),
                ("port", "ports"),
            )
        ]
        return _json(200, {"resources": resources})

    async def neutron(request: Request) -> Response:
        method = request.method
        path = request.url.path
        t0 = sim.clock.monotonic()
        fault = sim.faults.decide(method, path)
        if fault is not None and fault.kind in ("500", "503"):
            status, body = neutron_error_body(fault.kind)
            sim.stats.record(time=t0, method=method, path=path, status=status, fault=fault.kind)
            return _json(status, body)
        if fault is not None:  # timeout: hang, then give up; the request is never applied
            await sim.clock.sleep(fault.hang_seconds)
            sim.stats.record(time=t0, method=method, path=path, status=504, fault="timeout")
            return _json(
                504,
                {
                    "NeutronError": {
                        "type": "HTTPGatewayTimeout",
                        "message": "The request timed out (injected fault).",
                        "detail": "",
                    }
                },
            )
        raw = await request.body()
        rest = path[len("/v2.0/") :]
        if rest.endswith(".json"):
            rest = rest[: -len(".json")]
        parts = [p for p in rest.split("/") if p]
        params = list(request.query_params.multi_items())
        url = f"{base_url(request)}{path}"
        if_match = request.headers.get("if-match")

        def handler() -> tuple[tuple[_Reply | SimError, Change], int]:
            try:
                reply, change = api.handle(method, parts, params, raw, if_match, url)
            except SimError as exc:
                return (exc, Change()), 1
            sim.apply(change)  # right after the state change, before the service time
            items = reply.items if method == "GET" else max(change.items, 1)
            return (reply, change), items

        kind: RequestKind = "read" if method == "GET" else "write"
        (outcome, _change), record = await sim.capacity.run(kind, handler)
        if isinstance(outcome, SimError):
            status = outcome.status
            response = _error(outcome)
        else:
            status = outcome.status
            if outcome.body is None:
                response = Response(
                    status_code=status, headers={"X-OpenStack-Request-ID": _request_id()}
                )
            else:
                response = _json(status, outcome.body)
        sim.stats.record(
            time=t0,
            method=method,
            path=path,
            status=status,
            queued=record.queued,
            service=record.service,
        )
        return response

    # ------------------------------------------------------------------ admin
    async def admin_stats(request: Request) -> Response:
        if request.method == "DELETE":
            sim.stats.reset()
            return _json(200, {"reset": True})
        raw = request.query_params.get("log", "0")
        try:
            n = int(raw)
        except ValueError:
            return _error(http_bad_request(f"log must be an integer, not {raw!r}"))
        return _json(200, sim.stats_snapshot(max(0, n)))

    async def admin_reset(request: Request) -> Response:
        sim.reset()
        return _json(200, {"reset": True, "resources": sim.state.count()})

    async def admin_config(request: Request) -> Response:
        if request.method == "PUT":
            try:
                body = _decode_body(await request.body())
                sim.reconfigure(body)
            except SimError as exc:
                return _error(exc)
        return _json(200, sim.config.runtime_view())

    async def admin_port_status(request: Request) -> Response:
        port_id = request.path_params["port_id"]
        try:
            body = _decode_body(await request.body())
            if not isinstance(body, dict) or not isinstance(body.get("status"), str):
                raise http_bad_request('expected {"status": "ACTIVE" | "DOWN" | "ERROR" | "BUILD"}')
            port, change = sim.state.set_port_status(port_id, body["status"])
        except SimError as exc:
            return _error(exc)
        sim.apply(change)
        return _json(200, {"port": port})

    async def admin_snapshot(request: Request) -> Response:
        try:
            path = sim.save_snapshot()
        except SimError as exc:
            return _error(exc)
        except OSError as exc:
            return _json(500, {"error": f"cannot write the state file: {exc}"})
        return _json(200, {"saved": str(path), "resources": sim.state.count()})

    async def admin_events(request: Request) -> Response:
        return _json(200, {"events": list(sim.events)})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if sim.load_snapshot():
            log.info("loaded simulator state from %s", sim.config.state_file)
        try:
            yield
        finally:
            if sim.config.state_file is not None:
                try:
                    sim.save_snapshot()
                except OSError as exc:
                    log.error("cannot save simulator state: %s", exc)
            await sim.agent.aclose()
            await sim.notifier.aclose()

    all_methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
    routes = [
        Route("/", versions, methods=["GET"]),
        Route("/v2.0/", resources_index, methods=["GET"]),
        Route("/v2.0/{rest:path}", neutron, methods=all_methods),
        Route("/_sim/stats", admin_stats, methods=["GET", "DELETE"]),
        Route("/_sim/reset", admin_reset, methods=["POST"]),
        Route("/_sim/config", admin_config, methods=["GET", "PUT"]),
        Route("/_sim/ports/{port_id}/status", admin_port_status, methods=["POST"]),
        Route("/_sim/snapshot", admin_snapshot, methods=["POST"]),
        Route("/_sim/events", admin_events, methods=["GET"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(_not_found())

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_found})
    app.router.redirect_slashes = False  # GET /v2.0 is a 404 on the real server
    app.state.sim = sim
    return app
