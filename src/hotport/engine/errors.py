"""The engine's exception tree: what an attach, detach, event or heal can fail with.

Owns: the typed errors callers (the API, the CLI, the benchmarks) see. Each carries a
`status` (the HTTP status the API answers with), a `category` (permanent, conflict,
transient) and a message that says what to do. The engine translates the boundaries'
errors (network, store, virt) into these, chaining the cause.

Must never: import a concrete backend or HTTP framework.

Concurrency: plain values.

The tree::

    EngineError
    ├── InvalidRequest            400  bad input; nothing was changed
    ├── NotFoundError             404
    │   ├── InstanceNotFound
    │   ├── PortNotFound
    │   ├── NetworkNotFound
    │   └── InterfaceNotAttached        the port is not attached to that instance
    ├── ConflictError             409
    │   ├── PortInUse                   the port belongs to another device
    │   ├── InstanceExists
    │   ├── ConcurrentUpdate            the port kept changing under us (revision retries)
    │   └── GuestDidNotRelease          detach timed out; NIC, binding and cache unchanged
    ├── NotSupportedError         405  the driver cannot do this (create a domain, say)
    └── UnavailableError          503  transient: retry later
        ├── NetworkServiceUnavailable
        ├── HypervisorUnavailable
        └── StoreUnavailable
"""

from __future__ import annotations

from typing import ClassVar, Literal

Category = Literal["permanent", "conflict", "transient"]


class EngineError(Exception):
    status: ClassVar[int] = 500
    category: ClassVar[Category] = "permanent"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(EngineError):
    status = 400


class NotFoundError(EngineError):
    status = 404


class InstanceNotFound(NotFoundError):
    pass


class PortNotFound(NotFoundError):
    pass


class NetworkNotFound(NotFoundError):
    pass


class InterfaceNotAttached(NotFoundError):
    pass


class ConflictError(EngineError):
    status = 409
    category = "conflict"


class PortInUse(ConflictError):
    pass


class InstanceExists(ConflictError):
    pass


class ConcurrentUpdate(ConflictError):
    pass


class GuestDidNotRelease(ConflictError):
    pass


class NotSupportedError(EngineError):
    status = 405


class UnavailableError(EngineError):
    status = 503
    category = "transient"


class NetworkServiceUnavailable(UnavailableError):
    pass


class HypervisorUnavailable(UnavailableError):
    pass


class StoreUnavailable(UnavailableError):
    pass
