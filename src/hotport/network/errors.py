"""The network client's exception tree, and the mapping from an HTTP answer to it.

Owns: every exception the Neutron client raises, and `error_from_response`, the pure
function (no I/O) that turns a status code and a body into one of them. Everything that
leaves `hotport.network` is a `NetworkServiceError`; httpx, pydantic and keystoneauth1
errors are translated at this boundary with the cause chained (`raise ... from exc`).

Must never: include request headers, tokens or passwords in a message; retry or sleep
(policy lives in `retry.py` and `client.py`); import httpx or keystoneauth1.

Concurrency: exceptions are plain values; nothing here is shared or mutable after raise
(except that the client fills `attempts` / `maybe_applied` before raising).

The tree::

    NetworkServiceError                      base; .status .neutron_type .message .detail
    │                                        .call .method .path .request_id .attempts
    │                                        .maybe_applied
    ├── PermanentError                       never retried; the same request fails again
    │   ├── BadRequest               400
    │   ├── Unauthorized             401     (after one invalidate + retry)
    │   ├── Forbidden                403
    │   ├── NotFound                 404
    │   │   ├── PortNotFound                 type PortNotFound
    │   │   ├── NetworkNotFound              type NetworkNotFound
    │   │   ├── SubnetNotFound               type SubnetNotFound
    │   │   └── FloatingIPNotFound           type FloatingIPNotFound
    │   └── MalformedResponse        2xx      whose body is not what Neutron sends
    ├── ConflictError                        the service state disagrees with the request
    │   ├── Conflict                 409
    │   │   ├── MacAddressInUse              type MacAddressInUse
    │   │   ├── IpAddressInUse               type IpAddressAlreadyAllocated / IpAddressInUse
    │   │   └── PortInUse                    type PortInUse
    │   └── RevisionMismatch         412     type RevisionNumberConstraintFailed (If-Match)
    └── TransientError                       may succeed later
        ├── Unavailable              connect errors, 502/503/504 after retries, 500 and
        │                            other 5xx (not retried), 429, a dropped connection
        └── DeadlineExceeded         a per-attempt timeout or the overall call deadline

Other 4xx statuses (405, 413, 414, ...) raise `PermanentError` itself.

`maybe_applied` is True when a write may have taken effect although the caller got an
error: a write whose answer never came (read timeout, dropped connection), or a write
that was retried after a 502/504 (so a later 412/409 may be caused by our own first
attempt). Callers must re-read before deciding what to undo.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

__all__ = [
    "BadRequest",
    "Conflict",
    "ConflictError",
    "DeadlineExceeded",
    "FloatingIPNotFound",
    "Forbidden",
    "IpAddressInUse",
    "MacAddressInUse",
    "MalformedResponse",
    "NetworkNotFound",
    "NetworkServiceError",
    "NotFound",
    "PermanentError",
    "PortInUse",
    "PortNotFound",
    "RevisionMismatch",
    "SubnetNotFound",
    "TransientError",
    "Unauthorized",
    "Unavailable",
    "error_from_response",
]

_MAX_TEXT = 300  # how much of a non-JSON error body goes into a message


class NetworkServiceError(Exception):
    """Base of every error raised by the network client."""

    #: the HTTP status this class stands for, when it stands for one
    status_code: ClassVar[int | None] = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        neutron_type: str | None = None,
        detail: str | None = None,
        call: str | None = None,
        method: str | None = None,
        path: str | None = None,
        request_id: str | None = None,
        attempts: int = 1,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status if status is not None else self.status_code
        self.neutron_type = neutron_type
        self.detail = detail or None
        self.call = call
        self.method = method
        self.path = path
        self.request_id = request_id
        self.attempts = attempts
        self.maybe_applied = maybe_applied

    def __str__(self) -> str:
        where = " ".join(p for p in (self.call, self.method, self.path) if p)
        what = " ".join(
            p for p in (str(self.status) if self.status else None, self.neutron_type) if p
        )
        head = ": ".join(p for p in (where, what) if p)
        text = f"{head}: {self.message}" if head else self.message
        if self.attempts > 1:
            text += f" (after {self.attempts} attempts)"
        if self.maybe_applied:
            text += " [the write may have been applied]"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, neutron_type={self.neutron_type!r},"
            f" call={self.call!r}, method={self.method!r}, path={self.path!r},"
            f" message={self.message!r}, attempts={self.attempts},"
            f" maybe_applied={self.maybe_applied})"
        )


# --- permanent -------------------------------------------------------------------------


class PermanentError(NetworkServiceError):
    """The request is wrong or refers to something that does not exist: never retried."""


class BadRequest(PermanentError):
    status_code = 400


class Unauthorized(PermanentError):
    status_code = 401


class Forbidden(PermanentError):
    status_code = 403


class NotFound(PermanentError):
    status_code = 404


class PortNotFound(NotFound):
    pass


class NetworkNotFound(NotFound):
    pass


class SubnetNotFound(NotFound):
    pass


class FloatingIPNotFound(NotFound):
    pass


class MalformedResponse(PermanentError):
    """A success status whose body is not the JSON shape Neutron sends."""


# --- conflict --------------------------------------------------------------------------


class ConflictError(NetworkServiceError):
    """The request is valid but the service's current state refuses it."""


