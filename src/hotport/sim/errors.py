"""The simulator's error tree: Neutron API errors as plain Python exceptions.

Owns: `SimError(status, type, message)` and its few subclasses, one per HTTP status, plus the
constructors for the Neutron error messages the simulator emits (each copied from what a real
neutron-server 29 answers, see the docstrings of `state.py` and `queries.py`).

Never: knows HTTP frameworks. The ASGI app renders a `SimError` as
``{"NeutronError": {"type": ..., "message": ..., "detail": ""}}`` with `status`.

Concurrency: immutable exception objects; nothing shared.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadRequest",
    "Conflict",
    "NotFound",
    "PreconditionFailed",
    "SimError",
    "bad_request",
    "http_bad_request",
    "invalid_input",
]


class SimError(Exception):
    """A Neutron API error: HTTP `status`, Neutron exception class name `type`, `message`."""

    status: int = 500

    def __init__(self, type_: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.type = type_
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"NeutronError": {"type": self.type, "message": self.message, "detail": ""}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.type!r}, {self.message!r})"


class BadRequest(SimError):
    status = 400


class NotFound(SimError):
    status = 404


class Conflict(SimError):
    status = 409


class PreconditionFailed(SimError):
    status = 412


def http_bad_request(message: str) -> BadRequest:
    """webob's HTTPBadRequest, raised by Neutron's request-body handling."""
    return BadRequest("HTTPBadRequest", message)


def invalid_input(message: str) -> BadRequest:
    """neutron-lib's InvalidInput: 'Invalid input for operation: <message>.'"""
    return BadRequest("InvalidInput", f"Invalid input for operation: {message}.")


def bad_request(resource: str, message: str) -> BadRequest:
    """neutron-lib's BadRequest: 'Bad <resource> request: <message>.'"""
    return BadRequest("BadRequest", f"Bad {resource} request: {message}.")
