"""The API application: routers, error handlers, request ids, health, lifecycle.

Owns: `create_api(service, ...)`, which assembles the FastAPI app: the native `/v1`
router, the Nova-compatible `/v2.1` router, `/healthz`, `/readyz`, `/metrics`, the
request-id middleware (`X-Openstack-Request-Id`, as nova-api sends it; a caller's own
`X-Openstack-Request-Id` of the form `req-<uuid>` is kept) and, when asked, the
service's start and stop as the app's lifespan.

Must never: contain an operation's behaviour (that is the engine's), or a route's (the
routers').

Concurrency: one event loop; requests are served concurrently.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from hotport import __version__, logs
from hotport.api import errors, metrics, nova, v1
from hotport.api.auth import Authenticator, OpenAccess
from hotport.service.runtime import Service

REQUEST_ID_HEADER = "X-Openstack-Request-Id"
access_log = logging.getLogger("hotport.access")
_REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def create_api(
    service: Service,
    *,
    authenticator: Authenticator | None = None,
    manage_lifecycle: bool = True,
) -> FastAPI:
    """The app for `service`. With `manage_lifecycle`, the app's lifespan starts and
    stops the service (uvicorn runs it); tests that drive the service themselves pass
    False."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await service.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await service.stop()
            await app.state.authenticator.aclose()

    app = FastAPI(
        title="hotport",
        version=__version__,
        summary="Hot-plug network ports into running VMs and keep their network-info cache true.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.authenticator = authenticator if authenticator is not None else OpenAccess()
    app.state.metrics = metrics.install(app, service)
    for exc_type, handler in errors.HANDLERS.items():
        app.add_exception_handler(exc_type, handler)

    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        rid = given if _REQUEST_ID.match(given) else f"req-{uuid.uuid4()}"
        request.state.request_id = rid
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
        finally:
            # the access log, inside the request's context so the line carries its id
            # (uvicorn's own access log runs outside it; `hotport serve` turns that off)
            access_log.info(
                '%s "%s %s" %d %.1f ms',
                request.client.host if request.client else "-",
                request.method,
                request.url.path,
                status,
                (time.perf_counter() - started) * 1000,
            )
            logs.request_id.reset(token)
        response.headers[REQUEST_ID_HEADER] = rid
        return response

    @app.get("/healthz", tags=["health"], summary="The process is alive.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Recovery is done and operations are accepted (503 otherwise).",
        responses={503: {"description": "starting or stopping"}},
    )
    async def readyz() -> Any:
        if service.ready:
            return {"status": "ready", "in_flight": service.in_flight}
        return JSONResponse({"status": "not ready", "in_flight": service.in_flight}, 503)

    app.include_router(v1.router)
    app.include_router(nova.router)
    app.include_router(nova.root_router)
    return app
