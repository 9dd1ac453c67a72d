"""The engine's parts and settings, and the translation of backend errors.

Owns: `EngineConfig` (the knobs), `Engine` (the parts every operation module uses: the
four backends, the one-port reads (`reads`: `DirectReads` unless the composition root
gives a coalescing `PortReads`), the network cache, the cache policy, the event waiters,
the background work), `translate_errors` (network, virt and store errors ->
`hotport.engine.errors`, causes chained) and `traced` (run one operation under its
trace).

Must never: import a concrete backend; it receives them from the composition root.

Concurrency: one event loop. `Engine` is shared by all operations; everything mutable in
it is either a backend (safe for concurrent calls) or owned by `background`/`waiters`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import InitVar, dataclass, field
from typing import Any

from hotport.engine import errors as E
from hotport.engine.background import Background
from hotport.engine.contracts import NetworkAPI, PortReads
from hotport.engine.netcache import NetworkCache
from hotport.engine.policy import CachePolicy, HotportPolicy
from hotport.engine.trace import OperationTrace, tracing
from hotport.engine.waiters import EventWaiters
from hotport.locks.facade import Locks
from hotport.network import errors as net
from hotport.network.models import FloatingIP, Port
from hotport.store import base as store_base
from hotport.store.base import Store
from hotport.virt import base as virt
from hotport.virt.base import VirtDriver

log = logging.getLogger("hotport.engine")


@dataclass(frozen=True)
class EngineConfig:
    host: str
    device_owner: str = "compute:nova"
    #: how long a guest may take to release a NIC on detach
    detach_timeout: float = 30.0
    #: how many times a write refused for a stale revision is re-read and retried
    revision_retries: int = 3
    #: heal repairs what it finds (unplugs orphan NICs, plugs missing ones)
    repair: bool = False
    #: tombstones older than this are purged by the heal (must exceed the heal period)
    tombstone_age: float = 3600.0
    project_id: str | None = None


@dataclass(frozen=True)
class DirectReads:
    """`PortReads` with one request per call, as the client sends them:
    `GET /ports/{id}` and `GET /floatingips?port_id={id}`."""

    network: NetworkAPI

    async def show_port(self, port_id: str) -> Port:
        return await self.network.show_port(port_id)

    async def port_floating_ips(self, port_id: str) -> list[FloatingIP]:
        return await self.network.list_floating_ips([port_id])


@dataclass
class Engine:
    config: EngineConfig
    network: NetworkAPI
    store: Store
    locks: Locks
    virt: VirtDriver
    policy: CachePolicy = field(default_factory=HotportPolicy)
    netcache: NetworkCache = field(init=False)
    #: attach's and the per-port refresh's reads of one port (`port_reads`, or direct)
    reads: PortReads = field(init=False)
    waiters: EventWaiters = field(default_factory=EventWaiters)
    background: Background = field(default_factory=Background)
    clock: Callable[[], float] = time.time
    on_trace: list[Callable[[OperationTrace], None]] = field(default_factory=list)
    port_reads: InitVar[PortReads | None] = None

    def __post_init__(self, port_reads: PortReads | None) -> None:
        self.netcache = NetworkCache(self.network)
        self.reads = port_reads if port_reads is not None else DirectReads(self.network)

    @property
    def host(self) -> str:
        return self.config.host

    @asynccontextmanager
    async def traced(
        self, kind: str, instance_uuid: str | None = None, port_id: str | None = None
    ) -> AsyncIterator[OperationTrace]:
        """Run an operation under a fresh trace; report it when the block ends."""
        trace = OperationTrace(kind, instance_uuid, port_id)
        try:
            with tracing(trace):
                yield trace
        except BaseException as exc:
            trace.finish("error", f"{type(exc).__name__}: {exc}")
            raise
        else:
            trace.finish("ok")
        finally:
            log.debug(
                "%s instance=%s port=%s %s in %.3fs, %d network requests %s, phases %s",
                kind,
                instance_uuid,
                port_id,
                trace.outcome,
                trace.seconds,
                trace.request_count,
                dict(trace.requests),
                [(p.name, round(p.seconds, 4)) for p in trace.phases],
            )
            for fn in self.on_trace:
                fn(trace)


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Map the boundaries' errors to the engine's, keeping the cause."""
    try:
        yield
    except E.EngineError:
        raise
    except net.PortNotFound as exc:
        raise E.PortNotFound(f"{what}: {exc.message}") from exc
    except net.NetworkNotFound as exc:
        raise E.NetworkNotFound(f"{what}: {exc.message}") from exc
    except net.TransientError as exc:
        raise E.NetworkServiceUnavailable(
            f"{what}: the network service is unavailable ({exc.message}); retry later"
        ) from exc
    except net.BadRequest as exc:
        raise E.InvalidRequest(f"{what}: the network service refused it: {exc.message}") from exc
    except net.ConflictError as exc:
        raise E.ConflictError(f"{what}: {exc.message}") from exc
    except net.NetworkServiceError as exc:
        raise E.EngineError(f"{what}: the network service failed: {exc.message}") from exc
    except virt.DomainNotFound as exc:
        raise E.InstanceNotFound(f"{what}: the hypervisor has no such domain ({exc})") from exc
    except virt.HypervisorUnavailable as exc:
        raise E.HypervisorUnavailable(f"{what}: the hypervisor is unavailable ({exc})") from exc
    except virt.HostLacks as exc:
        raise E.ConflictError(f"{what}: this host cannot plug it: {exc}") from exc
    except virt.NotSupported as exc:
        raise E.NotSupportedError(f"{what}: {exc}") from exc
    except virt.VirtError as exc:
        raise E.EngineError(f"{what}: the hypervisor failed: {exc}") from exc
    except store_base.StoreUnavailable as exc:
        raise E.StoreUnavailable(f"{what}: the database is unavailable ({exc})") from exc


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def vif_summary(vif: dict[str, Any]) -> str:
    return f"{vif.get('id')} ({vif.get('address')})"