class Conflict(ConflictError):
    status_code = 409


class MacAddressInUse(Conflict):
    pass


class IpAddressInUse(Conflict):
    pass


class PortInUse(Conflict):
    pass


class RevisionMismatch(ConflictError):
    """`If-Match: revision_number=N` did not match: someone changed the resource."""

    status_code = 412


# --- transient -------------------------------------------------------------------------


class TransientError(NetworkServiceError):
    """The service could not answer now; the same request may succeed later."""


class Unavailable(TransientError):
    """Could not connect, the connection dropped, or a 5xx / 429 answer."""


class DeadlineExceeded(TransientError):
    """A per-attempt timeout or the call's overall deadline passed.

    For a write whose answer never came, `maybe_applied` is True: the outcome is unknown.
    """


# --- mapping ---------------------------------------------------------------------------

_BY_TYPE: dict[str, type[NetworkServiceError]] = {
    "PortNotFound": PortNotFound,
    "NetworkNotFound": NetworkNotFound,
    "SubnetNotFound": SubnetNotFound,
    "FloatingIPNotFound": FloatingIPNotFound,
    "MacAddressInUse": MacAddressInUse,
    "IpAddressAlreadyAllocated": IpAddressInUse,
    "IpAddressInUse": IpAddressInUse,
    "PortInUse": PortInUse,
    "RevisionNumberConstraintFailed": RevisionMismatch,
}

_BY_STATUS: dict[int, type[NetworkServiceError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: RevisionMismatch,
    429: Unavailable,
}


def class_for(status: int, neutron_type: str | None = None) -> type[NetworkServiceError]:
    """The exception class for an error status and (optional) Neutron error type.

    A Neutron type only refines the status class (a `PortNotFound` type on a 400 stays a
    `BadRequest`), so the status code always decides transient / conflict / permanent.
    """
    base = _BY_STATUS.get(status)
    if base is None:
        base = Unavailable if status >= 500 else PermanentError
    refined = _BY_TYPE.get(neutron_type or "")
    if refined is not None and issubclass(refined, base):
        return refined
    return base


def parse_error_body(body: bytes, content_type: str | None = None) -> tuple[str | None, str, str]:
    """(neutron_type, message, detail) from an error body of any shape.

    Handles `{"NeutronError": {"type", "message", "detail"}}`, the old
    `{"NeutronError": "message"}`, Keystone/webob style `{"error": {"message"}}`,
    `{"message": ...}`, and non-JSON bodies (an HTML 502 page from a proxy, empty bodies).
    """
    del content_type  # decided by the bytes: proxies lie about it
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return None, "", ""
    try:
        data: Any = json.loads(text)
    except ValueError:
        return None, _squash(text), ""
    if isinstance(data, dict):
        err = data.get("NeutronError")
        if isinstance(err, dict):
            return (
                _str_or_none(err.get("type")),
                str(err.get("message") or ""),
                str(err.get("detail") or ""),
            )
        if isinstance(err, str):
            return None, err, ""
        for key in ("error", "badRequest", "itemNotFound", "conflictingRequest"):
            inner = data.get(key)
            if isinstance(inner, dict) and "message" in inner:
                return _str_or_none(inner.get("title")), str(inner["message"]), ""
        if isinstance(data.get("message"), str):
            return _str_or_none(data.get("type")), data["message"], ""
    return None, _squash(text), ""


def error_from_response(
    status: int,
    body: bytes,
    *,
    content_type: str | None = None,
    reason: str | None = None,
    call: str | None = None,
    method: str | None = None,
    path: str | None = None,
    request_id: str | None = None,
    attempts: int = 1,
    maybe_applied: bool = False,
) -> NetworkServiceError:
    """The typed error for one non-2xx HTTP answer (a pure function: no I/O)."""
    neutron_type, message, detail = parse_error_body(body, content_type)
    cls = class_for(status, neutron_type)
    if not message:
        message = reason or f"HTTP {status}"
    return cls(
        message,
        status=status,
        neutron_type=neutron_type,
        detail=detail,
        call=call,
        method=method,
        path=path,
        request_id=request_id,
        attempts=attempts,
        maybe_applied=maybe_applied,
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _squash(text: str) -> str:
    one_line = " ".join(text.split())
    if len(one_line) > _MAX_TEXT:
        return one_line[: _MAX_TEXT - 3] + "..."
    return one_line
