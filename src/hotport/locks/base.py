"""The lock contract: named async locks, the two names hotport uses, and wait accounting.

Owns: `LockBackend` (what a lock implementation provides: wait for a name, try a name
without waiting, tell whether a name is held) and the two lock names of the design:
`port-{port_id}` for every operation on one port, `refresh_cache-{instance_uuid}` for a
full refresh of one instance.

Must never: know what is protected (no store, network or virt imports).

Concurrency: a backend's locks are not re-entrant; a holder that is cancelled releases
(the context manager's exit runs). `held()` is a snapshot and may be stale at once.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Literal, Protocol

LockKind = Literal["port", "refresh"]


def port_lock_name(port_id: str) -> str:
    return f"port-{port_id}"


def refresh_lock_name(instance_uuid: str) -> str:
    return f"refresh_cache-{instance_uuid}"


def kind_of(name: str) -> LockKind:
    return "refresh" if name.startswith("refresh_cache-") else "port"


class LockError(Exception):
    """Base of lock errors."""


class LockUnavailable(LockError):
    """Transient: the lock service (file system, tooz coordinator) cannot be reached."""


class LockTimeout(LockError):
    """The lock was not acquired before the caller's deadline."""


class LockBackend(Protocol):
    def lock(self, name: str) -> AbstractAsyncContextManager[float]:
        """Wait for `name`, hold it for the block; the value is the seconds waited."""
        ...

    def try_lock(self, name: str) -> AbstractAsyncContextManager[bool]:
        """Take `name` only if free, never waiting; the value says whether it was taken
        (the block runs either way; release happens only if taken)."""
        ...

    def held(self, name: str) -> bool: ...
