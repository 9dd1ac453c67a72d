"""How failures become HTTP answers, in the native shape and in Nova's.

Owns: the mapping of the engine's typed errors (each carries its `status`), the
service's `ServiceStopping` (503), request validation errors (400) and authentication
errors (401/403) to responses. Native `/v1` answers
`{"error": {"type", "message", "category", "request_id"}}`; Nova's `/v2.1` answers
`{"<fault name>": {"code", "message"}}` (`badRequest`, `itemNotFound`,
`conflictingRequest`, ...), as nova-api does.

Must never: leak a stack trace or a secret into a response; turn a client's mistake
into a 5xx. An unexpected exception is a bug: it is logged with its request id and
answered 500 with the id, so the log line can be found.

Concurrency: stateless functions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from hotport.api.bodies import UUID_PATTERN
from hotport.engine import errors as E
from hotport.service.runtime import ServiceStopping

log = logging.getLogger("hotport.api")

NOVA_PREFIX = "/v2.1"

#: nova-api's fault names by status (nova.api.openstack.wsgi.Fault._fault_names)
NOVA_FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}


class AuthError(Exception):
    """Raised by the auth dependencies: 401 (no or bad token) or 403 (role missing)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ErrorDetail(BaseModel):
    type: str
    message: str
    category: str
    request_id: str | None = None


class ErrorBody(BaseModel):
    """The native API's error body."""

    error: ErrorDetail


class NovaFaultDetail(BaseModel):
    code: int
    message: str


def request_id_of(request: Request) -> str | None:
    rid = getattr(request.state, "request_id", None)
    return rid if isinstance(rid, str) else None


def error_response(
    request: Request,
    status: int,
    message: str,
    *,
    type_: str,
    category: str = "permanent",
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    if request.url.path.startswith(NOVA_PREFIX):
        name = NOVA_FAULT_NAMES.get(status, "computeFault")
        body: dict[str, Any] = {name: {"code": status, "message": message}}
    else:
        body = {
            "error": {
                "type": type_,
                "message": message,
                "category": category,
                "request_id": request_id_of(request),
            }
        }
    return JSONResponse(body, status_code=status, headers=headers)


def describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        where = ".".join(loc)
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "json_invalid":
            parts.append("the body is not valid JSON; send a JSON object")
        elif e.get("type") == "extra_forbidden":
            parts.append(f"unknown field {where!r}; remove it")
        elif e.get("type") == "missing":
            parts.append(f"{where or 'body'}: required; add it")
        elif (
            e.get("type") == "string_pattern_mismatch"
            and (e.get("ctx") or {}).get("pattern") == UUID_PATTERN
        ):
            parts.append(f"{where}: {e.get('input')!r} is not a valid UUID")
        else:
            parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts) or "invalid request"


async def on_engine_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, E.EngineError)
    status = exc.status if exc.status != 500 else 502
    if exc.status == 500:
        # a failure of a backend we could not classify: not our bug, not the caller's
        log.error("request %s: %s: %s", request_id_of(request), type(exc).__name__, exc)
    return error_response(
        request, status, exc.message, type_=type(exc).__name__, category=exc.category
    )


async def on_stopping(request: Request, exc: Exception) -> JSONResponse:
    return error_response(
        request,
        503,
        str(exc),
        type_="ServiceStopping",
        category="transient",
        headers={"Retry-After": "5"},
    )


async def on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(request, 400, describe_validation(exc), type_="InvalidRequest")


async def on_auth(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    headers = {"WWW-Authenticate": 'Keystone uri="hotport"'} if exc.status == 401 else None
    return error_response(
        request,
        exc.status,
        exc.message,
        type_="Unauthorized" if exc.status == 401 else "Forbidden",
        headers=headers,
    )


async def on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such resource: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        allowed = allowed_methods(request)
        message = f"{request.method} is not allowed on {request.url.path}"
        if allowed:
            message += f"; use {', '.join(allowed)}"
            return error_response(
                request, 405, message, type_="HTTPError", headers={"Allow": ", ".join(allowed)}
            )
    return error_response(request, exc.status_code, message, type_="HTTPError", headers=exc.headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method the API serves at this path, from its OpenAPI document (Starlette's
    own 405 names only the methods of the first route that matched the path)."""
    path = request.url.path
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        if re.fullmatch(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)), path):
            methods |= {m.upper() for m in operations}
    return sorted(methods)


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    rid = request_id_of(request)
    log.exception("request %s: unexpected %s (a bug)", rid, type(exc).__name__)
    return error_response(
        request,
        500,
        f"internal error (a bug in hotport); request id {rid}",
        type_="InternalError",
    )


HANDLERS = {
    E.EngineError: on_engine_error,
    ServiceStopping: on_stopping,
    RequestValidationError: on_validation,
    AuthError: on_auth,
    StarletteHTTPException: on_http,
    Exception: on_unexpected,
}
